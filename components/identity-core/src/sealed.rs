//! Secrets encrypted at rest: AES-256-GCM under a key derived (HKDF-SHA256)
//! from the deployment's master key for one purpose, bound to the row it
//! belongs to by associated data, so a sealed value copied into another
//! row or read with another purpose's key fails to open.
//!
//! A sealed value is text: `v1.` then base64url of the 96-bit random nonce
//! followed by the ciphertext and its tag.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use sha2::Sha256;

const VERSION: &str = "v1.";
const NONCE_LEN: usize = 12;

/// Why a master key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Not base64 (standard or URL-safe) of exactly 32 bytes.
    Malformed,
}

/// A key for one purpose, derived from the master key.
pub struct SealingKey(Aes256Gcm);

impl SealingKey {
    /// Derives the key for `purpose` (e.g. `totp`) from a master key given
    /// as base64 of 32 random bytes.
    pub fn derive(master_base64: &str, purpose: &str) -> Result<SealingKey, KeyError> {
        let text = master_base64.trim();
        let master = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| KeyError::Malformed)?;
        if master.len() != 32 {
            return Err(KeyError::Malformed);
        }
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"gatehouse sealed v1"), &master)
            .expand(purpose.as_bytes(), &mut key)
            .map_err(|_| KeyError::Malformed)?;
        Ok(SealingKey(Aes256Gcm::new(&key.into())))
    }

    /// A key of its own (a per-tenant data key), not derived from the
    /// master key.
    pub fn from_bytes(key: &[u8; 32]) -> SealingKey {
        SealingKey(Aes256Gcm::new(key.into()))
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. the owning row's id).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let nonce = crate::random::bytes::<NONCE_LEN>();
        let sealed = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any message of sane length");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("{VERSION}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Decrypts a sealed value; `None` when it was altered, sealed under
    /// another key or purpose, or for another `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(VERSION)?).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn sealed_values_open_only_for_their_context_purpose_and_key() -> Result<(), KeyError> {
        let key = SealingKey::derive(MASTER, "totp")?;
        let sealed = key.seal(b"JBSWY3DPEHPK3PXP", "usr_1");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(
            key.open(&sealed, "usr_1").as_deref(),
            Some(&b"JBSWY3DPEHPK3PXP"[..])
        );
        assert_eq!(key.open(&sealed, "usr_2"), None, "bound to its row");
        let other_purpose = SealingKey::derive(MASTER, "oidc")?;
        assert_eq!(other_purpose.open(&sealed, "usr_1"), None);
        let other_master =
            SealingKey::derive("ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=", "totp")?;
        assert_eq!(other_master.open(&sealed, "usr_1"), None);
        Ok(())
    }

    #[test]
    fn altered_or_malformed_values_do_not_open() -> Result<(), KeyError> {
        let key = SealingKey::derive(MASTER, "totp")?;
        let sealed = key.seal(b"secret", "ctx");
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap_or_default();
        assert_eq!(key.open(&altered, "ctx"), None);
        for bad in ["", "v1.", "v2.AAAA", "v1.!!!!", "secret"] {
            assert_eq!(key.open(bad, "ctx"), None, "{bad}");
        }
        Ok(())
    }

    #[test]
    fn nonces_differ_between_seals() -> Result<(), KeyError> {
        let key = SealingKey::derive(MASTER, "totp")?;
        assert_ne!(key.seal(b"same", "ctx"), key.seal(b"same", "ctx"));
        Ok(())
    }

    #[test]
    fn master_keys_must_be_32_bytes_of_base64() {
        for bad in [
            "",
            "short",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
            "not base64 at all!!",
        ] {
            assert_eq!(
                SealingKey::derive(bad, "totp").err(),
                Some(KeyError::Malformed),
                "{bad}"
            );
        }
        let url_safe = URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert!(SealingKey::derive(&url_safe, "totp").is_ok());
    }
}
