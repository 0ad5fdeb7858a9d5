//! The service registry: an org's services, which sign their own
//! short-lived JWTs (`iss` = the service's name, `aud` naming `gatehouse`)
//! with the keys in [`crate::service_keys`]. Every component verifies such
//! tokens against the registry on each request, so revoking a key stops
//! its tokens at once. Members read the registry; org admins change it.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;
use spin_sdk::sqlite::RowResult;

fn no_service() -> Problem {
    Problem::not_found().detail("no such service")
}

#[derive(Serialize)]
pub(crate) struct Service {
    pub(crate) id: String,
    pub(crate) name: String,
    description: String,
    permissions: Vec<String>,
    created_at: i64,
}

fn service_from(row: &RowResult) -> Service {
    Service {
        id: db::get_text(row, 0),
        name: db::get_text(row, 1),
        description: db::get_text(row, 2),
        permissions: serde_json::from_str(&db::get_text(row, 3)).unwrap_or_default(),
        created_at: db::get_int(row, 4).unwrap_or_default(),
    }
}

pub(crate) async fn load(tenant: &Tenant<'_>, name: &str) -> Result<Service, Problem> {
    let rows = tenant
        .query(
            "SELECT service_id, name, description, permissions, created_at FROM services WHERE org_id = ?1 AND name = ?",
            vec![db::text(name)],
        )
        .await?;
    rows.first().map(service_from).ok_or_else(no_service)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateService {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: Vec<String>,
}

impl Validate for CreateService {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if !valid_name(&self.name) {
            errors.push(FieldError::new(
                "/name",
                "invalid_format",
                "name must be 1 to 64 of a-z, 0-9 and '-', starting with a letter",
            ));
        }
        if self.description.chars().count() > 500 {
            errors.push(FieldError::new(
                "/description",
                "invalid_length",
                "description must have at most 500 characters",
            ));
        }
        if self.permissions.len() > 100
            || self
                .permissions
                .iter()
                .any(|p| !(1..=100).contains(&p.len()) || !p.is_ascii())
        {
            errors.push(FieldError::new(
                "/permissions",
                "invalid",
                "at most 100 permissions of 1 to 100 ASCII characters",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `POST /v1/services`.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("services")?;
    let tenant = caller.tenant()?;
    let body: CreateService = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let now = unix_now();
    let mut permissions = body.permissions.clone();
    permissions.sort();
    permissions.dedup();
    let inserted = tenant
        .exec(
            "INSERT INTO services (org_id, service_id, name, description, permissions, created_at, updated_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                db::text(db::new_id("svc_")),
                db::text(&body.name),
                db::text(&body.description),
                db::text(serde_json::to_string(&permissions).map_err(|_| Problem::internal())?),
                db::int(now),
                db::int(now),
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(Problem::new(ErrorCode::Conflict).detail("a service with this name exists"));
    }
    Ok(response::json(
        201,
        &load(&tenant, &body.name).await?,
        request_id,
    ))
}

/// `GET /v1/services`.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    let rows = tenant
        .query(
            "SELECT service_id, name, description, permissions, created_at FROM services WHERE org_id = ?1 ORDER BY name",
            vec![],
        )
        .await?;
    let items: Vec<Service> = rows.iter().map(service_from).collect();
    Ok(response::json(
        200,
        &serde_json::json!({ "items": items }),
        request_id,
    ))
}

/// `GET /v1/services/{name}`.
pub async fn get(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    Ok(response::json(200, &load(&tenant, name).await?, request_id))
}

/// `DELETE /v1/services/{name}`: the service and its keys go; its tokens
/// stop at once.
pub async fn delete(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("services")?;
    let tenant = caller.tenant()?;
    let service = load(&tenant, name).await?;
    for sql in [
        "DELETE FROM service_key_challenges WHERE org_id = ?1 AND service_id = ?",
        "DELETE FROM service_keys WHERE org_id = ?1 AND service_id = ?",
        "DELETE FROM services WHERE org_id = ?1 AND service_id = ?",
    ] {
        tenant.exec(sql, vec![db::text(&service.id)]).await?;
    }
    Ok(response::no_content(request_id))
}
