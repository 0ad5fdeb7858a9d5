//! Who holds a role. Members list a role's holders (members and API keys).
//! Admins grant and revoke any role to members; a holder of `add-user`
//! (`remove-user`) through a role of group G grants (revokes) G's roles.
//! API keys get their roles through the keys component. A change reaches
//! the member's cached sessions on their next request.

use access_core::roles::{MemberChange, manages_group_of};
use gatehouse_auth::access::SubjectType;
use gatehouse_auth::db;
use gatehouse_auth::session::Cache;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::{ErrorCode, Problem, Response, idempotency::unix_now, response};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;

use crate::context::Caller;
use crate::fields::role_segment;
use crate::roles;

/// A role's holders, as `(subject type, subject id)`.
pub async fn of_role(
    tenant: &Tenant<'_>,
    role_id: &str,
) -> Result<Vec<(SubjectType, String)>, Problem> {
    let rows = tenant
        .query(
            "SELECT subject_type, subject_id FROM role_grants WHERE org_id = ?1 AND role_id = ?",
            vec![db::text(role_id)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let kind = if db::get_text(r, 0) == SubjectType::User.as_str() {
                SubjectType::User
            } else {
                SubjectType::ApiKey
            };
            (kind, db::get_text(r, 1))
        })
        .collect())
}

/// Makes these holders' cached credentials re-read their roles. Call after
/// the database change.
pub async fn invalidate(holders: &[(SubjectType, String)]) -> Result<(), Problem> {
    let cache = Cache::open().await;
    for (kind, id) in holders {
        match kind {
            SubjectType::User => cache.invalidate_user(id).await?,
            SubjectType::ApiKey => gatehouse_auth::apikey::invalidate(id).await?,
        }
    }
    Ok(())
}

/// The roles the caller holds now, with their permissions: the roles its
/// principal carries, which for an API key are those key verification
/// kept (a role its owner no longer holds is dropped) and for a JWT those
/// it still stands for. Raw grants are never read here, so a manager check
/// and every other check agree on what the caller holds.
pub async fn held_by_caller(
    caller: &Caller,
    tenant: &Tenant<'_>,
) -> Result<Vec<(String, Vec<String>)>, Problem> {
    caller.subject()?;
    let names = serde_json::to_string(&caller.principal.roles).map_err(|_| Problem::internal())?;
    let rows = tenant
        .query(
            "SELECT name, permissions FROM roles WHERE org_id = ?1 AND name IN (SELECT value FROM json_each(?))",
            vec![db::text(names)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let permissions = serde_json::from_str(&db::get_text(r, 1)).unwrap_or_default();
            (db::get_text(r, 0), permissions)
        })
        .collect())
}

/// 403 unless the caller is an admin or manages the role's group.
async fn require_manager(
    caller: &Caller,
    tenant: &Tenant<'_>,
    role: &str,
    change: MemberChange,
) -> Result<(), Problem> {
    if caller.principal.is_org_admin() {
        return Ok(());
    }
    if manages_group_of(&held_by_caller(caller, tenant).await?, role, change) {
        return Ok(());
    }
    Err(Problem::new(ErrorCode::Forbidden).detail(format!(
        "only an admin, or a holder of {} through a role of this role's group, may do this",
        change.permission()
    )))
}

/// 404 unless `user_id` is a member of the org.
async fn require_member(tenant: &Tenant<'_>, user_id: &str) -> Result<(), Problem> {
    let rows = tenant
        .query(
            "SELECT 1 FROM memberships WHERE org_id = ?1 AND user_id = ?",
            vec![db::text(user_id)],
        )
        .await?;
    if rows.is_empty() {
        Err(Problem::not_found().detail("no such member"))
    } else {
        Ok(())
    }
}

#[derive(Serialize)]
struct Holder {
    subject_type: String,
    subject_id: String,
    /// The member's address and name; `null` for API keys.
    email: Option<String>,
    display_name: Option<String>,
    granted_by: Option<String>,
    granted_at: i64,
}

#[derive(Serialize, Deserialize)]
struct Position {
    subject_type: String,
    subject_id: String,
}

/// `GET /v1/roles/{name}/members`: members; by subject type, then id.
pub async fn list(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let page = PageRequest::from_query(req.uri().query())?;
    let after: Option<Position> = page.json_cursor()?;
    let name = role_segment(name)?;
    let tenant = caller.tenant()?;
    let role = roles::load(&tenant, &name).await?;
    let (after_type, after_id) = after.map_or((String::new(), String::new()), |p| {
        (p.subject_type, p.subject_id)
    });
    let rows = tenant
        .query(
            "SELECT g.subject_type, g.subject_id, u.email, u.display_name, g.granted_by, g.created_at
             FROM role_grants g LEFT JOIN users u ON g.subject_type = 'user' AND u.id = g.subject_id
             WHERE g.org_id = ?1 AND g.role_id = ?2 AND (g.subject_type, g.subject_id) > (?3, ?4)
             ORDER BY g.subject_type, g.subject_id LIMIT ?5",
            vec![
                db::text(&role.id),
                db::text(after_type),
                db::text(after_id),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    let holders: Vec<Holder> = rows
        .iter()
        .map(|r| Holder {
            subject_type: db::get_text(r, 0),
            subject_id: db::get_text(r, 1),
            email: db::get_opt_text(r, 2),
            display_name: db::get_opt_text(r, 3),
            granted_by: db::get_opt_text(r, 4),
            granted_at: db::get_int(r, 5).unwrap_or_default(),
        })
        .collect();
    let page = page.page(holders, |h| {
        json_position(&Position {
            subject_type: h.subject_type.clone(),
            subject_id: h.subject_id.clone(),
        })
    });
    Ok(response::json(200, &page, request_id))
}

/// `PUT /v1/roles/{name}/members/{user}`: grants the role to a member
/// (idempotent).
pub async fn grant(
    req: Request,
    name: &str,
    user_id: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let name = role_segment(name)?;
    let tenant = caller.tenant()?;
    let role = roles::load(&tenant, &name).await?;
    require_manager(&caller, &tenant, &role.name, MemberChange::Add).await?;
    require_member(&tenant, user_id).await?;
    tenant
        .exec(
            "INSERT INTO role_grants (org_id, role_id, subject_type, subject_id, granted_by, created_at)
             VALUES (?1, ?, 'user', ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                db::text(&role.id),
                db::text(user_id),
                db::opt_text(caller.user_id().map(str::to_string)),
                db::int(unix_now()),
            ],
        )
        .await?;
    invalidate(&[(SubjectType::User, user_id.to_string())]).await?;
    Ok(response::no_content(request_id))
}

/// `DELETE /v1/roles/{name}/members/{user}`: revokes the role from a member.
pub async fn revoke(
    req: Request,
    name: &str,
    user_id: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let name = role_segment(name)?;
    let tenant = caller.tenant()?;
    let role = roles::load(&tenant, &name).await?;
    require_manager(&caller, &tenant, &role.name, MemberChange::Remove).await?;
    let removed = tenant
        .exec(
            "DELETE FROM role_grants WHERE org_id = ?1 AND role_id = ? AND subject_type = 'user' AND subject_id = ?",
            vec![db::text(&role.id), db::text(user_id)],
        )
        .await?;
    if removed == 0 {
        return Err(Problem::not_found().detail("the member does not hold this role"));
    }
    invalidate(&[(SubjectType::User, user_id.to_string())]).await?;
    Ok(response::no_content(request_id))
}
