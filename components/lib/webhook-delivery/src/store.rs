//! The Spin calls: sealing endpoint secrets and queueing delivery jobs.

use gatehouse_auth::db::{int, text};
use gatehouse_http::Problem;
use gatehouse_jobs::{JobError, NewJob};
use gatehouse_secrets::sealed::{Binding, Kind};
use gatehouse_secrets::sealing;
use spin_sdk::sqlite::Connection;

use crate::{DELIVER_JOB, JOB_ATTEMPTS, Trigger, job_payload};

/// Endpoint secrets are sealed with their org's data key
/// (`gatehouse_secrets::sealing`), bound to the org and the endpoint id,
/// so a sealed secret copied to another endpoint or org does not open.
fn binding<'a>(org_id: &'a str, endpoint_id: &'a str) -> Binding<'a> {
    Binding::org(Kind::WebhookEndpoint, org_id, endpoint_id)
}

/// What `sealed` holds for org `org_id`'s endpoint `endpoint_id`, read by
/// `parse`; none if it does not open (another master key, or a value
/// copied from another endpoint) or does not parse.
pub(crate) async fn opened<T>(
    conn: &Connection,
    org_id: &str,
    endpoint_id: &str,
    sealed: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, Problem> {
    Ok(sealing::open(conn, &binding(org_id, endpoint_id), sealed)
        .await?
        .and_then(|plain| String::from_utf8(plain).ok())
        .and_then(|plain| parse(&plain)))
}

/// `plain` (a `whsec_` secret or a signing key's text) sealed for org
/// `org_id`'s endpoint `endpoint_id`.
pub async fn seal_secret(
    conn: &Connection,
    org_id: &str,
    endpoint_id: &str,
    plain: &str,
    now: i64,
) -> Result<String, Problem> {
    sealing::seal(conn, &binding(org_id, endpoint_id), plain.as_bytes(), now).await
}

/// What `sealed` holds for org `org_id`'s endpoint `endpoint_id`; none if
/// it does not open (another master key, or a value copied from another
/// endpoint).
pub async fn open_secret(
    conn: &Connection,
    org_id: &str,
    endpoint_id: &str,
    sealed: &str,
) -> Result<Option<String>, Problem> {
    opened(conn, org_id, endpoint_id, sealed, |plain| {
        Some(plain.to_string())
    })
    .await
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
