//! Roles: named permission sets of an org; `group:role` names make up
//! groups. Members read them; admins create, change, copy and delete them.
//! A change to a role's name or permissions reaches its holders' cached
//! credentials at once.

use access_core::names::group_of;
use access_core::policy::MAX_DESCRIPTION;
use gatehouse_auth::access::holders_changed;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;
use spin_sdk::sqlite::RowResult;

use crate::context::Caller;
use crate::fields::{Fields, no_role, role_segment};
use crate::holders;

/// A role.
#[derive(Serialize)]
pub struct Role {
    /// `role_…`.
    pub id: String,
    /// Unique in the org.
    pub name: String,
    /// The group, for `group:role` names.
    pub group: Option<String>,
    description: String,
    /// Sorted, each once.
    pub permissions: Vec<String>,
    created_at: i64,
    updated_at: i64,
}

const ROLE_COLUMNS: &str = "role_id, name, description, permissions, created_at, updated_at";

fn role_from(row: &RowResult) -> Role {
    let name = db::get_text(row, 1);
    Role {
        id: db::get_text(row, 0),
        group: group_of(&name).map(str::to_string),
        name,
        description: db::get_text(row, 2),
        permissions: serde_json::from_str(&db::get_text(row, 3)).unwrap_or_default(),
        created_at: db::get_int(row, 4).unwrap_or_default(),
        updated_at: db::get_int(row, 5).unwrap_or_default(),
    }
}

/// The org's role of this name, or 404 (another org's answers the same).
pub async fn load(tenant: &Tenant<'_>, name: &str) -> Result<Role, Problem> {
    let rows = tenant
        .query(
            &format!("SELECT {ROLE_COLUMNS} FROM roles WHERE org_id = ?1 AND name = ?"),
            vec![db::text(name)],
        )
        .await?;
    rows.first().map(role_from).ok_or_else(no_role)
}

async fn exists(tenant: &Tenant<'_>, name: &str) -> Result<bool, Problem> {
    let rows = tenant
        .query(
            "SELECT 1 FROM roles WHERE org_id = ?1 AND name = ?",
            vec![db::text(name)],
        )
        .await?;
    Ok(!rows.is_empty())
}

fn name_taken() -> Problem {
    Problem::new(ErrorCode::Conflict)
        .detail("a role with this name exists")
        .errors(vec![FieldError::new(
            "/name",
            "taken",
            "the org has a role with this name",
        )])
}

fn permissions_json(permissions: &[String]) -> String {
    serde_json::to_string(permissions).unwrap_or_else(|_| "[]".into())
}

async fn insert(
    tenant: &Tenant<'_>,
    name: &str,
    description: &str,
    permissions: &[String],
) -> Result<Role, Problem> {
    let now = unix_now();
    let role_id = db::new_id("role_");
    let inserted = tenant
        .exec(
            "INSERT INTO roles (org_id, role_id, name, description, permissions, created_at, updated_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                db::text(&role_id),
                db::text(name),
                db::text(description),
                db::text(permissions_json(permissions)),
                db::int(now),
                db::int(now),
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(name_taken());
    }
    load(tenant, name).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRole {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: Vec<String>,
}

impl Validate for CreateRole {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut fields = Fields::default();
        fields.role_name("/name", &self.name);
        fields.length("/description", &self.description, 0, MAX_DESCRIPTION);
        fields.permissions("/permissions", &self.permissions);
        fields.finish()
    }
}

/// `POST /v1/roles`: admins.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    caller.require_admin()?;
    let tenant = caller.tenant()?;
    caller
        .create_once(req, request_id, |body: CreateRole| {
            create_role(&tenant, body, request_id)
        })
        .await
}

async fn create_role(
    tenant: &Tenant<'_>,
    body: CreateRole,
    request_id: &str,
) -> Result<Response, Problem> {
    let permissions = access_core::roles::normalize(&body.permissions).unwrap_or_default();
    let role = insert(tenant, &body.name, &body.description, &permissions).await?;
    Ok(response::json(201, &role, request_id))
}

/// `GET /v1/roles[?group=<group>]`: by name.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let page = PageRequest::from_query(req.uri().query())?;
    let group = access_core::names::query_param(req.uri().query(), "group");
    let tenant = caller.tenant()?;
    // A group's roles are the names from `group:` up to `group;` (`;` follows `:`).
    let (low, high) = match &group {
        Some(g) => (format!("{g}:"), format!("{g};")),
        None => (String::new(), "\u{10FFFF}".to_string()),
    };
    let after = page.cursor.clone().unwrap_or_default();
    let rows = tenant
        .query(
            &format!(
                "SELECT {ROLE_COLUMNS} FROM roles WHERE org_id = ?1 AND name > ?2 AND name >= ?3 AND name < ?4
                 ORDER BY name LIMIT ?5"
            ),
            vec![
                db::text(after),
                db::text(low),
                db::text(high),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    let roles: Vec<Role> = rows.iter().map(role_from).collect();
    let page = page.page(roles, |r| r.name.clone());
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/roles/{name}`: members.
pub async fn get(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let name = role_segment(name)?;
    let tenant = caller.tenant()?;
    Ok(response::json(
        200,
        &load(&tenant, &name).await?,
        request_id,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRole {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
}

impl Validate for UpdateRole {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut fields = Fields::default();
        if let Some(name) = &self.name {
            fields.role_name("/name", name);
        }
        if let Some(d) = &self.description {
            fields.length("/description", d, 0, MAX_DESCRIPTION);
        }
        if let Some(p) = &self.permissions {
            fields.permissions("/permissions", p);
        }
        fields.finish()
    }
}

/// `PATCH /v1/roles/{name}`: admins rename, describe, or replace the
/// permissions; holders feel a new name or permissions on their next request.
pub async fn update(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    caller.require_admin()?;
    let name = role_segment(name)?;
    let body: UpdateRole = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let tenant = caller.tenant()?;
    let current = load(&tenant, &name).await?;
    let new_name = body.name.unwrap_or_else(|| current.name.clone());
    let permissions = match &body.permissions {
        Some(p) => access_core::roles::normalize(p).unwrap_or_default(),
        None => current.permissions.clone(),
    };
    let renamed = new_name != current.name;
    if renamed && exists(&tenant, &new_name).await? {
        return Err(name_taken());
    }
    let changed = tenant
        .exec(
            "UPDATE roles SET name = ?2, description = ?3, permissions = ?4, updated_at = ?5
             WHERE org_id = ?1 AND role_id = ?6",
            vec![
                db::text(&new_name),
                db::text(body.description.unwrap_or(current.description)),
                db::text(permissions_json(&permissions)),
                db::int(unix_now()),
                db::text(&current.id),
            ],
        )
        .await;
    // Two renames racing for one name: the unique index decides.
    if changed.is_err() && renamed {
        return Err(name_taken());
    }
    changed?;
    if renamed || permissions != current.permissions {
        holders_changed(&caller.conn, &current.id).await?;
    }
    Ok(response::json(
        200,
        &load(&tenant, &new_name).await?,
        request_id,
    ))
}

/// `DELETE /v1/roles/{name}`: admins; its grants to members, keys and
/// resources go with it, and its holders lose it on their next request.
pub async fn delete(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    caller.require_admin()?;
    let name = role_segment(name)?;
    let tenant = caller.tenant()?;
    let role = load(&tenant, &name).await?;
    // `holders_changed` reads the holders from the grants, which this delete
    // removes (and foreign keys would cascade away with the role itself):
    // so the holders are read first and made to re-read after the change.
    let holders = holders::of_role(&tenant, &role.id).await?;
    // Children first: deployments may run SQLite without foreign keys.
    for sql in [
        "DELETE FROM resource_grants WHERE org_id = ?1 AND role_id = ?",
        "DELETE FROM role_grants WHERE org_id = ?1 AND role_id = ?",
        "DELETE FROM roles WHERE org_id = ?1 AND role_id = ?",
    ] {
        tenant.exec(sql, vec![db::text(&role.id)]).await?;
    }
    holders::invalidate(&holders).await?;
    Ok(response::no_content(request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyRole {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

impl Validate for CopyRole {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut fields = Fields::default();
        fields.role_name("/name", &self.name);
        if let Some(d) = &self.description {
            fields.length("/description", d, 0, MAX_DESCRIPTION);
        }
        fields.finish()
    }
}

/// `POST /v1/roles/{name}/$copy`: admins; a new role with the source's
/// permissions (and description, unless given), to edit from there. Grants
/// are not copied.
pub async fn copy(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    caller.require_admin()?;
    let name = role_segment(name)?;
    let tenant = caller.tenant()?;
    caller
        .create_once(req, request_id, |body: CopyRole| {
            copy_role(&tenant, &name, body, request_id)
        })
        .await
}

async fn copy_role(
    tenant: &Tenant<'_>,
    source: &str,
    body: CopyRole,
    request_id: &str,
) -> Result<Response, Problem> {
    let source = load(tenant, source).await?;
    let description = body.description.unwrap_or(source.description);
    let role = insert(tenant, &body.name, &description, &source.permissions).await?;
    Ok(response::json(201, &role, request_id))
}
