//! Publishing an org event: its `org_events` row and, in the same
//! transaction (the caller's), one message with its delivery job for each
//! of the org's enabled endpoints that takes its type, and a failed
//! message (no job) for each disabled one that takes it.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use serde_json::Value;
use spin_sdk::sqlite::Connection;
use spin_sdk::sqlite::Value::Null;

use crate::catalog;
use crate::{Trigger, queue};

/// A new event id: `evt_`, the time in nanoseconds (16 hex digits) and 16
/// random hex digits. Ids sort in the order events were made, so lists
/// ordered by (time, id) keep that order within a second, and rows keyed
/// by them are appended to their index rather than inserted all over it.
pub fn new_event_id() -> String {
    db::new_sorted_id("evt_")
}

/// Records event `event_type` with `data` in the tenant's org at `now`
/// under a new id, queues its deliveries, and returns the id. Call it on
/// the connection (the tenant's), and inside the transaction, of the
/// change the event tells of: the event and its messages exist exactly
/// when the change does.
pub async fn publish(
    tenant: &Tenant<'_>,
    conn: &Connection,
    event_type: &str,
    data: &Value,
    now: i64,
) -> Result<String, Problem> {
    let event_id = new_event_id();
    publish_as(tenant, conn, &event_id, event_type, data, now).await?;
    Ok(event_id)
}

/// What an endpoint that is off gets for an event while it is off: a
/// failed message, so that recovering it once it is on again sends it.
const WHILE_OFF: &str = "the endpoint was disabled when the event happened";

/// [`publish`] under `event_id` (see [`new_event_id`]), for a caller whose
/// other rows name the event before it is recorded. Every statement goes
/// through the tenant; `conn` (the tenant's) queues the jobs, which belong
/// to no org.
pub async fn publish_as(
    tenant: &Tenant<'_>,
    conn: &Connection,
    event_id: &str,
    event_type: &str,
    data: &Value,
    now: i64,
) -> Result<(), Problem> {
    tenant
        .run(
            "INSERT INTO org_events (org_id, event_id, event_type, data, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            vec![
                db::text(event_id),
                db::text(event_type),
                db::text(data.to_string()),
                db::int(now),
            ],
        )
        .await?;
    for (endpoint, enabled) in subscribers(tenant, event_type).await? {
        let message_id = db::new_id("msg_");
        // An endpoint that is off gets the message failed, with no job.
        let (status, next, error) = if enabled {
            ("pending", db::int(now), None)
        } else {
            ("failed", Null, Some(WHILE_OFF.to_string()))
        };
        // One message per endpoint and event: publishing the same event
        // again (a retried caller) makes none.
        let made = tenant
            .query(
                "INSERT INTO webhook_messages (org_id, message_id, endpoint_id, event_id, event_type, status,
                                               attempts, next_attempt_at, last_error, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?9)
                 ON CONFLICT (endpoint_id, event_id) DO NOTHING
                 RETURNING message_id",
                vec![
                    db::text(&message_id),
                    db::text(&endpoint),
                    db::text(event_id),
                    db::text(event_type),
                    db::text(status),
                    next,
                    db::opt_text(error),
                    db::int(now),
                ],
            )
            .await?;
        if enabled && !made.is_empty() {
            queue(conn, &message_id, Trigger::Scheduled, now, now)
                .await
                .map_err(|e| {
                    eprintln!("webhooks: queueing the delivery of {message_id} failed: {e}");
                    Problem::internal()
                })?;
        }
    }
    Ok(())
}

/// The org's undeleted endpoints whose filter takes `event_type`, each
/// with whether it is enabled. A filter that does not read as a JSON array
/// of strings takes nothing (the admin routes never store one).
async fn subscribers(
    tenant: &Tenant<'_>,
    event_type: &str,
) -> Result<Vec<(String, bool)>, Problem> {
    let rows = tenant
        .query(
            "SELECT endpoint_id, event_types, enabled FROM webhook_endpoints
             WHERE org_id = ?1 AND deleted_at IS NULL",
            vec![],
        )
        .await?;
    Ok(rows
        .iter()
        .filter(|row| {
            let filter = db::get_opt_text(row, 1)
                .map(|text| serde_json::from_str::<Vec<String>>(&text).unwrap_or_default());
            catalog::takes(filter.as_deref(), event_type)
        })
        .map(|row| (db::get_text(row, 0), db::get_int(row, 2) == Some(1)))
        .collect())
}
