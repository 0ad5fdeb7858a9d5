//! Outgoing deliveries signed as Standard Webhooks: the caller sends
//! `webhook-id: {id}`, `webhook-timestamp: {timestamp}` and
//! `webhook-signature:` [`signature_header`] with the body, unchanged.
//!
//! `id` should stay the same across retries of one delivery (receivers
//! deduplicate on it) and, like the timestamp, must not contain `.`, which
//! separates the signed parts; Gatehouse's ids never do.

use crate::compare::hmac_sha256;
use crate::keys::{SigningKey, SigningSecret};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// One key an outgoing delivery is signed with.
#[derive(Debug, Clone)]
pub enum Signer {
    /// A shared secret: a `v1` signature.
    Hmac(SigningSecret),
    /// An Ed25519 key: a `v1a` signature.
    Ed25519(SigningKey),
}

fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    [
        id.as_bytes(),
        b".",
        timestamp.to_string().as_bytes(),
        b".",
        body,
    ]
    .concat()
}

/// `v1,{base64}`: HMAC-SHA256 of `{id}.{timestamp}.{body}` under `secret`.
pub fn sign_v1(id: &str, timestamp: i64, body: &[u8], secret: &SigningSecret) -> String {
    let content = signed_content(id, timestamp, body);
    // HMAC accepts any key length, so a tag is always produced.
    let tag = hmac_sha256(secret.bytes(), &[&content]).unwrap_or_default();
    format!("v1,{}", STANDARD.encode(tag))
}

/// `v1a,{base64}`: the Ed25519 signature of `{id}.{timestamp}.{body}`.
pub fn sign_v1a(id: &str, timestamp: i64, body: &[u8], key: &SigningKey) -> String {
    let signature = key.sign(&signed_content(id, timestamp, body));
    format!("v1a,{}", STANDARD.encode(signature))
}

/// The `webhook-signature` value: one signature per signer, separated by
/// spaces. During a rotation pass the new and the old secret, so receivers
/// that still hold the old one keep verifying.
pub fn signature_header(id: &str, timestamp: i64, body: &[u8], signers: &[Signer]) -> String {
    signers
        .iter()
        .map(|signer| match signer {
            Signer::Hmac(secret) => sign_v1(id, timestamp, body, secret),
            Signer::Ed25519(key) => sign_v1a(id, timestamp, body, key),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
