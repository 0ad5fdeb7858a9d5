//! When a mail is tried: how long a claim holds it, how long to wait after
//! each failure, and when to give up. Times are unix seconds.
//!
//! ```
//! use gatehouse_mail::schedule::{self, Next};
//!
//! // The first failure waits 30 s, the next 60 s, then 120 s, ...
//! assert_eq!(schedule::after_failure(1, 1_000, false), Next::RetryAt(1_030));
//! assert_eq!(schedule::after_failure(2, 1_000, false), Next::RetryAt(1_060));
//! // ... until the last attempt allowed.
//! assert_eq!(schedule::after_failure(schedule::MAX_ATTEMPTS, 1_000, false), Next::GiveUp);
//! ```

/// Attempts a mail gets before it is `failed`. With the delays below the
/// last one comes about an hour after the first.
pub const MAX_ATTEMPTS: i64 = 8;
/// The wait after the first failed attempt; each further failure doubles it.
pub const FIRST_RETRY_SECONDS: i64 = 30;
/// The longest wait between two attempts.
pub const MAX_RETRY_SECONDS: i64 = 3600;
/// How far a claim moves a mail's retry time: longer than an attempt can
/// last (the outbound request's timeouts add up to well under a minute), so
/// no other request can claim the mail while it is being sent. If the
/// sender dies mid-attempt, the mail is due again after this.
pub const CLAIM_SECONDS: i64 = 120;
/// Older due mails one delivery call retries besides the ones it was given,
/// which keeps the extra latency of a request small.
pub const RETRIES_PER_DELIVERY: usize = 3;
/// Mail still pending this long after it was queued is given up: the links
/// in it (verification, reset) have expired by then. This matters when a
/// provider is configured on a database that queued mail without one.
pub const MAX_AGE_SECONDS: i64 = 24 * 3600;

/// What happens to a mail after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Stays `pending`, due again at this time.
    RetryAt(i64),
    /// Becomes `failed`.
    GiveUp,
}

/// The wait after the `attempts`-th failed attempt (1 for the first).
pub fn retry_delay(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.max(1) - 1).unwrap_or(u32::MAX);
    FIRST_RETRY_SECONDS
        .checked_mul(2_i64.checked_pow(doublings).unwrap_or(i64::MAX))
        .unwrap_or(i64::MAX)
        .min(MAX_RETRY_SECONDS)
}

/// The next step for a mail whose `attempts`-th attempt (counting this
/// one) failed at `now`; `undeliverable` when the provider refused the
/// mail for good.
pub fn after_failure(attempts: i64, now: i64, undeliverable: bool) -> Next {
    if undeliverable || attempts >= MAX_ATTEMPTS {
        Next::GiveUp
    } else {
        Next::RetryAt(now.saturating_add(retry_delay(attempts)))
    }
}

/// The oldest `created_at` still worth sending at `now`.
pub fn oldest_sendable(now: i64) -> i64 {
    now.saturating_sub(MAX_AGE_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_thirty_seconds_up_to_an_hour() {
        let delays: Vec<i64> = (1..=9).map(retry_delay).collect();
        assert_eq!(delays, vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(retry_delay(0), 30);
        assert_eq!(retry_delay(i64::MAX), MAX_RETRY_SECONDS);
    }

    #[test]
    fn failures_retry_until_the_last_attempt_then_give_up() {
        for attempts in 1..MAX_ATTEMPTS {
            assert_eq!(
                after_failure(attempts, 100, false),
                Next::RetryAt(100 + retry_delay(attempts))
            );
        }
        assert_eq!(after_failure(MAX_ATTEMPTS, 100, false), Next::GiveUp);
        assert_eq!(after_failure(MAX_ATTEMPTS + 3, 100, false), Next::GiveUp);
    }

    #[test]
    fn an_undeliverable_mail_is_given_up_at_once() {
        assert_eq!(after_failure(1, 100, true), Next::GiveUp);
    }

    #[test]
    fn all_attempts_fit_in_the_sendable_age() {
        let total: i64 = (1..MAX_ATTEMPTS).map(retry_delay).sum();
        assert!(total + CLAIM_SECONDS * MAX_ATTEMPTS < MAX_AGE_SECONDS);
        assert_eq!(oldest_sendable(MAX_AGE_SECONDS + 5), 5);
    }
}
