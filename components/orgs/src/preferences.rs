//! Preferences: a JSON object of settings on an org, a team and a user.
//! Members read the org's and its teams'; admins write them; a user reads
//! and writes their own. The effective settings resolve user > team (and
//! its ancestors, nearest winning) > org, merging objects key by key.
//!
//! Reads carry an `ETag`; a write may send `If-Match` to refuse to
//! overwrite a change it has not seen (412).

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use gatehouse_notify::prefs::Level;
use identity_core::org::resolve;
use serde_json::Value;
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;

use crate::context::Caller;
use crate::teams;

/// The largest settings document accepted.
const LIMIT: usize = 16 * 1024;

/// Whose settings.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    /// The org's own.
    Org,
    /// A team's, by id.
    Team(&'a str),
}

async fn read_scoped(tenant: &Tenant<'_>, scope: Scope<'_>) -> Result<Value, Problem> {
    let rows = match scope {
        Scope::Org => {
            tenant
                .query(
                    "SELECT settings FROM preferences WHERE org_id = ?1 AND scope = 'org' AND scope_id = ?1",
                    vec![],
                )
                .await?
        }
        Scope::Team(team) => {
            tenant
                .query(
                    "SELECT settings FROM preferences WHERE org_id = ?1 AND scope = 'team' AND scope_id = ?",
                    vec![db::text(team)],
                )
                .await?
        }
    };
    Ok(rows
        .first()
        .and_then(|r| db::get_json(r, 0))
        .unwrap_or_else(empty))
}

fn empty() -> Value {
    Value::Object(Default::default())
}

async fn read_user(conn: &Connection, user_id: &str) -> Result<Value, Problem> {
    // A user's own settings follow them into every org: not tenant data.
    let rows = db::query(
        conn,
        "SELECT settings FROM preferences WHERE scope = 'user' AND scope_id = ? AND org_id IS NULL",
        vec![db::text(user_id)],
    )
    .await?;
    Ok(rows
        .first()
        .and_then(|r| db::get_json(r, 0))
        .unwrap_or_else(empty))
}

fn with_etag(settings: &Value, req_if_none_match: Option<&str>, request_id: &str) -> Response {
    let body = serde_json::to_vec(settings).unwrap_or_default();
    response::cacheable("application/json", &body, req_if_none_match, request_id)
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Reads a settings document: a JSON object of at most 16 KiB.
async fn read_settings(req: Request) -> Result<Value, Problem> {
    let value: Value = json::read_unvalidated(req, LIMIT).await?;
    if !value.is_object() {
        return Err(Problem::new(ErrorCode::ValidationFailed)
            .detail("preferences must be a JSON object")
            .errors(vec![FieldError::new(
                "",
                "invalid_type",
                "preferences must be a JSON object",
            )]));
    }
    Ok(value)
}

/// 422 when the document's `notifications` key is not valid for its
/// level: notifications (`gatehouse-notify`) own that key, with its kinds
/// and channels, and refuse muting a critical kind.
fn check_notifications(settings: &Value, level: Level) -> Result<(), Problem> {
    let errors = gatehouse_notify::prefs::validate(settings, level);
    if errors.is_empty() {
        return Ok(());
    }
    Err(Problem::new(ErrorCode::ValidationFailed)
        .detail("the notification preferences are not valid")
        .errors(errors))
}

/// 412 unless `If-Match` (when sent) names the current document.
fn check_if_match(if_match: Option<&str>, current: &Value) -> Result<(), Problem> {
    let Some(if_match) = if_match else {
        return Ok(());
    };
    let tag = response::etag(&serde_json::to_vec(current).unwrap_or_default());
    if if_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == tag)
    {
        Ok(())
    } else {
        Err(Problem::new(ErrorCode::PreconditionFailed)
            .detail("the preferences changed since you read them; read them again"))
    }
}

/// `GET /v1/orgs/{org}/preferences`, `GET /v1/orgs/{org}/teams/{team}/preferences`.
pub async fn get(
    req: Request,
    org: &str,
    scope: Scope<'_>,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    if let Scope::Team(team) = scope {
        teams::load(&tenant, team).await?;
    }
    let settings = read_scoped(&tenant, scope).await?;
    Ok(with_etag(
        &settings,
        header(&req, "if-none-match"),
        request_id,
    ))
}

/// `PUT /v1/orgs/{org}/preferences`, `PUT /v1/orgs/{org}/teams/{team}/preferences`:
/// admins replace the document.
pub async fn put(
    req: Request,
    org: &str,
    scope: Scope<'_>,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    if let Scope::Team(team) = scope {
        teams::load(&tenant, team).await?;
    }
    let if_match = header(&req, "if-match").map(str::to_string);
    let settings = read_settings(req).await?;
    check_notifications(
        &settings,
        match scope {
            Scope::Org => Level::Org,
            Scope::Team(_) => Level::Team,
        },
    )?;
    check_if_match(if_match.as_deref(), &read_scoped(&tenant, scope).await?)?;
    let (kind, id) = match scope {
        Scope::Org => ("org", tenant.org_id().to_string()),
        Scope::Team(team) => ("team", team.to_string()),
    };
    tenant
        .exec(
            "INSERT INTO preferences (org_id, scope, scope_id, settings, updated_at) VALUES (?1, ?, ?, ?, ?)
             ON CONFLICT (scope, scope_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
            vec![
                db::text(kind),
                db::text(id),
                db::text(settings.to_string()),
                db::int(unix_now()),
            ],
        )
        .await?;
    Ok(with_etag(&settings, None, request_id))
}

/// `GET /v1/me/preferences`.
pub async fn get_mine(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    caller.require_person()?;
    let settings = read_user(&caller.conn, caller.user_id()).await?;
    Ok(with_etag(
        &settings,
        header(&req, "if-none-match"),
        request_id,
    ))
}

/// `PUT /v1/me/preferences`.
pub async fn put_mine(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    caller.require_person()?;
    let if_match = header(&req, "if-match").map(str::to_string);
    let settings = read_settings(req).await?;
    check_notifications(&settings, Level::User)?;
    check_if_match(
        if_match.as_deref(),
        &read_user(&caller.conn, caller.user_id()).await?,
    )?;
    db::exec(
        &caller.conn,
        "INSERT INTO preferences (org_id, scope, scope_id, settings, updated_at) VALUES (NULL, 'user', ?, ?, ?)
         ON CONFLICT (scope, scope_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
        vec![
            db::text(caller.user_id()),
            db::text(settings.to_string()),
            db::int(unix_now()),
        ],
    )
    .await?;
    Ok(with_etag(&settings, None, request_id))
}

/// `GET /v1/orgs/{org}/preferences/effective[?team=<id>]`: the caller's
/// settings resolved over the org, the team's ancestors from the top, the
/// team, and the caller's own.
pub async fn effective(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let team = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|p| p.strip_prefix("team="))
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    let mut layers = vec![read_scoped(&tenant, Scope::Org).await?];
    let mut sources = vec![serde_json::json!({"scope": "org", "id": tenant.org_id()})];
    if let Some(team) = &team {
        let mut chain = teams::chain(&tenant, team).await?;
        if chain.is_empty() {
            return Err(Problem::not_found().detail("no such team"));
        }
        chain.reverse();
        for id in &chain {
            layers.push(read_scoped(&tenant, Scope::Team(id)).await?);
            sources.push(serde_json::json!({"scope": "team", "id": id}));
        }
    }
    // An API key has no settings of its own: it sees the org's and teams'.
    if caller.api_key.is_none() {
        layers.push(read_user(&caller.conn, caller.user_id()).await?);
        sources.push(serde_json::json!({"scope": "user", "id": caller.user_id()}));
    }
    let body = serde_json::json!({ "settings": resolve(&layers), "sources": sources });
    Ok(response::json(200, &body, request_id))
}
