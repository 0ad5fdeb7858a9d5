//! Stripe: `Stripe-Signature: t={unix},v1={hex}[,v1={hex}…]`, each `v1` an
//! HMAC-SHA256 of `{t}.{body}` keyed with the endpoint secret as written
//! (`whsec_…` included). Stripe sends several `v1` while an endpoint secret
//! is being rolled; other schemes (`v0`, test-mode only) are ignored.

use super::{raw_keys, tags};
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
        .header("stripe-signature")
        .ok_or(Rejection::MissingSignature)?;
    let (t, signatures) = parse(&header)?;
    let signed_at = timestamp(t)?;
    let expected = tags(&keys, &[t.as_bytes(), b".", body]);
    if !any_equal(&expected, &signatures) {
        return Err(Rejection::SignatureMismatch);
    }
    within_tolerance(Provider::Stripe, config, signed_at, now_unix)?;
    let event = json(body).ok_or(Rejection::BodyNotJson)?;
    Ok(verified(
        text_at(&event, "/id"),
        body,
        text_at(&event, "/type"),
        Some(signed_at),
    ))
}

/// The one `t` and the decoded `v1` signatures. A second `t` is refused
/// rather than guessed between; a `v1` that is not hex cannot match and is
/// dropped, but at least one must be left.
fn parse(header: &str) -> Result<(&str, Vec<Vec<u8>>), Rejection> {
    let mut t = None;
    let mut signatures = Vec::new();
    for (key, value) in header
        .split(',')
        .filter_map(|item| item.trim().split_once('='))
    {
        match key {
            "t" if t.is_some() => return Err(Rejection::MalformedSignature),
            "t" => t = Some(value),
            "v1" => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    match t {
        Some(t) if !signatures.is_empty() => Ok((t, signatures)),
        _ => Err(Rejection::MalformedSignature),
    }
}
