//! The delivery job ([`crate::DELIVER_JOB`]): one attempt to deliver one
//! message, and everything that attempt decides (see [`crate::outcome`])
//! recorded in one transaction with the job's end: the attempt row, the
//! message, the endpoint and, when the endpoint is disabled for failing,
//! a mail to each admin of its org. A run that stops between them leaves
//! none of them, and the job is taken again when its lease lapses.
//!
//! A job is run in three steps, so that a runner can have several
//! attempts in flight at once while the database is used by one step at
//! a time: [`begin`] reads the message (and ends the job at once when
//! there is nothing to send), [`Delivery::attempt`] makes the request and
//! touches no database, [`settle`] records what it decided.
//!
//! The schedule follows the message's recorded HTTP attempts, not the
//! job's claims (a claim may make no request: the secrets did not open,
//! a lease lapsed): after the message's `n`-th attempt fails, the next
//! comes `SCHEDULE[n]` later, and the tenth failure fails the message. A
//! resend or a recovery starts the count again (see `queue`).

use std::time::Instant;

use gatehouse_auth::db::{get_int, text};
use gatehouse_jobs::schedule::Policy;
use gatehouse_jobs::{Finished, Job, JobError, Outcome, transaction};
use spin_sdk::sqlite::Connection;

use crate::Trigger;
use crate::found::{Found, Ready, load, prepare};
use crate::message;
use crate::outcome::{Answer, JobEnd, MessageEnd, decide};
use crate::record::{record_attempt, update_endpoint, update_message};
use crate::url::UrlPolicy;

/// The mail kind telling admins an endpoint was disabled for failing.
pub const DISABLED_MAIL: &str = "webhook_endpoint_disabled";

/// The URL policy's verdict on `url` now: the operator may have narrowed
/// `webhook_endpoint_private_hosts` or `webhook_delivery_hosts` since the
/// endpoint was saved.
async fn refusal(url: &str) -> Option<String> {
    UrlPolicy::from_variables()
        .await
        .check(url)
        .err()
        .map(|refusal| format!("the URL was not called: {refusal}"))
}

/// How [`begin`] left a claimed delivery job.
pub enum Begun {
    /// It ended without a request (nothing to send, or no way to sign).
    Finished(Finished),
    /// A request is to be made.
    Send(Box<Delivery>),
}

/// A delivery ready to be attempted: the claimed job, the message, and
/// the request (URL, signed headers, body).
pub struct Delivery {
    job: Job,
    found: Found,
    trigger: Trigger,
    url: String,
    headers: [(&'static str, String); 4],
    body: Vec<u8>,
}

/// A delivery attempted: the answer and how long it took.
pub struct Sent {
    delivery: Delivery,
    attempt: Attempted,
}

impl Delivery {
    /// The claimed job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The endpoint it goes to: a runner attempts one at a time for each.
    pub fn endpoint_id(&self) -> &str {
        &self.found.endpoint_id
    }

    /// Makes the request (unless the URL policy now refuses the URL). No
    /// database call: several may be in flight at once.
    pub async fn attempt(self) -> Sent {
        let started = Instant::now();
        let answer = match refusal(&self.url).await {
            Some(why) => Answer::Refused(why),
            None => crate::post::post(&self.url, &self.headers, self.body.clone()).await,
        };
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let attempt = Attempted {
            trigger: self.trigger,
            answer,
            duration_ms,
        };
        Sent {
            delivery: self,
            attempt,
        }
    }
}

/// Reads a claimed delivery job's message: ends the job when there is
/// nothing to send (or no way to sign it now), or hands back the request.
pub async fn begin(
    conn: &Connection,
    job: Job,
    policy: &Policy,
    now: i64,
) -> Result<Begun, JobError> {
    let field = |name: &str| job.payload.get(name).and_then(|v| v.as_str());
    let (Some(message_id), Some(trigger)) = (
        field("message_id"),
        field("trigger").and_then(Trigger::parse),
    ) else {
        let outcome = Outcome::Permanent("the payload names no message_id and trigger".into());
        let finished = gatehouse_jobs::finish(conn, &job, outcome, policy, now).await?;
        return Ok(Begun::Finished(finished));
    };
    let Some(found) = load(conn, message_id).await? else {
        // Gone with its org: nothing is left to deliver.
        let finished = gatehouse_jobs::succeed(conn, &job, now).await?;
        return Ok(Begun::Finished(finished));
    };
    // A scheduled retry or a recovery of a message delivered meanwhile (by
    // a resend) has nothing to do; a resend always sends.
    if found.status == "delivered" && trigger != Trigger::Resend {
        let finished = gatehouse_jobs::succeed(conn, &job, now).await?;
        return Ok(Begun::Finished(finished));
    }
    let (url, body, keys) = match prepare(conn, &found, now).await {
        Ready::Send(url, body, keys) => (url, body, keys),
        Ready::Stop(why) => {
            let finished = transaction(conn, stop(conn, &job, &found, &why, now)).await?;
            return Ok(Begun::Finished(finished));
        }
        Ready::Wait(why) => {
            let waited = wait(conn, &job, &found, &why, policy, now);
            return Ok(Begun::Finished(transaction(conn, waited).await?));
        }
    };
    let headers = message::headers(&found.event_id, now, &body, &keys);
    Ok(Begun::Send(Box::new(Delivery {
        job,
        found,
        trigger,
        url,
        headers,
        body,
    })))
}

/// Runs one delivery job from start to end and records how it ended.
pub async fn run_job(
    conn: &Connection,
    job: &Job,
    policy: &Policy,
    now: i64,
) -> Result<Finished, JobError> {
    match begin(conn, job.clone(), policy, now).await? {
        Begun::Finished(finished) => Ok(finished),
        Begun::Send(delivery) => settle(conn, delivery.attempt().await, now).await,
    }
}

/// The message fails without an attempt, and the job is done.
async fn stop(
    conn: &Connection,
    job: &Job,
    found: &Found,
    why: &str,
    now: i64,
) -> Result<Finished, JobError> {
    let finished = gatehouse_jobs::succeed(conn, job, now).await?;
    if finished != Finished::LeaseLost {
        update_message(
            conn,
            found,
            &MessageEnd::Failed(why.to_string()),
            None,
            false,
            now,
        )
        .await?;
    }
    Ok(finished)
}

/// No attempt now; the job retries by the jobs' backoff and the message
/// shows why, failing when the job gives up.
async fn wait(
    conn: &Connection,
    job: &Job,
    found: &Found,
    why: &str,
    policy: &Policy,
    now: i64,
) -> Result<Finished, JobError> {
    let finished =
        gatehouse_jobs::finish(conn, job, Outcome::Retry(why.to_string()), policy, now).await?;
    let end = match finished {
        Finished::LeaseLost => return Ok(finished),
        Finished::RetryAt(at) => MessageEnd::Pending(at),
        Finished::Dead | Finished::Done => MessageEnd::Failed(why.to_string()),
    };
    update_message(conn, found, &end, Some(why), false, now).await?;
    Ok(finished)
}

/// One attempt as it went.
pub(crate) struct Attempted {
    pub(crate) trigger: Trigger,
    pub(crate) answer: Answer,
    pub(crate) duration_ms: i64,
}

/// Records an attempt and everything it decides, in one transaction.
pub async fn settle(conn: &Connection, sent: Sent, now: i64) -> Result<Finished, JobError> {
    let Sent { delivery, attempt } = sent;
    transaction(
        conn,
        record(conn, &delivery.job, &delivery.found, &attempt, now),
    )
    .await
}

async fn record(
    conn: &Connection,
    job: &Job,
    found: &Found,
    attempt: &Attempted,
    now: i64,
) -> Result<Finished, JobError> {
    // Read inside the transaction: other jobs for the endpoint may have
    // marked it failing or disabled it while this attempt ran, and the
    // org may be gone with its rows.
    let state = gatehouse_jobs::rows(
        conn,
        "SELECT p.enabled, p.deleted_at, p.failing_since, m.attempts
         FROM webhook_messages m
         LEFT JOIN webhook_endpoints p ON p.org_id = m.org_id AND p.endpoint_id = m.endpoint_id
         WHERE m.org_id = ?1 AND m.message_id = ?2",
        vec![text(&found.org_id), text(&found.message_id)],
    )
    .await?;
    let Some(state) = state.first() else {
        return gatehouse_jobs::succeed(conn, job, now).await;
    };
    let live = get_int(state, 0) == Some(1) && get_int(state, 1).is_none();
    let failing_since = get_int(state, 2);
    let recorded = get_int(state, 3).unwrap_or_default();
    let mut decision = decide(&attempt.answer, recorded + 1, failing_since, now);
    if !live && !decision.succeeded {
        // Turned off meanwhile: nothing more goes to it.
        let why = format!(
            "{}; the endpoint is no longer enabled",
            decision.error.clone().unwrap_or_default()
        );
        decision.message = MessageEnd::Failed(why);
        decision.job = JobEnd::Done;
    }
    let error = decision.error.clone().unwrap_or_default();
    let finished = match decision.job {
        JobEnd::Done => gatehouse_jobs::succeed(conn, job, now).await?,
        JobEnd::RetryAt(at) => gatehouse_jobs::fail_at(conn, job, &error, at, now).await?,
    };
    if finished == Finished::Dead {
        // The job's claims ran out before the schedule did (claims that
        // made no request count too).
        decision.message = MessageEnd::Failed(format!("{error} (the delivery job gave up)"));
    }
    record_attempt(conn, found, attempt, &decision, now).await?;
    if finished == Finished::LeaseLost {
        // Another run holds the job now; the message and the endpoint are
        // its to update. The attempt happened, so it stays on record.
        return Ok(finished);
    }
    update_message(
        conn,
        found,
        &decision.message,
        decision.error.as_deref(),
        true,
        now,
    )
    .await?;
    if live {
        update_endpoint(conn, found, decision.endpoint, &error, now).await?;
    }
    Ok(finished)
}

/// Fails the message of a delivery job the jobs' reaper made dead (its
/// last claim's lease lapsed without an outcome), unless it was delivered
/// or failed meanwhile: otherwise it would stay pending for ever. Call it
/// in the reaper's transaction.
pub async fn reaped(conn: &Connection, job: &Job, now: i64) -> Result<(), JobError> {
    let Some(message_id) = job.payload.get("message_id").and_then(|v| v.as_str()) else {
        return Ok(());
    };
    gatehouse_jobs::rows(
        conn,
        "UPDATE webhook_messages SET status = 'failed', next_attempt_at = NULL,
                last_error = 'the delivery job ended without an outcome: its runner stopped during its last attempt',
                updated_at = ?2
         WHERE message_id = ?1 AND status = 'pending'",
        vec![text(message_id), gatehouse_auth::db::int(now)],
    )
    .await
    .map(|_| ())
}
