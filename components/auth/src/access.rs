//! Roles held and the permissions they give: a subject's effective
//! permissions in an org are the union over the roles granted to it.
//!
//! Cached credentials (sessions, API key verifications) carry these, so
//! every change to a grant or to a role's permissions must invalidate the
//! holders' caches: [`holders_changed`] after a role's permissions change or
//! the role goes, [`crate::session::Cache::invalidate_user`] or
//! [`crate::apikey::invalidate`] after one subject's grants change.

use serde::{Deserialize, Serialize};

/// What kind of subject holds a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    /// A member of the org.
    User,
    /// An API key of the org.
    ApiKey,
}

impl SubjectType {
    /// As stored in `role_grants.subject_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectType::User => "user",
            SubjectType::ApiKey => "api_key",
        }
    }
}

/// Roles held and the permissions they give, both sorted and unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// Role names.
    pub roles: Vec<String>,
    /// The union of the roles' permissions.
    pub permissions: Vec<String>,
}

impl Grants {
    /// The grants made of `(role name, its permissions)` pairs.
    pub fn from_roles<I, P>(roles: I) -> Grants
    where
        I: IntoIterator<Item = (String, P)>,
        P: IntoIterator<Item = String>,
    {
        let mut names = std::collections::BTreeSet::new();
        let mut permissions = std::collections::BTreeSet::new();
        for (name, perms) in roles {
            names.insert(name);
            permissions.extend(perms);
        }
        Grants {
            roles: names.into_iter().collect(),
            permissions: permissions.into_iter().collect(),
        }
    }

    /// Whether every permission of `other` is held here.
    pub fn covers(&self, permissions: &[String]) -> bool {
        permissions
            .iter()
            .all(|p| self.permissions.binary_search(p).is_ok())
    }
}

#[cfg(target_arch = "wasm32")]
pub use store::{grants_of, holders_changed, role_grants_by_name, user_grants_by_org};

#[cfg(target_arch = "wasm32")]
mod store {
    use super::{Grants, SubjectType};
    use crate::db;
    use gatehouse_http::Problem;
    use spin_sdk::sqlite::{Connection, RowResult};
    use std::collections::BTreeMap;

    fn pair(row: &RowResult, name: usize, perms: usize) -> (String, Vec<String>) {
        let permissions: Vec<String> =
            serde_json::from_str(&db::get_text(row, perms)).unwrap_or_default();
        (db::get_text(row, name), permissions)
    }

    /// The roles granted to a subject in an org.
    pub async fn grants_of(
        conn: &Connection,
        org_id: &str,
        subject: SubjectType,
        subject_id: &str,
    ) -> Result<Grants, Problem> {
        let rows = db::query(
            conn,
            "SELECT r.name, r.permissions FROM role_grants g JOIN roles r ON r.role_id = g.role_id
             WHERE g.org_id = ? AND g.subject_type = ? AND g.subject_id = ?",
            vec![
                db::text(org_id),
                db::text(subject.as_str()),
                db::text(subject_id),
            ],
        )
        .await?;
        Ok(Grants::from_roles(rows.iter().map(|r| pair(r, 0, 1))))
    }

    /// The grants the org's roles of these names make up (names the org
    /// has no role of are dropped): what a token's mapped claims hold.
    pub async fn role_grants_by_name(
        conn: &Connection,
        org_id: &str,
        names: &[String],
    ) -> Result<Grants, Problem> {
        if names.is_empty() {
            return Ok(Grants::default());
        }
        let list = serde_json::to_string(names).map_err(|_| Problem::internal())?;
        let rows = db::query(
            conn,
            "SELECT name, permissions FROM roles WHERE org_id = ? AND name IN (SELECT value FROM json_each(?))",
            vec![db::text(org_id), db::text(list)],
        )
        .await?;
        Ok(Grants::from_roles(rows.iter().map(|r| pair(r, 0, 1))))
    }

    /// A user's grants in every org at once, by org id.
    pub async fn user_grants_by_org(
        conn: &Connection,
        user_id: &str,
    ) -> Result<BTreeMap<String, Grants>, Problem> {
        let rows = db::query(
            conn,
            "SELECT g.org_id, r.name, r.permissions FROM role_grants g JOIN roles r ON r.role_id = g.role_id
             WHERE g.subject_type = 'user' AND g.subject_id = ?",
            vec![db::text(user_id)],
        )
        .await?;
        let mut by_org: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
        for row in &rows {
            by_org
                .entry(db::get_text(row, 0))
                .or_default()
                .push(pair(row, 1, 2));
        }
        Ok(by_org
            .into_iter()
            .map(|(org, roles)| (org, Grants::from_roles(roles)))
            .collect())
    }

    /// Invalidates the cached credentials of every holder of a role: call
    /// after its permissions change, once the database change is made. To
    /// delete a role, read its holders first, delete, then invalidate them.
    pub async fn holders_changed(conn: &Connection, role_id: &str) -> Result<(), Problem> {
        let rows = db::query(
            conn,
            "SELECT subject_type, subject_id FROM role_grants WHERE role_id = ?",
            vec![db::text(role_id)],
        )
        .await?;
        let cache = crate::session::Cache::open().await;
        for row in &rows {
            let id = db::get_text(row, 1);
            if db::get_text(row, 0) == SubjectType::User.as_str() {
                cache.invalidate_user(&id).await?;
            } else {
                crate::apikey::invalidate(&id).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, perms: &[&str]) -> (String, Vec<String>) {
        (
            name.to_string(),
            perms.iter().map(|p| p.to_string()).collect(),
        )
    }

    #[test]
    fn effective_permissions_are_the_sorted_union_over_roles() {
        let g = Grants::from_roles([
            role("research:write", &["read", "write"]),
            role("research:admin", &["read", "write", "delete", "add-user"]),
        ]);
        assert_eq!(g.roles, vec!["research:admin", "research:write"]);
        assert_eq!(g.permissions, vec!["add-user", "delete", "read", "write"]);
        assert!(g.covers(&["read".into(), "delete".into()]));
        assert!(!g.covers(&["read".into(), "remove-user".into()]));
        assert!(Grants::default().covers(&[]));
    }
}
