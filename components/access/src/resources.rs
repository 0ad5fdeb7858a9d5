//! Resources as access sees them: ownership edges (a resource may have
//! several owners: its creator, a team or business unit, the org) and the
//! roles it is granted to. Members read them; admins and holders of
//! `authz:resources` add and remove owners. An owner must belong to the
//! org: a member, one of its teams, or the org itself (by id).

use access_core::facts::OwnerType;
use access_core::names::decode_segment;
use access_core::roles::AUTHZ_RESOURCES;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use serde::Serialize;
use serde_json::json;
use spin_sdk::http::Request;

use crate::context::Caller;
use crate::fields::resource_segments;

/// A resource's path: service, collection, id.
pub type ResourcePath<'a> = (&'a str, &'a str, &'a str);

fn no_resource() -> Problem {
    Problem::not_found().detail("no such resource")
}

#[derive(Serialize)]
struct OwnerEdge {
    #[serde(rename = "type")]
    owner_type: String,
    id: String,
    created_at: i64,
}

#[derive(Serialize)]
struct RoleGrant {
    role: String,
    granted_at: i64,
}

/// `GET /v1/authz/resources/{service}/{collection}/{id}`: members; its
/// owners and the roles it is granted to. 404 when it has neither (a
/// resource of another org has neither here).
pub async fn get(
    req: Request,
    path: ResourcePath<'_>,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let (service, collection, id) = resource_segments(path.0, path.1, Some(path.2))?;
    let id = id.unwrap_or_default();
    let tenant = caller.tenant()?;
    let params = || vec![db::text(&service), db::text(&collection), db::text(&id)];
    let owners = tenant
        .query(
            "SELECT owner_type, owner_id, created_at FROM resource_owners
             WHERE org_id = ?1 AND service = ?2 AND collection = ?3 AND resource_id = ?4
             ORDER BY owner_type, owner_id",
            params(),
        )
        .await?;
    let grants = tenant
        .query(
            "SELECT r.name, g.created_at FROM resource_grants g JOIN roles r ON r.role_id = g.role_id
             WHERE g.org_id = ?1 AND g.service = ?2 AND g.collection = ?3 AND g.resource_id = ?4
             ORDER BY r.name",
            params(),
        )
        .await?;
    if owners.is_empty() && grants.is_empty() {
        return Err(no_resource());
    }
    let owners: Vec<OwnerEdge> = owners
        .iter()
        .map(|r| OwnerEdge {
            owner_type: db::get_text(r, 0),
            id: db::get_text(r, 1),
            created_at: db::get_int(r, 2).unwrap_or_default(),
        })
        .collect();
    let grants: Vec<RoleGrant> = grants
        .iter()
        .map(|r| RoleGrant {
            role: db::get_text(r, 0),
            granted_at: db::get_int(r, 1).unwrap_or_default(),
        })
        .collect();
    let body = json!({
        "service": service,
        "collection": collection,
        "id": id,
        "owners": owners,
        "grants": grants,
    });
    Ok(response::json(200, &body, request_id))
}

fn bad_owner_type() -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("an owner is a user, a team or the org")
        .errors(vec![FieldError::new(
            "/owner_type",
            "invalid",
            "owner type must be user, team or org",
        )])
}

/// 404 unless the owner is this org's: a member, a team, or the org.
async fn require_owner_in_org(
    tenant: &Tenant<'_>,
    owner_type: OwnerType,
    owner_id: &str,
) -> Result<(), Problem> {
    let (sql, what) = match owner_type {
        OwnerType::User => (
            "SELECT 1 FROM memberships WHERE org_id = ?1 AND user_id = ?",
            "no such member",
        ),
        OwnerType::Team => (
            "SELECT 1 FROM teams WHERE org_id = ?1 AND team_id = ?",
            "no such team",
        ),
        OwnerType::Org => (
            "SELECT 1 FROM orgs WHERE org_id = ?1 AND org_id = ?",
            "an org owner is this organization, by id",
        ),
    };
    let rows = tenant.query(sql, vec![db::text(owner_id)]).await?;
    if rows.is_empty() {
        Err(Problem::not_found().detail(what))
    } else {
        Ok(())
    }
}

/// The owner type and id from the path.
fn owner_segments(owner_type: &str, owner_id: &str) -> Result<(OwnerType, String), Problem> {
    let owner_type = OwnerType::parse(owner_type).ok_or_else(bad_owner_type)?;
    let owner_id =
        decode_segment(owner_id).ok_or_else(|| Problem::not_found().detail("no such owner"))?;
    Ok((owner_type, owner_id))
}

/// `PUT /v1/authz/resources/{service}/{collection}/{id}/owners/{type}/{owner}`:
/// admins and holders of `authz:resources`; adds an owner (idempotent).
pub async fn add_owner(
    req: Request,
    path: ResourcePath<'_>,
    owner: (&str, &str),
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    caller.require_admin_or(AUTHZ_RESOURCES)?;
    let (service, collection, id) = resource_segments(path.0, path.1, Some(path.2))?;
    let (owner_type, owner_id) = owner_segments(owner.0, owner.1)?;
    let tenant = caller.tenant()?;
    require_owner_in_org(&tenant, owner_type, &owner_id).await?;
    tenant
        .exec(
            "INSERT INTO resource_owners (org_id, service, collection, resource_id, owner_type, owner_id, created_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                db::text(service),
                db::text(collection),
                db::opt_text(id),
                db::text(owner_type.as_str()),
                db::text(owner_id),
                db::int(unix_now()),
            ],
        )
        .await?;
    Ok(response::no_content(request_id))
}

/// `DELETE /v1/authz/resources/{service}/{collection}/{id}/owners/{type}/{owner}`:
/// admins and holders of `authz:resources`; removes an owner.
pub async fn remove_owner(
    req: Request,
    path: ResourcePath<'_>,
    owner: (&str, &str),
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    caller.require_admin_or(AUTHZ_RESOURCES)?;
    let (service, collection, id) = resource_segments(path.0, path.1, Some(path.2))?;
    let (owner_type, owner_id) = owner_segments(owner.0, owner.1)?;
    let tenant = caller.tenant()?;
    let removed = tenant
        .exec(
            "DELETE FROM resource_owners WHERE org_id = ?1 AND service = ? AND collection = ? AND resource_id = ?
             AND owner_type = ? AND owner_id = ?",
            vec![
                db::text(service),
                db::text(collection),
                db::opt_text(id),
                db::text(owner_type.as_str()),
                db::text(owner_id),
            ],
        )
        .await?;
    if removed == 0 {
        return Err(Problem::not_found().detail("the resource has no such owner"));
    }
    Ok(response::no_content(request_id))
}
