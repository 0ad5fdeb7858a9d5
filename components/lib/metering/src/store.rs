//! Reads shared by the handlers (meters, the org's members and teams) and
//! the transaction around a batch of writes.

use std::collections::{HashMap, HashSet};

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use spin_sdk::sqlite::{Connection, RowResult};

use crate::model::{Aggregation, Meter};
use crate::price::Price;
use crate::subject::{Kind, Subject};

/// The columns [`meter_of`] reads.
pub const METER_COLUMNS: &str =
    "meter_key, event_type, aggregation, value_path, group_by, created_at, price";

/// A meter from a row of [`METER_COLUMNS`].
pub fn meter_of(row: &RowResult) -> Meter {
    Meter {
        key: db::get_text(row, 0),
        event_type: db::get_text(row, 1),
        // The column's CHECK admits only known names.
        aggregation: Aggregation::parse(&db::get_text(row, 2)).unwrap_or(Aggregation::Count),
        value_path: db::get_opt_text(row, 3),
        group_by: db::get_json(row, 4)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
        created_at: db::get_int(row, 5).unwrap_or_default(),
        // Written only as a checked price's canonical JSON.
        price: db::get_opt_text(row, 6).and_then(|text| Price::from_stored(&text)),
    }
}

/// The org's meter `key`, if it has one.
pub async fn meter(tenant: &Tenant<'_>, key: &str) -> Result<Option<Meter>, Problem> {
    let rows = tenant
        .query(
            &format!("SELECT {METER_COLUMNS} FROM meters WHERE org_id = ?1 AND meter_key = ?2"),
            vec![db::text(key)],
        )
        .await?;
    Ok(rows.first().map(meter_of))
}

/// Whether `subject` is the org, or a member, team or key of it. Another
/// org's user is unknown here, exactly like one that does not exist.
pub async fn belongs(tenant: &Tenant<'_>, subject: &Subject) -> Result<bool, Problem> {
    let sql = match subject.kind {
        Kind::Org => return Ok(subject.id == tenant.org_id()),
        Kind::User => "SELECT 1 FROM memberships WHERE org_id = ?1 AND user_id = ?2",
        Kind::Team => "SELECT 1 FROM teams WHERE org_id = ?1 AND team_id = ?2",
        Kind::Key => "SELECT 1 FROM api_keys WHERE org_id = ?1 AND key_id = ?2",
    };
    Ok(!tenant
        .query(sql, vec![db::text(&subject.id)])
        .await?
        .is_empty())
}

/// Ids one subject lookup names: far under SQLite's limit on a
/// statement's parameters.
const IDS_PER_LOOKUP: usize = 500;

/// Which of `subjects` [`belongs`] to the org, with one query per kind
/// (and per [`IDS_PER_LOOKUP`] ids) instead of one per subject: a batch
/// names many, and the same one often.
pub async fn belonging<'s>(
    tenant: &Tenant<'_>,
    subjects: impl IntoIterator<Item = &'s Subject>,
) -> Result<HashSet<Subject>, Problem> {
    let mut known = HashSet::new();
    let mut ids: HashMap<Kind, Vec<&str>> = HashMap::new();
    let distinct: HashSet<&Subject> = subjects.into_iter().collect();
    for subject in distinct {
        if subject.kind == Kind::Org {
            if subject.id == tenant.org_id() {
                known.insert(subject.clone());
            }
        } else {
            ids.entry(subject.kind).or_default().push(&subject.id);
        }
    }
    for (kind, ids) in ids {
        let (table, column) = match kind {
            Kind::User => ("memberships", "user_id"),
            Kind::Team => ("teams", "team_id"),
            Kind::Key => ("api_keys", "key_id"),
            Kind::Org => continue,
        };
        for chunk in ids.chunks(IDS_PER_LOOKUP) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let rows = tenant
                .query(
                    &format!(
                        "SELECT {column} FROM {table} WHERE org_id = ?1 AND {column} IN ({marks})"
                    ),
                    chunk.iter().map(|id| db::text(*id)).collect(),
                )
                .await?;
            known.extend(rows.iter().map(|row| Subject {
                kind,
                id: db::get_text(row, 0),
            }));
        }
    }
    Ok(known)
}

/// The teams whose quotas apply to a member: those the member is in and
/// every team above them.
pub async fn teams_of(tenant: &Tenant<'_>, user_id: &str) -> Result<Vec<String>, Problem> {
    let rows = tenant
        .query(
            "WITH RECURSIVE up(team_id) AS (
                 SELECT team_id FROM team_members WHERE org_id = ?1 AND user_id = ?2
                 UNION
                 SELECT t.parent_team_id FROM teams t JOIN up ON t.team_id = up.team_id
                 WHERE t.org_id = ?1 AND t.parent_team_id IS NOT NULL)
             SELECT team_id FROM up",
            vec![db::text(user_id)],
        )
        .await?;
    Ok(rows.iter().map(|r| db::get_text(r, 0)).collect())
}

/// Starts a write transaction: `IMMEDIATE` takes the write lock now, so
/// what the transaction reads stays true until it commits.
pub async fn begin(conn: &Connection) -> Result<(), Problem> {
    db::run(conn, "BEGIN IMMEDIATE", vec![]).await
}

/// Starts a read transaction: its reads see one snapshot, and it takes
/// no write lock.
pub async fn begin_read(conn: &Connection) -> Result<(), Problem> {
    db::run(conn, "BEGIN", vec![]).await
}

/// Ends the transaction: commits when `keep`, else rolls back.
pub async fn end(conn: &Connection, keep: bool) -> Result<(), Problem> {
    let sql = if keep { "COMMIT" } else { "ROLLBACK" };
    let ended = db::run(conn, sql, vec![]).await;
    // A failed COMMIT leaves the transaction open: roll it back, or the
    // connection's next BEGIN fails.
    if keep && ended.is_err() {
        let _ = db::run(conn, "ROLLBACK", vec![]).await;
    }
    ended
}
