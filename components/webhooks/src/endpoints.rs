//! `POST`/`GET /v1/webhooks/endpoints`, `GET`/`PATCH`/`DELETE
//! /v1/webhooks/endpoints/{id}`: the URLs an org's events are delivered
//! to, managed by its admins. An endpoint's signing secret is sealed at
//! rest and answered only when it is made or rotated (and by the secret
//! route, `endpoint_secrets`); its Ed25519 public key, when it signs
//! `v1a` too, is public and always shown. The public key has its own
//! column: reads and lists open no sealed key, so one endpoint whose key
//! does not open (a row copied from elsewhere) cannot fail a whole list.
//!
//! Creating one takes no `Idempotency-Key`: the stored answer would hold
//! the new secret in plaintext. A retried create makes a second endpoint,
//! which the admin deletes.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json;
use gatehouse_http::pagination::PageRequest;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use gatehouse_webhook_delivery::seal_secret;
use gatehouse_webhook_delivery::url::UrlPolicy;
use serde::Serialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::{RowResult, Value};
use webhooks_core::SigningKey;

use crate::endpoint_input::{CreateEndpoint, MAX_ENDPOINTS, PatchEndpoint, distinct};
use crate::endpoint_secrets;
use crate::store;

/// An endpoint as answered.
#[derive(Debug, Serialize)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// The types it takes; `None`: every type.
    pub event_types: Option<Vec<String>>,
    pub enabled: bool,
    /// Why it is off: `admin`, `gone` (it answered 410) or `failing`.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<i64>,
    /// The first failed attempt since the last success.
    pub failing_since: Option<i64>,
    /// Whether deliveries carry an Ed25519 (`v1a`) signature too.
    pub v1a: bool,
    /// The `whpk_` key receivers verify `v1a` signatures with.
    pub public_key: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Columns of an endpoint row, in [`endpoint_of`]'s order.
const ENDPOINT_COLUMNS: &str =
    "endpoint_id, url, description, event_types, enabled, disabled_reason,
     disabled_at, failing_since, public_key, created_at, updated_at";

/// The endpoint of a row.
fn endpoint_of(row: &RowResult) -> Endpoint {
    let public_key = db::get_opt_text(row, 8);
    Endpoint {
        id: db::get_text(row, 0),
        url: db::get_text(row, 1),
        description: db::get_opt_text(row, 2),
        event_types: db::get_opt_text(row, 3).and_then(|t| serde_json::from_str(&t).ok()),
        enabled: db::get_int(row, 4).unwrap_or(0) != 0,
        disabled_reason: db::get_opt_text(row, 5),
        disabled_at: db::get_int(row, 6),
        failing_since: db::get_int(row, 7),
        v1a: public_key.is_some(),
        public_key,
        created_at: db::get_int(row, 9).unwrap_or(0),
        updated_at: db::get_int(row, 10).unwrap_or(0),
    }
}

/// A new Ed25519 signing key for the tenant's endpoint `id`: sealed, and
/// its public `whpk_` key.
async fn new_signing_key(
    caller: &OrgCaller,
    tenant: &Tenant<'_>,
    id: &str,
) -> Result<(String, String), Problem> {
    let key = SigningKey::from_seed(&identity_core::random::bytes::<32>());
    let plain = key.to_whsk();
    let sealed = seal_secret(&caller.conn, tenant.org_id(), id, &plain, unix_now()).await?;
    Ok((sealed, key.public_key().to_whpk()))
}

/// An admin of the org the request acts in: who manages its endpoints and
/// reads their messages.
pub async fn admin(req: &Request) -> Result<OrgCaller, Problem> {
    store::admin_of(req, "webhook endpoints").await
}

/// An endpoint that does not exist, was deleted, or is another org's.
pub fn no_endpoint() -> Problem {
    Problem::not_found().detail("no such webhook endpoint")
}

/// 422 with `errors`.
pub fn invalid(errors: Vec<FieldError>) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the request body has invalid fields")
        .errors(errors)
}

fn types_value(types: Option<Vec<String>>) -> Value {
    match types.map(distinct) {
        Some(types) => db::text(serde_json::to_string(&types).unwrap_or_else(|_| "[]".into())),
        None => Value::Null,
    }
}

/// The org's live endpoint `id`.
async fn load(tenant: &Tenant<'_>, id: &str) -> Result<Endpoint, Problem> {
    let rows = tenant
        .query(
            &format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
                 WHERE org_id = ?1 AND endpoint_id = ?2 AND deleted_at IS NULL"
            ),
            vec![db::text(id)],
        )
        .await?;
    rows.first().map(endpoint_of).ok_or_else(no_endpoint)
}

/// An endpoint with its secret, as made.
#[derive(Serialize)]
struct Created {
    #[serde(flatten)]
    endpoint: Endpoint,
    /// The `whsec_` secret every delivery is signed with: shown here, on
    /// rotation and to admins at `GET …/secret`.
    secret: String,
}

fn too_many_endpoints() -> Problem {
    let message = format!("an organization has at most {MAX_ENDPOINTS} webhook endpoints");
    Problem::new(ErrorCode::Conflict)
        .detail(format!("{message}: delete one first"))
        .errors(vec![FieldError::new("", "endpoint_limit_reached", message)])
}

/// `POST /v1/webhooks/endpoints`.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = admin(&req).await?;
    let tenant = caller.tenant()?;
    let body: CreateEndpoint = json::read_json(req, json::DEFAULT_LIMIT).await?;
    body.check(&UrlPolicy::from_variables().await)
        .map_err(invalid)?;
    let id = db::new_id("whep_");
    let secret = endpoint_secrets::new_secret()?;
    let sealed = seal_secret(
        &caller.conn,
        tenant.org_id(),
        &id,
        &secret.to_whsec(),
        unix_now(),
    )
    .await?;
    let (signing_key, public_key) = match body.v1a {
        Some(true) => {
            let (sealed, public) = new_signing_key(&caller, &tenant, &id).await?;
            (db::text(sealed), db::text(public))
        }
        _ => (Value::Null, Value::Null),
    };
    let enabled = body.enabled.unwrap_or(true);
    let now = unix_now();
    store::begin(&caller.conn).await?;
    let outcome = async {
        let live = tenant
            .query(
                "SELECT COUNT(*) FROM webhook_endpoints WHERE org_id = ?1 AND deleted_at IS NULL",
                vec![],
            )
            .await?;
        if live.first().and_then(|r| db::get_int(r, 0)).unwrap_or(0) >= MAX_ENDPOINTS {
            return Err(too_many_endpoints());
        }
        tenant
            .run(
                "INSERT INTO webhook_endpoints (org_id, endpoint_id, url, description, event_types, enabled,
                                                disabled_reason, disabled_at, secret, signing_key,
                                                public_key, created_by, created_at, updated_at)
                 VALUES (?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    db::text(&id),
                    db::text(&body.url),
                    db::opt_text(body.description.clone()),
                    types_value(body.event_types.clone()),
                    db::int(i64::from(enabled)),
                    if enabled { Value::Null } else { db::text("admin") },
                    if enabled { Value::Null } else { db::int(now) },
                    db::text(sealed),
                    signing_key,
                    public_key,
                    db::text(caller.actor_id()),
                    db::int(now),
                    db::int(now),
                ],
            )
            .await
    }
    .await;
    store::end(&caller.conn, outcome.is_ok()).await?;
    outcome?;
    let endpoint = load(&tenant, &id).await?;
    let created = Created {
        endpoint,
        secret: secret.to_whsec(),
    };
    Ok(endpoint_secrets::not_stored(response::json(
        201, &created, request_id,
    )))
}

/// `GET /v1/webhooks/endpoints`: newest first.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = admin(&req).await?;
    let tenant = caller.tenant()?;
    let page = PageRequest::from_query(req.uri().query())?;
    let (at, after) = store::cursor_position(&page)?;
    let rows = tenant
        .query(
            &format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
                 WHERE org_id = ?1 AND deleted_at IS NULL
                   AND (created_at < ?2 OR (created_at = ?2 AND endpoint_id < ?3))
                 ORDER BY created_at DESC, endpoint_id DESC LIMIT ?4"
            ),
            vec![
                db::int(at),
                db::text(after),
                db::int(i64::from(page.fetch_count())),
            ],
        )
        .await?;
    let endpoints = rows.iter().map(endpoint_of).collect();
    let page = page.page(endpoints, |e: &Endpoint| {
        store::position(e.created_at, &e.id)
    });
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/webhooks/endpoints/{id}`.
pub async fn get(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = admin(&req).await?;
    let tenant = caller.tenant()?;
    let endpoint = load(&tenant, id).await?;
    Ok(response::json(200, &endpoint, request_id))
}

/// `PATCH /v1/webhooks/endpoints/{id}`. Turning an endpoint on that was
/// off (by an admin, or by the deliveries: `gone`, `failing`) starts it
/// afresh: its reason and its failing streak are cleared. Turning it off
/// is recorded as an admin's doing. A new URL clears the failing streak
/// (the old URL's failures say nothing of the new one) but keeps an
/// endpoint that is off off, with its reason, until it is enabled.
pub async fn patch(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = admin(&req).await?;
    let tenant = caller.tenant()?;
    let body: PatchEndpoint = json::read_json(req, json::DEFAULT_LIMIT).await?;
    body.check(&UrlPolicy::from_variables().await)
        .map_err(invalid)?;
    let fresh_key = match body.v1a {
        Some(true) => Some(new_signing_key(&caller, &tenant, id).await?),
        _ => None,
    };
    store::begin(&caller.conn).await?;
    let outcome = async {
        let current = load(&tenant, id).await?;
        let event_types = match body.event_types.clone() {
            Some(types) => types,
            None => current.event_types.clone(),
        };
        let description = match body.description.clone() {
            Some(description) => description,
            None => current.description.clone(),
        };
        // The key it signs with is kept; one is made only when there is
        // none, and `v1a: false` drops it.
        let keep_key = body.v1a.is_none() || (body.v1a == Some(true) && current.v1a);
        let (signing_key, public_key) = match fresh_key.clone() {
            Some((sealed, public)) => (db::text(sealed), db::text(public)),
            None => (Value::Null, Value::Null),
        };
        let enabled = body
            .enabled
            .map_or(Value::Null, |on| db::int(i64::from(on)));
        // The SET expressions read the row as it was: `url <> ?2` is
        // whether the URL changes.
        tenant
            .run(
                "UPDATE webhook_endpoints SET url = ?2, description = ?3, event_types = ?4,
                     signing_key = CASE WHEN ?5 = 1 THEN signing_key ELSE ?6 END,
                     public_key = CASE WHEN ?5 = 1 THEN public_key ELSE ?10 END,
                     disabled_reason = CASE WHEN ?7 = 1 THEN NULL
                                            WHEN ?7 = 0 AND enabled = 1 THEN 'admin'
                                            ELSE disabled_reason END,
                     disabled_at = CASE WHEN ?7 = 1 THEN NULL
                                        WHEN ?7 = 0 AND enabled = 1 THEN ?8
                                        ELSE disabled_at END,
                     failing_since = CASE WHEN ?7 = 1 AND enabled = 0 THEN NULL
                                          WHEN url <> ?2 THEN NULL
                                          ELSE failing_since END,
                     enabled = COALESCE(?7, enabled),
                     updated_at = ?8
                 WHERE org_id = ?1 AND endpoint_id = ?9 AND deleted_at IS NULL",
                vec![
                    db::text(body.url.clone().flatten().unwrap_or(current.url)),
                    db::opt_text(description),
                    types_value(event_types),
                    db::int(i64::from(keep_key)),
                    signing_key,
                    enabled,
                    db::int(unix_now()),
                    db::text(id),
                    public_key,
                ],
            )
            .await
    }
    .await;
    store::end(&caller.conn, outcome.is_ok()).await?;
    outcome?;
    let endpoint = load(&tenant, id).await?;
    Ok(response::json(200, &endpoint, request_id))
}

/// `DELETE /v1/webhooks/endpoints/{id}`: nothing more is delivered to it
/// and its secrets are erased; its messages and their attempts stay
/// readable at `…/{id}/messages`.
pub async fn delete(req: Request, id: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = admin(&req).await?;
    let tenant = caller.tenant()?;
    let changed = tenant
        .exec(
            "UPDATE webhook_endpoints SET deleted_at = ?2, enabled = 0, secret = '',
                 previous_secret = NULL, previous_expires_at = NULL, signing_key = NULL,
                 public_key = NULL, updated_at = ?2
             WHERE org_id = ?1 AND endpoint_id = ?3 AND deleted_at IS NULL",
            vec![db::int(unix_now()), db::text(id)],
        )
        .await?;
    if changed == 0 {
        return Err(no_endpoint());
    }
    Ok(response::no_content(request_id))
}
