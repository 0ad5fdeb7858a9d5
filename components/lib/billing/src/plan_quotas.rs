//! The quotas a plan sets, kept as the org's own quotas (`managed_by =
//! 'plan'`, one per meter) in line with the plan the org has: brought in
//! line when billing takes a change of its subscription, when the org
//! makes a meter a plan names, when a grace period runs out (a job of
//! kind [`SYNC_JOB`] due then), and when the deployment's plans change
//! ([`follow_settings`], on each run of the jobs runner). An admin's override of such a quota wins
//! while it runs, as for any quota; counters of a quota whose meter the
//! plan still limits carry on across a change of plan.

use gatehouse_auth::db;
use gatehouse_http::Problem;
use serde_json::json;
use spin_sdk::sqlite::Connection;

use crate::plans::PlanQuota;
use crate::standing::entitlements;
use crate::store::{STATE_COLUMNS, settings, state_of};

/// The job that brings an org's plan quotas in line at a time the plan
/// it has changes without an event: when its grace runs out.
pub const SYNC_JOB: &str = "billing.plan_quotas";

/// The plan quotas the org should have at `now`: those of the plan whose
/// grants it has.
async fn wanted(conn: &Connection, org_id: &str, now: i64) -> Result<Vec<PlanQuota>, Problem> {
    let settings = settings().await?;
    let rows = db::query(
        conn,
        &format!("SELECT {STATE_COLUMNS} FROM org_billing WHERE org_id = ?"),
        vec![db::text(org_id)],
    )
    .await?;
    let state = rows.first().map(|row| state_of(row, 0));
    let granted = entitlements(&settings.plans, state.as_ref(), now, settings.grace_seconds);
    Ok(granted
        .plan
        .and_then(|key| settings.plans.get(&key).map(|p| p.quotas.clone()))
        .unwrap_or_default())
}

/// Brings the org's plan quotas in line with its plan at `now`, inside
/// the caller's write transaction: a quota for each of the plan's quotas
/// on a meter the org has (made, or its limit, period and enforcement
/// set), and none on the meters the plan no longer limits (with their
/// counters, overrides and holds).
pub async fn sync(conn: &Connection, org_id: &str, now: i64) -> Result<(), Problem> {
    let wanted = wanted(conn, org_id, now).await?;
    let names: Vec<&str> = wanted.iter().map(|q| q.meter.as_str()).collect();
    let names = serde_json::to_string(&names).map_err(|_| Problem::internal())?;
    let org = || db::text(org_id);
    // Meters the plan no longer limits lose their plan quota.
    for table in [
        "quota_alerts",
        "quota_holds",
        "quota_counters",
        "quota_overrides",
        "quotas",
    ] {
        db::run(
            conn,
            &format!(
                "DELETE FROM {table} WHERE org_id = ?1 AND quota_id IN (
                     SELECT quota_id FROM quotas WHERE org_id = ?1 AND managed_by = 'plan'
                       AND meter_key NOT IN (SELECT value FROM json_each(?2)))"
            ),
            vec![org(), db::text(names.clone())],
        )
        .await?;
    }
    let known = db::query(
        conn,
        // Quotas count count and sum meters only, as metering's own do.
        "SELECT meter_key FROM meters WHERE org_id = ?1 AND aggregation IN ('count', 'sum')
           AND meter_key IN (SELECT value FROM json_each(?2))",
        vec![org(), db::text(names)],
    )
    .await?;
    let known: Vec<String> = known.iter().map(|r| db::get_text(r, 0)).collect();
    for quota in wanted.iter().filter(|q| known.contains(&q.meter)) {
        // A change of period starts counting afresh: the old period's
        // counters no longer say anything about the new one.
        db::run(
            conn,
            "DELETE FROM quota_counters WHERE org_id = ?1 AND quota_id IN (
                 SELECT quota_id FROM quotas WHERE org_id = ?1 AND managed_by = 'plan' AND meter_key = ?2 AND period <> ?3)",
            vec![org(), db::text(&quota.meter), db::text(&quota.period)],
        )
        .await?;
        db::run(
            conn,
            "INSERT INTO quotas (org_id, quota_id, entity_type, entity_id, meter_key, limit_units, period,
                                 enforcement, thresholds, created_by, created_at, updated_at, managed_by)
             VALUES (?1, ?2, 'org', ?1, ?3, ?4, ?5, ?6, ?7, 'plan', ?8, ?8, 'plan')
             ON CONFLICT (org_id, meter_key) WHERE managed_by = 'plan' DO UPDATE
             SET limit_units = excluded.limit_units, period = excluded.period,
                 enforcement = excluded.enforcement, updated_at = excluded.updated_at
             WHERE limit_units <> excluded.limit_units OR period <> excluded.period
                OR enforcement <> excluded.enforcement",
            vec![
                org(),
                db::text(db::new_id("quo_")),
                db::text(&quota.meter),
                db::int(quota.limit),
                db::text(&quota.period),
                db::text(&quota.enforcement),
                db::text(json!([]).to_string()),
                db::int(now),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Queues a [`SYNC_JOB`] for the org, due at `at` (the end of its grace),
/// inside the caller's transaction; the same org and time is one job.
pub async fn queue(conn: &Connection, org_id: &str, at: i64) -> Result<(), Problem> {
    enqueue(conn, org_id, &format!("{org_id} {at}"), at).await
}

/// Queues a [`SYNC_JOB`] for the org under `key` (the same key is one job).
async fn enqueue(conn: &Connection, org_id: &str, key: &str, at: i64) -> Result<(), Problem> {
    let policy = gatehouse_jobs::policy().await;
    gatehouse_jobs::enqueue(
        conn,
        &gatehouse_jobs::NewJob {
            kind: SYNC_JOB,
            payload: json!({"org_id": org_id}),
            idempotency_key: key,
            run_at: at,
            max_attempts: policy.max_attempts,
        },
        gatehouse_http::idempotency::unix_now(),
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        eprintln!("billing: queueing a plan quota job failed: {e:?}");
        Problem::internal()
    })
}

/// Runs a [`SYNC_JOB`]: the org's plan quotas in line with its plan now.
pub async fn run_job(
    conn: &Connection,
    job: &gatehouse_jobs::Job,
    policy: &gatehouse_jobs::schedule::Policy,
    now: i64,
) -> Result<gatehouse_jobs::Finished, gatehouse_jobs::JobError> {
    let outcome = match job.payload.get("org_id").and_then(|v| v.as_str()) {
        None => gatehouse_jobs::Outcome::Permanent("a plan quota job without an org_id".into()),
        Some(org_id) => match db::transaction(conn, sync(conn, org_id, now)).await {
            Ok(()) => gatehouse_jobs::Outcome::Done,
            Err(_) => {
                gatehouse_jobs::Outcome::Retry("the plan's quotas could not be written".into())
            }
        },
    };
    gatehouse_jobs::finish(conn, job, outcome, policy, now).await
}

/// What of the settings plan quotas depend on: every plan's quotas and
/// the grace, as one text to compare.
fn fingerprint(settings: &crate::store::Settings) -> String {
    let quotas: Vec<(&str, &[PlanQuota])> = settings
        .plans
        .all()
        .iter()
        .map(|p| (p.key.as_str(), p.quotas.as_slice()))
        .collect();
    json!({"quotas": quotas, "grace": settings.grace_seconds}).to_string()
}

/// When the deployment's plans (their quotas) or grace changed since the
/// last run: a [`SYNC_JOB`] for every org they may concern (an org with a
/// meter some plan limits, or with a plan quota), and the new settings
/// remembered, in one transaction. Cheap when nothing changed: one read.
pub async fn follow_settings(conn: &Connection, now: i64) -> Result<u32, Problem> {
    let settings = settings().await?;
    let seen = fingerprint(&settings);
    let rows = db::query(
        conn,
        "SELECT value FROM billing_settings_seen WHERE name = 'plan_quotas'",
        vec![],
    )
    .await?;
    if rows.first().map(|r| db::get_text(r, 0)).as_deref() == Some(seen.as_str()) {
        return Ok(0);
    }
    let meters: Vec<&str> = settings
        .plans
        .all()
        .iter()
        .flat_map(|p| p.quotas.iter().map(|q| q.meter.as_str()))
        .collect();
    let meters = serde_json::to_string(&meters).map_err(|_| Problem::internal())?;
    let digest = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(seen.as_bytes());
        d.iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let queued = db::transaction(conn, async {
        let orgs = db::query(
            conn,
            "SELECT org_id FROM meters WHERE meter_key IN (SELECT value FROM json_each(?))
             UNION SELECT org_id FROM quotas WHERE managed_by = 'plan'",
            vec![db::text(meters)],
        )
        .await?;
        for row in &orgs {
            let org_id = db::get_text(row, 0);
            enqueue(conn, &org_id, &format!("{org_id} settings {digest}"), now).await?;
        }
        db::run(
            conn,
            "INSERT INTO billing_settings_seen (name, value, changed_at) VALUES ('plan_quotas', ?, ?)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, changed_at = excluded.changed_at",
            vec![db::text(seen.clone()), db::int(now)],
        )
        .await?;
        Ok(u32::try_from(orgs.len()).unwrap_or(u32::MAX))
    })
    .await?;
    Ok(queued)
}
