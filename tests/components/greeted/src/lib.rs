//! A handler for host tests. `/greet?name=x` calls `greet` on the
//! component the manifest plugs into its `gatehouse:fixture/greet` import;
//! any other path answers with the `x-trail` its request arrived with, and
//! marks its response `x-trail: handler`.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

spin_sdk::wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    world: "greeted",
    path: "../greeter/wit",
});

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let body = if req.uri().path().ends_with("/greet") {
        let name = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("name="))
            .unwrap_or("nobody")
            .to_string();
        gatehouse::fixture::greet::greet(name).await
    } else {
        let trail = req
            .headers()
            .get("x-trail")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        format!("trail={trail}")
    };
    Ok(spin_sdk::http::Response::builder()
        .status(200)
        .header("content-length", body.len())
        .header("x-trail", "handler")
        .body(body)?)
}
