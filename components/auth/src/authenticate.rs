//! The one entry point from a request's credential to a [`Principal`].

use gatehouse_http::audit::{Actor, Trail};
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::principal::{Credential, Principal, Subject};
use gatehouse_http::{ErrorCode, Problem};
use spin_sdk::http::Request;

use crate::apikey::{self, Code, Verification};
use crate::membership::{self, ORG_HEADER};
use crate::session::{self, SESSION_PREFIX, SessionAuth};

/// The token in `Authorization: Bearer <token>`, if any.
pub fn bearer_token(req: &Request) -> Option<&str> {
    req.headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn missing() -> Problem {
    Problem::new(ErrorCode::Unauthenticated)
        .detail("send credentials as Authorization: Bearer <token>")
        .header("www-authenticate", "Bearer")
}

fn unrecognised() -> Problem {
    Problem::new(ErrorCode::Unauthenticated)
        .detail("the credentials are invalid or expired")
        .header("www-authenticate", "Bearer")
}

/// The answer to a valid credential that is not a session, on a route
/// that acts for a signed-in person.
pub fn session_required() -> Problem {
    Problem::new(ErrorCode::SessionRequired).detail(
        "this route acts for a signed-in person: send a session token (ghs_…), not a JWT or an API key",
    )
}

/// The signed-in user's session behind the request, with the user's
/// memberships. Only session tokens are accepted.
pub async fn authenticate_session(req: &Request) -> Result<SessionAuth, Problem> {
    let token = bearer_token(req).ok_or_else(missing)?;
    if act_as_header(req).is_some() {
        // Account routes are the caller's own: nobody acts as another here.
        return Err(Problem::new(ErrorCode::Forbidden)
            .detail("account routes cannot be used while acting as another member"));
    }
    if !token.starts_with(SESSION_PREFIX) {
        // A valid JWT or API key is never called invalid: it is the wrong
        // kind of credential for a route that acts for a signed-in person.
        authenticate(req).await?;
        return Err(session_required());
    }
    let auth = session::lookup(token).await?;
    if let Some(trail) = Trail::of(req.extensions()) {
        trail.set_actor(Actor::Principal(membership::user_principal(
            &auth.user.id,
            None,
            Credential::Session,
        )));
    }
    Ok(auth)
}

/// Who is calling, acting in which org.
///
/// A JWT Gatehouse issued (`POST /v1/tokens`) stands for what it says,
/// verified offline against the published signing keys; a JWT of an org's
/// own identity provider stands for the member its subject is linked to,
/// else for that subject with the roles its claims map to. A session token
/// (`ghs_…`) stands for its user, acting in the org the
/// `X-Org` header names (by id or handle; 404 for an org the caller is not
/// in), else the caller's only org, else none. An API key stands for
/// itself in its own org, with its roles (or, for a key that inherits, its
/// owner's permissions); each use counts against its rate limit and
/// budget. An `X-Org` naming another org answers 404.
///
/// With `X-Act-As: <user id>`, an org admin holding `users:impersonate`
/// acts as that member of the org (see [`crate::impersonation`]); every
/// request made so, or with a token issued so, is written to the org's
/// audit trail before it is served.
pub async fn authenticate(req: &Request) -> Result<Principal, Problem> {
    let principal = credential_principal(req).await?;
    let principal = match act_as_header(req) {
        Some(target) => crate::impersonation::act_as(&principal, target).await?,
        None => principal,
    };
    if principal.acting_as.is_some() {
        crate::impersonation::record(&principal, req).await?;
    }
    // Only a request the audit trail records pays for the copy.
    if let Some(trail) = Trail::of(req.extensions()) {
        trail.set_actor(Actor::Principal(principal.clone()));
    }
    Ok(principal)
}

fn act_as_header(req: &Request) -> Option<&str> {
    req.headers()
        .get(crate::impersonation::ACT_AS_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

async fn credential_principal(req: &Request) -> Result<Principal, Problem> {
    let token = bearer_token(req).ok_or_else(missing)?;
    let header = membership::org_reference(req.headers().get(ORG_HEADER))?;
    if crate::jwt::looks_like_jwt(token) {
        let conn = crate::db::open().await?;
        let org = match header {
            Some(reference) => Some(org_id_of(&conn, reference).await?),
            None => None,
        };
        let principal = crate::jwt::authenticate(&conn, token, org.as_deref()).await?;
        // A token names its org; X-Org may only repeat it.
        if org.is_some() && principal.org_id != org {
            return Err(membership::unknown_org());
        }
        return Ok(principal);
    }
    if token.starts_with(SESSION_PREFIX) {
        let auth = session::lookup(token).await?;
        let org = membership::select(&auth.memberships, header)?;
        return Ok(membership::user_principal(
            &auth.user.id,
            org,
            Credential::Session,
        ));
    }
    let conn = crate::db::Lazy::new();
    let verification = apikey::verify(&conn, token, unix_now()).await?;
    let (Code::Valid, Some(key)) = (verification.code, verification.key.as_ref()) else {
        return Err(refused(&verification));
    };
    if let Some(reference) = header
        && reference != key.org_id
    {
        // Keys name their org by id; a handle is checked against the org's.
        let rows = crate::db::query(
            conn.get().await?,
            "SELECT 1 FROM orgs WHERE org_id = ? AND handle = ?",
            vec![
                crate::db::text(&key.org_id),
                crate::db::text(reference.to_ascii_lowercase()),
            ],
        )
        .await?;
        if rows.is_empty() {
            return Err(membership::unknown_org());
        }
    }
    Ok(Principal {
        subject: Subject::ApiKey {
            id: key.key_id.clone(),
            owner_user_id: Some(key.owner_user_id.clone()),
        },
        org_id: Some(key.org_id.clone()),
        org_role: None,
        team_ids: Vec::new(),
        roles: verification.grants.roles.clone(),
        permissions: verification.grants.permissions.clone(),
        acting_as: None,
        credential: Credential::ApiKey,
    })
}

/// The id of the org `X-Org` names by id or handle; an unknown handle
/// stays as it is (it matches no org, so a verified token answers 404, and
/// an unverified one 401: nobody learns which handles exist unverified).
async fn org_id_of(
    conn: &spin_sdk::sqlite::Connection,
    reference: &str,
) -> Result<String, Problem> {
    if reference.starts_with("org_") {
        return Ok(reference.to_string());
    }
    let rows = crate::db::query(
        conn,
        "SELECT org_id FROM orgs WHERE handle = ?",
        vec![crate::db::text(reference.to_ascii_lowercase())],
    )
    .await?;
    Ok(rows
        .first()
        .map_or_else(|| reference.to_string(), |r| crate::db::get_text(r, 0)))
}

/// The answer to a key that may not be used now.
fn refused(verification: &Verification) -> Problem {
    match verification.code {
        Code::RateLimited => {
            let now = unix_now();
            let retry = verification.ratelimit.map_or(1, |r| (r.reset - now).max(1));
            Problem::new(ErrorCode::RateLimited)
                .detail("the API key's rate limit is used up for now")
                .header("retry-after", retry.to_string())
        }
        Code::UsageExceeded => {
            Problem::new(ErrorCode::Forbidden).detail("the API key has no uses left")
        }
        _ => unrecognised(),
    }
}
