//! `GET /v1/openapi.json`: the API's OpenAPI 3.1 document, with an ETag.

use gatehouse_http::{Response, response};
use spin_sdk::http::Request;

const DOCUMENT: &str = include_str!("../../../docs/openapi.json");

pub fn document(req: &Request, request_id: &str) -> Response {
    let if_none_match = req
        .headers()
        .get(http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    response::cacheable(
        "application/json",
        DOCUMENT.as_bytes(),
        if_none_match,
        request_id,
    )
}
