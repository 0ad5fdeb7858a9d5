//! What one attempt's answer means for its message, its endpoint and its
//! job. Pure: the delivery job reads the endpoint inside the transaction
//! that records the attempt and applies the [`Decision`].
//!
//! - A `2xx` delivers the message and clears the endpoint's failing mark.
//! - `410 Gone` disables the endpoint (reason `gone`) and fails the
//!   message: the receiver said the endpoint is no more.
//! - Anything else (another status, no answer, a URL the policy refuses)
//!   marks the endpoint failing since then, if it was not already. An
//!   endpoint failing for [`DISABLE_AFTER_SECONDS`] is disabled (reason
//!   `failing`) and the message fails; otherwise the message waits for
//!   its next attempt on the [`SCHEDULE`], and fails after the last.
//!
//! ```
//! use gatehouse_webhook_delivery::outcome::{Answer, JobEnd, decide};
//!
//! let first = decide(&Answer::Status(500), 1, None, 1_000);
//! assert_eq!(first.job, JobEnd::RetryAt(1_005));
//! assert_eq!(decide(&Answer::Status(204), 2, Some(1_000), 1_005).job, JobEnd::Done);
//! ```

use crate::SCHEDULE;

/// How long an endpoint may fail every attempt before it is disabled:
/// five days.
pub const DISABLE_AFTER_SECONDS: i64 = 5 * 86_400;

/// How an attempt ended, seen from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The endpoint answered with this status.
    Status(u16),
    /// No answer: why (a timeout, a refused connection), without a secret
    /// or a body.
    Unreachable(String),
    /// No request was made: the URL policy refused the address.
    Refused(String),
}

impl Answer {
    /// The status, when the endpoint answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Answer::Status(status) => Some(*status),
            _ => None,
        }
    }

    /// Why it failed, short; none for a success.
    pub fn error(&self) -> Option<String> {
        match self {
            Answer::Status(status) if (200..300).contains(status) => None,
            Answer::Status(410) => Some("the endpoint answered 410 Gone".into()),
            Answer::Status(status) => Some(format!("the endpoint answered {status}")),
            Answer::Unreachable(why) => Some(format!("the endpoint could not be reached: {why}")),
            Answer::Refused(why) => Some(why.clone()),
        }
    }
}

/// Where the message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageEnd {
    /// Delivered.
    Delivered,
    /// Failed for good, with why.
    Failed(String),
    /// Waits for its next attempt at this time; the error is the last one.
    Pending(i64),
}

/// What changes on the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointChange {
    /// It answered: no longer failing.
    Recovered,
    /// It failed: failing since this time, unless it already was.
    Failing(i64),
    /// It answered 410: disabled, reason `gone`.
    Gone,
    /// It has failed for five days: disabled, reason `failing`.
    Disabled,
}

/// How the delivery job ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// The message is delivered or failed for good.
    Done,
    /// The next attempt is due at this time.
    RetryAt(i64),
}

/// Everything an attempt decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the attempt succeeded.
    pub succeeded: bool,
    /// Its error, for the attempt record and the message.
    pub error: Option<String>,
    /// The message's next state.
    pub message: MessageEnd,
    /// The endpoint's change.
    pub endpoint: EndpointChange,
    /// The job's end.
    pub job: JobEnd,
}

/// The decision for the `attempt`-th attempt of a delivery job (1 for its
/// first) that got `answer` at `now`, at an endpoint failing since
/// `failing_since` (none: it was not failing).
pub fn decide(answer: &Answer, attempt: i64, failing_since: Option<i64>, now: i64) -> Decision {
    let error = answer.error();
    let Some(why) = error.clone() else {
        return Decision {
            succeeded: true,
            error,
            message: MessageEnd::Delivered,
            endpoint: EndpointChange::Recovered,
            job: JobEnd::Done,
        };
    };
    let ended = |message: MessageEnd, endpoint: EndpointChange, job: JobEnd| Decision {
        succeeded: false,
        error: error.clone(),
        message,
        endpoint,
        job,
    };
    if answer.status() == Some(410) {
        let why = format!("{why}: the endpoint is disabled");
        return ended(MessageEnd::Failed(why), EndpointChange::Gone, JobEnd::Done);
    }
    let since = failing_since.unwrap_or(now).min(now);
    if now - since >= DISABLE_AFTER_SECONDS {
        let why = format!("{why}; every attempt failed for 5 days: the endpoint is disabled");
        return ended(
            MessageEnd::Failed(why),
            EndpointChange::Disabled,
            JobEnd::Done,
        );
    }
    let next = usize::try_from(attempt)
        .ok()
        .and_then(|n| SCHEDULE.get(n))
        .filter(|_| attempt >= 1);
    match next {
        Some(wait) => {
            let at = now.saturating_add(*wait);
            ended(
                MessageEnd::Pending(at),
                EndpointChange::Failing(since),
                JobEnd::RetryAt(at),
            )
        }
        None => {
            let why = format!("{why} (the last of {} attempts)", SCHEDULE.len());
            ended(
                MessageEnd::Failed(why),
                EndpointChange::Failing(since),
                JobEnd::Done,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_delivers_and_clears_the_failing_mark() {
        for status in [200, 202, 204, 299] {
            let d = decide(&Answer::Status(status), 3, Some(10), 100);
            assert!(d.succeeded);
            assert_eq!(
                (d.error, d.message, d.endpoint, d.job),
                (
                    None,
                    MessageEnd::Delivered,
                    EndpointChange::Recovered,
                    JobEnd::Done
                )
            );
        }
    }

    #[test]
    fn failures_follow_the_schedule_from_each_attempt() {
        let mut now = 1_000;
        let mut times = vec![now];
        for attempt in 1..10 {
            let d = decide(&Answer::Status(500), attempt, Some(1_000), now);
            assert!(!d.succeeded);
            assert_eq!(d.error.as_deref(), Some("the endpoint answered 500"));
            assert_eq!(d.endpoint, EndpointChange::Failing(1_000));
            let JobEnd::RetryAt(at) = d.job else {
                panic!("attempt {attempt} should retry: {d:?}");
            };
            assert_eq!(d.message, MessageEnd::Pending(at));
            now = at;
            times.push(now);
        }
        let waits: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(waits, SCHEDULE[1..]);
        // The tenth attempt is the last, about three days in: not yet five.
        let last = decide(
            &Answer::Unreachable("ConnectionRefused".into()),
            10,
            Some(1_000),
            now,
        );
        assert_eq!(last.job, JobEnd::Done);
        assert_eq!(
            last.message,
            MessageEnd::Failed(
                "the endpoint could not be reached: ConnectionRefused (the last of 10 attempts)"
                    .into()
            )
        );
        assert_eq!(last.endpoint, EndpointChange::Failing(1_000));
    }

    #[test]
    fn the_first_failure_marks_the_endpoint_failing_from_now() {
        let d = decide(&Answer::Refused("a private address".into()), 1, None, 500);
        assert_eq!(d.endpoint, EndpointChange::Failing(500));
        assert_eq!(d.error.as_deref(), Some("a private address"));
        assert_eq!(d.job, JobEnd::RetryAt(505));
    }

    #[test]
    fn gone_disables_the_endpoint_at_once() {
        let d = decide(&Answer::Status(410), 1, None, 500);
        assert_eq!(d.endpoint, EndpointChange::Gone);
        assert_eq!(d.job, JobEnd::Done);
        assert_eq!(
            d.message,
            MessageEnd::Failed("the endpoint answered 410 Gone: the endpoint is disabled".into())
        );
    }

    #[test]
    fn five_days_of_failures_disable_the_endpoint() {
        let since = 10_000;
        let almost = decide(
            &Answer::Status(503),
            1,
            Some(since),
            since + DISABLE_AFTER_SECONDS - 1,
        );
        assert_eq!(almost.endpoint, EndpointChange::Failing(since));
        let five = decide(
            &Answer::Status(503),
            1,
            Some(since),
            since + DISABLE_AFTER_SECONDS,
        );
        assert_eq!(five.endpoint, EndpointChange::Disabled);
        assert_eq!(five.job, JobEnd::Done);
        assert!(matches!(five.message, MessageEnd::Failed(ref why) if why.contains("5 days")));
        // A success any time before clears it instead.
        let saved = decide(
            &Answer::Status(200),
            4,
            Some(since),
            since + DISABLE_AFTER_SECONDS,
        );
        assert_eq!(saved.endpoint, EndpointChange::Recovered);
    }

    #[test]
    fn redirects_and_client_errors_are_failures() {
        for status in [301, 302, 400, 404, 429] {
            let d = decide(&Answer::Status(status), 1, None, 0);
            assert!(!d.succeeded, "{status}");
            assert_eq!(d.job, JobEnd::RetryAt(5), "{status}");
        }
    }
}
