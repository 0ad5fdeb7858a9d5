//! Resolving the facts an engine decides on, from the org's rows: who the
//! subject is in the org, what owns a resource and which of the subject's
//! roles it is granted to.

use access_core::facts::{
    CollectionFacts, GrantedRole, Owner, OwnerType, ResourceFacts, SubjectFacts, SubjectKind,
};
use gatehouse_auth::access::Grants;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use gatehouse_http::principal::OrgRole;
use identity_core::org::MAX_TEAM_DEPTH;
use serde::Deserialize;

use crate::context::Caller;

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Every team above `team_ids`.
async fn ancestors(tenant: &Tenant<'_>, team_ids: &[String]) -> Result<Vec<String>, Problem> {
    if team_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = tenant
        .query(
            "WITH RECURSIVE up(team_id, n) AS (
                 SELECT parent_team_id, 1 FROM teams
                 WHERE org_id = ?1 AND team_id IN (SELECT value FROM json_each(?2)) AND parent_team_id IS NOT NULL
                 UNION
                 SELECT t.parent_team_id, up.n + 1 FROM teams t JOIN up ON t.team_id = up.team_id
                 WHERE t.org_id = ?1 AND t.parent_team_id IS NOT NULL AND up.n < ?3)
             SELECT DISTINCT team_id FROM up ORDER BY team_id",
            // The walk stops at the deepest tree there is, even on bad data.
            vec![db::text(json_list(team_ids)), db::int(MAX_TEAM_DEPTH as i64)],
        )
        .await?;
    let direct: Vec<&String> = team_ids.iter().collect();
    Ok(rows
        .iter()
        .map(|r| db::get_text(r, 0))
        .filter(|t| !direct.contains(&t))
        .collect())
}

#[derive(Deserialize)]
struct HeldRole(String, Vec<String>);

/// A member of the org, from its rows: role, teams, granted roles. 404 when
/// `user_id` is not a member (another org's user is not known here).
pub async fn member(tenant: &Tenant<'_>, user_id: &str) -> Result<SubjectFacts, Problem> {
    let rows = tenant
        .query(
            "SELECT m.role,
                    (SELECT json_group_array(tm.team_id) FROM team_members tm WHERE tm.org_id = ?1 AND tm.user_id = ?2),
                    (SELECT json_group_array(json_array(r.name, json(r.permissions)))
                     FROM role_grants g JOIN roles r ON r.role_id = g.role_id
                     WHERE g.org_id = ?1 AND g.subject_type = 'user' AND g.subject_id = ?2)
             FROM memberships m WHERE m.org_id = ?1 AND m.user_id = ?2",
            vec![db::text(user_id)],
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| Problem::not_found().detail("no such member"))?;
    let team_ids: Vec<String> = serde_json::from_str(&db::get_text(row, 1)).unwrap_or_default();
    let held: Vec<HeldRole> = serde_json::from_str(&db::get_text(row, 2)).unwrap_or_default();
    let grants = Grants::from_roles(held.into_iter().map(|HeldRole(name, perms)| (name, perms)));
    Ok(SubjectFacts {
        kind: Some(SubjectKind::User),
        id: user_id.to_string(),
        org_id: tenant.org_id().to_string(),
        org_admin: db::get_text(row, 0) == "admin",
        ancestor_team_ids: ancestors(tenant, &team_ids).await?,
        team_ids,
        roles: grants.roles,
        permissions: grants.permissions,
    })
}

/// The caller itself: a member from the org's rows; an API key from its
/// principal (its roles, or its owner's when it inherits them).
pub async fn caller(caller: &Caller, tenant: &Tenant<'_>) -> Result<SubjectFacts, Problem> {
    let (kind, id) = caller.subject()?;
    if kind == SubjectKind::User {
        return member(tenant, id).await;
    }
    let p = &caller.principal;
    Ok(SubjectFacts {
        kind: Some(kind),
        id: id.to_string(),
        org_id: tenant.org_id().to_string(),
        org_admin: p.org_role == Some(OrgRole::Admin),
        ancestor_team_ids: ancestors(tenant, &p.team_ids).await?,
        team_ids: p.team_ids.clone(),
        roles: p.roles.clone(),
        permissions: p.permissions.clone(),
    })
}

fn granted_role(name: String, permissions: &str) -> GrantedRole {
    GrantedRole {
        name,
        permissions: serde_json::from_str(permissions).unwrap_or_default(),
    }
}

fn owner_from(owner_type: &str, id: String) -> Option<Owner> {
    OwnerType::parse(owner_type).map(|owner_type| Owner { owner_type, id })
}

/// One resource: its owners, and the roles among the subject's it is
/// granted to.
pub async fn resource(
    tenant: &Tenant<'_>,
    subject: &SubjectFacts,
    path: (&str, &str, &str),
) -> Result<ResourceFacts, Problem> {
    let (service, collection, id) = path;
    let rows = tenant
        .query(
            "SELECT 'owner', owner_type, owner_id FROM resource_owners
             WHERE org_id = ?1 AND service = ?2 AND collection = ?3 AND resource_id = ?4
             UNION ALL
             SELECT 'grant', r.name, r.permissions FROM roles r JOIN resource_grants g ON g.role_id = r.role_id
             WHERE r.org_id = ?1 AND r.name IN (SELECT value FROM json_each(?5))
               AND g.org_id = ?1 AND g.service = ?2 AND g.collection = ?3 AND g.resource_id = ?4",
            vec![
                db::text(service),
                db::text(collection),
                db::text(id),
                db::text(json_list(&subject.roles)),
            ],
        )
        .await?;
    let mut facts = ResourceFacts {
        service: service.to_string(),
        collection: collection.to_string(),
        id: id.to_string(),
        ..ResourceFacts::default()
    };
    for row in &rows {
        let (a, b) = (db::get_text(row, 1), db::get_text(row, 2));
        if db::get_text(row, 0) == "owner" {
            facts.owners.extend(owner_from(&a, b));
        } else {
            facts.grants.push(granted_role(a, &b));
        }
    }
    Ok(facts)
}

/// A collection: the resources owned by the subject, its teams (and the
/// teams above them) or the org, and those granted to its roles.
pub async fn collection(
    tenant: &Tenant<'_>,
    subject: &SubjectFacts,
    service: &str,
    collection: &str,
) -> Result<CollectionFacts, Problem> {
    let teams: Vec<String> = subject
        .team_ids
        .iter()
        .chain(&subject.ancestor_team_ids)
        .cloned()
        .collect();
    let owned = tenant
        .query(
            "SELECT resource_id, owner_type, owner_id FROM resource_owners
             WHERE org_id = ?1 AND service = ?2 AND collection = ?3
               AND ((owner_type = 'user' AND owner_id = ?4) OR (owner_type = 'org' AND owner_id = ?1)
                    OR (owner_type = 'team' AND owner_id IN (SELECT value FROM json_each(?5))))",
            vec![
                db::text(service),
                db::text(collection),
                db::text(&subject.id),
                db::text(json_list(&teams)),
            ],
        )
        .await?;
    let granted = tenant
        .query(
            "SELECT g.resource_id, r.name, r.permissions FROM roles r JOIN resource_grants g ON g.role_id = r.role_id
             WHERE r.org_id = ?1 AND r.name IN (SELECT value FROM json_each(?4))
               AND g.org_id = ?1 AND g.service = ?2 AND g.collection = ?3",
            vec![
                db::text(service),
                db::text(collection),
                db::text(json_list(&subject.roles)),
            ],
        )
        .await?;
    Ok(CollectionFacts {
        service: service.to_string(),
        collection: collection.to_string(),
        owned: owned
            .iter()
            .filter_map(|r| {
                owner_from(&db::get_text(r, 1), db::get_text(r, 2)).map(|o| (db::get_text(r, 0), o))
            })
            .collect(),
        granted: granted
            .iter()
            .map(|r| {
                (
                    db::get_text(r, 0),
                    granted_role(db::get_text(r, 1), &db::get_text(r, 2)),
                )
            })
            .collect(),
    })
}
