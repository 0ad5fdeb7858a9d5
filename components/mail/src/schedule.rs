//! How long a mail may be worked on: the claim one attempt holds on it,
//! how many due mails a request retries besides its own, and the age past
//! which a mail is given up. When a failed mail is tried again is the job
//! system's policy ([`gatehouse_jobs::schedule`]). Times are unix seconds.
//!
//! ```
//! use gatehouse_mail::schedule;
//!
//! // A mail queued more than a day ago is no longer sent.
//! assert_eq!(schedule::oldest_sendable(100_000), 100_000 - 24 * 3600);
//! ```

/// How far a claim moves a mail's `next_attempt_at`: longer than an
/// attempt can last (the outbound request's timeouts add up to well under
/// a minute), so nothing else can claim the mail while it is being sent,
/// even a job whose lease lapsed meanwhile. If the sender dies
/// mid-attempt, the mail can be claimed again after this.
pub const CLAIM_SECONDS: i64 = 120;
/// Older due mails a request's delivery retries besides the ones it
/// queued, which keeps the extra latency of a request small; the job
/// runner takes the rest.
pub const RETRIES_PER_DELIVERY: usize = 3;
/// Mail still unsent this long after it was queued is given up: the links
/// in it (verification, reset) have expired by then. This matters when a
/// provider is configured on a database that queued mail without one.
pub const MAX_AGE_SECONDS: i64 = 24 * 3600;

/// The oldest `created_at` still worth sending at `now`.
pub fn oldest_sendable(now: i64) -> i64 {
    now.saturating_sub(MAX_AGE_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_jobs::schedule::{DEFAULT_MAX_ATTEMPTS, Policy};

    #[test]
    fn every_default_attempt_fits_in_the_sendable_age() {
        let policy = Policy::default();
        let waits: i64 = (1..DEFAULT_MAX_ATTEMPTS)
            .map(|n| policy.retry_delay(n))
            .sum();
        let claims = (CLAIM_SECONDS + policy.lease_seconds) * DEFAULT_MAX_ATTEMPTS;
        assert!(waits + claims < MAX_AGE_SECONDS);
        assert_eq!(oldest_sendable(MAX_AGE_SECONDS + 5), 5);
    }

    #[test]
    fn a_claim_outlasts_the_jobs_lease() {
        // A job whose lease lapsed mid-send finds the mail still claimed
        // rather than sending it a second time.
        assert!(CLAIM_SECONDS >= Policy::default().lease_seconds);
    }
}
