//! Login, logout and the signed-in user.
//!
//! A session is an opaque bearer token (`ghs_` + 256 random bits) whose
//! SHA-256 digest is stored. It dies when revoked, after the idle lifetime
//! without use, or at its absolute lifetime, whichever comes first; each use
//! slides the idle deadline forward, never past the absolute one.
//!
//! Failed logins answer identically for an unknown address and a wrong
//! password, after the same argon2id work.

use gatehouse_http::audit::{Actor, Trail};
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use identity_core::email::normalize_email;
use identity_core::{password, token};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;

use gatehouse_auth::session::{Cache, SESSION_PREFIX, User, user_from};

use crate::attempts::{self, Attempt, Outcome};
use crate::outbox::Outbox;
use crate::{config, db, mfa};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

impl Validate for Login {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.email.trim().is_empty() {
            errors.push(FieldError::new("/email", "required", "email is required"));
        }
        if self.password.is_empty() {
            errors.push(FieldError::new(
                "/password",
                "required",
                "password is required",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Serialize)]
struct SessionInfo {
    id: String,
    created_at: i64,
    idle_expires_at: i64,
    absolute_expires_at: i64,
}

#[derive(Serialize)]
struct LoggedIn {
    token: String,
    token_type: &'static str,
    session: SessionInfo,
    user: User,
}

fn bad_credentials() -> Problem {
    Problem::new(ErrorCode::Unauthenticated)
        .detail("the email or password is incorrect")
        .header("www-authenticate", "Bearer")
}

fn user_agent(req: &Request) -> Option<String> {
    req.headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect())
}

/// `POST /v1/auth/login`.
pub async fn login(req: Request, request_id: &str, outbox: &Outbox) -> Result<Response, Problem> {
    let Device { agent, address } = Device::of(&req).await;
    let trail = Trail::of_request(&req);
    let body: Login = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let email = normalize_email(&body.email);
    let now = unix_now();
    let conn = db::open().await?;
    let mut attempt = Attempt {
        user_id: None,
        email: &email,
        address: address.as_deref(),
        agent: agent.as_deref(),
    };
    if let Some(retry_after) = attempts::throttled(&conn, &attempt, now).await? {
        attempts::record(&conn, &attempt, Outcome::Throttled, false, now).await?;
        return Err(Problem::new(ErrorCode::RateLimited)
            .detail("too many failed sign-ins; try again later")
            .header("retry-after", retry_after.to_string()));
    }
    let rows = db::query(
        &conn,
        "SELECT id, email, display_name, status, email_verified_at, created_at, password_hash FROM users WHERE email_normalized = ?",
        vec![db::text(&email)],
    )
    .await?;
    let Some(row) = rows.first() else {
        password::verify_nothing(&body.password);
        attempts::record(&conn, &attempt, Outcome::BadCredentials, false, now).await?;
        return Err(bad_credentials());
    };
    let user = user_from(row);
    trail.set_actor(Actor::User(user.id.clone()));
    attempt.user_id = Some(&user.id);
    let stored_hash = db::get_text(row, 6);
    if !password::verify(&body.password, &stored_hash) {
        attempts::record(&conn, &attempt, Outcome::BadCredentials, false, now).await?;
        return Err(bad_credentials());
    }
    // Only someone who knows the password learns the account's state.
    match user.status.as_str() {
        "active" => {}
        "pending" => {
            attempts::record(&conn, &attempt, Outcome::NotVerified, false, now).await?;
            return Err(Problem::new(ErrorCode::Forbidden)
                .detail("verify your email address before signing in"));
        }
        _ => {
            attempts::record(&conn, &attempt, Outcome::Inactive, false, now).await?;
            return Err(Problem::new(ErrorCode::Forbidden).detail("this account is inactive"));
        }
    }
    if password::needs_rehash(&stored_hash) {
        db::exec(
            &conn,
            "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
            vec![
                db::text(password::hash(&body.password)),
                db::int(now),
                db::text(&user.id),
            ],
        )
        .await?;
    }
    let device = Device { agent, address };
    if mfa::enabled(&conn, &user.id).await? {
        return mfa::challenge(&conn, &user, &device, now, request_id).await;
    }
    start_session(&conn, user, device, &email, now, request_id, outbox).await
}

/// Where a sign-in comes from.
pub struct Device {
    /// The client's user agent.
    pub agent: Option<String>,
    /// The client address without port.
    pub address: Option<String>,
}

impl Device {
    /// The device a request comes from: its user agent, and the client
    /// address [`gatehouse_http::client_address::of`] believes.
    pub async fn of(req: &Request) -> Device {
        Device {
            agent: user_agent(req),
            address: gatehouse_http::client_address::of(req).await,
        }
    }
}

/// Ends a sign-in whose every factor checked out: records it (flagging and
/// mailing a device never seen for the user) and opens a session.
pub async fn start_session(
    conn: &Connection,
    user: User,
    device: Device,
    email: &str,
    now: i64,
    request_id: &str,
    outbox: &Outbox,
) -> Result<Response, Problem> {
    let attempt = Attempt {
        user_id: Some(&user.id),
        email,
        address: device.address.as_deref(),
        agent: device.agent.as_deref(),
    };
    let new_device = attempts::is_new_device(conn, &attempt).await?;
    attempts::record(conn, &attempt, Outcome::Success, new_device, now).await?;
    if new_device {
        let mail = format!(
            "Your Gatehouse account was just signed in to from a device we have not seen before.\n\nAddress: {}\nBrowser or app: {}\n\nIf this was you, nothing needs doing. If not, reset your password and sign out your other sessions.\n",
            device.address.as_deref().unwrap_or("unknown"),
            device.agent.as_deref().unwrap_or("unknown")
        );
        outbox
            .enqueue(
                conn,
                &user.email,
                "new_sign_in",
                "New sign-in to your account",
                &mail,
                now,
            )
            .await?;
        let seen = serde_json::json!({
            "address": device.address.as_deref().unwrap_or("unknown"),
            "user_agent": device.agent.as_deref().unwrap_or("unknown"),
        });
        gatehouse_notify::notify_after(conn, None, &user.id, "sign_in.new_device", seen).await;
    }
    let issued = token::issue(SESSION_PREFIX);
    let absolute_expires_at = now + config::session_absolute_ttl().await;
    let session = SessionInfo {
        id: db::new_id("ses_"),
        created_at: now,
        idle_expires_at: (now + gatehouse_auth::session::idle_ttl().await).min(absolute_expires_at),
        absolute_expires_at,
    };
    db::exec(
        conn,
        "INSERT INTO sessions (id, token_digest, user_id, user_agent, client_address, created_at, last_seen_at, idle_expires_at, absolute_expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            db::text(&session.id),
            db::text(&issued.digest),
            db::text(&user.id),
            db::opt_text(device.agent),
            db::opt_text(device.address),
            db::int(now),
            db::int(now),
            db::int(session.idle_expires_at),
            db::int(session.absolute_expires_at),
        ],
    )
    .await?;
    let body = LoggedIn {
        token: issued.secret,
        token_type: "Bearer",
        session,
        user,
    };
    Ok(response::json(200, &body, request_id))
}

/// Reads a user by id (the columns `user_from` expects).
pub async fn load_user(conn: &Connection, user_id: &str) -> Result<User, Problem> {
    let rows = db::query(
        conn,
        "SELECT id, email, display_name, status, email_verified_at, created_at FROM users WHERE id = ?",
        vec![db::text(user_id)],
    )
    .await?;
    rows.first().map(user_from).ok_or_else(Problem::not_found)
}

/// `GET /v1/me`: the signed-in user, for a session or for a user's JWT
/// (an API key is not a person: 403 `session_required`).
pub async fn me(req: Request, request_id: &str) -> Result<Response, Problem> {
    let is_session =
        gatehouse_auth::bearer_token(&req).is_none_or(|t| t.starts_with(SESSION_PREFIX));
    if is_session
        || req
            .headers()
            .contains_key(gatehouse_auth::impersonation::ACT_AS_HEADER)
    {
        let auth = gatehouse_auth::authenticate_session(&req).await?;
        return Ok(response::json(200, &auth.user, request_id));
    }
    let principal = gatehouse_auth::authenticate(&req).await?;
    match principal.subject {
        gatehouse_http::principal::Subject::User { id } if principal.acting_as.is_none() => {
            let conn = db::open().await?;
            Ok(response::json(
                200,
                &load_user(&conn, &id).await?,
                request_id,
            ))
        }
        _ => Err(gatehouse_auth::session_required()),
    }
}

/// `GET /v1/auth/whoami`: the principal the request authenticates as,
/// acting in the org `X-Org` names (or the caller's only org), exactly as
/// every component sees it.
pub async fn whoami(req: Request, request_id: &str) -> Result<Response, Problem> {
    let principal = gatehouse_auth::authenticate(&req).await?;
    Ok(response::json(200, &principal, request_id))
}

/// `POST /v1/auth/logout`: revokes the calling session.
pub async fn logout(req: Request, request_id: &str) -> Result<Response, Problem> {
    let auth = gatehouse_auth::authenticate_session(&req).await?;
    let conn = db::open().await?;
    db::exec(
        &conn,
        "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        vec![db::int(unix_now()), db::text(&auth.session_id)],
    )
    .await?;
    Cache::open().await.invalidate_user(&auth.user.id).await?;
    crate::no_content(request_id)
}
