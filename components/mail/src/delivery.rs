//! Sending: the provider from Spin variables, one claimed attempt per mail
//! ([`deliver_one`]), and the `mail.send` job around it ([`run_job`]),
//! which a request runs at once for the mail it queued ([`deliver`]) and
//! the job runner runs for the rest.

use bytes::Bytes;
use gatehouse_jobs::schedule::Policy;
use gatehouse_jobs::{Finished, Job, JobError, Lease, Outcome as JobOutcome};
use http_body_util::{BodyExt, Limited};
use spin_sdk::http::FullBody;
use spin_sdk::sqlite::Connection;

use crate::outbox::{self, Unclaimed};
use crate::provider::{ConfigError, Outcome, Outgoing, ProviderRequest, Settings};
use crate::{Attempt, Delivery, MailError, MailId, SEND_JOB, schedule};

/// The most of a provider's reply that is read.
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// Why a job finds nothing to send with.
const NO_PROVIDER: &str = "no email provider is configured (email_provider is none)";

/// Runs at once the `mail.send` jobs of the mails `queued` (as returned by
/// [`enqueue`](crate::enqueue)), then up to
/// [`RETRIES_PER_DELIVERY`](schedule::RETRIES_PER_DELIVERY) other due
/// ones, with the provider the component's variables name. Call it once
/// the request's database work is done. It never fails: what it could not
/// send stays with its job, which the job runner retries by the policy's
/// backoff. After a failure worth retrying the rest of the batch waits too
/// (the provider is likely down or refusing the account). Without a
/// provider it does nothing, and mail waits in the outbox.
pub async fn deliver(conn: &Connection, queued: &[MailId], now: i64) -> Delivery {
    let mut delivery = Delivery::default();
    let settings = match settings().await {
        Ok(Some(settings)) => settings,
        Ok(None) => return delivery,
        Err(e) => {
            eprintln!("mail: nothing sent, {e}");
            return delivery;
        }
    };
    let policy = gatehouse_jobs::policy().await;
    let Ok(lease) = Lease::new(&policy).inspect_err(|e| eprintln!("{e}")) else {
        return delivery;
    };
    let mut extra = 0;
    let mut attempted = Vec::new();
    let mut next = queued.iter();
    loop {
        let claimed = match next.next() {
            Some(id) => gatehouse_jobs::claim_key(conn, &lease, SEND_JOB, id.as_str(), now).await,
            None if extra < schedule::RETRIES_PER_DELIVERY => {
                extra += 1;
                let due = gatehouse_jobs::claim(conn, &lease, now, Some(SEND_JOB), &attempted);
                match due.await {
                    Ok(None) => break,
                    claimed => claimed,
                }
            }
            None => break,
        };
        // A job already running elsewhere, or done, is not this request's.
        let Ok(Some(job)) = claimed else { continue };
        attempted.push(job.id.clone());
        match perform(conn, Ok(Some(&settings)), &job, &policy, now).await {
            Ok(Finished::Done) => delivery.sent += 1,
            Ok(Finished::Dead) => delivery.given_up += 1,
            Ok(Finished::RetryAt(_)) => {
                delivery.retrying += 1;
                break;
            }
            Ok(Finished::LeaseLost) => {}
            Err(_) => break,
        }
    }
    delivery
}

/// Runs one claimed `mail.send` job: sends its mail with the provider the
/// component's variables name and records how the attempt ended on the
/// job and the mail. A job whose payload names no mail is dead at once; a
/// missing or unusable provider is a failure worth retrying (the
/// deployment may be fixed).
pub async fn run_job(
    conn: &Connection,
    job: &Job,
    policy: &Policy,
    now: i64,
) -> Result<Finished, JobError> {
    let settings = settings().await;
    perform(
        conn,
        settings.as_ref().map(Option::as_ref),
        job,
        policy,
        now,
    )
    .await
}

async fn perform(
    conn: &Connection,
    settings: Result<Option<&Settings>, &ConfigError>,
    job: &Job,
    policy: &Policy,
    now: i64,
) -> Result<Finished, JobError> {
    let Some(id) = job
        .payload
        .get("mail_id")
        .and_then(serde_json::Value::as_str)
        .map(MailId::from_stored)
    else {
        let outcome = JobOutcome::Permanent("the payload names no mail_id".into());
        return gatehouse_jobs::finish(conn, job, outcome, policy, now).await;
    };
    let outcome = match settings {
        Ok(Some(settings)) => match deliver_one(conn, settings, &id, now).await? {
            Attempt::Sent | Attempt::AlreadyDone => JobOutcome::Done,
            Attempt::Retry(error) => JobOutcome::Retry(error),
            Attempt::Permanent(error) => JobOutcome::Permanent(error),
        },
        Ok(None) => JobOutcome::Retry(NO_PROVIDER.into()),
        // The text names a variable, never the token.
        Err(e) => JobOutcome::Retry(e.to_string()),
    };
    let error = match &outcome {
        JobOutcome::Retry(error) | JobOutcome::Permanent(error) => error.clone(),
        JobOutcome::Done => String::new(),
    };
    let finished = gatehouse_jobs::finish(conn, job, outcome, policy, now).await?;
    // The outbox shows what the job decided.
    match finished {
        Finished::RetryAt(at) => outbox::reschedule(conn, &id, at).await?,
        Finished::Dead => outbox::give_up(conn, &id, &gatehouse_jobs::clean_error(&error)).await?,
        Finished::Done | Finished::LeaseLost => {}
    }
    Ok(finished)
}

/// One attempt at mail `id` with `settings`: claim the mail (so a job and
/// a request never both send it), send, record the provider's answer on
/// the mail. Whether and when to try again is the caller's to decide.
pub async fn deliver_one(
    conn: &Connection,
    settings: &Settings,
    id: &MailId,
    now: i64,
) -> Result<Attempt, MailError> {
    let mail = match outbox::claim(conn, id, now).await? {
        Ok(mail) => mail,
        Err(Unclaimed::Sent) => return Ok(Attempt::AlreadyDone),
        Err(Unclaimed::Busy) => {
            return Ok(Attempt::Retry(
                "another attempt is sending this mail".into(),
            ));
        }
        Err(Unclaimed::TooOld) => return Ok(Attempt::Permanent(outbox::TOO_OLD.into())),
        Err(Unclaimed::Missing) => {
            return Ok(Attempt::Permanent(format!("no mail {id} in the outbox")));
        }
    };
    let request = settings.request(&Outgoing {
        id: id.as_str(),
        to: &mail.to,
        subject: &mail.subject,
        text: &mail.body,
    });
    let outcome = match post(request).await {
        Ok((status, body)) => settings.read_reply(status, &body),
        Err(detail) => settings.unreachable(&detail),
    };
    Ok(match outcome {
        Outcome::Sent { message_id } => {
            let provider = settings.provider().name();
            outbox::record_sent(conn, id, provider, message_id.as_deref(), now).await?;
            Attempt::Sent
        }
        Outcome::Retry { error } => {
            outbox::release(conn, id, &error, now).await?;
            Attempt::Retry(error)
        }
        Outcome::Undeliverable { error } => {
            outbox::give_up(conn, id, &error).await?;
            Attempt::Permanent(error)
        }
    })
}

async fn variable(name: &str) -> String {
    spin_sdk::variables::get(name).await.unwrap_or_default()
}

/// The provider settings; a component without the variables sends nothing.
async fn settings() -> Result<Option<Settings>, ConfigError> {
    Settings::from_variables(
        &variable("email_provider").await,
        &variable("email_api_base_url").await,
        &variable("email_api_token").await,
        &variable("email_from").await,
    )
}

/// POSTs the request; the status and (at most `MAX_REPLY_BYTES` of) the
/// body, or why there was no answer.
async fn post(request: ProviderRequest) -> Result<(u16, Vec<u8>), String> {
    let mut builder = http::Request::post(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    let mut req = builder
        .body(FullBody::new(Bytes::from(request.body)))
        .map_err(|_| "the request could not be built".to_string())?;
    // A provider that does not answer delays the request by about ten
    // seconds at most (the batch stops at the first such failure).
    req.extensions_mut()
        .insert(gatehouse_http::outbound::timeouts());
    let res = spin_sdk::http::send(req)
        .await
        .map_err(|code| gatehouse_http::outbound::failure(&code))?;
    let status = res.status().as_u16();
    // The status decides; a reply body that cannot be read leaves only the
    // message id unknown.
    let body = Limited::new(res.into_body(), MAX_REPLY_BYTES)
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    Ok((status, body))
}
