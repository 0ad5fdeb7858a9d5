//! A user's standing now, for credentials issued earlier.
//!
//! A Gatehouse JWT names the org, role, teams, roles and permissions its
//! user held when it was issued. Offline verifiers take those claims as
//! they are for the token's few minutes; Gatehouse's own routes do not:
//! they hold every user token against the user's standing now (account
//! active, token generation, membership of the token's org, and what that
//! membership grants), so a removed or demoted admin, a deactivated
//! account, or one that signed out everywhere loses the token's power on
//! the next request.
//!
//! The standing is cached in the key-value store under the same per-user
//! version that cached sessions use (see [`crate::session`]): every
//! membership, role, session or account change replaces the version, so
//! the check costs two key-value reads, not a query. On a miss the version
//! is read before the database, so an entry is never stamped with a
//! version newer than what it read.

use gatehouse_http::principal::{OrgRole, Principal};
use serde::{Deserialize, Serialize};

use crate::membership::Membership;

/// The claim carrying the user's token generation at issue.
pub const GENERATION_CLAIM: &str = "gen";

/// What a user may do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// `pending`, `active` or `inactive`.
    pub status: String,
    /// Tokens issued under an older generation are dead.
    pub generation: i64,
    /// Every org the user belongs to now.
    pub memberships: Vec<Membership>,
}

/// Why a token no longer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The account is no longer active.
    Inactive,
    /// The user signed out everywhere, reset or changed the password, or
    /// was deactivated, after the token was issued.
    Revoked,
    /// The user left the token's org.
    NotMember,
}

/// The lesser of two org roles.
fn lesser(a: OrgRole, b: OrgRole) -> OrgRole {
    if a == OrgRole::Admin && b == OrgRole::Admin {
        OrgRole::Admin
    } else {
        OrgRole::Member
    }
}

fn both(token: &[String], now: &[String]) -> Vec<String> {
    token.iter().filter(|t| now.contains(t)).cloned().collect()
}

/// The principal a user's token stands for now: what the token says,
/// narrowed to what the user still holds. Never wider than either.
pub fn current_principal(
    token: &Principal,
    generation: i64,
    standing: &Standing,
) -> Result<Principal, Refusal> {
    if standing.status != "active" {
        return Err(Refusal::Inactive);
    }
    if generation < standing.generation {
        return Err(Refusal::Revoked);
    }
    let Some(org_id) = &token.org_id else {
        return Ok(token.clone());
    };
    let membership = standing
        .memberships
        .iter()
        .find(|m| &m.org_id == org_id)
        .ok_or(Refusal::NotMember)?;
    Ok(Principal {
        org_role: Some(
            token
                .org_role
                .map_or(OrgRole::Member, |held| lesser(held, membership.role)),
        ),
        team_ids: both(&token.team_ids, &membership.team_ids),
        roles: both(&token.roles, &membership.grants.roles),
        permissions: both(&token.permissions, &membership.grants.permissions),
        ..token.clone()
    })
}

/// An API key's standing now, for tokens issued to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStanding {
    /// The key's org.
    pub org_id: String,
    /// The user the key belongs to.
    pub owner_user_id: String,
    /// When the key stops working, if ever.
    pub expires_at: Option<i64>,
    /// Whether the key was revoked.
    pub revoked: bool,
}

/// Whether a token issued to a key still stands: the key is neither
/// revoked nor expired, the token names the key's org, and the key's
/// owner is still an active member of it.
pub fn key_token_stands(
    key: &KeyStanding,
    token_org: Option<&str>,
    owner: Option<&Standing>,
    now: i64,
) -> bool {
    !key.revoked
        && key.expires_at.is_none_or(|at| now < at)
        && token_org == Some(key.org_id.as_str())
        && owner.is_some_and(|o| {
            o.status == "active" && o.memberships.iter().any(|m| m.org_id == key.org_id)
        })
}

#[cfg(target_arch = "wasm32")]
pub use store::{bump_generation, key_standing, standing};

#[cfg(target_arch = "wasm32")]
mod store {
    use super::{KeyStanding, Standing};
    use crate::db;
    use crate::session::{self, REFRESH_SECONDS};
    use gatehouse_http::Problem;
    use serde::{Deserialize, Serialize};
    use spin_sdk::key_value::Store;
    use spin_sdk::sqlite::Connection;

    /// A cached standing.
    #[derive(Serialize, Deserialize)]
    struct Entry {
        standing: Standing,
        /// The user's version when cached.
        version: String,
        /// After this, ask the database again.
        refresh_after: i64,
    }

    fn entry_key(user_id: &str) -> String {
        format!("identity:user-standing:{user_id}")
    }

    async fn load(conn: &Connection, user_id: &str) -> Result<Option<Standing>, Problem> {
        let rows = db::query(
            conn,
            "SELECT status, token_generation FROM users WHERE id = ?",
            vec![db::text(user_id)],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(Standing {
            status: db::get_text(row, 0),
            generation: db::get_int(row, 1).unwrap_or_default(),
            memberships: session::memberships(conn, user_id).await?,
        }))
    }

    /// The user's standing now (`None` for a user that does not exist):
    /// from the cache while the user's version still matches, else from
    /// the database, then cached.
    pub async fn standing(
        conn: &Connection,
        user_id: &str,
        now: i64,
    ) -> Result<Option<Standing>, Problem> {
        let store = Store::open_default().await.ok();
        let version_key = session::user_version_key(user_id);
        let Some(store) = store else {
            return load(conn, user_id).await;
        };
        let version = session::read_version(&store, &version_key).await;
        if let Some(version) = &version
            && let Ok(Some(bytes)) = store.get(&entry_key(user_id)).await
            && let Ok(entry) = serde_json::from_slice::<Entry>(&bytes)
            && &entry.version == version
            && now < entry.refresh_after
        {
            return Ok(Some(entry.standing));
        }
        // The version was read before the database: a change landing in
        // between replaces the version, so this entry is dead at once.
        let fresh = load(conn, user_id).await?;
        if let (Some(version), Some(standing)) = (version, &fresh) {
            let entry = Entry {
                standing: standing.clone(),
                version,
                refresh_after: now + REFRESH_SECONDS,
            };
            if let Ok(bytes) = serde_json::to_vec(&entry) {
                let _ = store.set(&entry_key(user_id), &bytes).await;
            }
        }
        Ok(fresh)
    }

    /// A cached key standing.
    #[derive(Serialize, Deserialize)]
    struct KeyEntry {
        standing: KeyStanding,
        /// The key's version when cached.
        version: String,
        /// After this, ask the database again.
        refresh_after: i64,
    }

    async fn load_key(conn: &Connection, key_id: &str) -> Result<Option<KeyStanding>, Problem> {
        // By id alone: the id comes from a token Gatehouse signed.
        let rows = db::query(
            conn,
            "SELECT org_id, owner_user_id, expires_at, revoked_at FROM api_keys WHERE key_id = ?",
            vec![db::text(key_id)],
        )
        .await?;
        Ok(rows.first().map(|row| KeyStanding {
            org_id: db::get_text(row, 0),
            owner_user_id: db::get_text(row, 1),
            expires_at: db::get_int(row, 2),
            revoked: db::get_int(row, 3).is_some(),
        }))
    }

    /// An API key's standing now (`None` for a key that does not exist),
    /// cached under the key's version as [`standing`] is under the user's.
    pub async fn key_standing(
        conn: &Connection,
        key_id: &str,
        now: i64,
    ) -> Result<Option<KeyStanding>, Problem> {
        let Ok(store) = Store::open_default().await else {
            return load_key(conn, key_id).await;
        };
        let entry_key = format!("apikey:standing:{key_id}");
        let version = session::read_version(&store, &crate::apikey::version_key(key_id)).await;
        if let Some(version) = &version
            && let Ok(Some(bytes)) = store.get(&entry_key).await
            && let Ok(entry) = serde_json::from_slice::<KeyEntry>(&bytes)
            && &entry.version == version
            && now < entry.refresh_after
        {
            return Ok(Some(entry.standing));
        }
        let fresh = load_key(conn, key_id).await?;
        if let (Some(version), Some(standing)) = (version, &fresh) {
            let entry = KeyEntry {
                standing: standing.clone(),
                version,
                refresh_after: now + REFRESH_SECONDS,
            };
            if let Ok(bytes) = serde_json::to_vec(&entry) {
                let _ = store.set(&entry_key, &bytes).await;
            }
        }
        Ok(fresh)
    }

    /// Ends every token issued for the user so far. Call before the
    /// user's version is replaced (which the callers do anyway), so no
    /// cached standing outlives it.
    pub async fn bump_generation(conn: &Connection, user_id: &str) -> Result<(), Problem> {
        db::exec(
            conn,
            "UPDATE users SET token_generation = token_generation + 1 WHERE id = ?",
            vec![db::text(user_id)],
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Grants;
    use gatehouse_http::principal::{Credential, Subject};

    fn member(role: OrgRole, roles: &[&str], permissions: &[&str]) -> Membership {
        Membership {
            org_id: "org_1".into(),
            org_handle: "acme".into(),
            role,
            team_ids: vec!["team_1".into()],
            grants: Grants {
                roles: roles.iter().map(|r| r.to_string()).collect(),
                permissions: permissions.iter().map(|p| p.to_string()).collect(),
            },
        }
    }

    fn standing(memberships: Vec<Membership>) -> Standing {
        Standing {
            status: "active".into(),
            generation: 2,
            memberships,
        }
    }

    fn token() -> Principal {
        Principal {
            subject: Subject::User { id: "usr_1".into() },
            org_id: Some("org_1".into()),
            org_role: Some(OrgRole::Admin),
            team_ids: vec!["team_1".into(), "team_2".into()],
            roles: vec!["writer".into(), "reader".into()],
            permissions: vec!["docs:write".into(), "docs:read".into()],
            acting_as: None,
            credential: Credential::Jwt,
        }
    }

    #[test]
    fn a_demoted_admin_stands_as_a_member_with_what_is_left() -> Result<(), String> {
        let now = standing(vec![member(OrgRole::Member, &["reader"], &["docs:read"])]);
        let p = current_principal(&token(), 2, &now).map_err(|r| format!("{r:?}"))?;
        assert_eq!(p.org_role, Some(OrgRole::Member));
        assert_eq!(p.roles, vec!["reader".to_string()]);
        assert_eq!(p.permissions, vec!["docs:read".to_string()]);
        assert_eq!(p.team_ids, vec!["team_1".to_string()]);
        Ok(())
    }

    #[test]
    fn a_token_never_gains_what_the_user_gained_after_it() -> Result<(), String> {
        let mut narrow = token();
        narrow.org_role = Some(OrgRole::Member);
        narrow.roles = vec!["reader".into()];
        let now = standing(vec![member(
            OrgRole::Admin,
            &["reader", "writer", "owner"],
            &["docs:read", "docs:write", "docs:delete"],
        )]);
        let p = current_principal(&narrow, 2, &now).map_err(|r| format!("{r:?}"))?;
        assert_eq!(p.org_role, Some(OrgRole::Member));
        assert_eq!(p.roles, vec!["reader".to_string()]);
        assert!(!p.has_permission("docs:delete"));
        Ok(())
    }

    #[test]
    fn a_removed_member_an_inactive_account_and_an_old_generation_are_refused() {
        let now = standing(vec![]);
        assert_eq!(
            current_principal(&token(), 2, &now),
            Err(Refusal::NotMember)
        );
        let now = standing(vec![member(OrgRole::Admin, &[], &[])]);
        assert_eq!(current_principal(&token(), 1, &now), Err(Refusal::Revoked));
        let inactive = Standing {
            status: "inactive".into(),
            ..now
        };
        assert_eq!(
            current_principal(&token(), 2, &inactive),
            Err(Refusal::Inactive)
        );
    }

    #[test]
    fn a_keys_token_ends_with_the_key_and_with_its_owners_membership() {
        let key = KeyStanding {
            org_id: "org_1".into(),
            owner_user_id: "usr_1".into(),
            expires_at: Some(500),
            revoked: false,
        };
        let owner = standing(vec![member(OrgRole::Member, &[], &[])]);
        assert!(key_token_stands(&key, Some("org_1"), Some(&owner), 100));
        assert!(
            !key_token_stands(&key, Some("org_1"), Some(&owner), 500),
            "expired"
        );
        assert!(
            !key_token_stands(&key, Some("org_2"), Some(&owner), 100),
            "another org"
        );
        assert!(
            !key_token_stands(&key, Some("org_1"), Some(&standing(vec![])), 100),
            "owner left"
        );
        assert!(
            !key_token_stands(&key, Some("org_1"), None, 100),
            "owner gone"
        );
        let revoked = KeyStanding {
            revoked: true,
            ..key
        };
        assert!(!key_token_stands(
            &revoked,
            Some("org_1"),
            Some(&owner),
            100
        ));
    }

    #[test]
    fn a_token_without_an_org_keeps_its_claims_while_the_account_stands() {
        let mut no_org = token();
        no_org.org_id = None;
        assert_eq!(
            current_principal(&no_org, 2, &standing(vec![])),
            Ok(no_org.clone())
        );
    }
}
