//! One POST to an endpoint, given at most [`TIMEOUT`] from the first byte
//! sent to the answer's status and headers (Standard Webhooks' 15 s): a
//! receiver is expected to answer fast and do its work later. The status
//! decides; the body is read (to free the connection) for at most
//! [`DRAIN`] more, and whatever happens while reading it is ignored.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use spin_sdk::http::FullBody;
use spin_sdk::wasip3::http::types::RequestOptions;
use spin_sdk::wasip3::http_compat::RequestOptionsExtension;

use crate::outcome::Answer;

/// The limit until the answer's status.
const TIMEOUT: Duration = Duration::from_secs(crate::ANSWER_SECONDS);

/// The limit for reading an answer's body once its status came.
const DRAIN: Duration = Duration::from_secs(crate::DRAIN_SECONDS);

/// The most of an answer's body read; the rest is left unread. Receivers
/// owe no body, and none is kept.
const ANSWER_LIMIT: usize = 64 * 1024;

/// Each phase's limit in nanoseconds, for a host that enforces them even
/// without the overall deadline below.
const PHASE_TIMEOUT_NS: u64 = 15_000_000_000;

fn options() -> RequestOptionsExtension {
    let options = RequestOptions::new();
    // A host that does not support one keeps its own default.
    let _ = options.set_connect_timeout(Some(PHASE_TIMEOUT_NS));
    let _ = options.set_first_byte_timeout(Some(PHASE_TIMEOUT_NS));
    let _ = options.set_between_bytes_timeout(Some(PHASE_TIMEOUT_NS));
    RequestOptionsExtension(options)
}

/// POSTs `body` with `headers` to `url`: the answer's status, or why there
/// was none.
pub async fn post(url: &str, headers: &[(&'static str, String)], body: Vec<u8>) -> Answer {
    let res = match within(TIMEOUT, send(url, headers, body)).await {
        Some(Ok(res)) => res,
        Some(Err(why)) => return Answer::Unreachable(why),
        None => {
            return Answer::Unreachable(format!("no answer within {} s", TIMEOUT.as_secs()));
        }
    };
    let status = res.status().as_u16();
    // Reading the answer frees the connection; what it says is not kept,
    // and one that trickles or breaks off changes nothing.
    let _ = within(DRAIN, Limited::new(res.into_body(), ANSWER_LIMIT).collect()).await;
    Answer::Status(status)
}

async fn send(
    url: &str,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> Result<spin_sdk::http::Response, String> {
    let mut req = http::Request::post(url);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let mut req = req
        .body(FullBody::new(Bytes::from(body)))
        .map_err(|_| "the request could not be built".to_string())?;
    req.extensions_mut().insert(options());
    spin_sdk::http::send(req)
        .await
        .map_err(|code| gatehouse_http::outbound::failure(&code))
}

/// `work`'s output, or none when `limit` passes first (`work` is then
/// dropped, which cancels what it was waiting on).
async fn within<F: Future>(limit: Duration, work: F) -> Option<F::Output> {
    let mut work = pin!(work);
    let mut timer = pin!(spin_sdk::time::sleep(limit));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
