//! Microsoft Teams outgoing webhooks: `Authorization: HMAC {base64}`, the
//! base64 of an HMAC-SHA256 of the body keyed with the base64-decoded
//! security token Teams showed when the webhook was created. The body is a
//! Bot Framework activity; its `id` and `type` name the delivery.

use super::tags;
use crate::compare::any_equal;
use crate::verify::{json, text_at, verified};
use crate::{Headers, Rejection, Verified, VerifyConfig};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub(crate) fn verify<H: Headers + ?Sized>(
    config: &VerifyConfig,
    headers: &H,
    body: &[u8],
) -> Result<Verified, Rejection> {
    let keys: Vec<Vec<u8>> = config
        .secrets
        .iter()
        .filter_map(|token| STANDARD.decode(token).ok())
        .filter(|key| !key.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(Rejection::NotConfigured);
    }
    let header = headers
        .header("authorization")
        .ok_or(Rejection::MissingSignature)?;
    let signature = match header.trim().split_once(' ') {
        Some((scheme, value)) if scheme.eq_ignore_ascii_case("hmac") => STANDARD
            .decode(value.trim())
            .map_err(|_| Rejection::MalformedSignature)?,
        _ => return Err(Rejection::MalformedSignature),
    };
    if !any_equal(&tags(&keys, &[body]), &[signature]) {
        return Err(Rejection::SignatureMismatch);
    }
    let activity = json(body).ok_or(Rejection::BodyNotJson)?;
    Ok(verified(
        text_at(&activity, "/id"),
        body,
        text_at(&activity, "/type"),
        None,
    ))
}
