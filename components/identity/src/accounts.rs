//! Sign-up and email verification.
//!
//! Registration answers the same way whether or not the address already
//! has an account (the owner of an existing account is told by mail
//! instead), and does the same work in both cases, so neither the response
//! nor its timing tells a caller which addresses are registered.

use gatehouse_http::audit::{Actor, Trail};
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use identity_core::email::{normalize_email, valid_email};
use identity_core::{password, token};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;

use crate::outbox::Outbox;
use crate::problems::{invalid_token, password_errors};
use crate::{config, db};

/// Prefix of email verification tokens.
const VERIFY_PREFIX: &str = "gvt_";
/// How long a verification link works.
const VERIFY_TTL_SECONDS: i64 = 24 * 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    email: String,
    password: String,
    display_name: String,
}

impl Validate for Register {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if !valid_email(&self.email) {
            errors.push(FieldError::new(
                "/email",
                "invalid_format",
                "email must be a valid address",
            ));
        }
        errors.extend(display_name_error(&self.display_name));
        errors.extend(password_errors(password::check(
            &self.password,
            &self.email,
        )));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// What is wrong with a display name, if anything: 1 to 100 characters
/// once trimmed, none of them control or bidirectional-override ones.
fn display_name_error(name: &str) -> Option<FieldError> {
    let name = name.trim();
    if !(1..=100).contains(&name.chars().count()) {
        return Some(FieldError::new(
            "/display_name",
            "invalid_length",
            "display_name must have 1 to 100 characters",
        ));
    }
    (!identity_core::text::plain(name)).then(|| {
        FieldError::new(
            "/display_name",
            "invalid_characters",
            "display_name must not contain control or bidirectional-override characters",
        )
    })
}

#[derive(Serialize)]
struct Accepted {
    status: &'static str,
    message: &'static str,
}

const ACCEPTED: Accepted = Accepted {
    status: "verification_sent",
    message: "If this address can receive mail, a message with the next step is on its way.",
};

/// `POST /v1/auth/register`.
pub async fn register(
    req: Request,
    request_id: &str,
    outbox: &Outbox,
) -> Result<Response, Problem> {
    let trail = Trail::of_request(&req);
    let body: Register = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let email = body.email.trim().to_string();
    let normalized = normalize_email(&email);
    // Hash before looking the address up, so both outcomes cost the same.
    let hash = password::hash(&body.password);
    let now = unix_now();
    let conn = db::open().await?;
    let user_id = db::new_id("usr_");
    let inserted = db::exec(
        &conn,
        "INSERT INTO users (id, email, email_normalized, display_name, password_hash, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (email_normalized) DO NOTHING",
        vec![db::text(&user_id), db::text(&email), db::text(&normalized), db::text(body.display_name.trim()), db::text(hash), db::int(now), db::int(now)],
    )
    .await?;
    let base = config::public_base_url().await;
    if inserted == 1 {
        trail.set_actor(Actor::User(user_id.clone()));
        let issued = token::issue(VERIFY_PREFIX);
        db::exec(
            &conn,
            "INSERT INTO user_tokens (digest, user_id, purpose, expires_at, created_at) VALUES (?, ?, 'verify_email', ?, ?)",
            vec![db::text(&issued.digest), db::text(&user_id), db::int(now + VERIFY_TTL_SECONDS), db::int(now)],
        )
        .await?;
        let body = format!(
            "Welcome to Gatehouse.\n\nConfirm your address: {base}/verify-email?token={token}\n\nOr send this token to POST /v1/auth/verify-email: {token}\n\nThe link works once, for 24 hours.\n",
            token = issued.secret
        );
        outbox
            .enqueue(
                &conn,
                &email,
                "verify_email",
                "Confirm your email address",
                &body,
                now,
            )
            .await?;
    } else {
        let body = format!(
            "Someone tried to create a Gatehouse account with this address, which already has one.\n\nIf it was you, sign in instead: {base}/login\nIf not, you can ignore this message.\n"
        );
        outbox
            .enqueue(
                &conn,
                &email,
                "account_exists",
                "You already have an account",
                &body,
                now,
            )
            .await?;
    }
    Ok(response::json(202, &ACCEPTED, request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyEmail {
    token: String,
}

impl Validate for VerifyEmail {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

#[derive(Serialize)]
struct Verified {
    status: &'static str,
}

/// `POST /v1/auth/verify-email`: spends a verification token and activates
/// the account.
pub async fn verify_email(req: Request, request_id: &str) -> Result<Response, Problem> {
    let trail = Trail::of_request(&req);
    let body: VerifyEmail = json::read_json(req, json::DEFAULT_LIMIT).await?;
    if !token::well_formed(&body.token, VERIFY_PREFIX) {
        return Err(invalid_token());
    }
    let now = unix_now();
    let conn = db::open().await?;
    // Spending the token is one statement, so two concurrent uses cannot
    // both succeed.
    let rows = db::query(
        &conn,
        "UPDATE user_tokens SET used_at = ? WHERE digest = ? AND purpose = 'verify_email' AND used_at IS NULL AND expires_at > ? RETURNING user_id",
        vec![db::int(now), db::text(token::digest(&body.token)), db::int(now)],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Err(invalid_token());
    };
    trail.set_actor(Actor::User(db::get_text(row, 0)));
    db::exec(
        &conn,
        "UPDATE users SET status = 'active', email_verified_at = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
        vec![db::int(now), db::int(now), db::text(db::get_text(row, 0))],
    )
    .await?;
    Ok(response::json(
        200,
        &Verified { status: "verified" },
        request_id,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateMe {
    display_name: Option<String>,
}

impl Validate for UpdateMe {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        match self.display_name.as_deref().and_then(display_name_error) {
            Some(error) => Err(vec![error]),
            None => Ok(()),
        }
    }
}

/// `PATCH /v1/me`: changes the caller's own profile. The address is not
/// editable here: a new address must be verified first.
pub async fn update_me(req: Request, request_id: &str) -> Result<Response, Problem> {
    let conn = db::open().await?;
    let auth = gatehouse_auth::authenticate_session(&req).await?;
    let body: UpdateMe = json::read_json(req, json::DEFAULT_LIMIT).await?;
    if let Some(name) = body.display_name {
        db::exec(
            &conn,
            "UPDATE users SET display_name = ?, updated_at = ? WHERE id = ?",
            vec![
                db::text(name.trim()),
                db::int(unix_now()),
                db::text(&auth.user.id),
            ],
        )
        .await?;
    }
    // Cached sessions carry the user; make them re-read it.
    gatehouse_auth::session::Cache::open()
        .await
        .invalidate_user(&auth.user.id)
        .await?;
    let user = crate::sessions::load_user(&conn, &auth.user.id).await?;
    Ok(response::json(200, &user, request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Deactivate {
    password: String,
}

impl Validate for Deactivate {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        if self.password.is_empty() {
            return Err(vec![FieldError::new(
                "/password",
                "required",
                "password is required",
            )]);
        }
        Ok(())
    }
}

/// `DELETE /v1/me` with the password: the account becomes `inactive`,
/// every session ends, and sign-in is refused from then on. The last admin
/// of an org must hand it over first, so no org is left without one.
pub async fn deactivate(req: Request, request_id: &str) -> Result<Response, Problem> {
    let auth = gatehouse_auth::authenticate_session(&req).await?;
    let body: Deactivate = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let conn = db::open().await?;
    let rows = db::query(
        &conn,
        "SELECT password_hash FROM users WHERE id = ?",
        vec![db::text(&auth.user.id)],
    )
    .await?;
    let stored = rows.first().map(|r| db::get_text(r, 0)).unwrap_or_default();
    if !password::verify(&body.password, &stored) {
        return Err(Problem::new(ErrorCode::ValidationFailed)
            .detail("the password is incorrect")
            .errors(vec![FieldError::new(
                "/password",
                "incorrect",
                "the password is incorrect",
            )]));
    }
    let sole_admin = db::query(
        &conn,
        "SELECT o.handle FROM memberships m JOIN orgs o ON o.org_id = m.org_id
         WHERE m.user_id = ?1 AND m.role = 'admin'
           AND NOT EXISTS (SELECT 1 FROM memberships x WHERE x.org_id = m.org_id AND x.role = 'admin' AND x.user_id <> ?1)",
        vec![db::text(&auth.user.id)],
    )
    .await?;
    if let Some(row) = sole_admin.first() {
        return Err(Problem::new(ErrorCode::Conflict).detail(format!(
            "you are the only admin of {}: make another member admin or delete the org first",
            db::get_text(row, 0)
        )));
    }
    let now = unix_now();
    db::exec(
        &conn,
        "UPDATE users SET status = 'inactive', updated_at = ? WHERE id = ?",
        vec![db::int(now), db::text(&auth.user.id)],
    )
    .await?;
    gatehouse_auth::authority::bump_generation(&conn, &auth.user.id).await?;
    db::exec(
        &conn,
        "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        vec![db::int(now), db::text(&auth.user.id)],
    )
    .await?;
    gatehouse_auth::session::Cache::open()
        .await
        .invalidate_user(&auth.user.id)
        .await?;
    crate::no_content(request_id)
}
