//! The `email_outbox` table (migrations 0002 and 0004) on Spin's SQLite.
//! Database error text goes to the log, never further.

use spin_sdk::sqlite::{Connection, RowResult, Value};

use crate::schedule::{self, Next};
use crate::{MailError, MailId};

fn failed(what: &str, detail: impl std::fmt::Debug) -> MailError {
    let err = MailError::new(format!("database {what} failed: {detail:?}"));
    eprintln!("{err}");
    err
}

async fn run(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
) -> Result<Vec<RowResult>, MailError> {
    let rows = conn
        .execute(sql, params)
        .await
        .map_err(|e| failed("statement", e))?;
    rows.collect().await.map_err(|e| failed("read", e))
}

fn text(v: impl Into<String>) -> Value {
    Value::Text(v.into())
}

fn get_text(row: &RowResult, i: usize) -> String {
    match row.values.get(i) {
        Some(Value::Text(t)) => t.clone(),
        _ => String::new(),
    }
}

/// Queues a plain-text mail as `pending`, due at once, and returns its id.
/// Use the connection that makes the change the mail is about; nothing is
/// sent until [`deliver`](crate::deliver) is called.
pub async fn enqueue(
    conn: &Connection,
    to: &str,
    kind: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<MailId, MailError> {
    let id = MailId::new().inspect_err(|e| eprintln!("{e}"))?;
    run(
        conn,
        "INSERT INTO email_outbox (id, to_address, kind, subject, body_text, status, attempts, next_attempt_at, created_at)
         VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
        vec![
            text(id.as_str()),
            text(to),
            text(kind),
            text(subject),
            text(body),
            Value::Integer(now),
            Value::Integer(now),
        ],
    )
    .await?;
    Ok(id)
}

/// A mail claimed for one attempt.
pub(crate) struct Claimed {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Attempts including this one.
    pub attempts: i64,
}

/// Claims `id` for one attempt at `now`: one statement that succeeds only
/// while the mail is pending, due and young enough to send, and that moves
/// its retry time past the attempt, so no other request can claim it too.
/// `None` when another request has it, or it is sent, failed or not due.
pub(crate) async fn claim(
    conn: &Connection,
    id: &MailId,
    now: i64,
) -> Result<Option<Claimed>, MailError> {
    let rows = run(
        conn,
        "UPDATE email_outbox SET attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?
         WHERE id = ? AND status = 'pending' AND next_attempt_at <= ? AND created_at >= ?
         RETURNING to_address, subject, body_text, attempts",
        vec![
            Value::Integer(now),
            Value::Integer(now.saturating_add(schedule::CLAIM_SECONDS)),
            text(id.as_str()),
            Value::Integer(now),
            Value::Integer(schedule::oldest_sendable(now)),
        ],
    )
    .await?;
    Ok(rows.first().map(|row| Claimed {
        to: get_text(row, 0),
        subject: get_text(row, 1),
        body: get_text(row, 2),
        attempts: match row.values.get(3) {
            Some(Value::Integer(n)) => *n,
            _ => schedule::MAX_ATTEMPTS,
        },
    }))
}

/// Gives up pending mail too old to send (see
/// [`MAX_AGE_SECONDS`](schedule::MAX_AGE_SECONDS)).
pub(crate) async fn expire(conn: &Connection, now: i64) -> Result<(), MailError> {
    run(
        conn,
        "UPDATE email_outbox SET status = 'failed', last_error = 'not sent within 24 hours of being queued'
         WHERE status = 'pending' AND created_at < ?",
        vec![Value::Integer(schedule::oldest_sendable(now))],
    )
    .await?;
    Ok(())
}

/// Up to `limit` pending mails due at `now`, the longest waiting first.
pub(crate) async fn due(
    conn: &Connection,
    now: i64,
    limit: usize,
) -> Result<Vec<MailId>, MailError> {
    let rows = run(
        conn,
        "SELECT id FROM email_outbox WHERE status = 'pending' AND next_attempt_at <= ?
         ORDER BY next_attempt_at, created_at LIMIT ?",
        vec![
            Value::Integer(now),
            Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)),
        ],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| MailId::from_stored(get_text(row, 0)))
        .collect())
}

/// Records that the provider accepted the mail. `message_id` is NULL when
/// the provider gave none.
pub(crate) async fn record_sent(
    conn: &Connection,
    id: &MailId,
    provider: &str,
    message_id: Option<&str>,
    now: i64,
) -> Result<(), MailError> {
    run(
        conn,
        "UPDATE email_outbox SET status = 'sent', sent_at = ?, provider = ?, provider_message_id = ?, last_error = NULL
         WHERE id = ?",
        vec![
            Value::Integer(now),
            text(provider),
            message_id.map(text).unwrap_or(Value::Null),
            text(id.as_str()),
        ],
    )
    .await?;
    Ok(())
}

/// Records a failed attempt: due again later, or `failed` for good.
pub(crate) async fn record_failure(
    conn: &Connection,
    id: &MailId,
    next: Next,
    error: &str,
) -> Result<(), MailError> {
    let (sql, params) = match next {
        Next::RetryAt(at) => (
            "UPDATE email_outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?",
            vec![Value::Integer(at), text(error), text(id.as_str())],
        ),
        Next::GiveUp => (
            "UPDATE email_outbox SET status = 'failed', last_error = ? WHERE id = ?",
            vec![text(error), text(id.as_str())],
        ),
    };
    run(conn, sql, params).await?;
    Ok(())
}
