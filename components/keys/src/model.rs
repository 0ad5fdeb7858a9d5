//! Keys as stored and shown, who may manage them, and the request bodies.

use gatehouse_auth::access::{SubjectType, grants_of};
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json::Validate;
use gatehouse_http::principal::{Principal, Subject};
use gatehouse_http::{ErrorCode, FieldError, Problem};
use serde::{Deserialize, Serialize};
use spin_sdk::sqlite::RowResult;

/// The permission that manages every key of the org.
pub const MANAGE: &str = "keys:manage";
/// The permission that verifies keys.
pub const VERIFY: &str = "keys:verify";
/// The prefix of keys that name none.
pub const DEFAULT_PREFIX: &str = "gk";
/// Prefixes other Gatehouse tokens use, which keys may not.
const RESERVED_PREFIXES: [&str; 5] = ["ghs", "gvt", "grt", "ginv", "gmc"];
/// The longest grace period a rotation may give the old secret.
pub const MAX_GRACE_SECONDS: i64 = 30 * 24 * 3600;

/// What the caller may do with the org's keys.
pub struct Access {
    /// The caller's principal.
    pub principal: Principal,
    /// The user the caller acts for: the signed-in user, or a key's owner
    /// (who becomes the owner of keys it creates).
    pub user_id: String,
    /// Set when the caller is an API key: its id.
    pub calling_key: Option<String>,
    /// May manage every key, grant any role and create inheriting keys.
    pub manages_all: bool,
}

impl Access {
    /// From an authenticated principal acting in an org.
    pub fn of(principal: Principal) -> Result<Access, Problem> {
        principal.require_org()?;
        // A key made while acting as a member would outlive the acting and
        // its uses would not be audited.
        if principal.acting_as.is_some() {
            return Err(Problem::new(ErrorCode::Forbidden)
                .detail("API keys cannot be used or managed while acting as another member"));
        }
        let (user_id, calling_key) = match &principal.subject {
            Subject::User { id } => (id.clone(), None),
            Subject::ApiKey { id, owner_user_id } => {
                (owner_user_id.clone().unwrap_or_default(), Some(id.clone()))
            }
            Subject::Service { .. } | Subject::External { .. } => {
                return Err(
                    Problem::new(ErrorCode::Forbidden).detail("services cannot manage API keys")
                );
            }
        };
        let manages_all = principal.is_org_admin() || principal.has_permission(MANAGE);
        Ok(Access {
            principal,
            user_id,
            calling_key,
            manages_all,
        })
    }

    /// Whether the caller may verify keys.
    pub fn may_verify(&self) -> bool {
        self.manages_all || self.principal.has_permission(VERIFY)
    }

    /// 403 unless the caller may create keys: any signed-in member may
    /// (for themselves); an API key needs `keys:manage`, so a key never
    /// mints keys on its owner's behalf by itself.
    pub fn require_may_create(&self) -> Result<(), Problem> {
        if self.calling_key.is_none() || self.manages_all {
            Ok(())
        } else {
            Err(Problem::new(ErrorCode::Forbidden)
                .detail("an API key needs the keys:manage permission to manage keys"))
        }
    }

    /// Whether the caller may change `key` (404 otherwise: a key the
    /// caller may not manage is not shown to exist). Members manage the
    /// keys they created; API keys manage keys only with `keys:manage`, and
    /// never themselves, so no key can lift its own limits.
    pub fn require_manages(&self, key: &ApiKey) -> Result<(), Problem> {
        let allowed = match &self.calling_key {
            Some(own) => self.manages_all && *own != key.id,
            None => self.manages_all || key.owner_user_id == self.user_id,
        };
        if allowed { Ok(()) } else { Err(no_key()) }
    }

    /// 403 unless the caller may grant `role` to a key: admins and key
    /// managers grant any role of the org, others only roles they hold.
    pub fn require_may_grant(&self, role: &str) -> Result<(), Problem> {
        if self.manages_all || self.principal.roles.iter().any(|r| r == role) {
            Ok(())
        } else {
            Err(Problem::new(ErrorCode::Forbidden).detail(format!(
                "a key's roles must be among your own: you do not hold {role}"
            )))
        }
    }
}

/// A key that does not exist, or that the caller may not see.
pub fn no_key() -> Problem {
    Problem::not_found().detail("no such key")
}

/// A key's rate limit.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Requests per window, at least 1.
    pub limit: i64,
    /// The window in seconds, 1 to 86,400.
    pub window_seconds: i64,
}

/// A key as its managers see it (never with its secret).
#[derive(Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub start: String,
    pub owner_user_id: String,
    pub roles: Vec<String>,
    pub inherits: bool,
    pub expires_at: Option<i64>,
    pub not_before: Option<i64>,
    pub ratelimit: Option<RateLimitSpec>,
    pub remaining: Option<i64>,
    pub metadata: Option<serde_json::Value>,
    pub status: &'static str,
    pub created_at: i64,
    pub updated_at: i64,
    pub revoked_at: Option<i64>,
}

/// Columns `ApiKey::from_row` reads, over `api_keys k`.
pub const KEY_COLUMNS: &str = "k.key_id, k.name, k.owner_user_id, k.inherits, k.expires_at, k.not_before,
    k.ratelimit_limit, k.ratelimit_window, k.remaining, k.metadata, k.created_at, k.updated_at, k.revoked_at,
    (SELECT s.start FROM api_key_secrets s WHERE s.key_id = k.key_id ORDER BY s.expires_at IS NOT NULL, s.created_at DESC LIMIT 1)";

impl ApiKey {
    /// Reads the [`KEY_COLUMNS`].
    pub fn from_row(row: &RowResult, now: i64) -> ApiKey {
        let expires_at = db::get_int(row, 4);
        let revoked_at = db::get_int(row, 12);
        let status = match (revoked_at, expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(t)) if t <= now => "expired",
            _ => "active",
        };
        ApiKey {
            id: db::get_text(row, 0),
            name: db::get_text(row, 1),
            start: db::get_text(row, 13),
            owner_user_id: db::get_text(row, 2),
            roles: Vec::new(),
            inherits: db::get_int(row, 3) == Some(1),
            expires_at,
            not_before: db::get_int(row, 5),
            ratelimit: db::get_int(row, 6).map(|limit| RateLimitSpec {
                limit,
                window_seconds: db::get_int(row, 7).unwrap_or(1),
            }),
            remaining: db::get_int(row, 8),
            metadata: db::get_json(row, 9),
            status,
            created_at: db::get_int(row, 10).unwrap_or_default(),
            updated_at: db::get_int(row, 11).unwrap_or_default(),
            revoked_at,
        }
    }

    /// Fills in the key's own roles.
    pub async fn with_roles(
        mut self,
        tenant: &Tenant<'_>,
        conn: &spin_sdk::sqlite::Connection,
    ) -> Result<ApiKey, Problem> {
        self.roles = grants_of(conn, tenant.org_id(), SubjectType::ApiKey, &self.id)
            .await?
            .roles;
        Ok(self)
    }
}

/// The live (not revoked) key named `name`, or 404.
pub async fn load(tenant: &Tenant<'_>, name: &str, now: i64) -> Result<ApiKey, Problem> {
    let rows = tenant
        .query(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.org_id = ?1 AND k.name = ? AND k.revoked_at IS NULL"),
            vec![db::text(name)],
        )
        .await?;
    rows.first()
        .map(|r| ApiKey::from_row(r, now))
        .ok_or_else(no_key)
}

/// The role of the org named `name`: its id, or 422 at `pointer`.
pub async fn role_id(tenant: &Tenant<'_>, name: &str, pointer: &str) -> Result<String, Problem> {
    let rows = tenant
        .query(
            "SELECT role_id FROM roles WHERE org_id = ?1 AND name = ?",
            vec![db::text(name)],
        )
        .await?;
    rows.first().map(|r| db::get_text(r, 0)).ok_or_else(|| {
        Problem::new(ErrorCode::ValidationFailed)
            .detail("the request names a role this organization does not have")
            .errors(vec![FieldError::new(
                pointer,
                "not_found",
                format!("no role {name} in this organization"),
            )])
    })
}

fn push(errors: &mut Vec<FieldError>, pointer: &str, code: &str, message: &str) {
    errors.push(FieldError::new(pointer, code, message));
}

/// Checks a key name: 1 to 64 of letters, digits, `-`, `_` and `.`.
pub fn check_name(errors: &mut Vec<FieldError>, name: &str) {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('$')
        && !name.bytes().all(|b| b == b'.');
    if !ok {
        push(
            errors,
            "/name",
            "invalid_format",
            "name must be 1 to 64 letters, digits, '-', '_' or '.' (not only dots)",
        );
    }
}

/// Checks the shared optional settings of create, import and update.
pub fn check_settings(errors: &mut Vec<FieldError>, settings: &Settings) {
    if let (Some(Some(nb)), Some(Some(exp))) = (settings.not_before, settings.expires_at)
        && nb >= exp
    {
        push(
            errors,
            "/not_before",
            "invalid_range",
            "not_before must be before expires_at",
        );
    }
    if let Some(Some(limit)) = settings.ratelimit {
        if limit.limit < 1 {
            push(
                errors,
                "/ratelimit/limit",
                "invalid_range",
                "limit must be at least 1",
            );
        }
        if !(1..=86_400).contains(&limit.window_seconds) {
            push(
                errors,
                "/ratelimit/window_seconds",
                "invalid_range",
                "window_seconds must be 1 to 86400",
            );
        }
    }
    if let Some(Some(remaining)) = settings.remaining
        && remaining < 0
    {
        push(
            errors,
            "/remaining",
            "invalid_range",
            "remaining must not be negative",
        );
    }
    if let Some(Some(meta)) = &settings.metadata {
        if !meta.is_object() {
            push(
                errors,
                "/metadata",
                "invalid_type",
                "metadata must be an object",
            );
        } else if meta.to_string().len() > 4096 {
            push(
                errors,
                "/metadata",
                "too_large",
                "metadata must be at most 4 KiB as JSON",
            );
        }
    }
}

/// Optional settings a key has: `None` leaves one as it is, `Some(None)`
/// (JSON `null` in an update) clears it.
#[derive(Debug, Default)]
pub struct Settings {
    pub expires_at: Option<Option<i64>>,
    pub not_before: Option<Option<i64>>,
    pub ratelimit: Option<Option<RateLimitSpec>>,
    pub remaining: Option<Option<i64>>,
    pub metadata: Option<Option<serde_json::Value>>,
}

fn some<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// `POST /v1/keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub inherit: bool,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub not_before: Option<i64>,
    #[serde(default)]
    pub ratelimit: Option<RateLimitSpec>,
    #[serde(default)]
    pub remaining: Option<i64>,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

impl CreateKey {
    /// The settings part.
    pub fn settings(&self) -> Settings {
        Settings {
            expires_at: Some(self.expires_at),
            not_before: Some(self.not_before),
            ratelimit: Some(self.ratelimit),
            remaining: Some(self.remaining),
            metadata: Some(self.metadata.clone()),
        }
    }
}

/// Whether `prefix` may start a key: 1 to 20 of a-z, 0-9 and `_`, not
/// ending in `_`, and not (nor starting like) a prefix Gatehouse's own
/// tokens use.
pub fn valid_prefix(prefix: &str) -> bool {
    let mut errors = Vec::new();
    check_prefix(&mut errors, prefix);
    errors.is_empty()
}

/// Checks a key prefix (see [`valid_prefix`]).
pub fn check_prefix(errors: &mut Vec<FieldError>, prefix: &str) {
    let shape = (1..=20).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !prefix.ends_with('_');
    let reserved = RESERVED_PREFIXES
        .iter()
        .any(|r| prefix == *r || prefix.starts_with(&format!("{r}_")));
    if !shape || reserved {
        push(
            errors,
            "/prefix",
            "invalid_format",
            "prefix must be 1 to 20 of a-z, 0-9 and '_' (not ending in '_'), and not ghs, gvt, grt, ginv or gmc",
        );
    }
}

fn check_roles(errors: &mut Vec<FieldError>, roles: &[String], inherit: bool) {
    if roles.len() > 50 {
        push(errors, "/roles", "too_many", "at most 50 roles");
    }
    if inherit && !roles.is_empty() {
        push(
            errors,
            "/roles",
            "conflict",
            "a key that inherits its owner's permissions has no roles of its own",
        );
    }
}

impl Validate for CreateKey {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_name(&mut errors, &self.name);
        if let Some(prefix) = &self.prefix {
            check_prefix(&mut errors, prefix);
        }
        check_roles(&mut errors, &self.roles, self.inherit);
        check_settings(&mut errors, &self.settings());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `POST /v1/keys/$import`: a key another system issued, by digest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportKey {
    pub name: String,
    /// SHA-256 of the whole key, hex.
    pub hash: String,
    /// The key's first characters, for people (e.g. `sk_live_ab`).
    pub start: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub ratelimit: Option<RateLimitSpec>,
    #[serde(default)]
    pub remaining: Option<i64>,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

impl Validate for ImportKey {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_name(&mut errors, &self.name);
        if self.hash.len() != 64 || !self.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            push(
                &mut errors,
                "/hash",
                "invalid_format",
                "hash must be the SHA-256 of the key in hex (64 characters)",
            );
        }
        if !(1..=16).contains(&self.start.len()) || !self.start.is_ascii() {
            push(
                &mut errors,
                "/start",
                "invalid_length",
                "start must be 1 to 16 ASCII characters",
            );
        }
        check_roles(&mut errors, &self.roles, false);
        check_settings(
            &mut errors,
            &Settings {
                expires_at: Some(self.expires_at),
                not_before: None,
                ratelimit: Some(self.ratelimit),
                remaining: Some(self.remaining),
                metadata: Some(self.metadata.clone()),
            },
        );
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `PATCH /v1/keys/{name}`: what is absent stays, `null` clears.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "some")]
    pub expires_at: Option<Option<i64>>,
    #[serde(default, deserialize_with = "some")]
    pub not_before: Option<Option<i64>>,
    #[serde(default, deserialize_with = "some")]
    pub ratelimit: Option<Option<RateLimitSpec>>,
    #[serde(default, deserialize_with = "some")]
    pub remaining: Option<Option<i64>>,
    #[serde(default, deserialize_with = "some")]
    pub metadata: Option<Option<serde_json::Value>>,
}

impl UpdateKey {
    /// The settings part.
    pub fn settings(&self) -> Settings {
        Settings {
            expires_at: self.expires_at,
            not_before: self.not_before,
            ratelimit: self.ratelimit,
            remaining: self.remaining,
            metadata: self.metadata.clone(),
        }
    }
}

impl Validate for UpdateKey {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Some(name) = &self.name {
            check_name(&mut errors, name);
        }
        check_settings(&mut errors, &self.settings());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}
