//! Login attempts: recorded, counted for throttling, and compared with a
//! user's history to spot sign-ins from devices never seen before.
//!
//! Throttling (see [`identity_core::throttle`]) counts failures per email
//! address (whether or not it has an account, so a throttled answer
//! reveals nothing), per (email, client address) and per client address,
//! and slows tries down rather than refusing them.

use gatehouse_http::Problem;
use identity_core::throttle::{self, Failures, Recent};
use spin_sdk::sqlite::Connection;

use crate::db;

/// What one attempt came to.
#[derive(Clone, Copy)]
pub enum Outcome {
    /// Signed in.
    Success,
    /// Unknown email or wrong password.
    BadCredentials,
    /// Right password, email not verified yet.
    NotVerified,
    /// Right password, account inactive.
    Inactive,
    /// Refused before checking, too many recent failures.
    Throttled,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::BadCredentials => "bad_credentials",
            Outcome::NotVerified => "not_verified",
            Outcome::Inactive => "inactive",
            Outcome::Throttled => "throttled",
        }
    }
}

/// Who tried, from where.
pub struct Attempt<'a> {
    /// The account, when the email matched one.
    pub user_id: Option<&'a str>,
    /// The email as normalized.
    pub email: &'a str,
    /// Client address without port.
    pub address: Option<&'a str>,
    /// The client's user agent.
    pub agent: Option<&'a str>,
}

/// Records an attempt.
pub async fn record(
    conn: &Connection,
    attempt: &Attempt<'_>,
    outcome: Outcome,
    new_device: bool,
    now: i64,
) -> Result<(), Problem> {
    db::exec(
        conn,
        "INSERT INTO login_attempts (user_id, email_normalized, client_address, user_agent, outcome, new_device, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        vec![
            db::opt_text(attempt.user_id.map(str::to_string)),
            db::text(attempt.email),
            db::opt_text(attempt.address.map(str::to_string)),
            db::opt_text(attempt.agent.map(str::to_string)),
            db::text(outcome.as_str()),
            db::int(i64::from(new_device)),
            db::int(now),
        ],
    )
    .await?;
    Ok(())
}

/// Seconds to wait before this attempt may be judged (see
/// [`identity_core::throttle`]); `None` when it may proceed now.
pub async fn throttled(
    conn: &Connection,
    attempt: &Attempt<'_>,
    now: i64,
) -> Result<Option<i64>, Problem> {
    let since = now - throttle::WINDOW_SECONDS;
    // One pass over the window's failures for this email or address.
    let rows = db::query(
        conn,
        "SELECT COALESCE(SUM(email_normalized = ?1 AND client_address IS ?2), 0),
                COALESCE(MAX(CASE WHEN email_normalized = ?1 AND client_address IS ?2 THEN created_at END), 0),
                COALESCE(SUM(email_normalized = ?1), 0),
                COALESCE(MAX(CASE WHEN email_normalized = ?1 THEN created_at END), 0),
                COALESCE(SUM(client_address IS ?2 AND ?2 IS NOT NULL), 0),
                COALESCE(MAX(CASE WHEN client_address IS ?2 AND ?2 IS NOT NULL THEN created_at END), 0)
         FROM login_attempts
         WHERE outcome = 'bad_credentials' AND created_at > ?3 AND (email_normalized = ?1 OR client_address = ?2)",
        vec![
            db::text(attempt.email),
            db::opt_text(attempt.address.map(str::to_string)),
            db::int(since),
        ],
    )
    .await?;
    let int = |i| {
        rows.first()
            .and_then(|r| db::get_int(r, i))
            .unwrap_or_default()
    };
    let failures = |i| Failures {
        count: int(i),
        last_at: int(i + 1),
    };
    let mut recent = Recent {
        pair: failures(0),
        email: failures(2),
        address: failures(4),
        known_device: false,
    };
    if throttle::wait(&recent, now).is_some() {
        recent.known_device = known_device(conn, attempt).await?;
    }
    Ok(throttle::wait(&recent, now))
}

/// Whether this address and user agent signed in to the email's account
/// before.
async fn known_device(conn: &Connection, attempt: &Attempt<'_>) -> Result<bool, Problem> {
    let Some(address) = attempt.address else {
        return Ok(false);
    };
    let rows = db::query(
        conn,
        "SELECT 1 FROM login_attempts WHERE email_normalized = ? AND client_address = ? AND user_agent IS ? AND outcome = 'success' LIMIT 1",
        vec![
            db::text(attempt.email),
            db::text(address),
            db::opt_text(attempt.agent.map(str::to_string)),
        ],
    )
    .await?;
    Ok(!rows.is_empty())
}

/// Whether a successful sign-in comes from an address and agent this user
/// never signed in from, when the user has signed in before.
pub async fn is_new_device(conn: &Connection, attempt: &Attempt<'_>) -> Result<bool, Problem> {
    let Some(user_id) = attempt.user_id else {
        return Ok(false);
    };
    let rows = db::query(
        conn,
        "SELECT COUNT(*), COALESCE(SUM(client_address IS ? AND user_agent IS ?), 0) FROM login_attempts WHERE user_id = ? AND outcome = 'success'",
        vec![
            db::opt_text(attempt.address.map(str::to_string)),
            db::opt_text(attempt.agent.map(str::to_string)),
            db::text(user_id),
        ],
    )
    .await?;
    let row = rows.first();
    let earlier = row.and_then(|r| db::get_int(r, 0)).unwrap_or_default();
    let same_device = row.and_then(|r| db::get_int(r, 1)).unwrap_or_default();
    Ok(earlier > 0 && same_device == 0)
}
