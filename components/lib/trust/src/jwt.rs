//! Gatehouse's JWTs, verified offline: signature (EdDSA or ES256, the keys
//! Gatehouse publishes), `iss`, `aud`, `exp` and `nbf` with a small leeway.
//! The JWK Set is kept in the cache; a token naming a key the cached set
//! lacks (after a rotation) fetches the set again, but at most once per
//! [`REFETCH_FLOOR_SECONDS`], so tokens with made-up `kid`s cannot turn the
//! component into a load on Gatehouse.

use gatehouse_http::idempotency::unix_now;
use gatehouse_http::principal::Principal;
use serde::{Deserialize, Serialize};
use tokens_core::{Expectations, Jwk};

use crate::cache::{self, Cache};
use crate::config::Settings;
use crate::gatehouse;
use crate::memo::{self, Memo};

thread_local! {
    /// Tokens this instance verified, until their `exp` (with the leeway).
    static VERIFIED: Memo<Principal> = Default::default();
}

/// What a token verified as is good for this app's issuer and audience only.
fn memo_key(token: &str, settings: &Settings, audience: &str) -> String {
    format!(
        "{}\0{}\0{audience}\0{token}",
        settings.gatehouse_url, settings.issuer
    )
}

/// The principal of a token this instance already verified, if it still holds.
pub fn remembered(token: &str, settings: &Settings, now: i64) -> Option<Principal> {
    let audience = settings.audience.as_deref()?;
    memo::get(&VERIFIED, &memo_key(token, settings, audience), now)
}

/// Seconds of clock skew tolerated, as Gatehouse itself does.
pub const LEEWAY_SECONDS: i64 = gatehouse_auth::jwt::LEEWAY_SECONDS;
/// The fewest seconds between two fetches of the JWK Set for unknown keys.
pub const REFETCH_FLOOR_SECONDS: i64 = 30;
/// A cached set older than this is fetched again even when it knows the
/// key, so a key Gatehouse stopped publishing stops verifying.
pub const MAX_AGE_SECONDS: i64 = 3600;

/// The JWK Set as cached.
#[derive(Serialize, Deserialize)]
struct CachedKeys {
    keys: Vec<Jwk>,
    fetched_at: i64,
    /// The last fetch that failed, if later than `fetched_at`: the floor
    /// applies to failed attempts too.
    #[serde(default)]
    tried_at: i64,
}

/// A refused token: why goes to the log, the caller gets one answer.
fn refused(why: &str) -> Option<Principal> {
    eprintln!("gatehouse: a JWT was refused: {why}");
    None
}

/// The principal a Gatehouse JWT describes, when it verifies.
pub async fn verify(
    token: &str,
    settings: &Settings,
    cache: &Cache,
) -> Result<Option<Principal>, gatehouse_http::Problem> {
    let Some(audience) = settings.audience.as_deref() else {
        let why = format!("the app sets no {}_audience", settings.prefix);
        return Ok(refused(&why));
    };
    let now = unix_now();
    let kid = tokens_core::key_id(token);
    let slot = cache::key("jwks", &[&settings.gatehouse_url]);
    let cached: Option<CachedKeys> = cache.get(&slot).await;
    let knows = |set: &CachedKeys| {
        kid.as_deref()
            .is_some_and(|k| set.keys.iter().any(|j| j.kid == k))
    };
    // The keys, and when they were fetched.
    let (keys, fetched_at) = match cached {
        Some(set) if now - set.fetched_at < MAX_AGE_SECONDS && knows(&set) => {
            (set.keys, set.fetched_at)
        }
        // Unknown key: refetch only past the floor, else decide on what is cached.
        Some(set) if now - set.fetched_at.max(set.tried_at) < REFETCH_FLOOR_SECONDS => {
            (set.keys, set.fetched_at)
        }
        // Gatehouse unreachable: the keys it published still verify its tokens.
        Some(set) => match fetch(settings, cache, &slot, now).await {
            Ok(keys) => (keys, now),
            Err(_) => {
                let kept = (set.keys.clone(), set.fetched_at);
                cache
                    .put(
                        &slot,
                        &CachedKeys {
                            tried_at: now,
                            ..set
                        },
                    )
                    .await;
                kept
            }
        },
        None => (fetch(settings, cache, &slot, now).await?, now),
    };
    let expect = Expectations {
        issuer: &settings.issuer,
        audiences: &[audience],
        now,
        leeway: LEEWAY_SECONDS,
    };
    let claims = match tokens_core::verify(token, &keys, &expect) {
        Ok(claims) => claims,
        Err(refusal) => return Ok(refused(&format!("{refusal:?}"))),
    };
    let Some(principal) = gatehouse_auth::jwt::principal_from_claims(&claims) else {
        return Ok(refused("its sub names no user or key"));
    };
    // Remembered while the token is valid and its keys are ones this
    // check would still use without fetching them again.
    if let Some(exp) = claims.get("exp").and_then(|e| e.as_i64()) {
        let until = (exp + LEEWAY_SECONDS).min(fetched_at + MAX_AGE_SECONDS);
        if now < until {
            let key = memo_key(token, settings, audience);
            memo::put(&VERIFIED, key, principal.clone(), until, now);
        }
    }
    Ok(Some(principal))
}

async fn fetch(
    settings: &Settings,
    cache: &Cache,
    slot: &str,
    now: i64,
) -> Result<Vec<Jwk>, gatehouse_http::Problem> {
    let what = "fetching the JWK Set";
    let answer = gatehouse::call(
        http::Method::GET,
        &settings.url("/.well-known/jwks.json"),
        None,
        &[],
        None,
        what,
    )
    .await?;
    if answer.status != 200 {
        eprintln!("gatehouse: the JWK Set answered {}", answer.status);
        return Err(gatehouse::unavailable(what));
    }
    let set: serde_json::Value =
        serde_json::from_slice(&answer.body).map_err(|_| gatehouse::unavailable(what))?;
    let keys = tokens_core::key_set(&set);
    cache
        .put(
            slot,
            &CachedKeys {
                keys: keys.clone(),
                fetched_at: now,
                tried_at: 0,
            },
        )
        .await;
    Ok(keys)
}
