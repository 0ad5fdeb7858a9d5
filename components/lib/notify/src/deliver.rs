//! The `notification.deliver` job: resolves the user's preferences and
//! delivers on each channel that is on, recording each channel once it is
//! done, so a retried attempt never sends twice where the first succeeded.

use bytes::Bytes;
use gatehouse_auth::db;
use gatehouse_jobs::schedule::Policy;
use gatehouse_jobs::{Finished, Job, JobError, Outcome};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;
use spin_sdk::http::FullBody;
use spin_sdk::sqlite::Connection;

use crate::kinds::{Channel, Kind, kind};
use crate::message;
use crate::prefs::{self, Layers};
use crate::sms::{self, Answer, Provider};

/// The most of a provider's answer read.
const MAX_REPLY_BYTES: usize = 16 * 1024;

fn job_error(_: gatehouse_http::Problem) -> JobError {
    // The cause was logged where it happened.
    JobError::new("a database statement failed (see the log)")
}

/// Runs one claimed `notification.deliver` job and records how it ended:
/// done when every channel that is on is delivered (or can never be), a
/// retry while one may still succeed.
pub async fn run_job(
    conn: &Connection,
    job: &Job,
    policy: &Policy,
    now: i64,
) -> Result<Finished, JobError> {
    let outcome = match job.payload.get("notification_id").and_then(Value::as_str) {
        Some(id) => deliver(conn, id, now).await?,
        None => Outcome::Permanent("the payload names no notification_id".into()),
    };
    gatehouse_jobs::finish(conn, job, outcome, policy, now).await
}

/// A notification and its user, as the job reads them.
struct Notice {
    id: String,
    user_id: String,
    org_id: Option<String>,
    kind: &'static Kind,
    data: Value,
    email: String,
    verified: bool,
}

async fn deliver(conn: &Connection, id: &str, now: i64) -> Result<Outcome, JobError> {
    let rows = db::query(
        conn,
        "SELECT n.user_id, n.org_id, n.kind, n.data, u.email, u.status, u.email_verified_at
         FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.notification_id = ?",
        vec![db::text(id)],
    )
    .await
    .map_err(job_error)?;
    // Gone with its user or org: nobody is left to tell.
    let Some(row) = rows.first() else {
        return Ok(Outcome::Done);
    };
    let Some(kind) = kind(&db::get_text(row, 2)) else {
        return Ok(Outcome::Permanent(
            "the notification's kind is unknown to this build".into(),
        ));
    };
    if db::get_text(row, 5) == "inactive" {
        return Ok(Outcome::Done);
    }
    let notice = Notice {
        id: id.to_string(),
        user_id: db::get_text(row, 0),
        org_id: db::get_opt_text(row, 1),
        kind,
        data: db::get_json(row, 3).unwrap_or_default(),
        email: db::get_text(row, 4),
        verified: db::get_int(row, 6).is_some(),
    };
    let layers = crate::store::layers(conn, notice.org_id.as_deref(), &notice.user_id)
        .await
        .map_err(job_error)?;
    let mut retry = None;
    for setting in prefs::resolve(kind, &layers) {
        if !setting.on {
            continue;
        }
        match setting.channel {
            Channel::InApp => show(conn, &notice).await?,
            Channel::Email => email(conn, &notice, now).await?,
            Channel::Sms => {
                if let Err(why) = text(conn, &notice, &layers, now).await? {
                    retry = Some(why);
                }
            }
        }
    }
    Ok(retry.map_or(Outcome::Done, Outcome::Retry))
}

async fn show(conn: &Connection, notice: &Notice) -> Result<(), JobError> {
    gatehouse_jobs::rows(
        conn,
        "UPDATE notifications SET in_app = 1 WHERE notification_id = ? AND in_app = 0",
        vec![db::text(&notice.id)],
    )
    .await
    .map(|_| ())
}

async fn delivered(conn: &Connection, id: &str, channel: Channel) -> Result<bool, JobError> {
    let rows = gatehouse_jobs::rows(
        conn,
        "SELECT 1 FROM notification_deliveries WHERE notification_id = ? AND channel = ?",
        vec![db::text(id), db::text(channel.as_str())],
    )
    .await?;
    Ok(!rows.is_empty())
}

async fn record(
    conn: &Connection,
    id: &str,
    channel: Channel,
    outcome: &str,
    detail: Option<String>,
    now: i64,
) -> Result<(), JobError> {
    gatehouse_jobs::rows(
        conn,
        "INSERT INTO notification_deliveries (notification_id, channel, outcome, detail, delivered_at)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        vec![
            db::text(id),
            db::text(channel.as_str()),
            db::text(outcome),
            db::opt_text(detail),
            db::int(now),
        ],
    )
    .await
    .map(|_| ())
}

/// Queues the mail and records it in one transaction: mailed once.
async fn email(conn: &Connection, notice: &Notice, now: i64) -> Result<(), JobError> {
    gatehouse_jobs::transaction(conn, async {
        if delivered(conn, &notice.id, Channel::Email).await? {
            return Ok(());
        }
        if !notice.verified || notice.email.is_empty() {
            let why = Some("the address is not verified".to_string());
            return record(conn, &notice.id, Channel::Email, "skipped", why, now).await;
        }
        let (subject, body) = message::render(notice.kind, &notice.data);
        let mail_kind = format!("notification.{}", notice.kind.name);
        let mail =
            gatehouse_mail::enqueue(conn, &notice.email, &mail_kind, &subject, &body, now).await?;
        let id = Some(mail.as_str().to_string());
        record(conn, &notice.id, Channel::Email, "sent", id, now).await
    })
    .await
}

/// The SMS provider the component's variables configure, if any.
pub async fn sms_provider() -> Option<Provider> {
    let var = |name: &'static str| async move {
        spin_sdk::variables::get(name).await.unwrap_or_default()
    };
    Provider::from_variables(
        &var("sms_api_base_url").await,
        &var("sms_account_sid").await,
        &var("sms_auth_token").await,
        &var("sms_from").await,
    )
}

/// Sends the text unless it was: `Err` with why when it is worth another
/// attempt.
async fn text(
    conn: &Connection,
    notice: &Notice,
    layers: &Layers,
    now: i64,
) -> Result<Result<(), String>, JobError> {
    if delivered(conn, &notice.id, Channel::Sms).await? {
        return Ok(Ok(()));
    }
    let skip = |why: &str| Some(why.to_string());
    let Some(provider) = sms_provider().await else {
        record(
            conn,
            &notice.id,
            Channel::Sms,
            "skipped",
            skip(sms::OFF),
            now,
        )
        .await?;
        return Ok(Ok(()));
    };
    let Some(number) = prefs::sms_number(&layers.user) else {
        let why = skip("the user's preferences hold no notifications.sms_number");
        record(conn, &notice.id, Channel::Sms, "skipped", why, now).await?;
        return Ok(Ok(()));
    };
    // The number is the user's own word, never confirmed: a daily cap
    // keeps an account from turning the deployment into a sender of texts
    // to numbers that are not its user's.
    let sent = gatehouse_jobs::rows(
        conn,
        "SELECT COUNT(*) FROM notification_deliveries d JOIN notifications n
           ON n.notification_id = d.notification_id
         WHERE n.user_id = ? AND d.channel = 'sms' AND d.outcome = 'sent' AND d.delivered_at > ?",
        vec![db::text(&notice.user_id), db::int(now - 86_400)],
    )
    .await?;
    if sent.first().and_then(|r| db::get_int(r, 0)).unwrap_or(0) >= SMS_PER_DAY {
        let why = skip("the user's texts for the last 24 hours are used up");
        record(conn, &notice.id, Channel::Sms, "skipped", why, now).await?;
        return Ok(Ok(()));
    }
    let request = provider.request(number, &message::short(notice.kind, &notice.data));
    match post(request).await {
        Answer::Sent(sid) => record(conn, &notice.id, Channel::Sms, "sent", sid, now).await?,
        Answer::Refused(why) => {
            record(conn, &notice.id, Channel::Sms, "failed", Some(why), now).await?
        }
        Answer::Retry(why) => return Ok(Err(why)),
    }
    Ok(Ok(()))
}

/// The most texts one user is sent in 24 hours.
const SMS_PER_DAY: i64 = 10;

async fn post(request: sms::SmsRequest) -> Answer {
    let built = http::Request::post(&request.url)
        .header("authorization", &request.authorization)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .header("content-length", request.body.len())
        .body(FullBody::new(Bytes::from(request.body)));
    let Ok(mut req) = built else {
        return Answer::Refused("the SMS request could not be built".into());
    };
    req.extensions_mut()
        .insert(gatehouse_http::outbound::timeouts());
    let res = match spin_sdk::http::send(req).await {
        Ok(res) => res,
        Err(code) => return Answer::Retry(gatehouse_http::outbound::failure(&code)),
    };
    let status = res.status().as_u16();
    let body = Limited::new(res.into_body(), MAX_REPLY_BYTES)
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    sms::answer(status, &body)
}
