//! Notifications: what happened to a user, told on the channels their
//! preferences leave on. Other components call [`notify`] (or
//! [`notify_admins`]) where the event happens, on the connection that
//! makes the change: it records the notification and queues its
//! `notification.deliver` job, which the job runner runs:
//!
//! ```ignore
//! // wasm32 only: these calls reach Spin's SQLite.
//! gatehouse_notify::notify(&conn, None, &user_id, "password.changed",
//!     json!({"message": "Your password was reset."})).await?;
//! ```
//!
//! The job resolves the user's preferences ([`prefs`]: user > nearest
//! team > org > the kind's default; critical kinds always on their
//! defaults) and delivers on each channel that is on: `in_app` (the row
//! shows in the user's list), `email` (a mail queued in the outbox with
//! its own `mail.send` job) and `sms` (a Twilio-compatible API, see
//! [`sms`]). Each channel's delivery is recorded once done, so a retried
//! job skips the channels that succeeded; the mail and its record are
//! written in one transaction, so a notification is mailed at most once.
//!
//! - [`kinds`]: the kinds, their channels and defaults, one table.
//! - [`prefs`]: validating and resolving preferences, pure.
//! - [`message`]: the words of a mail and a text, pure.
//! - [`sms`]: the SMS provider's wire format, pure.
//!
//! Only the Spin calls are compiled for wasm32; the rest is unit-tested
//! natively.

#![deny(missing_docs)]

pub mod kinds;
pub mod message;
pub mod prefs;
pub mod sms;

#[cfg(target_arch = "wasm32")]
mod deliver;
#[cfg(target_arch = "wasm32")]
pub mod expiry;
#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(target_arch = "wasm32")]
pub use deliver::{run_job, sms_provider};
#[cfg(target_arch = "wasm32")]
pub use store::{layers, notify, notify_admins, notify_after, notify_once};

/// The kind of the job that delivers one notification; its payload is
/// `{"notification_id": "ntf_…"}`, its idempotency key the notification's id.
pub const DELIVER_JOB: &str = "notification.deliver";

/// How far ahead an API key's expiry is told to its owner: 7 days.
pub const KEY_EXPIRY_NOTICE_SECONDS: i64 = 7 * 24 * 3600;
