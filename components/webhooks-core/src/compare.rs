//! HMAC tags and the constant-time comparisons every provider goes through.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// HMAC-SHA256 of the concatenation of `parts` under `key`. `None` cannot
/// happen for HMAC (any key length is valid), but is kept apart from a tag
/// so that no fallback value could ever be compared.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 32]> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    for part in parts {
        mac.update(part);
    }
    Some(mac.finalize().into_bytes().into())
}

/// Whether any provided signature equals any expected tag. Every pair is
/// compared in constant time and none ends the loop early, so the time
/// taken says nothing about which secret or which signature matched, nor
/// how many leading bytes of a forgery were right.
pub(crate) fn any_equal(expected: &[[u8; 32]], provided: &[Vec<u8>]) -> bool {
    let mut found = Choice::from(0);
    for tag in expected {
        for candidate in provided {
            found |= tag.as_slice().ct_eq(candidate.as_slice());
        }
    }
    found.into()
}

/// Constant-time equality of a sent credential and a configured one. Both
/// are hashed first so that neither the length of the configured value nor
/// a common prefix shows in the time taken.
pub(crate) fn credential_equal(sent: &[u8], configured: &[u8]) -> bool {
    Sha256::digest(sent)
        .ct_eq(&Sha256::digest(configured))
        .into()
}

/// `sha256:` + hex of the body's SHA-256: the dedupe id of last resort.
pub(crate) fn body_digest(body: &[u8]) -> String {
    format!("sha256:{}", body_sha256(body))
}

/// Hex of the body's SHA-256.
pub(crate) fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}
