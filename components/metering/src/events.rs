//! `POST /v1/usage/events`: a batch of CloudEvents-shaped usage events.
//!
//! The body is a JSON array of events (CloudEvents' batch shape), at most
//! [`MAX_BATCH`]. Each event is checked on its own: a bad one is reported
//! by its index and the others still count. Accepted events are written in
//! one transaction before the answer. An event whose `(source, id)` the org
//! has already sent is a duplicate, however much later it comes again:
//! reported, not stored twice.

use std::collections::HashMap;

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

/// Stores one event; false when the org has it already.
async fn insert(tenant: &Tenant<'_>, event: &Checked, now: i64) -> Result<bool, Problem> {
    let stored = tenant
        .exec(
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
        .await?;
    Ok(stored == 1)
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
        id: db::new_id("evt_"),
        source: CONSUME_SOURCE.into(),
        event_type: event_type.into(),
        subject: subject.clone(),
        occurred_at: now,
        data: data.to_string(),
    };
    insert(tenant, &event, now).await.map(|_| ())
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
    let mut errors = Vec::new();
    let mut ready = Vec::with_capacity(batch.len());
    // Subjects repeat within a batch: each is looked up once.
    let mut known: HashMap<Subject, bool> = HashMap::new();
    for (index, value) in batch.into_iter().enumerate() {
        let event = match check(value) {
            Ok(event) => event,
            Err((code, detail)) => {
                errors.push(EventError {
                    index,
                    code,
                    detail,
                });
                continue;
            }
        };
        let belongs = match known.get(&event.subject) {
            Some(&b) => b,
            None => {
                let b = store::belongs(&tenant, &event.subject).await?;
                known.insert(event.subject.clone(), b);
                b
            }
        };
        if belongs {
            ready.push(event);
        } else {
            errors.push(EventError {
                index,
                code: "unknown_subject",
                detail: "the subject is not this organization or one of its teams, members or keys"
                    .into(),
            });
        }
    }
    let now = unix_now();
    let mut accepted = 0;
    if !ready.is_empty() {
        store::begin(&caller.conn).await?;
        let mut written = Ok(());
        for event in &ready {
            match insert(&tenant, event, now).await {
                Ok(stored) => accepted += usize::from(stored),
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
