//! The entry point for incoming deliveries and what it returns.

use crate::compare::{body_digest, body_sha256};
use crate::providers;
use crate::{Headers, Provider, Rejection, VerifyConfig};
use serde_json::Value;

/// An authenticated delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// What to deduplicate on: the provider's own delivery or event id,
    /// which stays the same across its retries. Per provider:
    ///
    /// | provider | id | event type |
    /// | --- | --- | --- |
    /// | `stripe` | body `id` (the event id) | body `type` |
    /// | `github` | `X-GitHub-Delivery` | `X-GitHub-Event`, then `.` and body `action` when the JSON body has one (`pull_request.opened`) |
    /// | `standard` | `webhook-id` (required) | body `type` |
    /// | `jira` | `X-Atlassian-Webhook-Identifier` | body `webhookEvent` |
    /// | `teams` | body `id` (the activity id) | body `type` |
    /// | `azure_devops` | body `id` | body `eventType` |
    /// | `slack` | body `event_id` (Events API) | body `event.type`, else `type` |
    ///
    /// When the provider's id is absent it is `sha256:` + hex of the body's
    /// SHA-256 ([`IdSource::BodyDigest`]): a redelivery of the same bytes
    /// is still caught, at the cost of merging two distinct deliveries
    /// whose bodies are byte-for-byte equal.
    pub dedupe_id: String,
    /// Where `dedupe_id` came from.
    pub id_source: IdSource,
    /// The event type, when the provider states one (table above).
    pub event_type: Option<String>,
    /// The signed timestamp (Unix seconds) for providers that sign one.
    pub signed_at: Option<i64>,
}

/// The origin of [`Verified::dedupe_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    /// The provider's delivery or event id.
    Provider,
    /// A digest of the body, for lack of one.
    BodyDigest,
}

/// What keeps a captured delivery from being stored again under a new id,
/// for GitHub and Jira: hex of the body's SHA-256. Their delivery id is a
/// header the signature does not cover and they sign no time, so a signed
/// body stays valid for ever and a new id is not enough to tell a
/// redelivery from a replay; a source of theirs keeps each body once
/// (unless it turns that off: some bodies carry nothing unique). `None`
/// for every other provider: a signed timestamp bounds the replay
/// (Stripe, Standard, Slack) or the id deduplicated on is the body's own
/// `id` (Teams, Azure DevOps), so a digest would add nothing.
pub fn replay_digest(provider: Provider, body: &[u8]) -> Option<String> {
    matches!(provider, Provider::GitHub | Provider::Jira).then(|| body_sha256(body))
}

/// Verifies one delivery from `provider` against `config`, on `body` as
/// received (before any parsing: re-serialized JSON would not match), at
/// `now_unix` seconds. The signature is checked before the timestamp, so
/// `timestamp_out_of_tolerance` is only ever said of a genuine delivery.
pub fn verify<H: Headers + ?Sized>(
    provider: Provider,
    config: &VerifyConfig,
    headers: &H,
    body: &[u8],
    now_unix: i64,
) -> Result<Verified, Rejection> {
    match provider {
        Provider::Stripe => providers::stripe::verify(config, headers, body, now_unix),
        Provider::GitHub => providers::github::verify(config, headers, body),
        Provider::Standard => providers::standard::verify(config, headers, body, now_unix),
        Provider::Jira => providers::jira::verify(config, headers, body),
        Provider::Teams => providers::teams::verify(config, headers, body),
        Provider::AzureDevOps => providers::azure_devops::verify(config, headers, body),
        Provider::Slack => providers::slack::verify(config, headers, body, now_unix),
    }
}

/// A signed timestamp: ASCII digits only (no sign, no fraction, no spaces),
/// as every provider here sends it, so the text signed is the text read.
pub(crate) fn timestamp(text: &str) -> Result<i64, Rejection> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::MalformedTimestamp);
    }
    text.parse().map_err(|_| Rejection::MalformedTimestamp)
}

/// Refuses a timestamp further than the tolerance from now, either way:
/// one from the future is as replayable as a stale one.
pub(crate) fn within_tolerance(
    provider: Provider,
    config: &VerifyConfig,
    signed_at: i64,
    now_unix: i64,
) -> Result<(), Rejection> {
    let tolerance = config
        .tolerance_secs
        .or(provider.default_tolerance_secs())
        .unwrap_or(300);
    if now_unix.abs_diff(signed_at) > tolerance {
        return Err(Rejection::TimestampOutOfTolerance);
    }
    Ok(())
}

/// The body as JSON, if it is.
pub(crate) fn json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// A non-empty string at `pointer` (RFC 6901) in `value`.
pub(crate) fn text_at(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A verified delivery whose id is `id`, or the body's digest without one.
pub(crate) fn verified(
    id: Option<String>,
    body: &[u8],
    event_type: Option<String>,
    signed_at: Option<i64>,
) -> Verified {
    let (dedupe_id, id_source) = match id.filter(|id| !id.is_empty()) {
        Some(id) => (id, IdSource::Provider),
        None => (body_digest(body), IdSource::BodyDigest),
    };
    Verified {
        dedupe_id,
        id_source,
        event_type,
        signed_at,
    }
}
