//! Jira Cloud admin webhooks registered with a secret: `X-Hub-Signature:
//! sha256={hex}` (WebSub's format), an HMAC-SHA256 of the body keyed with
//! that secret. Webhooks registered without a secret are unsigned and so
//! refused here.

use super::hub_signature;
use crate::verify::{json, text_at, verified};
use crate::{Headers, Rejection, Verified, VerifyConfig};

pub(crate) fn verify<H: Headers + ?Sized>(
    config: &VerifyConfig,
    headers: &H,
    body: &[u8],
) -> Result<Verified, Rejection> {
    hub_signature(config, headers, "x-hub-signature", body)?;
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
