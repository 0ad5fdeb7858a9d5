//! Problem documents (RFC 9457) the host itself answers with, in the same
//! shape the components use: a stable `code`, never internal error text.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::runtime::Body;

/// A complete body, with its exact length known (so it is sent with a
/// `Content-Length`).
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn problem(status: u16, code: &str, title: &str, detail: &str) -> http::Response<Body> {
    let body = serde_json::json!({
        "type": format!("urn:gatehouse:problem:{code}"),
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    });
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/problem+json")
        .body(full(body.to_string()))
        .unwrap_or_else(|_| http::Response::new(full(Bytes::new())))
}

/// No route matched the request's path.
pub fn not_found() -> http::Response<Body> {
    problem(404, "not_found", "Not Found", "no route matches this path")
}

/// A path the host answers itself, with a method it does not take.
pub fn method_not_allowed(allow: &'static str) -> http::Response<Body> {
    let mut response = problem(
        405,
        "method_not_allowed",
        "Method Not Allowed",
        "this path does not take this method",
    );
    response
        .headers_mut()
        .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
    response
}

/// A component trapped or failed; details go to the log only.
pub fn internal() -> http::Response<Body> {
    problem(
        500,
        "internal",
        "Internal Server Error",
        "the request could not be completed",
    )
}

/// The guest ran past the request timeout and was stopped. 503 rather
/// than 500: the app is not broken, this request was too slow.
pub fn deadline_passed() -> http::Response<Body> {
    problem(
        503,
        "unavailable",
        "Service Unavailable",
        "the request took too long to handle",
    )
}

/// A request body that ended before its `Content-Length` (the body the
/// component would have parsed was never there).
pub fn bad_request(detail: &str) -> http::Response<Body> {
    problem(400, "invalid_json", "Bad Request", detail)
}

/// A request body that did not arrive whole within the host's body
/// timeout. The connection is closed after it: the rest of the body may
/// still be on its way, and reading it would be the wait just refused.
pub fn request_timeout() -> http::Response<Body> {
    let mut response = problem(
        408,
        "request_timeout",
        "Request Timeout",
        "the request body did not arrive in time",
    );
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}
