//! The Spin calls: sealing endpoint secrets and queueing delivery jobs.

use gatehouse_auth::db::{int, text};
use gatehouse_auth::sealing::sealing_key;
use gatehouse_http::Problem;
use gatehouse_jobs::{JobError, NewJob};
use identity_core::sealed::SealingKey;
use spin_sdk::sqlite::Connection;

use crate::{DELIVER_JOB, JOB_ATTEMPTS, Trigger, job_payload};

/// Endpoint secrets are sealed with their own key, derived from the master
/// key; the endpoint id is the associated data, so a sealed secret copied
/// to another endpoint does not open.
pub(crate) async fn key() -> Result<SealingKey, Problem> {
    sealing_key(
        "webhook-endpoints",
        "webhook endpoints need the master_key variable (32 bytes of base64)",
    )
    .await
}

/// What `sealed` holds for endpoint `endpoint_id`, read by `parse`; none
/// if it does not open (another master key, or a value copied from
/// another endpoint) or does not parse.
pub(crate) fn opened<T>(
    key: &SealingKey,
    sealed: &str,
    endpoint_id: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    key.open(sealed, endpoint_id)
        .and_then(|plain| String::from_utf8(plain).ok())
        .and_then(|plain| parse(&plain))
}

/// `plain` (a `whsec_` secret or a signing key's text) sealed for endpoint
/// `endpoint_id`.
pub async fn seal_secret(plain: &str, endpoint_id: &str) -> Result<String, Problem> {
    Ok(key().await?.seal(plain.as_bytes(), endpoint_id))
}

/// What `sealed` holds for endpoint `endpoint_id`; none if it does not
/// open (another master key, or a value copied from another endpoint).
pub async fn open_secret(sealed: &str, endpoint_id: &str) -> Result<Option<String>, Problem> {
    Ok(opened(&key().await?, sealed, endpoint_id, |plain| {
        Some(plain.to_string())
    }))
}

/// Queues a delivery job for message `message_id`, due at `run_at`, on the
/// connection whose transaction made the reason for it. A scheduled job is
/// one per message (queueing it twice keeps one); each resend or recover
/// is its own job, and starts the message's schedule again: the message is
/// pending with no attempts counted, so it gets the schedule's every
/// attempt.
pub async fn queue(
    conn: &Connection,
    message_id: &str,
    trigger: Trigger,
    run_at: i64,
    now: i64,
) -> Result<(), JobError> {
    let key = match trigger {
        Trigger::Scheduled => message_id.to_string(),
        other => format!("{message_id}:{}:{}", other.as_str(), fresh_suffix()?),
    };
    if trigger != Trigger::Scheduled {
        gatehouse_jobs::rows(
            conn,
            "UPDATE webhook_messages SET status = 'pending', attempts = 0, next_attempt_at = ?2,
                    updated_at = ?3
             WHERE message_id = ?1",
            vec![text(message_id), int(run_at), int(now)],
        )
        .await?;
    }
    let job = NewJob {
        kind: DELIVER_JOB,
        payload: job_payload(message_id, trigger),
        idempotency_key: &key,
        run_at,
        max_attempts: JOB_ATTEMPTS,
    };
    gatehouse_jobs::enqueue(conn, &job, now).await.map(|_| ())
}

fn fresh_suffix() -> Result<String, JobError> {
    gatehouse_jobs::JobId::new().map(|id| id.as_str().trim_start_matches("job_").to_string())
}
