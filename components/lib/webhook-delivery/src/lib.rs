//! Outgoing webhooks: what happens in an org (an `org_events` row) becomes
//! one message for each of the org's enabled endpoints that takes its
//! type (migration 0023), and a background job of kind [`DELIVER_JOB`]
//! delivers each message, signed as Standard Webhooks with the endpoint's
//! secret(s), on the Standard Webhooks retry schedule ([`SCHEDULE`]).
//!
//! Resending one message or recovering everything failed since a time
//! queues another delivery job for the message (`queue`), recorded with
//! its [`Trigger`].
//!
//! - [`catalog`]: the event types, with the JSON Schemas of their data.
//! - [`message`]: a delivery's body and Standard Webhooks headers.
//! - [`outcome`]: what an attempt's answer decides.
//! - [`disabled_mail`]: what admins are told when an endpoint is disabled.
//! - [`url`]: where endpoints may be.
//!
//! On wasm32: `publish` records an event with its messages and jobs;
//! `begin`, `Delivery::attempt` and `settle` run one delivery job in
//! steps (the jobs component has several attempts in flight at once),
//! `run_job` runs one whole; `reaped` fails the message of a job the
//! reaper made dead; `purge` deletes what is past [`RETENTION_SECONDS`].

#![deny(missing_docs)]

pub mod catalog;
pub mod disabled_mail;
pub mod message;
pub mod outcome;
pub mod url;

#[cfg(target_arch = "wasm32")]
mod deliver;
#[cfg(target_arch = "wasm32")]
mod found;
#[cfg(target_arch = "wasm32")]
mod post;
#[cfg(target_arch = "wasm32")]
mod publish;
#[cfg(target_arch = "wasm32")]
mod record;
#[cfg(target_arch = "wasm32")]
mod retention;
#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(target_arch = "wasm32")]
pub use deliver::{Begun, DISABLED_MAIL, Delivery, Sent, begin, reaped, run_job, settle};
#[cfg(target_arch = "wasm32")]
pub use publish::{new_event_id, publish, publish_as};
#[cfg(target_arch = "wasm32")]
pub use retention::purge;
#[cfg(target_arch = "wasm32")]
pub use store::{open_secret, queue, seal_secret};

/// The delivery jobs' kind.
pub const DELIVER_JOB: &str = "webhook.deliver";

/// Claims a delivery job gets. More than the schedule's attempts: a claim
/// that makes no request (the secrets did not open, a lease lapsed) counts
/// as one, while the schedule counts the message's requests.
pub const JOB_ATTEMPTS: i64 = 20;

/// Seconds an attempt waits for the answer's status (Standard Webhooks:
/// 15 s).
pub const ANSWER_SECONDS: u64 = 15;

/// Seconds an attempt reads the answer's body for, once its status came.
pub const DRAIN_SECONDS: u64 = 1;

/// The longest an attempt lasts: a runner starts one only while its
/// remaining time covers this.
pub const LONGEST_ATTEMPT: std::time::Duration =
    std::time::Duration::from_secs(ANSWER_SECONDS + DRAIN_SECONDS);

/// How long attempts, and messages no longer pending, are kept: 30 days,
/// longer than the 14 days back that a recovery may reach.
pub const RETENTION_SECONDS: i64 = 30 * 86_400;

// A job outlasts its message's schedule, and records outlast the 14 days
// back that a recovery reaches.
const _: () = assert!(JOB_ATTEMPTS > SCHEDULE.len() as i64 && RETENTION_SECONDS > 14 * 86_400);

/// The wait before each attempt, counted from the one before it: at once,
/// then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (the
/// Standard Webhooks schedule).
pub const SCHEDULE: [i64; 10] = [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];

/// Why a delivery job was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The event's first delivery and its scheduled retries.
    Scheduled,
    /// An admin sent one message again.
    Resend,
    /// An admin sent everything failed since a time again.
    Recover,
}

impl Trigger {
    /// The trigger as stored (`webhook_attempts.trigger`) and in job payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Scheduled => "scheduled",
            Trigger::Resend => "resend",
            Trigger::Recover => "recover",
        }
    }

    /// The trigger named `name`, if any.
    pub fn parse(name: &str) -> Option<Trigger> {
        [Trigger::Scheduled, Trigger::Resend, Trigger::Recover]
            .into_iter()
            .find(|t| t.as_str() == name)
    }
}

/// The payload of a delivery job: the message and why it was queued.
pub fn job_payload(message_id: &str, trigger: Trigger) -> serde_json::Value {
    serde_json::json!({"message_id": message_id, "trigger": trigger.as_str()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_round_trip_by_name() {
        for t in [Trigger::Scheduled, Trigger::Resend, Trigger::Recover] {
            assert_eq!(Trigger::parse(t.as_str()), Some(t));
        }
        assert_eq!(Trigger::parse("Scheduled"), None);
    }

    #[test]
    fn the_schedule_is_ten_attempts_over_about_three_days() {
        assert_eq!(SCHEDULE.len(), 10);
        assert_eq!(SCHEDULE[0], 0);
        assert_eq!(SCHEDULE.iter().sum::<i64>(), 272_105);
    }
}
