//! `POST /v1/usage/events`: a batch of CloudEvents-shaped usage events.
//!
//! The body is a JSON array of events (CloudEvents' batch shape), at most
//! [`MAX_BATCH`]. Each event is checked on its own: a bad one is reported
//! by its index and the others still count. Accepted events are written in
//! one transaction before the answer. An event whose `(source, id)` the org
//! has already sent is a duplicate, however much later it comes again:
//! reported, not stored twice.

use std::collections::HashSet;

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use serde::Serialize;
use spin_sdk::http::Request;

use crate::batch::{Checked, check};
use crate::caller;
use crate::store;
use crate::subject::Subject;

/// The most events one request carries.
pub const MAX_BATCH: usize = 1000;
/// The largest body: a full batch of events of about 1 KiB each.
const BODY_LIMIT: usize = 1024 * 1024;
/// Events one statement writes: each statement is a round trip to the
/// database, and 100 rows of [`PARAMS_PER_ROW`] stay far under SQLite's
/// limit on a statement's parameters.
const ROWS_PER_INSERT: usize = 100;
/// The parameters of one event's row in [`insert_many`].
const PARAMS_PER_ROW: usize = 7;

/// Why one event of the batch was not taken.
#[derive(Serialize)]
struct EventError {
    index: usize,
    code: &'static str,
    detail: String,
}

#[derive(Serialize)]
struct Outcome {
    accepted: usize,
    duplicates: usize,
    errors: Vec<EventError>,
}

/// Stores one event of a fresh id (so never a duplicate: no count is
/// read back).
async fn insert(tenant: &Tenant<'_>, event: &Checked, now: i64) -> Result<(), Problem> {
    tenant
        .run(
            "INSERT INTO usage_events (org_id, source, event_id, event_type, subject_type, subject_id, occurred_at, data, received_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                db::text(&event.source),
                db::text(&event.id),
                db::text(&event.event_type),
                db::text(event.subject.kind.as_str()),
                db::text(&event.subject.id),
                db::int(event.occurred_at),
                db::text(&event.data),
                db::int(now),
            ],
        )
        .await
}

/// Stores `events` with one statement; how many were new. `events` holds
/// no `(source, id)` twice, so a row missing from what the insert returns
/// is one the org already had.
async fn insert_many(tenant: &Tenant<'_>, events: &[&Checked], now: i64) -> Result<usize, Problem> {
    // `?1` is the org and `?2` the time received; each row's own follow.
    let mut params = Vec::with_capacity(1 + events.len() * PARAMS_PER_ROW);
    params.push(db::int(now));
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        let first = params.len() + 2;
        let marks: Vec<String> = (first..first + PARAMS_PER_ROW)
            .map(|n| format!("?{n}"))
            .collect();
        rows.push(format!("({})", marks.join(", ")));
        params.extend([
            db::text(&event.source),
            db::text(&event.id),
            db::text(&event.event_type),
            db::text(event.subject.kind.as_str()),
            db::text(&event.subject.id),
            db::int(event.occurred_at),
            db::text(&event.data),
        ]);
    }
    // The tenant guard admits inserts of one row only, so the rows take
    // the org from its own row, filtered by `?1` like any read.
    let sql = format!(
        "INSERT INTO usage_events (org_id, source, event_id, event_type, subject_type, subject_id, occurred_at, data, received_at)
         SELECT o.org_id, b.column1, b.column2, b.column3, b.column4, b.column5, b.column6, b.column7, ?2
         FROM orgs o, (VALUES {}) b
         WHERE o.org_id = ?1
         ON CONFLICT DO NOTHING RETURNING event_id",
        rows.join(", ")
    );
    Ok(tenant.query(&sql, params).await?.len())
}

/// Stores a usage event the app itself made (a consume's), inside the
/// caller's transaction. The id is new, so it is never a duplicate.
pub async fn record(
    tenant: &Tenant<'_>,
    event_type: &str,
    subject: &Subject,
    data: &serde_json::Value,
    now: i64,
) -> Result<(), Problem> {
    let event = Checked {
        // Ids that sort by time append to the end of the table's key
        // instead of splitting pages all over it.
        id: crate::org_events::new_event_id(),
        source: CONSUME_SOURCE.into(),
        event_type: event_type.into(),
        subject: subject.clone(),
        occurred_at: now,
        data: data.to_string(),
    };
    insert(tenant, &event, now).await
}

/// The `source` of the events quota consumption records.
pub const CONSUME_SOURCE: &str = "gatehouse:quotas/consume";

/// `POST /v1/usage/events`.
pub async fn ingest(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::holding(&req, caller::INGEST).await?;
    let tenant = caller.tenant()?;
    let batch: Vec<serde_json::Value> = json::read_unvalidated(req, BODY_LIMIT).await?;
    if batch.len() > MAX_BATCH {
        return Err(Problem::new(ErrorCode::ValidationFailed)
            .detail(format!("a batch holds at most {MAX_BATCH} events"))
            .errors(vec![FieldError::new(
                "",
                "too_many_events",
                format!("send at most {MAX_BATCH} events per request"),
            )]));
    }
    let checked: Vec<Result<Checked, EventError>> = batch
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            check(value).map_err(|(code, detail)| EventError {
                index,
                code,
                detail,
            })
        })
        .collect();
    // Subjects repeat within a batch: all of them are looked up together.
    let known = store::belonging(
        &tenant,
        checked
            .iter()
            .filter_map(|event| event.as_ref().ok())
            .map(|event| &event.subject),
    )
    .await?;
    let mut errors = Vec::new();
    let mut ready = Vec::with_capacity(checked.len());
    for (index, event) in checked.into_iter().enumerate() {
        match event {
            Err(error) => errors.push(error),
            Ok(event) if known.contains(&event.subject) => ready.push(event),
            Ok(_) => errors.push(EventError {
                index,
                code: "unknown_subject",
                detail: "the subject is not this organization or one of its teams, members or keys"
                    .into(),
            }),
        }
    }
    // The first event of the batch with a `(source, id)` is the one stored;
    // a repeat of it later in the batch is a duplicate, as in a later batch.
    let mut seen = HashSet::new();
    let fresh: Vec<&Checked> = ready
        .iter()
        .filter(|event| seen.insert((event.source.as_str(), event.id.as_str())))
        .collect();
    let now = unix_now();
    let mut accepted = 0;
    if !fresh.is_empty() {
        store::begin(&caller.conn).await?;
        let mut written = Ok(());
        for rows in fresh.chunks(ROWS_PER_INSERT) {
            match insert_many(&tenant, rows, now).await {
                Ok(stored) => accepted += stored,
                Err(problem) => {
                    written = Err(problem);
                    break;
                }
            }
        }
        let keep = written.is_ok();
        let ended = store::end(&caller.conn, keep).await;
        written?;
        ended?;
    }
    let outcome = Outcome {
        accepted,
        duplicates: ready.len() - accepted,
        errors,
    };
    Ok(response::json(200, &outcome, request_id))
}
