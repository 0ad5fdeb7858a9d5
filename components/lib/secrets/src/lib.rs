//! Secrets of orgs, teams and users, by envelope encryption.
//!
//! Each org has data keys, versioned: random AES-256 keys, each stored
//! sealed by a key derived from the `master_key` variable, bound to its
//! org and version ([`envelope`]). A value is sealed by its org's newest
//! data key, bound to its org, scope, name and key version, so a sealed
//! value copied into another row (another org's, another name's) does not
//! open. Deleting an org deletes its data keys, and with them every way to
//! open its values, backups included.
//!
//! Other capabilities' values at rest (TOTP secrets, signing keys,
//! identity provider and webhook secrets) are sealed the same way
//! ([`sealed`]): an org's with the org's data keys, a user's or the
//! deployment's with the deployment's data keys, so one master key rewrap
//! covers them all.
//!
//! Other components read a secret by reference (`org/NAME`,
//! `team/<team id>/NAME`, `user/<user id>/NAME`) through one call
//! (`read_reference`), inside the org of their tenant context.

#![deny(missing_docs)]

pub mod envelope;
pub mod scope;
pub mod sealed;

#[cfg(target_arch = "wasm32")]
mod deployment;
#[cfg(target_arch = "wasm32")]
mod reseal;
#[cfg(target_arch = "wasm32")]
pub mod rotation;
#[cfg(target_arch = "wasm32")]
pub mod sealing;
#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(target_arch = "wasm32")]
pub use store::{Meta, delete, list, put, read, read_reference};
