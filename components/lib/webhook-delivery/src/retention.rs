//! Deleting old delivery records: attempts, and messages no longer
//! pending, past [`RETENTION_SECONDS`], a bounded batch of each per call
//! (the jobs runner's housekeeping), so a backlog never makes a run slow.

use gatehouse_auth::db::int;
use gatehouse_jobs::JobError;
use spin_sdk::sqlite::Connection;

use crate::RETENTION_SECONDS;

/// Rows of each table one call deletes at most.
const BATCH: i64 = 1_000;

/// Deletes attempts made, and messages (delivered or failed) last changed,
/// more than [`RETENTION_SECONDS`] before `now`; returns how many rows.
pub async fn purge(conn: &Connection, now: i64) -> Result<usize, JobError> {
    let before = now.saturating_sub(RETENTION_SECONDS);
    let attempts = gatehouse_jobs::rows(
        conn,
        "DELETE FROM webhook_attempts WHERE attempt_id IN
            (SELECT attempt_id FROM webhook_attempts WHERE attempted_at < ?1 LIMIT ?2)
         RETURNING attempt_id",
        vec![int(before), int(BATCH)],
    )
    .await?;
    // A pending message is kept whatever its age: a job still delivers it.
    let messages = gatehouse_jobs::rows(
        conn,
        "DELETE FROM webhook_messages WHERE message_id IN
            (SELECT message_id FROM webhook_messages
             WHERE status <> 'pending' AND updated_at < ?1 LIMIT ?2)
         RETURNING message_id",
        vec![int(before), int(BATCH)],
    )
    .await?;
    Ok(attempts.len() + messages.len())
}
