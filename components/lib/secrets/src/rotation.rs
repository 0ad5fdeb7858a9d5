//! Rotations. An org's data key: a new version seals every value written
//! from then on, and a job ([`REENCRYPT_JOB`]) seals the older values
//! again with it (its secrets, and its values in other tables: identity
//! provider and webhook secrets, the old way's included), then deletes
//! the versions nothing is sealed with any more; until then the old
//! versions still open what they sealed. The master key: with the new one
//! in `master_key` and the old one in `previous_master_key`, data keys
//! open under either, and [`rewrap_all`] seals every data key (the orgs'
//! and the deployment's) under the new one, after which the old master
//! key opens nothing; [`reseal_old_way`] then seals the values still
//! sealed straight from a master key with their owner's data key.

use std::collections::HashMap;

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use identity_core::sealed::SealingKey;
use serde_json::json;
use spin_sdk::sqlite::Connection;

use crate::envelope::{key_context, new_data_key, value_context};
use crate::scope::Scope;
use crate::store::{keks, key_of, newest_key};

/// The job that seals an org's older values with its newest data key.
pub const REENCRYPT_JOB: &str = "secrets.reencrypt";

/// Values re-sealed per statement batch.
const BATCH: i64 = 200;

/// A new data key version for the org, and the job that re-seals its
/// values with it, in one transaction: the new version.
pub async fn rotate_key(tenant: &Tenant<'_>, conn: &Connection, now: i64) -> Result<i64, Problem> {
    let (current, _) = newest_key(tenant, now).await?;
    let version = current + 1;
    let kek = keks().await?.0;
    let (_, wrapped) = new_data_key(&kek, tenant.org_id(), version);
    let org = tenant.org_id().to_string();
    db::transaction(conn, async {
        tenant
            .run(
                "INSERT INTO org_data_keys (org_id, version, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
                vec![db::int(version), db::text(wrapped.clone()), db::int(now)],
            )
            .await?;
        let policy = gatehouse_jobs::policy().await;
        gatehouse_jobs::enqueue(
            conn,
            &gatehouse_jobs::NewJob {
                kind: REENCRYPT_JOB,
                payload: json!({"org_id": org}),
                idempotency_key: &format!("{org} {version}"),
                run_at: now,
                max_attempts: policy.max_attempts,
            },
            now,
        )
        .await
        .map_err(|e| {
            eprintln!("secrets: queueing re-encryption failed: {e:?}");
            Problem::internal()
        })?;
        Ok(())
    })
    .await?;
    Ok(version)
}

/// Seals every value of the org not sealed with its newest data key with
/// it, a batch per transaction, then deletes the versions nothing is
/// sealed with: how many values it re-sealed.
pub async fn reencrypt(tenant: &Tenant<'_>, conn: &Connection, now: i64) -> Result<usize, Problem> {
    let (newest, key) = newest_key(tenant, now).await?;
    let kek = keks().await?;
    let org = tenant.org_id().to_string();
    let others = crate::reseal::org_values(tenant, conn, newest, &key).await?;
    let mut keys: HashMap<i64, SealingKey> = HashMap::new();
    let mut done = 0;
    loop {
        let rows = tenant
            .query(
                "SELECT secret_id, scope_type, scope_id, name, key_version, sealed FROM secrets
                 WHERE org_id = ?1 AND key_version < ?2 LIMIT ?3",
                vec![db::int(newest), db::int(BATCH)],
            )
            .await?;
        if rows.is_empty() {
            break;
        }
        let batch = async {
            for row in &rows {
                let version = db::get_int(row, 4).unwrap_or(1);
                if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry(version) {
                    let old = key_of(tenant, &kek, version)
                        .await?
                        .ok_or_else(Problem::internal)?;
                    slot.insert(old);
                }
                let scope = match db::get_text(row, 1).as_str() {
                    "team" => Scope::Team(db::get_text(row, 2)),
                    "user" => Scope::User(db::get_text(row, 2)),
                    _ => Scope::Org,
                };
                let name = db::get_text(row, 3);
                let value = keys[&version]
                    .open(
                        &db::get_text(row, 5),
                        &value_context(&org, &scope, &name, version),
                    )
                    .ok_or_else(|| {
                        eprintln!("secrets: a value of {org} does not open for its row");
                        Problem::internal()
                    })?;
                let sealed = key.seal(&value, &value_context(&org, &scope, &name, newest));
                // Only if nobody wrote the secret meanwhile.
                tenant
                    .run(
                        "UPDATE secrets SET sealed = ?2, key_version = ?3
                         WHERE org_id = ?1 AND secret_id = ?4 AND key_version = ?5",
                        vec![
                            db::text(sealed),
                            db::int(newest),
                            db::text(db::get_text(row, 0)),
                            db::int(version),
                        ],
                    )
                    .await?;
            }
            Ok(())
        };
        db::transaction(conn, batch).await?;
        done += rows.len();
    }
    let unused = format!(
        "DELETE FROM org_data_keys WHERE org_id = ?1 AND version < ?2
           AND version NOT IN (SELECT key_version FROM secrets WHERE org_id = ?1){}",
        crate::reseal::unused_by_other_values()
    );
    tenant.run(&unused, vec![db::int(newest)]).await?;
    Ok(done + others)
}

/// Runs a [`REENCRYPT_JOB`].
pub async fn run_job(
    conn: &Connection,
    job: &gatehouse_jobs::Job,
    policy: &gatehouse_jobs::schedule::Policy,
    now: i64,
) -> Result<gatehouse_jobs::Finished, gatehouse_jobs::JobError> {
    let outcome = match job.payload.get("org_id").and_then(|v| v.as_str()) {
        None => gatehouse_jobs::Outcome::Permanent("a re-encryption job without an org_id".into()),
        Some(org_id) => {
            let tenant = Tenant::for_job(conn, org_id, REENCRYPT_JOB);
            match reencrypt(&tenant, conn, now).await {
                Ok(_) => gatehouse_jobs::Outcome::Done,
                Err(_) => gatehouse_jobs::Outcome::Retry(
                    "the org's secrets could not all be sealed again".into(),
                ),
            }
        }
    };
    gatehouse_jobs::finish(conn, job, outcome, policy, now).await
}

/// Seals every org's data keys and the deployment's under the current
/// master key (those that open only under `previous_master_key`
/// included): how many it rewrote.
pub async fn rewrap_all(conn: &Connection) -> Result<usize, Problem> {
    let kek = keks().await?;
    let deployment = crate::deployment::rewrap(conn, &kek).await?;
    let (current, previous) = kek;
    let rows = db::query(
        conn,
        "SELECT org_id, version, wrapped FROM org_data_keys",
        vec![],
    )
    .await?;
    let mut rewrapped = 0;
    for row in &rows {
        let (org, version, wrapped) = (
            db::get_text(row, 0),
            db::get_int(row, 1).unwrap_or(1),
            db::get_text(row, 2),
        );
        let context = key_context(&org, version);
        if current.open(&wrapped, &context).is_some() {
            continue;
        }
        let Some(bytes) = previous.as_ref().and_then(|p| p.open(&wrapped, &context)) else {
            eprintln!("secrets: data key {version} of {org} opens under neither master key");
            return Err(Problem::internal());
        };
        db::run(
            conn,
            "UPDATE org_data_keys SET wrapped = ? WHERE org_id = ? AND version = ?",
            vec![
                db::text(current.seal(&bytes, &context)),
                db::text(&org),
                db::int(version),
            ],
        )
        .await?;
        rewrapped += 1;
    }
    Ok(rewrapped + deployment)
}

/// Seals every value still sealed straight from a master key (before the
/// envelope scheme) with its owner's data key: how many. Run after
/// [`rewrap_all`], so that nothing needs `previous_master_key` after.
pub async fn reseal_old_way(conn: &Connection, now: i64) -> Result<usize, Problem> {
    crate::reseal::old_way_values(conn, now).await
}
