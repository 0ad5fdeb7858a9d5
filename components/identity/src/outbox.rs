//! Mail leaves through the outbox table (owned by the `gatehouse-mail`
//! crate): handlers enqueue in the same database as the change that caused
//! the mail, and once the request's work is done, [`Outbox::deliver`]
//! hands it to the configured email API. Mail that is not sent then stays
//! with its job for the job runner. Without a provider, mail stays here
//! and the development-only listing shows it.

use std::cell::RefCell;

use gatehouse_http::idempotency::unix_now;
use gatehouse_http::{Problem, Response, response};
use gatehouse_mail::MailId;
use serde::Serialize;
use spin_sdk::sqlite::{Connection, RowResult, Value};

use crate::{config, db};

/// The mail one request queued. The router makes one per request and
/// passes it to the handlers that mail; an instance serves many requests,
/// some at once, so the list lives with the request, never in a global.
#[derive(Default)]
pub struct Outbox {
    queued: RefCell<Vec<MailId>>,
}

impl Outbox {
    /// An empty outbox for a new request.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Queues a plain-text mail, to be delivered when the request is done.
    pub async fn enqueue(
        &self,
        conn: &Connection,
        to: &str,
        kind: &str,
        subject: &str,
        body: &str,
        now: i64,
    ) -> Result<(), Problem> {
        let id = gatehouse_mail::enqueue(conn, to, kind, subject, body, now).await?;
        self.queued.borrow_mut().push(id);
        Ok(())
    }

    /// Delivers the mail this request queued (and a few older mails that
    /// are due for a retry). Does nothing when the request queued none;
    /// never fails: undelivered mail stays queued for the job runner.
    pub async fn deliver(self) {
        let queued = self.queued.into_inner();
        if queued.is_empty() {
            return;
        }
        if let Ok(conn) = db::open().await {
            gatehouse_mail::deliver(&conn, &queued, unix_now()).await;
        }
    }
}

#[derive(Serialize)]
struct Mail {
    id: String,
    to: String,
    kind: String,
    subject: String,
    body: String,
    /// `pending`, `sent` or `failed`.
    status: String,
    attempts: i64,
    /// When a pending mail is next tried; null once sent or failed.
    next_attempt_at: Option<i64>,
    /// Why the latest attempt failed; null when it did not.
    last_error: Option<String>,
    created_at: i64,
    /// Null until sent.
    sent_at: Option<i64>,
    /// Which provider took the mail; null until sent.
    provider: Option<String>,
    /// The provider's id for the message; null until sent.
    provider_message_id: Option<String>,
}

#[derive(Serialize)]
struct Listing {
    items: Vec<Mail>,
}

fn opt_text(row: &RowResult, i: usize) -> Option<String> {
    match row.values.get(i) {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    }
}

/// `GET /v1/dev/outbox`: the newest 50 mails, when enabled; otherwise the
/// route does not exist.
pub async fn list_for_development(request_id: &str) -> Result<Response, Problem> {
    if !config::dev_outbox_enabled().await {
        return Err(Problem::not_found().detail("no route matches this path"));
    }
    let conn = db::open().await?;
    let rows = db::query(
        &conn,
        "SELECT id, to_address, kind, subject, body_text, status, attempts, next_attempt_at, last_error,
                created_at, sent_at, provider, provider_message_id
         FROM email_outbox ORDER BY created_at DESC, rowid DESC LIMIT 50",
        vec![],
    )
    .await?;
    let items = rows
        .iter()
        .map(|r| {
            let status = db::get_text(r, 5);
            Mail {
                id: db::get_text(r, 0),
                to: db::get_text(r, 1),
                kind: db::get_text(r, 2),
                subject: db::get_text(r, 3),
                body: db::get_text(r, 4),
                attempts: db::get_int(r, 6).unwrap_or_default(),
                next_attempt_at: db::get_int(r, 7).filter(|_| status == "pending"),
                last_error: opt_text(r, 8),
                created_at: db::get_int(r, 9).unwrap_or_default(),
                sent_at: db::get_int(r, 10),
                provider: opt_text(r, 11),
                provider_message_id: opt_text(r, 12),
                status,
            }
        })
        .collect();
    Ok(response::json(200, &Listing { items }, request_id))
}
