//! One module per provider; each turns the provider's documented scheme
//! into calls of the shared helpers below.

pub(crate) mod azure_devops;
pub(crate) mod github;
pub(crate) mod jira;
pub(crate) mod slack;
pub(crate) mod standard;
pub(crate) mod stripe;
pub(crate) mod teams;

use crate::compare::hmac_sha256;
use crate::{Rejection, VerifyConfig};

/// The configured secrets used as HMAC keys byte for byte (Stripe, GitHub,
/// Jira, Slack); `not_configured` when there is none.
fn raw_keys(config: &VerifyConfig) -> Result<Vec<&[u8]>, Rejection> {
    let keys: Vec<&[u8]> = config
        .secrets
        .iter()
        .map(String::as_bytes)
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(Rejection::NotConfigured);
    }
    Ok(keys)
}

/// The HMAC-SHA256 tag of `parts` under each key.
fn tags<K: AsRef<[u8]>>(keys: &[K], parts: &[&[u8]]) -> Vec<[u8; 32]> {
    keys.iter()
        .filter_map(|k| hmac_sha256(k.as_ref(), parts))
        .collect()
}

/// The bytes of a `{prefix}{hex}` signature (`sha256=…`, `v0=…`).
fn prefixed_hex(value: &str, prefix: &str) -> Result<Vec<u8>, Rejection> {
    let digits = value
        .trim()
        .strip_prefix(prefix)
        .ok_or(Rejection::MalformedSignature)?;
    match hex::decode(digits) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        _ => Err(Rejection::MalformedSignature),
    }
}

/// Checks `header` (`sha256={hex}`, an HMAC-SHA256 of the whole body with
/// one of the configured secrets), as GitHub and Jira Cloud sign.
fn hub_signature<H: crate::Headers + ?Sized>(
    config: &VerifyConfig,
    headers: &H,
    header: &str,
    body: &[u8],
) -> Result<(), Rejection> {
    let keys = raw_keys(config)?;
    let value = headers.header(header).ok_or(Rejection::MissingSignature)?;
    let signature = prefixed_hex(&value, "sha256=")?;
    if crate::compare::any_equal(&tags(&keys, &[body]), &[signature]) {
        Ok(())
    } else {
        Err(Rejection::SignatureMismatch)
    }
}
