//! What a verified Gatehouse token says about its bearer.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// The claims of a verified token.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Claims {
    /// The issuer: the deployment's public base URL.
    pub iss: String,
    /// The subject: a user (`usr_…`), an API key, a registered service, or
    /// `provider:sub` for a user of an org's identity provider.
    pub sub: String,
    /// The audiences (a single `aud` string becomes one entry).
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    #[serde(default)]
    pub iat: Option<i64>,
    /// Not before, Unix seconds.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// The token's unique id.
    #[serde(default)]
    pub jti: Option<String>,
    /// The org the token acts in.
    #[serde(default)]
    pub org: Option<String>,
    /// The subject's role in the org: `admin` or `member`.
    #[serde(default)]
    pub org_role: Option<String>,
    /// Ids of the teams the subject is in.
    #[serde(default)]
    pub teams: Vec<String>,
    /// The org roles the token carries.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The permissions the token carries (the union over its roles, or
    /// fewer when it was narrowed).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The client the token was issued for.
    #[serde(default)]
    pub azp: Option<String>,
    /// For an API key's token: the user who owns the key.
    #[serde(default)]
    pub owner: Option<String>,
    /// The admin acting as `sub` (RFC 8693), when the token was issued
    /// during impersonation.
    #[serde(default)]
    pub act: Option<Actor>,
    /// Every other claim, as issued.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Who acts on the subject's behalf (RFC 8693 `act`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Actor {
    /// The acting user's id.
    pub sub: String,
}

impl Claims {
    /// Whether the token carries `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// Whether the token carries the org role named `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the subject is in team `team_id` (directly).
    pub fn in_team(&self, team_id: &str) -> bool {
        self.teams.iter().any(|t| t == team_id)
    }

    /// Whether the subject administers the org the token acts in.
    pub fn is_org_admin(&self) -> bool {
        self.org_role.as_deref() == Some("admin")
    }

    /// The admin acting as the subject, if any.
    pub fn impersonator(&self) -> Option<&str> {
        self.act.as_ref().map(|a| a.sub.as_str())
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(aud) => vec![aud],
        OneOrMany::Many(auds) => auds,
    })
}
