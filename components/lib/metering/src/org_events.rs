//! Org events: what happened in an org, one row each in `org_events`
//! (`quota.threshold_reached`, `spend.unusual`, and the other types of
//! the webhook event catalog), with a JSON object of data whose shape its
//! type decides. Recording one also queues its delivery to each of the
//! org's webhook endpoints that takes its type (`gatehouse-webhook-delivery`);
//! an org's admins read them at `GET /v1/org-events`, newest first.
//!
//! The route is top-level because the events are the org's, not
//! metering's: a later component can take the route over from this one
//! without changing the API.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::{ErrorCode, Problem, Response, response};
use serde::Serialize;
use serde_json::Value;
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;

use crate::usage_query::bad;

/// A new event id, `evt_` then the time in nanoseconds (16 hex digits)
/// and 16 random ones: ids sort in the order events were made, so lists
/// ordered newest first by (time, id) keep that order within a second,
/// and rows keyed by them are appended to their index, not inserted all
/// over it (also for the usage events that consumes record).
pub fn new_event_id() -> String {
    gatehouse_webhook_delivery::new_event_id()
}

/// Records an event inside the caller's transaction, on its connection
/// `conn` (the tenant's), under `event_id` (`evt_…`, made by the caller so
/// other rows can name it), with its webhook messages and their jobs.
pub async fn record(
    tenant: &Tenant<'_>,
    conn: &Connection,
    event_id: &str,
    event_type: &str,
    data: &Value,
    now: i64,
) -> Result<(), Problem> {
    gatehouse_webhook_delivery::publish_as(tenant, conn, event_id, event_type, data, now).await
}

/// An event as listed.
#[derive(Serialize)]
struct OrgEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: Value,
    created_at: i64,
}

/// An event type as a filter: lower-case dotted names.
fn valid_type(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_'))
}

/// 403 unless the caller administers the org.
pub fn require_admin(caller: &OrgCaller, what: &str) -> Result<(), Problem> {
    if caller.principal.is_org_admin() {
        Ok(())
    } else {
        Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "only an admin of this organization may read its {what}"
        )))
    }
}

/// `GET /v1/org-events?type=&limit=&cursor=` (org admins): newest first.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    require_admin(&caller, "events")?;
    let tenant = caller.tenant()?;
    let query = req.uri().query();
    let page = PageRequest::from_query(query)?;
    let event_type = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "type")
        .map(|(_, v)| v.into_owned())
        .last();
    if event_type.as_deref().is_some_and(|t| !valid_type(t)) {
        return Err(bad(
            "type",
            "invalid",
            "type must be an event type such as quota.threshold_reached",
        ));
    }
    let (before, before_id) = page
        .json_cursor::<(i64, String)>()?
        .unwrap_or((i64::MAX, String::new()));
    // Without a cursor, `created_at < MAX` lets every row through.
    let of_type = if event_type.is_some() {
        " AND event_type = ?5"
    } else {
        ""
    };
    let sql = format!(
        "SELECT event_id, event_type, data, created_at FROM org_events
         WHERE org_id = ?1 AND (created_at < ?2 OR (created_at = ?2 AND event_id < ?3)){of_type}
         ORDER BY created_at DESC, event_id DESC LIMIT ?4"
    );
    let mut params = vec![
        db::int(before),
        db::text(before_id),
        db::int(i64::from(page.fetch_count())),
    ];
    if let Some(t) = event_type {
        params.push(db::text(t));
    }
    let rows = tenant.query(&sql, params).await?;
    let events = rows
        .iter()
        .map(|row| OrgEvent {
            id: db::get_text(row, 0),
            event_type: db::get_text(row, 1),
            data: db::get_json(row, 2).unwrap_or(Value::Null),
            created_at: db::get_int(row, 3).unwrap_or_default(),
        })
        .collect();
    let page = page.page(events, |e: &OrgEvent| {
        json_position(&(e.created_at, e.id.clone()))
    });
    Ok(response::json(200, &page, request_id))
}
