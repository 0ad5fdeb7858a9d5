//! Creating, listing, reading, changing, rotating, importing and revoking
//! keys. The secret is shown once, at creation or rotation; the database
//! keeps its SHA-256 digest and its first characters.

use gatehouse_auth::access::SubjectType;
use gatehouse_auth::apikey::invalidate;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use gatehouse_webhook_delivery::catalog::{KEY_CREATED, KEY_REVOKED};
use identity_core::token;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;

use crate::model::{
    self, Access, ApiKey, CreateKey, DEFAULT_PREFIX, ImportKey, KEY_COLUMNS, MAX_GRACE_SECONDS,
    RateLimitSpec, UpdateKey, load, role_id,
};

/// The caller, the database and the caller's org.
pub struct Caller {
    pub access: Access,
    pub conn: Connection,
}

impl Caller {
    /// Authenticates (session token or API key) and opens the database.
    pub async fn of(req: &Request) -> Result<Caller, Problem> {
        let principal = gatehouse_auth::authenticate(req).await?;
        let access = Access::of(principal)?;
        let conn = db::open().await?;
        Ok(Caller { access, conn })
    }

    /// The tenant context of the caller's org.
    pub fn tenant(&self) -> Result<Tenant<'_>, Problem> {
        Tenant::for_principal(&self.conn, &self.access.principal)
    }
}

fn name_taken() -> Problem {
    Problem::new(ErrorCode::Conflict)
        .detail("a live key with this name exists")
        .errors(vec![FieldError::new(
            "/name",
            "taken",
            "the name is taken by a live key",
        )])
}

#[derive(Serialize)]
struct Created {
    /// The secret: shown this once.
    key: String,
    #[serde(flatten)]
    api_key: ApiKey,
}

struct NewKey<'a> {
    name: &'a str,
    inherits: bool,
    roles: &'a [String],
    expires_at: Option<i64>,
    not_before: Option<i64>,
    ratelimit: Option<RateLimitSpec>,
    remaining: Option<i64>,
    metadata: Option<&'a serde_json::Value>,
    digest: &'a str,
    start: &'a str,
    imported: bool,
}

/// Checks the roles, stores the key, its secret and its role grants, and
/// publishes `key.created`; returns the key's id. Run it in a
/// [`transaction`].
async fn insert(
    caller: &Caller,
    tenant: &Tenant<'_>,
    key: NewKey<'_>,
    now: i64,
) -> Result<String, Problem> {
    let mut role_ids = Vec::new();
    for (i, role) in key.roles.iter().enumerate() {
        let id = role_id(tenant, role, &format!("/roles/{i}")).await?;
        caller.access.require_may_grant(role)?;
        role_ids.push(id);
    }
    let key_id = db::new_id("key_");
    let inserted = tenant
        .exec(
            "INSERT INTO api_keys (org_id, key_id, name, owner_user_id, inherits, expires_at, not_before, ratelimit_limit, ratelimit_window, remaining, metadata, created_at, updated_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                db::text(&key_id),
                db::text(key.name),
                db::text(&caller.access.user_id),
                db::int(i64::from(key.inherits)),
                opt_int(key.expires_at),
                opt_int(key.not_before),
                opt_int(key.ratelimit.map(|r| r.limit)),
                opt_int(key.ratelimit.map(|r| r.window_seconds)),
                opt_int(key.remaining),
                db::opt_text(key.metadata.map(|m| m.to_string())),
                db::int(now),
                db::int(now),
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(name_taken());
    }
    let secret = tenant
        .exec(
            "INSERT INTO api_key_secrets (org_id, digest, key_id, start, imported, created_at) VALUES (?1, ?, ?, ?, ?, ?)",
            vec![
                db::text(key.digest),
                db::text(&key_id),
                db::text(key.start),
                db::int(i64::from(key.imported)),
                db::int(now),
            ],
        )
        .await;
    if secret.is_err() {
        // The digest is taken: undo the key row so nothing half-made remains.
        tenant
            .exec(
                "DELETE FROM api_keys WHERE org_id = ?1 AND key_id = ?",
                vec![db::text(&key_id)],
            )
            .await?;
        return Err(Problem::new(ErrorCode::Conflict).detail("this key cannot be imported"));
    }
    for role in role_ids {
        grant(tenant, &role, &key_id, &caller.access.user_id, now).await?;
    }
    let data = serde_json::json!({"key": {
        "id": key_id,
        "name": key.name,
        "start": key.start,
        "owner_user_id": caller.access.user_id,
        "roles": key.roles,
        "inherits": key.inherits,
        "expires_at": key.expires_at,
        "imported": key.imported,
    }});
    gatehouse_webhook_delivery::publish(tenant, &caller.conn, KEY_CREATED, &data, now).await?;
    Ok(key_id)
}

/// Grants a role to a key (nothing when held already).
pub async fn grant(
    tenant: &Tenant<'_>,
    role_id: &str,
    key_id: &str,
    by: &str,
    now: i64,
) -> Result<(), Problem> {
    tenant
        .exec(
            "INSERT INTO role_grants (org_id, role_id, subject_type, subject_id, granted_by, created_at) VALUES (?1, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
            vec![
                db::text(role_id),
                db::text(SubjectType::ApiKey.as_str()),
                db::text(key_id),
                db::text(by),
                db::int(now),
            ],
        )
        .await?;
    Ok(())
}

fn opt_int(v: Option<i64>) -> spin_sdk::sqlite::Value {
    v.map(db::int).unwrap_or(spin_sdk::sqlite::Value::Null)
}

/// The prefix of a key whose first characters are `start` (imported keys,
/// whose shape is their old system's, rotate to the default prefix).
fn prefix_of(start: &str) -> &str {
    start
        .len()
        .checked_sub(5)
        .filter(|&cut| cut > 0 && start.is_char_boundary(cut) && start[cut..].starts_with('_'))
        .map(|cut| &start[..cut])
        .filter(|prefix| model::valid_prefix(prefix))
        .unwrap_or(DEFAULT_PREFIX)
}

/// The key's first characters: its prefix and four of its random ones.
fn start_of(secret: &str, prefix: &str) -> String {
    secret.chars().take(prefix.len() + 5).collect()
}

async fn shown(
    caller: &Caller,
    tenant: &Tenant<'_>,
    name: &str,
    now: i64,
) -> Result<ApiKey, Problem> {
    load(tenant, name, now)
        .await?
        .with_roles(tenant, &caller.conn)
        .await
}

/// `POST /v1/keys`.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant()?;
    caller.access.require_may_create()?;
    // No Idempotency-Key record: it would keep the secret at rest. A retry
    // with the same name answers 409 instead of making a second key.
    let body: CreateKey = json::read_json(req, json::DEFAULT_LIMIT).await?;
    create_key(&caller, &tenant, body, request_id).await
}

async fn create_key(
    caller: &Caller,
    tenant: &Tenant<'_>,
    body: CreateKey,
    request_id: &str,
) -> Result<Response, Problem> {
    if body.inherit && !caller.access.manages_all {
        return Err(Problem::new(ErrorCode::Forbidden)
            .detail("only org admins and holders of keys:manage may create keys that inherit their permissions"));
    }
    let prefix = body.prefix.as_deref().unwrap_or(DEFAULT_PREFIX);
    let issued = token::issue(&format!("{prefix}_"));
    let start = start_of(&issued.secret, prefix);
    let now = unix_now();
    let new = NewKey {
        name: &body.name,
        inherits: body.inherit,
        roles: &body.roles,
        expires_at: body.expires_at,
        not_before: body.not_before,
        ratelimit: body.ratelimit,
        remaining: body.remaining,
        metadata: body.metadata.as_ref(),
        digest: &issued.digest,
        start: &start,
        imported: false,
    };
    db::transaction(&caller.conn, insert(caller, tenant, new, now)).await?;
    let created = Created {
        key: issued.secret,
        api_key: shown(caller, tenant, &body.name, now).await?,
    };
    Ok(response::json(201, &created, request_id))
}

/// `POST /v1/keys/$import`: org admins and key managers bring in keys by
/// their SHA-256 digest, so clients holding them keep working.
pub async fn import(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant()?;
    if !caller.access.manages_all {
        return Err(Problem::new(ErrorCode::Forbidden)
            .detail("only org admins and holders of keys:manage may import keys"));
    }
    let body: ImportKey = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let now = unix_now();
    let digest = body.hash.to_ascii_lowercase();
    let new = NewKey {
        name: &body.name,
        inherits: false,
        roles: &body.roles,
        expires_at: body.expires_at,
        not_before: None,
        ratelimit: body.ratelimit,
        remaining: body.remaining,
        metadata: body.metadata.as_ref(),
        digest: &digest,
        start: &body.start,
        imported: true,
    };
    db::transaction(&caller.conn, insert(&caller, &tenant, new, now)).await?;
    let key = shown(&caller, &tenant, &body.name, now).await?;
    Ok(response::json(201, &key, request_id))
}

#[derive(Serialize, Deserialize)]
struct Position {
    created_at: i64,
    id: String,
}

/// `GET /v1/keys[?status=revoked|all]`: live keys (or revoked ones, or
/// both), newest first; members see their own.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant()?;
    let page = PageRequest::from_query(req.uri().query())?;
    let after: Option<Position> = page.json_cursor()?;
    let status = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|p| p.strip_prefix("status="))
        .unwrap_or("active")
        .to_string();
    let state = match status.as_str() {
        "active" => "k.revoked_at IS NULL",
        "revoked" => "k.revoked_at IS NOT NULL",
        "all" => "1 = 1",
        _ => {
            return Err(Problem::new(ErrorCode::InvalidQuery)
                .detail("status must be active, revoked or all")
                .errors(vec![FieldError::new(
                    "/status",
                    "invalid",
                    "status must be active, revoked or all",
                )]));
        }
    };
    let (after_created, after_id) =
        after.map_or((i64::MAX, String::new()), |p| (p.created_at, p.id));
    // Managers see every key; others, theirs (?5 empty means everyone's).
    let owner = if caller.access.manages_all {
        String::new()
    } else {
        caller.access.user_id.clone()
    };
    let rows = tenant
        .query(
            &format!(
                "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.org_id = ?1 AND {state}
                 AND (?5 = '' OR k.owner_user_id = ?5)
                 AND (k.created_at < ?2 OR (k.created_at = ?2 AND k.key_id < ?3))
                 ORDER BY k.created_at DESC, k.key_id DESC LIMIT ?4"
            ),
            vec![
                db::int(after_created),
                db::text(&after_id),
                db::int(i64::from(page.fetch_count())),
                db::text(&owner),
            ],
        )
        .await?;
    let now = unix_now();
    let mut keys = Vec::with_capacity(rows.len());
    for row in &rows {
        keys.push(
            ApiKey::from_row(row, now)
                .with_roles(&tenant, &caller.conn)
                .await?,
        );
    }
    let page = page.page(keys, |k| {
        json_position(&Position {
            created_at: k.created_at,
            id: k.id.clone(),
        })
    });
    Ok(response::json(200, &page, request_id))
}

/// `GET /v1/keys/{name}`.
pub async fn get(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant()?;
    let key = shown(&caller, &tenant, name, unix_now()).await?;
    caller.access.require_manages(&key)?;
    Ok(response::json(200, &key, request_id))
}

/// `PATCH /v1/keys/{name}`: absent fields stay, `null` clears.
pub async fn update(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant()?;
    let now = unix_now();
    let key = load(&tenant, name, now).await?;
    caller.access.require_manages(&key)?;
    let body: UpdateKey = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let expires_at = body.expires_at.unwrap_or(key.expires_at);
    let not_before = body.not_before.unwrap_or(key.not_before);
    if let (Some(nb), Some(exp)) = (not_before, expires_at)
        && nb >= exp
    {
        return Err(Problem::new(ErrorCode::ValidationFailed)
            .detail("the request body has invalid fields")
            .errors(vec![FieldError::new(
                "/not_before",
                "invalid_range",
                "not_before must be before expires_at",
            )]));
    }
    let ratelimit = body.ratelimit.unwrap_or(key.ratelimit);
    let remaining = body.remaining.unwrap_or(key.remaining);
    let metadata = body.metadata.clone().unwrap_or(key.metadata.clone());
    let new_name = body.name.clone().unwrap_or(key.name.clone());
    let changed = tenant
        .exec(
            "UPDATE api_keys SET name = ?2, expires_at = ?3, not_before = ?4, ratelimit_limit = ?5, ratelimit_window = ?6,
                 remaining = ?7, metadata = ?8, updated_at = ?9
             WHERE org_id = ?1 AND key_id = ?10 AND revoked_at IS NULL",
            vec![
                db::text(&new_name),
                opt_int(expires_at),
                opt_int(not_before),
                opt_int(ratelimit.map(|r| r.limit)),
                opt_int(ratelimit.map(|r| r.window_seconds)),
                opt_int(remaining),
                db::opt_text(metadata.map(|m| m.to_string())),
                db::int(now),
                db::text(&key.id),
            ],
        )
        .await
        // The live-name index is the only constraint a rename can break.
        .map_err(|problem| {
            if new_name != key.name {
                name_taken()
            } else {
                problem
            }
        })?;
    if changed == 0 {
        return Err(model::no_key());
    }
    invalidate(&key.id).await?;
    let key = shown(&caller, &tenant, &new_name, now).await?;
    Ok(response::json(200, &key, request_id))
}

/// `DELETE /v1/keys/{name}`: revokes the key; it fails its very next
/// verification and stays on record (`GET /v1/keys?status=revoked`).
pub async fn revoke(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant()?;
    let now = unix_now();
    let key = load(&tenant, name, now).await?;
    caller.access.require_manages(&key)?;
    let revoked = async {
        let changed = tenant
            .exec(
                "UPDATE api_keys SET revoked_at = ?2, updated_at = ?2 WHERE org_id = ?1 AND key_id = ?3 AND revoked_at IS NULL",
                vec![db::int(now), db::text(&key.id)],
            )
            .await?;
        // Of two revocations racing, the one that changed the row tells.
        if changed == 1 {
            let data = serde_json::json!({
                "key": {"id": key.id, "name": key.name, "start": key.start, "owner_user_id": key.owner_user_id},
                "revoked_by": caller.access.user_id,
            });
            gatehouse_webhook_delivery::publish(&tenant, &caller.conn, KEY_REVOKED, &data, now)
                .await?;
        }
        Ok(())
    };
    db::transaction(&caller.conn, revoked).await?;
    invalidate(&key.id).await?;
    Ok(response::no_content(request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// Seconds the old secret keeps working; 0 stops it at once.
    #[serde(default)]
    grace_seconds: i64,
}

impl Validate for Rotate {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        if (0..=MAX_GRACE_SECONDS).contains(&self.grace_seconds) {
            Ok(())
        } else {
            Err(vec![FieldError::new(
                "/grace_seconds",
                "invalid_range",
                format!("grace_seconds must be 0 to {MAX_GRACE_SECONDS}"),
            )])
        }
    }
}

/// `POST /v1/keys/{name}/$rotate`: a new secret, shown once; the current
/// one keeps working for `grace_seconds`, then stops. Secrets from earlier
/// rotations stop at once.
pub async fn rotate(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = Caller::of(&req).await?;
    let tenant = caller.tenant()?;
    let now = unix_now();
    let key = load(&tenant, name, now).await?;
    caller.access.require_manages(&key)?;
    let body: Rotate = json::read_json(req, json::DEFAULT_LIMIT).await?;
    // The claim: one statement gives the current secret its grace period.
    // Of two rotations racing, only one finds a current secret.
    let claimed = tenant
        .query(
            "UPDATE api_key_secrets SET expires_at = ?2 WHERE org_id = ?1 AND key_id = ?3 AND expires_at IS NULL RETURNING digest",
            vec![db::int(now + body.grace_seconds), db::text(&key.id)],
        )
        .await?;
    let Some(previous) = claimed.first().map(|r| db::get_text(r, 0)) else {
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("the key is being rotated by another request; read it and retry"));
    };
    // Grace periods of earlier rotations end now.
    tenant
        .exec(
            "UPDATE api_key_secrets SET expires_at = ?2 WHERE org_id = ?1 AND key_id = ?3 AND digest <> ?4 AND expires_at > ?2",
            vec![db::int(now), db::text(&key.id), db::text(&previous)],
        )
        .await?;
    let prefix = prefix_of(&key.start);
    let issued = token::issue(&format!("{prefix}_"));
    tenant
        .exec(
            "INSERT INTO api_key_secrets (org_id, digest, key_id, start, imported, created_at) VALUES (?1, ?, ?, ?, 0, ?)",
            vec![
                db::text(&issued.digest),
                db::text(&key.id),
                db::text(start_of(&issued.secret, prefix)),
                db::int(now),
            ],
        )
        .await?;
    tenant
        .exec(
            "UPDATE api_keys SET updated_at = ?2 WHERE org_id = ?1 AND key_id = ?3",
            vec![db::int(now), db::text(&key.id)],
        )
        .await?;
    invalidate(&key.id).await?;
    let rotated = serde_json::json!({
        "key": issued.secret,
        "id": key.id,
        "name": key.name,
        "start": start_of(&issued.secret, prefix),
        "previous_expires_at": now + body.grace_seconds,
    });
    Ok(response::json(200, &rotated, request_id))
}
