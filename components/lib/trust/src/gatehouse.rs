//! Calls to Gatehouse: its JWK Set, `GET /v1/auth/whoami`,
//! `POST /v1/keys/verify` and `POST /v1/quotas/consume`. Each is bounded
//! by timeouts and a body limit; a Gatehouse that does not answer makes the
//! component answer 503, never let the request through.

use bytes::Bytes;
use gatehouse_http::{ErrorCode, Problem};
use http_body_util::{BodyExt, Limited};
use spin_sdk::http::FullBody;
use spin_sdk::wasip3::http::types::RequestOptions;
use spin_sdk::wasip3::http_compat::RequestOptionsExtension;

/// Gatehouse's answers are small JSON documents.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Connecting, then waiting for the first byte and between bytes, in
/// nanoseconds: a Gatehouse that hangs delays the request by a few seconds
/// at most, then the component answers 503.
const CONNECT_TIMEOUT_NS: u64 = 2_000_000_000;
const ANSWER_TIMEOUT_NS: u64 = 5_000_000_000;

fn timeouts() -> RequestOptionsExtension {
    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(CONNECT_TIMEOUT_NS));
    let _ = options.set_first_byte_timeout(Some(ANSWER_TIMEOUT_NS));
    let _ = options.set_between_bytes_timeout(Some(ANSWER_TIMEOUT_NS));
    RequestOptionsExtension(options)
}

/// An answer from Gatehouse: status and body.
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, read whole.
    pub body: Vec<u8>,
    /// Its `Retry-After`, if any.
    pub retry_after: Option<String>,
}

/// Gatehouse could not be asked.
pub fn unavailable(what: &str) -> Problem {
    eprintln!("gatehouse: {what}: Gatehouse did not answer");
    Problem::new(ErrorCode::Unavailable)
        .detail("the credential could not be checked now; retry later")
        .header("retry-after", "1")
}

/// `method url` with an optional bearer credential, extra headers and JSON body.
pub async fn call(
    method: http::Method,
    url: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    json: Option<&serde_json::Value>,
    what: &str,
) -> Result<Answer, Problem> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(url)
        .header("accept", "application/json");
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = match json {
        Some(value) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(value.to_string())
        }
        None => Bytes::new(),
    };
    let mut req = builder
        .body(FullBody::new(body))
        .map_err(|_| unavailable(what))?;
    req.extensions_mut().insert(timeouts());
    let res = spin_sdk::http::send(req).await.map_err(|e| {
        eprintln!("gatehouse: {what} failed: {e:?}");
        unavailable(what)
    })?;
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = Limited::new(res.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| unavailable(what))?
        .to_bytes()
        .to_vec();
    Ok(Answer {
        status,
        body,
        retry_after,
    })
}
