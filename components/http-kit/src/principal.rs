//! The identity context every handler works with. Authentication (sessions,
//! API keys, JWTs) fills it; handlers only ever see this type.

use serde::{Deserialize, Serialize};

use crate::problem::{ErrorCode, Problem};

/// Who the caller is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Subject {
    /// A signed-in user.
    User {
        /// User id.
        id: String,
    },
    /// An API key, possibly acting for the user who created it.
    ApiKey {
        /// Key id.
        id: String,
        /// The user the key belongs to, when it has one.
        owner_user_id: Option<String>,
    },
    /// A registered service.
    Service {
        /// Service name.
        name: String,
    },
    /// A subject of an org's own identity provider that is not a linked
    /// member (an app's client-credentials token, say), holding only the
    /// roles its claims map to.
    External {
        /// The provider's name in the org.
        provider: String,
        /// The token's `sub`.
        sub: String,
    },
}

impl Subject {
    /// The subject's id as protected apps see it: a user's or key's own id,
    /// `service:<name>`, or `external:<provider>:<sub>`.
    pub fn display_id(&self) -> String {
        match self {
            Subject::User { id } | Subject::ApiKey { id, .. } => id.clone(),
            Subject::Service { name } => format!("service:{name}"),
            Subject::External { provider, sub } => format!("external:{provider}:{sub}"),
        }
    }
}

/// A member's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    /// Manages the organization and its members.
    Admin,
    /// A regular member.
    Member,
}

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// An opaque session token.
    Session,
    /// An API key.
    ApiKey,
    /// A signed JWT.
    Jwt,
}

/// The real caller when an admin acts as someone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActingAs {
    /// The admin doing the impersonating.
    pub impersonator_user_id: String,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Who.
    pub subject: Subject,
    /// The organization the request acts in.
    pub org_id: Option<String>,
    /// The caller's role in that organization.
    pub org_role: Option<OrgRole>,
    /// Teams the caller belongs to in that organization.
    #[serde(default)]
    pub team_ids: Vec<String>,
    /// Roles granted.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Effective permissions (union over roles).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Set while an admin impersonates this principal.
    pub acting_as: Option<ActingAs>,
    /// The credential used.
    pub credential: Credential,
}

impl Principal {
    /// Whether the permission is held.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// Whether the caller administers the current organization.
    pub fn is_org_admin(&self) -> bool {
        self.org_role == Some(OrgRole::Admin)
    }

    /// The current organization, or 403 when the request has none.
    pub fn require_org(&self) -> Result<&str, Problem> {
        self.org_id.as_deref().ok_or_else(|| {
            Problem::new(ErrorCode::Forbidden).detail("an organization context is required")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> Principal {
        Principal {
            subject: Subject::User { id: "u1".into() },
            org_id: Some("o1".into()),
            org_role: Some(OrgRole::Member),
            team_ids: vec!["t1".into()],
            roles: vec!["viewer".into()],
            permissions: vec!["read".into()],
            acting_as: None,
            credential: Credential::Session,
        }
    }

    #[test]
    fn permissions_and_roles_are_checked_exactly() {
        let p = member();
        assert!(p.has_permission("read"));
        assert!(!p.has_permission("rea"));
        assert!(!p.is_org_admin());
    }

    #[test]
    fn missing_org_is_forbidden() {
        let mut p = member();
        assert_eq!(p.require_org().ok(), Some("o1"));
        p.org_id = None;
        assert_eq!(p.require_org().unwrap_err().status, 403);
    }

    #[test]
    fn an_impersonated_api_key_principal_round_trips() -> anyhow::Result<()> {
        let p = Principal {
            subject: Subject::ApiKey {
                id: "k1".into(),
                owner_user_id: Some("u1".into()),
            },
            org_role: Some(OrgRole::Admin),
            acting_as: Some(ActingAs {
                impersonator_user_id: "u9".into(),
            }),
            credential: Credential::ApiKey,
            ..member()
        };
        let json = serde_json::to_value(&p)?;
        assert_eq!(json["subject"]["type"], "api_key");
        assert_eq!(json["credential"], "api_key");
        assert_eq!(json["acting_as"]["impersonator_user_id"], "u9");
        assert_eq!(serde_json::from_value::<Principal>(json)?, p);
        assert!(p.is_org_admin());
        Ok(())
    }

    #[test]
    fn missing_lists_and_options_default_to_empty() -> anyhow::Result<()> {
        let p: Principal = serde_json::from_value(serde_json::json!({
            "subject": {"type": "service", "name": "billing"},
            "credential": "jwt"
        }))?;
        assert_eq!(p.org_id, None);
        assert!(p.permissions.is_empty() && p.acting_as.is_none());
        Ok(())
    }

    #[test]
    fn serializes_with_tagged_subject() -> anyhow::Result<()> {
        let json = serde_json::to_value(member())?;
        assert_eq!(json["subject"]["type"], "user");
        assert_eq!(json["org_role"], "member");
        assert_eq!(json["credential"], "session");
        Ok(())
    }
}
