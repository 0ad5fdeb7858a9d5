//! Opaque bearer tokens (sessions, email verification, password reset).
//!
//! A token is a recognisable prefix and 256 random bits in base64url; only
//! its SHA-256 digest is stored, so a database leak yields no usable token.
//! High-entropy tokens need no slow hash: guessing 2^256 is the defence.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A newly issued token: the secret for the client, the digest to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Given to the client once, never stored.
    pub secret: String,
    /// SHA-256 of the secret, hex; what the database keeps.
    pub digest: String,
}

/// Issues a token with `prefix` (e.g. `ghs_` for sessions).
pub fn issue(prefix: &str) -> Issued {
    let secret = format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(crate::random::bytes::<32>())
    );
    let digest = digest(&secret);
    Issued { secret, digest }
}

/// The stored form of a presented token.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether a presented token has the expected prefix and shape (cheap
/// rejection before any lookup).
pub fn well_formed(secret: &str, prefix: &str) -> bool {
    secret.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Compares two digests in constant time.
pub fn digests_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_are_prefixed_unique_and_stored_as_digests() {
        let a = issue("ghs_");
        let b = issue("ghs_");
        assert_ne!(a.secret, b.secret);
        assert!(well_formed(&a.secret, "ghs_"));
        assert_eq!(a.digest, digest(&a.secret));
        assert_eq!(a.digest.len(), 64);
        assert!(!a.digest.contains(&a.secret[4..]));
    }

    #[test]
    fn malformed_tokens_are_rejected_without_lookup() {
        assert!(!well_formed("ghs_short", "ghs_"));
        assert!(!well_formed(&issue("gvt_").secret, "ghs_"));
        assert!(!well_formed(&format!("ghs_{}", "!".repeat(43)), "ghs_"));
    }

    #[test]
    fn digest_comparison_is_exact() {
        let d = digest("x");
        assert!(digests_equal(&d, &digest("x")));
        assert!(!digests_equal(&d, &digest("y")));
        assert!(!digests_equal(&d, &d[..10]));
    }
}
