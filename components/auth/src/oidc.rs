//! Tokens of an org's own OpenID Connect providers (Auth0, Okta, Entra,
//! any conforming issuer): which configured provider a token belongs to,
//! what it must say, and the roles its claims map to. The provider's
//! discovery document and JWK Set are fetched over outbound HTTP and kept
//! in the key-value store; a token naming a `kid` the cached set lacks
//! triggers a refetch, at most once per [`JWKS_REFETCH_FLOOR_SECONDS`].
//!
//! A provider is told apart from others with the same issuer (one Auth0
//! tenant serving several apps, or several orgs trusting one tenant) by
//! the token's audience and authorized party (`azp`, or `client_id`,
//! `cid`, `appid` where providers name it so), and by its `tid` for a
//! provider bound to one Entra tenant. An access token is told from an ID
//! token by more than its audience ([`token_kind`]).
//!
//! Where Gatehouse may connect is bounded by the operator ([`policy`]):
//! org admins choose issuers, and anyone can start a sign-in, so neither
//! may make the server reach its own network.
//!
//! - [`provider`]: a provider and the choice among those of one issuer.
//! - [`token_kind`]: access tokens told from ID tokens.
//! - [`address`], [`outbound_rule`], [`policy`]: which URLs may be called.
//! - [`metadata`]: discovery documents and cached key sets.
//! - `fetch` and `bearer` (wasm32): the outbound calls and the bearer path.

pub mod address;
pub mod metadata;
pub mod outbound_rule;
pub mod policy;
pub mod provider;
pub mod token_kind;

#[cfg(target_arch = "wasm32")]
mod bearer;
#[cfg(target_arch = "wasm32")]
mod fetch;

pub use metadata::{CachedKeys, Discovery, discovery_url, parse_discovery, unverified_claims};
pub use policy::{OutboundPolicy, Refusal};
pub use provider::{NoProvider, Provider, authorized_party, choose};

#[cfg(target_arch = "wasm32")]
pub use bearer::{PROVIDER_COLUMNS, authenticate, provider_from};
#[cfg(target_arch = "wasm32")]
pub use fetch::{DiscoveryFault, check_discovery, discovery, keys, policy, post_form};

/// The fewest seconds between two fetches of one JWK Set when tokens name
/// keys it lacks: unknown `kid`s cannot make Gatehouse hammer a provider.
pub const JWKS_REFETCH_FLOOR_SECONDS: i64 = 60;
/// How long a fetched JWK Set or discovery document is used before it is
/// fetched again even when every `kid` is known (keys get retired).
pub const METADATA_MAX_AGE_SECONDS: i64 = 3600;
