//! Forgotten passwords: a single-use, one-hour token by mail, and a reset
//! that signs out every session of the account.
//!
//! `forgot` answers the same whether or not the address has an account,
//! and mails the address either way (a reset link, or word that there is
//! no account), so the work and its timing match too.

use gatehouse_http::audit::{Actor, Trail};
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{FieldError, Problem, Response, idempotency::unix_now, response};
use identity_core::email::{normalize_email, valid_email};
use identity_core::{password, token};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;

use crate::outbox::Outbox;
use crate::problems::{invalid_fields, invalid_token, password_errors};
use crate::{config, db};

/// Prefix of password reset tokens.
const RESET_PREFIX: &str = "grt_";
/// How long a reset link works.
const RESET_TTL_SECONDS: i64 = 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Forgot {
    email: String,
}

impl Validate for Forgot {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        if self.email.trim().is_empty() {
            return Err(vec![FieldError::new(
                "/email",
                "required",
                "email is required",
            )]);
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct Accepted {
    status: &'static str,
    message: &'static str,
}

/// `POST /v1/auth/password/forgot`.
pub async fn forgot(req: Request, request_id: &str, outbox: &Outbox) -> Result<Response, Problem> {
    let body: Forgot = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let now = unix_now();
    let conn = db::open().await?;
    let rows = db::query(
        &conn,
        "SELECT id, email FROM users WHERE email_normalized = ? AND status <> 'inactive'",
        vec![db::text(normalize_email(&body.email))],
    )
    .await?;
    if let Some(row) = rows.first() {
        let issued = token::issue(RESET_PREFIX);
        db::exec(
            &conn,
            "INSERT INTO user_tokens (digest, user_id, purpose, expires_at, created_at) VALUES (?, ?, 'reset_password', ?, ?)",
            vec![db::text(&issued.digest), db::text(db::get_text(row, 0)), db::int(now + RESET_TTL_SECONDS), db::int(now)],
        )
        .await?;
        let base = config::public_base_url().await;
        let mail = format!(
            "Someone asked to reset the password of your Gatehouse account.\n\nChoose a new password: {base}/reset-password?token={token}\n\nOr send this token to POST /v1/auth/password/reset: {token}\n\nThe link works once, for one hour. If you did not ask, ignore this message: your password stays as it is.\n",
            token = issued.secret
        );
        outbox
            .enqueue(
                &conn,
                &db::get_text(row, 1),
                "reset_password",
                "Reset your password",
                &mail,
                now,
            )
            .await?;
    } else if valid_email(&body.email) {
        // The address has no account: its owner hears so, which also makes
        // this path send a mail, like the other, so neither the answer nor
        // its timing tells which addresses are registered.
        let base = config::public_base_url().await;
        let mail = format!(
            "Someone asked to reset the password of a Gatehouse account for this address, but there is no account for it.\n\nIf it was you, you may have signed up with another address, or you can create an account: {base}/register\nIf not, you can ignore this message.\n"
        );
        outbox
            .enqueue(
                &conn,
                body.email.trim(),
                "reset_no_account",
                "Password reset requested",
                &mail,
                now,
            )
            .await?;
    }
    let accepted = Accepted {
        status: "reset_requested",
        message: "If this address has an account, a message with a reset link is on its way.",
    };
    Ok(response::json(202, &accepted, request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reset {
    token: String,
    password: String,
}

impl Validate for Reset {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        // The address-based rule runs once the account is known.
        let errors = password_errors(password::check(&self.password, ""));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[derive(Serialize)]
struct Done {
    status: &'static str,
    sessions_revoked: u64,
}

/// `POST /v1/auth/password/reset`: spends the token and every other
/// reset token of the account, sets the password, and signs the account
/// out everywhere, ending the JWTs issued for it too. Holding the mailed token proves
/// the address, so a pending account becomes active.
pub async fn reset(req: Request, request_id: &str) -> Result<Response, Problem> {
    let trail = Trail::of_request(&req);
    let body: Reset = json::read_json(req, json::DEFAULT_LIMIT).await?;
    if !token::well_formed(&body.token, RESET_PREFIX) {
        return Err(invalid_token());
    }
    let now = unix_now();
    let conn = db::open().await?;
    let digest = token::digest(&body.token);
    let rows = db::query(
        &conn,
        "SELECT u.id, u.email FROM user_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.digest = ? AND t.purpose = 'reset_password' AND t.used_at IS NULL AND t.expires_at > ? AND u.status <> 'inactive'",
        vec![db::text(&digest), db::int(now)],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Err(invalid_token());
    };
    let (user_id, email) = (db::get_text(row, 0), db::get_text(row, 1));
    trail.set_actor(Actor::User(user_id.clone()));
    let errors = password_errors(password::check(&body.password, &email));
    if !errors.is_empty() {
        return Err(invalid_fields(errors));
    }
    let hash = password::hash(&body.password);
    // Spend the token in one statement: of two concurrent resets, one wins.
    let spent = db::exec(
        &conn,
        "UPDATE user_tokens SET used_at = ? WHERE digest = ? AND used_at IS NULL",
        vec![db::int(now), db::text(&digest)],
    )
    .await?;
    if spent == 0 {
        return Err(invalid_token());
    }
    // Every other reset link of the account dies with this one: a link
    // mailed earlier (or to an inbox read by someone else) must not set
    // the password again.
    db::exec(
        &conn,
        "UPDATE user_tokens SET used_at = ? WHERE user_id = ? AND purpose = 'reset_password' AND used_at IS NULL",
        vec![db::int(now), db::text(&user_id)],
    )
    .await?;
    // Identity-provider links made before the address was proven (an
    // account a provider created) do not survive its owner proving it:
    // the provider could have claimed an address it does not own.
    db::exec(
        &conn,
        "DELETE FROM oidc_identities WHERE user_id = ? AND EXISTS (SELECT 1 FROM users WHERE id = ? AND email_verified_at IS NULL)",
        vec![db::text(&user_id), db::text(&user_id)],
    )
    .await?;
    db::exec(
        &conn,
        "UPDATE users SET password_hash = ?, status = 'active', email_verified_at = COALESCE(email_verified_at, ?), updated_at = ? WHERE id = ?",
        vec![db::text(hash), db::int(now), db::int(now), db::text(&user_id)],
    )
    .await?;
    let sessions_revoked = db::exec(
        &conn,
        "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        vec![db::int(now), db::text(&user_id)],
    )
    .await?;
    // Proving the mailbox is what a locked second factor asks for.
    db::exec(
        &conn,
        "DELETE FROM mfa_guards WHERE user_id = ?",
        vec![db::text(&user_id)],
    )
    .await?;
    gatehouse_auth::authority::bump_generation(&conn, &user_id).await?;
    gatehouse_auth::session::Cache::open()
        .await
        .invalidate_user(&user_id)
        .await?;
    let changed = serde_json::json!({
        "message": "It was reset with a link mailed to you, and every session was signed out. If this was not you, reset it again now.",
    });
    gatehouse_notify::notify_after(&conn, None, &user_id, "password.changed", changed).await;
    Ok(response::json(
        200,
        &Done {
            status: "password_reset",
            sessions_revoked,
        },
        request_id,
    ))
}
