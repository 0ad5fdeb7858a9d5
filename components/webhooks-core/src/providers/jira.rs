//! Jira Cloud admin webhooks registered with a secret: `X-Hub-Signature:
//! sha256={hex}` (WebSub's format), an HMAC-SHA256 of the body keyed with
//! that secret. Webhooks registered without a secret are unsigned and so
//! refused here.

use super::{prefixed_hex, raw_keys, tags};
use crate::compare::any_equal;
use crate::verify::{json, text_at, verified};
use crate::{Headers, Rejection, Verified, VerifyConfig};

pub(crate) fn verify<H: Headers + ?Sized>(
    config: &VerifyConfig,
    headers: &H,
    body: &[u8],
) -> Result<Verified, Rejection> {
    let keys = raw_keys(config)?;
    let header = headers
        .header("x-hub-signature")
        .ok_or(Rejection::MissingSignature)?;
    let signature = prefixed_hex(&header, "sha256=")?;
    if !any_equal(&tags(&keys, &[body]), &[signature]) {
        return Err(Rejection::SignatureMismatch);
    }
    let event = json(body).ok_or(Rejection::BodyNotJson)?;
    let identifier = headers
        .header("x-atlassian-webhook-identifier")
        .map(|id| id.trim().to_owned());
    Ok(verified(
        identifier,
        body,
        text_at(&event, "/webhookEvent"),
        None,
    ))
}
