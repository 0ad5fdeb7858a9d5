//! Acting as another member: an org admin who holds
//! [`IMPERSONATE_PERMISSION`] sends [`ACT_AS_HEADER`] naming a member of
//! the same org, and the request runs as that member, with the admin kept
//! in [`Principal::acting_as`](gatehouse_http::principal::Principal) (and
//! in the `act` claim of any token issued meanwhile). Every such request is
//! written to the org's audit trail.
//!
//! Refused: a caller that is not a signed-in admin with the permission
//! (API keys and tokens cannot start it), a target outside the org (the
//! same 404 as a target that does not exist), an admin target (an admin
//! never acts as a peer or a superior), and oneself.

use gatehouse_http::principal::{Credential, OrgRole, Principal, Subject};
use gatehouse_http::{ErrorCode, Problem};

/// The permission that allows impersonation (besides being an org admin).
pub const IMPERSONATE_PERMISSION: &str = "users:impersonate";
/// The request header naming the user id to act as.
pub const ACT_AS_HEADER: &str = "x-act-as";

/// Whether `actor` may act as a member of its org whose role is
/// `target_role`; the reason when not.
pub fn check(actor: &Principal, target_user_id: &str, target_role: OrgRole) -> Result<(), Problem> {
    let (Subject::User { id }, Credential::Session) = (&actor.subject, actor.credential) else {
        return Err(refused(
            "only a signed-in admin (a session) may act as another member",
        ));
    };
    if actor.acting_as.is_some() {
        return Err(refused(
            "a request already acting as someone cannot act as another",
        ));
    }
    if !actor.is_org_admin() || !actor.has_permission(IMPERSONATE_PERMISSION) {
        return Err(refused(
            "acting as another member needs the org admin role and the users:impersonate permission",
        ));
    }
    if id == target_user_id {
        return Err(Problem::new(ErrorCode::ValidationFailed)
            .detail("X-Act-As names the caller; send the request without it"));
    }
    if target_role == OrgRole::Admin {
        return Err(refused("an admin cannot be impersonated"));
    }
    Ok(())
}

fn refused(detail: &str) -> Problem {
    Problem::new(ErrorCode::Forbidden).detail(detail.to_string())
}

/// The target when it is not a member of the actor's org (or not active).
pub fn no_such_member() -> Problem {
    Problem::not_found().detail("no such member in this organization")
}

#[cfg(target_arch = "wasm32")]
pub use store::{act_as, record};

#[cfg(target_arch = "wasm32")]
mod store {
    use super::{check, no_such_member};
    use crate::db;
    use gatehouse_http::Problem;
    use gatehouse_http::audit::Entry;
    use gatehouse_http::principal::{ActingAs, Principal, Subject};
    use spin_sdk::http::Request;

    /// The principal of the member `target_user_id` names, acting for the
    /// admin `actor`, once every rule holds.
    pub async fn act_as(actor: &Principal, target_user_id: &str) -> Result<Principal, Problem> {
        let org_id = actor.require_org()?;
        // What the actor may do is settled before anything about the
        // target is looked up, so no one else can probe for members.
        check(
            actor,
            target_user_id,
            gatehouse_http::principal::OrgRole::Member,
        )?;
        let conn = db::open().await?;
        let active = db::query(
            &conn,
            "SELECT 1 FROM users WHERE id = ? AND status = 'active'",
            vec![db::text(target_user_id)],
        )
        .await?;
        if active.is_empty() {
            return Err(no_such_member());
        }
        let memberships = crate::session::memberships(&conn, target_user_id).await?;
        let membership = memberships
            .iter()
            .find(|m| m.org_id == org_id)
            .ok_or_else(no_such_member)?;
        check(actor, target_user_id, membership.role)?;
        let Subject::User { id } = &actor.subject else {
            return Err(no_such_member());
        };
        let mut principal =
            crate::membership::user_principal(target_user_id, Some(membership), actor.credential);
        principal.acting_as = Some(ActingAs {
            impersonator_user_id: id.clone(),
        });
        Ok(principal)
    }

    /// Writes one impersonated request to the org's audit trail, before it
    /// is served. A request that cannot be recorded is not served.
    pub async fn record(principal: &Principal, req: &Request) -> Result<(), Problem> {
        let (Some(_), Some(org_id), Subject::User { id }) = (
            principal.acting_as.as_ref(),
            principal.org_id.as_deref(),
            &principal.subject,
        ) else {
            return Ok(());
        };
        let mut entry = Entry::by(
            principal,
            Some(org_id),
            "impersonation.request",
            Some(id.clone()),
            None,
        );
        entry.resource_type = "user";
        // The client's own id, if it sent one: the answer's is not made yet.
        let request_id = req
            .headers()
            .get(gatehouse_http::request_id::HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(128).collect::<String>());
        gatehouse_http::audit::record(req, &entry, request_id.as_deref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_http::principal::ActingAs;

    fn admin(permissions: &[&str]) -> Principal {
        Principal {
            subject: Subject::User {
                id: "usr_admin".into(),
            },
            org_id: Some("org_1".into()),
            org_role: Some(OrgRole::Admin),
            team_ids: Vec::new(),
            roles: Vec::new(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            acting_as: None,
            credential: Credential::Session,
        }
    }

    #[test]
    fn an_admin_with_the_permission_acts_as_a_member() {
        assert!(
            check(
                &admin(&[IMPERSONATE_PERMISSION]),
                "usr_bob",
                OrgRole::Member
            )
            .is_ok()
        );
    }

    #[test]
    fn the_permission_alone_or_the_admin_role_alone_is_not_enough() {
        let status = |p: &Principal| check(p, "usr_bob", OrgRole::Member).map_err(|e| e.status);
        assert_eq!(status(&admin(&[])), Err(403));
        let mut member = admin(&[IMPERSONATE_PERMISSION]);
        member.org_role = Some(OrgRole::Member);
        assert_eq!(status(&member), Err(403));
        let mut key = admin(&[IMPERSONATE_PERMISSION]);
        key.subject = Subject::ApiKey {
            id: "key_1".into(),
            owner_user_id: Some("usr_admin".into()),
        };
        assert_eq!(status(&key), Err(403));
        // An admin's token (or a provider's token linked to an admin) is
        // not a session: it cannot start acting as someone.
        let mut token = admin(&[IMPERSONATE_PERMISSION]);
        token.credential = Credential::Jwt;
        assert_eq!(status(&token), Err(403));
    }

    #[test]
    fn admins_oneself_and_chains_are_refused() {
        let actor = admin(&[IMPERSONATE_PERMISSION]);
        assert_eq!(
            check(&actor, "usr_other_admin", OrgRole::Admin).map_err(|e| e.status),
            Err(403)
        );
        assert_eq!(
            check(&actor, "usr_admin", OrgRole::Member).map_err(|e| e.status),
            Err(422)
        );
        let mut chained = actor.clone();
        chained.acting_as = Some(ActingAs {
            impersonator_user_id: "usr_root".into(),
        });
        assert_eq!(
            check(&chained, "usr_bob", OrgRole::Member).map_err(|e| e.status),
            Err(403)
        );
    }
}
