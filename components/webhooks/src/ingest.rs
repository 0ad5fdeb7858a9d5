//! `POST /v1/hooks/{source}`: a provider's delivery to one of an org's
//! sources. No Gatehouse credential is asked for: the provider's signature
//! (or, for Azure DevOps, the configured credentials) over the body exactly
//! as received is the only authentication, checked in constant time.
//!
//! A delivery that verifies is stored before the answer, keyed by the
//! provider's delivery or event id: a redelivery answers `200` with the
//! first one's id and changes nothing. For GitHub and Jira, whose delivery
//! id the signature does not cover, the body is a key too
//! ([`replay_digest`]) unless the source turned it off: the same signed
//! body under another id is a replay, answered the same way and counted
//! with the refusals as `replayed_body`. One that does not verify is
//! refused with `401` and counted per reason, its payload not kept.

use gatehouse_auth::db;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json::read_body;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use serde::Serialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::{Connection, Value};
use webhooks_core::{HeaderFn, Provider, Rejection, Verified, replay_digest, verify};

use crate::sources::no_source;
use crate::store;

/// The reason a body already stored under another delivery id is counted
/// under, beside the verification refusals.
const REPLAYED_BODY: &str = "replayed_body";

/// The largest delivery taken, in bytes.
pub const BODY_LIMIT: usize = 1 << 20;

/// The answer to an accepted delivery.
#[derive(Serialize)]
struct Accepted {
    /// The stored event's id (the first delivery's, for a redelivery).
    id: String,
    /// Whether this delivery was one already stored.
    duplicate: bool,
}

/// A live source as the ingest reads it: its org, provider and sealed
/// settings.
struct Live {
    org_id: String,
    provider: Provider,
    sealed: String,
}

async fn live_source(conn: &Connection, id: &str) -> Result<Option<Live>, Problem> {
    let rows = db::query(
        conn,
        "SELECT org_id, provider, config FROM webhook_sources
         WHERE source_id = ? AND deleted_at IS NULL",
        vec![db::text(id)],
    )
    .await?;
    Ok(rows.first().and_then(|row| {
        Some(Live {
            org_id: db::get_text(row, 0),
            provider: Provider::parse(&db::get_text(row, 1))?,
            sealed: db::get_text(row, 2),
        })
    }))
}

/// `POST /v1/hooks/{source}`.
pub async fn ingest(req: Request, source_id: &str, request_id: &str) -> Result<Response, Problem> {
    let conn = db::open().await?;
    let source = live_source(&conn, source_id).await?.ok_or_else(no_source)?;
    let (parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body, BODY_LIMIT).await?;
    let settings = store::open(&conn, &source.org_id, &source.sealed, source_id)
        .await?
        .ok_or_else(|| {
            eprintln!("webhooks: source {source_id}'s settings do not open with this master key");
            Problem::internal()
        })?;
    let headers = HeaderFn(|name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    let now = unix_now();
    let verified = match verify(
        source.provider,
        &settings.verify_config(),
        &headers,
        &bytes,
        now,
    ) {
        Ok(verified) => verified,
        Err(rejection) => {
            count_rejection(&conn, &source, source_id, rejection.code(), now).await?;
            return Err(refused(rejection));
        }
    };
    let digest = settings
        .deduplicates_bodies(source.provider)
        .unwrap_or(false)
        .then(|| replay_digest(source.provider, &bytes))
        .flatten();
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let accepted = store_event(
        &conn,
        &source,
        source_id,
        &verified,
        Received {
            body: &bytes,
            digest,
            content_type,
        },
        now,
    )
    .await?;
    Ok(response::json(200, &accepted, request_id))
}

fn refused(rejection: Rejection) -> Problem {
    Problem::new(ErrorCode::WebhookVerificationFailed)
        .detail("the delivery did not verify for this source")
        .errors(vec![FieldError::new(
            "",
            rejection.code(),
            rejection.message(),
        )])
}

async fn count_rejection(
    conn: &Connection,
    source: &Live,
    source_id: &str,
    reason: &str,
    now: i64,
) -> Result<(), Problem> {
    db::run(
        conn,
        "INSERT INTO webhook_rejections (org_id, source_id, reason, count, last_at) VALUES (?, ?, ?, 1, ?)
         ON CONFLICT (source_id, reason) DO UPDATE SET count = count + 1, last_at = excluded.last_at",
        vec![
            db::text(&source.org_id),
            db::text(source_id),
            db::text(reason),
            db::int(now),
        ],
    )
    .await
}

/// A verified delivery's bytes as they are stored.
struct Received<'a> {
    /// The body as received.
    body: &'a [u8],
    /// Its SHA-256 when the source deduplicates bodies.
    digest: Option<String>,
    content_type: Option<String>,
}

/// Stores the delivery unless the source has it already (its id, or its
/// body's `digest` when it has one); the stored id. When handlers take
/// it, their jobs are queued in the same transaction.
async fn store_event(
    conn: &Connection,
    source: &Live,
    source_id: &str,
    verified: &Verified,
    received: Received<'_>,
    now: i64,
) -> Result<Accepted, Problem> {
    let Received {
        body,
        digest,
        content_type,
    } = received;
    let urls = gatehouse_webhook_dispatch::handler_urls(
        source_id,
        source.provider,
        verified.event_type.as_deref(),
    )
    .await;
    let id = db::new_sorted_id("whe_");
    // A known delivery id and a known body (the partial unique index of
    // migration 0024) are a duplicate; any other conflict (the event id)
    // is an error, not taken for one.
    let insert = || {
        db::query(
            conn,
            "INSERT INTO webhook_events (org_id, event_id, source_id, provider, delivery_id, event_type,
                                         payload, content_type, signed_at, received_at, status, handlers_pending,
                                         body_sha256)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (source_id, delivery_id) DO NOTHING
             ON CONFLICT (source_id, body_sha256) WHERE body_sha256 IS NOT NULL DO NOTHING
             RETURNING event_id",
            vec![
                db::text(&source.org_id),
                db::text(&id),
                db::text(source_id),
                db::text(source.provider.as_str()),
                db::text(&verified.dedupe_id),
                db::opt_text(verified.event_type.clone()),
                Value::Blob(body.to_vec()),
                db::opt_text(content_type.clone()),
                verified.signed_at.map_or(Value::Null, db::int),
                db::int(now),
                db::text(if urls.is_empty() { "received" } else { "pending" }),
                db::int(urls.len() as i64),
                db::opt_text(digest.clone()),
            ],
        )
    };
    let inserted = if urls.is_empty() {
        insert().await?
    } else {
        let policy = gatehouse_jobs::policy().await;
        store::begin(conn).await?;
        let outcome = async {
            let inserted = insert().await?;
            if !inserted.is_empty() {
                let round = gatehouse_webhook_dispatch::FIRST_ROUND;
                gatehouse_webhook_dispatch::queue(conn, &id, &urls, round, &policy, now)
                    .await
                    .map_err(|e| {
                        eprintln!("webhooks: queueing handler jobs failed: {e}");
                        Problem::internal()
                    })?;
            }
            Ok::<_, Problem>(inserted)
        }
        .await;
        let ended = store::end(conn, outcome.is_ok()).await;
        let inserted = outcome?;
        ended?;
        inserted
    };
    if !inserted.is_empty() {
        return Ok(Accepted {
            id,
            duplicate: false,
        });
    }
    // NULL never equals: without a digest only the id is looked up.
    let rows = db::query(
        conn,
        "SELECT event_id, delivery_id = ?2 FROM webhook_events
         WHERE source_id = ?1 AND (delivery_id = ?2 OR body_sha256 = ?3)
         ORDER BY delivery_id = ?2 DESC LIMIT 1",
        vec![
            db::text(source_id),
            db::text(&verified.dedupe_id),
            db::opt_text(digest),
        ],
    )
    .await?;
    let row = rows.first().ok_or_else(Problem::internal)?;
    let first = db::get_text(row, 0);
    // The same body under another id: a replay (or a resend a provider
    // gave a new id), kept once and counted so it shows on the source.
    if db::get_int(row, 1) != Some(1) {
        count_rejection(conn, source, source_id, REPLAYED_BODY, now).await?;
    }
    Ok(Accepted {
        id: first,
        duplicate: true,
    })
}
