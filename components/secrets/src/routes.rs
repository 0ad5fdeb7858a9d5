//! The handlers: who may do what where, then the store.

use base64::Engine as _;
use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::principal::Subject;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use gatehouse_secrets::scope::{Scope, valid_name};
use serde::Deserialize;
use serde_json::json;
use spin_sdk::http::Request;

use crate::audit;

/// Where a request's secrets are.
pub enum Place {
    /// `/v1/orgs/{org}/secrets`.
    Org(String),
    /// `/v1/orgs/{org}/teams/{team}/secrets`.
    Team(String, String),
    /// `/v1/me/secrets`.
    Me,
}

/// The most a value holds.
const VALUE_LIMIT: usize = 32 * 1024;

/// The permission that reads secrets' values.
pub const READ: &str = "secrets:read";

fn not_found() -> Problem {
    Problem::not_found().detail("no such organization, team or secret")
}

/// The caller and the scope the path names, checked to be the caller's
/// org (by id or handle) and one of its teams: another org's is not
/// found, whether it exists or not.
async fn resolve(req: &Request, place: &Place) -> Result<(OrgCaller, Scope), Problem> {
    let caller = OrgCaller::of(req).await?;
    let tenant = caller.tenant()?;
    let org = match place {
        Place::Org(org) | Place::Team(org, _) => Some(org.as_str()),
        Place::Me => None,
    };
    if let Some(org) = org
        && !caller.acts_in(org).await?
    {
        return Err(not_found());
    }
    let scope = match place {
        Place::Org(_) => Scope::Org,
        Place::Team(_, team) => {
            let known = !tenant
                .query(
                    "SELECT 1 FROM teams WHERE org_id = ?1 AND team_id = ?2",
                    vec![db::text(team)],
                )
                .await?
                .is_empty();
            if !known {
                return Err(not_found());
            }
            Scope::Team(team.clone())
        }
        Place::Me => Scope::User(me(&caller)?),
    };
    drop(tenant);
    Ok((caller, scope))
}

/// The user a `/v1/me` request is: a signed-in user, or an API key's
/// owner.
fn me(caller: &OrgCaller) -> Result<String, Problem> {
    match &caller.principal.subject {
        Subject::User { id } => Ok(id.clone()),
        Subject::ApiKey {
            owner_user_id: Some(id),
            ..
        } => Ok(id.clone()),
        _ => Err(Problem::new(ErrorCode::Forbidden)
            .detail("only a user (or a key of one) has secrets of its own")),
    }
}

/// Whether the caller writes and deletes in `scope`: the org's admins for
/// the org's and its teams'; the user for their own.
fn may_write(caller: &OrgCaller, scope: &Scope) -> Result<(), Problem> {
    match scope {
        Scope::User(_) => Ok(()),
        _ if caller.principal.is_org_admin() => Ok(()),
        _ => Err(Problem::new(ErrorCode::Forbidden)
            .detail("only an admin of this organization may change its secrets")),
    }
}

/// Whether the caller reads values in `scope`: `secrets:read`, explicitly
/// granted (for a team's, by a member of the team or an org admin); the
/// user for their own.
fn may_read(caller: &OrgCaller, scope: &Scope) -> bool {
    let p = &caller.principal;
    match scope {
        Scope::User(_) => true,
        Scope::Org => p.has_permission(READ),
        Scope::Team(team) => {
            p.has_permission(READ) && (p.is_org_admin() || p.team_ids.contains(team))
        }
    }
}

fn bad_name() -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the path names no valid secret")
        .errors(vec![FieldError::new(
            "/name",
            "invalid_name",
            "a secret name is a letter or _, then up to 127 letters, digits, _, - and .",
        )])
}

/// `PUT …/secrets/{name}`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Write {
    /// The value, as text (or base64 with `encoding: base64`).
    value: String,
    /// `utf8` (the default) or `base64`.
    encoding: Option<String>,
    /// What it is for.
    description: Option<String>,
}

impl Validate for Write {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if !matches!(self.encoding.as_deref(), None | Some("utf8" | "base64")) {
            errors.push(FieldError::new(
                "/encoding",
                "invalid",
                "encoding is utf8 or base64",
            ));
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 500)
        {
            errors.push(FieldError::new(
                "/description",
                "too_long",
                "at most 500 characters",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl Write {
    fn bytes(&self) -> Result<Vec<u8>, Problem> {
        let bytes = match self.encoding.as_deref() {
            Some("base64") => base64::engine::general_purpose::STANDARD
                .decode(&self.value)
                .map_err(|_| field("/value", "invalid_base64", "value is not base64"))?,
            _ => self.value.as_bytes().to_vec(),
        };
        if bytes.is_empty() || bytes.len() > VALUE_LIMIT {
            return Err(field(
                "/value",
                "invalid_length",
                "a value is 1 byte to 32 KiB",
            ));
        }
        Ok(bytes)
    }
}

fn field(pointer: &str, code: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the request body has invalid fields")
        .errors(vec![FieldError::new(pointer, code, message)])
}

fn not_stored(mut res: Response) -> Response {
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    res
}

/// `PUT …/secrets/{name}`: `201` when new, `200` when replaced.
pub async fn put(
    req: Request,
    place: Place,
    name: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let (caller, scope) = resolve(&req, &place).await?;
    may_write(&caller, &scope)?;
    if !valid_name(name) {
        return Err(bad_name());
    }
    let body: Write = json::read_json(req, VALUE_LIMIT * 2).await?;
    let value = body.bytes()?;
    let tenant = caller.tenant()?;
    let actor = caller.actor_id();
    let (created, meta) = gatehouse_secrets::put(
        &tenant,
        &scope,
        name,
        &value,
        body.description.as_deref(),
        &actor,
        unix_now(),
    )
    .await?;
    Ok(response::json(
        if created { 201 } else { 200 },
        &meta,
        request_id,
    ))
}

/// `GET …/secrets/{name}`: the value, with `Cache-Control: no-store`.
pub async fn get(
    req: Request,
    place: Place,
    name: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let (caller, scope) = resolve(&req, &place).await?;
    if !may_read(&caller, &scope) {
        audit::record(&req, &caller, "secret.read_denied", name, 403, request_id).await?;
        return Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "reading a secret's value takes the {READ} permission"
        )));
    }
    let tenant = caller.tenant()?;
    let found = gatehouse_secrets::read(&tenant, &scope, name, unix_now()).await?;
    let Some((value, meta)) = found else {
        return Err(not_found());
    };
    audit::record(&req, &caller, "secret.read", name, 200, request_id).await?;
    let (value, encoding) = match String::from_utf8(value) {
        Ok(text) => (text, "utf8"),
        Err(e) => (
            base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
            "base64",
        ),
    };
    let mut body = serde_json::to_value(&meta).map_err(|_| Problem::internal())?;
    body["value"] = json!(value);
    body["encoding"] = json!(encoding);
    Ok(not_stored(response::json(200, &body, request_id)))
}

/// `DELETE …/secrets/{name}`.
pub async fn delete(
    req: Request,
    place: Place,
    name: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let (caller, scope) = resolve(&req, &place).await?;
    may_write(&caller, &scope)?;
    let tenant = caller.tenant()?;
    let gone = gatehouse_secrets::delete(&tenant, &scope, name).await?;
    if !gone {
        return Err(not_found());
    }
    Ok(response::no_content(request_id))
}

/// `GET …/secrets`: names and metadata, never values. The org's and a
/// team's for org admins and holders of `secrets:read` (for a team's, in
/// the team); the user's own for the user.
pub async fn list(req: Request, place: Place, request_id: &str) -> Result<Response, Problem> {
    let (caller, scope) = resolve(&req, &place).await?;
    if !caller.principal.is_org_admin() && !may_read(&caller, &scope) {
        return Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "listing secrets takes an admin or the {READ} permission"
        )));
    }
    let tenant = caller.tenant()?;
    let items = gatehouse_secrets::list(&tenant, &scope).await?;
    Ok(response::json(200, &json!({"items": items}), request_id))
}

/// `POST /v1/orgs/{org}/secrets/$rotate-key` (org admins): `202` with the
/// new version; a job seals the older values with it.
pub async fn rotate_key(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let (caller, _) = resolve(&req, &Place::Org(org.to_string())).await?;
    may_write(&caller, &Scope::Org)?;
    let tenant = caller.tenant()?;
    let version =
        gatehouse_secrets::rotation::rotate_key(&tenant, &caller.conn, unix_now()).await?;
    Ok(response::json(
        202,
        &json!({"key_version": version}),
        request_id,
    ))
}

/// `POST /v1/admin/secrets/$rewrap` (the operator's token): every org's
/// data keys and the deployment's sealed under the current master key,
/// then every value still sealed the old way sealed with its data key.
pub async fn rewrap(req: Request, request_id: &str) -> Result<Response, Problem> {
    gatehouse_http::operator::require(&req).await?;
    let conn = db::open().await?;
    let rewrapped = gatehouse_secrets::rotation::rewrap_all(&conn).await?;
    // Data keys first: values sealed again now are under the new master key.
    let resealed = gatehouse_secrets::rotation::reseal_old_way(&conn, unix_now()).await?;
    Ok(response::json(
        200,
        &json!({"rewrapped": rewrapped, "resealed": resealed}),
        request_id,
    ))
}
