//! The org's audit trail, for its admins: newest first, optionally one
//! action (`?action=impersonation.request`).

use gatehouse_auth::db;
use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::{ErrorCode, Problem, Response, response};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;

use crate::context::Caller;

#[derive(Serialize)]
struct Event {
    id: String,
    occurred_at: i64,
    action: String,
    actor_user_id: String,
    subject_user_id: Option<String>,
    method: Option<String>,
    path: Option<String>,
    credential: Option<String>,
    request_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Position {
    occurred_at: i64,
    id: String,
}

fn action_filter(query: Option<&str>) -> Result<Option<String>, Problem> {
    let Some(value) = query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("action="))
    else {
        return Ok(None);
    };
    if (1..=100).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
    {
        Ok(Some(value.to_string()))
    } else {
        Err(Problem::new(ErrorCode::InvalidQuery)
            .detail("action must be a lower-case name such as impersonation.request"))
    }
}

/// `GET /v1/orgs/{org}/audit-events`.
pub async fn list(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let page = PageRequest::from_query(req.uri().query())?;
    let after: Option<Position> = page.json_cursor()?;
    let action = action_filter(req.uri().query())?;
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    let (before_at, before_id) = after.map_or((i64::MAX, String::new()), |p| (p.occurred_at, p.id));
    let rows = tenant
        .query(
            "SELECT event_id, occurred_at, action, actor_user_id, subject_user_id, method, path, credential, request_id
             FROM audit_events
             WHERE org_id = ?1 AND (?2 IS NULL OR action = ?2)
               AND (occurred_at < ?3 OR (occurred_at = ?3 AND (?4 = '' OR event_id < ?4)))
             ORDER BY occurred_at DESC, event_id DESC LIMIT ?5",
            vec![
                db::opt_text(action),
                db::int(before_at),
                db::text(&before_id),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    let events: Vec<Event> = rows
        .iter()
        .map(|r| Event {
            id: db::get_text(r, 0),
            occurred_at: db::get_int(r, 1).unwrap_or_default(),
            action: db::get_text(r, 2),
            actor_user_id: db::get_text(r, 3),
            subject_user_id: db::get_opt_text(r, 4),
            method: db::get_opt_text(r, 5),
            path: db::get_opt_text(r, 6),
            credential: db::get_opt_text(r, 7),
            request_id: db::get_opt_text(r, 8),
        })
        .collect();
    let page = page.page(events, |e| {
        json_position(&Position {
            occurred_at: e.occurred_at,
            id: e.id.clone(),
        })
    });
    Ok(response::json(200, &page, request_id))
}
