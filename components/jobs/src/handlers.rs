//! Which code runs a job of each kind. A kind this build does not know
//! (enqueued by a newer version during a rolling deploy, or written by
//! hand) fails like any attempt, so it waits by backoff for a runner that
//! knows it, and ends dead with a clear error if none comes.

use gatehouse_jobs::schedule::Policy;
use gatehouse_jobs::{Finished, Job, JobError, Outcome};
use spin_sdk::sqlite::Connection;

/// Makes dead the jobs whose runner stopped during their last attempt
/// ([`gatehouse_jobs::reap`]) and lets each kind that keeps a state of
/// its own about its jobs record it, in one transaction: a run that stops
/// between the two leaves neither. Returns how many.
pub async fn reap(conn: &Connection, now: i64) -> Result<u32, JobError> {
    gatehouse_jobs::transaction(conn, async {
        let jobs = gatehouse_jobs::reap(conn, now).await?;
        for job in &jobs {
            match job.kind.as_str() {
                gatehouse_webhook_dispatch::DISPATCH_JOB => {
                    gatehouse_webhook_dispatch::reaped(conn, job).await?;
                }
                gatehouse_webhook_delivery::DELIVER_JOB => {
                    gatehouse_webhook_delivery::reaped(conn, job, now).await?;
                }
                _ => {}
            }
        }
        Ok(u32::try_from(jobs.len()).unwrap_or(u32::MAX))
    })
    .await
}

/// Runs one claimed job and records how it ended.
pub async fn perform(
    conn: &Connection,
    job: &Job,
    policy: &Policy,
    now: i64,
) -> Result<Finished, JobError> {
    match job.kind.as_str() {
        gatehouse_mail::SEND_JOB => gatehouse_mail::run_job(conn, job, policy, now).await,
        gatehouse_webhook_dispatch::DISPATCH_JOB => {
            gatehouse_webhook_dispatch::run_job(conn, job, policy, now).await
        }
        gatehouse_webhook_delivery::DELIVER_JOB => {
            gatehouse_webhook_delivery::run_job(conn, job, policy, now).await
        }
        gatehouse_secrets::rotation::REENCRYPT_JOB => {
            gatehouse_secrets::rotation::run_job(conn, job, policy, now).await
        }
        gatehouse_billing::plan_quotas::SYNC_JOB => {
            gatehouse_billing::plan_quotas::run_job(conn, job, policy, now).await
        }
        gatehouse_billing::usage_report::REPORT_JOB => {
            gatehouse_billing::usage_report::run_job(conn, job, policy, now).await
        }
        gatehouse_notify::DELIVER_JOB => gatehouse_notify::run_job(conn, job, policy, now).await,
        other => {
            let outcome = Outcome::Retry(format!(
                "unknown job kind `{other}`: this build has no handler for it"
            ));
            gatehouse_jobs::finish(conn, job, outcome, policy, now).await
        }
    }
}
