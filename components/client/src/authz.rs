//! Authorization decisions from Gatehouse: `POST /v1/authz/check` (may the
//! subject do an action on one resource) and `POST /v1/authz/filter`
//! (which resources of a collection, as a filter to apply to the service's
//! own query).
//!
//! The bearer is the caller's: a Gatehouse JWT, or the service's API key
//! (which acts in its own org). A decision is for the bearer, or for a
//! member named with `for_user` when the bearer is an org admin or holds
//! `authz:check`. Responses are read tolerantly: fields added later are
//! ignored, an unknown [`Reason`] is [`Reason::Other`]; a filter node that
//! is not understood fails the call rather than widen what is returned.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::problem::Problem;
use crate::transport::{Transport, TransportError};

/// Who a decision is for, when not the bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Subject {
    /// A member of the org.
    User {
        /// The user's id.
        id: String,
    },
}

/// The resource a check is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceRef {
    /// The service; may be left to the policy's `applies_to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The collection; may be left to the policy's `applies_to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// The resource's id in the service.
    pub id: String,
}

/// The body of `POST /v1/authz/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRequest {
    /// A stored policy and the action: `name:action`, e.g.
    /// `datasources_filter:read`.
    pub policy: String,
    /// The resource.
    pub resource: ResourceRef,
    /// Whom to decide for; the bearer when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// A policy version; the one in force when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

impl CheckRequest {
    /// May the bearer do `policy`'s action (`name:action`) on resource
    /// `id` of the collection the policy applies to.
    pub fn new(policy: impl Into<String>, id: impl Into<String>) -> CheckRequest {
        CheckRequest {
            policy: policy.into(),
            resource: ResourceRef {
                service: None,
                collection: None,
                id: id.into(),
            },
            subject: None,
            version: None,
        }
    }

    /// Names the service and collection (required when the policy does
    /// not pin them; must match when it does).
    pub fn in_collection(
        mut self,
        service: impl Into<String>,
        collection: impl Into<String>,
    ) -> CheckRequest {
        self.resource.service = Some(service.into());
        self.resource.collection = Some(collection.into());
        self
    }

    /// Decides for member `user_id` instead of the bearer.
    pub fn for_user(mut self, user_id: impl Into<String>) -> CheckRequest {
        self.subject = Some(Subject::User { id: user_id.into() });
        self
    }

    /// Decides under version `version` of the policy.
    pub fn at_version(mut self, version: i64) -> CheckRequest {
        self.version = Some(version);
        self
    }
}

/// Why a check came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Org admins reach every resource under the rule.
    OrgAdmin,
    /// A permission the rule names reaches every resource.
    Permission,
    /// The subject owns the resource.
    OwnerUser,
    /// A team the subject is in (or below) owns the resource.
    OwnerTeam,
    /// The org owns the resource and the rule lets the subject in.
    OwnerOrg,
    /// The resource is granted to a role the subject holds.
    RoleGrant,
    /// The policy has no rule for the action.
    NoRule,
    /// Nothing in the rule reaches the resource.
    NotGranted,
    /// A reason this client does not know; `allowed` still decides.
    #[serde(other)]
    Other,
}

impl Reason {
    /// The reason as Gatehouse writes it (`other` for one this client
    /// does not know).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OrgAdmin => "org_admin",
            Reason::Permission => "permission",
            Reason::OwnerUser => "owner_user",
            Reason::OwnerTeam => "owner_team",
            Reason::OwnerOrg => "owner_org",
            Reason::RoleGrant => "role_grant",
            Reason::NoRule => "no_rule",
            Reason::NotGranted => "not_granted",
            Reason::Other => "other",
        }
    }
}

/// The policy version a decision was made under.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PolicyRef {
    /// The policy's name.
    pub name: String,
    /// Its version.
    pub version: i64,
    /// The action.
    pub action: String,
}

/// What kind of subject a decision was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A member of the org.
    User,
    /// An API key of the org.
    ApiKey,
    /// A kind this client does not know.
    #[serde(other)]
    Other,
}

/// The subject a decision was for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubjectRef {
    /// What it is.
    #[serde(rename = "type")]
    pub kind: SubjectKind,
    /// Its id.
    pub id: String,
}

/// The resource a decision was about, as resolved.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Resource {
    /// The service.
    pub service: String,
    /// The collection.
    pub collection: String,
    /// The id.
    pub id: String,
}

/// The answer of `POST /v1/authz/check`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Decision {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// Why, for people (names the role, team or permission).
    #[serde(default)]
    pub detail: String,
    /// The policy version in force.
    pub policy: PolicyRef,
    /// Whom it was decided for.
    pub subject: SubjectRef,
    /// About what.
    pub resource: Resource,
}

/// How the SQL fragment writes its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Placeholder {
    /// `?` each (SQLite, MySQL, JDBC).
    #[serde(rename = "?")]
    Question,
    /// `?N`, numbered (SQLite).
    #[serde(rename = "?N")]
    QuestionNumbered,
    /// `$N`, numbered (PostgreSQL).
    #[serde(rename = "$N")]
    Dollar,
}

/// The SQL rendering asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SqlStyle {
    /// The placeholder style.
    pub placeholder: Placeholder,
    /// The first parameter's number, for numbered styles (from 1).
    pub first: u32,
}

/// The service's column (or document field) for each logical field;
/// identifiers, or up to three joined by `.`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldNames {
    /// The resource id's column.
    pub id: String,
    /// The owning user's column, if the rows have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_user: Option<String>,
    /// The owning team's column, if the rows have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_team: Option<String>,
    /// The owning org's column, if the rows have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

impl Default for FieldNames {
    fn default() -> FieldNames {
        FieldNames {
            id: "id".to_string(),
            owner_user: None,
            owner_team: None,
            org: None,
        }
    }
}

/// The body of `POST /v1/authz/filter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterRequest {
    /// A stored policy and the action: `name:action`.
    pub policy: String,
    /// The service; may be left to the policy's `applies_to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The collection; may be left to the policy's `applies_to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// Whom to decide for; the bearer when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// A policy version; the one in force when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// The service's columns; only `id` when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<FieldNames>,
    /// The SQL rendering; `?` placeholders when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlStyle>,
}

impl FilterRequest {
    /// The resources the bearer may do `policy`'s action (`name:action`)
    /// on, in the collection the policy applies to.
    pub fn new(policy: impl Into<String>) -> FilterRequest {
        FilterRequest {
            policy: policy.into(),
            service: None,
            collection: None,
            subject: None,
            version: None,
            fields: None,
            sql: None,
        }
    }

    /// Names the service and collection.
    pub fn in_collection(
        mut self,
        service: impl Into<String>,
        collection: impl Into<String>,
    ) -> FilterRequest {
        self.service = Some(service.into());
        self.collection = Some(collection.into());
        self
    }

    /// Decides for member `user_id` instead of the bearer.
    pub fn for_user(mut self, user_id: impl Into<String>) -> FilterRequest {
        self.subject = Some(Subject::User { id: user_id.into() });
        self
    }

    /// Decides under version `version` of the policy.
    pub fn at_version(mut self, version: i64) -> FilterRequest {
        self.version = Some(version);
        self
    }

    /// Maps the logical fields to the service's columns.
    pub fn with_fields(mut self, fields: FieldNames) -> FilterRequest {
        self.fields = Some(fields);
        self
    }

    /// Renders SQL parameters in `placeholder` style from number `first`.
    pub fn with_sql(mut self, placeholder: Placeholder, first: u32) -> FilterRequest {
        self.sql = Some(SqlStyle { placeholder, first });
        self
    }
}

/// A logical field of a service's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The resource id.
    Id,
    /// The owning user's id.
    OwnerUser,
    /// The owning team's id.
    OwnerTeam,
    /// The owning org's id.
    Org,
}

/// Which resources of a collection are reached, as a tree.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Filter {
    /// Every resource.
    True,
    /// No resource.
    False,
    /// Any of `args`.
    Or {
        /// The alternatives.
        args: Vec<Filter>,
    },
    /// All of `args`.
    And {
        /// The conditions.
        args: Vec<Filter>,
    },
    /// `field` is one of `values`.
    In {
        /// The field.
        field: Field,
        /// The values.
        values: Vec<String>,
    },
    /// `field` equals `value`.
    Eq {
        /// The field.
        field: Field,
        /// The value.
        value: String,
    },
}

/// The filter as an SQL condition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SqlFilter {
    /// The condition, to put after `WHERE` (or `AND`); column names are
    /// quoted identifiers, values are parameters.
    #[serde(rename = "where")]
    pub condition: String,
    /// The parameters' values, in order.
    pub params: Vec<String>,
}

/// The answer of `POST /v1/authz/filter`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FilterAnswer {
    /// The policy version in force.
    pub policy: PolicyRef,
    /// Whom it was decided for.
    pub subject: SubjectRef,
    /// The service.
    pub service: String,
    /// The collection.
    pub collection: String,
    /// The filter as a tree over the logical fields.
    pub filter: Filter,
    /// The same as a MongoDB query over the mapped fields.
    pub mongo: Value,
    /// The same as SQL over the mapped columns.
    pub sql: SqlFilter,
}

/// Why a decision could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthzError {
    /// No answer (or the request could not be encoded).
    Transport(TransportError),
    /// Gatehouse refused: 401 (bad bearer), 403 (asking for another member
    /// without `authz:check`), 404 (no such policy, or member), 422
    /// (invalid request, see `errors`), 503, …
    Problem(Problem),
    /// A 2xx answer of an unexpected shape.
    InvalidResponse(String),
}

impl fmt::Display for AuthzError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthzError::Transport(e) => write!(f, "{e}"),
            AuthzError::Problem(p) => write!(f, "{p}"),
            AuthzError::InvalidResponse(why) => {
                write!(f, "unexpected answer from Gatehouse: {why}")
            }
        }
    }
}

impl std::error::Error for AuthzError {}

/// Asks Gatehouse for authorization decisions.
pub struct AuthzClient<T> {
    transport: T,
    base: String,
}

impl<T: Transport> AuthzClient<T> {
    /// A client of the deployment at `base_url`.
    pub fn new(base_url: &str, transport: T) -> AuthzClient<T> {
        AuthzClient {
            transport,
            base: crate::trimmed(base_url),
        }
    }

    /// `POST /v1/authz/check` with `bearer` (without `Bearer `).
    pub async fn check(
        &self,
        bearer: &str,
        request: &CheckRequest,
    ) -> Result<Decision, AuthzError> {
        self.call("/v1/authz/check", bearer, request).await
    }

    /// `POST /v1/authz/filter` with `bearer` (without `Bearer `).
    pub async fn filter(
        &self,
        bearer: &str,
        request: &FilterRequest,
    ) -> Result<FilterAnswer, AuthzError> {
        self.call("/v1/authz/filter", bearer, request).await
    }

    async fn call<R: DeserializeOwned>(
        &self,
        path: &str,
        bearer: &str,
        request: &impl Serialize,
    ) -> Result<R, AuthzError> {
        let body = serde_json::to_vec(request).map_err(|e| {
            AuthzError::Transport(TransportError::new(format!("encoding the request: {e}")))
        })?;
        let url = format!("{}{path}", self.base);
        let answer = self
            .transport
            .post_json(&url, bearer, body)
            .await
            .map_err(AuthzError::Transport)?;
        if !answer.is_success() {
            return Err(AuthzError::Problem(Problem::from_answer(
                answer.status,
                &answer.body,
            )));
        }
        serde_json::from_slice(&answer.body).map_err(|e| AuthzError::InvalidResponse(e.to_string()))
    }
}
