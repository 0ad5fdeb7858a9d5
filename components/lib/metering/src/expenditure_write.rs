//! `POST /v1/expenditure`: spend records written directly.
//!
//! The body is one record (a JSON object) or an array of up to
//! [`MAX_RECORDS`](crate::expenditure_input::MAX_RECORDS). Who may: an
//! admin of the org, or a holder of the permission that sends usage
//! ([`INGEST`](crate::caller::INGEST)). A batch is taken whole or not at
//! all: any bad field of any record, or an entity that is not the org or
//! one of its teams or members, refuses the request with a 422 naming
//! every bad field by its pointer, and nothing is written. Money is not a
//! place for half a batch: a client fixes what is named and sends the
//! same batch again. A record's optional `id` is the writer's own: a
//! record whose `id` the org has already sent (or that comes again in the
//! same batch) is a duplicate, answered with the id of the record first
//! stored and not written twice. The records are written in one
//! transaction, which also counts them against the spend quotas of their
//! entities (in the periods of their times; a refund lowers no counter)
//! and checks the day's spend for the unusual-spend flag.

use std::collections::{BTreeSet, HashMap, HashSet};

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use serde::Serialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;

use crate::caller;
use crate::expenditure::{Row, Spend, write};
use crate::expenditure_input::{self, Input};
use crate::store;

/// The largest body: a full batch of records of about 1 KiB each.
const BODY_LIMIT: usize = 1024 * 1024;

/// The records the org already has under these writer's ids: id → record.
async fn earlier(tenant: &Tenant<'_>, ids: &[&str]) -> Result<HashMap<String, String>, Problem> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let rows = tenant
            .query(
                &format!(
                    "SELECT external_id, record_id FROM expenditure_records
                     WHERE org_id = ?1 AND external_id IN ({marks})"
                ),
                chunk.iter().map(|id| db::text(*id)).collect(),
            )
            .await?;
        found.extend(
            rows.iter()
                .map(|r| (db::get_text(r, 0), db::get_text(r, 1))),
        );
    }
    Ok(found)
}

/// One record of the answer, in the order sent.
#[derive(Serialize)]
struct Written {
    id: String,
    duplicate: bool,
}

#[derive(Serialize)]
struct Outcome {
    accepted: usize,
    duplicates: usize,
    records: Vec<Written>,
}

fn invalid(errors: Vec<FieldError>) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the request has invalid records: nothing was written")
        .errors(errors)
}

/// Checks every record, then that every entity is the org's: all bad
/// fields of all records, or the inputs.
async fn checked(
    tenant: &Tenant<'_>,
    body: serde_json::Value,
    now: i64,
) -> Result<Vec<Input>, Problem> {
    let records = expenditure_input::records(body).map_err(|e| invalid(vec![e]))?;
    let mut errors = Vec::new();
    let mut inputs = Vec::with_capacity(records.len());
    let mut pointers = Vec::with_capacity(records.len());
    for (at, value) in &records {
        match expenditure_input::check(value, at, tenant.org_id(), now) {
            Ok(input) => {
                inputs.push(input);
                pointers.push(at.as_str());
            }
            Err(mut bad) => errors.append(&mut bad),
        }
    }
    let known = store::belonging(tenant, inputs.iter().map(|i| &i.entity)).await?;
    for (input, at) in inputs.iter().zip(&pointers) {
        if !known.contains(&input.entity) {
            errors.push(FieldError::new(
                format!("{at}/entity"),
                "unknown_entity",
                "the entity is not this organization or one of its teams or members",
            ));
        }
    }
    if errors.is_empty() {
        Ok(inputs)
    } else {
        Err(invalid(errors))
    }
}

/// Counts the records just written against their entities' spend quotas
/// (firing the thresholds they cross), then checks each currency's spend
/// of the day for the unusual-spend flag.
async fn counted(
    tenant: &Tenant<'_>,
    conn: &Connection,
    rows: &[&Row<'_>],
    stored: &HashSet<String>,
    now: i64,
) -> Result<(), Problem> {
    let calendar = crate::expenditure::calendar(tenant).await?;
    let mut currencies = BTreeSet::new();
    for row in rows.iter().filter(|r| stored.contains(&r.id)) {
        crate::check::count_recorded(tenant, conn, &row.spend, &calendar).await?;
        currencies.insert(row.spend.currency);
    }
    for currency in currencies {
        crate::alerts::check_unusual_spend(tenant, conn, currency, now, &calendar).await?;
    }
    Ok(())
}

/// `POST /v1/expenditure`.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::holding(&req, caller::INGEST).await?;
    let tenant = caller.tenant()?;
    let body: serde_json::Value = json::read_unvalidated(req, BODY_LIMIT).await?;
    let now = unix_now();
    let inputs = checked(&tenant, body, now).await?;
    let actor = caller::actor_id(&caller);
    // The first record of the batch with a writer's id is the one written;
    // a repeat of it later in the batch is a duplicate, as in a later batch.
    let mut seen = HashSet::new();
    let rows: Vec<Option<Row>> = inputs
        .iter()
        .map(|input| {
            let fresh = input
                .external_id
                .as_deref()
                .is_none_or(|id| seen.insert(id));
            fresh.then(|| Row {
                id: db::new_id("exp_"),
                spend: Spend {
                    entity: input.entity.clone(),
                    amount: input.amount,
                    currency: &input.currency,
                    item_type: input.item_type.as_deref(),
                    item_id: input.item_id.as_deref(),
                    meter_key: None,
                    units: None,
                    source: "direct",
                    occurred_at: input.occurred_at,
                    created_by: &actor,
                },
                external_id: input.external_id.as_deref(),
            })
        })
        .collect();
    let fresh: Vec<&Row> = rows.iter().flatten().collect();
    store::begin(&caller.conn).await?;
    let written = async {
        let stored = write(&tenant, &fresh, now).await?;
        counted(&tenant, &caller.conn, &fresh, &stored, now).await?;
        Ok::<_, Problem>(stored)
    }
    .await;
    let ended = store::end(&caller.conn, written.is_ok()).await;
    let stored = written?;
    ended?;
    let repeated: Vec<&str> = inputs
        .iter()
        .zip(&rows)
        .filter(|(_, row)| !row.as_ref().is_some_and(|r| stored.contains(&r.id)))
        .filter_map(|(input, _)| input.external_id.as_deref())
        .collect();
    let before = earlier(&tenant, &repeated).await?;
    let records: Vec<Written> = inputs
        .iter()
        .zip(&rows)
        .map(|(input, row)| match row {
            Some(row) if stored.contains(&row.id) => Written {
                id: row.id.clone(),
                duplicate: false,
            },
            _ => Written {
                id: input
                    .external_id
                    .as_ref()
                    .and_then(|id| before.get(id))
                    .cloned()
                    .unwrap_or_default(),
                duplicate: true,
            },
        })
        .collect();
    let accepted = stored.len();
    let outcome = Outcome {
        accepted,
        duplicates: records.len() - accepted,
        records,
    };
    Ok(response::json(200, &outcome, request_id))
}
