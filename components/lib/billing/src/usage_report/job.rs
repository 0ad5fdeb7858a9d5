//! The Spin side of usage reporting: queueing an org's job, and running it.

use gatehouse_auth::db;
use gatehouse_http::Problem;
use gatehouse_jobs::schedule::Policy;
use gatehouse_jobs::{Finished, Job, JobError, NewJob, Outcome, State};
use serde_json::json;
use spin_sdk::sqlite::Connection;

use super::meter::{Account, Trouble, report_meter};
use super::{REPORT_JOB, job_key, next_run, sql, window_end};
use crate::plans::Metered;
use crate::standing::{Access, entitlements};
use crate::store::{STATE_COLUMNS, settings, state_of};
use crate::stripe::Stripe;

/// Queues the org's report job due at `run_at`, one per org and hour. When
/// that hour's job has run already (or is running, and may be about to
/// find no metered plan and end its chain), the next hour's is queued, so
/// a chain that ended starts again.
pub async fn queue(conn: &Connection, org_id: &str, run_at: i64) -> Result<(), JobError> {
    let now = gatehouse_http::idempotency::unix_now();
    let id = enqueue(conn, org_id, run_at, now).await?;
    let queued = gatehouse_jobs::get(conn, id.as_str()).await?;
    if queued.is_some_and(|job| job.state != State::Pending) {
        enqueue(conn, org_id, next_run(run_at), now).await?;
    }
    Ok(())
}

async fn enqueue(
    conn: &Connection,
    org_id: &str,
    run_at: i64,
    now: i64,
) -> Result<gatehouse_jobs::JobId, JobError> {
    let key = job_key(org_id, run_at);
    let job = NewJob {
        kind: REPORT_JOB,
        payload: json!({ "org_id": org_id }),
        idempotency_key: &key,
        run_at,
        max_attempts: gatehouse_jobs::policy().await.max_attempts,
    };
    gatehouse_jobs::enqueue(conn, &job, now).await
}

/// Starts the org's chain of report jobs at `now` when `plan_key` names a
/// plan with metered usage: billing calls it in the transaction that
/// takes a subscription.
pub async fn start(
    conn: &Connection,
    org_id: &str,
    plan_key: Option<&str>,
    now: i64,
) -> Result<(), Problem> {
    let settings = settings().await?;
    let metered = plan_key
        .and_then(|key| settings.plans.get(key))
        .is_some_and(|plan| !plan.metered.is_empty());
    if !metered {
        return Ok(());
    }
    queue(conn, org_id, now).await.map_err(|e| {
        eprintln!("billing: queueing the usage report of {org_id} failed: {e}");
        Problem::internal()
    })
}

/// Runs one claimed report job: reports the org's metered usage up to
/// [`window_end`] of `now`, then queues the next run while the org still
/// has a metered plan; the two and the job's end in one transaction.
pub async fn run_job(
    conn: &Connection,
    job: &Job,
    policy: &Policy,
    now: i64,
) -> Result<Finished, JobError> {
    let Some(org_id) = job.payload.get("org_id").and_then(|v| v.as_str()) else {
        let outcome = Outcome::Permanent("the payload names no org_id".into());
        return gatehouse_jobs::finish(conn, job, outcome, policy, now).await;
    };
    let (outcome, metered) = report(conn, org_id, now).await?;
    gatehouse_jobs::transaction(conn, async {
        // A failed run keeps the chain too: its retries and the next
        // hour's run send the same planned windows, so neither bills
        // twice, and a job that dies does not stop the reports.
        if metered {
            queue(conn, org_id, next_run(now)).await?;
        }
        gatehouse_jobs::finish(conn, job, outcome, policy, now).await
    })
    .await
}

/// Reports each metered meter of the org's plan; how the attempt ended,
/// and whether the org has a metered plan (so the chain goes on).
async fn report(conn: &Connection, org_id: &str, now: i64) -> Result<(Outcome, bool), JobError> {
    let Ok(settings) = settings().await else {
        let why = "billing_plans or billing_grace_days is not usable (see the log)";
        return Ok((Outcome::Retry(why.into()), false));
    };
    let billing = format!("SELECT {STATE_COLUMNS}, {}", sql::BILLING_REST);
    let rows = gatehouse_jobs::rows(conn, &billing, vec![db::text(org_id)]).await?;
    // No billing row: no customer, nothing to report (and a deleted org).
    let Some(row) = rows.first() else {
        return Ok((Outcome::Done, false));
    };
    let state = state_of(row, 0);
    let granted = entitlements(&settings.plans, Some(&state), now, settings.grace_seconds);
    let plan = match granted.access {
        Access::Paid | Access::Grace => granted.plan.as_deref().and_then(|k| settings.plans.get(k)),
        Access::Default => None,
    };
    let metered: &[Metered] = plan.map_or(&[], |p| p.metered.as_slice());
    let Some(customer) = db::get_opt_text(row, 5).filter(|_| !metered.is_empty()) else {
        return Ok((Outcome::Done, false));
    };
    let to = window_end(now);
    let subscription = db::get_opt_text(row, 6).unwrap_or_default();
    let account = Account {
        org_id,
        customer: &customer,
        subscription: &subscription,
        period_start: db::get_int(row, 7).unwrap_or(to),
    };
    let Ok(stripe) = Stripe::open().await else {
        let why = "Stripe is not configured: set stripe_secret_key and stripe_api_base_url";
        return Ok((Outcome::Retry(why.into()), true));
    };
    let (mut retry, mut broken) = (Vec::new(), Vec::new());
    for m in metered {
        match report_meter(conn, &stripe, &account, m, to, now).await? {
            Ok(()) => {}
            Err(Trouble::Unreachable(why)) => {
                retry.push(why);
                break;
            }
            Err(Trouble::Refused(why)) => retry.push(why),
            Err(Trouble::Misconfigured(why)) => broken.push(why),
        }
    }
    let outcome = if !retry.is_empty() {
        retry.extend(broken);
        Outcome::Retry(retry.join("; "))
    } else if !broken.is_empty() {
        Outcome::Permanent(broken.join("; "))
    } else {
        Outcome::Done
    };
    Ok((outcome, true))
}
