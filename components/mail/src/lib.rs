//! Mail for every Gatehouse component: queue it in the `email_outbox` table
//! together with the change that caused it, with a durable `mail.send` job
//! ([`gatehouse_jobs`]) that delivers it to an HTTP email API.
//!
//! Two calls make up a component's API, both on Spin's `default` database:
//!
//! - [`enqueue`] stores a plain-text mail as `pending` with its job, due at
//!   once (idempotency key: the mail's id), and returns its [`MailId`].
//!   Call it on the connection that makes the change the mail is about, so
//!   that the mail exists exactly when the change does.
//! - [`deliver`] runs at once the jobs of the given mails and, in the same
//!   call, up to [`schedule::RETRIES_PER_DELIVERY`] other due mail jobs.
//!   Call it when the request's database work is done, before answering.
//!   It never fails: a mail it could not send stays with its job, and the
//!   job runner (the `jobs` component's `POST /v1/admin/jobs/$run`, which a
//!   schedule calls) tries it again by the job policy's backoff, so mail is
//!   delivered even when the request's own attempt fails or never happens.
//!
//! ```ignore
//! // Inside a handler (wasm32 only: these calls reach Spin's SQLite,
//! // variables and outbound HTTP).
//! let id = gatehouse_mail::enqueue(&conn, "ada@example.com", "invitation",
//!     "You are invited", &body, now).await?;
//! // ... the rest of the request's writes ...
//! gatehouse_mail::deliver(&conn, &[id], unix_now()).await;
//! ```
//!
//! The job runner calls [`run_job`] for each claimed `mail.send` job; it
//! sends through [`deliver_one`], which any other caller may use too.
//!
//! The provider comes from Spin variables, which the calling component
//! must template from the app's (see spin.toml): `email_provider` (`none`,
//! `postmark` or `resend`), `email_api_base_url`, `email_api_token`
//! (secret) and `email_from`; its `allowed_outbound_hosts` must grant the
//! API's base URL. With `none`, or any variable missing, a request sends
//! nothing and mail stays `pending`; the job runner counts that as a failed
//! attempt, so the jobs end `dead` ("no email provider is configured") for
//! an operator to retry once a provider is set.
//!
//! Each attempt first claims the mail row with one conditional `UPDATE`
//! (unsent, not claimed, young enough), which also moves its
//! `next_attempt_at` past the longest possible attempt: of a job and a
//! request reaching for the same mail, one sends it. A failed attempt
//! records a short error (never a credential) on the mail and its job; the
//! job decides the next time or makes the mail `failed` after its last
//! attempt, or at once when the provider says the mail can never be
//! delivered. Mail still unsent [`schedule::MAX_AGE_SECONDS`] after it
//! was queued is given up rather than sent late: its links have expired.
//!
//! - [`provider`]: the Postmark and Resend wire formats, pure.
//! - [`schedule`]: claims, batch sizes and the age limit, pure.
//!
//! Only the Spin calls are compiled for wasm32; the rest is unit-tested
//! natively.

#![deny(missing_docs)]

pub mod provider;
pub mod schedule;

#[cfg(target_arch = "wasm32")]
mod delivery;
#[cfg(target_arch = "wasm32")]
mod outbox;

#[cfg(target_arch = "wasm32")]
pub use delivery::{deliver, deliver_one, run_job};
#[cfg(target_arch = "wasm32")]
pub use outbox::enqueue;

use gatehouse_http::Problem;

/// The kind of the job that sends one mail; its payload is
/// `{"mail_id": "mail_…"}` and its idempotency key the mail's id.
pub const SEND_JOB: &str = "mail.send";

/// The id of a queued mail: `mail_` and 128 random bits in hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MailId(String);

impl MailId {
    /// A fresh id.
    pub fn new() -> Result<MailId, MailError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|e| MailError::new(format!("no random source: {e}")))?;
        Ok(MailId(format!("mail_{}", hex::encode(bytes))))
    }

    /// An id read back from the outbox.
    pub fn from_stored(id: impl Into<String>) -> MailId {
        MailId(id.into())
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MailId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Queueing a mail failed: the database refused, or there was no
/// randomness for its id. The text is for logs, never for a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailError {
    detail: String,
}

impl MailError {
    fn new(detail: impl Into<String>) -> MailError {
        MailError {
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mail: {}", self.detail)
    }
}

impl std::error::Error for MailError {}

/// A mail that cannot be queued fails the request like any database error:
/// a 500 problem without internal text (the cause was logged where it
/// happened).
impl From<MailError> for Problem {
    fn from(_: MailError) -> Problem {
        Problem::internal()
    }
}

/// A mail that cannot be sent is the job's failure: its text goes to the
/// log as the job's, never to a response.
impl From<MailError> for gatehouse_jobs::JobError {
    fn from(err: MailError) -> gatehouse_jobs::JobError {
        gatehouse_jobs::JobError::new(err.to_string())
    }
}

/// How one [`deliver_one`] attempt at a mail ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The provider accepted the mail.
    Sent,
    /// Not sent; worth another attempt (the provider failed or refused for
    /// a reason that may pass, or another attempt holds the mail now).
    Retry(String),
    /// Never to be sent: the provider refused it for good, it is too old,
    /// or there is no such mail. It is `failed` now.
    Permanent(String),
    /// It was sent before: nothing was done.
    AlreadyDone,
}

/// What one [`deliver`] call did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Mails the provider accepted.
    pub sent: usize,
    /// Mails that failed and will be tried again.
    pub retrying: usize,
    /// Mails given up for good (`failed`, their jobs `dead`).
    pub given_up: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_random_hex() -> Result<(), MailError> {
        let (a, b) = (MailId::new()?, MailId::new()?);
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("mail_"));
        assert_eq!(a.as_str().len(), 5 + 32);
        assert!(a.as_str()[5..].bytes().all(|c| c.is_ascii_hexdigit()));
        Ok(())
    }

    #[test]
    fn a_queueing_error_keeps_its_detail_out_of_the_problem() {
        let err = MailError::new("disk I/O error at /data/db");
        assert!(err.to_string().contains("disk I/O"));
        let problem = Problem::from(err);
        assert_eq!(problem, Problem::internal());
    }
}
