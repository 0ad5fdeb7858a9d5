//! What the server resolves before an engine decides: the subject (its
//! org role, teams, roles and permissions) and the resource or collection
//! (ownership edges, ids granted to the subject's roles). Engines see only
//! these facts, never the database, so an external engine gets exactly the
//! same input as the built-in one.

use serde::{Deserialize, Serialize};

/// What kind of subject a decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A member of the org.
    User,
    /// An API key of the org.
    ApiKey,
}

/// Who a decision is about, as resolved in one org.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubjectFacts {
    /// What it is (`None` only in tests' defaults).
    pub kind: Option<SubjectKind>,
    /// Its id (`usr_…`, `key_…`).
    pub id: String,
    /// The org the decision is made in.
    pub org_id: String,
    /// Whether it administers the org.
    pub org_admin: bool,
    /// The teams it belongs to directly.
    pub team_ids: Vec<String>,
    /// Every team above those (their parents, and theirs, …).
    pub ancestor_team_ids: Vec<String>,
    /// The names of the roles it holds.
    pub roles: Vec<String>,
    /// Its effective permissions (the union over its roles).
    pub permissions: Vec<String>,
}

impl SubjectFacts {
    /// Whether the subject is the user `user_id`.
    pub fn is_user(&self, user_id: &str) -> bool {
        self.kind == Some(SubjectKind::User) && self.id == user_id
    }

    /// Whether it holds the role named `name`.
    pub fn holds(&self, name: &str) -> bool {
        self.roles.iter().any(|r| r == name)
    }

    /// Whether it holds `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

/// What owns a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerType {
    /// A user (typically its creator).
    User,
    /// A team (or business unit).
    Team,
    /// The org itself.
    Org,
}

impl OwnerType {
    /// As stored in `resource_owners.owner_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerType::User => "user",
            OwnerType::Team => "team",
            OwnerType::Org => "org",
        }
    }

    /// From its stored or path form.
    pub fn parse(text: &str) -> Option<OwnerType> {
        match text {
            "user" => Some(OwnerType::User),
            "team" => Some(OwnerType::Team),
            "org" => Some(OwnerType::Org),
            _ => None,
        }
    }
}

/// One ownership edge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    /// Its kind.
    #[serde(rename = "type")]
    pub owner_type: OwnerType,
    /// The user, team or org id.
    pub id: String,
}

/// A role through which a resource is granted, with its permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantedRole {
    /// The role's name.
    pub name: String,
    /// Its permissions.
    pub permissions: Vec<String>,
}

impl GrantedRole {
    /// Whether the role has `permission`.
    pub fn has(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

/// What is known about one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResourceFacts {
    /// The service it lives in.
    pub service: String,
    /// Its collection there.
    pub collection: String,
    /// Its id.
    pub id: String,
    /// Its ownership edges.
    pub owners: Vec<Owner>,
    /// The roles it is granted to (the server may limit these to roles the
    /// subject holds; engines check holding again).
    pub grants: Vec<GrantedRole>,
}

/// What is known about a collection, as far as the subject is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CollectionFacts {
    /// The service.
    pub service: String,
    /// The collection.
    pub collection: String,
    /// Resources with an ownership edge that may concern the subject
    /// (the subject itself, one of its teams or their ancestors, the org).
    pub owned: Vec<(String, Owner)>,
    /// Resources granted to roles the subject holds.
    pub granted: Vec<(String, GrantedRole)>,
}
