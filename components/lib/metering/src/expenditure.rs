//! Expenditure: records of what an org spends, in exact amounts (see
//! [`money`](crate::money)), per entity and item, written directly (see
//! [`expenditure_write`](crate::expenditure_write)) or derived from metered
//! usage through a meter's [`price`](crate::price).
//!
//! A record is written with one rollup row per entity it counts for, in
//! the same transaction: a member's spend counts for the member, each team
//! the member is in and every team above those, and the org; a team's for
//! the team, the teams above it and the org; the org's for the org. Reads
//! by entity sum the rollup rows, so a team's spend includes its members'
//! and its sub-teams'. Teams are those of the moment of writing.
//!
//! Spend derived from metered usage is recorded by the quota consume and
//! commit paths with [`record`] (source `consume` or `commit`), inside
//! their transaction; a tiered price counts the month's units with
//! [`take_month_units`] in that same transaction, so concurrent uses never
//! price the same units twice.

use std::collections::{HashMap, HashSet};

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use gatehouse_http::idempotency::unix_now;
use spin_sdk::sqlite::Value;

use crate::money::{Amount, valid_currency};
use crate::period::Calendar;
use crate::store;
use crate::subject::{Kind, Subject};

/// Records one statement writes: far under SQLite's limit on a
/// statement's parameters at [`PARAMS_PER_RECORD`] each.
const RECORDS_PER_INSERT: usize = 50;
/// The parameters of one record's row in [`insert`].
const PARAMS_PER_RECORD: usize = 13;
/// Rollup rows one statement writes (three parameters each).
const ROLLUP_PER_INSERT: usize = 300;
/// Where spend comes from.
const SOURCES: [&str; 3] = ["direct", "consume", "commit"];

/// One spend to record.
pub struct Spend<'a> {
    /// Whose spend: the org, a team or a member of the org.
    pub entity: Subject,
    /// How much; negative for a refund or a credit.
    pub amount: Amount,
    /// In which currency: three upper-case letters.
    pub currency: &'a str,
    /// On what kind of item (a model, an agent…), if any.
    pub item_type: Option<&'a str>,
    /// On which item of `item_type`, if any.
    pub item_id: Option<&'a str>,
    /// For spend derived from a meter: the meter's key.
    pub meter_key: Option<&'a str>,
    /// For spend derived from a meter: the units priced.
    pub units: Option<i64>,
    /// `direct`, `consume` or `commit`.
    pub source: &'a str,
    /// When it was spent, unix seconds.
    pub occurred_at: i64,
    /// Who wrote it: a user id, or a service's name.
    pub created_by: &'a str,
}

/// A spend with its new record id and, for a direct write, its writer's id.
pub(crate) struct Row<'a> {
    /// `exp_…`, new.
    pub id: String,
    /// What was spent.
    pub spend: Spend<'a>,
    /// The writer's own id for it.
    pub external_id: Option<&'a str>,
}

fn unrecordable(what: &str) -> Problem {
    eprintln!("expenditure: refused to record a spend with {what}");
    Problem::internal()
}

/// Records one spend and the rollup rows of every entity it counts for, in
/// the caller's transaction (the quota consume's `BEGIN IMMEDIATE`, so
/// its roll-up is exact under concurrency); the record's id (`exp_…`).
/// The entity must belong to the org: the caller has checked it.
pub async fn record(tenant: &Tenant<'_>, spend: &Spend<'_>) -> Result<String, Problem> {
    if !valid_currency(spend.currency) {
        return Err(unrecordable("a malformed currency"));
    }
    if !SOURCES.contains(&spend.source) {
        return Err(unrecordable("an unknown source"));
    }
    if spend.meter_key.is_some() != spend.units.is_some() {
        return Err(unrecordable(
            "a meter without units, or units without a meter",
        ));
    }
    let row = Row {
        id: db::new_id("exp_"),
        spend: Spend {
            entity: spend.entity.clone(),
            ..*spend
        },
        external_id: None,
    };
    let stored = insert(tenant, &[&row], unix_now()).await?;
    if !stored.contains(&row.id) {
        return Err(unrecordable("a record id taken"));
    }
    let mut expansions = Expansions::default();
    let counts_for = expansions.of(tenant, &row.spend.entity).await?;
    let entries: Vec<(&str, &Subject)> = counts_for.iter().map(|s| (row.id.as_str(), s)).collect();
    roll_up(tenant, &entries).await?;
    Ok(row.id)
}

/// Takes `units` into the org's count of `meter_key` in the month starting
/// at `month_start` (the month's first second in the org's time zone), in
/// the caller's transaction; the count before them, which a tiered
/// [`Price`](crate::price::Price) starts from. Fewer than zero units take
/// nothing.
pub async fn take_month_units(
    tenant: &Tenant<'_>,
    meter_key: &str,
    month_start: i64,
    units: i64,
) -> Result<i64, Problem> {
    let units = units.max(0);
    let rows = tenant
        .query(
            "INSERT INTO meter_month_units (org_id, meter_key, month_start, units) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (org_id, meter_key, month_start)
             DO UPDATE SET units = meter_month_units.units + excluded.units
             RETURNING units",
            vec![db::text(meter_key), db::int(month_start), db::int(units)],
        )
        .await?;
    let after = rows
        .first()
        .and_then(|r| db::get_int(r, 0))
        .unwrap_or(units);
    Ok(after - units)
}

/// The org's calendar: its time zone's (UTC when unset or unknown).
pub async fn calendar(tenant: &Tenant<'_>) -> Result<Calendar, Problem> {
    let rows = tenant
        .query("SELECT time_zone FROM orgs WHERE org_id = ?1", vec![])
        .await?;
    Ok(rows
        .first()
        .and_then(|r| db::get_opt_text(r, 0))
        .and_then(|zone| Calendar::of(&zone))
        .unwrap_or_else(Calendar::utc))
}

/// The teams a team counts for: itself and every team above it.
async fn teams_above(tenant: &Tenant<'_>, team_id: &str) -> Result<Vec<String>, Problem> {
    let rows = tenant
        .query(
            "WITH RECURSIVE up(team_id) AS (
                 SELECT team_id FROM teams WHERE org_id = ?1 AND team_id = ?2
                 UNION
                 SELECT t.parent_team_id FROM teams t JOIN up ON t.team_id = up.team_id
                 WHERE t.org_id = ?1 AND t.parent_team_id IS NOT NULL)
             SELECT team_id FROM up",
            vec![db::text(team_id)],
        )
        .await?;
    Ok(rows.iter().map(|r| db::get_text(r, 0)).collect())
}

/// The entities each entity's spend counts for, looked up once per
/// entity of a batch.
#[derive(Default)]
struct Expansions {
    known: HashMap<Subject, Vec<Subject>>,
}

impl Expansions {
    async fn of(&mut self, tenant: &Tenant<'_>, entity: &Subject) -> Result<&[Subject], Problem> {
        if !self.known.contains_key(entity) {
            let teams = match entity.kind {
                Kind::User => store::teams_of(tenant, &entity.id).await?,
                Kind::Team => teams_above(tenant, &entity.id).await?,
                Kind::Org | Kind::Key => Vec::new(),
            };
            let mut all = Vec::with_capacity(teams.len() + 2);
            if entity.kind == Kind::User {
                all.push(entity.clone());
            }
            let mut seen = HashSet::new();
            all.extend(
                teams
                    .into_iter()
                    .filter(|t| seen.insert(t.clone()))
                    .map(|id| Subject {
                        kind: Kind::Team,
                        id,
                    }),
            );
            all.push(Subject {
                kind: Kind::Org,
                id: tenant.org_id().to_string(),
            });
            self.known.insert(entity.clone(), all);
        }
        Ok(self
            .known
            .get(entity)
            .map(Vec::as_slice)
            .unwrap_or_default())
    }
}

/// Writes `rows` with one statement per [`RECORDS_PER_INSERT`]; the ids
/// of those written. A row whose writer's id the org already has is not
/// written.
async fn insert(
    tenant: &Tenant<'_>,
    rows: &[&Row<'_>],
    now: i64,
) -> Result<HashSet<String>, Problem> {
    let mut stored = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(RECORDS_PER_INSERT) {
        // `?1` is the org and `?2` the time recorded; each row's own follow.
        let mut params = Vec::with_capacity(1 + chunk.len() * PARAMS_PER_RECORD);
        params.push(db::int(now));
        let mut values = Vec::with_capacity(chunk.len());
        for row in chunk {
            let first = params.len() + 2;
            let marks: Vec<String> = (first..first + PARAMS_PER_RECORD)
                .map(|n| format!("?{n}"))
                .collect();
            values.push(format!("({})", marks.join(", ")));
            let s = &row.spend;
            let opt = |v: Option<&str>| db::opt_text(v.map(str::to_string));
            params.extend([
                db::text(&row.id),
                db::text(s.entity.kind.as_str()),
                db::text(&s.entity.id),
                db::int(s.amount.nanos()),
                db::text(s.currency),
                opt(s.item_type),
                opt(s.item_id),
                opt(s.meter_key),
                s.units.map_or(Value::Null, db::int),
                db::text(s.source),
                db::int(s.occurred_at),
                db::text(s.created_by),
                opt(row.external_id),
            ]);
        }
        // The tenant guard admits inserts of one row only, so the rows take
        // the org from its own row, filtered by `?1` like any read.
        let sql = format!(
            "INSERT INTO expenditure_records (org_id, record_id, entity_type, entity_id, amount, currency,
                 item_type, item_id, meter_key, units, source, occurred_at, created_by, external_id, recorded_at)
             SELECT o.org_id, b.column1, b.column2, b.column3, b.column4, b.column5, b.column6, b.column7,
                 b.column8, b.column9, b.column10, b.column11, b.column12, b.column13, ?2
             FROM orgs o, (VALUES {}) b
             WHERE o.org_id = ?1
             ON CONFLICT DO NOTHING RETURNING record_id",
            values.join(", ")
        );
        let written = tenant.query(&sql, params).await?;
        stored.extend(written.iter().map(|r| db::get_text(r, 0)));
    }
    Ok(stored)
}

/// Writes the rollup rows: each `(record id, entity)` copies the record's
/// currency, amount, item and time.
async fn roll_up(tenant: &Tenant<'_>, entries: &[(&str, &Subject)]) -> Result<(), Problem> {
    for chunk in entries.chunks(ROLLUP_PER_INSERT) {
        let mut params = Vec::with_capacity(chunk.len() * 3);
        let mut values = Vec::with_capacity(chunk.len());
        for (record, entity) in chunk {
            let n = params.len() + 2;
            values.push(format!("(?{n}, ?{}, ?{})", n + 1, n + 2));
            params.extend([
                db::text(*record),
                db::text(entity.kind.as_str()),
                db::text(&entity.id),
            ]);
        }
        let sql = format!(
            "INSERT INTO expenditure_rollup (org_id, record_id, entity_type, entity_id, currency, amount,
                 item_type, item_id, occurred_at)
             SELECT r.org_id, r.record_id, b.column2, b.column3, r.currency, r.amount,
                 r.item_type, r.item_id, r.occurred_at
             FROM (VALUES {}) b JOIN expenditure_records r ON r.record_id = b.column1
             WHERE r.org_id = ?1",
            values.join(", ")
        );
        tenant.exec(&sql, params).await?;
    }
    Ok(())
}

/// Writes records and their rollup rows, in the caller's transaction;
/// the ids written (a record whose writer's id the org has is not).
pub(crate) async fn write(
    tenant: &Tenant<'_>,
    rows: &[&Row<'_>],
    now: i64,
) -> Result<HashSet<String>, Problem> {
    let stored = insert(tenant, rows, now).await?;
    let mut expansions = Expansions::default();
    let mut entries = Vec::new();
    for row in rows.iter().filter(|r| stored.contains(&r.id)) {
        for entity in expansions.of(tenant, &row.spend.entity).await? {
            entries.push((row.id.as_str(), entity.clone()));
        }
    }
    let entries: Vec<(&str, &Subject)> = entries.iter().map(|(id, s)| (*id, s)).collect();
    roll_up(tenant, &entries).await?;
    Ok(stored)
}
