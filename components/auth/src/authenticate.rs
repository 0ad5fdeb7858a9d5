//! The one entry point from a request's credential to a [`Principal`].

use gatehouse_http::principal::{Credential, Principal};
use gatehouse_http::{ErrorCode, Problem};
use spin_sdk::http::Request;

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

/// The signed-in user's session behind the request, with the user's
/// memberships. Only session tokens are accepted.
pub async fn authenticate_session(req: &Request) -> Result<SessionAuth, Problem> {
    let token = bearer_token(req).ok_or_else(missing)?;
    if !token.starts_with(SESSION_PREFIX) {
        return Err(unrecognised());
    }
    session::lookup(token).await
}

/// Who is calling, acting in which org: the org the `X-Org` header names
/// (by id or handle; 404 for an org the caller is not in), else the
/// caller's only org, else none.
pub async fn authenticate(req: &Request) -> Result<Principal, Problem> {
    let auth = authenticate_session(req).await?;
    let header = req.headers().get(ORG_HEADER).and_then(|v| v.to_str().ok());
    let org = membership::select(&auth.memberships, header)?;
    Ok(membership::user_principal(
        &auth.user.id,
        org,
        Credential::Session,
    ))
}
