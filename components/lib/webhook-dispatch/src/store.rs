//! The Spin side: the handler list, queueing, and running one job.

use bytes::Bytes;
use gatehouse_jobs::schedule::Policy;
use gatehouse_jobs::{Finished, Job, JobError, NewJob, Outcome};
use http_body_util::BodyExt;
use spin_sdk::http::FullBody;
use spin_sdk::sqlite::{Connection, RowResult, Value};
use webhooks_core::{Handler, Provider, SigningSecret, matching, parse_handlers, sign_v1};

use crate::{
    DISPATCH_JOB, JobState, Stored, envelope, handler_secret, job_key, job_payload, progress,
    round_keys, webhook_id,
};

/// The deployment's handlers (`webhook_handlers`); a setting that does not
/// parse is logged and counts as none, so deliveries are still stored.
pub async fn handlers() -> Vec<Handler> {
    if let Some(read) = HANDLERS.with(|h| h.borrow().clone()) {
        return read;
    }
    let text = spin_sdk::variables::get("webhook_handlers")
        .await
        .unwrap_or_default();
    let read = parse_handlers(&text).unwrap_or_else(|e| {
        eprintln!("webhooks: {e}; no handler is used");
        Vec::new()
    });
    HANDLERS.with(|h| *h.borrow_mut() = Some(read.clone()));
    read
}

thread_local! {
    /// The handlers this instance read and parsed, once: every delivery
    /// needs them, and an instance serves a bounded number of requests,
    /// so a changed setting reaches the next instances.
    static HANDLERS: std::cell::RefCell<Option<Vec<Handler>>> = const { std::cell::RefCell::new(None) };
}

/// The URLs of the handlers that take a delivery from `source` of
/// `provider` with `event_type`, each once.
pub async fn handler_urls(
    source: &str,
    provider: Provider,
    event_type: Option<&str>,
) -> Vec<String> {
    matching(&handlers().await, source, provider, event_type)
        .iter()
        .map(|h| h.url.clone())
        .collect()
}

/// Queues event `event_id` for each of `urls`, inside the caller's
/// transaction. `round` tells a replay's jobs (the replay's id) from the
/// first ones ([`crate::FIRST_ROUND`]); the same event, handler and round
/// is one job.
pub async fn queue(
    conn: &Connection,
    event_id: &str,
    urls: &[String],
    round: &str,
    policy: &Policy,
    now: i64,
) -> Result<(), JobError> {
    for url in urls {
        let key = job_key(event_id, round, url);
        let job = NewJob {
            kind: DISPATCH_JOB,
            payload: job_payload(event_id, url, webhook_id(event_id, round)),
            idempotency_key: &key,
            run_at: now,
            max_attempts: policy.max_attempts,
        };
        gatehouse_jobs::enqueue(conn, &job, now).await?;
    }
    Ok(())
}

fn err(e: impl std::fmt::Debug) -> JobError {
    JobError::new(format!("{e:?}"))
}

async fn rows(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
) -> Result<Vec<RowResult>, JobError> {
    let result = conn.execute(sql, params).await.map_err(err)?;
    result.collect().await.map_err(err)
}

fn text(row: &RowResult, i: usize) -> Option<String> {
    match row.values.get(i) {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    }
}

fn int(row: &RowResult, i: usize) -> Option<i64> {
    match row.values.get(i) {
        Some(Value::Integer(n)) => Some(*n),
        _ => None,
    }
}

/// Runs one dispatch job and records how it ended, on the job and on the
/// event.
pub async fn run_job(
    conn: &Connection,
    job: &Job,
    policy: &Policy,
    now: i64,
) -> Result<Finished, JobError> {
    let field = |name: &str| {
        job.payload
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let (Some(event_id), Some(url)) = (field("event_id"), field("url")) else {
        let outcome = Outcome::Permanent("the payload names no event_id and url".into());
        return gatehouse_jobs::finish(conn, job, outcome, policy, now).await;
    };
    // A job queued before replays got ids of their own names none: it
    // sends the event's, as it did.
    let message_id = field("webhook_id").unwrap_or_else(|| event_id.clone());
    let secret = spin_sdk::variables::get("webhook_handler_secret")
        .await
        .unwrap_or_default();
    let secret = match handler_secret(&secret) {
        Ok(secret) => secret,
        // Nothing is sent unsigned or weakly signed. The fix is the
        // deployment's, not the handler's: no attempt is spent on it.
        Err(why) => return defer_unsigned(conn, job, &event_id, &why, now).await,
    };
    let outcome = attempt(conn, &event_id, &message_id, &url, &secret, now).await?;
    // The job's end and the event's status are one transaction: a run
    // that stops between them leaves neither.
    gatehouse_jobs::transaction(conn, settle(conn, job, outcome, &event_id, policy, now)).await
}

/// How long handler jobs wait while `webhook_handler_secret` is not one
/// to sign with.
const UNSIGNED_WAIT_SECS: i64 = 60;

/// Gives a claimed `job` back while the handler secret is unusable
/// (`why`): pending again [`UNSIGNED_WAIT_SECS`] later, its attempt not
/// counted (a misconfiguration must not kill events), with `why` as its
/// error so the job and its event say what to fix. The other due handler
/// jobs wait as long, so a run claims none of them and logs this once.
async fn defer_unsigned(
    conn: &Connection,
    job: &Job,
    event_id: &str,
    why: &str,
    now: i64,
) -> Result<Finished, JobError> {
    let at = now + UNSIGNED_WAIT_SECS;
    let deferred = gatehouse_jobs::transaction(conn, async {
        let held = rows(
            conn,
            "UPDATE jobs SET state = 'pending', attempts = MAX(attempts - 1, 0), run_at = ?4, last_error = ?5,
                    lease_owner = NULL, lease_until = NULL, updated_at = ?1
             WHERE id = ?2 AND state = 'running' AND lease_owner = ?3
             RETURNING id",
            vec![
                Value::Integer(now),
                Value::Text(job.id.as_str().to_string()),
                Value::Text(job.lease_owner.clone().unwrap_or_default()),
                Value::Integer(at),
                Value::Text(gatehouse_jobs::clean_error(why)),
            ],
        )
        .await?;
        if held.is_empty() {
            return Ok(None);
        }
        let others = rows(
            conn,
            "UPDATE jobs SET run_at = ?2, updated_at = ?1
             WHERE kind = ?3 AND state = 'pending' AND run_at < ?2
             RETURNING id",
            vec![
                Value::Integer(now),
                Value::Integer(at),
                Value::Text(DISPATCH_JOB.to_string()),
            ],
        )
        .await?;
        refresh(conn, event_id).await?;
        Ok(Some(others.len()))
    })
    .await?;
    Ok(match deferred {
        Some(others) => {
            eprintln!(
                "webhooks: nothing is handed to handlers for {UNSIGNED_WAIT_SECS} s ({} jobs wait, no attempt counted): {why}",
                others + 1
            );
            Finished::RetryAt(at)
        }
        None => Finished::LeaseLost,
    })
}

/// Records how the job ended, and the event's status with it.
async fn settle(
    conn: &Connection,
    job: &Job,
    outcome: Outcome,
    event_id: &str,
    policy: &Policy,
    now: i64,
) -> Result<Finished, JobError> {
    let finished = gatehouse_jobs::finish(conn, job, outcome, policy, now).await?;
    if finished != Finished::LeaseLost {
        refresh(conn, event_id).await?;
    }
    Ok(finished)
}

/// Records on its event that the reaper made dead a dispatch `job` whose
/// runner stopped during its last attempt; inside the reaper's
/// transaction.
pub async fn reaped(conn: &Connection, job: &Job) -> Result<(), JobError> {
    match job.payload.get("event_id").and_then(|v| v.as_str()) {
        Some(event_id) => refresh(conn, event_id).await,
        None => Ok(()),
    }
}

/// Sets the event's status from the jobs of its current round (see
/// [`progress`]): however its jobs ended (in any order, by a run, the
/// reaper or an operator's retry), the status says where they stand now.
async fn refresh(conn: &Connection, event_id: &str) -> Result<(), JobError> {
    let event = rows(
        conn,
        "SELECT dispatch_round FROM webhook_events WHERE event_id = ?1",
        vec![Value::Text(event_id.to_string())],
    )
    .await?;
    let Some(round) = event.first().and_then(|row| text(row, 0)) else {
        return Ok(());
    };
    let (start, end) = round_keys(event_id, &round);
    let jobs = rows(
        conn,
        "SELECT state, last_error FROM jobs
         WHERE kind = ?1 AND idempotency_key >= ?2 AND idempotency_key < ?3
         ORDER BY updated_at, rowid",
        vec![
            Value::Text(DISPATCH_JOB.into()),
            Value::Text(start),
            Value::Text(end),
        ],
    )
    .await?;
    let states: Vec<(String, Option<String>)> = jobs
        .iter()
        .map(|row| (text(row, 0).unwrap_or_default(), text(row, 1)))
        .collect();
    let jobs: Vec<JobState<'_>> = states
        .iter()
        .map(|(state, last_error)| JobState {
            state,
            last_error: last_error.as_deref(),
        })
        .collect();
    let Some(now) = progress(&jobs) else {
        return Ok(());
    };
    rows(
        conn,
        "UPDATE webhook_events SET status = ?2, handlers_pending = ?3, last_error = ?4
         WHERE event_id = ?1",
        vec![
            Value::Text(event_id.to_string()),
            Value::Text(now.status.into()),
            Value::Integer(now.handlers_pending),
            now.last_error.map_or(Value::Null, Value::Text),
        ],
    )
    .await?;
    Ok(())
}

/// One delivery of the event to `url`, as message `message_id`.
async fn attempt(
    conn: &Connection,
    event_id: &str,
    message_id: &str,
    url: &str,
    secret: &SigningSecret,
    now: i64,
) -> Result<Outcome, JobError> {
    let found = rows(
        conn,
        "SELECT org_id, source_id, provider, event_type, delivery_id, received_at, signed_at, content_type, payload
         FROM webhook_events WHERE event_id = ?",
        vec![Value::Text(event_id.to_string())],
    )
    .await?;
    let Some(row) = found.first() else {
        return Ok(Outcome::Permanent("the event is no longer stored".into()));
    };
    let payload = match row.values.get(8) {
        Some(Value::Blob(b)) => b.clone(),
        Some(Value::Text(t)) => t.clone().into_bytes(),
        _ => Vec::new(),
    };
    let (org_id, source_id, provider, delivery_id) =
        (text(row, 0), text(row, 1), text(row, 2), text(row, 4));
    let (event_type, content_type) = (text(row, 3), text(row, 7));
    let stored = Stored {
        id: event_id,
        org_id: org_id.as_deref().unwrap_or_default(),
        source_id: source_id.as_deref().unwrap_or_default(),
        provider: provider.as_deref().unwrap_or_default(),
        event_type: event_type.as_deref(),
        delivery_id: delivery_id.as_deref().unwrap_or_default(),
        received_at: int(row, 5).unwrap_or_default(),
        signed_at: int(row, 6),
        content_type: content_type.as_deref(),
        payload: &payload,
    };
    let body = envelope(&stored).to_string().into_bytes();
    let signature = sign_v1(message_id, now, &body, secret);
    Ok(match post(url, message_id, now, &signature, body).await {
        Ok(status) if (200..300).contains(&status) => Outcome::Done,
        Ok(status) => Outcome::Retry(format!("the handler answered {status}")),
        Err(e) => Outcome::Retry(format!("the handler could not be reached: {e}")),
    })
}

/// POSTs `body`; the answer's status, or why there was none.
async fn post(
    url: &str,
    id: &str,
    now: i64,
    signature: &str,
    body: Vec<u8>,
) -> Result<u16, String> {
    let mut req = http::Request::post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(FullBody::new(Bytes::from(body)))
        .map_err(|_| "the request could not be built".to_string())?;
    req.extensions_mut()
        .insert(gatehouse_http::outbound::timeouts());
    let res = spin_sdk::http::send(req)
        .await
        .map_err(|code| gatehouse_http::outbound::failure(&code))?;
    let status = res.status().as_u16();
    // The answer's body is not needed; reading it frees the connection.
    let _ = res.into_body().collect().await;
    Ok(status)
}
