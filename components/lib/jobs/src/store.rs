//! The `jobs` table (migration 0015) on Spin's SQLite. Every change of
//! state is one conditional statement, so concurrent runners never act on
//! one job together. Database error text goes to the log, never further.

use spin_sdk::sqlite::{Connection, RowResult, Value};

use crate::schedule::{MAX_MAX_ATTEMPTS, Next, Policy};
use crate::{
    DONE_RETENTION_SECONDS, Finished, Job, JobError, JobId, NewJob, Outcome, State, clean_error,
    random_hex, valid_kind,
};

const COLUMNS: &str = "id, kind, payload, idempotency_key, state, run_at, attempts, max_attempts, \
     lease_owner, lease_until, last_error, created_at, updated_at, finished_at";

/// A job a runner may claim at `?1` (now): pending and due, or running
/// with a lapsed lease and attempts left (one without is for [`reap`]).
const DUE: &str = "((state = 'pending' AND run_at <= ?1) \
     OR (state = 'running' AND lease_until <= ?1 AND attempts < max_attempts))";

/// Done jobs one run deletes at most, so a backlog never makes a run slow.
const PURGE_BATCH: i64 = 500;

/// Runs a statement and returns its rows; database text goes to the log
/// only. For the handlers that record their own state beside their job's.
pub async fn rows(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
) -> Result<Vec<RowResult>, JobError> {
    run(conn, sql, params).await
}

/// Runs `work` in a write transaction on `conn` (`IMMEDIATE`: it holds the
/// write lock from its first statement), kept when `work` succeeds and
/// rolled back when it fails: a job's end and what its handler keeps about
/// it exist together or not at all. When both the work and the rollback
/// fail, the work's error is returned (the rollback's is logged).
pub async fn transaction<T>(
    conn: &Connection,
    work: impl std::future::Future<Output = Result<T, JobError>>,
) -> Result<T, JobError> {
    run(conn, "BEGIN IMMEDIATE", vec![]).await?;
    let outcome = match work.await {
        Ok(done) => run(conn, "COMMIT", vec![]).await.map(|_| done),
        Err(e) => Err(e),
    };
    // A failed COMMIT leaves the transaction open: roll it back too, or
    // the connection's next BEGIN fails.
    if outcome.is_err() {
        let _ = run(conn, "ROLLBACK", vec![]).await;
    }
    outcome
}

async fn run(conn: &Connection, sql: &str, params: Vec<Value>) -> Result<Vec<RowResult>, JobError> {
    let failed = |what: &str, e: &dyn std::fmt::Debug| {
        let err = JobError::new(format!("database {what} failed: {e:?}"));
        eprintln!("{err}");
        err
    };
    let rows = conn
        .execute(sql, params)
        .await
        .map_err(|e| failed("statement", &e))?;
    rows.collect().await.map_err(|e| failed("read", &e))
}

fn text(v: impl Into<String>) -> Value {
    Value::Text(v.into())
}

fn int(v: i64) -> Value {
    Value::Integer(v)
}

fn opt_text(row: &RowResult, i: usize) -> Option<String> {
    match row.values.get(i) {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    }
}

fn opt_int(row: &RowResult, i: usize) -> Option<i64> {
    match row.values.get(i) {
        Some(Value::Integer(n)) => Some(*n),
        _ => None,
    }
}

/// A row selected as [`COLUMNS`]. A state outside the table's CHECK cannot
/// be stored; it would read as dead, which nothing claims.
fn job_from(row: &RowResult) -> Job {
    let payload = opt_text(row, 2).unwrap_or_default();
    Job {
        id: JobId::from_stored(opt_text(row, 0).unwrap_or_default()),
        kind: opt_text(row, 1).unwrap_or_default(),
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        idempotency_key: opt_text(row, 3).unwrap_or_default(),
        state: opt_text(row, 4)
            .as_deref()
            .and_then(State::parse)
            .unwrap_or(State::Dead),
        run_at: opt_int(row, 5).unwrap_or_default(),
        attempts: opt_int(row, 6).unwrap_or_default(),
        max_attempts: opt_int(row, 7).unwrap_or_default(),
        lease_owner: opt_text(row, 8),
        lease_until: opt_int(row, 9),
        last_error: opt_text(row, 10),
        created_at: opt_int(row, 11).unwrap_or_default(),
        updated_at: opt_int(row, 12).unwrap_or_default(),
        finished_at: opt_int(row, 13),
    }
}

/// Enqueues `job` at `now` and returns its id; when a job of the same kind
/// and idempotency key exists (in any state), nothing changes and that
/// job's id is returned. Use the connection that makes the change the job
/// is about, so the job exists exactly when the change does.
pub async fn enqueue(conn: &Connection, job: &NewJob<'_>, now: i64) -> Result<JobId, JobError> {
    if !valid_kind(job.kind) {
        return Err(JobError::new(format!("`{}` is not a job kind", job.kind)));
    }
    let id = JobId::new()?;
    let inserted = run(
        conn,
        "INSERT INTO jobs (id, kind, payload, idempotency_key, state, run_at, attempts, max_attempts, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, 0, ?6, ?7, ?7)
         ON CONFLICT (kind, idempotency_key) DO NOTHING
         RETURNING id",
        vec![
            text(id.as_str()),
            text(job.kind),
            text(job.payload.to_string()),
            text(job.idempotency_key),
            int(job.run_at),
            int(job.max_attempts.clamp(1, MAX_MAX_ATTEMPTS)),
            int(now),
        ],
    )
    .await?;
    if !inserted.is_empty() {
        return Ok(id);
    }
    let existing = run(
        conn,
        "SELECT id FROM jobs WHERE kind = ? AND idempotency_key = ?",
        vec![text(job.kind), text(job.idempotency_key)],
    )
    .await?;
    existing
        .first()
        .and_then(|row| opt_text(row, 0))
        .map(JobId::from_stored)
        .ok_or_else(|| JobError::new("a conflicting job vanished while enqueueing"))
}

/// The claims of one runner (a run of the job route, or a request
/// attempting the jobs it just enqueued): its owner id and lease length.
#[derive(Debug, Clone)]
pub struct Lease {
    owner: String,
    seconds: i64,
}

impl Lease {
    /// A new owner, with the policy's lease length.
    pub fn new(policy: &Policy) -> Result<Lease, JobError> {
        Ok(Lease {
            owner: format!("run_{}", random_hex::<16>()?),
            seconds: policy.lease_seconds,
        })
    }

    /// The owner id stored on the jobs it claims.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn claim_params(&self, now: i64) -> Vec<Value> {
        vec![
            int(now),
            text(&self.owner),
            int(now.saturating_add(self.seconds)),
        ]
    }
}

/// Claims the longest-due job (of `kind`, when given, and none of `skip`)
/// for one attempt at `now`: it becomes `running` under `lease` with one
/// more attempt counted. One statement that re-checks the job is still
/// due, so of two runners reaching for one job, one gets it. `None` when
/// nothing is due. A runner passes the jobs it already attempted as
/// `skip`, so a job that failed and is due again at once (a zero backoff)
/// waits for the next run instead of being retried in a loop.
pub async fn claim(
    conn: &Connection,
    lease: &Lease,
    now: i64,
    kind: Option<&str>,
    skip: &[JobId],
) -> Result<Option<Job>, JobError> {
    claim_of(conn, lease, now, kind.map(|k| (k, true)), skip).await
}

/// Claims the longest-due job of any kind but `kind`, as [`claim`] does: a
/// runner takes quick work (mail) before slow work that waits on others'
/// servers (webhook deliveries), so the slow kind never holds up the rest.
pub async fn claim_except(
    conn: &Connection,
    lease: &Lease,
    now: i64,
    kind: &str,
    skip: &[JobId],
) -> Result<Option<Job>, JobError> {
    claim_of(conn, lease, now, Some((kind, false)), skip).await
}

/// [`claim`] of jobs whose kind is (`true`) or is not (`false`) the one named.
async fn claim_of(
    conn: &Connection,
    lease: &Lease,
    now: i64,
    kind: Option<(&str, bool)>,
    skip: &[JobId],
) -> Result<Option<Job>, JobError> {
    let mut params = lease.claim_params(now);
    let mut filters = String::new();
    if let Some((kind, same)) = kind {
        params.push(text(kind));
        let op = if same { "=" } else { "<>" };
        filters.push_str(&format!(" AND kind {op} ?{}", params.len()));
    }
    if !skip.is_empty() {
        let ids: Vec<&str> = skip.iter().map(JobId::as_str).collect();
        params.push(text(serde_json::Value::from(ids).to_string()));
        filters.push_str(&format!(
            " AND id NOT IN (SELECT value FROM json_each(?{}))",
            params.len()
        ));
    }
    let sql = format!(
        "UPDATE jobs SET state = 'running', lease_owner = ?2, lease_until = ?3, attempts = attempts + 1, updated_at = ?1
         WHERE id = (SELECT id FROM jobs WHERE {DUE}{filters} ORDER BY run_at, created_at LIMIT 1)
           AND {DUE}
         RETURNING {COLUMNS}"
    );
    let rows = run(conn, &sql, params).await?;
    Ok(rows.first().map(job_from))
}

/// Claims the job of `kind` with `idempotency_key`, as [`claim`] does,
/// if it is due: a request attempting at once the job it just enqueued.
pub async fn claim_key(
    conn: &Connection,
    lease: &Lease,
    kind: &str,
    idempotency_key: &str,
    now: i64,
) -> Result<Option<Job>, JobError> {
    let mut params = lease.claim_params(now);
    params.extend([text(kind), text(idempotency_key)]);
    let sql = format!(
        "UPDATE jobs SET state = 'running', lease_owner = ?2, lease_until = ?3, attempts = attempts + 1, updated_at = ?1
         WHERE kind = ?4 AND idempotency_key = ?5 AND {DUE}
         RETURNING {COLUMNS}"
    );
    let rows = run(conn, &sql, params).await?;
    Ok(rows.first().map(job_from))
}

/// Gives a claimed `job` back unattempted: pending again, due when it was,
/// its claim not counted. For a runner that claimed a job it will not run
/// now (another job for the same receiver is under way). False when the
/// claim had lapsed and another run holds the job.
pub async fn release(conn: &Connection, job: &Job, now: i64) -> Result<bool, JobError> {
    let rows = run(
        conn,
        "UPDATE jobs SET state = 'pending', attempts = MAX(attempts - 1, 0), lease_owner = NULL,
                lease_until = NULL, updated_at = ?1
         WHERE id = ?2 AND state = 'running' AND lease_owner = ?3
         RETURNING id",
        vec![int(now), text(job.id.as_str()), text(owner_of(job))],
    )
    .await?;
    Ok(!rows.is_empty())
}

/// Records that a claimed `job` is done.
pub async fn succeed(conn: &Connection, job: &Job, now: i64) -> Result<Finished, JobError> {
    let rows = run(
        conn,
        "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = ?1, finished_at = ?1
         WHERE id = ?2 AND state = 'running' AND lease_owner = ?3
         RETURNING id",
        vec![int(now), text(job.id.as_str()), text(owner_of(job))],
    )
    .await?;
    Ok(if rows.is_empty() {
        lost(job);
        Finished::LeaseLost
    } else {
        Finished::Done
    })
}

/// Records that a claimed `job`'s attempt failed with `error` (short,
/// without a credential): pending again after the policy's backoff, or
/// dead when it was the last attempt or `permanent`.
pub async fn fail(
    conn: &Connection,
    job: &Job,
    error: &str,
    permanent: bool,
    policy: &Policy,
    now: i64,
) -> Result<Finished, JobError> {
    let next = policy.after_failure(job.attempts, job.max_attempts, now, permanent);
    record_failure(conn, job, error, next, now).await
}

/// Records that a claimed `job`'s attempt failed with `error`, when its
/// handler keeps its own schedule: pending again, due at `at` (at once if
/// that is past), or dead when it was the job's last attempt.
pub async fn fail_at(
    conn: &Connection,
    job: &Job,
    error: &str,
    at: i64,
    now: i64,
) -> Result<Finished, JobError> {
    let next = crate::schedule::retry_at(job.attempts, job.max_attempts, at, now);
    record_failure(conn, job, error, next, now).await
}

async fn record_failure(
    conn: &Connection,
    job: &Job,
    error: &str,
    next: Next,
    now: i64,
) -> Result<Finished, JobError> {
    let error = clean_error(error);
    // The dead statement leaves ?4 unused; ?5 sets the parameter count.
    let (sql, at) = match next {
        Next::RetryAt(at) => (
            "UPDATE jobs SET state = 'pending', run_at = ?4, last_error = ?5, lease_owner = NULL, lease_until = NULL, updated_at = ?1
             WHERE id = ?2 AND state = 'running' AND lease_owner = ?3
             RETURNING id",
            at,
        ),
        Next::Dead => (
            "UPDATE jobs SET state = 'dead', last_error = ?5, lease_owner = NULL, lease_until = NULL, updated_at = ?1, finished_at = ?1
             WHERE id = ?2 AND state = 'running' AND lease_owner = ?3
             RETURNING id",
            now,
        ),
    };
    let rows = run(
        conn,
        sql,
        vec![
            int(now),
            text(job.id.as_str()),
            text(owner_of(job)),
            int(at),
            text(&error),
        ],
    )
    .await?;
    if rows.is_empty() {
        lost(job);
        return Ok(Finished::LeaseLost);
    }
    let fate = match next {
        Next::RetryAt(at) => format!("retry in {} s", at.saturating_sub(now)),
        Next::Dead => "dead".to_string(),
    };
    eprintln!(
        "jobs: {} {} failed (attempt {} of {}), {fate}: {error}",
        job.kind, job.id, job.attempts, job.max_attempts
    );
    Ok(match next {
        Next::RetryAt(at) => Finished::RetryAt(at),
        Next::Dead => Finished::Dead,
    })
}

/// Records how a claimed `job`'s attempt ended.
pub async fn finish(
    conn: &Connection,
    job: &Job,
    outcome: Outcome,
    policy: &Policy,
    now: i64,
) -> Result<Finished, JobError> {
    match outcome {
        Outcome::Done => succeed(conn, job, now).await,
        Outcome::Retry(error) => fail(conn, job, &error, false, policy, now).await,
        Outcome::Permanent(error) => fail(conn, job, &error, true, policy, now).await,
    }
}

fn owner_of(job: &Job) -> &str {
    job.lease_owner.as_deref().unwrap_or_default()
}

fn lost(job: &Job) {
    eprintln!(
        "jobs: {} {}: the claim lapsed and another run took the job; this attempt's outcome is not recorded",
        job.kind, job.id
    );
}

/// Makes dead the running jobs whose last attempt's lease lapsed without
/// an outcome (the runner stopped mid-attempt); returns them, so that what
/// each kind keeps about its jobs (a webhook event's status) can follow.
pub async fn reap(conn: &Connection, now: i64) -> Result<Vec<Job>, JobError> {
    let rows = run(
        conn,
        &format!(
            "UPDATE jobs SET state = 'dead', last_error = 'the last attempt ended without an outcome (its runner stopped)',
                    lease_owner = NULL, lease_until = NULL, updated_at = ?1, finished_at = ?1
             WHERE state = 'running' AND lease_until <= ?1 AND attempts >= max_attempts
             RETURNING {COLUMNS}"
        ),
        vec![int(now)],
    )
    .await?;
    Ok(rows.iter().map(job_from).collect())
}

/// Deletes done jobs finished more than [`DONE_RETENTION_SECONDS`] before
/// `now`, a batch at a time; returns how many.
pub async fn purge_done(conn: &Connection, now: i64) -> Result<usize, JobError> {
    let rows = run(
        conn,
        "DELETE FROM jobs WHERE id IN
            (SELECT id FROM jobs WHERE state = 'done' AND finished_at < ?1 LIMIT ?2)
         RETURNING id",
        vec![
            int(now.saturating_sub(DONE_RETENTION_SECONDS)),
            int(PURGE_BATCH),
        ],
    )
    .await?;
    Ok(rows.len())
}

/// How many jobs are due at `now`.
pub async fn count_due(conn: &Connection, now: i64) -> Result<u64, JobError> {
    let rows = run(
        conn,
        &format!("SELECT COUNT(*) FROM jobs WHERE {DUE}"),
        vec![int(now)],
    )
    .await?;
    Ok(rows
        .first()
        .and_then(|row| opt_int(row, 0))
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or_default())
}

/// Which jobs [`list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only jobs in this state.
    pub state: Option<State>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// Continue after this job, given as its `(created_at, id)`.
    pub after: Option<(i64, String)>,
    /// At most this many jobs.
    pub limit: u32,
}

/// Jobs matching `filter`, newest first.
pub async fn list(conn: &Connection, filter: &Filter) -> Result<Vec<Job>, JobError> {
    let mut sql = format!("SELECT {COLUMNS} FROM jobs WHERE 1 = 1");
    let mut params = Vec::new();
    if let Some(state) = filter.state {
        sql.push_str(" AND state = ?");
        params.push(text(state.as_str()));
    }
    if let Some(kind) = &filter.kind {
        sql.push_str(" AND kind = ?");
        params.push(text(kind));
    }
    if let Some((created_at, id)) = &filter.after {
        sql.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
        params.extend([int(*created_at), int(*created_at), text(id)]);
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    params.push(int(i64::from(filter.limit)));
    let rows = run(conn, &sql, params).await?;
    Ok(rows.iter().map(job_from).collect())
}

/// The job `id`, if it exists.
pub async fn get(conn: &Connection, id: &str) -> Result<Option<Job>, JobError> {
    let rows = run(
        conn,
        &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?"),
        vec![text(id)],
    )
    .await?;
    Ok(rows.first().map(job_from))
}

/// What [`retry`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Retried {
    /// The dead job is pending again, due now, with no attempts counted.
    Pending(Job),
    /// The job is not dead: it is in this state and was left alone.
    NotDead(State),
    /// There is no such job.
    NotFound,
}

/// Puts the dead job `id` back to `pending`, due at `now`, with all its
/// attempts ahead of it again; its last error stays until an attempt
/// replaces it.
pub async fn retry(conn: &Connection, id: &str, now: i64) -> Result<Retried, JobError> {
    let rows = run(
        conn,
        &format!(
            "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?1, lease_owner = NULL, lease_until = NULL,
                    finished_at = NULL, updated_at = ?1
             WHERE id = ?2 AND state = 'dead'
             RETURNING {COLUMNS}"
        ),
        vec![int(now), text(id)],
    )
    .await?;
    if let Some(row) = rows.first() {
        return Ok(Retried::Pending(job_from(row)));
    }
    Ok(match get(conn, id).await? {
        Some(job) => Retried::NotDead(job.state),
        None => Retried::NotFound,
    })
}
