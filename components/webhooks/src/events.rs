//! `GET /v1/webhooks/events` and `GET /v1/webhooks/events/{id}`: the
//! deliveries an org's sources accepted, newest first, for its admins.

use gatehouse_auth::db;
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use serde::Serialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::{RowResult, Value};

use crate::store;

/// The statuses an event can be in.
const STATUSES: [&str; 5] = ["received", "pending", "dispatched", "failed", "dead"];

/// An accepted delivery, as listed.
#[derive(Debug, Serialize)]
pub struct Event {
    pub id: String,
    pub source_id: String,
    pub provider: String,
    pub event_type: Option<String>,
    /// The provider's delivery or event id it was deduplicated on.
    pub delivery_id: String,
    pub status: String,
    pub received_at: i64,
    /// The body's length in bytes.
    pub size: i64,
    /// The last handler failure, while failed or dead.
    pub last_error: Option<String>,
}

/// An accepted delivery with its body.
#[derive(Debug, Serialize)]
struct Detailed {
    #[serde(flatten)]
    event: Event,
    /// The body: its JSON value when it was JSON, else its text.
    payload: serde_json::Value,
    /// The timestamp its signature covered, for providers that sign one.
    signed_at: Option<i64>,
}

const EVENT_COLUMNS: &str =
    "event_id, source_id, provider, event_type, delivery_id, status, received_at,
     length(payload), CASE WHEN status IN ('failed', 'dead') THEN last_error END";

fn event_of(row: &RowResult) -> Event {
    Event {
        id: db::get_text(row, 0),
        source_id: db::get_text(row, 1),
        provider: db::get_text(row, 2),
        event_type: db::get_opt_text(row, 3),
        delivery_id: db::get_text(row, 4),
        status: db::get_text(row, 5),
        received_at: db::get_int(row, 6).unwrap_or(0),
        size: db::get_int(row, 7).unwrap_or(0),
        last_error: db::get_opt_text(row, 8),
    }
}

fn bad_query(pointer: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::InvalidQuery)
        .detail(message.to_string())
        .errors(vec![FieldError::new(pointer, "invalid", message)])
}

/// The listing's filters.
#[derive(Default)]
struct Filters {
    source: Option<String>,
    event_type: Option<String>,
    status: Option<String>,
}

fn filters(query: Option<&str>) -> Result<Filters, Problem> {
    let mut f = Filters::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = value.into_owned();
        let too_long = value.is_empty() || value.len() > 200;
        match key.as_ref() {
            "source" if too_long => return Err(bad_query("/source", "source is a source id")),
            "source" => f.source = Some(value),
            "type" if too_long => return Err(bad_query("/type", "type is 1 to 200 characters")),
            "type" => f.event_type = Some(value),
            "status" if !STATUSES.contains(&value.as_str()) => {
                return Err(bad_query(
                    "/status",
                    "status is one of received, pending, dispatched, failed, dead",
                ));
            }
            "status" => f.status = Some(value),
            "limit" | "cursor" => {}
            other => {
                return Err(bad_query(
                    &format!("/{other}"),
                    "unknown query parameter: source, type, status, limit and cursor are known",
                ));
            }
        }
    }
    Ok(f)
}

/// `GET /v1/webhooks/events?source=&type=&status=`.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = store::admin(&req).await?;
    let tenant = caller.tenant()?;
    let page = PageRequest::from_query(req.uri().query())?;
    let f = filters(req.uri().query())?;
    let (at, after) = store::cursor_position(&page)?;
    let text_or_null = |v: &Option<String>| v.as_deref().map_or(Value::Null, db::text);
    let rows = tenant
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM webhook_events
                 WHERE org_id = ?1
                   AND (received_at < ?2 OR (received_at = ?2 AND event_id < ?3))
                   AND (?4 IS NULL OR source_id = ?4)
                   AND (?5 IS NULL OR event_type = ?5)
                   AND (?6 IS NULL OR status = ?6)
                 ORDER BY received_at DESC, event_id DESC LIMIT ?7"
            ),
            vec![
                db::int(at),
                db::text(after),
                text_or_null(&f.source),
                text_or_null(&f.event_type),
                text_or_null(&f.status),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    let events = rows.iter().map(event_of).collect();
    let page = page.page(events, |e: &Event| store::position(e.received_at, &e.id));
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/webhooks/events/{id}`.
pub async fn get(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = store::admin(&req).await?;
    let tenant = caller.tenant()?;
    let rows = tenant
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS}, payload, signed_at FROM webhook_events
                 WHERE org_id = ?1 AND event_id = ?2"
            ),
            vec![db::text(id)],
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| Problem::not_found().detail("no such webhook event"))?;
    let payload = match row.values.get(9) {
        Some(Value::Blob(bytes)) => body_value(bytes),
        Some(Value::Text(text)) => body_value(text.as_bytes()),
        _ => serde_json::Value::Null,
    };
    let detailed = Detailed {
        event: event_of(row),
        payload,
        signed_at: db::get_int(row, 10),
    };
    Ok(response::json(200, &detailed, request_id))
}

/// A body as JSON when it is JSON, else as text.
fn body_value(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// `POST /v1/webhooks/events/{id}/$replay`: the event handed again to
/// every handler that takes it now (a new job each, sent with the
/// replay's own `webhook-id`, so a handler that deduplicates takes it),
/// `202` with the event; `409` when none does. The event's status follows
/// the replay's jobs from then on.
pub async fn replay(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = store::admin(&req).await?;
    let tenant = caller.tenant()?;
    let rows = tenant
        .query(
            "SELECT provider, event_type, source_id FROM webhook_events WHERE org_id = ?1 AND event_id = ?2",
            vec![db::text(id)],
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| Problem::not_found().detail("no such webhook event"))?;
    let provider =
        webhooks_core::Provider::parse(&db::get_text(row, 0)).ok_or_else(Problem::internal)?;
    let event_type = db::get_opt_text(row, 1);
    let source = db::get_text(row, 2);
    let urls =
        gatehouse_webhook_dispatch::handler_urls(&source, provider, event_type.as_deref()).await;
    if urls.is_empty() {
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("no handler takes this event's provider and type"));
    }
    let policy = gatehouse_jobs::policy().await;
    let now = gatehouse_http::idempotency::unix_now();
    // Each replay is a round of its own: its jobs are new ones, and its
    // id is the message id they are sent with.
    let round = db::new_id("whr_");
    store::begin(&caller.conn).await?;
    let outcome = async {
        tenant
            .run(
                "UPDATE webhook_events SET status = 'pending', handlers_pending = ?2, last_error = NULL,
                        dispatch_round = ?3
                 WHERE org_id = ?1 AND event_id = ?4",
                vec![db::int(urls.len() as i64), db::text(&round), db::text(id)],
            )
            .await?;
        gatehouse_webhook_dispatch::queue(&caller.conn, id, &urls, &round, &policy, now)
            .await
            .map_err(|e| {
                eprintln!("webhooks: queueing handler jobs failed: {e}");
                Problem::internal()
            })
    }
    .await;
    store::end(&caller.conn, outcome.is_ok()).await?;
    outcome?;
    let rows = tenant
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE org_id = ?1 AND event_id = ?2"
            ),
            vec![db::text(id)],
        )
        .await?;
    let event = rows.first().map(event_of).ok_or_else(Problem::internal)?;
    Ok(response::json(202, &event, request_id))
}
