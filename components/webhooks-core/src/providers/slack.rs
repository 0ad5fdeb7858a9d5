//! Slack: `X-Slack-Signature: v0={hex}`, an HMAC-SHA256 of
//! `v0:{X-Slack-Request-Timestamp}:{body}` keyed with the app's signing
//! secret. Bodies are JSON (Events API) or form-encoded (slash commands,
//! interactivity); only a JSON body yields an id and a type.

use super::{prefixed_hex, raw_keys, tags};
use crate::compare::any_equal;
use crate::verify::{json, text_at, timestamp, verified, within_tolerance};
use crate::{Headers, Provider, Rejection, Verified, VerifyConfig};

pub(crate) fn verify<H: Headers + ?Sized>(
    config: &VerifyConfig,
    headers: &H,
    body: &[u8],
    now_unix: i64,
) -> Result<Verified, Rejection> {
    let keys = raw_keys(config)?;
    let header = headers
        .header("x-slack-signature")
        .ok_or(Rejection::MissingSignature)?;
    let sent_at = headers
        .header("x-slack-request-timestamp")
        .ok_or(Rejection::MissingHeader("X-Slack-Request-Timestamp"))?;
    let signed_at = timestamp(&sent_at)?;
    let signature = prefixed_hex(&header, "v0=")?;
    let expected = tags(&keys, &[b"v0:", sent_at.as_bytes(), b":", body]);
    if !any_equal(&expected, &[signature]) {
        return Err(Rejection::SignatureMismatch);
    }
    within_tolerance(Provider::Slack, config, signed_at, now_unix)?;
    let (id, event_type) = match json(body) {
        Some(b) => (
            text_at(&b, "/event_id"),
            text_at(&b, "/event/type").or_else(|| text_at(&b, "/type")),
        ),
        None => (None, None),
    };
    Ok(verified(id, body, event_type, Some(signed_at)))
}
