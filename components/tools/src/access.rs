//! Who may do what with an org's tools:
//!
//! - write (create, change, delete): the org's admins, and holders of
//!   `tools:write`;
//! - run: holders of `tools:run` and, for a tool with a `permission` of
//!   its own, of that permission too; an admin's role alone runs nothing;
//! - see (list, read): who may run the tool, and who may write tools;
//! - name a secret in a tool's header: who may read its value through the
//!   secrets routes (`secrets:read` for the org's, and for a team's a
//!   member of the team or an admin; the user for their own). Otherwise
//!   writing tools would be a way to send secrets one may not read to a
//!   host of one's choosing.

use gatehouse_http::principal::{Principal, Subject};
use gatehouse_secrets::scope::Scope;

/// The permission that calls tools.
pub const RUN: &str = "tools:run";
/// The permission that writes tools.
pub const WRITE: &str = "tools:write";
/// The permission that reads secrets' values.
pub const SECRETS_READ: &str = "secrets:read";

/// Whether `caller` creates, changes and deletes tools.
pub fn may_write(caller: &Principal) -> bool {
    caller.is_org_admin() || caller.has_permission(WRITE)
}

/// Whether `caller` runs a tool whose own permission is `permission`.
pub fn may_run(caller: &Principal, permission: Option<&str>) -> bool {
    caller.has_permission(RUN) && permission.is_none_or(|p| caller.has_permission(p))
}

/// Whether `caller` sees a tool whose own permission is `permission`.
pub fn may_see(caller: &Principal, permission: Option<&str>) -> bool {
    may_write(caller) || may_run(caller, permission)
}

/// The user a caller is (a key's owner for a key).
fn user_of(caller: &Principal) -> Option<&str> {
    match &caller.subject {
        Subject::User { id } => Some(id.as_str()),
        Subject::ApiKey {
            owner_user_id: Some(id),
            ..
        } => Some(id.as_str()),
        _ => None,
    }
}

/// Whether `caller` may name a secret of `scope` in a tool.
pub fn may_reference(caller: &Principal, scope: &Scope) -> bool {
    match scope {
        Scope::Org => caller.has_permission(SECRETS_READ),
        Scope::Team(team) => {
            caller.has_permission(SECRETS_READ)
                && (caller.is_org_admin() || caller.team_ids.contains(team))
        }
        Scope::User(user) => user_of(caller) == Some(user.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_http::principal::{Credential, OrgRole};

    fn member(permissions: &[&str]) -> Principal {
        Principal {
            subject: Subject::User { id: "u1".into() },
            org_id: Some("o1".into()),
            org_role: Some(OrgRole::Member),
            team_ids: vec!["t1".into()],
            roles: vec![],
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            acting_as: None,
            credential: Credential::Session,
        }
    }

    #[test]
    fn running_takes_tools_run_and_the_tools_own_permission() {
        let runner = member(&[RUN]);
        assert!(may_run(&runner, None) && !may_run(&runner, Some("billing:tools")));
        assert!(may_run(
            &member(&[RUN, "billing:tools"]),
            Some("billing:tools")
        ));
        assert!(!may_run(&member(&["billing:tools"]), Some("billing:tools")));
        let admin = Principal {
            org_role: Some(OrgRole::Admin),
            ..member(&[])
        };
        assert!(!may_run(&admin, None) && may_see(&admin, Some("x")) && may_write(&admin));
        assert!(!may_see(&member(&[]), None) && may_see(&member(&[WRITE]), Some("x")));
    }

    #[test]
    fn naming_a_secret_takes_the_right_to_read_it() {
        let plain = member(&[WRITE]);
        let reader = member(&[WRITE, SECRETS_READ]);
        assert!(!may_reference(&plain, &Scope::Org) && may_reference(&reader, &Scope::Org));
        assert!(may_reference(&reader, &Scope::Team("t1".into())));
        assert!(!may_reference(&reader, &Scope::Team("t2".into())));
        assert!(may_reference(&plain, &Scope::User("u1".into())));
        assert!(!may_reference(&reader, &Scope::User("u2".into())));
    }
}
