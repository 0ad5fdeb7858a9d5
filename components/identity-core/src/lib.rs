//! Identity's domain logic, free of I/O so it is tested natively and runs
//! unchanged inside the identity and orgs components.
//!
//! - [`email`]: address checks and normalization.
//! - [`org`]: org handles, team-tree placement, preference resolution.
//! - [`password`]: the password policy and argon2id hashing (OWASP parameters).
//! - [`sealed`]: secrets encrypted at rest (AES-256-GCM, HKDF-derived keys).
//! - [`text`]: what free text people type (names) may contain.
//! - [`throttle`]: growing sign-in delays that never lock the real user out.
//! - [`token`]: opaque high-entropy tokens, stored only as SHA-256 digests.
//! - [`totp`]: RFC 6238 one-time codes, `otpauth://` URIs, recovery codes.

#![deny(missing_docs)]

pub mod email;
pub mod org;
pub mod password;
pub mod random;
pub mod sealed;
pub mod text;
pub mod throttle;
pub mod token;
pub mod totp;
