//! A client for services that trust Gatehouse.
//!
//! - [`Verifier`]: checks a Gatehouse JWT offline against the deployment's
//!   JWKS (`/.well-known/jwks.json`), cached in memory, and reads its
//!   [`Claims`]. The keys are fetched on first use, again when a token
//!   names a key the cache does not hold (at most once per refetch floor),
//!   and when they are older than their maximum age; a failed refetch
//!   keeps the cached keys. [`CachedKeys`] carries the cache across
//!   instances where memory does not outlive a request (Spin).
//! - [`AuthzClient`]: `POST /v1/authz/check` ([`Decision`]) and
//!   `POST /v1/authz/filter` ([`FilterAnswer`]); a refusal is a
//!   [`Problem`] with Gatehouse's stable `code`.
//!
//! HTTP goes through a [`Transport`] the service implements over its own
//! stack; with the `spin` feature, `SpinTransport` uses Spin's outbound
//! HTTP. Signatures are checked by `tokens_core`, the code Gatehouse
//! itself verifies with.
//!
//! ```no_run
//! use gatehouse_client::{HttpResponse, Transport, TransportError, Verifier, VerifyError};
//!
//! struct Http;
//!
//! impl Transport for Http {
//!     async fn get(&self, url: &str) -> Result<HttpResponse, TransportError> {
//!         unimplemented!("GET {url} with the service's HTTP client")
//!     }
//!     async fn post_json(
//!         &self,
//!         url: &str,
//!         bearer: &str,
//!         body: Vec<u8>,
//!     ) -> Result<HttpResponse, TransportError> {
//!         unimplemented!("POST {url} with the service's HTTP client")
//!     }
//! }
//!
//! async fn may_read_reports(verifier: &Verifier<Http>, token: &str) -> Result<bool, VerifyError> {
//!     let claims = verifier.verify(token).await?;
//!     Ok(claims.has_permission("reports:read"))
//! }
//!
//! let verifier = Verifier::new("https://auth.example.com", Http);
//! # let _ = may_read_reports(&verifier, "");
//! ```

#![deny(missing_docs)]

pub mod authz;
pub mod claims;
pub mod problem;
#[cfg(all(feature = "spin", target_arch = "wasm32"))]
mod spin;
pub mod transport;
pub mod verifier;

pub use authz::{AuthzClient, AuthzError, Decision, FilterAnswer, Reason};
pub use authz::{CheckRequest, FilterRequest};
pub use claims::{Actor, Claims};
pub use problem::Problem;
#[cfg(all(feature = "spin", target_arch = "wasm32"))]
pub use spin::SpinTransport;
pub use transport::{HttpResponse, Transport, TransportError};
pub use verifier::{CachedKeys, InvalidToken, KeysError, Verifier, VerifyError};

/// A base URL without its trailing slashes, so paths join with one `/`.
fn trimmed(base_url: &str) -> String {
    base_url.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests;
