//! API keys and session tokens, verified by asking Gatehouse, and the
//! verdict reused for at most `<prefix>_cache_seconds`: that is the bound on
//! how long a revoked key or session keeps working here. Only acceptances
//! are cached; a refused credential is asked about again next time.

use gatehouse_http::idempotency::unix_now;
use gatehouse_http::principal::{Credential, Principal, Subject};
use gatehouse_http::{ErrorCode, Problem};
use serde::{Deserialize, Serialize};

use crate::cache::{self, Cache};
use crate::config::Settings;
use crate::gatehouse;
use crate::memo::{self, Memo};

thread_local! {
    /// Acceptances this instance holds, until the same cache bound.
    static ACCEPTED: Memo<Principal> = Default::default();
}

/// How a credential is checked: an API key through `POST /v1/keys/verify`
/// with this service key (keys of its org only), anything else through
/// `GET /v1/auth/whoami` (keys of any org).
fn checked_with<'a>(credential: &str, settings: &'a Settings) -> Option<&'a str> {
    settings
        .service_key
        .as_deref()
        .filter(|_| is_api_key(credential))
}

/// The cache slot of a credential's verdict: apart for every way of
/// checking it, so a verdict of a looser check (whoami, which accepts any
/// org's key) never answers for a stricter one (one org's keys), nor the
/// guard's for a client component of the same app.
fn slot(credential: &str, org: Option<&str>, settings: &Settings) -> String {
    let service_key = checked_with(credential, settings).unwrap_or_default();
    cache::key(
        "verdict",
        &[
            settings.prefix,
            &settings.gatehouse_url,
            service_key,
            credential,
            org.unwrap_or_default(),
        ],
    )
}

/// A verdict this instance already holds, if it is still within its bound.
pub fn remembered(
    credential: &str,
    org: Option<&str>,
    settings: &Settings,
    now: i64,
) -> Option<Principal> {
    memo::get(&ACCEPTED, &slot(credential, org, settings), now)
}

/// A verdict as cached: good until `checked_at` plus the reader's own
/// bound, which may be shorter than the writer's.
#[derive(Serialize, Deserialize)]
struct Cached {
    principal: Principal,
    checked_at: i64,
}

/// `POST /v1/keys/verify`'s answer, the fields read here.
#[derive(Deserialize)]
struct Verdict {
    valid: bool,
    key_id: Option<String>,
    owner: Option<String>,
    org: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    permissions: Vec<String>,
}

/// The principal behind an API key (`gk_…`) or a session token; `None`
/// when Gatehouse refuses it. `org` is the client's `X-Org`, which picks
/// the org a session of a member of several acts in.
pub async fn verify(
    credential: &str,
    org: Option<&str>,
    settings: &Settings,
    cache: &Cache,
) -> Result<Option<Principal>, Problem> {
    let now = unix_now();
    let slot = slot(credential, org, settings);
    if settings.cache_seconds > 0
        && let Some(hit) = cache.get::<Cached>(&slot).await
    {
        let until = hit.checked_at + settings.cache_seconds;
        if hit.checked_at <= now && now < until {
            memo::put(&ACCEPTED, slot, hit.principal.clone(), until, now);
            return Ok(Some(hit.principal));
        }
        cache.remove(&slot).await;
    }
    let fresh = if checked_with(credential, settings).is_some() {
        verify_key(credential, settings).await?
    } else {
        whoami(credential, org, settings).await?
    };
    if let Some(principal) = &fresh
        && settings.cache_seconds > 0
    {
        let entry = Cached {
            principal: principal.clone(),
            checked_at: now,
        };
        cache.put(&slot, &entry).await;
        let until = now + settings.cache_seconds;
        memo::put(&ACCEPTED, slot, principal.clone(), until, now);
    }
    Ok(fresh)
}

/// Gatehouse's API keys carry this prefix.
fn is_api_key(credential: &str) -> bool {
    credential.starts_with("gk_")
}

/// A 401 or 403 from Gatehouse refuses the credential; anything else but
/// 200 is Gatehouse failing, and the request is not let through.
fn refused_or_failed(status: u16, what: &str) -> Result<Option<Principal>, Problem> {
    if matches!(status, 401 | 403 | 404) {
        return Ok(None);
    }
    eprintln!("gatehouse: {what} answered {status}");
    Err(gatehouse::unavailable(what))
}

async fn whoami(
    credential: &str,
    org: Option<&str>,
    settings: &Settings,
) -> Result<Option<Principal>, Problem> {
    let what = "GET /v1/auth/whoami";
    let headers: Vec<(&str, &str)> = org.map(|o| ("x-org", o)).into_iter().collect();
    let answer = gatehouse::call(
        http::Method::GET,
        &settings.url("/v1/auth/whoami"),
        Some(credential),
        &headers,
        None,
        what,
    )
    .await?;
    if answer.status != 200 {
        return refused_or_failed(answer.status, what);
    }
    serde_json::from_slice(&answer.body)
        .map(Some)
        .map_err(|_| gatehouse::unavailable(what))
}

/// Through `POST /v1/keys/verify` with the app's service key: the key must
/// be of the service key's org (another org's key verifies as unknown).
async fn verify_key(credential: &str, settings: &Settings) -> Result<Option<Principal>, Problem> {
    let what = "POST /v1/keys/verify";
    let answer = gatehouse::call(
        http::Method::POST,
        &settings.url("/v1/keys/verify"),
        settings.service_key.as_deref(),
        &[],
        Some(&serde_json::json!({ "key": credential })),
        what,
    )
    .await?;
    if answer.status != 200 {
        // The service key itself is refused: the app is misconfigured.
        eprintln!(
            "gatehouse: {what} answered {} (is {}_service_key valid, with keys:verify?)",
            answer.status, settings.prefix
        );
        return Err(Problem::new(ErrorCode::Internal).detail("the request could not be completed"));
    }
    let verdict: Verdict =
        serde_json::from_slice(&answer.body).map_err(|_| gatehouse::unavailable(what))?;
    let (true, Some(id)) = (verdict.valid, verdict.key_id) else {
        return Ok(None);
    };
    Ok(Some(Principal {
        subject: Subject::ApiKey {
            id,
            owner_user_id: verdict.owner,
        },
        org_id: verdict.org,
        org_role: None,
        team_ids: Vec::new(),
        roles: verdict.roles,
        permissions: verdict.permissions,
        acting_as: None,
        credential: Credential::ApiKey,
    }))
}
