//! Webhooks without I/O: verification of incoming deliveries and Standard
//! Webhooks signatures for outgoing ones.
//!
//! Incoming: [`verify`] checks one delivery from a [`Provider`] against a
//! source's [`VerifyConfig`], on the raw body bytes as received, and returns
//! either [`Verified`] (a dedupe id, the event type, the signed timestamp)
//! or a [`Rejection`] with a stable code. Every comparison of a secret-derived
//! value is constant-time, every configured secret is tried (so a secret can
//! be rotated without a gap), and a signed timestamp must lie within the
//! provider's tolerance of `now` in either direction.
//!
//! Outgoing: [`SigningSecret`] (`whsec_…`, HMAC-SHA256, `v1`) and
//! [`SigningKey`] (`whsk_…`/`whpk_…`, Ed25519, `v1a`) sign
//! `{id}.{timestamp}.{body}`; [`signature_header`] joins the signatures of
//! several signers so that during a rotation the old and the new secret
//! both sign.
//!
//! The crate draws no randomness and reads no clock: callers pass random
//! bytes and the current time, which keeps it deterministic under test and
//! usable in a WebAssembly component.
//!
//! ```
//! use webhooks_core::{Provider, SigningSecret, Signer, VerifyConfig, signature_header, verify};
//!
//! let secret = SigningSecret::from_random(&[7u8; 32])?;
//! let body = br#"{"type":"invoice.paid"}"#;
//! let signature = signature_header("msg_1", 1_700_000_000, body, &[Signer::Hmac(secret.clone())]);
//! let headers = [
//!     ("Webhook-Id", "msg_1"),
//!     ("Webhook-Timestamp", "1700000000"),
//!     ("Webhook-Signature", signature.as_str()),
//! ];
//! let config = VerifyConfig::with_secrets([secret.to_whsec()]);
//! let verified = verify(Provider::Standard, &config, &headers, body, 1_700_000_010)?;
//! assert_eq!(verified.dedupe_id, "msg_1");
//! assert_eq!(verified.event_type.as_deref(), Some("invoice.paid"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod compare;
mod config;
mod handlers;
mod headers;
mod keys;
mod provider;
mod providers;
mod rejection;
mod signing;
mod verify;

pub use config::{BasicCredentials, ConfigError, HeaderCredential, VerifyConfig};
pub use handlers::{Handler, HandlersError, matching, parse_handlers, type_matches};
pub use headers::{HeaderFn, Headers};
pub use keys::{KeyError, PublicKey, SigningKey, SigningSecret};
pub use provider::{Provider, UnknownProvider};
pub use rejection::Rejection;
pub use signing::{Signer, sign_v1, sign_v1a, signature_header};
pub use verify::{IdSource, Verified, replay_digest, verify};

#[cfg(test)]
mod tests;
