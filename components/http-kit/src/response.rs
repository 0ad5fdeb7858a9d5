//! Responses every component sends: JSON, problem documents, `304`s, each
//! with `x-request-id`. The body type is one spin-sdk returns directly.

use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::idempotency::{REPLAYED_HEADER, StoredResponse};
use crate::problem::Problem;
use crate::request_id;

/// A complete response.
pub type Response = http::Response<Full<Bytes>>;

fn build(
    status: u16,
    content_type: Option<&str>,
    request_id: &str,
    body: Vec<u8>,
    extra: &[(&str, String)],
) -> Response {
    let mut builder = http::Response::builder()
        .status(status)
        .header(request_id::HEADER, request_id);
    if let Some(ct) = content_type {
        builder = builder.header(http::header::CONTENT_TYPE, ct);
    }
    for (name, value) in extra {
        builder = builder.header(*name, value.as_str());
    }
    // Every response is complete, so its length is known: without it a
    // Spin host sends the body chunked in several writes, and a keep-alive
    // client's delayed ACK then holds the last one for tens of
    // milliseconds. 204 and 304 carry no body and no length (RFC 9110).
    if status != 204 && status != 304 {
        builder = builder.header(http::header::CONTENT_LENGTH, body.len());
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| {
            // Only a malformed extra header can fail; answer without it.
            let mut res = http::Response::new(Full::new(Bytes::new()));
            *res.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            res
        })
}

/// `status` with `value` as JSON.
pub fn json<T: Serialize>(status: u16, value: &T, request_id: &str) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => build(status, Some("application/json"), request_id, body, &[]),
        Err(_) => problem(Problem::internal(), request_id),
    }
}

/// `status` with `body` as it is, of `content_type`, with `extra`
/// headers (an export in JSON lines, say).
pub fn bytes(
    status: u16,
    content_type: &str,
    body: Vec<u8>,
    extra: &[(&str, String)],
    request_id: &str,
) -> Response {
    build(status, Some(content_type), request_id, body, extra)
}

/// `204 No Content`.
pub fn no_content(request_id: &str) -> Response {
    build(204, None, request_id, Vec::new(), &[])
}

/// A route's outcome as the response: the response, or its problem
/// document naming the request.
pub fn answer(outcome: Result<Response, Problem>, request_id: &str) -> Response {
    outcome.unwrap_or_else(|problem| self::problem(problem, request_id))
}

/// A problem document, naming the request as its `instance`.
pub fn problem(problem: Problem, request_id: &str) -> Response {
    let problem = problem.instance(request_id);
    let extra: Vec<(&str, String)> = problem
        .headers
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    build(
        problem.status,
        Some("application/problem+json"),
        request_id,
        problem.to_json(),
        &extra,
    )
}

/// A stored response sent again for an idempotent retry, marked as such.
pub fn replay(stored: &StoredResponse, request_id: &str) -> Response {
    let content_type = Some(stored.content_type.as_str()).filter(|ct| !ct.is_empty());
    build(
        stored.status,
        content_type,
        request_id,
        stored.body.clone(),
        &[(REPLAYED_HEADER, "true".to_string())],
    )
}

/// A strong ETag for `body`: the first 128 bits of its SHA-256, quoted.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// Whether an `If-None-Match` header value matches `etag`.
pub fn matches_if_none_match(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|h| {
        h.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
    })
}

/// `body` with its ETag, or `304` when the client already has it.
pub fn cacheable(
    content_type: &str,
    body: &[u8],
    if_none_match: Option<&str>,
    request_id: &str,
) -> Response {
    let tag = etag(body);
    if matches_if_none_match(if_none_match, &tag) {
        return build(304, None, request_id, Vec::new(), &[("etag", tag)]);
    }
    build(
        200,
        Some(content_type),
        request_id,
        body.to_vec(),
        &[("etag", tag)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn body(res: Response) -> Vec<u8> {
        futures::executor::block_on(res.into_body().collect())
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn problem_response_has_type_status_and_request_id() -> anyhow::Result<()> {
        let res = problem(Problem::method_not_allowed(&["GET"]), "r-1");
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        assert_eq!(res.headers()["x-request-id"], "r-1");
        assert_eq!(res.headers()["allow"], "GET");
        let json: serde_json::Value = serde_json::from_slice(&body(res))?;
        assert_eq!(json["instance"], "r-1");
        Ok(())
    }

    #[test]
    fn json_response_serializes_the_value() -> anyhow::Result<()> {
        let res = json(201, &serde_json::json!({"id": 1}), "r");
        assert_eq!(res.status(), 201);
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(res.headers()["x-request-id"], "r");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body(res))?["id"],
            1
        );
        Ok(())
    }

    #[test]
    fn complete_responses_carry_their_length_and_empty_ones_none() {
        let res = json(200, &serde_json::json!({"ok": true}), "r");
        assert_eq!(res.headers()["content-length"], "11");
        assert_eq!(body(res).len(), 11);
        let res = problem(Problem::not_found(), "r");
        let declared: usize = res.headers()["content-length"]
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        assert_eq!(declared, body(res).len());
        assert!(!no_content("r").headers().contains_key("content-length"));
    }

    #[test]
    fn replay_sends_the_stored_response_marked_replayed() {
        let stored = StoredResponse {
            status: 201,
            content_type: "application/json".into(),
            body: b"{\"id\":7}".to_vec(),
        };
        let res = replay(&stored, "r-2");
        assert_eq!(res.status(), 201);
        assert_eq!(res.headers()["idempotent-replayed"], "true");
        assert_eq!(res.headers()["x-request-id"], "r-2");
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(body(res), b"{\"id\":7}");
    }

    #[test]
    fn not_modified_carries_etag_and_request_id() {
        let tag = etag(b"{}");
        let res = cacheable("application/json", b"{}", Some(&format!("W/{tag}")), "r-3");
        assert_eq!(res.status(), 304);
        assert_eq!(res.headers()["etag"], tag.as_str());
        assert_eq!(res.headers()["x-request-id"], "r-3");
        assert!(res.headers().get("content-type").is_none());
        assert!(matches_if_none_match(Some("*"), &tag));
        assert!(!matches_if_none_match(None, &tag));
    }

    #[test]
    fn etag_round_trip_yields_304() {
        let first = cacheable("application/json", b"{}", None, "r");
        let tag = first.headers()["etag"]
            .to_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(first.status(), 200);
        let second = cacheable(
            "application/json",
            b"{}",
            Some(&format!("\"other\", {tag}")),
            "r",
        );
        assert_eq!(second.status(), 304);
        assert!(body(second).is_empty());
        assert_eq!(
            cacheable("application/json", b"{}", Some("\"stale\""), "r").status(),
            200
        );
    }
}
