//! Decisions: `POST /v1/authz/check` (may the subject do the action on one
//! resource, and why) and `POST /v1/authz/filter` (which resources of a
//! collection may it do the action on, as a filter tree, a Mongo query and
//! an SQL `WHERE` fragment).
//!
//! Both answer for the caller. An org admin or a holder of `authz:check`
//! may ask for another member (`"subject": {"type": "user", "id": …}`),
//! which is how a backend service asks about its users; the member's org
//! role, teams and roles are resolved here, never taken from the request.
//! Handlers talk to a [`PolicyEngine`]; [`engine`] picks the one in use.

use access_core::engine::{Builtin, CheckInput, EngineError, FilterInput, PolicyEngine};
use access_core::facts::{SubjectFacts, SubjectKind};
use access_core::filter::{Field, FieldMap};
use access_core::policy::{StoredPolicy, parse_reference};
use access_core::render::{Placeholder, to_mongo, to_sql};
use access_core::roles::AUTHZ_CHECK;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use serde::Deserialize;
use serde_json::json;
use spin_sdk::http::Request;

use crate::context::Caller;
use crate::fields::Fields;
use crate::{facts, policies};

/// The engine decisions are made with. The built-in one evaluates the
/// stored documents in process; an external one (OPA over HTTP) would be
/// chosen here, by a Spin variable, with no change to the handlers.
fn engine() -> impl PolicyEngine {
    Builtin
}

fn unavailable(error: EngineError) -> Problem {
    eprintln!("access: policy engine failed: {}", error.log);
    Problem::new(ErrorCode::Unavailable).detail("the policy engine did not answer; retry")
}

/// Whom a decision is for, when not the caller.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum SubjectArg {
    /// A member of the org.
    User { id: String },
}

fn check_reference(fields: &mut Fields, reference: &str, version: Option<i64>) {
    if parse_reference(reference).is_none() {
        fields.push(
            "/policy",
            "invalid_format",
            "policy is name:action, e.g. datasources_filter:read",
        );
    }
    if version.is_some_and(|v| v < 1) {
        fields.push("/version", "invalid", "version must be a positive integer");
    }
}

/// The policy in force and the action, for a validated reference.
async fn policy_for(
    tenant: &Tenant<'_>,
    reference: &str,
    version: Option<i64>,
) -> Result<(StoredPolicy, String), Problem> {
    let (name, action) = parse_reference(reference).ok_or_else(Problem::internal)?;
    Ok((
        policies::in_force(tenant, name, version).await?,
        action.to_string(),
    ))
}

/// The service and collection a request is about: as given, or as the
/// policy pins them; 422 when neither names one, or they disagree.
fn target(
    policy: &StoredPolicy,
    service: Option<String>,
    collection: Option<String>,
    pointer: &str,
) -> Result<(String, String), Problem> {
    let pinned = policy.document.applies_to.clone().unwrap_or_default();
    let mut fields = Fields::default();
    let mut pick =
        |field: &str, given: Option<String>, pinned: Option<String>| match (given, pinned) {
            (Some(g), Some(p)) if g != p => {
                fields.push(
                    &format!("{pointer}/{field}"),
                    "policy_mismatch",
                    &format!("the policy applies to {field} {p}"),
                );
                String::new()
            }
            (Some(v), _) | (None, Some(v)) => v,
            (None, None) => {
                fields.push(
                    &format!("{pointer}/{field}"),
                    "required",
                    &format!("name the {field}: the policy does not"),
                );
                String::new()
            }
        };
    let service = pick("service", service, pinned.service);
    let collection = pick("collection", collection, pinned.collection);
    fields.finish().map_err(|errors| {
        Problem::new(ErrorCode::ValidationFailed)
            .detail("the request body has invalid fields")
            .errors(errors)
    })?;
    Ok((service, collection))
}

/// The subject's facts: the caller, or (for admins and holders of
/// `authz:check`) another member.
async fn subject_of(
    caller: &Caller,
    tenant: &Tenant<'_>,
    subject: Option<&SubjectArg>,
) -> Result<SubjectFacts, Problem> {
    match subject {
        Some(SubjectArg::User { id }) if caller.user_id() != Some(id.as_str()) => {
            caller.require_admin_or(AUTHZ_CHECK)?;
            facts::member(tenant, id).await
        }
        _ => facts::caller(caller, tenant).await,
    }
}

fn subject_json(subject: &SubjectFacts) -> serde_json::Value {
    json!({"type": subject.kind.unwrap_or(SubjectKind::User), "id": subject.id})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceArg {
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    collection: Option<String>,
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckRequest {
    policy: String,
    resource: ResourceArg,
    #[serde(default)]
    subject: Option<SubjectArg>,
    #[serde(default)]
    version: Option<i64>,
}

impl Validate for CheckRequest {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut fields = Fields::default();
        check_reference(&mut fields, &self.policy, self.version);
        if let Some(s) = &self.resource.service {
            fields.name("/resource/service", s);
        }
        if let Some(c) = &self.resource.collection {
            fields.name("/resource/collection", c);
        }
        fields.resource_id("/resource/id", &self.resource.id);
        fields.finish()
    }
}

/// `POST /v1/authz/check`: `{allowed, reason, detail}` for one resource.
pub async fn check(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let body: CheckRequest = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let tenant = caller.tenant()?;
    let subject = subject_of(&caller, &tenant, body.subject.as_ref()).await?;
    let (policy, action) = policy_for(&tenant, &body.policy, body.version).await?;
    let resource = body.resource;
    let (service, collection) =
        target(&policy, resource.service, resource.collection, "/resource")?;
    let facts = facts::resource(&tenant, &subject, (&service, &collection, &resource.id)).await?;
    let input = CheckInput {
        policy: &policy,
        action: &action,
        subject: &subject,
        resource: &facts,
    };
    let decision = engine().check(&input).await.map_err(unavailable)?;
    let body = json!({
        "allowed": decision.allowed,
        "reason": decision.reason,
        "detail": decision.detail,
        "policy": {"name": policy.name, "version": policy.version, "action": action},
        "subject": subject_json(&subject),
        "resource": {"service": service, "collection": collection, "id": resource.id},
    });
    Ok(response::json(200, &body, request_id))
}

fn default_id() -> String {
    "id".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldsArg {
    #[serde(default = "default_id")]
    id: String,
    #[serde(default)]
    owner_user: Option<String>,
    #[serde(default)]
    owner_team: Option<String>,
    #[serde(default)]
    org: Option<String>,
}

impl FieldsArg {
    fn map(&self) -> Result<FieldMap, Field> {
        FieldMap::new(
            &self.id,
            self.owner_user.as_deref(),
            self.owner_team.as_deref(),
            self.org.as_deref(),
        )
        .map_err(|bad| bad.field)
    }
}

fn default_placeholder() -> String {
    "?".to_string()
}

fn default_first() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlArg {
    #[serde(default = "default_placeholder")]
    placeholder: String,
    #[serde(default = "default_first")]
    first: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterRequest {
    policy: String,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    collection: Option<String>,
    #[serde(default)]
    subject: Option<SubjectArg>,
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    fields: Option<FieldsArg>,
    #[serde(default)]
    sql: Option<SqlArg>,
}

fn field_pointer(field: Field) -> &'static str {
    match field {
        Field::Id => "/fields/id",
        Field::OwnerUser => "/fields/owner_user",
        Field::OwnerTeam => "/fields/owner_team",
        Field::Org => "/fields/org",
    }
}

impl FilterRequest {
    fn field_map(&self) -> Result<FieldMap, Field> {
        match &self.fields {
            Some(f) => f.map(),
            None => FieldMap::new("id", None, None, None).map_err(|bad| bad.field),
        }
    }

    fn placeholder(&self) -> Option<Placeholder> {
        match &self.sql {
            Some(s) => Placeholder::parse(&s.placeholder, s.first),
            None => Some(Placeholder::Question),
        }
    }
}

impl Validate for FilterRequest {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut fields = Fields::default();
        check_reference(&mut fields, &self.policy, self.version);
        if let Some(s) = &self.service {
            fields.name("/service", s);
        }
        if let Some(c) = &self.collection {
            fields.name("/collection", c);
        }
        if let Err(field) = self.field_map() {
            fields.push(
                field_pointer(field),
                "invalid_format",
                "a field is an identifier (letters, digits, _; not starting with a digit), or up to three joined by .",
            );
        }
        if self.placeholder().is_none() {
            fields.push("/sql/placeholder", "invalid", "placeholder is ?, ?N or $N");
        }
        if self.sql.as_ref().is_some_and(|s| s.first == 0) {
            fields.push(
                "/sql/first",
                "invalid",
                "parameters are numbered from 1 or more",
            );
        }
        fields.finish()
    }
}

/// `POST /v1/authz/filter`: the filter a service applies to its own query
/// of the collection, as a tree, a Mongo query and an SQL fragment.
pub async fn filter(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let body: FilterRequest = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let fields = body.field_map().map_err(|_| Problem::internal())?;
    let placeholder = body.placeholder().ok_or_else(Problem::internal)?;
    let tenant = caller.tenant()?;
    let subject = subject_of(&caller, &tenant, body.subject.as_ref()).await?;
    let (policy, action) = policy_for(&tenant, &body.policy, body.version).await?;
    let (service, collection) = target(&policy, body.service, body.collection, "")?;
    let facts = facts::collection(&tenant, &subject, &service, &collection).await?;
    let input = FilterInput {
        policy: &policy,
        action: &action,
        subject: &subject,
        collection: &facts,
        fields: &fields,
    };
    let tree = engine().filter(&input).await.map_err(unavailable)?;
    // An engine naming a field the caller has not mapped answered for rows
    // the caller does not have: that is the engine's fault, not the caller's.
    let unmapped = |e: access_core::render::Unmapped| {
        unavailable(EngineError {
            log: format!("filter uses unmapped field {:?}", e.field),
        })
    };
    let mongo = to_mongo(&tree, &fields).map_err(unmapped)?;
    let sql = to_sql(&tree, &fields, placeholder).map_err(unmapped)?;
    let body = json!({
        "policy": {"name": policy.name, "version": policy.version, "action": action},
        "subject": subject_json(&subject),
        "service": service,
        "collection": collection,
        "filter": tree,
        "mongo": mongo,
        "sql": {"where": sql.sql, "params": sql.params},
    });
    Ok(response::json(200, &body, request_id))
}
