//! Authentication and tenancy, shared by every Gatehouse component.
//!
//! - [`authenticate`]: the credential on a request (a session token, an
//!   API key or a Gatehouse JWT) to a
//!   [`Principal`](gatehouse_http::principal::Principal).
//! - [`membership`]: the orgs a user belongs to and how a request picks
//!   one (`X-Org` header, or the only org).
//! - [`session`]: session lookups cached in the key-value store, never
//!   outliving a revocation or a membership change.
//! - [`tenant`]: the tenant context. Org-owned rows are read and written
//!   only through a [`tenant::Tenant`], whose statements are checked to be
//!   bound to its org, so a handler cannot reach another org's rows.
//! - [`access`]: roles held and the permissions they give.
//! - [`apikey`]: API key verification with its cache, shared by the keys
//!   component and `authenticate`.
//! - [`jwt`]: Gatehouse's own signed tokens as credentials.
//! - [`authority`]: a user's standing now, which every user token is held
//!   against on Gatehouse's own routes.
//! - [`oidc`]: bearer tokens of an org's own OpenID Connect providers.
//! - [`service_token`]: tokens registered services sign with their own
//!   keys, and the proof of possession that registers a key.
//! - [`impersonation`]: an admin acting as a member, audited.
//! - [`db`]: thin helpers over Spin's SQLite.
//!
//! The decisions (which org a request acts in, whether a cached session
//! may answer, whether a statement is tenant-scoped) are plain functions,
//! unit-tested natively; the Spin calls are compiled for wasm32 only.

#![deny(missing_docs)]
#![allow(clippy::result_large_err)]

pub mod access;
pub mod apikey;
pub mod authority;
pub mod impersonation;
pub mod jwt;
pub mod membership;
pub mod oidc;
pub mod service_token;
pub mod tenant;

#[cfg(target_arch = "wasm32")]
mod authenticate;
#[cfg(target_arch = "wasm32")]
pub mod caller;
#[cfg(target_arch = "wasm32")]
pub mod db;
#[cfg(target_arch = "wasm32")]
pub mod sealing;
pub mod session;

#[cfg(target_arch = "wasm32")]
pub use authenticate::{authenticate, authenticate_session, bearer_token, session_required};
