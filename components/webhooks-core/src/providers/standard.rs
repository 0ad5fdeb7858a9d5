//! Standard Webhooks: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature`, a space-separated list of `v1,{base64}` (HMAC-SHA256
//! keyed with the decoded `whsec_` secret) and `v1a,{base64}` (Ed25519,
//! checked with `whpk_` public keys), each over `{id}.{timestamp}.{body}`.
//! Senders list several signatures while rotating; unknown versions are
//! skipped so that a newer scheme beside a known one still verifies.

use super::tags;
use crate::compare::any_equal;
use crate::keys::{PublicKey, SigningKey, SigningSecret};
use crate::verify::{json, text_at, timestamp, verified, within_tolerance};
use crate::{Headers, Provider, Rejection, Verified, VerifyConfig};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The most signatures one header may list. A sender lists one per active
/// key, so a handful at most; the cap bounds the Ed25519 checks (each costs
/// far more than an HMAC) that one request can make the receiver do.
const MAX_SIGNATURES: usize = 16;

pub(crate) fn verify<H: Headers + ?Sized>(
    config: &VerifyConfig,
    headers: &H,
    body: &[u8],
    now_unix: i64,
) -> Result<Verified, Rejection> {
    let (secrets, public_keys) = keys(config);
    if secrets.is_empty() && public_keys.is_empty() {
        return Err(Rejection::NotConfigured);
    }
    let header = headers
        .header("webhook-signature")
        .ok_or(Rejection::MissingSignature)?;
    let id = headers
        .header("webhook-id")
        .filter(|id| !id.is_empty())
        .ok_or(Rejection::MissingHeader("webhook-id"))?;
    let sent_at = headers
        .header("webhook-timestamp")
        .ok_or(Rejection::MissingHeader("webhook-timestamp"))?;
    let signed_at = timestamp(&sent_at)?;
    let (hmacs, ed25519s) = signatures(&header);
    let listed = hmacs.len() + ed25519s.len();
    if listed == 0 || listed > MAX_SIGNATURES {
        return Err(Rejection::MalformedSignature);
    }
    let message = [id.as_bytes(), b".", sent_at.as_bytes(), b".", body].concat();
    let secret_bytes: Vec<&[u8]> = secrets.iter().map(SigningSecret::bytes).collect();
    let by_secret = any_equal(&tags(&secret_bytes, &[&message]), &hmacs);
    // Public keys and signatures are not secret: plain iteration is fine.
    let by_key = public_keys
        .iter()
        .any(|key| ed25519s.iter().any(|sig| key.verifies(&message, sig)));
    if !(by_secret || by_key) {
        return Err(Rejection::SignatureMismatch);
    }
    within_tolerance(Provider::Standard, config, signed_at, now_unix)?;
    let event_type = json(body).and_then(|b| text_at(&b, "/type"));
    Ok(verified(
        Some(id.into_owned()),
        body,
        event_type,
        Some(signed_at),
    ))
}

/// The usable HMAC secrets and public keys; private keys (`whsk_`) and
/// entries that do not decode are skipped (`VerifyConfig::check` names them).
fn keys(config: &VerifyConfig) -> (Vec<SigningSecret>, Vec<PublicKey>) {
    let mut secrets = Vec::new();
    let mut public_keys = Vec::new();
    for entry in &config.secrets {
        if entry.starts_with(PublicKey::PREFIX) {
            public_keys.extend(PublicKey::parse(entry).ok());
        } else if !entry.starts_with(SigningKey::PREFIX) {
            secrets.extend(SigningSecret::parse(entry).ok());
        }
    }
    (secrets, public_keys)
}

/// The decoded `v1` and `v1a` signatures of the header.
fn signatures(header: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut hmacs = Vec::new();
    let mut ed25519s = Vec::new();
    for entry in header.split_ascii_whitespace() {
        let decoded = |b64: &str| STANDARD.decode(b64).ok();
        match entry.split_once(',') {
            Some(("v1", b64)) => hmacs.extend(decoded(b64)),
            Some(("v1a", b64)) => ed25519s.extend(decoded(b64)),
            _ => {}
        }
    }
    (hmacs, ed25519s)
}
