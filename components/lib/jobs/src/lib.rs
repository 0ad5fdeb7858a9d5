//! Durable background jobs in the app's `default` SQLite database (the
//! `jobs` table, migration 0015): the work a request leaves for after its
//! response, such as sending the mail it queued.
//!
//! A job is a row with a `kind` (`mail.send`), a JSON payload of ids (never
//! a secret) and an idempotency key, unique per kind: enqueueing the same
//! work twice keeps one job, so at-least-once delivery with an idempotent
//! handler is the promise. A runner claims a due job with one conditional
//! `UPDATE` that gives it a lease (an owner and an expiry) and counts the
//! attempt, so two runners never hold one job; a runner that dies leaves
//! the lease to lapse and the job is claimed again. A failed attempt puts
//! the job back as `pending`, due after an exponential backoff
//! ([`schedule`]); a failure at its last attempt, or one that says it is
//! final, makes it `dead`, where it stays, with its last error, until an
//! operator retries it. Done jobs are deleted after [`DONE_RETENTION_SECONDS`].
//!
//! ```ignore
//! // wasm32 only: these calls reach Spin's SQLite.
//! let policy = gatehouse_jobs::policy().await;
//! let job = NewJob { kind: "mail.send", payload: json!({"mail_id": id}),
//!     idempotency_key: id, run_at: now, max_attempts: policy.max_attempts };
//! gatehouse_jobs::enqueue(&conn, &job, now).await?;
//! // Later, a runner:
//! let lease = Lease::new(&policy)?;
//! let mut attempted = Vec::new();
//! while let Some(job) = gatehouse_jobs::claim(&conn, &lease, now, None, &attempted).await? {
//!     attempted.push(job.id.clone());
//!     let outcome = handle(&job).await; // Done, Retry(error) or Permanent(error)
//!     gatehouse_jobs::finish(&conn, &job, outcome, &policy, now).await?;
//! }
//! ```
//!
//! A handler that keeps a retry schedule of its own (webhook deliveries)
//! records a failure with `fail_at` and the time of its next attempt
//! instead of the policy's backoff.
//!
//! - [`schedule`]: backoff, attempts and lease length, pure.
//! - [`run`]: the bounds and report of one run, pure.
//!
//! Only the Spin calls are compiled for wasm32; the rest is unit-tested
//! natively.

#![deny(missing_docs)]

pub mod run;
pub mod schedule;

#[cfg(target_arch = "wasm32")]
mod config;
#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(target_arch = "wasm32")]
pub use config::policy;
#[cfg(target_arch = "wasm32")]
pub use store::{
    Filter, Lease, Retried, claim, claim_except, claim_key, count_due, enqueue, fail, fail_at,
    finish, get, list, purge_done, reap, release, retry, rows, succeed, transaction,
};

use serde::Serialize;

/// How long a done job is kept (for the operator's listing) before a run
/// deletes it: a week.
pub const DONE_RETENTION_SECONDS: i64 = 7 * 24 * 3600;
/// The longest `last_error` kept, in characters.
pub const MAX_ERROR_CHARS: usize = 200;
/// The longest job kind.
pub const MAX_KIND_CHARS: usize = 64;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting to be due (`run_at`) and claimed.
    Pending,
    /// Claimed by a runner whose lease has not lapsed.
    Running,
    /// Finished successfully.
    Done,
    /// Failed for good; waits for an operator.
    Dead,
}

impl State {
    /// Every state, in the order of a job's life.
    pub const ALL: [State; 4] = [State::Pending, State::Running, State::Done, State::Dead];

    /// The state as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Done => "done",
            State::Dead => "dead",
        }
    }

    /// The state named `name`, if any.
    pub fn parse(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Whether `kind` can name a job kind: 1 to [`MAX_KIND_CHARS`] lower-case
/// letters, digits, `.`, `_` or `-` (`mail.send`).
pub fn valid_kind(kind: &str) -> bool {
    (1..=MAX_KIND_CHARS).contains(&kind.len())
        && kind.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// The id of a job: `job_`, the nanoseconds since the epoch (16 hex
/// digits) and 64 random bits (16 more). Ids that sort by time append to
/// the end of the table's key instead of dirtying a random page each.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A fresh id.
    pub fn new() -> Result<JobId, JobError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        Ok(JobId(format!("job_{nanos:016x}{}", random_hex::<8>()?)))
    }

    /// An id read back from the table or a request.
    pub fn from_stored(id: impl Into<String>) -> JobId {
        JobId(id.into())
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn random_hex<const N: usize>() -> Result<String, JobError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| JobError::new(format!("no random source: {e}")))?;
    Ok(hex::encode(bytes))
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// What it does (`mail.send`).
    pub kind: String,
    /// Its input: ids of what it works on.
    pub payload: serde_json::Value,
    /// Unique per kind: the same work enqueued twice is one job.
    pub idempotency_key: String,
    /// Where it is in its life.
    pub state: State,
    /// When a pending job is due.
    pub run_at: i64,
    /// Claims so far, a running one included.
    pub attempts: i64,
    /// A failure at this many attempts makes it dead.
    pub max_attempts: i64,
    /// The run holding a running job.
    pub lease_owner: Option<String>,
    /// When a running job's claim lapses.
    pub lease_until: Option<i64>,
    /// Why the latest failed attempt failed.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// When it became done or dead.
    pub finished_at: Option<i64>,
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob<'a> {
    /// What it does (see [`valid_kind`]).
    pub kind: &'a str,
    /// Its input: ids only, never a secret (operators see payloads).
    pub payload: serde_json::Value,
    /// The same key for the same kind is the same job.
    pub idempotency_key: &'a str,
    /// When it is first due.
    pub run_at: i64,
    /// Attempts it gets (the deployment's [`schedule::Policy`]).
    pub max_attempts: i64,
}

/// How one attempt at a job ended, as its handler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The work is done (or was found done already).
    Done,
    /// Not done; worth another attempt. The error is kept as `last_error`.
    Retry(String),
    /// Not done, and no attempt ever will be: the job is dead at once.
    Permanent(String),
}

/// Where a claimed job went once its attempt was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// It is done.
    Done,
    /// It is pending again, due at this time.
    RetryAt(i64),
    /// It is dead.
    Dead,
    /// The claim had lapsed and another run took the job: this outcome was
    /// not recorded.
    LeaseLost,
}

/// A database error or a missing random source. The text is for logs,
/// never for a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    detail: String,
}

impl JobError {
    /// An error described by `detail` (for logs).
    pub fn new(detail: impl Into<String>) -> JobError {
        JobError {
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "jobs: {}", self.detail)
    }
}

impl std::error::Error for JobError {}

/// `error` as `last_error` keeps it: one line, at most
/// [`MAX_ERROR_CHARS`] characters. Handlers keep credentials out of what
/// they report; this keeps a long or multi-line reply from a dependency
/// from filling the table.
pub fn clean_error(error: &str) -> String {
    let one_line: String = error
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    match trimmed.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_random_hex() -> Result<(), JobError> {
        let (a, b) = (JobId::new()?, JobId::new()?);
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("job_"));
        assert_eq!(a.as_str().len(), 4 + 32);
        assert!(a.as_str()[4..].bytes().all(|c| c.is_ascii_hexdigit()));
        Ok(())
    }

    #[test]
    fn states_round_trip_by_name_and_nothing_else_parses() {
        for state in State::ALL {
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        for name in ["", "Dead", "failed", "pending "] {
            assert_eq!(State::parse(name), None, "{name:?}");
        }
    }

    #[test]
    fn kinds_are_short_lower_case_names() {
        assert!(valid_kind("mail.send"));
        assert!(valid_kind("webhook_delivery-v2"));
        for kind in ["", "Mail.send", "mail send", "mail/send", &"x".repeat(65)] {
            assert!(!valid_kind(kind), "{kind:?}");
        }
    }

    #[test]
    fn errors_are_kept_on_one_short_line() {
        assert_eq!(
            clean_error("  postmark 500:\r\nInternal  "),
            "postmark 500:  Internal"
        );
        let long = clean_error(&"é".repeat(500));
        assert_eq!(long.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_job_shows_its_state_and_payload_as_json() -> Result<(), serde_json::Error> {
        let job = Job {
            id: JobId::from_stored("job_1"),
            kind: "mail.send".into(),
            payload: serde_json::json!({"mail_id": "mail_1"}),
            idempotency_key: "mail_1".into(),
            state: State::Dead,
            run_at: 10,
            attempts: 2,
            max_attempts: 2,
            lease_owner: None,
            lease_until: None,
            last_error: Some("postmark 500".into()),
            created_at: 1,
            updated_at: 10,
            finished_at: Some(10),
        };
        let json = serde_json::to_value(&job)?;
        assert_eq!(json["id"], "job_1");
        assert_eq!(json["state"], "dead");
        assert_eq!(json["payload"]["mail_id"], "mail_1");
        assert_eq!(json["lease_until"], serde_json::Value::Null);
        Ok(())
    }
}
