//! One run of the job runner: how long and how many jobs it may take,
//! and what it did. A run is an HTTP request that a schedule makes, so it
//! is bounded well inside any request timeout; what it leaves due, the
//! next run takes.
//!
//! ```
//! use gatehouse_jobs::run::{Limits, Report};
//! use gatehouse_jobs::Finished;
//!
//! let limits = Limits::new(None, Some(10)).unwrap();
//! assert_eq!((limits.max_seconds, limits.max_jobs), (20, 10));
//! let mut report = Report::default();
//! report.record(Finished::RetryAt(1_000));
//! assert_eq!((report.claimed, report.retried), (1, 1));
//! ```

use serde::Serialize;

use crate::Finished;

/// Seconds a run takes jobs for when the caller does not say: enough for
/// a webhook delivery, which a run starts only while its remaining time
/// covers the attempt's whole limit (15 s), so a run without a body (the
/// local host's schedule) delivers too.
pub const DEFAULT_SECONDS: i64 = 20;
/// The most seconds a run may take jobs for: a job started before the end
/// still finishes, so the request lasts up to one attempt longer.
pub const MAX_SECONDS: i64 = 25;
/// Jobs a run takes when the caller does not say.
pub const DEFAULT_JOBS: i64 = 100;
/// The most jobs one run may take.
pub const MAX_JOBS: i64 = 1000;

/// The bounds of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// No job is claimed after this many seconds.
    pub max_seconds: u64,
    /// No more jobs than this are claimed.
    pub max_jobs: u32,
}

/// A bound the caller asked for that is out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    /// The field, as a JSON pointer into the request body.
    pub pointer: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

fn bounded(
    value: Option<i64>,
    default: i64,
    max: i64,
    pointer: &'static str,
) -> Result<i64, LimitError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(LimitError {
            pointer,
            message: format!("{} must be from 1 to {max}", &pointer[1..]),
        }),
    }
}

impl Limits {
    /// The bounds for the requested `max_seconds` and `max_jobs` (defaults
    /// when absent); every value out of range is reported.
    pub fn new(max_seconds: Option<i64>, max_jobs: Option<i64>) -> Result<Limits, Vec<LimitError>> {
        let seconds = bounded(max_seconds, DEFAULT_SECONDS, MAX_SECONDS, "/max_seconds");
        let jobs = bounded(max_jobs, DEFAULT_JOBS, MAX_JOBS, "/max_jobs");
        match (seconds, jobs) {
            (Ok(seconds), Ok(jobs)) => Ok(Limits {
                max_seconds: u64::try_from(seconds).unwrap_or(0),
                max_jobs: u32::try_from(jobs).unwrap_or(0),
            }),
            (seconds, jobs) => Err([seconds.err(), jobs.err()].into_iter().flatten().collect()),
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_seconds: DEFAULT_SECONDS as u64,
            max_jobs: DEFAULT_JOBS as u32,
        }
    }
}

/// What a run did: jobs claimed, and how each claim ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Jobs this run claimed.
    pub claimed: u32,
    /// Claimed jobs that are now done.
    pub succeeded: u32,
    /// Claimed jobs that failed and wait for another attempt.
    pub retried: u32,
    /// Jobs that became dead in this run: claimed ones that failed for
    /// good, and ones whose last attempt's lease lapsed without an outcome.
    pub dead: u32,
    /// Jobs due when the run ended, for the next run.
    pub remaining_due: u64,
}

impl Report {
    /// Counts one claimed job by how it ended. A claim whose lease was
    /// taken over meanwhile counts as claimed only: its outcome is the
    /// other run's.
    pub fn record(&mut self, finished: Finished) {
        self.claimed += 1;
        match finished {
            Finished::Done => self.succeeded += 1,
            Finished::RetryAt(_) => self.retried += 1,
            Finished::Dead => self.dead += 1,
            Finished::LeaseLost => {}
        }
    }

    /// Counts a claimed job whose outcome could not be recorded (the
    /// database failed): its lease lapses and a later run takes it again.
    pub fn record_unfinished(&mut self) {
        self.claimed += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_stay_in_range() {
        assert_eq!(Limits::new(None, None), Ok(Limits::default()));
        assert_eq!(
            Limits::new(Some(MAX_SECONDS), Some(1)),
            Ok(Limits {
                max_seconds: 25,
                max_jobs: 1
            })
        );
    }

    #[test]
    fn every_out_of_range_limit_is_reported_with_its_pointer() {
        let errors = Limits::new(Some(0), Some(MAX_JOBS + 1)).unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer).collect();
        assert_eq!(pointers, vec!["/max_seconds", "/max_jobs"]);
        assert_eq!(errors[0].message, "max_seconds must be from 1 to 25");
        let errors = Limits::new(Some(MAX_SECONDS + 1), None).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(Limits::new(Some(-5), None).is_err());
    }

    #[test]
    fn the_report_counts_each_claim_once_by_its_end() -> Result<(), serde_json::Error> {
        let mut report = Report::default();
        for finished in [
            Finished::Done,
            Finished::Done,
            Finished::RetryAt(5),
            Finished::Dead,
            Finished::LeaseLost,
        ] {
            report.record(finished);
        }
        report.remaining_due = 3;
        assert_eq!(
            serde_json::to_value(report)?,
            serde_json::json!({"claimed": 5, "succeeded": 2, "retried": 1, "dead": 1, "remaining_due": 3})
        );
        Ok(())
    }
}
