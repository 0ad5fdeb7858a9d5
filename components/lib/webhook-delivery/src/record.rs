//! What one attempt leaves in the database besides the job's end: its
//! attempt row, the message's state and the endpoint's change (with the
//! admins' mail when it is disabled for failing).

use gatehouse_jobs::JobError;
use spin_sdk::sqlite::{Connection, Value};

use crate::deliver::Attempted;
use crate::found::Found;
use crate::outcome::{Decision, EndpointChange, MessageEnd};
use gatehouse_auth::db::{get_int, get_opt_text, opt_text, text};
use gatehouse_jobs::rows;

/// The attempt row: how it ended, the answer's status, how long it took
/// and its short error (never the body or a secret).
pub(crate) async fn record_attempt(
    conn: &Connection,
    found: &Found,
    attempt: &Attempted,
    decision: &Decision,
    now: i64,
) -> Result<(), JobError> {
    rows(
        conn,
        "INSERT INTO webhook_attempts (org_id, attempt_id, message_id, endpoint_id, trigger, status,
                                       response_code, duration_ms, error, attempted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        vec![
            text(&found.org_id),
            text(gatehouse_auth::db::new_id("atmpt_")),
            text(&found.message_id),
            text(&found.endpoint_id),
            text(attempt.trigger.as_str()),
            text(if decision.succeeded {
                "succeeded"
            } else {
                "failed"
            }),
            attempt
                .answer
                .status()
                .map_or(Value::Null, |s| Value::Integer(i64::from(s))),
            Value::Integer(attempt.duration_ms),
            opt_text(decision.error.as_deref().map(gatehouse_jobs::clean_error)),
            Value::Integer(now),
        ],
    )
    .await
    .map(|_| ())
}

/// Sets the message's state; `attempted` counts one more attempt. A
/// message another job delivered meanwhile stays delivered: the receiver
/// has it (a resend marks it pending before its job runs).
pub(crate) async fn update_message(
    conn: &Connection,
    found: &Found,
    end: &MessageEnd,
    error: Option<&str>,
    attempted: bool,
    now: i64,
) -> Result<(), JobError> {
    let (status, next, last_error) = match end {
        MessageEnd::Delivered => ("delivered", None, None),
        MessageEnd::Failed(why) => ("failed", None, Some(why.as_str())),
        MessageEnd::Pending(at) => ("pending", Some(*at), error),
    };
    rows(
        conn,
        "UPDATE webhook_messages SET
             next_attempt_at = CASE WHEN status = 'delivered' THEN NULL ELSE ?4 END,
             last_error = CASE WHEN status = 'delivered' THEN last_error ELSE ?5 END,
             status = CASE WHEN status = 'delivered' THEN status ELSE ?3 END,
             attempts = attempts + ?6, updated_at = ?7
         WHERE org_id = ?1 AND message_id = ?2",
        vec![
            text(&found.org_id),
            text(&found.message_id),
            text(status),
            next.map_or(Value::Null, Value::Integer),
            opt_text(last_error.map(gatehouse_jobs::clean_error)),
            Value::Integer(i64::from(attempted)),
            Value::Integer(now),
        ],
    )
    .await
    .map(|_| ())
}

/// The endpoint's change: its failing mark set or cleared, or it disabled
/// (once: of two jobs disabling it, the one that changed the row mails).
pub(crate) async fn update_endpoint(
    conn: &Connection,
    found: &Found,
    change: EndpointChange,
    error: &str,
    now: i64,
) -> Result<(), JobError> {
    let at = |n: i64| Value::Integer(n);
    let (sql, params) = match change {
        EndpointChange::Recovered => (
            "UPDATE webhook_endpoints SET failing_since = NULL WHERE org_id = ?1 AND endpoint_id = ?2",
            vec![],
        ),
        EndpointChange::Failing(since) => (
            "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?3)
             WHERE org_id = ?1 AND endpoint_id = ?2",
            vec![at(since)],
        ),
        EndpointChange::Gone | EndpointChange::Disabled => (
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?3, disabled_at = ?4, updated_at = ?4
             WHERE org_id = ?1 AND endpoint_id = ?2 AND enabled = 1 AND deleted_at IS NULL
             RETURNING url, failing_since",
            vec![
                text(if change == EndpointChange::Gone {
                    "gone"
                } else {
                    "failing"
                }),
                at(now),
            ],
        ),
    };
    let mut all = vec![text(&found.org_id), text(&found.endpoint_id)];
    all.extend(params);
    let changed = rows(conn, sql, all).await?;
    if change == EndpointChange::Disabled
        && let Some(row) = changed.first()
    {
        let url = get_opt_text(row, 0).unwrap_or_default();
        let since = get_int(row, 1).unwrap_or(now);
        crate::disabled_mail::send(
            conn,
            &found.org_id,
            &found.endpoint_id,
            &url,
            since,
            error,
            now,
        )
        .await?;
    }
    Ok(())
}
