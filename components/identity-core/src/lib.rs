//! Identity's domain logic, free of I/O so it is tested natively and runs
//! unchanged inside the identity component.
//!
//! - [`email`]: address checks and normalization.
//! - [`password`]: the password policy and argon2id hashing (OWASP parameters).
//! - [`token`]: opaque high-entropy tokens, stored only as SHA-256 digests.
//! - [`totp`]: RFC 6238 one-time codes, `otpauth://` URIs, recovery codes.

#![deny(missing_docs)]

pub mod email;
pub mod password;
pub mod random;
pub mod token;
pub mod totp;
