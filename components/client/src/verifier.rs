//! Offline verification of Gatehouse JWTs against the deployment's JWKS,
//! cached in memory.
//!
//! Gatehouse publishes a new signing key before it signs with it and keeps
//! old keys published until their tokens expire, so a cache that is
//! refetched now and then, and at once for a key it does not know, sees
//! every key in use. A refetch for an unknown `kid` is attempted at most
//! once per refetch floor, so tokens naming made-up keys cannot make the
//! service hammer the JWKS; a refetch that fails keeps the cached keys.
//! Where memory does not outlive a request (Spin), [`CachedKeys`] carries
//! the cache from one instance to the next.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokens_core::{Expectations, Jwk, Refusal};

use crate::claims::Claims;
use crate::transport::{Transport, TransportError};

/// The audience of Gatehouse tokens unless the caller asked for others.
pub const DEFAULT_AUDIENCE: &str = "gatehouse";
/// Clock skew tolerated on `exp`, `nbf` and `iat` (Gatehouse's own).
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// How long fetched keys are used before they are fetched again.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// The least time between two fetches of the JWKS once it has been fetched.
pub const DEFAULT_REFETCH_FLOOR: Duration = Duration::from_secs(60);

/// Why a token is not accepted. Callers answer every one the same way
/// (401); the variants are for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidToken {
    /// Not three base64url parts of JSON.
    Malformed,
    /// `alg` outside the allow list (`none`, `HS256`, …), or not the key's.
    Algorithm,
    /// No published key has this `kid`.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// `iss` is not the expected issuer.
    Issuer,
    /// `aud` names none of the accepted audiences.
    Audience,
    /// Past `exp` (beyond the leeway), or no `exp`.
    Expired,
    /// Before `nbf` or `iat` (beyond the leeway).
    NotYetValid,
    /// Signed, but a claim is missing or of the wrong type (`sub`, …).
    Claims,
}

impl InvalidToken {
    fn of(refusal: Refusal) -> InvalidToken {
        match refusal {
            Refusal::Malformed => InvalidToken::Malformed,
            Refusal::Algorithm => InvalidToken::Algorithm,
            Refusal::UnknownKey => InvalidToken::UnknownKey,
            Refusal::Signature => InvalidToken::Signature,
            Refusal::Issuer => InvalidToken::Issuer,
            Refusal::Audience => InvalidToken::Audience,
            Refusal::Expired => InvalidToken::Expired,
            Refusal::NotYetValid => InvalidToken::NotYetValid,
        }
    }
}

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidToken::Malformed => "the token is malformed",
            InvalidToken::Algorithm => "the token's algorithm is not accepted",
            InvalidToken::UnknownKey => "the token names no published key",
            InvalidToken::Signature => "the token's signature does not verify",
            InvalidToken::Issuer => "the token is from another issuer",
            InvalidToken::Audience => "the token is for another audience",
            InvalidToken::Expired => "the token has expired",
            InvalidToken::NotYetValid => "the token is not valid yet",
            InvalidToken::Claims => "the token's claims are incomplete",
        })
    }
}

/// Why the JWKS could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysError {
    /// No answer.
    Transport(TransportError),
    /// An answer other than 2xx.
    Status(u16),
    /// A 2xx answer that is not a JWK Set with a usable key.
    NotAKeySet,
}

impl fmt::Display for KeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeysError::Transport(e) => write!(f, "{e}"),
            KeysError::Status(status) => write!(f, "the JWKS answered {status}"),
            KeysError::NotAKeySet => f.write_str("the JWKS holds no usable key"),
        }
    }
}

/// Why [`Verifier::verify`] gave no claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The token is not accepted: answer 401.
    Invalid(InvalidToken),
    /// No keys to verify with: none are cached and the JWKS could not be
    /// fetched. The token may be fine: answer 503.
    KeysUnavailable(KeysError),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Invalid(why) => write!(f, "{why}"),
            VerifyError::KeysUnavailable(why) => write!(f, "no signing keys: {why}"),
        }
    }
}

impl std::error::Error for VerifyError {}

impl From<InvalidToken> for VerifyError {
    fn from(why: InvalidToken) -> VerifyError {
        VerifyError::Invalid(why)
    }
}

/// The cached keys and when they were fetched (Unix seconds).
#[derive(Default)]
struct KeyCache {
    keys: Option<Arc<[Jwk]>>,
    fetched_at: i64,
    /// The last fetch started, successful or not: the floor counts from it.
    attempted_at: i64,
}

/// The cached keys with their fetch times, to keep where the verifier does
/// not live on: a Spin component is a fresh instance per request, so it
/// stores this in its key-value store and starts each verifier from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedKeys {
    /// The keys, as a JWK Set.
    pub jwks: Value,
    /// When they were fetched, Unix seconds.
    pub fetched_at: i64,
    /// When a fetch was last tried, Unix seconds: the refetch floor counts
    /// from it.
    pub attempted_at: i64,
}

/// What to do before verifying.
enum Plan {
    /// Verify with these.
    Use(Arc<[Jwk]>),
    /// Nothing cached: fetch or fail.
    Fetch,
    /// Fetch, falling back to these.
    Refresh(Arc<[Jwk]>),
}

/// Verifies Gatehouse JWTs offline. Share one per process (it is `Sync`
/// when its transport is): its cache is what keeps verification offline.
pub struct Verifier<T> {
    transport: T,
    jwks_url: String,
    issuer: String,
    audiences: Vec<String>,
    leeway: Duration,
    max_age: Duration,
    refetch_floor: Duration,
    cache: Mutex<KeyCache>,
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, seconds)
}

impl<T: Transport> Verifier<T> {
    /// A verifier for the deployment at `base_url` (its `public_base_url`,
    /// e.g. `https://auth.example.com`): keys from
    /// `{base_url}/.well-known/jwks.json`, issuer `base_url`, audience
    /// `gatehouse`, and the default leeway, maximum age and refetch floor.
    pub fn new(base_url: &str, transport: T) -> Verifier<T> {
        let base = crate::trimmed(base_url);
        Verifier {
            transport,
            jwks_url: format!("{base}/.well-known/jwks.json"),
            issuer: base,
            audiences: vec![DEFAULT_AUDIENCE.to_string()],
            leeway: DEFAULT_LEEWAY,
            max_age: DEFAULT_MAX_AGE,
            refetch_floor: DEFAULT_REFETCH_FLOOR,
            cache: Mutex::new(KeyCache::default()),
        }
    }

    /// The exact `iss` to expect, when Gatehouse is reached at another
    /// address than its public one.
    pub fn with_issuer(mut self, issuer: &str) -> Verifier<T> {
        self.issuer = crate::trimmed(issuer);
        self
    }

    /// The audiences accepted: a token must name one of them.
    pub fn with_audiences<I, S>(mut self, audiences: I) -> Verifier<T>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub fn with_leeway(mut self, leeway: Duration) -> Verifier<T> {
        self.leeway = leeway;
        self
    }

    /// How long fetched keys are used before they are fetched again.
    pub fn with_max_age(mut self, max_age: Duration) -> Verifier<T> {
        self.max_age = max_age;
        self
    }

    /// The least time between two fetches once keys are cached.
    pub fn with_refetch_floor(mut self, floor: Duration) -> Verifier<T> {
        self.refetch_floor = floor;
        self
    }

    /// Starts the cache from keys kept earlier; a set with no usable key
    /// is ignored.
    pub fn with_cached_keys(mut self, cached: &CachedKeys) -> Verifier<T> {
        let keys = tokens_core::key_set(&cached.jwks);
        if !keys.is_empty() {
            let cache = self.cache.get_mut().unwrap_or_else(PoisonError::into_inner);
            *cache = KeyCache {
                keys: Some(keys.into()),
                fetched_at: cached.fetched_at,
                attempted_at: cached.attempted_at,
            };
        }
        self
    }

    /// The cache, to keep for [`with_cached_keys`](Verifier::with_cached_keys);
    /// `None` before keys were first fetched.
    pub fn cached_keys(&self) -> Option<CachedKeys> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = cache.keys.as_ref()?;
        Some(CachedKeys {
            jwks: serde_json::json!({ "keys": keys.as_ref() }),
            fetched_at: cache.fetched_at,
            attempted_at: cache.attempted_at,
        })
    }

    /// Verifies `token` (without `Bearer `) now.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        self.verify_at(token, unix_now()).await
    }

    /// Verifies `token` as if the time were `now` (Unix seconds), which
    /// also dates the cache's fetches.
    pub async fn verify_at(&self, token: &str, now: i64) -> Result<Claims, VerifyError> {
        let keys = self.keys(now).await?;
        let outcome = self.check(token, &keys, now);
        // `UnknownKey` comes only after a well-formed header with an allowed
        // algorithm; with a `kid`, the token may be signed with a key
        // published since the keys were fetched.
        let unknown_key = matches!(outcome, Err(VerifyError::Invalid(InvalidToken::UnknownKey)))
            && tokens_core::key_id(token).is_some();
        if !unknown_key || !self.claim_fetch(now) {
            return outcome;
        }
        match self.fetch(now).await {
            Ok(fresh) => self.check(token, &fresh, now),
            // The cached keys stand, and they do not hold this one.
            Err(_) => outcome,
        }
    }

    fn check(&self, token: &str, keys: &[Jwk], now: i64) -> Result<Claims, VerifyError> {
        let audiences: Vec<&str> = self.audiences.iter().map(String::as_str).collect();
        let expect = Expectations {
            issuer: &self.issuer,
            audiences: &audiences,
            now,
            leeway: seconds(self.leeway),
        };
        let claims = tokens_core::verify(token, keys, &expect)
            .map_err(|refusal| VerifyError::Invalid(InvalidToken::of(refusal)))?;
        claims_of(claims).ok_or(VerifyError::Invalid(InvalidToken::Claims))
    }

    /// The keys to verify with at `now`, fetching them when none are
    /// cached or they are older than the maximum age.
    async fn keys(&self, now: i64) -> Result<Arc<[Jwk]>, VerifyError> {
        match self.plan(now) {
            Plan::Use(keys) => Ok(keys),
            Plan::Fetch => self.fetch(now).await.map_err(VerifyError::KeysUnavailable),
            Plan::Refresh(cached) => Ok(self.fetch(now).await.unwrap_or(cached)),
        }
    }

    fn plan(&self, now: i64) -> Plan {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(keys) = cache.keys.clone() else {
            // Without keys nothing verifies: every call tries, as a call to
            // Gatehouse itself would.
            cache.attempted_at = now;
            return Plan::Fetch;
        };
        let stale = now.saturating_sub(cache.fetched_at) >= seconds(self.max_age);
        if stale && self.floor_passed(&cache, now) {
            cache.attempted_at = now;
            return Plan::Refresh(keys);
        }
        Plan::Use(keys)
    }

    /// Whether a refetch may start at `now`; if so, it is recorded as
    /// started, so concurrent callers do not start another.
    fn claim_fetch(&self, now: i64) -> bool {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.keys.is_some() && !self.floor_passed(&cache, now) {
            return false;
        }
        cache.attempted_at = now;
        true
    }

    fn floor_passed(&self, cache: &KeyCache, now: i64) -> bool {
        now.saturating_sub(cache.attempted_at) >= seconds(self.refetch_floor)
    }

    /// Fetches the JWKS and caches its usable keys.
    async fn fetch(&self, now: i64) -> Result<Arc<[Jwk]>, KeysError> {
        let answer = self
            .transport
            .get(&self.jwks_url)
            .await
            .map_err(KeysError::Transport)?;
        if !answer.is_success() {
            return Err(KeysError::Status(answer.status));
        }
        let set: Value = serde_json::from_slice(&answer.body).map_err(|_| KeysError::NotAKeySet)?;
        let keys: Arc<[Jwk]> = tokens_core::key_set(&set).into();
        if keys.is_empty() {
            return Err(KeysError::NotAKeySet);
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.keys = Some(keys.clone());
        cache.fetched_at = now;
        Ok(keys)
    }
}

fn claims_of(claims: Map<String, Value>) -> Option<Claims> {
    serde_json::from_value(Value::Object(claims)).ok()
}
