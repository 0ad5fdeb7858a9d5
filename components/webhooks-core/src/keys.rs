//! Standard Webhooks key material in the specification's serialized forms:
//! `whsec_` + base64 of an HMAC secret, and for Ed25519 `whsk_` + base64 of
//! the secret key and `whpk_` + base64 of the 32-byte public key.
//!
//! The specification says only "base64 encoded" for the Ed25519 secret key.
//! Gatehouse writes the 32-byte seed (RFC 8032's private key) and also
//! reads the 64-byte form (seed followed by public key, as libsodium lays
//! it out), after checking that its two halves belong together.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _};
use std::fmt;

/// The smallest and largest HMAC secret the specification allows, in bytes.
const SECRET_LEN: std::ops::RangeInclusive<usize> = 24..=64;

/// Why a key string or key material was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The string lacks the prefix its kind of key must carry.
    WrongPrefix,
    /// The part after the prefix is not standard base64.
    NotBase64,
    /// The key has a length its kind of key cannot have.
    WrongLength,
    /// The bytes are not a valid Ed25519 key (or the halves of a 64-byte
    /// secret key do not match).
    InvalidKey,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::WrongPrefix => "the key does not start with its kind's prefix",
            KeyError::NotBase64 => "the key is not base64",
            KeyError::WrongLength => "the key has the wrong length",
            KeyError::InvalidKey => "the key is not a valid Ed25519 key",
        })
    }
}

impl std::error::Error for KeyError {}

fn decode_prefixed(text: &str, prefix: &str) -> Result<Vec<u8>, KeyError> {
    let encoded = text.strip_prefix(prefix).ok_or(KeyError::WrongPrefix)?;
    STANDARD.decode(encoded).map_err(|_| KeyError::NotBase64)
}

/// A shared HMAC-SHA256 secret for `v1` signatures (`whsec_…`).
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    /// The prefix of the serialized form.
    pub const PREFIX: &'static str = "whsec_";

    /// A new secret made of `random` itself, which must be 24 to 64 bytes
    /// from a cryptographically secure generator (32 is a good choice).
    pub fn from_random(random: &[u8]) -> Result<SigningSecret, KeyError> {
        if !SECRET_LEN.contains(&random.len()) {
            return Err(KeyError::WrongLength);
        }
        Ok(SigningSecret(random.to_vec()))
    }

    /// Reads a secret as senders hand it out: `whsec_` + base64, or the bare
    /// base64 (the Standard Webhooks libraries take both). Any non-empty
    /// length is read, since it is the sender who chose it.
    pub fn parse(text: &str) -> Result<SigningSecret, KeyError> {
        let encoded = text.strip_prefix(Self::PREFIX).unwrap_or(text);
        let bytes = STANDARD.decode(encoded).map_err(|_| KeyError::NotBase64)?;
        if bytes.is_empty() {
            return Err(KeyError::WrongLength);
        }
        Ok(SigningSecret(bytes))
    }

    /// Reads a secret this side signs with, as [`SigningSecret::parse`]
    /// does, but only one of 24 to 64 bytes (the specification's range for
    /// a generated secret): a shorter one is refused rather than signed
    /// with, since it is ours to choose and a short one can be guessed.
    pub fn parse_for_signing(text: &str) -> Result<SigningSecret, KeyError> {
        let secret = SigningSecret::parse(text)?;
        if !SECRET_LEN.contains(&secret.0.len()) {
            return Err(KeyError::WrongLength);
        }
        Ok(secret)
    }

    /// The serialized form, `whsec_` + base64: a secret, to be shown once
    /// and stored encrypted.
    pub fn to_whsec(&self) -> String {
        format!("{}{}", Self::PREFIX, STANDARD.encode(&self.0))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

/// An Ed25519 signing key for `v1a` signatures (`whsk_…`). Boxed so that a
/// [`crate::Signer`] stays small whichever key it holds.
#[derive(Clone)]
pub struct SigningKey(Box<ed25519_dalek::SigningKey>);

impl SigningKey {
    /// The prefix of the serialized form.
    pub const PREFIX: &'static str = "whsk_";

    /// The key whose RFC 8032 private key is `seed`: 32 bytes from a
    /// cryptographically secure generator.
    pub fn from_seed(seed: &[u8; 32]) -> SigningKey {
        SigningKey(Box::new(ed25519_dalek::SigningKey::from_bytes(seed)))
    }

    /// Reads `whsk_` + base64 of the 32-byte seed, or of the 64-byte seed
    /// followed by its public key.
    pub fn parse(text: &str) -> Result<SigningKey, KeyError> {
        let bytes = decode_prefixed(text, Self::PREFIX)?;
        let seed: [u8; 32] = bytes
            .get(..32)
            .and_then(|s| s.try_into().ok())
            .ok_or(KeyError::WrongLength)?;
        let key = SigningKey::from_seed(&seed);
        match bytes.len() {
            32 => Ok(key),
            64 if bytes[32..] == key.0.verifying_key().to_bytes() => Ok(key),
            64 => Err(KeyError::InvalidKey),
            _ => Err(KeyError::WrongLength),
        }
    }

    /// The serialized form, `whsk_` + base64 of the seed: a secret.
    pub fn to_whsk(&self) -> String {
        format!("{}{}", Self::PREFIX, STANDARD.encode(self.0.to_bytes()))
    }

    /// The public key receivers verify with.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// An Ed25519 public key that verifies `v1a` signatures (`whpk_…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// The prefix of the serialized form.
    pub const PREFIX: &'static str = "whpk_";

    /// Reads `whpk_` + base64 of the 32-byte public key.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let bytes: [u8; 32] = decode_prefixed(text, Self::PREFIX)?
            .try_into()
            .map_err(|_| KeyError::WrongLength)?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| KeyError::InvalidKey)
    }

    /// The serialized form, `whpk_` + base64: public, safe to show.
    pub fn to_whpk(&self) -> String {
        format!("{}{}", Self::PREFIX, STANDARD.encode(self.0.to_bytes()))
    }

    /// Whether `signature` is this key's signature of `message`; strict
    /// verification, so malleable and small-order forms are refused.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_slice(signature)
            .is_ok_and(|sig| self.0.verify_strict(message, &sig).is_ok())
    }
}
