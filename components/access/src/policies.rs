//! Policies: documents (see `access_core::policy`) stored per org under a
//! name; every change is a new version and the newest one is in force.
//! Members read them; admins write and delete them.

use access_core::names::{decode_segment, query_param, valid_name};
use access_core::policy::{PolicyDocument, StoredPolicy};
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;
use spin_sdk::sqlite::RowResult;

use crate::context::Caller;

/// The largest policy request accepted.
const LIMIT: usize = 16 * 1024;

/// One version of a policy, as the API shows it.
#[derive(Serialize)]
struct Version {
    name: String,
    version: i64,
    document: serde_json::Value,
    created_by: Option<String>,
    created_at: i64,
}

const COLUMNS: &str = "name, version, document, created_by, created_at";

fn version_from(row: &RowResult) -> Version {
    Version {
        name: db::get_text(row, 0),
        version: db::get_int(row, 1).unwrap_or_default(),
        document: db::get_json(row, 2).unwrap_or_default(),
        created_by: db::get_opt_text(row, 3),
        created_at: db::get_int(row, 4).unwrap_or_default(),
    }
}

fn no_policy() -> Problem {
    Problem::not_found().detail("no such policy")
}

/// A policy name from the path; 404 when it cannot name one.
fn name_segment(segment: &str) -> Result<String, Problem> {
    decode_segment(segment)
        .filter(|n| valid_name(n))
        .ok_or_else(no_policy)
}

/// The newest version (or `version`) of the policy, or 404.
async fn read(tenant: &Tenant<'_>, name: &str, version: Option<i64>) -> Result<Version, Problem> {
    let rows = tenant
        .query(
            &format!(
                "SELECT {COLUMNS} FROM policies WHERE org_id = ?1 AND name = ?2 AND (?3 IS NULL OR version = ?3)
                 ORDER BY version DESC LIMIT 1"
            ),
            vec![db::text(name), version.map_or(db::opt_text(None), db::int)],
        )
        .await?;
    rows.first().map(version_from).ok_or_else(no_policy)
}

/// The policy version in force (or the one asked for), parsed, for checks
/// and filters; 404 when there is none.
pub async fn in_force(
    tenant: &Tenant<'_>,
    name: &str,
    version: Option<i64>,
) -> Result<StoredPolicy, Problem> {
    let found = read(tenant, name, version).await?;
    let document = serde_json::from_value::<PolicyDocument>(found.document).map_err(|e| {
        eprintln!(
            "access: stored policy {name} v{} does not parse: {e}",
            found.version
        );
        Problem::internal()
    })?;
    Ok(StoredPolicy {
        name: found.name,
        version: found.version,
        document,
    })
}

fn version_query(query: Option<&str>) -> Result<Option<i64>, Problem> {
    query_param(query, "version")
        .map(|v| {
            v.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                Problem::new(ErrorCode::InvalidQuery)
                    .detail("version must be a positive integer")
                    .errors(vec![FieldError::new(
                        "/version",
                        "invalid",
                        "version must be a positive integer",
                    )])
            })
        })
        .transpose()
}

/// `GET /v1/authz/policies`: members; each policy's newest version, by name.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let page = PageRequest::from_query(req.uri().query())?;
    let tenant = caller.tenant()?;
    let rows = tenant
        .query(
            "SELECT p.name, p.version, p.document, p.created_by, p.created_at FROM policies p
             WHERE p.org_id = ?1 AND p.name > ?2
               AND p.version = (SELECT MAX(q.version) FROM policies q WHERE q.org_id = ?1 AND q.name = p.name)
             ORDER BY p.name LIMIT ?3",
            vec![
                db::text(page.cursor.clone().unwrap_or_default()),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    let versions: Vec<Version> = rows.iter().map(version_from).collect();
    let page = page.page(versions, |v| v.name.clone());
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/authz/policies/{name}[?version=N]`: members.
pub async fn get(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let version = version_query(req.uri().query())?;
    let name = name_segment(name)?;
    let tenant = caller.tenant()?;
    Ok(response::json(
        200,
        &read(&tenant, &name, version).await?,
        request_id,
    ))
}

/// `GET /v1/authz/policies/{name}/versions`: members; newest first.
pub async fn versions(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let page = PageRequest::from_query(req.uri().query())?;
    let name = name_segment(name)?;
    let tenant = caller.tenant()?;
    let before: i64 = match &page.cursor {
        Some(c) => c
            .parse()
            .map_err(|_| Problem::new(ErrorCode::InvalidQuery).detail("cursor is not valid"))?,
        None => i64::MAX,
    };
    let rows = tenant
        .query(
            &format!(
                "SELECT {COLUMNS} FROM policies WHERE org_id = ?1 AND name = ?2 AND version < ?3
                 ORDER BY version DESC LIMIT ?4"
            ),
            vec![
                db::text(&name),
                db::int(before),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    if rows.is_empty() && page.cursor.is_none() {
        return Err(no_policy());
    }
    let versions: Vec<Version> = rows.iter().map(version_from).collect();
    let page = page.page(versions, |v| v.version.to_string());
    Ok(response::json(200, &page, request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutPolicy {
    document: PolicyDocument,
}

impl Validate for PutPolicy {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        self.document.validate().map_err(|errors| {
            errors
                .into_iter()
                .map(|e| FieldError::new(format!("/document{}", e.pointer), e.code, e.message))
                .collect()
        })
    }
}

/// `PUT /v1/authz/policies/{name}`: admins; a new version when the
/// document differs from the one in force (201), else the current one (200).
pub async fn put(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    caller.require_admin()?;
    let name = decode_segment(name).unwrap_or_default();
    if !valid_name(&name) {
        return Err(Problem::new(ErrorCode::ValidationFailed)
            .detail("the path names an invalid policy")
            .errors(vec![FieldError::new(
                "/name",
                "invalid_format",
                "a policy name is 1 to 64 of a-z 0-9 _ . - starting with a letter or digit",
            )]));
    }
    let body: PutPolicy = json::read_json(req, LIMIT).await?;
    let tenant = caller.tenant()?;
    // Stored in one canonical form, so an unchanged document is recognised.
    let document = serde_json::to_value(&body.document).map_err(|_| Problem::internal())?;
    if let Ok(current) = read(&tenant, &name, None).await
        && current.document == document
    {
        return Ok(response::json(200, &current, request_id));
    }
    // One statement picks the next version, so concurrent writers cannot
    // both take it (the primary key refuses the second).
    tenant
        .exec(
            "INSERT INTO policies (org_id, name, version, document, created_by, created_at)
             SELECT ?1, ?2, COALESCE(MAX(version), 0) + 1, ?3, ?4, ?5 FROM policies WHERE org_id = ?1 AND name = ?2",
            vec![
                db::text(&name),
                db::text(document.to_string()),
                db::opt_text(caller.user_id().map(str::to_string)),
                db::int(unix_now()),
            ],
        )
        .await
        .map_err(|_| {
            Problem::new(ErrorCode::Conflict).detail("the policy changed at the same time; retry")
        })?;
    Ok(response::json(
        201,
        &read(&tenant, &name, None).await?,
        request_id,
    ))
}

/// `DELETE /v1/authz/policies/{name}`: admins; every version.
pub async fn delete(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    caller.require_admin()?;
    let name = name_segment(name)?;
    let tenant = caller.tenant()?;
    let removed = tenant
        .exec(
            "DELETE FROM policies WHERE org_id = ?1 AND name = ?",
            vec![db::text(&name)],
        )
        .await?;
    if removed == 0 {
        return Err(no_policy());
    }
    Ok(response::no_content(request_id))
}
