//! The Spin side: the handler list, queueing, and running one job.

use bytes::Bytes;
use gatehouse_jobs::schedule::Policy;
use gatehouse_jobs::{Finished, Job, JobError, NewJob, Outcome};
use http_body_util::BodyExt;
use spin_sdk::http::FullBody;
use spin_sdk::sqlite::{Connection, RowResult, Value};
use webhooks_core::{Handler, Provider, SigningSecret, matching, parse_handlers, sign_v1};

use crate::{DISPATCH_JOB, Stored, envelope, job_payload};

/// The deployment's handlers (`webhook_handlers`); a setting that does not
/// parse is logged and counts as none, so deliveries are still stored.
pub async fn handlers() -> Vec<Handler> {
    let text = spin_sdk::variables::get("webhook_handlers")
        .await
        .unwrap_or_default();
    parse_handlers(&text).unwrap_or_else(|e| {
        eprintln!("webhooks: {e}; no handler is used");
        Vec::new()
    })
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
/// transaction. `round` tells a replay's jobs from the first ones (`0`);
/// the same event, handler and round is one job.
pub async fn queue(
    conn: &Connection,
    event_id: &str,
    urls: &[String],
    round: &str,
    policy: &Policy,
    now: i64,
) -> Result<(), JobError> {
    for url in urls {
        let key = format!("{event_id} {round} {url}");
        let job = NewJob {
            kind: DISPATCH_JOB,
            payload: job_payload(event_id, url),
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
    let outcome = attempt(conn, &event_id, &url, now).await?;
    let error = match &outcome {
        Outcome::Retry(e) | Outcome::Permanent(e) => gatehouse_jobs::clean_error(e),
        Outcome::Done => String::new(),
    };
    // The job's end and the event's status are one transaction: a run
    // that stops between them leaves neither.
    rows(conn, "BEGIN IMMEDIATE", vec![]).await?;
    let settled = settle(conn, job, outcome, &event_id, error, policy, now).await;
    let end = if settled.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    let ended = rows(conn, end, vec![]).await;
    let finished = settled?;
    ended?;
    Ok(finished)
}

/// Records how the job ended, and the event's status with it.
async fn settle(
    conn: &Connection,
    job: &Job,
    outcome: Outcome,
    event_id: &str,
    error: String,
    policy: &Policy,
    now: i64,
) -> Result<Finished, JobError> {
    let event_id = event_id.to_string();
    let finished = gatehouse_jobs::finish(conn, job, outcome, policy, now).await?;
    let (sql, params) = match finished {
        Finished::Done => (
            "UPDATE webhook_events SET handlers_pending = MAX(handlers_pending - 1, 0),
                 status = CASE WHEN status = 'dead' OR handlers_pending > 1 THEN status ELSE 'dispatched' END
             WHERE event_id = ?1",
            vec![Value::Text(event_id)],
        ),
        Finished::RetryAt(_) => (
            "UPDATE webhook_events SET status = CASE WHEN status = 'dead' THEN status ELSE 'failed' END,
                 last_error = ?2
             WHERE event_id = ?1",
            vec![Value::Text(event_id), Value::Text(error)],
        ),
        Finished::Dead => (
            "UPDATE webhook_events SET status = 'dead', last_error = ?2,
                 handlers_pending = MAX(handlers_pending - 1, 0)
             WHERE event_id = ?1",
            vec![Value::Text(event_id), Value::Text(error)],
        ),
        Finished::LeaseLost => return Ok(finished),
    };
    rows(conn, sql, params).await?;
    Ok(finished)
}

/// One delivery of the event to `url`.
async fn attempt(
    conn: &Connection,
    event_id: &str,
    url: &str,
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
    let secret = spin_sdk::variables::get("webhook_handler_secret")
        .await
        .unwrap_or_default();
    let Ok(secret) = SigningSecret::parse(secret.trim()) else {
        // Fixed by configuration, not by the handler: worth retrying.
        return Ok(Outcome::Retry(
            "the webhook_handler_secret variable is not a whsec_ secret".into(),
        ));
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
    let signature = sign_v1(event_id, now, &body, &secret);
    Ok(match post(url, event_id, now, &signature, body).await {
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
