//! The caller's sessions as devices: list them, sign one out, or sign out
//! everywhere else. A session id that is not the caller's answers 404,
//! exactly like one that does not exist.

use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::{Problem, Response, idempotency::unix_now, response};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;

use crate::{db, no_content};
use gatehouse_auth::session::Cache;

#[derive(Serialize)]
struct Device {
    id: String,
    user_agent: Option<String>,
    client_address: Option<String>,
    created_at: i64,
    last_seen_at: i64,
    idle_expires_at: i64,
    absolute_expires_at: i64,
    current: bool,
}

/// Keyset position: newest first, ties broken by id.
#[derive(Serialize, Deserialize)]
struct Position {
    created_at: i64,
    id: String,
}

fn opt_text(row: &spin_sdk::sqlite::RowResult, i: usize) -> Option<String> {
    match row.values.get(i) {
        Some(spin_sdk::sqlite::Value::Text(t)) => Some(t.clone()),
        _ => None,
    }
}

/// `GET /v1/sessions`: the caller's live sessions, newest first.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let page = PageRequest::from_query(req.uri().query())?;
    let after: Option<Position> = page.json_cursor()?;
    let conn = db::open().await?;
    let auth = gatehouse_auth::authenticate_session(&req).await?;
    let now = unix_now();
    // With no cursor, start above any real position.
    let (after_created, after_id) =
        after.map_or((i64::MAX, String::new()), |p| (p.created_at, p.id));
    let rows = db::query(
        &conn,
        "SELECT id, user_agent, client_address, created_at, last_seen_at, idle_expires_at, absolute_expires_at
         FROM sessions
         WHERE user_id = ? AND revoked_at IS NULL AND idle_expires_at > ? AND absolute_expires_at > ?
           AND (created_at < ? OR (created_at = ? AND id < ?) OR ? = '')
         ORDER BY created_at DESC, id DESC LIMIT ?",
        vec![
            db::text(&auth.user.id),
            db::int(now),
            db::int(now),
            db::int(after_created),
            db::int(after_created),
            db::text(&after_id),
            db::text(&after_id),
            db::int(i64::from(page.fetch_count())),
        ],
    )
    .await?;
    let devices: Vec<Device> = rows
        .iter()
        .map(|r| {
            let id = db::get_text(r, 0);
            Device {
                current: id == auth.session_id,
                id,
                user_agent: opt_text(r, 1),
                client_address: opt_text(r, 2),
                created_at: db::get_int(r, 3).unwrap_or_default(),
                last_seen_at: db::get_int(r, 4).unwrap_or_default(),
                idle_expires_at: db::get_int(r, 5).unwrap_or_default(),
                absolute_expires_at: db::get_int(r, 6).unwrap_or_default(),
            }
        })
        .collect();
    let page = page.page(devices, |d| {
        json_position(&Position {
            created_at: d.created_at,
            id: d.id.clone(),
        })
    });
    Ok(response::json(200, &page, request_id))
}

/// `DELETE /v1/sessions/{id}`: signs one of the caller's sessions out.
pub async fn revoke(req: Request, session_id: &str, request_id: &str) -> Result<Response, Problem> {
    let conn = db::open().await?;
    let auth = gatehouse_auth::authenticate_session(&req).await?;
    let changed = db::exec(
        &conn,
        "UPDATE sessions SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        vec![
            db::int(unix_now()),
            db::text(session_id),
            db::text(&auth.user.id),
        ],
    )
    .await?;
    if changed == 0 {
        return Err(Problem::not_found());
    }
    Cache::open().await.invalidate_user(&auth.user.id).await?;
    no_content(request_id)
}

#[derive(Serialize)]
struct Revoked {
    revoked: u64,
}

/// `DELETE /v1/sessions`: signs out every session of the caller but this
/// one, and ends every JWT issued for the caller.
pub async fn revoke_others(req: Request, request_id: &str) -> Result<Response, Problem> {
    let conn = db::open().await?;
    let auth = gatehouse_auth::authenticate_session(&req).await?;
    let revoked = db::exec(
        &conn,
        "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND id <> ? AND revoked_at IS NULL",
        vec![
            db::int(unix_now()),
            db::text(&auth.user.id),
            db::text(&auth.session_id),
        ],
    )
    .await?;
    // Tokens cannot tell which session minted them: all of them end, and
    // this device mints new ones with its session.
    gatehouse_auth::authority::bump_generation(&conn, &auth.user.id).await?;
    Cache::open().await.invalidate_user(&auth.user.id).await?;
    Ok(response::json(200, &Revoked { revoked }, request_id))
}
