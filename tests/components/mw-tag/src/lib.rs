//! A middleware for host tests: the request goes on with `tag` appended to
//! its `x-trail` header, and the response comes back with `tag` appended to
//! its own, so a test reads the order of a chain from both.

use http_body_util::{BodyExt, Full};
use spin_sdk::http::{FromResponse, HeaderMap, IntoRequest, IntoResponse, Request, Response};
use spin_sdk::http_service;

/// The next handler in the chain: the `wasi:http/handler@0.3.0` import.
mod next {
    spin_sdk::wit_bindgen::generate!({
        runtime_path: "::spin_sdk::wit_bindgen::rt",
        world: "spin:sdk/spin-sdk-middleware",
        path: "../../../wit",
        with: { "wasi:http/types@0.3.0": spin_sdk::wasip3::http::types },
        generate_all,
    });
}

const NAME: &str = "tag";

/// Headers a request built in a guest may not carry (the host owns them).
const HOP_BY_HOP: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

fn append_trail(headers: &mut HeaderMap) -> anyhow::Result<()> {
    let trail = match headers.get("x-trail").and_then(|v| v.to_str().ok()) {
        Some(before) => format!("{before},{NAME}"),
        None => NAME.to_string(),
    };
    headers.insert("x-trail", trail.parse()?);
    Ok(())
}

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let (mut parts, body) = req.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(*name);
    }
    append_trail(&mut parts.headers)?;
    let body = body
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .to_bytes();
    let onward = spin_sdk::http::Request::from_parts(parts, Full::new(body))
        .into_request()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let response = next::wasi::http::handler::handle(onward)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let response = Response::from_response(response).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (mut parts, body) = response.into_parts();
    append_trail(&mut parts.headers)?;
    let body = body
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .to_bytes();
    Ok(spin_sdk::http::Response::from_parts(parts, Full::new(body)))
}
