//! The caller's in-app notifications: listed newest first, counted,
//! marked read, deleted. Every statement is bound to the caller's user
//! id, so another user's notification is not found, whether it exists or
//! not.

use gatehouse_auth::db;
use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::principal::Credential;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use serde::Serialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::sqlite::{Connection, RowResult};

/// The signed-in user behind the request, acting in the org `X-Org`
/// names (else their only org), and the open database. Notifications
/// speak of a person's whole account (their sign-ins, their other orgs),
/// so only the person's own session reads them: not an API key, not an
/// org's token, not an admin acting as the member.
pub async fn me(
    req: &Request,
) -> Result<(gatehouse_http::principal::Principal, String, Connection), Problem> {
    let auth = gatehouse_auth::authenticate_session(req).await?;
    let header = gatehouse_auth::membership::org_reference(
        req.headers().get(gatehouse_auth::membership::ORG_HEADER),
    )?;
    let org = gatehouse_auth::membership::select(&auth.memberships, header)?;
    let principal =
        gatehouse_auth::membership::user_principal(&auth.user.id, org, Credential::Session);
    let conn = db::open().await?;
    Ok((principal, auth.user.id, conn))
}

fn not_found() -> Problem {
    Problem::not_found().detail("no such notification")
}

/// A notification as listed.
#[derive(Serialize)]
struct Notification {
    id: String,
    kind: String,
    title: &'static str,
    critical: bool,
    /// The org it is about; null for the user's account.
    org_id: Option<String>,
    data: Value,
    read: bool,
    read_at: Option<i64>,
    created_at: i64,
}

const COLUMNS: &str = "notification_id, kind, org_id, data, read_at, created_at";

/// What the user sees: shown in the app (the job found the channel on)
/// and not deleted.
const VISIBLE: &str = "user_id = ?1 AND in_app = 1 AND deleted_at IS NULL";

fn notification(row: &RowResult) -> Notification {
    let kind = db::get_text(row, 1);
    let known = gatehouse_notify::kinds::kind(&kind);
    let read_at = db::get_int(row, 4);
    Notification {
        id: db::get_text(row, 0),
        title: known.map_or("", |k| k.title),
        critical: known.is_some_and(|k| k.critical),
        kind,
        org_id: db::get_opt_text(row, 2),
        data: db::get_json(row, 3).unwrap_or_else(|| json!({})),
        read: read_at.is_some(),
        read_at,
        created_at: db::get_int(row, 5).unwrap_or_default(),
    }
}

fn bad_query(name: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::InvalidQuery)
        .detail(message.to_string())
        .errors(vec![FieldError::new(
            format!("/{name}"),
            "invalid",
            message,
        )])
}

/// `?unread=true|false`; absent is false.
fn unread_only(query: Option<&str>) -> Result<bool, Problem> {
    let mut unread = false;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "unread" {
            unread = match value.as_ref() {
                "true" => true,
                "false" => false,
                _ => return Err(bad_query("unread", "unread is true or false")),
            };
        }
    }
    Ok(unread)
}

/// `GET /v1/me/notifications[?unread=true][&limit=&cursor=]`.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let (_, user, conn) = me(&req).await?;
    let query = req.uri().query();
    let page = PageRequest::from_query(query)?;
    let unread = unread_only(query)?;
    let (before, before_id) = page
        .json_cursor::<(i64, String)>()?
        .unwrap_or((i64::MAX, String::new()));
    let unread_clause = if unread { " AND read_at IS NULL" } else { "" };
    // Without a cursor, `created_at < MAX` lets every row through.
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications
         WHERE {VISIBLE}{unread_clause} AND (created_at < ?2 OR (created_at = ?2 AND notification_id < ?3))
         ORDER BY created_at DESC, notification_id DESC LIMIT ?4"
    );
    let rows = db::query(
        &conn,
        &sql,
        vec![
            db::text(&user),
            db::int(before),
            db::text(before_id),
            db::int(i64::from(page.fetch_count())),
        ],
    )
    .await?;
    let items = rows.iter().map(notification).collect();
    let page = page.page(items, |n: &Notification| {
        json_position(&(n.created_at, n.id.clone()))
    });
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/me/notifications/unread-count`.
pub async fn unread_count(req: Request, request_id: &str) -> Result<Response, Problem> {
    let (_, user, conn) = me(&req).await?;
    let rows = db::query(
        &conn,
        &format!("SELECT COUNT(*) FROM notifications WHERE {VISIBLE} AND read_at IS NULL"),
        vec![db::text(&user)],
    )
    .await?;
    let unread = rows.first().and_then(|r| db::get_int(r, 0)).unwrap_or(0);
    Ok(response::json(
        200,
        &json!({ "unread": unread }),
        request_id,
    ))
}

/// `POST /v1/me/notifications/{id}/$read`: the notification, read (when
/// it was read before, it keeps its first `read_at`).
pub async fn read(req: Request, notification: &str, request_id: &str) -> Result<Response, Problem> {
    let (_, user, conn) = me(&req).await?;
    let now = gatehouse_http::idempotency::unix_now();
    let rows = db::query(
        &conn,
        &format!(
            "UPDATE notifications SET read_at = COALESCE(read_at, ?3)
             WHERE {VISIBLE} AND notification_id = ?2 RETURNING {COLUMNS}"
        ),
        vec![db::text(&user), db::text(notification), db::int(now)],
    )
    .await?;
    let row = rows.first().ok_or_else(not_found)?;
    Ok(response::json(200, &notification_of(row), request_id))
}

fn notification_of(row: &RowResult) -> Value {
    serde_json::to_value(notification(row)).unwrap_or_default()
}

/// `POST /v1/me/notifications/$read-all`: how many were marked.
pub async fn read_all(req: Request, request_id: &str) -> Result<Response, Problem> {
    let (_, user, conn) = me(&req).await?;
    let now = gatehouse_http::idempotency::unix_now();
    let marked = db::exec(
        &conn,
        &format!("UPDATE notifications SET read_at = ?2 WHERE {VISIBLE} AND read_at IS NULL"),
        vec![db::text(&user), db::int(now)],
    )
    .await?;
    Ok(response::json(
        200,
        &json!({ "marked": marked }),
        request_id,
    ))
}

/// `DELETE /v1/me/notifications/{id}`: gone from the list. The row stays,
/// marked deleted, as the record that the event was told (an API key's
/// expiry is told once).
pub async fn delete(
    req: Request,
    notification: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let (_, user, conn) = me(&req).await?;
    let now = gatehouse_http::idempotency::unix_now();
    let gone = db::exec(
        &conn,
        &format!(
            "UPDATE notifications SET deleted_at = ?3 WHERE {VISIBLE} AND notification_id = ?2"
        ),
        vec![db::text(&user), db::text(notification), db::int(now)],
    )
    .await?;
    if gone == 0 {
        return Err(not_found());
    }
    Ok(response::no_content(request_id))
}
