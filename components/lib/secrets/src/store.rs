//! The Spin side: data keys made and opened, values written, read,
//! listed and deleted, inside the org of a tenant context.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use identity_core::sealed::SealingKey;
use serde::Serialize;

use crate::envelope::{KEY_PURPOSE, new_data_key, open_data_key, value_context};
use crate::scope::{Scope, parse_reference};

/// The keys data keys are sealed with: the current master key's, and
/// the previous master key's while a rotation of it is under way
/// (`previous_master_key`).
pub(crate) async fn keks() -> Result<(SealingKey, Option<SealingKey>), Problem> {
    keks_for("secrets are not configured on this deployment (no master key)").await
}

/// [`keks`], answering 503 with `detail` without a usable master key.
pub(crate) async fn keks_for(detail: &str) -> Result<(SealingKey, Option<SealingKey>), Problem> {
    let current = gatehouse_auth::sealing::sealing_key(KEY_PURPOSE, detail).await?;
    let previous = previous_master()
        .await
        .and_then(|text| SealingKey::derive(&text, KEY_PURPOSE).ok());
    Ok((current, previous))
}

/// The `previous_master_key` variable, unless empty.
pub(crate) async fn previous_master() -> Option<String> {
    spin_sdk::variables::get("previous_master_key")
        .await
        .ok()
        .filter(|text| !text.trim().is_empty())
}

/// The org's newest data key, made now (version 1) if it has none.
pub(crate) async fn newest_key(
    tenant: &Tenant<'_>,
    now: i64,
) -> Result<(i64, SealingKey), Problem> {
    newest_key_under(tenant, &keks().await?, now).await
}

/// [`newest_key`], with the master key's derived keys at hand.
pub(crate) async fn newest_key_under(
    tenant: &Tenant<'_>,
    kek: &(SealingKey, Option<SealingKey>),
    now: i64,
) -> Result<(i64, SealingKey), Problem> {
    let newest = tenant
        .query(
            "SELECT version, wrapped FROM org_data_keys WHERE org_id = ?1 ORDER BY version DESC LIMIT 1",
            vec![],
        )
        .await?;
    if let Some(row) = newest.first() {
        let version = db::get_int(row, 0).unwrap_or(1);
        return opened(kek, tenant.org_id(), version, &db::get_text(row, 1)).map(|k| (version, k));
    }
    let (key, wrapped) = new_data_key(&kek.0, tenant.org_id(), 1);
    // Two first writes at once: the first key made stays the org's.
    tenant
        .run(
            "INSERT INTO org_data_keys (org_id, version, wrapped, created_at) VALUES (?1, 1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            vec![db::text(wrapped), db::int(now)],
        )
        .await?;
    let stored = key_of(tenant, kek, 1).await?;
    Ok((1, stored.unwrap_or(key)))
}

/// The org's data key `version`, opened; `None` when it has none.
pub(crate) async fn key_of(
    tenant: &Tenant<'_>,
    kek: &(SealingKey, Option<SealingKey>),
    version: i64,
) -> Result<Option<SealingKey>, Problem> {
    let rows = tenant
        .query(
            "SELECT wrapped FROM org_data_keys WHERE org_id = ?1 AND version = ?2",
            vec![db::int(version)],
        )
        .await?;
    rows.first()
        .map(|row| opened(kek, tenant.org_id(), version, &db::get_text(row, 0)))
        .transpose()
}

/// A data key opened under the current master key, or the previous one
/// while a rotation of it is under way.
fn opened(
    (current, previous): &(SealingKey, Option<SealingKey>),
    org_id: &str,
    version: i64,
    wrapped: &str,
) -> Result<SealingKey, Problem> {
    open_data_key(current, wrapped, org_id, version)
        .or_else(|| {
            previous
                .as_ref()
                .and_then(|p| open_data_key(p, wrapped, org_id, version))
        })
        .ok_or_else(|| {
            eprintln!("secrets: data key {version} of {org_id} opens under no master key");
            Problem::internal()
        })
}

/// A secret's metadata: never its value.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// `sec_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `org`, `team` or `user`.
    pub scope: &'static str,
    /// The team's or user's id (the org's for the org scope).
    pub scope_id: String,
    /// What it is for.
    pub description: Option<String>,
    /// The data key version sealing it.
    pub key_version: i64,
    /// Who wrote it first.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// When its value was last read, if ever.
    pub last_read_at: Option<i64>,
}

const META_COLUMNS: &str = "secret_id, name, scope_id, description, key_version, created_by, created_at, updated_at, last_read_at";

fn meta_of(row: &spin_sdk::sqlite::RowResult, scope: &Scope) -> Meta {
    Meta {
        id: db::get_text(row, 0),
        name: db::get_text(row, 1),
        scope: scope.kind(),
        scope_id: db::get_text(row, 2),
        description: db::get_opt_text(row, 3),
        key_version: db::get_int(row, 4).unwrap_or(1),
        created_by: db::get_text(row, 5),
        created_at: db::get_int(row, 6).unwrap_or(0),
        updated_at: db::get_int(row, 7).unwrap_or(0),
        last_read_at: db::get_int(row, 8),
    }
}

/// Writes `value` as `name` in `scope`, sealed with the org's newest data
/// key: `(created, meta)`.
pub async fn put(
    tenant: &Tenant<'_>,
    scope: &Scope,
    name: &str,
    value: &[u8],
    description: Option<&str>,
    actor: &str,
    now: i64,
) -> Result<(bool, Meta), Problem> {
    let (version, key) = newest_key(tenant, now).await?;
    let org = tenant.org_id().to_string();
    let sealed = key.seal(value, &value_context(&org, scope, name, version));
    let existed = !tenant
        .query(
            "SELECT 1 FROM secrets WHERE org_id = ?1 AND scope_type = ?2 AND scope_id = ?3 AND name = ?4",
            vec![db::text(scope.kind()), db::text(scope.id(&org)), db::text(name)],
        )
        .await?
        .is_empty();
    tenant
        .run(
            "INSERT INTO secrets (org_id, secret_id, scope_type, scope_id, name, key_version, sealed, description,
                                  created_by, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
             ON CONFLICT (org_id, scope_type, scope_id, name) DO UPDATE
             SET key_version = excluded.key_version, sealed = excluded.sealed,
                 description = COALESCE(excluded.description, description), updated_at = excluded.updated_at",
            vec![
                db::text(db::new_id("sec_")),
                db::text(scope.kind()),
                db::text(scope.id(&org)),
                db::text(name),
                db::int(version),
                db::text(sealed),
                db::opt_text(description.map(str::to_string)),
                db::text(actor),
                db::int(now),
            ],
        )
        .await?;
    let meta = find(tenant, scope, name)
        .await?
        .ok_or_else(Problem::internal)?;
    Ok((!existed, meta))
}

async fn find(tenant: &Tenant<'_>, scope: &Scope, name: &str) -> Result<Option<Meta>, Problem> {
    let org = tenant.org_id().to_string();
    let rows = tenant
        .query(
            &format!(
                "SELECT {META_COLUMNS} FROM secrets WHERE org_id = ?1 AND scope_type = ?2 AND scope_id = ?3 AND name = ?4"
            ),
            vec![db::text(scope.kind()), db::text(scope.id(&org)), db::text(name)],
        )
        .await?;
    Ok(rows.first().map(|row| meta_of(row, scope)))
}

/// The value of `name` in `scope` and its metadata; `None` when there is
/// no such secret. A value that does not open (moved from another row, or
/// its data key gone) is an error, never another row's value.
pub async fn read(
    tenant: &Tenant<'_>,
    scope: &Scope,
    name: &str,
    now: i64,
) -> Result<Option<(Vec<u8>, Meta)>, Problem> {
    let org = tenant.org_id().to_string();
    let rows = tenant
        .query(
            &format!(
                "SELECT {META_COLUMNS}, sealed FROM secrets WHERE org_id = ?1 AND scope_type = ?2 AND scope_id = ?3 AND name = ?4"
            ),
            vec![db::text(scope.kind()), db::text(scope.id(&org)), db::text(name)],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let meta = meta_of(row, scope);
    let kek = keks().await?;
    let key = key_of(tenant, &kek, meta.key_version)
        .await?
        .ok_or_else(|| {
            eprintln!("secrets: {org} has no data key {}", meta.key_version);
            Problem::internal()
        })?;
    let context = value_context(&org, scope, name, meta.key_version);
    let value = key.open(&db::get_text(row, 9), &context).ok_or_else(|| {
        eprintln!(
            "secrets: secret {} of {org} does not open for its row",
            meta.id
        );
        Problem::internal()
    })?;
    tenant
        .run(
            "UPDATE secrets SET last_read_at = ?2 WHERE org_id = ?1 AND secret_id = ?3",
            vec![db::int(now), db::text(&meta.id)],
        )
        .await?;
    Ok(Some((value, meta)))
}

/// A secret's value by reference (`org/NAME`, `team/<id>/NAME`,
/// `user/<id>/NAME`) in the tenant's org, for other capabilities (tool
/// credentials, provider tokens); `None` when the reference names none.
pub async fn read_reference(
    tenant: &Tenant<'_>,
    reference: &str,
    now: i64,
) -> Result<Option<Vec<u8>>, Problem> {
    let Some((scope, name)) = parse_reference(reference) else {
        return Ok(None);
    };
    Ok(read(tenant, &scope, name, now)
        .await?
        .map(|(value, _)| value))
}

/// Deletes `name` in `scope`; whether there was one.
pub async fn delete(tenant: &Tenant<'_>, scope: &Scope, name: &str) -> Result<bool, Problem> {
    let org = tenant.org_id().to_string();
    let gone = tenant
        .exec(
            "DELETE FROM secrets WHERE org_id = ?1 AND scope_type = ?2 AND scope_id = ?3 AND name = ?4",
            vec![db::text(scope.kind()), db::text(scope.id(&org)), db::text(name)],
        )
        .await?;
    Ok(gone > 0)
}

/// The secrets of `scope`, by name: metadata only.
pub async fn list(tenant: &Tenant<'_>, scope: &Scope) -> Result<Vec<Meta>, Problem> {
    let org = tenant.org_id().to_string();
    let rows = tenant
        .query(
            &format!(
                "SELECT {META_COLUMNS} FROM secrets WHERE org_id = ?1 AND scope_type = ?2 AND scope_id = ?3
                 ORDER BY name LIMIT 1000"
            ),
            vec![db::text(scope.kind()), db::text(scope.id(&org))],
        )
        .await?;
    Ok(rows.iter().map(|row| meta_of(row, scope)).collect())
}
