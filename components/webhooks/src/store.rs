//! What the handlers share: the sealed settings of a source, the public
//! base URL, cursors over `(time, id)`.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::{ErrorCode, FieldError, Problem};
use gatehouse_secrets::sealed::{Binding, Kind};
use gatehouse_secrets::sealing;
use spin_sdk::sqlite::Connection;
use webhooks_core::Provider;

use crate::input::Settings;

/// The base URL ingest URLs are made of, without a trailing `/`.
pub async fn public_base_url() -> String {
    spin_sdk::variables::get("public_base_url")
        .await
        .map(|v| v.trim_end_matches('/').to_string())
        .unwrap_or_default()
}

/// `settings` sealed for org `org_id`'s source `id`, with the org's data
/// key (`gatehouse_secrets::sealing`): bound to the org and the source, so
/// a sealed config copied to another source or org does not open.
pub async fn seal(
    conn: &Connection,
    org_id: &str,
    settings: &Settings,
    id: &str,
    now: i64,
) -> Result<String, Problem> {
    let plain = serde_json::to_vec(settings).map_err(|_| Problem::internal())?;
    let binding = Binding::org(Kind::WebhookSource, org_id, id);
    sealing::seal(conn, &binding, &plain, now).await
}

/// The settings sealed in `sealed` for org `org_id`'s source `id`; none
/// if they do not open (another master key, or a row copied from
/// elsewhere).
pub async fn open(
    conn: &Connection,
    org_id: &str,
    sealed: &str,
    id: &str,
) -> Result<Option<Settings>, Problem> {
    let binding = Binding::org(Kind::WebhookSource, org_id, id);
    Ok(sealing::open(conn, &binding, sealed)
        .await?
        .and_then(|plain| serde_json::from_slice(&plain).ok()))
}

/// The org's live source `id`: its provider and settings.
pub async fn settings(
    conn: &Connection,
    tenant: &Tenant<'_>,
    id: &str,
) -> Result<Option<(Provider, Settings)>, Problem> {
    let rows = tenant
        .query(
            "SELECT provider, config FROM webhook_sources
             WHERE org_id = ?1 AND source_id = ?2 AND deleted_at IS NULL",
            vec![db::text(id)],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let Some(provider) = Provider::parse(&db::get_text(row, 0)) else {
        return Ok(None);
    };
    let sealed = db::get_text(row, 1);
    let settings = open(conn, tenant.org_id(), &sealed, id)
        .await?
        .ok_or_else(|| {
            eprintln!("webhooks: source {id}'s settings do not open with this master key");
            Problem::internal()
        })?;
    Ok(Some((provider, settings)))
}

/// An admin of the org the request acts in: who manages its sources and
/// reads what they delivered.
pub async fn admin(req: &spin_sdk::http::Request) -> Result<OrgCaller, Problem> {
    admin_of(req, "webhook sources").await
}

/// An admin of the org the request acts in, who manages `label` (named in
/// the refusal to anyone else).
pub async fn admin_of(req: &spin_sdk::http::Request, label: &str) -> Result<OrgCaller, Problem> {
    let caller = OrgCaller::of(req).await?;
    caller.require_admin(label)?;
    Ok(caller)
}

/// A cursor's position: a time and an id (`<unix>:<id>`); before the
/// first page, after everything.
pub fn cursor_position(page: &PageRequest) -> Result<(i64, String), Problem> {
    let Some(cursor) = &page.cursor else {
        return Ok((i64::MAX, String::new()));
    };
    cursor
        .split_once(':')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.to_string())))
        .ok_or_else(|| {
            Problem::new(ErrorCode::InvalidQuery)
                .detail("the cursor was not made here")
                .errors(vec![FieldError::new(
                    "/cursor",
                    "invalid",
                    "the cursor was not made here",
                )])
        })
}

/// The position of an item made at `at` with `id`.
pub fn position(at: i64, id: &str) -> String {
    format!("{at}:{id}")
}

/// Opens a write transaction (`IMMEDIATE`: it holds the write lock from
/// its first statement).
pub async fn begin(conn: &spin_sdk::sqlite::Connection) -> Result<(), Problem> {
    db::run(conn, "BEGIN IMMEDIATE", vec![]).await
}

/// Ends the transaction: kept when `keep`, else rolled back.
pub async fn end(conn: &spin_sdk::sqlite::Connection, keep: bool) -> Result<(), Problem> {
    db::run(conn, if keep { "COMMIT" } else { "ROLLBACK" }, vec![]).await
}
