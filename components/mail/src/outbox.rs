//! The `email_outbox` table (migrations 0002 and 0004) on Spin's SQLite,
//! and each mail's `mail.send` job (migration 0015). Database error text
//! goes to the log, never further.

use gatehouse_jobs::NewJob;
use spin_sdk::sqlite::{Connection, RowResult, Value};

use crate::schedule;
use crate::{MailError, MailId, SEND_JOB};

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

fn get_int(row: &RowResult, i: usize) -> Option<i64> {
    match row.values.get(i) {
        Some(Value::Integer(n)) => Some(*n),
        _ => None,
    }
}

/// Queues a plain-text mail as `pending`, with its `mail.send` job due at
/// once, and returns its id. Both rows are written together or not at all
/// (a savepoint, which also nests inside a caller's transaction). Use the
/// connection that makes the change the mail is about; nothing is sent
/// until [`deliver`](crate::deliver) or the job runner gets to it.
pub async fn enqueue(
    conn: &Connection,
    to: &str,
    kind: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<MailId, MailError> {
    let id = MailId::new().inspect_err(|e| eprintln!("{e}"))?;
    let mail = vec![
        text(id.as_str()),
        text(to),
        text(kind),
        text(subject),
        text(body),
        Value::Integer(now),
        Value::Integer(now),
    ];
    let job = NewJob {
        kind: SEND_JOB,
        payload: serde_json::json!({ "mail_id": id.as_str() }),
        idempotency_key: id.as_str(),
        run_at: now,
        max_attempts: gatehouse_jobs::policy().await.max_attempts,
    };
    run(conn, "SAVEPOINT mail_enqueue", vec![]).await?;
    let written = write(conn, mail, &job, now).await;
    let end = if written.is_ok() {
        "RELEASE mail_enqueue"
    } else {
        "ROLLBACK TO mail_enqueue"
    };
    let ended = run(conn, end, vec![]).await;
    if written.is_err() {
        // A savepoint rolled back to stays open until released.
        let _ = run(conn, "RELEASE mail_enqueue", vec![]).await;
    }
    written.and(ended).map(|_| id)
}

async fn write(
    conn: &Connection,
    mail: Vec<Value>,
    job: &NewJob<'_>,
    now: i64,
) -> Result<(), MailError> {
    run(
        conn,
        "INSERT INTO email_outbox (id, to_address, kind, subject, body_text, status, attempts, next_attempt_at, created_at)
         VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
        mail,
    )
    .await?;
    gatehouse_jobs::enqueue(conn, job, now)
        .await
        .map_err(|e| MailError::new(e.to_string()))?;
    Ok(())
}

/// A mail claimed for one attempt.
pub(crate) struct Claimed {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Why a mail could not be claimed.
pub(crate) enum Unclaimed {
    /// It was sent already.
    Sent,
    /// Another attempt holds it.
    Busy,
    /// It was queued too long ago to be sent; now it is `failed`.
    TooOld,
    /// There is no such mail.
    Missing,
}

/// Claims `id` for one attempt at `now`: one statement that succeeds only
/// while the mail is unsent (pending, or failed and retried by an
/// operator), not claimed by another attempt and young enough to send, and
/// that moves its `next_attempt_at` past the attempt, so nothing else can
/// claim it meanwhile.
pub(crate) async fn claim(
    conn: &Connection,
    id: &MailId,
    now: i64,
) -> Result<Result<Claimed, Unclaimed>, MailError> {
    let rows = run(
        conn,
        "UPDATE email_outbox SET status = 'pending', attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?
         WHERE id = ? AND status IN ('pending', 'failed') AND next_attempt_at <= ? AND created_at >= ?
         RETURNING to_address, subject, body_text",
        vec![
            Value::Integer(now),
            Value::Integer(now.saturating_add(schedule::CLAIM_SECONDS)),
            text(id.as_str()),
            Value::Integer(now),
            Value::Integer(schedule::oldest_sendable(now)),
        ],
    )
    .await?;
    if let Some(row) = rows.first() {
        return Ok(Ok(Claimed {
            to: get_text(row, 0),
            subject: get_text(row, 1),
            body: get_text(row, 2),
        }));
    }
    let rows = run(
        conn,
        "SELECT status, created_at FROM email_outbox WHERE id = ?",
        vec![text(id.as_str())],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(Err(Unclaimed::Missing));
    };
    if get_text(row, 0) == "sent" {
        return Ok(Err(Unclaimed::Sent));
    }
    if get_int(row, 1).unwrap_or_default() < schedule::oldest_sendable(now) {
        give_up(conn, id, TOO_OLD).await?;
        return Ok(Err(Unclaimed::TooOld));
    }
    Ok(Err(Unclaimed::Busy))
}

/// Why a mail queued too long ago is not sent.
pub(crate) const TOO_OLD: &str = "not sent within 24 hours of being queued";

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

/// Records a failed attempt worth repeating and releases the claim: the
/// mail's job decides when the next attempt comes ([`reschedule`]).
pub(crate) async fn release(
    conn: &Connection,
    id: &MailId,
    error: &str,
    now: i64,
) -> Result<(), MailError> {
    run(
        conn,
        "UPDATE email_outbox SET next_attempt_at = ?, last_error = ? WHERE id = ? AND status = 'pending'",
        vec![Value::Integer(now), text(error), text(id.as_str())],
    )
    .await?;
    Ok(())
}

/// Shows on an unsent mail when its job tries it next. Never earlier than
/// a claim another attempt holds on it.
pub(crate) async fn reschedule(conn: &Connection, id: &MailId, at: i64) -> Result<(), MailError> {
    run(
        conn,
        "UPDATE email_outbox SET next_attempt_at = MAX(next_attempt_at, ?) WHERE id = ? AND status = 'pending'",
        vec![Value::Integer(at), text(id.as_str())],
    )
    .await?;
    Ok(())
}

/// Gives an unsent mail up (`failed`), with why.
pub(crate) async fn give_up(conn: &Connection, id: &MailId, error: &str) -> Result<(), MailError> {
    run(
        conn,
        "UPDATE email_outbox SET status = 'failed', last_error = ? WHERE id = ? AND status <> 'sent'",
        vec![text(error), text(id.as_str())],
    )
    .await?;
    Ok(())
}
