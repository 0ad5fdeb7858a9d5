//! When a job runs again: the wait after each failed attempt, how many
//! attempts it gets, how long a claim holds it. Times are unix seconds.
//! Deterministic (no jitter): a runner claims due jobs one at a time, so
//! retries of many jobs do not stampede a dependency the way parallel
//! clients retrying in step would.
//!
//! ```
//! use gatehouse_jobs::schedule::{Next, Policy};
//!
//! let policy = Policy::default();
//! // The first failure waits 30 s, the next 60 s, then 120 s, ...
//! assert_eq!(policy.after_failure(1, 8, 1_000, false), Next::RetryAt(1_030));
//! assert_eq!(policy.after_failure(2, 8, 1_000, false), Next::RetryAt(1_060));
//! // ... until the last attempt allowed, or a failure that says it is final.
//! assert_eq!(policy.after_failure(8, 8, 1_000, false), Next::Dead);
//! assert_eq!(policy.after_failure(1, 8, 1_000, true), Next::Dead);
//! ```

/// The wait after the first failed attempt (`job_retry_base_seconds`);
/// each further failure doubles it.
pub const DEFAULT_RETRY_BASE_SECONDS: i64 = 30;
/// The longest `job_retry_base_seconds` accepted (an hour).
pub const MAX_RETRY_BASE_SECONDS: i64 = 3600;
/// The longest wait between two attempts, whatever the base.
pub const MAX_RETRY_SECONDS: i64 = 3600;
/// Attempts a job gets before it is dead (`job_max_attempts`). With the
/// default base, the last one comes about an hour after the first.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 8;
/// The most attempts `job_max_attempts` may allow.
pub const MAX_MAX_ATTEMPTS: i64 = 100;
/// How long a claim holds a job: longer than an attempt can last (a mail
/// attempt's outbound timeouts add up to well under a minute). A runner
/// that dies mid-attempt leaves the job to be taken again after this.
pub const LEASE_SECONDS: i64 = 120;

/// What happens to a job after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Stays `pending`, due again at this time.
    RetryAt(i64),
    /// Becomes `dead`.
    Dead,
}

/// The retry settings of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The wait after the first failed attempt; 0 retries at once.
    pub retry_base_seconds: i64,
    /// Attempts a new job gets (stored with it when it is enqueued).
    pub max_attempts: i64,
    /// How long a claim holds a job.
    pub lease_seconds: i64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            retry_base_seconds: DEFAULT_RETRY_BASE_SECONDS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            lease_seconds: LEASE_SECONDS,
        }
    }
}

/// A retry variable that is set but unusable. The text names the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

fn setting(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, PolicyError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<i64>()
        .ok()
        .filter(|n| range.contains(n))
        .map(Some)
        .ok_or_else(|| {
            PolicyError(format!(
                "{name} must be an integer from {} to {}",
                range.start(),
                range.end()
            ))
        })
}

impl Policy {
    /// The policy the `job_retry_base_seconds` and `job_max_attempts`
    /// variables describe; an empty one keeps its default.
    pub fn from_variables(
        retry_base_seconds: &str,
        max_attempts: &str,
    ) -> Result<Policy, PolicyError> {
        let defaults = Policy::default();
        Ok(Policy {
            retry_base_seconds: setting(
                "job_retry_base_seconds",
                retry_base_seconds,
                0..=MAX_RETRY_BASE_SECONDS,
            )?
            .unwrap_or(defaults.retry_base_seconds),
            max_attempts: setting("job_max_attempts", max_attempts, 1..=MAX_MAX_ATTEMPTS)?
                .unwrap_or(defaults.max_attempts),
            lease_seconds: defaults.lease_seconds,
        })
    }

    /// The wait after the `attempts`-th failed attempt (1 for the first):
    /// the base, doubled for each earlier failure, at most
    /// [`MAX_RETRY_SECONDS`].
    pub fn retry_delay(&self, attempts: i64) -> i64 {
        let doublings = u32::try_from(attempts.max(1) - 1).unwrap_or(u32::MAX);
        self.retry_base_seconds
            .max(0)
            .checked_mul(2_i64.checked_pow(doublings).unwrap_or(i64::MAX))
            .unwrap_or(i64::MAX)
            .min(MAX_RETRY_SECONDS)
    }

    /// The next step for a job whose `attempts`-th attempt (counting this
    /// one) of `max_attempts` failed at `now`; `permanent` when the failure
    /// says no attempt can succeed.
    pub fn after_failure(
        &self,
        attempts: i64,
        max_attempts: i64,
        now: i64,
        permanent: bool,
    ) -> Next {
        if permanent || attempts >= max_attempts {
            Next::Dead
        } else {
            Next::RetryAt(now.saturating_add(self.retry_delay(attempts)))
        }
    }

    /// When a claim made at `now` lapses.
    pub fn lease_until(&self, now: i64) -> i64 {
        now.saturating_add(self.lease_seconds)
    }
}

/// The next step for a job whose `attempts`-th attempt (counting this one)
/// of `max_attempts` failed at `now`, when its handler keeps a schedule of
/// its own and names the next time, `at`, instead of the policy's backoff
/// (webhook deliveries follow the Standard Webhooks schedule). A time
/// already past means at once; the last attempt still makes the job dead.
pub fn retry_at(attempts: i64, max_attempts: i64, at: i64, now: i64) -> Next {
    if attempts >= max_attempts {
        Next::Dead
    } else {
        Next::RetryAt(at.max(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_base_up_to_an_hour() {
        let policy = Policy::default();
        let delays: Vec<i64> = (1..=9).map(|n| policy.retry_delay(n)).collect();
        assert_eq!(delays, vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(policy.retry_delay(0), 30);
        assert_eq!(policy.retry_delay(i64::MAX), MAX_RETRY_SECONDS);
        let slow = Policy {
            retry_base_seconds: MAX_RETRY_BASE_SECONDS,
            ..Policy::default()
        };
        assert_eq!(slow.retry_delay(64), MAX_RETRY_SECONDS);
    }

    #[test]
    fn a_zero_base_retries_at_once() {
        let policy = Policy {
            retry_base_seconds: 0,
            ..Policy::default()
        };
        for attempts in 1..8 {
            assert_eq!(
                policy.after_failure(attempts, 8, 500, false),
                Next::RetryAt(500)
            );
        }
    }

    #[test]
    fn failures_retry_until_the_jobs_last_attempt_then_it_is_dead() {
        let policy = Policy::default();
        for attempts in 1..5 {
            assert_eq!(
                policy.after_failure(attempts, 5, 100, false),
                Next::RetryAt(100 + policy.retry_delay(attempts))
            );
        }
        assert_eq!(policy.after_failure(5, 5, 100, false), Next::Dead);
        assert_eq!(policy.after_failure(9, 5, 100, false), Next::Dead);
        assert_eq!(policy.after_failure(1, 5, 100, true), Next::Dead);
        assert_eq!(
            policy.after_failure(1, 5, i64::MAX - 1, false),
            Next::RetryAt(i64::MAX)
        );
    }

    #[test]
    fn the_default_attempts_span_about_an_hour() {
        let policy = Policy::default();
        let total: i64 = (1..DEFAULT_MAX_ATTEMPTS)
            .map(|n| policy.retry_delay(n))
            .sum();
        assert!((3000..=4000).contains(&total), "{total}");
        assert_eq!(policy.lease_until(10), 10 + LEASE_SECONDS);
    }

    #[test]
    fn a_named_retry_time_is_kept_until_the_last_attempt() {
        assert_eq!(retry_at(1, 10, 1_005, 1_000), Next::RetryAt(1_005));
        assert_eq!(retry_at(9, 10, 87_400, 1_000), Next::RetryAt(87_400));
        // A time already past is now, never earlier.
        assert_eq!(retry_at(2, 10, 900, 1_000), Next::RetryAt(1_000));
        assert_eq!(retry_at(10, 10, 2_000, 1_000), Next::Dead);
        assert_eq!(retry_at(11, 10, 2_000, 1_000), Next::Dead);
    }

    #[test]
    fn variables_set_the_policy_and_empty_ones_keep_the_defaults() -> Result<(), PolicyError> {
        assert_eq!(Policy::from_variables("", " ")?, Policy::default());
        let policy = Policy::from_variables("0", "2")?;
        assert_eq!((policy.retry_base_seconds, policy.max_attempts), (0, 2));
        assert_eq!(policy.lease_seconds, LEASE_SECONDS);
        Ok(())
    }

    #[test]
    fn unusable_variables_are_errors_that_name_them() {
        for (base, max, name) in [
            ("-1", "", "job_retry_base_seconds"),
            ("soon", "", "job_retry_base_seconds"),
            ("3601", "", "job_retry_base_seconds"),
            ("", "0", "job_max_attempts"),
            ("", "101", "job_max_attempts"),
        ] {
            let err = Policy::from_variables(base, max).unwrap_err();
            assert!(err.0.starts_with(name), "{base:?} {max:?}: {err}");
        }
    }
}
