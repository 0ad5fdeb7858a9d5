//! Accepted webhook deliveries handed to the deployment's handlers
//! (`webhook_handlers`, see [`webhooks_core::parse_handlers`]) by
//! background jobs: one job of kind [`DISPATCH_JOB`] per event and
//! handler, queued in the transaction that stores the event, so a stored
//! event is never left without its deliveries.
//!
//! A job POSTs the event to the handler as JSON ([`envelope`]), signed as
//! Standard Webhooks with the `webhook_handler_secret` variable (the
//! event id as `webhook-id`), so the handler knows it comes from here and
//! can deduplicate: delivery is at least once. A `2xx` answer is done; any
//! other answer, or none, is retried with the jobs' backoff, and the last
//! failed attempt leaves the job (and the event) dead until an admin
//! replays it. The event's status follows: `pending` while handler jobs
//! are queued, `dispatched` once every one is done, `failed` while one is
//! retrying, `dead` when one gave up.

#![deny(missing_docs)]

use serde_json::{Value, json};

#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(target_arch = "wasm32")]
pub use store::{handler_urls, handlers, queue, run_job};

/// The jobs' kind.
pub const DISPATCH_JOB: &str = "webhook.dispatch";

/// The payload of a dispatch job: the event and the handler's URL (which
/// operators see with the job, like every payload).
pub fn job_payload(event_id: &str, url: &str) -> Value {
    json!({"event_id": event_id, "url": url})
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
/// JSON value when it is JSON, else as text.
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
}
