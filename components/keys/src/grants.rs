//! A key's own roles: `GET`/`PUT`/`DELETE /v1/keys/{name}/roles/{role}`.
//! A key's roles stay a subset of what its granter holds: admins and key
//! managers grant any role of the org, others only roles they hold.

use gatehouse_auth::access::SubjectType;
use gatehouse_auth::apikey::invalidate;
use gatehouse_auth::db;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::{ErrorCode, Problem, Response, response};
use spin_sdk::http::Request;

use crate::manage::{Caller, grant};
use crate::model::{load, role_id};

fn not_held() -> Problem {
    Problem::not_found().detail("the key does not hold this role")
}

/// `GET /v1/keys/{name}/roles/{role}`: 200 when held, else 404.
pub async fn get(
    req: Request,
    name: &str,
    role: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant()?;
    let key = load(&tenant, name, unix_now()).await?;
    caller.access.require_manages(&key)?;
    let rows = tenant
        .query(
            "SELECT r.name, g.created_at FROM role_grants g JOIN roles r ON r.role_id = g.role_id
             WHERE g.org_id = ?1 AND g.subject_type = ?2 AND g.subject_id = ?3 AND r.name = ?4",
            vec![
                db::text(SubjectType::ApiKey.as_str()),
                db::text(&key.id),
                db::text(role),
            ],
        )
        .await?;
    let row = rows.first().ok_or_else(not_held)?;
    let body = serde_json::json!({"role": db::get_text(row, 0), "granted_at": db::get_int(row, 1)});
    Ok(response::json(200, &body, request_id))
}

/// `PUT /v1/keys/{name}/roles/{role}`: grants the role (idempotent).
pub async fn put(
    req: Request,
    name: &str,
    role: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant()?;
    let now = unix_now();
    let key = load(&tenant, name, now).await?;
    caller.access.require_manages(&key)?;
    if key.inherits {
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("the key inherits its owner's permissions and holds no roles of its own"));
    }
    let role_id = role_id(&tenant, role, "/role")
        .await
        .map_err(|_| Problem::not_found().detail("no such role"))?;
    caller.access.require_may_grant(role)?;
    grant(&tenant, &role_id, &key.id, &caller.access.user_id, now).await?;
    invalidate(&key.id).await?;
    Ok(response::no_content(request_id))
}

/// `DELETE /v1/keys/{name}/roles/{role}`: takes the role back; the key's
/// next verification no longer carries it.
pub async fn delete(
    req: Request,
    name: &str,
    role: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant()?;
    let key = load(&tenant, name, unix_now()).await?;
    caller.access.require_manages(&key)?;
    let removed = tenant
        .exec(
            "DELETE FROM role_grants WHERE org_id = ?1 AND subject_type = ?2 AND subject_id = ?3
               AND role_id IN (SELECT role_id FROM roles WHERE org_id = ?1 AND name = ?4)",
            vec![
                db::text(SubjectType::ApiKey.as_str()),
                db::text(&key.id),
                db::text(role),
            ],
        )
        .await?;
    if removed == 0 {
        return Err(not_held());
    }
    invalidate(&key.id).await?;
    Ok(response::no_content(request_id))
}
