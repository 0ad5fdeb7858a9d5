//! Trusting a caller of an app that Gatehouse protects, for the components
//! Gatehouse ships into other apps (the `guard` middleware, the
//! `gatehouse:client` component):
//!
//! - [`authenticate`]: the `Authorization: Bearer` credential as a verified
//!   [`Principal`]: a Gatehouse JWT offline against the published keys
//!   ([`jwt`]), an API key or session token by asking Gatehouse, the
//!   acceptance cached for at most `<prefix>_cache_seconds` ([`remote`]);
//! - [`quota`]: Gatehouse's quota routes, with the app's service key on the
//!   caller's behalf;
//! - [`Settings`]: the app's Spin variables.
//!
//! Every refusal is a [`Problem`] the component answers or hands on.

// The request path builds for wasm32 only; the pure parts are unit-tested natively.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
// `Result<_, Problem>` is a request's error path, taken at most once.
#![allow(clippy::result_large_err)]

pub mod cache;
pub mod config;
pub mod gatehouse;
pub mod jwt;
pub mod memo;
pub mod quota;
pub mod remote;

pub use config::Settings;

use gatehouse_http::principal::Principal;
use gatehouse_http::{ErrorCode, Problem};

use cache::Cache;

/// The credential of an `Authorization` value of the Bearer scheme (any case).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A 401 with its `WWW-Authenticate` challenge.
pub fn unauthenticated(detail: &str, challenge: &'static str) -> Problem {
    Problem::new(ErrorCode::Unauthenticated)
        .detail(detail)
        .header("www-authenticate", challenge)
}

/// The principal behind `authorization` (an `Authorization` header's
/// value). `org` is the client's `X-Org`, which picks the org a session of
/// a member of several acts in. No credential, or one that does not
/// verify, is a 401; Gatehouse not answering when it must be asked, a 503.
pub async fn authenticate(
    authorization: Option<&str>,
    org: Option<&str>,
    settings: &Settings,
) -> Result<Principal, Problem> {
    let Some(token) = authorization.and_then(bearer_token) else {
        return Err(unauthenticated(
            "this route needs a Gatehouse credential: Authorization: Bearer <token>",
            "Bearer",
        ));
    };
    let now = gatehouse_http::idempotency::unix_now();
    let is_jwt = gatehouse_auth::jwt::looks_like_jwt(token);
    let remembered = if is_jwt {
        jwt::remembered(token, settings, now)
    } else {
        remote::remembered(token, org, settings, now)
    };
    if let Some(principal) = remembered {
        return Ok(principal);
    }
    let cache = Cache::open().await;
    let principal = if is_jwt {
        jwt::verify(token, settings, &cache).await?
    } else {
        remote::verify(token, org, settings, &cache).await?
    };
    principal.ok_or_else(|| {
        unauthenticated(
            "the credential is not valid",
            "Bearer error=\"invalid_token\"",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn only_a_non_empty_bearer_credential_is_taken() {
        assert_eq!(bearer_token("Bearer gk_abc"), Some("gk_abc"));
        assert_eq!(bearer_token("bearer  a.b.c "), Some("a.b.c"));
        assert_eq!(bearer_token("Basic YWRhOnB3"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
