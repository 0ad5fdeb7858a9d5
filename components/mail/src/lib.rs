//! Mail for every Gatehouse component: queue it in the `email_outbox` table
//! together with the change that caused it, then deliver it to an HTTP
//! email API once that change is stored.
//!
//! Two calls make up the API, both on Spin's `default` database:
//!
//! - [`enqueue`] stores a plain-text mail as `pending` and returns its
//!   [`MailId`]. Call it on the connection that makes the change the mail
//!   is about, so that the mail exists exactly when the change does.
//! - [`deliver`] sends the given mails at once and, in the same call, up to
//!   [`schedule::RETRIES_PER_DELIVERY`] older mails whose retry time has
//!   come. Call it when the request's database work is done, before
//!   answering. It never fails: what it could not send stays in the outbox
//!   with its error and a retry time, and a later call picks it up. Spin
//!   components live for one request, so there is no background sender:
//!   requests that queue mail also carry the retries.
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
//! The provider comes from Spin variables, which the calling component
//! must template from the app's (see spin.toml): `email_provider` (`none`,
//! `postmark` or `resend`), `email_api_base_url`, `email_api_token`
//! (secret) and `email_from`; its `allowed_outbound_hosts` must grant the
//! API's base URL. With `none`, or any variable missing, nothing is sent
//! and mail stays `pending`.
//!
//! Each attempt first claims the row with one conditional `UPDATE` (pending
//! and due), which also moves its retry time past the longest possible
//! attempt: of two requests reaching for the same mail, one sends it. A
//! failed attempt records a short error (never a credential) and the next
//! time by exponential backoff; after [`schedule::MAX_ATTEMPTS`] attempts,
//! or when the provider says the mail can never be delivered, it becomes
//! `failed`. Mail still pending [`schedule::MAX_AGE_SECONDS`] after it was
//! queued is given up rather than sent late: its links have expired.
//!
//! - [`provider`]: the Postmark and Resend wire formats, pure.
//! - [`schedule`]: attempts, backoff, claims and batch sizes, pure.
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
pub use delivery::deliver;
#[cfg(target_arch = "wasm32")]
pub use outbox::enqueue;

use gatehouse_http::Problem;

/// The id of a queued mail: `mail_` and 128 random bits in hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MailId(String);

impl MailId {
    /// A fresh id.
    pub fn new() -> Result<MailId, MailError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|e| MailError::new(format!("no random source: {e}")))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(MailId(format!("mail_{hex}")))
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

/// What one [`deliver`] call did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Mails the provider accepted.
    pub sent: usize,
    /// Mails that failed and will be tried again.
    pub retrying: usize,
    /// Mails given up for good (`failed`).
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
