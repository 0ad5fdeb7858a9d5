//! `GET /v1/webhooks/endpoints/{id}/messages[/{msg}]`, `POST
//! …/messages/{msg}/$resend` and `POST …/{id}/$recover`: what an org's
//! events made for one of its endpoints, every attempt to deliver it, and
//! sending again what failed. A deleted endpoint's messages stay readable;
//! only a live, enabled endpoint is sent anything again (a deleted one is
//! not found there, as on its other routes).
//!
//! A `pending` message is held by a delivery job, which retries it on its
//! schedule; each message has at most one live job, so sending again
//! takes only messages no job holds: a resend refuses a pending message
//! (`409 message_pending`) and a recovery takes only failed ones.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, json, response};
use gatehouse_webhook_delivery::Trigger;
use serde::Serialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::{Connection, RowResult, Value};

use crate::endpoint_input::{MAX_RECOVERED, Recover};
use crate::endpoints::{admin, invalid, no_endpoint};
use crate::store;

/// The statuses a message can be in.
const STATUSES: [&str; 3] = ["pending", "delivered", "failed"];
/// The most attempts a message's detail shows, newest first.
const MAX_ATTEMPTS_SHOWN: i64 = 100;

/// A message, as listed.
#[derive(Debug, Serialize)]
pub struct Message {
    pub id: String,
    pub endpoint_id: String,
    /// The org event it carries (its `webhook-id`).
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    /// Attempts made so far.
    pub attempt_count: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One attempt to deliver a message.
#[derive(Debug, Serialize)]
struct Attempt {
    id: String,
    status: String,
    response_code: Option<i64>,
    duration_ms: i64,
    error: Option<String>,
    /// `scheduled`, `resend` or `recover`.
    trigger: String,
    attempted_at: i64,
}

/// A message with its attempts.
#[derive(Debug, Serialize)]
struct Detailed {
    #[serde(flatten)]
    message: Message,
    /// Newest first, at most [`MAX_ATTEMPTS_SHOWN`].
    attempts: Vec<Attempt>,
}

const MESSAGE_COLUMNS: &str = "message_id, endpoint_id, event_id, event_type, status, attempts,
     next_attempt_at, last_error, created_at, updated_at";

fn message_of(row: &RowResult) -> Message {
    Message {
        id: db::get_text(row, 0),
        endpoint_id: db::get_text(row, 1),
        event_id: db::get_text(row, 2),
        event_type: db::get_text(row, 3),
        status: db::get_text(row, 4),
        attempt_count: db::get_int(row, 5).unwrap_or(0),
        next_attempt_at: db::get_int(row, 6),
        last_error: db::get_opt_text(row, 7),
        created_at: db::get_int(row, 8).unwrap_or(0),
        updated_at: db::get_int(row, 9).unwrap_or(0),
    }
}

fn attempt_of(row: &RowResult) -> Attempt {
    Attempt {
        id: db::get_text(row, 0),
        status: db::get_text(row, 1),
        response_code: db::get_int(row, 2),
        duration_ms: db::get_int(row, 3).unwrap_or(0),
        error: db::get_opt_text(row, 4),
        trigger: db::get_text(row, 5),
        attempted_at: db::get_int(row, 6).unwrap_or(0),
    }
}

/// Where an endpoint stands, for sending again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Enabled,
    Disabled,
    Deleted,
}

/// The org's endpoint `id`, deleted or not; 404 when there is none.
async fn standing(tenant: &Tenant<'_>, id: &str) -> Result<Standing, Problem> {
    let rows = tenant
        .query(
            "SELECT enabled, deleted_at FROM webhook_endpoints WHERE org_id = ?1 AND endpoint_id = ?2",
            vec![db::text(id)],
        )
        .await?;
    let row = rows.first().ok_or_else(no_endpoint)?;
    Ok(if db::get_int(row, 1).is_some() {
        Standing::Deleted
    } else if db::get_int(row, 0).unwrap_or(0) == 0 {
        Standing::Disabled
    } else {
        Standing::Enabled
    })
}

/// 409 with `code` in its field error.
fn conflict(code: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::Conflict)
        .detail(message.to_string())
        .errors(vec![FieldError::new("", code, message)])
}

/// `Ok` when the endpoint takes deliveries: 404 when it is deleted, 409
/// when it is disabled.
fn sendable(standing: Standing) -> Result<(), Problem> {
    match standing {
        Standing::Enabled => Ok(()),
        Standing::Disabled => Err(conflict(
            "endpoint_disabled",
            "the endpoint is disabled: enable it (PATCH enabled: true) first",
        )),
        Standing::Deleted => Err(no_endpoint()),
    }
}

/// 409: a delivery job holds the message already.
fn message_pending() -> Problem {
    conflict(
        "message_pending",
        "the message is pending: a delivery job will attempt it on its schedule; resend it once it is delivered or failed",
    )
}

fn no_message() -> Problem {
    Problem::not_found().detail("no such webhook message")
}

fn bad_query(pointer: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::InvalidQuery)
        .detail(message.to_string())
        .errors(vec![FieldError::new(pointer, "invalid", message)])
}

/// `status` from the query, if given.
fn status_filter(query: Option<&str>) -> Result<Option<String>, Problem> {
    let mut status = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "status" if STATUSES.contains(&value.as_ref()) => status = Some(value.into_owned()),
            "status" => {
                return Err(bad_query(
                    "/status",
                    "status is one of pending, delivered, failed",
                ));
            }
            "limit" | "cursor" => {}
            other => {
                return Err(bad_query(
                    &format!("/{other}"),
                    "unknown query parameter: status, limit and cursor are known",
                ));
            }
        }
    }
    Ok(status)
}

/// `GET /v1/webhooks/endpoints/{id}/messages?status=`: newest first.
pub async fn list(req: Request, endpoint: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = admin(&req).await?;
    let tenant = caller.tenant()?;
    let page = PageRequest::from_query(req.uri().query())?;
    let status = status_filter(req.uri().query())?;
    let (at, after) = store::cursor_position(&page)?;
    standing(&tenant, endpoint).await?;
    let rows = tenant
        .query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM webhook_messages
                 WHERE org_id = ?1 AND endpoint_id = ?2
                   AND (created_at < ?3 OR (created_at = ?3 AND message_id < ?4))
                   AND (?5 IS NULL OR status = ?5)
                 ORDER BY created_at DESC, message_id DESC LIMIT ?6"
            ),
            vec![
                db::text(endpoint),
                db::int(at),
                db::text(after),
                status.map_or(Value::Null, db::text),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    let messages = rows.iter().map(message_of).collect();
    let page = page.page(messages, |m: &Message| store::position(m.created_at, &m.id));
    Ok(response::json(200, &page, request_id))
}

async fn load(tenant: &Tenant<'_>, endpoint: &str, id: &str) -> Result<Message, Problem> {
    let rows = tenant
        .query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM webhook_messages
                 WHERE org_id = ?1 AND endpoint_id = ?2 AND message_id = ?3"
            ),
            vec![db::text(endpoint), db::text(id)],
        )
        .await?;
    rows.first().map(message_of).ok_or_else(no_message)
}

/// `GET /v1/webhooks/endpoints/{id}/messages/{msg}`: with its attempts.
pub async fn get(
    req: Request,
    endpoint: &str,
    id: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = admin(&req).await?;
    let tenant = caller.tenant()?;
    let message = load(&tenant, endpoint, id).await?;
    // Attempt ids are random: within a second, the row order (rowid) is
    // the order they were made in.
    let rows = tenant
        .query(
            "SELECT attempt_id, status, response_code, duration_ms, error, trigger, attempted_at
             FROM webhook_attempts WHERE org_id = ?1 AND message_id = ?2
             ORDER BY attempted_at DESC, rowid DESC LIMIT ?3",
            vec![db::text(id), db::int(MAX_ATTEMPTS_SHOWN)],
        )
        .await?;
    let detailed = Detailed {
        message,
        attempts: rows.iter().map(attempt_of).collect(),
    };
    Ok(response::json(200, &detailed, request_id))
}

/// Queues a delivery of `message` for `trigger`, due now.
async fn queue(
    conn: &Connection,
    message: &str,
    trigger: Trigger,
    now: i64,
) -> Result<(), Problem> {
    gatehouse_webhook_delivery::queue(conn, message, trigger, now, now)
        .await
        .map_err(|e| {
            eprintln!("webhooks: queueing a delivery job failed: {e}");
            Problem::internal()
        })
}

/// `POST /v1/webhooks/endpoints/{id}/messages/{msg}/$resend`: a delivered
/// or failed message is pending again and a delivery job (trigger
/// `resend`) is queued with it; `202` with the message. `409` when the
/// message is pending (`message_pending`) or the endpoint is disabled
/// (`endpoint_disabled`); `404` when the endpoint is deleted.
pub async fn resend(
    req: Request,
    endpoint: &str,
    id: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = admin(&req).await?;
    let tenant = caller.tenant()?;
    let now = unix_now();
    store::begin(&caller.conn).await?;
    let outcome = async {
        let standing = standing(&tenant, endpoint).await?;
        // Read inside the write transaction: no job can take it meanwhile.
        let message = load(&tenant, endpoint, id).await?;
        sendable(standing)?;
        if message.status == "pending" {
            return Err(message_pending());
        }
        tenant
            .run(
                "UPDATE webhook_messages SET status = 'pending', next_attempt_at = ?2, updated_at = ?2
                 WHERE org_id = ?1 AND endpoint_id = ?3 AND message_id = ?4",
                vec![db::int(now), db::text(endpoint), db::text(id)],
            )
            .await?;
        queue(&caller.conn, id, Trigger::Resend, now).await
    }
    .await;
    store::end(&caller.conn, outcome.is_ok()).await?;
    outcome?;
    let message = load(&tenant, endpoint, id).await?;
    Ok(response::json(202, &message, request_id))
}

/// What a recovery did.
#[derive(Debug, Serialize)]
struct Recovered {
    /// Messages set pending and queued (trigger `recover`).
    queued: i64,
    /// Whether failed messages of the window are left (more than
    /// [`MAX_RECOVERED`]): call again with the same `since`.
    more: bool,
    since: i64,
    until: i64,
}

/// `POST /v1/webhooks/endpoints/{id}/$recover` `{"since", "until"?}`:
/// every failed message of the endpoint made in `[since, until)`, oldest
/// first and at most [`MAX_RECOVERED`], set pending and queued in one
/// transaction; `202` with how many. Pending messages are left to the job
/// that holds them, delivered ones are not sent again. `409` when the
/// endpoint is disabled, `404` when it is deleted.
pub async fn recover(req: Request, endpoint: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = admin(&req).await?;
    let tenant = caller.tenant()?;
    let body: Recover = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let now = unix_now();
    let (since, until) = body.window(now).map_err(invalid)?;
    // The failed messages of the window, oldest first, up to the bound.
    let failed = "FROM webhook_messages
         WHERE org_id = ?1 AND endpoint_id = ?2 AND status = 'failed'
           AND created_at >= ?3 AND created_at < ?4
         ORDER BY created_at, message_id LIMIT ?5";
    store::begin(&caller.conn).await?;
    let outcome = async {
        sendable(standing(&tenant, endpoint).await?)?;
        let window = || vec![db::text(endpoint), db::int(since), db::int(until)];
        let mut params = window();
        params.push(db::int(MAX_RECOVERED + 1));
        let rows = tenant
            .query(&format!("SELECT message_id {failed}"), params)
            .await?;
        let more = rows.len() as i64 > MAX_RECOVERED;
        let ids: Vec<String> = rows
            .iter()
            .take(MAX_RECOVERED as usize)
            .map(|r| db::get_text(r, 0))
            .collect();
        let mut params = window();
        params.extend([db::int(MAX_RECOVERED), db::int(now)]);
        tenant
            .run(
                &format!(
                    "UPDATE webhook_messages SET status = 'pending', next_attempt_at = ?6, updated_at = ?6
                     WHERE org_id = ?1 AND message_id IN (SELECT message_id {failed})"
                ),
                params,
            )
            .await?;
        for id in &ids {
            queue(&caller.conn, id, Trigger::Recover, now).await?;
        }
        Ok::<_, Problem>(Recovered {
            queued: ids.len() as i64,
            more,
            since,
            until,
        })
    }
    .await;
    store::end(&caller.conn, outcome.is_ok()).await?;
    Ok(response::json(202, &outcome?, request_id))
}
