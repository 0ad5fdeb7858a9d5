//! GitHub: `X-Hub-Signature-256: sha256={hex}`, an HMAC-SHA256 of the body
//! keyed with the webhook secret. The legacy SHA-1 `X-Hub-Signature` is
//! not accepted. No timestamp is signed, so replays are stopped only by
//! deduplicating on `X-GitHub-Delivery`.

use super::hub_signature;
use crate::verify::{json, text_at, verified};
use crate::{Headers, Rejection, Verified, VerifyConfig};

pub(crate) fn verify<H: Headers + ?Sized>(
    config: &VerifyConfig,
    headers: &H,
    body: &[u8],
) -> Result<Verified, Rejection> {
    hub_signature(config, headers, "x-hub-signature-256", body)?;
    let event = headers
        .header("x-github-event")
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty());
    // A form-encoded delivery (`payload=…`) has no readable action; its
    // type is the event header alone.
    let action = json(body).and_then(|b| text_at(&b, "/action"));
    let event_type = match (event, action) {
        (Some(event), Some(action)) => Some(format!("{event}.{action}")),
        (event, _) => event,
    };
    let delivery = headers
        .header("x-github-delivery")
        .map(|d| d.trim().to_owned());
    Ok(verified(delivery, body, event_type, None))
}
