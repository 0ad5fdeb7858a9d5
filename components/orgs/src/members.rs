//! Memberships: who belongs to an org with which role. Admins change
//! roles and remove members; any member may leave; the last admin can do
//! neither to themselves, so an org always has an admin.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::principal::OrgRole;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;

use crate::context::{Caller, memberships_changed};
use crate::member_events;
use crate::no_content;

/// The role stored as text.
pub fn role_from(text: &str) -> OrgRole {
    if text == "admin" {
        OrgRole::Admin
    } else {
        OrgRole::Member
    }
}

/// The role as stored.
pub fn role_text(role: OrgRole) -> &'static str {
    match role {
        OrgRole::Admin => "admin",
        OrgRole::Member => "member",
    }
}

/// Every member's user id.
pub async fn user_ids(tenant: &Tenant<'_>) -> Result<Vec<String>, Problem> {
    let rows = tenant
        .query("SELECT user_id FROM memberships WHERE org_id = ?1", vec![])
        .await?;
    Ok(rows.iter().map(|r| db::get_text(r, 0)).collect())
}

/// Whether `user_id` is a member; 404 otherwise (another org's user is no
/// more visible than a user who does not exist).
pub async fn require_member(tenant: &Tenant<'_>, user_id: &str) -> Result<OrgRole, Problem> {
    let rows = tenant
        .query(
            "SELECT role FROM memberships WHERE org_id = ?1 AND user_id = ?",
            vec![db::text(user_id)],
        )
        .await?;
    rows.first()
        .map(|r| role_from(&db::get_text(r, 0)))
        .ok_or_else(|| Problem::not_found().detail("no such member"))
}

fn last_admin() -> Problem {
    Problem::new(ErrorCode::Conflict)
        .detail("an organization needs an admin: make another member admin first")
}

#[derive(Serialize)]
struct Member {
    user_id: String,
    email: String,
    display_name: String,
    role: OrgRole,
    joined_at: i64,
}

#[derive(Serialize, Deserialize)]
struct Position {
    joined_at: i64,
    user_id: String,
}

/// `GET /v1/orgs/{org}/members`: oldest first.
pub async fn list(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let page = PageRequest::from_query(req.uri().query())?;
    let after: Option<Position> = page.json_cursor()?;
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    let (after_joined, after_id) =
        after.map_or((i64::MIN, String::new()), |p| (p.joined_at, p.user_id));
    let rows = tenant
        .query(
            "SELECT m.user_id, u.email, u.display_name, m.role, m.created_at
             FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.org_id = ?1 AND (m.created_at > ? OR (m.created_at = ? AND m.user_id > ?))
             ORDER BY m.created_at, m.user_id LIMIT ?",
            vec![
                db::int(after_joined),
                db::int(after_joined),
                db::text(&after_id),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    let members: Vec<Member> = rows
        .iter()
        .map(|r| Member {
            user_id: db::get_text(r, 0),
            email: db::get_text(r, 1),
            display_name: db::get_text(r, 2),
            role: role_from(&db::get_text(r, 3)),
            joined_at: db::get_int(r, 4).unwrap_or_default(),
        })
        .collect();
    let page = page.page(members, |m| {
        json_position(&Position {
            joined_at: m.joined_at,
            user_id: m.user_id.clone(),
        })
    });
    Ok(response::json(200, &page, request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeRole {
    role: OrgRole,
}

impl Validate for ChangeRole {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

/// `PATCH /v1/orgs/{org}/members/{user}`: admins change a member's role.
pub async fn change_role(
    req: Request,
    org: &str,
    user_id: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    tenant.actor().require_admin()?;
    let body: ChangeRole = json::read_json(req, json::DEFAULT_LIMIT).await?;
    require_member(&tenant, user_id).await?;
    // One statement, so two admins demoting each other at once cannot
    // leave the org without one.
    let changed = tenant
        .exec(
            "UPDATE memberships SET role = ?2, updated_at = ?3
             WHERE org_id = ?1 AND user_id = ?4
               AND (?2 = 'admin' OR role = 'member'
                    OR (SELECT COUNT(*) FROM memberships WHERE org_id = ?1 AND role = 'admin' AND user_id <> ?4) > 0)",
            vec![
                db::text(role_text(body.role)),
                db::int(unix_now()),
                db::text(user_id),
            ],
        )
        .await?;
    if changed == 0 {
        return Err(last_admin());
    }
    memberships_changed([user_id]).await?;
    let member = serde_json::json!({"user_id": user_id, "role": body.role});
    Ok(response::json(200, &member, request_id))
}

/// `DELETE /v1/orgs/{org}/members/{user}`: an admin removes a member, or a
/// member leaves (their own id). Their team memberships go with it.
pub async fn remove(
    req: Request,
    org: &str,
    user_id: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant(org)?;
    if user_id == caller.user_id() {
        caller.require_person()?;
    } else {
        tenant.actor().require_admin()?;
    }
    require_member(&tenant, user_id).await?;
    let removing = async {
        let email = tenant
            .query(
                "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.org_id = ?1 AND m.user_id = ?2",
                vec![db::text(user_id)],
            )
            .await?
            .first()
            .map(|r| db::get_text(r, 0))
            .unwrap_or_default();
        let removed = tenant
            .query(
                "DELETE FROM memberships WHERE org_id = ?1 AND user_id = ?2
                   AND (role = 'member' OR (SELECT COUNT(*) FROM memberships WHERE org_id = ?1 AND role = 'admin' AND user_id <> ?2) > 0)
                 RETURNING role",
                vec![db::text(user_id)],
            )
            .await?;
        let Some(role) = removed.first().map(|r| role_from(&db::get_text(r, 0))) else {
            return Err(last_admin());
        };
        for sql in [
            "DELETE FROM team_members WHERE org_id = ?1 AND user_id = ?",
            "DELETE FROM role_grants WHERE org_id = ?1 AND subject_type = 'user' AND subject_id = ?",
        ] {
            tenant.exec(sql, vec![db::text(user_id)]).await?;
        }
        let member = member_events::Member {
            user_id,
            email: &email,
            role,
        };
        member_events::removed(&tenant, &caller.conn, &member, caller.user_id(), unix_now()).await
    };
    db::transaction(&caller.conn, removing).await?;
    memberships_changed([user_id]).await?;
    no_content(request_id)
}
