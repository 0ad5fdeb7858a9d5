//! Reading the audit trail (`gatehouse_http::audit` writes it): an org's,
//! for its admins, at `GET /v1/orgs/{org}/audit-events`, and the whole
//! deployment's, for the operator, at `GET /v1/admin/audit-events`
//! (`?org=<id>` for one org's, `?org=none` for the records of no org).
//!
//! Newest first, filtered by action (`?action=secret.read`), actor
//! (`?actor=<id>`: the actor, the person behind it or the member acted
//! as), resource (`?resource_type=team&resource_id=tm_…`) and time
//! (`?from=`/`?to=`, unix seconds, from inclusive, to exclusive), with
//! cursor pagination; `?format=jsonl` answers the same page as JSON lines
//! (`application/x-ndjson`, one event a line, the next page's cursor in
//! the `x-next-cursor` header) for export.

use gatehouse_auth::db;
use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::{ErrorCode, Problem, Response, response};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;
use spin_sdk::sqlite::{RowResult, Value};

use crate::context::Caller;

#[derive(Serialize)]
struct Actor {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

#[derive(Serialize)]
struct Resource {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
}

#[derive(Serialize)]
struct Event {
    id: String,
    org_id: Option<String>,
    occurred_at: i64,
    action: String,
    actor: Actor,
    actor_user_id: Option<String>,
    subject_user_id: Option<String>,
    credential: Option<String>,
    resource: Resource,
    method: Option<String>,
    path: Option<String>,
    request_id: Option<String>,
    client_address: Option<String>,
    outcome: Option<i64>,
    changed_fields: Vec<String>,
    digest: Option<String>,
}

const COLUMNS: &str = "event_id, org_id, occurred_at, action, actor_type, actor_id, actor_user_id,
    subject_user_id, credential, resource_type, resource_id, method, path, request_id,
    client_address, outcome, changed_fields, digest";

fn event_from(r: &RowResult) -> Event {
    Event {
        id: db::get_text(r, 0),
        org_id: db::get_opt_text(r, 1),
        occurred_at: db::get_int(r, 2).unwrap_or_default(),
        action: db::get_text(r, 3),
        actor: Actor {
            kind: db::get_text(r, 4),
            id: db::get_opt_text(r, 5),
        },
        actor_user_id: db::get_opt_text(r, 6),
        subject_user_id: db::get_opt_text(r, 7),
        credential: db::get_opt_text(r, 8),
        resource: Resource {
            kind: db::get_opt_text(r, 9),
            id: db::get_opt_text(r, 10),
        },
        method: db::get_opt_text(r, 11),
        path: db::get_opt_text(r, 12),
        request_id: db::get_opt_text(r, 13),
        client_address: db::get_opt_text(r, 14),
        outcome: db::get_int(r, 15),
        changed_fields: db::get_opt_text(r, 16)
            .and_then(|f| serde_json::from_str(&f).ok())
            .unwrap_or_default(),
        digest: db::get_opt_text(r, 17),
    }
}

#[derive(Serialize, Deserialize)]
struct Position {
    occurred_at: i64,
    id: String,
}

/// The value of query parameter `name`, if given.
fn param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// The filters, checked.
struct Filters {
    action: Option<String>,
    actor: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    lines: bool,
}

fn bad(detail: &str) -> Problem {
    Problem::new(ErrorCode::InvalidQuery).detail(detail.to_string())
}

/// Query parameter `name` when it is 1 to 200 characters that `allowed`
/// accepts each of.
fn word(
    query: Option<&str>,
    name: &str,
    allowed: fn(u8) -> bool,
    detail: &str,
) -> Result<Option<String>, Problem> {
    match param(query, name) {
        None => Ok(None),
        Some(v) if (1..=200).contains(&v.len()) && v.bytes().all(allowed) => {
            Ok(Some(v.to_string()))
        }
        Some(_) => Err(bad(detail)),
    }
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b == b'.' || b == b'_'
}

fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.' | b'@' | b'$')
}

fn filters(query: Option<&str>) -> Result<Filters, Problem> {
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
        action: word(
            query,
            "action",
            name_byte,
            "action must be a lower-case name such as team.delete",
        )?,
        actor: word(query, "actor", id_byte, "actor must be an id")?,
        resource_type: word(
            query,
            "resource_type",
            name_byte,
            "resource_type must be a lower-case name such as team",
        )?,
        resource_id: word(query, "resource_id", id_byte, "resource_id must be an id")?,
        from: time("from")?,
        to: time("to")?,
        lines,
    })
}

/// Whose records a listing reads.
enum Trail {
    /// One org's.
    Org(String),
    /// The records of no org.
    Deployment,
    /// All of them.
    All,
}

async fn page(
    conn: &spin_sdk::sqlite::Connection,
    req: &Request,
    trail: Trail,
    request_id: &str,
) -> Result<Response, Problem> {
    let query = req.uri().query();
    let page = PageRequest::from_query(query)?;
    let after: Option<Position> = page.json_cursor()?;
    let f = filters(query)?;
    let (before_at, before_id) = after.map_or((i64::MAX, String::new()), |p| (p.occurred_at, p.id));
    let (scope, org) = match trail {
        Trail::Org(id) => ("org_id = ?9", Value::Text(id)),
        Trail::Deployment => ("org_id IS NULL AND ?9 IS NULL", Value::Null),
        Trail::All => ("?9 IS NULL", Value::Null),
    };
    let opt = |v: Option<String>| v.map_or(Value::Null, Value::Text);
    let time = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    let rows = db::query(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM audit_events
             WHERE {scope} AND (?1 IS NULL OR action = ?1)
               AND (occurred_at < ?2 OR (occurred_at = ?2 AND (?3 = '' OR event_id < ?3)))
               AND (?5 IS NULL OR actor_id = ?5 OR actor_user_id = ?5 OR subject_user_id = ?5)
               AND (?6 IS NULL OR occurred_at >= ?6) AND (?7 IS NULL OR occurred_at < ?7)
               AND (?8 IS NULL OR resource_type = ?8) AND (?10 IS NULL OR resource_id = ?10)
             ORDER BY occurred_at DESC, event_id DESC LIMIT ?4"
        ),
        vec![
            opt(f.action),
            Value::Integer(before_at),
            Value::Text(before_id),
            Value::Integer(i64::from(page.fetch_count())),
            opt(f.actor),
            time(f.from),
            time(f.to),
            opt(f.resource_type),
            org,
            opt(f.resource_id),
        ],
    )
    .await?;
    let events: Vec<Event> = rows.iter().map(event_from).collect();
    let page = page.page(events, |e| {
        json_position(&Position {
            occurred_at: e.occurred_at,
            id: e.id.clone(),
        })
    });
    if f.lines {
        return Ok(lines(&page.items, page.next_cursor.as_deref(), request_id));
    }
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/orgs/{org}/audit-events`, for the org's admins.
pub async fn list(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    filters(req.uri().query())?;
    PageRequest::from_query(req.uri().query())?.json_cursor::<Position>()?;
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    page(
        &caller.conn,
        &req,
        Trail::Org(tenant.org_id().to_string()),
        request_id,
    )
    .await
}

/// `GET /v1/admin/audit-events`, for the operator.
pub async fn list_all(req: Request, request_id: &str) -> Result<Response, Problem> {
    gatehouse_http::operator::require(&req).await?;
    let trail = match param(req.uri().query(), "org") {
        None => Trail::All,
        Some("none") => Trail::Deployment,
        Some(id)
            if id.starts_with("org_")
                && id.len() <= 100
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            Trail::Org(id.to_string())
        }
        Some(_) => return Err(bad("org must be an org id or none")),
    };
    let conn = db::open().await?;
    page(&conn, &req, trail, request_id).await
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
