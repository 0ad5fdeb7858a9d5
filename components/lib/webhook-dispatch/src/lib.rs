//! Accepted webhook deliveries handed to the deployment's handlers
//! (`webhook_handlers`, see [`webhooks_core::parse_handlers`]) by
//! background jobs: one job of kind [`DISPATCH_JOB`] per event and
//! handler, queued in the transaction that stores the event, so a stored
//! event is never left without its deliveries.
//!
//! A job POSTs the event to the handler as JSON ([`envelope`]), signed as
//! Standard Webhooks with the `webhook_handler_secret` variable (checked
//! by [`handler_secret`]), so the handler knows it comes from here and can
//! deduplicate on `webhook-id`: delivery is at least once. The jobs queued
//! with the event send the event id as `webhook-id`; an admin's replay is
//! a new message, sent with the replay's own id ([`webhook_id`]), which a
//! deduplicating handler takes as new. A `2xx` answer is done; any other
//! answer, or none, is retried with the jobs' backoff, and the last failed
//! attempt leaves the job (and the event) dead until an admin replays it.
//!
//! The event's status is read off its current round of jobs (the first
//! one, or the latest replay's) each time one of them ends, is reaped or
//! is queued ([`progress`]): `pending` while they are queued, `failed`
//! while one is retrying, `dead` when one gave up, `dispatched` once every
//! one is done.

#![deny(missing_docs)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use webhooks_core::SigningSecret;

#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(target_arch = "wasm32")]
pub use store::{handler_urls, handlers, queue, reaped, run_job};

/// The jobs' kind.
pub const DISPATCH_JOB: &str = "webhook.dispatch";

/// The round of the jobs queued with an event; a replay's round is the
/// replay's id.
pub const FIRST_ROUND: &str = "0";

/// The `webhook-id` the jobs of `round` send for `event_id`: the event's
/// id for the first round, the replay's id for a replay, so that a handler
/// deduplicating on it drops a retry of the same message and takes a
/// replay.
pub fn webhook_id<'a>(event_id: &'a str, round: &'a str) -> &'a str {
    if round == FIRST_ROUND {
        event_id
    } else {
        round
    }
}

/// The idempotency key of the job handing `event_id` to `url` in `round`:
/// the same event, handler and round is one job.
pub fn job_key(event_id: &str, round: &str, url: &str) -> String {
    format!("{event_id} {round} {url}")
}

/// The range `[start, end)` holding the keys of every job of `round` for
/// `event_id`: those starting with `"{event_id} {round} "` (`!` is the
/// byte after the space), so the jobs' unique index finds them.
pub fn round_keys(event_id: &str, round: &str) -> (String, String) {
    (
        format!("{event_id} {round} "),
        format!("{event_id} {round}!"),
    )
}

/// The payload of a dispatch job: the event, the handler's URL (which
/// operators see with the job, like every payload) and the `webhook-id`
/// it is sent with.
pub fn job_payload(event_id: &str, url: &str, webhook_id: &str) -> Value {
    json!({"event_id": event_id, "url": url, "webhook_id": webhook_id})
}

/// The secret handler deliveries are signed with, from the
/// `webhook_handler_secret` variable: `whsec_` and base64 (or the bare
/// base64) of 24 to 64 bytes. Anything else is refused with a message that
/// says what is wrong and never shows the value: a short secret could be
/// guessed and deliveries forged.
pub fn handler_secret(variable: &str) -> Result<SigningSecret, String> {
    let text = variable.trim();
    if text.is_empty() {
        return Err("the webhook_handler_secret variable is not set".into());
    }
    SigningSecret::parse_for_signing(text).map_err(|e| {
        format!(
            "the webhook_handler_secret variable is not a whsec_ secret of 24 to 64 bytes ({e})"
        )
    })
}

/// A handler job as the event's status reads it.
#[derive(Debug, Clone, Copy)]
pub struct JobState<'a> {
    /// `pending`, `running`, `done` or `dead`.
    pub state: &'a str,
    /// Its last failed attempt's error, if any.
    pub last_error: Option<&'a str>,
}

/// Where the handing on of an event stands, as stored on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// `pending`, `failed`, `dead` or `dispatched`.
    pub status: &'static str,
    /// Jobs not yet done nor dead.
    pub handlers_pending: i64,
    /// Why, when failed or dead.
    pub last_error: Option<String>,
}

/// The event's status from the jobs of its current round, least recently
/// changed first; `None` without any. Dead when one is dead (it waits for
/// a replay), else failed while one that failed will try again, else
/// pending while one waits, else dispatched. Only the current round
/// counts: a replay is judged by its own jobs, not by what the round
/// before it left behind.
pub fn progress(jobs: &[JobState<'_>]) -> Option<Progress> {
    if jobs.is_empty() {
        return None;
    }
    let open = |j: &&JobState<'_>| j.state == "pending" || j.state == "running";
    let handlers_pending = jobs.iter().filter(open).count() as i64;
    // Found, with its error if it has one (a reaped job has none: NULL,
    // not an empty text).
    let last = |pick: &dyn Fn(&JobState<'_>) -> bool| {
        jobs.iter()
            .rev()
            .find(|j| pick(j))
            .map(|j| j.last_error.map(str::to_owned))
    };
    let (status, last_error) = if let Some(error) = last(&|j| j.state == "dead") {
        ("dead", error)
    } else if let Some(error) = last(&|j| open(&j) && j.last_error.is_some()) {
        ("failed", error)
    } else if handlers_pending > 0 {
        ("pending", None)
    } else {
        ("dispatched", None)
    };
    Some(Progress {
        status,
        handlers_pending,
        last_error,
    })
}

/// A stored event as a handler receives it.
pub struct Stored<'a> {
    /// `whe_…`.
    pub id: &'a str,
    /// The org whose source received it.
    pub org_id: &'a str,
    /// `whs_…`.
    pub source_id: &'a str,
    /// The provider's name.
    pub provider: &'a str,
    /// The provider's event type, if it states one.
    pub event_type: Option<&'a str>,
    /// The provider's delivery or event id.
    pub delivery_id: &'a str,
    /// When it was received (unix seconds).
    pub received_at: i64,
    /// The timestamp its signature covered, if any.
    pub signed_at: Option<i64>,
    /// Its `Content-Type`.
    pub content_type: Option<&'a str>,
    /// The body as received.
    pub payload: &'a [u8],
}

/// The JSON a handler receives: the event's facts and its body, as its
/// JSON value when it is JSON, else as text, and also as the exact bytes
/// received (`body_base64`), which a JSON value re-serialized does not
/// keep (spacing, key order, bytes that are not UTF-8). The provider's
/// signature headers are not stored nor sent, so the handler trusts the
/// event by this message's own signature, not by re-checking the
/// provider's.
pub fn envelope(event: &Stored<'_>) -> Value {
    let payload = serde_json::from_slice(event.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(event.payload).into_owned()));
    json!({
        "id": event.id,
        "org_id": event.org_id,
        "source_id": event.source_id,
        "provider": event.provider,
        "event_type": event.event_type,
        "delivery_id": event.delivery_id,
        "received_at": event.received_at,
        "signed_at": event.signed_at,
        "content_type": event.content_type,
        "payload": payload,
        "body_base64": STANDARD.encode(event.payload),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_carries_the_body_as_json_or_as_text() {
        let mut event = Stored {
            id: "whe_1",
            org_id: "org_1",
            source_id: "whs_1",
            provider: "github",
            event_type: Some("push"),
            delivery_id: "d-1",
            received_at: 10,
            signed_at: None,
            content_type: Some("application/json"),
            payload: br#"{"ref": "main"}"#,
        };
        let e = envelope(&event);
        assert_eq!(e["payload"]["ref"], "main");
        assert_eq!(e["event_type"], "push");
        assert_eq!(e["signed_at"], Value::Null);
        event.payload = b"payload=%7B%7D";
        assert_eq!(envelope(&event)["payload"], "payload=%7B%7D");
    }

    #[test]
    fn the_envelope_carries_the_body_exactly_as_received_in_base64() -> Result<(), String> {
        // Spacing and key order a JSON value does not keep, and bytes
        // that are not UTF-8.
        let bodies: [&[u8]; 3] = [br#"{"b": 1,  "a": "Zo\u00eb"}"#, b"\xff\xfe not text", b""];
        for body in bodies {
            let event = Stored {
                id: "whe_1",
                org_id: "org_1",
                source_id: "whs_1",
                provider: "github",
                event_type: None,
                delivery_id: "d-1",
                received_at: 10,
                signed_at: None,
                content_type: None,
                payload: body,
            };
            let e = envelope(&event);
            let text = e["body_base64"].as_str().ok_or("body_base64 is text")?;
            assert_eq!(STANDARD.decode(text).map_err(|e| e.to_string())?, body);
        }
        Ok(())
    }

    #[test]
    fn a_replay_is_sent_with_its_own_webhook_id_and_the_first_round_with_the_events() {
        assert_eq!(webhook_id("whe_1", FIRST_ROUND), "whe_1");
        assert_eq!(webhook_id("whe_1", "whr_2"), "whr_2");
        assert_eq!(
            job_payload("whe_1", "http://h/", "whr_2"),
            json!({"event_id": "whe_1", "url": "http://h/", "webhook_id": "whr_2"})
        );
    }

    #[test]
    fn a_rounds_key_range_holds_its_own_jobs_keys_and_no_other_rounds() {
        let (start, end) = round_keys("whe_1", "0");
        let inside = |key: &str| start.as_str() <= key && key < end.as_str();
        assert!(inside(&job_key("whe_1", "0", "http://a/")));
        assert!(inside(&job_key("whe_1", "0", "")));
        for other in [
            job_key("whe_1", "00", "http://a/"),
            job_key("whe_1", "whr_2", "http://a/"),
            job_key("whe_10", "0", "http://a/"),
            job_key("whe_0", "0", "http://a/"),
            "whe_1 0".to_string(),
        ] {
            assert!(!inside(&other), "{other}");
        }
    }

    fn job<'a>(state: &'a str, last_error: Option<&'a str>) -> JobState<'a> {
        JobState { state, last_error }
    }

    fn status(jobs: &[JobState<'_>]) -> Option<(&'static str, i64, Option<String>)> {
        progress(jobs).map(|p| (p.status, p.handlers_pending, p.last_error))
    }

    #[test]
    fn the_status_is_read_off_the_rounds_jobs() {
        assert_eq!(status(&[]), None);
        let queued = [job("pending", None), job("running", None)];
        assert_eq!(status(&queued), Some(("pending", 2, None)));
        let one_done = [job("done", None), job("pending", None)];
        assert_eq!(status(&one_done), Some(("pending", 1, None)));
        let retrying = [
            job("done", None),
            job("pending", Some("the handler answered 500")),
        ];
        assert_eq!(
            status(&retrying),
            Some(("failed", 1, Some("the handler answered 500".into())))
        );
        // A retry under way after a failure is still failed.
        let again = [job("running", Some("unreachable"))];
        assert_eq!(
            status(&again),
            Some(("failed", 1, Some("unreachable".into())))
        );
        // Failed, then succeeded: nothing stale is left once all are done.
        let recovered = [
            job("done", None),
            job("done", Some("the handler answered 502")),
        ];
        assert_eq!(status(&recovered), Some(("dispatched", 0, None)));
        // A dead one outweighs one retrying, and says why it died.
        let dead = [
            job("pending", Some("the handler answered 503")),
            job("dead", Some("the handler answered 500")),
            job("done", None),
        ];
        assert_eq!(
            status(&dead),
            Some(("dead", 1, Some("the handler answered 500".into())))
        );
        // The most recently changed error is the one shown.
        let two = [job("dead", Some("first")), job("dead", Some("second"))];
        assert_eq!(status(&two), Some(("dead", 0, Some("second".into()))));
        let reaped = [job("dead", None)];
        assert_eq!(status(&reaped), Some(("dead", 0, None)));
    }

    #[test]
    fn the_handler_secret_is_a_whsec_secret_of_24_to_64_bytes() {
        for len in [24, 32, 64] {
            let encoded = STANDARD.encode(vec![3u8; len]);
            for text in [
                format!("whsec_{encoded}"),
                encoded.clone(),
                format!(" whsec_{encoded}\n"),
            ] {
                assert!(handler_secret(&text).is_ok(), "{len} {text:?}");
            }
        }
        let short = format!("whsec_{}", STANDARD.encode([3u8; 23]));
        let long = format!("whsec_{}", STANDARD.encode([3u8; 65]));
        for text in [
            "",
            "  ",
            "whsec_",
            "whsec_c2hvcnQ=",
            short.as_str(),
            long.as_str(),
            "whsec_not*base64",
            "a passphrase of plenty of characters",
        ] {
            let error = handler_secret(text).err().unwrap_or_default();
            assert!(
                error.contains("webhook_handler_secret"),
                "{text:?}: {error}"
            );
            // The message names the variable, never its value.
            if text.len() > 8 {
                assert!(!error.contains(text.trim()), "{error}");
            }
        }
    }
}
