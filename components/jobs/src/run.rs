//! `POST /v1/admin/jobs/$run` (operator): claims due jobs one at a time
//! and runs each, until none is due, the run's time is up or it has taken
//! its most jobs. Jobs claimed before the time is up finish, so a run lasts
//! up to one attempt longer. Two runs at once (two schedules, two
//! instances) never run one job twice: each claim is one conditional
//! statement.

use std::time::{Duration, Instant};

use gatehouse_http::idempotency::unix_now;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, json, response};
use gatehouse_jobs::Lease;
use gatehouse_jobs::run::{Limits, Report};
use serde::Deserialize;
use spin_sdk::http::Request;

use crate::{handlers, internal, open};

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
    report.dead += gatehouse_jobs::reap(&conn, now).await.map_err(internal)?;
    // Housekeeping only: a failure here never stops the run.
    let _ = gatehouse_jobs::purge_done(&conn, now).await;
    // Each job at most once a run: one due again at once (a zero backoff)
    // waits for the next run rather than being retried in a loop.
    let mut attempted = Vec::new();
    while report.claimed < limits.max_jobs && started.elapsed() < time {
        let now = unix_now();
        let Some(job) = gatehouse_jobs::claim(&conn, &lease, now, None, &attempted)
            .await
            .map_err(internal)?
        else {
            break;
        };
        attempted.push(job.id.clone());
        match handlers::perform(&conn, &job, &policy, now).await {
            Ok(finished) => report.record(finished),
            Err(e) => {
                // The database is failing: the job's lease lapses and a
                // later run takes it again.
                eprintln!("jobs: {} {} left unfinished: {e}", job.kind, job.id);
                report.record_unfinished();
                break;
            }
        }
    }
    report.remaining_due = gatehouse_jobs::count_due(&conn, unix_now())
        .await
        .map_err(internal)?;
    Ok(response::json(200, &report, request_id))
}
