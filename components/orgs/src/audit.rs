//! The org's audit trail, for its admins: newest first, filtered by
//! action (`?action=secret.read`), actor (`?actor=<user id>`) and time
//! (`?from=`/`?to=`, unix seconds, from inclusive, to exclusive), with
//! cursor pagination; `?format=jsonl` answers the same page as JSON lines
//! (`application/x-ndjson`, one event a line, the next page's cursor in
//! the `x-next-cursor` header) for export.

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

/// The value of query parameter `name`, if given.
fn param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// `actor`, `from`, `to` and `format`, checked.
struct Filters {
    actor: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    lines: bool,
}

fn filters(query: Option<&str>) -> Result<Filters, Problem> {
    let bad = |detail: &str| Problem::new(ErrorCode::InvalidQuery).detail(detail.to_string());
    let actor = match param(query, "actor") {
        None => None,
        Some(id)
            if (1..=100).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':')) =>
        {
            Some(id.to_string())
        }
        Some(_) => return Err(bad("actor must be a user id")),
    };
    let time = |name: &str| -> Result<Option<i64>, Problem> {
        param(query, name)
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|t| (0..=253_402_300_799).contains(t))
                    .ok_or_else(|| bad(&format!("{name} must be unix seconds")))
            })
            .transpose()
    };
    let lines = match param(query, "format") {
        None | Some("json") => false,
        Some("jsonl") => true,
        Some(_) => return Err(bad("format must be json or jsonl")),
    };
    Ok(Filters {
        actor,
        from: time("from")?,
        to: time("to")?,
        lines,
    })
}

/// `GET /v1/orgs/{org}/audit-events`.
pub async fn list(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let page = PageRequest::from_query(req.uri().query())?;
    let after: Option<Position> = page.json_cursor()?;
    let action = action_filter(req.uri().query())?;
    let filters = filters(req.uri().query())?;
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
               AND (?6 IS NULL OR actor_user_id = ?6 OR subject_user_id = ?6)
               AND (?7 IS NULL OR occurred_at >= ?7) AND (?8 IS NULL OR occurred_at < ?8)
             ORDER BY occurred_at DESC, event_id DESC LIMIT ?5",
            vec![
                db::opt_text(action),
                db::int(before_at),
                db::text(&before_id),
                db::int(i64::from(page.fetch_count())),
                db::opt_text(filters.actor.clone()),
                filters.from.map_or(spin_sdk::sqlite::Value::Null, db::int),
                filters.to.map_or(spin_sdk::sqlite::Value::Null, db::int),
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
    if filters.lines {
        return Ok(lines(&page.items, page.next_cursor.as_deref(), request_id));
    }
    Ok(response::json(200, &page, request_id))
}

/// A page as JSON lines, its next cursor in `x-next-cursor`.
fn lines(events: &[Event], next: Option<&str>, request_id: &str) -> Response {
    let mut body = String::new();
    for event in events {
        if let Ok(line) = serde_json::to_string(event) {
            body.push_str(&line);
            body.push('\n');
        }
    }
    let extra: Vec<(&str, String)> = next
        .map(|n| vec![("x-next-cursor", n.to_string())])
        .unwrap_or_default();
    response::bytes(
        200,
        "application/x-ndjson",
        body.into_bytes(),
        &extra,
        request_id,
    )
}
