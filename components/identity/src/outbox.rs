//! Mail leaves through the outbox table: handlers enqueue in the same
//! database as the change that caused the mail, and a sender delivers.
//! Without a configured provider, mail stays here and the development-only
//! listing shows it.

use gatehouse_http::{Problem, Response, response};
use serde::Serialize;
use spin_sdk::sqlite::Connection;

use crate::{config, db};

/// Queues a plain-text mail.
pub async fn enqueue(
    conn: &Connection,
    to: &str,
    kind: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<(), Problem> {
    db::exec(
        conn,
        "INSERT INTO email_outbox (id, to_address, kind, subject, body_text, status, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
        vec![db::text(db::new_id("mail_")), db::text(to), db::text(kind), db::text(subject), db::text(body), db::int(now)],
    )
    .await?;
    Ok(())
}

#[derive(Serialize)]
struct Mail {
    id: String,
    to: String,
    kind: String,
    subject: String,
    body: String,
    status: String,
    created_at: i64,
}

#[derive(Serialize)]
struct Listing {
    items: Vec<Mail>,
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
        "SELECT id, to_address, kind, subject, body_text, status, created_at FROM email_outbox ORDER BY created_at DESC, rowid DESC LIMIT 50",
        vec![],
    )
    .await?;
    let items = rows
        .iter()
        .map(|r| Mail {
            id: db::get_text(r, 0),
            to: db::get_text(r, 1),
            kind: db::get_text(r, 2),
            subject: db::get_text(r, 3),
            body: db::get_text(r, 4),
            status: db::get_text(r, 5),
            created_at: db::get_int(r, 6).unwrap_or_default(),
        })
        .collect();
    Ok(response::json(200, &Listing { items }, request_id))
}
