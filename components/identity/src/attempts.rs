//! Login attempts: recorded, counted for throttling, and compared with a
//! user's history to spot sign-ins from devices never seen before.
//!
//! Throttling counts failures per email address (whether or not it has an
//! account, so a throttled answer reveals nothing) and per client address.

use gatehouse_http::Problem;
use spin_sdk::sqlite::Connection;

use crate::db;

/// The window failures are counted in.
pub const WINDOW_SECONDS: i64 = 15 * 60;
/// Failures per email address within the window before logins pause.
pub const MAX_FAILURES_PER_EMAIL: i64 = 5;
/// Failures per client address within the window before logins pause.
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;

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

async fn count(conn: &Connection, column: &str, value: &str, since: i64) -> Result<i64, Problem> {
    // `column` is one of two fixed names, never input.
    let sql = format!(
        "SELECT COUNT(*) FROM login_attempts WHERE {column} = ? AND outcome = 'bad_credentials' AND created_at > ?"
    );
    let rows = db::query(conn, &sql, vec![db::text(value), db::int(since)]).await?;
    Ok(rows
        .first()
        .and_then(|r| db::get_int(r, 0))
        .unwrap_or_default())
}

/// Seconds to wait when the email or the address has failed too often
/// within the window; `None` when an attempt may proceed.
pub async fn throttled(
    conn: &Connection,
    attempt: &Attempt<'_>,
    now: i64,
) -> Result<Option<i64>, Problem> {
    let since = now - WINDOW_SECONDS;
    if count(conn, "email_normalized", attempt.email, since).await? >= MAX_FAILURES_PER_EMAIL {
        return Ok(Some(WINDOW_SECONDS));
    }
    if let Some(address) = attempt.address
        && count(conn, "client_address", address, since).await? >= MAX_FAILURES_PER_ADDRESS
    {
        return Ok(Some(WINDOW_SECONDS));
    }
    Ok(None)
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
