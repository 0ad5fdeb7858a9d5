//! A middleware that does nothing: each request goes to the next handler
//! as it came, and the handler's response comes back as it was made. What
//! a request costs through it, against the same handler without it, is
//! the floor of any Spin HTTP middleware on this host: the hop from one
//! component to the next, with none of the guard's work. `scripts/bench
//! guard` measures it beside the guard (docs/benchmarks.md).

/// The next handler in the chain: the `wasi:http/handler@0.3.0` import.
/// Bound here rather than through `spin_sdk::http::next`, which turns the
/// answer into `http` types: the relay hands the response back untouched.
mod next {
    spin_sdk::wit_bindgen::generate!({
        runtime_path: "::spin_sdk::wit_bindgen::rt",
        world: "spin:sdk/spin-sdk-middleware",
        path: "../../../wit",
        with: { "wasi:http/types@0.3.0": spin_sdk::wasip3::http::types },
        generate_all,
    });
}

use spin_sdk::wasip3::http::types::{ErrorCode, Request, Response};

struct Relay;
spin_sdk::wasip3::http::service::export!(Relay);

impl spin_sdk::wasip3::exports::http::handler::Guest for Relay {
    async fn handle(req: Request) -> Result<Response, ErrorCode> {
        next::wasi::http::handler::handle(req).await
    }
}
