//! Outbound calls to providers: the discovery document and the JWK Set,
//! cached in the key-value store, and form posts to the token endpoint.
//! Every URL passes the deployment's [`OutboundPolicy`] before a
//! connection is opened, cached documents included.

use super::metadata::{CachedKeys, Discovery};
use super::policy::OutboundPolicy;
use bytes::Bytes;
use gatehouse_http::{ErrorCode, Problem, idempotency::unix_now};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;
use spin_sdk::http::FullBody;
use spin_sdk::key_value::Store;
use spin_sdk::wasip3::http::types::RequestOptions;
use spin_sdk::wasip3::http_compat::RequestOptionsExtension;

const MAX_BODY_BYTES: usize = 512 * 1024;
/// Timeouts of the check made when a provider is saved, in nanoseconds:
/// an admin waits for it, and a provider that is slow to answer it is
/// worth a warning anyway.
const CHECK_CONNECT_TIMEOUT_NS: u64 = 2_000_000_000;
const CHECK_FIRST_BYTE_TIMEOUT_NS: u64 = 3_000_000_000;

/// The deployment's settings for reaching providers, from the variables
/// `oidc_outbound_hosts` and `oidc_allow_private_issuers`. A component
/// that was not given the rule reaches no provider.
pub async fn policy() -> OutboundPolicy {
    let Ok(rule) = spin_sdk::variables::get("oidc_outbound_hosts").await else {
        eprintln!(
            "oidc: the component has no oidc_outbound_hosts variable; no provider is reached"
        );
        return OutboundPolicy::deny_all();
    };
    let allow_private = spin_sdk::variables::get("oidc_allow_private_issuers")
        .await
        .unwrap_or_default();
    OutboundPolicy::new(&rule, &allow_private)
}

fn unavailable(what: &str) -> Problem {
    Problem::new(ErrorCode::Unavailable).detail(format!(
        "the identity provider could not be reached ({what}); retry later"
    ))
}

/// The provider is one this deployment does not call: retrying will not
/// help, and the detail names the settings involved (what exactly is
/// wrong is logged, and told to the org's admins when they save it).
fn not_allowed(issuer: &str, why: &impl std::fmt::Display) -> Problem {
    eprintln!("oidc: {issuer} is not called: {why}");
    Problem::new(ErrorCode::Unavailable).detail(
        "the identity provider is not allowed by this deployment's settings (oidc_outbound_hosts, oidc_allow_private_issuers); an org admin sees why on the provider",
    )
}

async fn send(
    req: http::Request<FullBody<Bytes>>,
    what: &str,
    quick: bool,
) -> Result<(u16, Vec<u8>), Problem> {
    let mut req = req;
    if quick {
        let options = RequestOptions::new();
        let _ = options.set_connect_timeout(Some(CHECK_CONNECT_TIMEOUT_NS));
        let _ = options.set_first_byte_timeout(Some(CHECK_FIRST_BYTE_TIMEOUT_NS));
        let _ = options.set_between_bytes_timeout(Some(CHECK_FIRST_BYTE_TIMEOUT_NS));
        req.extensions_mut()
            .insert(RequestOptionsExtension(options));
    } else {
        req.extensions_mut()
            .insert(gatehouse_http::outbound::timeouts());
    }
    let res = spin_sdk::http::send(req).await.map_err(|e| {
        eprintln!("oidc: {what} failed: {e:?}");
        unavailable(what)
    })?;
    let status = res.status().as_u16();
    let body = Limited::new(res.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| unavailable(what))?
        .to_bytes()
        .to_vec();
    Ok((status, body))
}

/// `GET url` as JSON; a non-2xx answer is the provider being unavailable.
async fn get_json(url: &str, what: &str, quick: bool) -> Result<Vec<u8>, Problem> {
    let req = http::Request::get(url)
        .header("accept", "application/json")
        .body(FullBody::new(Bytes::new()))
        .map_err(|_| unavailable(what))?;
    let (status, body) = send(req, what, quick).await?;
    if !(200..300).contains(&status) {
        eprintln!("oidc: {what} answered {status}");
        return Err(unavailable(what));
    }
    Ok(body)
}

/// `POST url` with a form body and optional basic credentials; the
/// status and body, whatever the status. `url` is a token endpoint from a
/// discovery document, checked against the policy again here.
pub async fn post_form(
    url: &str,
    form: &str,
    basic: Option<&str>,
    what: &str,
) -> Result<(u16, Vec<u8>), Problem> {
    policy()
        .await
        .check(url)
        .map_err(|why| not_allowed(url, &why))?;
    let mut builder = http::Request::post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json");
    if let Some(credentials) = basic {
        builder = builder.header("authorization", format!("Basic {credentials}"));
    }
    let req = builder
        .body(FullBody::new(Bytes::from(form.to_string())))
        .map_err(|_| unavailable(what))?;
    send(req, what, false).await
}

fn cache_key(kind: &str, url: &str) -> String {
    format!("oidc:{kind}:{}", identity_core::token::digest(url))
}

async fn cached<T: serde::de::DeserializeOwned>(store: Option<&Store>, key: &str) -> Option<T> {
    let bytes = store?.get(key).await.ok()??;
    serde_json::from_slice(&bytes).ok()
}

async fn put<T: serde::Serialize>(store: Option<&Store>, key: &str, value: &T) {
    if let (Some(store), Ok(bytes)) = (store, serde_json::to_vec(value)) {
        let _ = store.set(key, &bytes).await;
    }
}

/// The provider's discovery document, from the cache while fresh. The
/// issuer is checked against the policy before anything else, so a
/// provider saved before the settings changed is not called either.
pub async fn discovery(issuer: &str) -> Result<Discovery, Problem> {
    let policy = policy().await;
    discovery_with(issuer, &policy).await
}

async fn discovery_with(issuer: &str, policy: &OutboundPolicy) -> Result<Discovery, Problem> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Entry {
        doc: Discovery,
        fetched_at: i64,
    }
    policy
        .check(issuer)
        .map_err(|why| not_allowed(issuer, &why))?;
    let now = unix_now();
    let store = Store::open_default().await.ok();
    let key = cache_key("discovery", issuer);
    if let Some(entry) = cached::<Entry>(store.as_ref(), &key).await
        && now - entry.fetched_at < super::METADATA_MAX_AGE_SECONDS
    {
        super::metadata::check_endpoints(&entry.doc, policy)
            .map_err(|why| not_allowed(issuer, &why))?;
        return Ok(entry.doc);
    }
    let body = get_json(&super::discovery_url(issuer), "discovery", false).await?;
    let doc = super::parse_discovery(&body, issuer, policy).map_err(|why| {
        eprintln!("oidc: {why}");
        unavailable("discovery")
    })?;
    put(
        store.as_ref(),
        &key,
        &Entry {
            doc: doc.clone(),
            fetched_at: now,
        },
    )
    .await;
    Ok(doc)
}

/// What is wrong with a provider's discovery, fetched now (not from the
/// cache) for an admin saving the provider; `None` when it is usable.
pub async fn check_discovery(issuer: &str, policy: &OutboundPolicy) -> Option<DiscoveryFault> {
    if let Err(why) = policy.check(issuer) {
        return Some(DiscoveryFault::Invalid(format!(
            "the issuer is refused: {why}"
        )));
    }
    let body = match get_json(&super::discovery_url(issuer), "discovery", true).await {
        Ok(body) => body,
        Err(_) => return Some(DiscoveryFault::Unreachable),
    };
    super::parse_discovery(&body, issuer, policy)
        .err()
        .map(DiscoveryFault::Invalid)
}

/// Why a provider's discovery is not usable right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryFault {
    /// No answer, or not a 2xx one.
    Unreachable,
    /// An answer Gatehouse cannot use, and why.
    Invalid(String),
}

/// The issuer's keys for a token naming `kid`: the cached set (one
/// key-value read), or a fresh one from the `jwks_uri` its discovery
/// document names when the cached set is stale or lacks `kid` (at most
/// once a floor period). The issuer passes the policy first, cached keys
/// or not: a provider the settings no longer allow verifies nothing.
pub async fn keys(issuer: &str, kid: &str) -> Result<Vec<tokens_core::Jwk>, Problem> {
    let policy = policy().await;
    policy
        .check(issuer)
        .map_err(|why| not_allowed(issuer, &why))?;
    let now = unix_now();
    let store = Store::open_default().await.ok();
    let key = cache_key("keys", issuer);
    let known = cached::<CachedKeys>(store.as_ref(), &key).await;
    if let Some(set) = &known
        && !set.needs_refetch(kid, now)
    {
        return Ok(set.keys.clone());
    }
    let fetched = match discovery_with(issuer, &policy).await {
        Ok(doc) => get_json(&doc.jwks_uri, "jwks", false).await,
        Err(problem) => Err(problem),
    };
    let fresh = fetched
        .and_then(|body| serde_json::from_slice::<Value>(&body).map_err(|_| unavailable("jwks")));
    let value = match fresh {
        Ok(value) => value,
        Err(problem) => {
            // An unreachable provider leaves the keys it last published,
            // and is not asked again before the floor has passed.
            let keep = CachedKeys {
                keys: known.as_ref().map(|k| k.keys.clone()).unwrap_or_default(),
                fetched_at: known.as_ref().map_or(0, |k| k.fetched_at),
                attempted_at: now,
            };
            put(store.as_ref(), &key, &keep).await;
            return match known {
                Some(k) => Ok(k.keys),
                None => Err(problem),
            };
        }
    };
    let fresh = CachedKeys {
        keys: tokens_core::key_set(&value),
        fetched_at: now,
        attempted_at: now,
    };
    put(store.as_ref(), &key, &fresh).await;
    Ok(fresh.keys)
}
