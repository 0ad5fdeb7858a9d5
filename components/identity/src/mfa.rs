//! TOTP multi-factor authentication (RFC 6238).
//!
//! Enrolment hands out a secret and its `otpauth://` URI; the factor is on
//! once a code from the app confirms it, which also issues ten single-use
//! recovery codes (stored as SHA-256 digests). Turning it off, or issuing
//! new recovery codes, takes a current code. The secret is sealed at rest
//! (AES-256-GCM under the deployment's data key, itself sealed by the
//! `master_key` variable; bound to the user: `gatehouse_secrets::sealing`),
//! and a code is never accepted twice: each accepted step is recorded and
//! only later steps verify.
//!
//! With the factor on, a correct password no longer opens a session: login
//! answers `202` with a five-minute, single-use challenge (`gmc_` + 256
//! random bits) that `POST /v1/auth/mfa` completes with a code or a
//! recovery code. A challenge takes at most five wrong codes.

use gatehouse_auth::session::{User, user_from};
use gatehouse_http::audit::{Actor, Trail};
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use gatehouse_secrets::sealed::{Binding, Kind};
use gatehouse_secrets::sealing;
use identity_core::{token, totp};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;

use crate::outbox::Outbox;
use crate::sessions::{Device, start_session};
use crate::{db, mfa_guard, no_content};

/// Prefix of login challenges.
const CHALLENGE_PREFIX: &str = "gmc_";
/// How long a challenge may be completed.
const CHALLENGE_TTL_SECONDS: i64 = 5 * 60;
/// Wrong codes a challenge takes before it dies.
const MAX_CHALLENGE_ATTEMPTS: i64 = 5;
/// The issuer shown in authenticator apps.
const ISSUER: &str = "Gatehouse";

fn code_errors(pointer: &str, code: &str) -> Vec<FieldError> {
    if code.len() == totp::DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit()) {
        Vec::new()
    } else {
        vec![FieldError::new(
            pointer,
            "invalid_format",
            "code must be 6 digits",
        )]
    }
}

fn wrong_code() -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the code is not valid")
        .errors(vec![FieldError::new(
            "/code",
            "invalid_code",
            "the code is wrong, expired or already used",
        )])
}

struct Totp {
    secret: Vec<u8>,
    confirmed: bool,
    last_used_step: Option<u64>,
}

async fn load(conn: &Connection, user_id: &str) -> Result<Option<Totp>, Problem> {
    let rows = db::query(
        conn,
        "SELECT secret_sealed, confirmed_at, last_used_step FROM mfa_totp WHERE user_id = ?",
        vec![db::text(user_id)],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let binding = Binding::deployment(Kind::Totp, user_id);
    let secret = sealing::open(conn, &binding, &db::get_text(row, 0))
        .await?
        .ok_or_else(|| {
            eprintln!("identity: the TOTP secret of {user_id} does not open for its row");
            Problem::internal()
        })?;
    Ok(Some(Totp {
        secret,
        confirmed: db::get_int(row, 1).is_some(),
        last_used_step: db::get_int(row, 2).and_then(|s| u64::try_from(s).ok()),
    }))
}

/// Whether the user has a confirmed TOTP factor.
pub async fn enabled(conn: &Connection, user_id: &str) -> Result<bool, Problem> {
    let rows = db::query(
        conn,
        "SELECT 1 FROM mfa_totp WHERE user_id = ? AND confirmed_at IS NOT NULL",
        vec![db::text(user_id)],
    )
    .await?;
    Ok(!rows.is_empty())
}

/// Checks a TOTP code and spends its step; only a later step verifies next.
async fn spend_code(
    conn: &Connection,
    user_id: &str,
    factor: &Totp,
    code: &str,
) -> Result<bool, Problem> {
    let now = u64::try_from(unix_now()).unwrap_or_default();
    let Some(step) = totp::verify(&factor.secret, code, now, factor.last_used_step) else {
        return Ok(false);
    };
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    // Conditional on the step still being unused: two requests with one
    // code cannot both pass.
    let spent = db::exec(
        conn,
        "UPDATE mfa_totp SET last_used_step = ? WHERE user_id = ? AND (last_used_step IS NULL OR last_used_step < ?)",
        vec![db::int(step), db::text(user_id), db::int(step)],
    )
    .await?;
    Ok(spent == 1)
}

/// Spends a recovery code; `false` when it is unknown or used.
async fn spend_recovery_code(
    conn: &Connection,
    user_id: &str,
    typed: &str,
) -> Result<bool, Problem> {
    let digest = token::digest(&totp::normalize_recovery_code(typed));
    let spent = db::exec(
        conn,
        "UPDATE mfa_recovery_codes SET used_at = ? WHERE digest = ? AND user_id = ? AND used_at IS NULL",
        vec![db::int(unix_now()), db::text(digest), db::text(user_id)],
    )
    .await?;
    Ok(spent == 1)
}

/// Replaces the user's recovery codes with ten new ones, returned once.
async fn issue_recovery_codes(
    conn: &Connection,
    user_id: &str,
    now: i64,
) -> Result<Vec<String>, Problem> {
    db::exec(
        conn,
        "DELETE FROM mfa_recovery_codes WHERE user_id = ?",
        vec![db::text(user_id)],
    )
    .await?;
    let codes = totp::recovery_codes();
    for code in &codes {
        db::exec(
            conn,
            "INSERT INTO mfa_recovery_codes (digest, user_id, created_at) VALUES (?, ?, ?)",
            vec![
                db::text(token::digest(&totp::normalize_recovery_code(code))),
                db::text(user_id),
                db::int(now),
            ],
        )
        .await?;
    }
    Ok(codes)
}

#[derive(Serialize)]
struct Status {
    totp: &'static str,
    enabled_at: Option<i64>,
    recovery_codes_remaining: i64,
}

/// `GET /v1/auth/mfa`: the caller's factors.
pub async fn status(req: Request, request_id: &str) -> Result<Response, Problem> {
    let auth = gatehouse_auth::authenticate_session(&req).await?;
    let conn = db::open().await?;
    let rows = db::query(
        &conn,
        "SELECT confirmed_at FROM mfa_totp WHERE user_id = ?",
        vec![db::text(&auth.user.id)],
    )
    .await?;
    // No row: off; a row without confirmed_at: enrolment under way.
    let enabled_at = rows.first().and_then(|r| db::get_int(r, 0));
    let totp = match (rows.first(), enabled_at) {
        (None, _) => "disabled",
        (Some(_), None) => "pending",
        (Some(_), Some(_)) => "enabled",
    };
    let remaining = db::query(
        &conn,
        "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = ? AND used_at IS NULL",
        vec![db::text(&auth.user.id)],
    )
    .await?;
    let body = Status {
        totp,
        enabled_at,
        recovery_codes_remaining: remaining
            .first()
            .and_then(|r| db::get_int(r, 0))
            .unwrap_or_default(),
    };
    Ok(response::json(200, &body, request_id))
}

#[derive(Serialize)]
struct Enrolment {
    secret: String,
    otpauth_uri: String,
}

/// `POST /v1/auth/mfa/totp`: starts (or restarts) enrolment.
pub async fn enroll(req: Request, request_id: &str) -> Result<Response, Problem> {
    let auth = gatehouse_auth::authenticate_session(&req).await?;
    let conn = db::open().await?;
    if enabled(&conn, &auth.user.id).await? {
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("an authenticator is already on: turn it off first to enrol another"));
    }
    let secret = totp::new_secret();
    let raw = totp::base32_decode(&secret).ok_or_else(Problem::internal)?;
    let now = unix_now();
    let binding = Binding::deployment(Kind::Totp, &auth.user.id);
    let sealed = sealing::seal(&conn, &binding, &raw, now).await?;
    db::exec(
        &conn,
        "INSERT INTO mfa_totp (user_id, secret_sealed, created_at) VALUES (?, ?, ?)
         ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, created_at = excluded.created_at, last_used_step = NULL
         WHERE mfa_totp.confirmed_at IS NULL",
        vec![db::text(&auth.user.id), db::text(sealed), db::int(now)],
    )
    .await?;
    let body = Enrolment {
        otpauth_uri: totp::otpauth_uri(ISSUER, &auth.user.email, &secret),
        secret,
    };
    Ok(response::json(201, &body, request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}

impl Validate for Code {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let errors = code_errors("/code", &self.code);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Serialize)]
struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

/// `POST /v1/auth/mfa/totp/confirm`: a code from the app turns the factor
/// on and issues the recovery codes, shown this once.
pub async fn confirm(req: Request, request_id: &str) -> Result<Response, Problem> {
    let auth = gatehouse_auth::authenticate_session(&req).await?;
    let body: Code = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let conn = db::open().await?;
    let factor = load(&conn, &auth.user.id).await?.ok_or_else(|| {
        Problem::new(ErrorCode::Conflict).detail("start enrolment first: POST /v1/auth/mfa/totp")
    })?;
    if factor.confirmed {
        return Err(Problem::new(ErrorCode::Conflict).detail("the authenticator is already on"));
    }
    if !spend_code(&conn, &auth.user.id, &factor, &body.code).await? {
        return Err(wrong_code());
    }
    let now = unix_now();
    db::exec(
        &conn,
        "UPDATE mfa_totp SET confirmed_at = ? WHERE user_id = ? AND confirmed_at IS NULL",
        vec![db::int(now), db::text(&auth.user.id)],
    )
    .await?;
    let recovery_codes = issue_recovery_codes(&conn, &auth.user.id, now).await?;
    let on = serde_json::json!({"message": "An authenticator app now guards your sign-ins."});
    gatehouse_notify::notify_after(&conn, None, &auth.user.id, "mfa.changed", on).await;
    Ok(response::json(
        200,
        &RecoveryCodes { recovery_codes },
        request_id,
    ))
}

async fn confirmed_factor(conn: &Connection, user_id: &str) -> Result<Totp, Problem> {
    match load(conn, user_id).await? {
        Some(factor) if factor.confirmed => Ok(factor),
        _ => Err(Problem::new(ErrorCode::Conflict).detail("no authenticator is on")),
    }
}

/// `DELETE /v1/auth/mfa/totp` with a current code: turns the factor off and
/// drops the recovery codes.
pub async fn disable(req: Request, request_id: &str) -> Result<Response, Problem> {
    let auth = gatehouse_auth::authenticate_session(&req).await?;
    let body: Code = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let conn = db::open().await?;
    let factor = confirmed_factor(&conn, &auth.user.id).await?;
    if !spend_code(&conn, &auth.user.id, &factor, &body.code).await? {
        return Err(wrong_code());
    }
    for sql in [
        "DELETE FROM mfa_recovery_codes WHERE user_id = ?",
        "DELETE FROM mfa_totp WHERE user_id = ?",
        "DELETE FROM mfa_challenges WHERE user_id = ?",
    ] {
        db::exec(&conn, sql, vec![db::text(&auth.user.id)]).await?;
    }
    let off =
        serde_json::json!({"message": "Your authenticator app no longer guards your sign-ins."});
    gatehouse_notify::notify_after(&conn, None, &auth.user.id, "mfa.changed", off).await;
    no_content(request_id)
}

/// `POST /v1/auth/mfa/recovery-codes` with a current code: ten new codes
/// replace the old ones.
pub async fn regenerate(req: Request, request_id: &str) -> Result<Response, Problem> {
    let auth = gatehouse_auth::authenticate_session(&req).await?;
    let body: Code = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let conn = db::open().await?;
    let factor = confirmed_factor(&conn, &auth.user.id).await?;
    if !spend_code(&conn, &auth.user.id, &factor, &body.code).await? {
        return Err(wrong_code());
    }
    let recovery_codes = issue_recovery_codes(&conn, &auth.user.id, unix_now()).await?;
    Ok(response::json(
        200,
        &RecoveryCodes { recovery_codes },
        request_id,
    ))
}

#[derive(Serialize)]
struct Challenge {
    status: &'static str,
    challenge: String,
    expires_at: i64,
    methods: [&'static str; 2],
}

/// Login's answer when the password was right and a second factor is due.
pub async fn challenge(
    conn: &Connection,
    user: &User,
    device: &Device,
    now: i64,
    request_id: &str,
) -> Result<Response, Problem> {
    let issued = token::issue(CHALLENGE_PREFIX);
    let expires_at = now + CHALLENGE_TTL_SECONDS;
    db::exec(
        conn,
        "INSERT INTO mfa_challenges (digest, user_id, user_agent, client_address, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        vec![
            db::text(&issued.digest),
            db::text(&user.id),
            db::opt_text(device.agent.clone()),
            db::opt_text(device.address.clone()),
            db::int(expires_at),
            db::int(now),
        ],
    )
    .await?;
    let body = Challenge {
        status: "mfa_required",
        challenge: issued.secret,
        expires_at,
        methods: ["totp", "recovery_code"],
    };
    Ok(response::json(202, &body, request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Complete {
    challenge: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

impl Validate for Complete {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        match (&self.code, &self.recovery_code) {
            (Some(code), None) => {
                let errors = code_errors("/code", code);
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(errors)
                }
            }
            (None, Some(_)) => Ok(()),
            _ => Err(vec![FieldError::new(
                "/code",
                "required",
                "send either code or recovery_code",
            )]),
        }
    }
}

fn invalid_challenge() -> Problem {
    Problem::new(ErrorCode::Unauthenticated)
        .detail("the sign-in challenge is invalid or expired: sign in again")
        .header("www-authenticate", "Bearer")
}

/// `POST /v1/auth/mfa`: completes a login challenge with a code or a
/// recovery code and opens the session.
pub async fn complete(
    req: Request,
    request_id: &str,
    outbox: &Outbox,
) -> Result<Response, Problem> {
    let trail = Trail::of_request(&req);
    let body: Complete = json::read_json(req, json::DEFAULT_LIMIT).await?;
    if !token::well_formed(&body.challenge, CHALLENGE_PREFIX) {
        return Err(invalid_challenge());
    }
    let digest = token::digest(&body.challenge);
    let now = unix_now();
    let conn = db::open().await?;
    // Each try is counted before it is judged, so parallel guesses cannot
    // exceed the allowance.
    let rows = db::query(
        &conn,
        "UPDATE mfa_challenges SET attempts = attempts + 1
         WHERE digest = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?
         RETURNING user_id, user_agent, client_address",
        vec![
            db::text(&digest),
            db::int(now),
            db::int(MAX_CHALLENGE_ATTEMPTS),
        ],
    )
    .await?;
    let row = rows.first().ok_or_else(invalid_challenge)?;
    let user_id = db::get_text(row, 0);
    trail.set_actor(Actor::User(user_id.clone()));
    let device = Device {
        agent: db::get_opt_text(row, 1),
        address: db::get_opt_text(row, 2),
    };
    let factor = load(&conn, &user_id)
        .await?
        .filter(|f| f.confirmed)
        .ok_or_else(invalid_challenge)?;
    // Counted per user as well as per challenge: a new challenge (the
    // password again) buys no new guesses.
    mfa_guard::claim(&conn, &user_id, now).await?;
    let passed = match (&body.code, &body.recovery_code) {
        (Some(code), _) => spend_code(&conn, &user_id, &factor, code).await?,
        (None, Some(recovery)) => spend_recovery_code(&conn, &user_id, recovery).await?,
        (None, None) => false,
    };
    if !passed {
        mfa_guard::failed(&conn, &user_id, now, outbox).await?;
        return Err(if body.code.is_some() {
            wrong_code()
        } else {
            Problem::new(ErrorCode::ValidationFailed)
                .detail("the recovery code is not valid")
                .errors(vec![FieldError::new(
                    "/recovery_code",
                    "invalid_code",
                    "the recovery code is wrong or already used",
                )])
        });
    }
    let spent = db::exec(
        &conn,
        "UPDATE mfa_challenges SET used_at = ? WHERE digest = ? AND used_at IS NULL",
        vec![db::int(now), db::text(&digest)],
    )
    .await?;
    if spent == 0 {
        return Err(invalid_challenge());
    }
    mfa_guard::passed(&conn, &user_id).await?;
    let rows = db::query(
        &conn,
        "SELECT id, email, display_name, status, email_verified_at, created_at, email_normalized FROM users WHERE id = ? AND status = 'active'",
        vec![db::text(&user_id)],
    )
    .await?;
    let row = rows.first().ok_or_else(invalid_challenge)?;
    let email = db::get_text(row, 6);
    start_session(
        &conn,
        user_from(row),
        device,
        &email,
        now,
        request_id,
        outbox,
    )
    .await
}
