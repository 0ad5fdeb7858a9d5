//! `POST /v1/admin/jobs/$run` (operator): claims due jobs and runs them,
//! until none is due, the run's time is up or it has taken its most jobs.
//! Jobs claimed before the time is up finish, so a run lasts up to one
//! attempt longer. Two runs at once (two schedules, two instances) never
//! run one job twice: each claim is one conditional statement.
//!
//! Webhook deliveries wait on other people's servers, up to 16 s each, so
//! they never hold up the rest: every other kind (mail, such as password
//! resets; incoming webhooks' handlers) is claimed first, one at a time;
//! deliveries are claimed only while the run's remaining time covers a
//! whole attempt (the rest stay due, for the next run), and up to
//! [`PARALLEL`] of them are attempted at once, one at a time per endpoint,
//! so one org's slow endpoints delay only themselves.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use gatehouse_http::idempotency::unix_now;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, json, response};
use gatehouse_jobs::run::{Limits, Report};
use gatehouse_jobs::schedule::Policy;
use gatehouse_jobs::{JobError, JobId, Lease};
use gatehouse_webhook_delivery::{Begun, DELIVER_JOB, Delivery, LONGEST_ATTEMPT, Sent};
use serde::Deserialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;

use crate::{handlers, internal, open};

/// Webhook deliveries a run has in flight at once.
const PARALLEL: usize = 8;

/// The most of a request body read: it holds two small numbers.
const BODY_LIMIT: usize = 4 * 1024;

/// The optional body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    max_seconds: Option<i64>,
    max_jobs: Option<i64>,
}

impl RunRequest {
    fn limits(&self) -> Result<Limits, Vec<FieldError>> {
        Limits::new(self.max_seconds, self.max_jobs).map_err(|errors| {
            errors
                .into_iter()
                .map(|e| FieldError::new(e.pointer, "invalid_range", e.message))
                .collect()
        })
    }
}

/// The bounds the caller asked for; an empty body asks for the defaults.
async fn limits(req: Request) -> Result<Limits, Problem> {
    let (parts, body) = req.into_parts();
    let bytes = json::read_body(&parts.headers, body, BODY_LIMIT).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Limits::default());
    }
    let request: RunRequest = json::parse(json::content_type(&parts.headers), &bytes)?;
    request.limits().map_err(|errors| {
        Problem::new(ErrorCode::ValidationFailed)
            .detail("the request body has invalid fields")
            .errors(errors)
    })
}

/// `POST /v1/admin/jobs/$run`.
pub async fn run(req: Request, request_id: &str) -> Result<Response, Problem> {
    gatehouse_http::operator::require(&req).await?;
    let limits = limits(req).await?;
    let conn = open().await?;
    let policy = gatehouse_jobs::policy().await;
    let lease = Lease::new(&policy).map_err(internal)?;
    let started = Instant::now();
    let time = Duration::from_secs(limits.max_seconds);
    let mut report = Report::default();
    let now = unix_now();
    report.dead += handlers::reap(&conn, now).await.map_err(internal)?;
    // Housekeeping only: a failure here never stops the run.
    let _ = gatehouse_jobs::purge_done(&conn, now).await;
    let _ = gatehouse_webhook_delivery::purge(&conn, now).await;
    // The audit trail past each org's retention, and the deployment's.
    let _ = gatehouse_http::audit::purge(&conn, now, audit_retention_days().await, 5_000).await;
    // Changed plans reach the orgs' plan quotas through jobs of this run.
    let _ = gatehouse_billing::plan_quotas::follow_settings(&conn, now).await;
    // The day's first run tells the owners of API keys about to expire.
    let _ = gatehouse_notify::expiry::scan_daily(&conn, now).await;
    let mut run = Run {
        conn: &conn,
        lease: &lease,
        policy: &policy,
        max_jobs: limits.max_jobs,
        report,
        attempted: Vec::new(),
    };
    while run.report.claimed < limits.max_jobs && started.elapsed() < time {
        let went = match run.other().await? {
            Some(ran) => ran.map(|()| true),
            None if time.saturating_sub(started.elapsed()) >= LONGEST_ATTEMPT => {
                run.deliveries().await
            }
            // Too little time left for a delivery: what is due stays due.
            None => Ok(false),
        };
        match went {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // The database is failing: the claimed jobs' leases lapse
                // and a later run takes them again.
                eprintln!("jobs: the run stopped: {e}");
                break;
            }
        }
    }
    let mut report = run.report;
    report.remaining_due = gatehouse_jobs::count_due(&conn, unix_now())
        .await
        .map_err(internal)?;
    Ok(response::json(200, &report, request_id))
}

/// One run's claims: its lease, what it did, and each job it attempted
/// (each job at most once a run: one due again at once, by a zero
/// backoff, waits for the next run rather than being retried in a loop).
struct Run<'a> {
    conn: &'a Connection,
    lease: &'a Lease,
    policy: &'a Policy,
    max_jobs: u32,
    report: Report,
    attempted: Vec<JobId>,
}

impl Run<'_> {
    /// Claims and runs one due job of any kind but webhook delivery: none
    /// when none is due, else whether its outcome was recorded. A failed
    /// claim fails the run (a 500).
    async fn other(&mut self) -> Result<Option<Result<(), JobError>>, Problem> {
        let now = unix_now();
        let claimed =
            gatehouse_jobs::claim_except(self.conn, self.lease, now, DELIVER_JOB, &self.attempted)
                .await
                .map_err(internal)?;
        let Some(job) = claimed else {
            return Ok(None);
        };
        self.attempted.push(job.id.clone());
        Ok(Some(
            match handlers::perform(self.conn, &job, self.policy, now).await {
                Ok(finished) => {
                    self.report.record(finished);
                    Ok(())
                }
                Err(e) => {
                    eprintln!("jobs: {} {} left unfinished: {e}", job.kind, job.id);
                    self.report.record_unfinished();
                    Err(e)
                }
            },
        ))
    }

    /// Claims up to [`PARALLEL`] due deliveries, one per endpoint,
    /// attempts them together and records each; false when none was due.
    /// A claimed delivery to an endpoint already in the batch is given
    /// back unattempted, for the next batch.
    async fn deliveries(&mut self) -> Result<bool, JobError> {
        let now = unix_now();
        let mut batch: Vec<Box<Delivery>> = Vec::new();
        let mut held_back: Vec<JobId> = Vec::new();
        let mut any = false;
        while batch.len() < PARALLEL
            && held_back.len() < PARALLEL
            && self.report.claimed + (batch.len() as u32) < self.max_jobs
        {
            let skip: Vec<JobId> = self.attempted.iter().chain(&held_back).cloned().collect();
            let claimed =
                gatehouse_jobs::claim(self.conn, self.lease, now, Some(DELIVER_JOB), &skip).await?;
            let Some(job) = claimed else {
                break;
            };
            any = true;
            let id = job.id.clone();
            match gatehouse_webhook_delivery::begin(self.conn, job, self.policy, now).await {
                Ok(Begun::Finished(finished)) => {
                    self.attempted.push(id);
                    self.report.record(finished);
                }
                Ok(Begun::Send(delivery))
                    if batch
                        .iter()
                        .any(|d| d.endpoint_id() == delivery.endpoint_id()) =>
                {
                    gatehouse_jobs::release(self.conn, delivery.job(), now).await?;
                    held_back.push(id);
                }
                Ok(Begun::Send(delivery)) => {
                    self.attempted.push(id);
                    batch.push(delivery);
                }
                Err(e) => {
                    self.report.record_unfinished();
                    return Err(e);
                }
            }
        }
        let sent = all(batch.into_iter().map(|d| d.attempt()).collect()).await;
        let now = unix_now();
        for sent in sent {
            match gatehouse_webhook_delivery::settle(self.conn, sent, now).await {
                Ok(finished) => self.report.record(finished),
                Err(e) => {
                    self.report.record_unfinished();
                    return Err(e);
                }
            }
        }
        Ok(any)
    }
}

/// Every future's output, in order, with all of them in flight at once.
async fn all<F: Future<Output = Sent>>(futures: Vec<F>) -> Vec<Sent> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<Sent>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (future, out) in pending.iter_mut().zip(done.iter_mut()) {
            if out.is_none()
                && let Poll::Ready(sent) = future.as_mut().poll(cx)
            {
                *out = Some(sent);
            }
        }
        if done.iter().all(Option::is_some) {
            Poll::Ready(done.iter_mut().filter_map(Option::take).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// How many days the records of no org are kept (`audit_retention_days`,
/// 1 to 3650; 365 when unset or out of range).
async fn audit_retention_days() -> i64 {
    spin_sdk::variables::get("audit_retention_days")
        .await
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|d| (1..=3650).contains(d))
        .unwrap_or(365)
}
