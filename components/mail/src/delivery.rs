//! Sending: the provider from Spin variables, one claimed attempt per mail,
//! the outcome recorded in the outbox. Nothing here fails the caller.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use spin_sdk::http::FullBody;
use spin_sdk::sqlite::Connection;

use crate::provider::{ConfigError, Outcome, Outgoing, ProviderRequest, Settings};
use crate::schedule::{self, Next};
use crate::{Delivery, MailError, MailId, outbox};

/// The most of a provider's reply that is read.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Sends the mails `queued` (as returned by [`enqueue`](crate::enqueue))
/// and then up to [`RETRIES_PER_DELIVERY`](schedule::RETRIES_PER_DELIVERY)
/// older mails that are due, using the provider the component's variables
/// name. Call it once the request's database work is done. It never fails:
/// errors are logged and recorded on the mails, which stay in the outbox
/// for a later call. After a failure worth retrying, the rest of the batch
/// waits too (the provider is likely down or refusing the account).
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
    let mut batch = queued.to_vec();
    if let Ok(older) = retry_candidates(conn, now, queued).await {
        batch.extend(older);
    }
    for id in &batch {
        match attempt(conn, &settings, id, now).await {
            Ok(None) => {}
            Ok(Some(Outcome::Sent { .. })) => delivery.sent += 1,
            Ok(Some(Outcome::Undeliverable { .. })) => delivery.given_up += 1,
            Ok(Some(Outcome::Retry { .. })) => {
                delivery.retrying += 1;
                break;
            }
            Err(_) => break,
        }
    }
    delivery
}

/// Older mails to retry, after giving up those too old to send.
async fn retry_candidates(
    conn: &Connection,
    now: i64,
    queued: &[MailId],
) -> Result<Vec<MailId>, MailError> {
    outbox::expire(conn, now).await?;
    let due = outbox::due(conn, now, schedule::RETRIES_PER_DELIVERY + queued.len()).await?;
    Ok(due
        .into_iter()
        .filter(|id| !queued.contains(id))
        .take(schedule::RETRIES_PER_DELIVERY)
        .collect())
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

/// One attempt at `id`: claim, send, record. `None` when the mail was not
/// ours to send (claimed elsewhere, already sent, not due).
async fn attempt(
    conn: &Connection,
    settings: &Settings,
    id: &MailId,
    now: i64,
) -> Result<Option<Outcome>, MailError> {
    let Some(mail) = outbox::claim(conn, id, now).await? else {
        return Ok(None);
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
    let provider = settings.provider().name();
    match &outcome {
        Outcome::Sent { message_id } => {
            outbox::record_sent(conn, id, provider, message_id.as_deref(), now).await?;
        }
        Outcome::Retry { error } | Outcome::Undeliverable { error } => {
            let undeliverable = matches!(outcome, Outcome::Undeliverable { .. });
            let next = schedule::after_failure(mail.attempts, now, undeliverable);
            let fate = match next {
                Next::RetryAt(at) => format!("retry in {} s", at - now),
                Next::GiveUp => "given up".to_string(),
            };
            eprintln!(
                "mail: {id} not sent (attempt {}), {fate}: {error}",
                mail.attempts
            );
            outbox::record_failure(conn, id, next, error).await?;
        }
    }
    Ok(Some(outcome))
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
    let res = spin_sdk::http::send(req).await.map_err(|code| {
        let code = format!("{code:?}");
        code.trim_start_matches("ErrorCode::").to_string()
    })?;
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
