//! The orgs a user belongs to, and which one a request acts in.

use gatehouse_http::principal::{Credential, OrgRole, Principal, Subject};
use gatehouse_http::{ErrorCode, Problem};
use serde::{Deserialize, Serialize};

use crate::access::Grants;

/// The request header naming the org a request acts in (id or handle).
pub const ORG_HEADER: &str = "x-org";

/// A user's membership of one org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The org's id (`org_…`).
    pub org_id: String,
    /// The org's handle.
    pub org_handle: String,
    /// The user's role in the org.
    pub role: OrgRole,
    /// The teams of the org the user belongs to (directly).
    pub team_ids: Vec<String>,
    /// Roles granted to the user in the org and the permissions they give.
    #[serde(default)]
    pub grants: Grants,
}

impl Membership {
    /// Whether `reference` (an org id, or a handle in any case) names this org.
    pub fn is_named_by(&self, reference: &str) -> bool {
        self.org_id == reference || self.org_handle.eq_ignore_ascii_case(reference)
    }
}

/// The org reference in an `X-Org` header value: `None` when absent or
/// blank; 400 when it is not visible ASCII (no id or handle is anything
/// else), so a malformed header is never silently taken for no header.
pub fn org_reference(value: Option<&http::HeaderValue>) -> Result<Option<&str>, Problem> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|t| t.len() <= 200 && t.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            Problem::new(ErrorCode::InvalidHeader)
                .detail("X-Org must name an organization by its id or handle")
        })?;
    Ok(Some(text).filter(|t| !t.is_empty()))
}

/// An org that is not one of the caller's: the same answer as an org that
/// does not exist, so existence is never leaked.
pub fn unknown_org() -> Problem {
    Problem::new(ErrorCode::NotFound).detail("no such organization")
}

/// The membership named by `reference`, or 404.
pub fn find<'a>(memberships: &'a [Membership], reference: &str) -> Result<&'a Membership, Problem> {
    memberships
        .iter()
        .find(|m| m.is_named_by(reference))
        .ok_or_else(unknown_org)
}

/// The org a request acts in: the one the `X-Org` header names (404 when
/// the caller is not a member), else the caller's only org, else none.
pub fn select<'a>(
    memberships: &'a [Membership],
    header: Option<&str>,
) -> Result<Option<&'a Membership>, Problem> {
    match header.map(str::trim).filter(|h| !h.is_empty()) {
        Some(reference) => find(memberships, reference).map(Some),
        None if memberships.len() == 1 => Ok(memberships.first()),
        None => Ok(None),
    }
}

/// A signed-in user's principal acting in `org` (if any).
pub fn user_principal(
    user_id: &str,
    org: Option<&Membership>,
    credential: Credential,
) -> Principal {
    Principal {
        subject: Subject::User {
            id: user_id.to_string(),
        },
        org_id: org.map(|m| m.org_id.clone()),
        org_role: org.map(|m| m.role),
        team_ids: org.map(|m| m.team_ids.clone()).unwrap_or_default(),
        roles: org.map(|m| m.grants.roles.clone()).unwrap_or_default(),
        permissions: org
            .map(|m| m.grants.permissions.clone())
            .unwrap_or_default(),
        acting_as: None,
        credential,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership(id: &str, handle: &str, role: OrgRole) -> Membership {
        Membership {
            org_id: id.into(),
            org_handle: handle.into(),
            role,
            team_ids: vec![format!("team_of_{id}")],
            grants: Grants::from_roles([(format!("{handle}:viewer"), vec!["read".to_string()])]),
        }
    }

    #[test]
    fn a_malformed_org_header_is_a_bad_request_not_a_missing_one() -> Result<(), Problem> {
        let value = |bytes: &[u8]| http::HeaderValue::from_bytes(bytes).ok();
        assert_eq!(org_reference(None)?, None);
        assert_eq!(org_reference(value(b"  ").as_ref())?, None);
        assert_eq!(org_reference(value(b" acme ").as_ref())?, Some("acme"));
        for bad in [&b"acm\xe9"[..], b"ac me", b"acme\t1", &[b'a'; 201][..]] {
            let problem = org_reference(value(bad).as_ref()).unwrap_err();
            assert_eq!((problem.status, problem.code), (400, "invalid_header"));
        }
        Ok(())
    }

    #[test]
    fn the_only_org_is_chosen_without_a_header() -> Result<(), Problem> {
        let one = [membership("org_1", "acme", OrgRole::Admin)];
        assert_eq!(
            select(&one, None)?.map(|m| m.org_id.as_str()),
            Some("org_1")
        );
        assert_eq!(
            select(&one, Some("  "))?.map(|m| m.org_id.as_str()),
            Some("org_1")
        );
        Ok(())
    }

    #[test]
    fn several_orgs_and_no_header_mean_no_org() -> Result<(), Problem> {
        let two = [
            membership("org_1", "acme", OrgRole::Admin),
            membership("org_2", "globex", OrgRole::Member),
        ];
        assert!(select(&two, None)?.is_none());
        assert!(select(&[], None)?.is_none());
        Ok(())
    }

    #[test]
    fn the_header_names_an_org_by_id_or_handle_in_any_case() -> Result<(), Problem> {
        let two = [
            membership("org_1", "acme", OrgRole::Admin),
            membership("org_2", "globex", OrgRole::Member),
        ];
        assert_eq!(
            select(&two, Some("org_2"))?.map(|m| m.role),
            Some(OrgRole::Member)
        );
        assert_eq!(
            select(&two, Some("ACME"))?.map(|m| m.role),
            Some(OrgRole::Admin)
        );
        Ok(())
    }

    #[test]
    fn an_org_the_caller_is_not_in_is_not_found() {
        let one = [membership("org_1", "acme", OrgRole::Admin)];
        let problem = select(&one, Some("org_9")).unwrap_err();
        assert_eq!((problem.status, problem.code), (404, "not_found"));
        assert_eq!(find(&one, "globex").unwrap_err().status, 404);
    }

    #[test]
    fn the_principal_carries_the_chosen_org() {
        let m = membership("org_1", "acme", OrgRole::Admin);
        let p = user_principal("usr_1", Some(&m), Credential::Session);
        assert_eq!(p.org_id.as_deref(), Some("org_1"));
        assert!(p.is_org_admin());
        assert_eq!(p.team_ids, vec!["team_of_org_1".to_string()]);
        assert_eq!(p.roles, vec!["acme:viewer".to_string()]);
        assert!(p.has_permission("read"));
        let none = user_principal("usr_1", None, Credential::Session);
        assert!(none.org_id.is_none() && none.team_ids.is_empty());
    }
}
