//! A handler for guard tests: answers 200 with a JSON object of every
//! `x-gatehouse-*` header of the request (a header sent twice shows as a
//! list), so a test sees what reached the app and nothing else. The size
//! of the request body it read is in `x-body-bytes`; whether an
//! `Authorization` header reached it, in `x-authorization-seen` (`yes`, `no`).
//!
//! A path ending in `/ping` is answered `ok` whatever the request carried:
//! the trivial route of `scripts/bench guard`, whose work is the same with
//! the guard in front of it or not.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    if req.uri().path().ends_with("/ping") {
        return Ok(spin_sdk::http::Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .header("content-length", 2)
            .body(Full::new(Bytes::from_static(b"ok")))?);
    }
    let mut seen: Map<String, Value> = Map::new();
    for (name, value) in req.headers() {
        if !name.as_str().starts_with("x-gatehouse-") {
            continue;
        }
        let value = Value::String(value.to_str().unwrap_or("<not text>").to_string());
        match seen.get_mut(name.as_str()) {
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.clone(), value]),
            None => {
                seen.insert(name.to_string(), value);
            }
        }
    }
    let authorization = if req.headers().contains_key("authorization") {
        "yes"
    } else {
        "no"
    };
    let read = req.into_body().collect().await?.to_bytes().len();
    let body = Bytes::from(Value::Object(seen).to_string());
    Ok(spin_sdk::http::Response::builder()
        .status(200)
        .header("x-body-bytes", read)
        .header("x-authorization-seen", authorization)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Full::new(body))?)
}
