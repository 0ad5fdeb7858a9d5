//! The Gatehouse user a provider's subject is: linked on first sign-in
//! (a new account, or the signed-in account that started the sign-in),
//! made a member of the provider's org, with the roles its claims map to.

use gatehouse_auth::oidc::Provider;
use gatehouse_auth::session::Cache;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::principal::OrgRole;
use gatehouse_http::{ErrorCode, Problem};
use gatehouse_webhook_delivery::catalog::MEMBER_ADDED;
use serde_json::{Map, Value};
use spin_sdk::sqlite::Connection;

use super::json_text;
use super::sign_in::sign_in_failed;
use crate::db;

/// The Gatehouse user the provider's subject is, linking or creating one.
pub(super) async fn user_for(
    conn: &Connection,
    p: &Provider,
    claims: &Map<String, Value>,
    link_user_id: Option<String>,
    now: i64,
) -> Result<String, Problem> {
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(|| sign_in_failed("the ID token names no subject"))?;
    let email = claims.get("email").and_then(Value::as_str);
    let linked = db::query(
        conn,
        "SELECT user_id FROM oidc_identities WHERE provider_id = ? AND subject = ?",
        vec![db::text(&p.provider_id), db::text(sub)],
    )
    .await?;
    if let Some(row) = linked.first() {
        let user_id = db::get_text(row, 0);
        if link_user_id.as_ref().is_some_and(|u| *u != user_id) {
            return Err(Problem::new(ErrorCode::Conflict)
                .detail("this identity is linked to another account"));
        }
        db::exec(
            conn,
            "UPDATE oidc_identities SET last_login_at = ?, email = ? WHERE provider_id = ? AND subject = ?",
            vec![db::int(now), db::opt_text(email.map(str::to_string)), db::text(&p.provider_id), db::text(sub)],
        )
        .await?;
        return Ok(user_id);
    }
    let user_id = match link_user_id {
        Some(user_id) => user_id,
        None => create_user(conn, claims, now).await?,
    };
    let tenant = Tenant::joining(conn, &user_id, &p.org_id, OrgRole::Member);
    tenant
        .exec(
            "INSERT INTO oidc_identities (org_id, provider_id, subject, user_id, email, created_at, last_login_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?)",
            vec![
                db::text(&p.provider_id),
                db::text(sub),
                db::text(&user_id),
                db::opt_text(email.map(str::to_string)),
                db::int(now),
                db::int(now),
            ],
        )
        .await?;
    Ok(user_id)
}

/// A new account for a provider subject: active, without a password (one
/// can be set by reset), and with its address unverified whatever the
/// provider says: a provider configured by one org vouches for nothing
/// beyond it. Proving the address by reset drops the link.
async fn create_user(
    conn: &Connection,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<String, Problem> {
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|e| identity_core::email::valid_email(e))
        .ok_or_else(|| {
            sign_in_failed(
                "the identity provider shared no email address (ask for the email scope)",
            )
        })?;
    let name = claims
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(email)
        .chars()
        .take(100)
        .collect::<String>();
    let user_id = db::new_id("usr_");
    let inserted = db::exec(
        conn,
        "INSERT INTO users (id, email, email_normalized, display_name, password_hash, status, email_verified_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, '!external', 'active', NULL, ?, ?) ON CONFLICT (email_normalized) DO NOTHING",
        vec![
            db::text(&user_id),
            db::text(email),
            db::text(identity_core::email::normalize_email(email)),
            db::text(name),
            db::int(now),
            db::int(now),
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(Problem::new(ErrorCode::Conflict).detail(
            "an account with this email address exists: sign in to it, then start this sign-in with its session to link the provider",
        ));
    }
    Ok(user_id)
}

/// Makes the user a member of the provider's org (if not yet), telling
/// the org's webhooks of a new member (`member.added`, `via: sso`), and
/// brings the roles the provider granted in line with the claims: all in
/// one transaction.
pub(super) async fn join_and_sync_roles(
    conn: &Connection,
    p: &Provider,
    (user_id, email): (&str, &str),
    claims: &Map<String, Value>,
    now: i64,
) -> Result<(), Problem> {
    db::transaction(conn, join_and_sync(conn, p, (user_id, email), claims, now)).await?;
    Cache::open().await.invalidate_user(user_id).await
}

async fn join_and_sync(
    conn: &Connection,
    p: &Provider,
    (user_id, email): (&str, &str),
    claims: &Map<String, Value>,
    now: i64,
) -> Result<(), Problem> {
    let tenant = Tenant::joining(conn, user_id, &p.org_id, OrgRole::Member);
    // A first sign-in joins the org: it takes a seat, or is refused when
    // the org's plan has none free.
    gatehouse_billing::take_seat(&tenant, user_id, now).await?;
    let joined = tenant
        .exec(
            "INSERT INTO memberships (org_id, user_id, role, created_at, updated_at) VALUES (?1, ?, 'member', ?, ?)
             ON CONFLICT (org_id, user_id) DO NOTHING",
            vec![db::text(user_id), db::int(now), db::int(now)],
        )
        .await?;
    if joined == 1 {
        let data = serde_json::json!({
            "member": {"user_id": user_id, "email": email, "role": "member"},
            "via": "sso",
        });
        gatehouse_webhook_delivery::publish(&tenant, conn, MEMBER_ADDED, &data, now).await?;
    }
    let granted_by = format!("oidc:{}", p.provider_id);
    let roles = json_text(&p.mapped_roles(claims))?;
    tenant
        .exec(
            "DELETE FROM role_grants WHERE org_id = ?1 AND subject_type = 'user' AND subject_id = ? AND granted_by = ?
             AND role_id NOT IN (SELECT role_id FROM roles WHERE org_id = ?1 AND name IN (SELECT value FROM json_each(?)))",
            vec![db::text(user_id), db::text(&granted_by), db::text(&roles)],
        )
        .await?;
    let mapped = tenant
        .query(
            "SELECT role_id FROM roles WHERE org_id = ?1 AND name IN (SELECT value FROM json_each(?))",
            vec![db::text(&roles)],
        )
        .await?;
    for row in &mapped {
        tenant
            .exec(
                "INSERT INTO role_grants (org_id, role_id, subject_type, subject_id, granted_by, created_at)
                 VALUES (?1, ?, 'user', ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![
                    db::text(db::get_text(row, 0)),
                    db::text(user_id),
                    db::text(&granted_by),
                    db::int(now),
                ],
            )
            .await?;
    }
    Ok(())
}
