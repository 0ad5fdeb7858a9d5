//! Unit tests: each provider's good, tampered, stale, rotated and malformed
//! deliveries, the shared comparisons, and outgoing signatures. Expected
//! signatures are computed here with the `hmac` crate directly, following
//! each provider's documented recipe; `tests/webhook_signatures.rs` checks
//! the same against the providers' own libraries.

mod azure_devops;
mod common;
mod github;
mod jira;
mod signing;
mod slack;
mod standard;
mod stripe;
mod teams;

use crate::{Provider, Rejection, Verified, VerifyConfig, verify};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The "current time" of every test, in Unix seconds.
const NOW: i64 = 1_700_000_000;

/// HMAC-SHA256 of the concatenated parts.
fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    hex::encode(hmac(key, parts))
}

fn hmac_b64(key: &[u8], parts: &[&[u8]]) -> String {
    STANDARD.encode(hmac(key, parts))
}

/// `verify` at [`NOW`] with owned header pairs.
fn check(
    provider: Provider,
    config: &VerifyConfig,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<Verified, Rejection> {
    verify(provider, config, headers, body, NOW)
}
