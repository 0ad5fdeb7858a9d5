//! One exchange with the org's provider: the body posted to its
//! chat-completions URL with the API key as the Bearer, within the
//! settings' timeout. The key goes in the header only; an answer that
//! quotes it has it redacted before anyone stores or sees it.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Limited};
use serde_json::Value;
use spin_sdk::http::FullBody;

use crate::execute::{options, within};
use crate::redact;

/// The most of an answer read.
pub const ANSWER_MAX: usize = 4 * 1024 * 1024;

/// How an exchange went: the status and body when one came.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The provider's status; none when no answer came.
    pub status: Option<u16>,
    /// Its body (JSON, or its text as a string); none when none came.
    pub response: Option<Value>,
    /// How long it took.
    pub latency_ms: i64,
    /// Why it failed, as a run's stop reason; none for a 2xx.
    pub failure: Option<&'static str>,
}

/// The stop reason of a provider's error status.
pub fn failure_of(status: u16) -> Option<&'static str> {
    match status {
        200..=299 => None,
        401 | 403 => Some("provider_unauthorized"),
        429 => Some("provider_rate_limited"),
        500..=599 => Some("provider_error"),
        _ => Some("provider_rejected"),
    }
}

/// Posts `body` to `url` with `api_key`, waiting at most `timeout_ms`.
pub async fn complete(url: &str, api_key: &str, body: &Value, timeout_ms: i64) -> Exchange {
    let limit = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(1));
    let started = Instant::now();
    let outcome = within(limit, send(url, api_key, body, limit)).await;
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let secrets = [api_key.to_string()];
    match outcome {
        None => Exchange {
            status: None,
            response: None,
            latency_ms,
            failure: Some("provider_timeout"),
        },
        Some(Err(reason)) => Exchange {
            status: None,
            response: None,
            latency_ms,
            failure: Some(reason),
        },
        Some(Ok((status, bytes))) => {
            let response = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            Exchange {
                status: Some(status),
                response: Some(redact::value(response, &secrets)),
                latency_ms,
                failure: failure_of(status),
            }
        }
    }
}

async fn send(
    url: &str,
    api_key: &str,
    body: &Value,
    limit: Duration,
) -> Result<(u16, bytes::Bytes), &'static str> {
    let mut req = http::Request::builder()
        .method("POST")
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::AUTHORIZATION, format!("Bearer {api_key}"))
        .body(FullBody::new(bytes::Bytes::from(body.to_string())))
        .map_err(|_| "provider_unreachable")?;
    // The host's own phase limits a little past the run's deadline, so a
    // slow provider is told as a timeout.
    req.extensions_mut()
        .insert(options(limit + Duration::from_millis(500)));
    let res = spin_sdk::http::send(req).await.map_err(|code| {
        eprintln!(
            "tools: the provider could not be reached ({})",
            gatehouse_http::outbound::failure(&code)
        );
        "provider_unreachable"
    })?;
    let status = res.status().as_u16();
    let bytes = Limited::new(res.into_body(), ANSWER_MAX)
        .collect()
        .await
        .map_err(|_| "provider_invalid_response")?
        .to_bytes();
    Ok((status, bytes))
}
