//! `POST`/`GET /v1/webhooks/sources`, `GET`/`PATCH`/`DELETE
//! /v1/webhooks/sources/{id}`: an org's incoming webhook sources, managed
//! by its admins. A source is a provider and what verifies its deliveries
//! (secrets, or Azure DevOps credentials), sealed at rest and never
//! answered; its ingest URL is public and needs no other credential.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json;
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::{ErrorCode, Problem, Response, response};
use serde::Serialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::RowResult;
use std::collections::BTreeMap;

use crate::input::{CreateSource, PatchSource, Settings};
use crate::store;

/// A source as answered.
#[derive(Debug, Serialize)]
pub struct Source {
    pub id: String,
    pub provider: String,
    pub description: Option<String>,
    pub ingest_url: String,
    pub tolerance_seconds: Option<i64>,
    pub secret_count: i64,
    pub has_basic: bool,
    pub has_header: bool,
    /// GitHub and Jira: whether a body already stored is a duplicate under
    /// a new delivery id; absent for other providers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deduplicate_bodies: Option<bool>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Refused deliveries by reason.
    pub rejections: BTreeMap<String, i64>,
    pub last_rejected_at: Option<i64>,
    /// Deliveries accepted.
    pub events: i64,
}

/// Columns of a source row, with its rejections (a JSON object), when the
/// last was, and how many events it delivered.
const SOURCE_COLUMNS: &str = "s.source_id, s.provider, s.description, s.tolerance_seconds, s.secret_count,
     s.has_basic, s.has_header, s.created_at, s.updated_at,
     (SELECT json_group_object(r.reason, r.count) FROM webhook_rejections r
      WHERE r.org_id = s.org_id AND r.source_id = s.source_id),
     (SELECT MAX(r.last_at) FROM webhook_rejections r WHERE r.org_id = s.org_id AND r.source_id = s.source_id),
     (SELECT COUNT(*) FROM webhook_events e WHERE e.org_id = s.org_id AND e.source_id = s.source_id),
     -- NULL: not a provider deduplicated by body; a NULL column is the default, yes.
     CASE WHEN s.provider IN ('github', 'jira') THEN COALESCE(s.deduplicate_bodies, 1) END";

fn source_of(row: &RowResult, base: &str) -> Source {
    let id = db::get_text(row, 0);
    Source {
        ingest_url: format!("{base}/v1/hooks/{id}"),
        id,
        provider: db::get_text(row, 1),
        description: db::get_opt_text(row, 2),
        tolerance_seconds: db::get_int(row, 3),
        secret_count: db::get_int(row, 4).unwrap_or(0),
        has_basic: db::get_int(row, 5).unwrap_or(0) != 0,
        has_header: db::get_int(row, 6).unwrap_or(0) != 0,
        created_at: db::get_int(row, 7).unwrap_or(0),
        updated_at: db::get_int(row, 8).unwrap_or(0),
        rejections: db::get_opt_text(row, 9)
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
        last_rejected_at: db::get_int(row, 10),
        events: db::get_int(row, 11).unwrap_or(0),
        deduplicate_bodies: db::get_int(row, 12).map(|d| d != 0),
    }
}

/// The `deduplicate_bodies` column: a copy of the sealed setting, so
/// reads need not open the seal.
fn dedupe_column(
    settings: &Settings,
    provider: webhooks_core::Provider,
) -> spin_sdk::sqlite::Value {
    settings
        .deduplicates_bodies(provider)
        .map_or(spin_sdk::sqlite::Value::Null, |d| db::int(i64::from(d)))
}

/// A source that does not exist, was deleted, or is another org's.
pub fn no_source() -> Problem {
    Problem::not_found().detail("no such webhook source")
}

async fn load(tenant: &Tenant<'_>, id: &str) -> Result<Source, Problem> {
    let base = store::public_base_url().await;
    let rows = tenant
        .query(
            &format!(
                "SELECT {SOURCE_COLUMNS} FROM webhook_sources s
                 WHERE s.org_id = ?1 AND s.source_id = ?2 AND s.deleted_at IS NULL"
            ),
            vec![db::text(id)],
        )
        .await?;
    rows.first()
        .map(|row| source_of(row, &base))
        .ok_or_else(no_source)
}

/// `POST /v1/webhooks/sources`.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = store::admin(&req).await?;
    let tenant = caller.tenant()?;
    let body: CreateSource = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let provider = body.provider().ok_or_else(Problem::internal)?;
    let settings = body.settings();
    let id = db::new_id("whs_");
    let now = unix_now();
    let sealed = store::seal(&caller.conn, tenant.org_id(), &settings, &id, now).await?;
    tenant
        .run(
            "INSERT INTO webhook_sources (org_id, source_id, provider, description, config, tolerance_seconds,
                                          secret_count, has_basic, has_header, created_by, created_at, updated_at,
                                          deduplicate_bodies)
             VALUES (?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                db::text(&id),
                db::text(provider.as_str()),
                db::opt_text(settings.description.clone()),
                db::text(sealed),
                settings.tolerance_seconds.map_or(spin_sdk::sqlite::Value::Null, db::int),
                db::int(settings.secrets.len() as i64),
                db::int(i64::from(settings.basic.is_some())),
                db::int(i64::from(settings.header.is_some())),
                db::text(caller.actor_id()),
                db::int(now),
                db::int(now),
                dedupe_column(&settings, provider),
            ],
        )
        .await?;
    let source = load(&tenant, &id).await?;
    Ok(response::json(201, &source, request_id))
}

/// `GET /v1/webhooks/sources`: newest first.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = store::admin(&req).await?;
    let tenant = caller.tenant()?;
    let page = PageRequest::from_query(req.uri().query())?;
    let (at, after) = store::cursor_position(&page)?;
    let base = store::public_base_url().await;
    let rows = tenant
        .query(
            &format!(
                "SELECT {SOURCE_COLUMNS} FROM webhook_sources s
                 WHERE s.org_id = ?1 AND s.deleted_at IS NULL
                   AND (s.created_at < ?2 OR (s.created_at = ?2 AND s.source_id < ?3))
                 ORDER BY s.created_at DESC, s.source_id DESC LIMIT ?4"
            ),
            vec![
                db::int(at),
                db::text(after),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    let sources = rows.iter().map(|r| source_of(r, &base)).collect();
    let page = page.page(sources, |s: &Source| store::position(s.created_at, &s.id));
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/webhooks/sources/{id}`.
pub async fn get(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = store::admin(&req).await?;
    let tenant = caller.tenant()?;
    let source = load(&tenant, id).await?;
    Ok(response::json(200, &source, request_id))
}

/// `PATCH /v1/webhooks/sources/{id}`: secrets replace the list (send the
/// old and the new one together to rotate without refusing deliveries).
pub async fn patch(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = store::admin(&req).await?;
    let tenant = caller.tenant()?;
    let body: PatchSource = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let (provider, settings) = store::settings(&caller.conn, &tenant, id)
        .await?
        .ok_or_else(no_source)?;
    let settings: Settings = settings.patched(body);
    settings.check(provider).map_err(|errors| {
        Problem::new(ErrorCode::ValidationFailed)
            .detail("the request body has invalid fields")
            .errors(errors)
    })?;
    let sealed = store::seal(&caller.conn, tenant.org_id(), &settings, id, unix_now()).await?;
    let changed = tenant
        .exec(
            "UPDATE webhook_sources SET description = ?2, config = ?3, tolerance_seconds = ?4,
                 secret_count = ?5, has_basic = ?6, has_header = ?7, updated_at = ?8,
                 deduplicate_bodies = ?10
             WHERE org_id = ?1 AND source_id = ?9 AND deleted_at IS NULL",
            vec![
                db::opt_text(settings.description.clone()),
                db::text(sealed),
                settings
                    .tolerance_seconds
                    .map_or(spin_sdk::sqlite::Value::Null, db::int),
                db::int(settings.secrets.len() as i64),
                db::int(i64::from(settings.basic.is_some())),
                db::int(i64::from(settings.header.is_some())),
                db::int(unix_now()),
                db::text(id),
                dedupe_column(&settings, provider),
            ],
        )
        .await?;
    if changed == 0 {
        return Err(no_source());
    }
    let source = load(&tenant, id).await?;
    Ok(response::json(200, &source, request_id))
}

/// `DELETE /v1/webhooks/sources/{id}`: its URL verifies nothing more and
/// its secrets are erased; the events it delivered stay.
pub async fn delete(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = store::admin(&req).await?;
    let tenant = caller.tenant()?;
    let changed = tenant
        .exec(
            "UPDATE webhook_sources SET deleted_at = ?2, config = '', secret_count = 0,
                 has_basic = 0, has_header = 0, updated_at = ?2
             WHERE org_id = ?1 AND source_id = ?3 AND deleted_at IS NULL",
            vec![db::int(unix_now()), db::text(id)],
        )
        .await?;
    if changed == 0 {
        return Err(no_source());
    }
    Ok(response::no_content(request_id))
}
