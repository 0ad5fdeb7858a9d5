//! `POST /v1/quotas/check` and `POST /v1/quotas/consume`.
//!
//! Every quota that applies to a use counts: quotas on the use's meter
//! and, when the meter has a price, quotas on spend in its currency; the
//! user's own, each team's the user is in (and the teams above them), and
//! the org's; those for every item and those for the use's item type or
//! item. A use by a key counts for the key's owner. The decision is
//! [`decide`]'s.
//!
//! One statement reads every applicable quota with its override, its
//! count in the current period (or rolling window) and what open
//! reservations hold against it. A consume writes with one statement that
//! rechecks every hard quota as it raises the counters (see
//! [`decided`](crate::decided)), or, when it has more to write or a quota
//! moved meanwhile, reads and raises the counters in one `IMMEDIATE`
//! transaction, so no two consumes see the same standing; either way, if
//! any hard quota would pass its limit, nothing is counted. An allowed
//! consume also records a usage event of the meter's type (source
//! [`CONSUME_SOURCE`](crate::events::CONSUME_SOURCE)) and, for a priced
//! meter, the spend, atomically with the counters. Events sent to
//! `/v1/usage/events` move no quota counters.
//!
//! Units held by open reservations count as used (see [`holds`]); an
//! allowed consume that meets expired holds tidies them away. A crossed
//! alert threshold fires in the transaction that crossed it.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::sqlite::create_once;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use spin_sdk::http::Request;
use spin_sdk::sqlite::{RowResult, Value};
use std::sync::LazyLock;

use crate::alerts;
use crate::caller;
use crate::decision::{Decision, Standing, decide};
use crate::events;
use crate::expenditure;
use crate::holds;
use crate::model::{Aggregation, Enforcement, Measure, Meter, Quota, Use, recorded_data};
use crate::period::{Calendar, Period, Unit};
use crate::quotas::{QUOTA_COLUMNS_Q, quota_of};
use crate::store::{self, METER_COLUMNS};
use crate::subject::{self, Kind, Subject};

pub(crate) fn invalid(pointer: &str, code: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the request body has invalid fields")
        .errors(vec![FieldError::new(pointer, code, message)])
}

/// What a use is counted against.
pub(crate) struct Target {
    /// The meter it uses.
    pub meter: Meter,
    /// The member it counts for (a key's owner, for a key).
    pub user: Subject,
    /// The org's calendar.
    pub calendar: Calendar,
    /// The item type it is of, if named.
    pub item_type: Option<String>,
    /// The item it is of, if named.
    pub item_id: Option<String>,
}

/// The subject of a use as the statement's parameters: a member's id or
/// a key's id.
fn subject_params(body: &Use) -> Result<(Value, Value), Problem> {
    let subject = subject::parse(&body.subject).ok_or_else(bad_subject)?;
    match subject.kind {
        Kind::User => Ok((db::text(&subject.id), Value::Null)),
        Kind::Key => Ok((Value::Null, db::text(&subject.id))),
        _ => Err(bad_subject()),
    }
}

fn bad_subject() -> Problem {
    invalid(
        "/subject",
        "invalid_subject",
        "subject must be user:<id> or key:<id>",
    )
}

/// A use resolved: what it counts against, what it costs, and where every
/// quota that applies to it stands.
pub(crate) struct Resolved {
    pub target: Target,
    pub cost: Option<Cost>,
    pub counted: Vec<Counted>,
    /// The org's metering epoch as read (see migration 0038).
    pub epoch: i64,
}

/// The meter, the member the use counts for (a key's owner, for a key),
/// the org's calendar and every applicable quota's standing, in one
/// statement. A subject that is not a member (or a key) of the org is
/// unknown, like a meter the org does not have. For a priced meter the
/// use's cost follows as `costing` says (see [`cost`]).
///
/// The calendar's period starts are parameters of that statement, so the
/// org's time zone must be known before it runs: the zone this instance
/// last saw for the org is assumed (UTC at first), and the statement
/// reads the zone too; when an admin has changed it since, the statement
/// runs again with the new one.
pub(crate) async fn resolve(
    tenant: &Tenant<'_>,
    body: &Use,
    now: i64,
    costing: Costing,
) -> Result<Resolved, Problem> {
    let (user_id, key_id) = subject_params(body)?;
    let org = tenant.org_id().to_string();
    let mut calendar = zones::assumed(&org);
    let rows = loop {
        let rows = tenant
            .query(
                &RESOLVE_SQL,
                vec![
                    user_id.clone(),
                    db::text(&body.meter),
                    key_id.clone(),
                    db::int(now),
                    text_or_null(body.item_type.as_deref()),
                    text_or_null(body.item_id.as_deref()),
                    db::int(calendar.start(Unit::Day, now)),
                    db::int(calendar.start(Unit::Week, now)),
                    db::int(calendar.start(Unit::Month, now)),
                ],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Err(invalid(
                "/meter",
                "unknown_meter",
                "the org has no meter with this key",
            ));
        };
        let zone = db::get_opt_text(row, ZONE_COLUMN);
        if zone.as_deref().unwrap_or(UTC) == calendar.name() {
            break rows;
        }
        // (A zone the time zone database does not know counts as UTC, as
        // everywhere else: then the statement may have had it right.)
        let seen = zones::learn(&org, zone.as_deref());
        if seen.name() == calendar.name() {
            break rows;
        }
        calendar = seen;
    };
    let head = &rows[0];
    let user = db::get_opt_text(head, USER_COLUMN).ok_or_else(|| {
        invalid(
            "/subject",
            "unknown_subject",
            "the subject is not a member or an API key of this organization",
        )
    })?;
    let meter = store::meter_of(&RowResult {
        values: head.values[METER_COLUMN..ZONE_COLUMN].to_vec(),
    });
    let target = Target {
        meter,
        user: Subject {
            kind: Kind::User,
            id: user,
        },
        calendar,
        item_type: body.item_type.clone(),
        item_id: body.item_id.clone(),
    };
    let cost = match costing {
        Costing::Skip => None,
        Costing::Read => cost(tenant, &target, body.amount, now, false).await?,
        Costing::Take => cost(tenant, &target, body.amount, now, true).await?,
    };
    let counted = rows
        .iter()
        // A meter no quota counts joins none: one row without a quota.
        .filter(|row| db::get_opt_text(row, 0).is_some())
        .map(|row| counted(row, &target.calendar, body.amount, cost.as_ref(), now))
        // Spend quotas in every currency were read; the use's counts.
        .filter(|c| match &c.quota.measure {
            Measure::Meter(_) => true,
            Measure::Spend(currency) => cost.as_ref().is_some_and(|k| &k.currency == currency),
        })
        .collect();
    Ok(Resolved {
        epoch: db::get_int(head, EPOCH_COLUMN).unwrap_or(0),
        target,
        cost,
        counted,
    })
}

const UTC: &str = "UTC";

/// What [`resolve`] works out of a priced meter's cost.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Costing {
    /// The cost, reading the month's units of a tiered price.
    Read,
    /// The cost, the use's units joining the month's (see [`cost`]).
    Take,
    /// No cost, and no quota on spend: for a caller that goes another
    /// way when the meter is priced.
    Skip,
}

/// The statement's columns: a quota's ([`QUOTA_COLUMNS_Q`]), its
/// standing's five, then the meter's ([`METER_COLUMNS`]), the org's zone,
/// the member the use counts for and the org's metering epoch (migration
/// 0038).
const STANDING_COLUMN: usize = 15;
const METER_COLUMN: usize = STANDING_COLUMN + 5;
const ZONE_COLUMN: usize = METER_COLUMN + 7;
const USER_COLUMN: usize = ZONE_COLUMN + 1;
const EPOCH_COLUMN: usize = USER_COLUMN + 1;

/// A quota's override, its count in the period (or window), the start of
/// its oldest counter in use, what open reservations hold and whether
/// expired ones still hold: the five columns after the quota's.
const STANDING_SQL: &str = "(SELECT v.limit_units FROM quota_overrides v
      WHERE v.org_id = ?1 AND v.quota_id = q.quota_id AND v.expires_at > ?5
      ORDER BY v.created_at DESC, v.override_id DESC LIMIT 1),
     (SELECT COALESCE(SUM(c.used), 0) FROM quota_counters c
      WHERE c.org_id = ?1 AND c.quota_id = q.quota_id AND c.period_start >= COUNTING_FROM AND c.period_start <= ?5),
     (SELECT MIN(c.period_start) FROM quota_counters c
      WHERE c.org_id = ?1 AND c.quota_id = q.quota_id AND c.used > 0 AND c.period_start >= COUNTING_FROM AND c.period_start <= ?5),
     (SELECT COALESCE(SUM(h.amount), 0) FROM quota_holds h
      WHERE h.org_id = ?1 AND h.quota_id = q.quota_id AND h.expires_at > ?5),
     EXISTS (SELECT 1 FROM quota_holds x WHERE x.org_id = ?1 AND x.quota_id = q.quota_id AND x.expires_at <= ?5)";

/// A use's meter, member, zone and quotas (see [`resolve`]): `?2` the
/// member's id or `?4` the key's, `?3` the meter, `?5` now, `?6`/`?7` the
/// item, `?8`–`?10` the period starts. Built once an instance.
static RESOLVE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE who(user_id) AS (
             SELECT COALESCE(
                 (SELECT m.user_id FROM memberships m WHERE m.org_id = ?1 AND m.user_id = ?2),
                 (SELECT k.owner_user_id FROM api_keys k
                  JOIN memberships m ON m.org_id = k.org_id AND m.user_id = k.owner_user_id
                  WHERE k.org_id = ?1 AND k.key_id = ?4))),
         up(team_id) AS (
             SELECT team_id FROM team_members WHERE org_id = ?1 AND user_id = (SELECT user_id FROM who)
             UNION
             SELECT t.parent_team_id FROM teams t JOIN up ON t.team_id = up.team_id
             WHERE t.org_id = ?1 AND t.parent_team_id IS NOT NULL),
         head AS (
             SELECT {METER_COLUMNS},
                 (SELECT o.time_zone FROM orgs o WHERE o.org_id = ?1) AS zone,
                 (SELECT user_id FROM who) AS user_id,
                 (SELECT o.metering_epoch FROM orgs o WHERE o.org_id = ?1) AS epoch
             FROM meters WHERE org_id = ?1 AND meter_key = ?3)
         SELECT {QUOTA_COLUMNS_Q}, {standing}, head.*
         FROM head LEFT JOIN quotas q
           ON q.org_id = ?1
          AND (q.meter_key = head.meter_key OR (q.currency IS NOT NULL AND head.price IS NOT NULL))
          AND (q.item_type IS NULL OR (q.item_type = ?6 AND (q.item_id IS NULL OR q.item_id = ?7)))
          AND (q.entity_type = 'org' OR (q.entity_type = 'user' AND q.entity_id = head.user_id)
               OR (q.entity_type = 'team' AND q.entity_id IN (SELECT team_id FROM up)))
         ORDER BY q.quota_id",
        standing = STANDING_SQL.replace("COUNTING_FROM", COUNTING_FROM),
    )
});

/// The org's calendar as this instance last saw it.
mod zones {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use crate::period::Calendar;

    /// Orgs remembered at most: past it, the memory starts over.
    const MAX_ORGS: usize = 4096;

    static ZONES: Mutex<Option<HashMap<String, Calendar>>> = Mutex::new(None);

    /// The calendar last seen for `org`; UTC if none.
    pub(super) fn assumed(org: &str) -> Calendar {
        ZONES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|zones| zones.get(org).cloned())
            .unwrap_or_else(Calendar::utc)
    }

    /// Remembers `zone` (none: UTC) as `org`'s; its calendar.
    pub(super) fn learn(org: &str, zone: Option<&str>) -> Calendar {
        let calendar = zone.and_then(Calendar::of).unwrap_or_else(Calendar::utc);
        let mut zones = ZONES.lock().unwrap_or_else(|p| p.into_inner());
        let zones = zones.get_or_insert_with(HashMap::new);
        if zones.len() >= MAX_ORGS {
            zones.clear();
        }
        zones.insert(org.to_string(), calendar.clone());
        calendar
    }
}

pub(crate) fn text_or_null(v: Option<&str>) -> Value {
    v.map_or(Value::Null, db::text)
}

/// A use's spend: the currency and the amount in billionths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cost {
    pub currency: String,
    pub amount: i64,
}

/// What `amount` units of the target's meter cost, if it has a price.
/// A tiered price counts the org's units of the meter this calendar
/// month; with `take`, these units join that count (the caller's
/// transaction keeps that only if the use is kept).
pub(crate) async fn cost(
    tenant: &Tenant<'_>,
    target: &Target,
    amount: i64,
    now: i64,
    take: bool,
) -> Result<Option<Cost>, Problem> {
    let Some(price) = &target.meter.price else {
        return Ok(None);
    };
    let before = if price.is_tiered() {
        let month = target.calendar.start(Unit::Month, now);
        if take {
            expenditure::take_month_units(tenant, &target.meter.key, month, amount).await?
        } else {
            let rows = tenant
                .query(
                    "SELECT units FROM meter_month_units WHERE org_id = ?1 AND meter_key = ?2 AND month_start = ?3",
                    vec![db::text(&target.meter.key), db::int(month)],
                )
                .await?;
            rows.first().and_then(|r| db::get_int(r, 0)).unwrap_or(0)
        }
    } else {
        0
    };
    Ok(Some(Cost {
        currency: price.currency().to_string(),
        amount: price.cost(before, amount).nanos(),
    }))
}

/// A quota's standing in its current period (counting what open
/// reservations hold), with the counter a use raises (`start`).
#[derive(Clone)]
pub(crate) struct Counted {
    pub quota: Quota,
    pub standing: Standing,
    pub start: i64,
    /// Whether reservations that expired still have holds on it (to be
    /// tidied up: they hold nothing).
    pub expired_holds: bool,
}

/// The counters a quota counts at `now`: those starting at or after this
/// second (`?5` is now, `?8`–`?10` the day, week and month starts).
const COUNTING_FROM: &str =
    "CASE q.period WHEN 'day' THEN ?8 WHEN 'week' THEN ?9 WHEN 'month' THEN ?10
     WHEN 'lifetime' THEN 0 ELSE ?5 - q.window_seconds - MAX(q.window_seconds / 60, 1) + 1 END";

/// Whose quotas apply, and to what: a member's (with its teams and the
/// org's) or a team's (with the teams above it and the org's) or the
/// org's alone; on a meter's units and on spend; for an item.
pub(crate) struct Applies<'a> {
    pub user: Option<&'a str>,
    pub team: Option<&'a str>,
    pub meter: Option<&'a str>,
    pub item_type: Option<&'a str>,
    pub item_id: Option<&'a str>,
    pub calendar: &'a Calendar,
}

/// Every quota that applies to a use of `amount` units costing `cost`,
/// where each stands at `now`.
pub(crate) async fn standings(
    tenant: &Tenant<'_>,
    applies: &Applies<'_>,
    amount: i64,
    cost: Option<&Cost>,
    now: i64,
) -> Result<Vec<Counted>, Problem> {
    let cal = applies.calendar;
    let rows = tenant
        .query(
            &STANDINGS_SQL,
            vec![
                text_or_null(applies.user),
                text_or_null(applies.meter),
                text_or_null(cost.map(|c| c.currency.as_str())),
                db::int(now),
                text_or_null(applies.item_type),
                text_or_null(applies.item_id),
                db::int(cal.start(Unit::Day, now)),
                db::int(cal.start(Unit::Week, now)),
                db::int(cal.start(Unit::Month, now)),
                text_or_null(applies.team),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| counted(row, cal, amount, cost, now))
        .collect())
}

/// Every quota that applies (see [`standings`]): `?2` the member, `?11`
/// the team, `?3` the meter, `?4` the currency of spend quotas, `?5` now,
/// `?6`/`?7` the item, `?8`–`?10` the period starts. Built once an
/// instance.
static STANDINGS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE up(team_id) AS (
             SELECT team_id FROM team_members WHERE org_id = ?1 AND user_id = ?2
             UNION
             SELECT team_id FROM teams WHERE org_id = ?1 AND team_id = ?11
             UNION
             SELECT t.parent_team_id FROM teams t JOIN up ON t.team_id = up.team_id
             WHERE t.org_id = ?1 AND t.parent_team_id IS NOT NULL)
         SELECT {QUOTA_COLUMNS_Q}, {standing}
         FROM quotas q
         WHERE q.org_id = ?1 AND (q.meter_key = ?3 OR q.currency = ?4)
           AND (q.item_type IS NULL OR (q.item_type = ?6 AND (q.item_id IS NULL OR q.item_id = ?7)))
           AND (q.entity_type = 'org' OR (q.entity_type = 'user' AND q.entity_id = ?2)
                OR (q.entity_type = 'team' AND q.entity_id IN (SELECT team_id FROM up)))
         ORDER BY q.quota_id",
        standing = STANDING_SQL.replace("COUNTING_FROM", COUNTING_FROM),
    )
});

fn counted(row: &RowResult, cal: &Calendar, amount: i64, cost: Option<&Cost>, now: i64) -> Counted {
    let quota = quota_of(row);
    let s = STANDING_COLUMN;
    let override_limit = db::get_int(row, s);
    let used = db::get_int(row, s + 1).unwrap_or(0);
    let oldest = db::get_int(row, s + 2);
    let held = db::get_int(row, s + 3).unwrap_or(0);
    let expired_holds = db::get_int(row, s + 4).unwrap_or(0) != 0;
    let need = match &quota.measure {
        Measure::Meter(_) => amount,
        Measure::Spend(_) => cost.map_or(0, |c| c.amount),
    };
    let standing = Standing {
        id: quota.id.clone(),
        entity: quota.entity.clone(),
        measure: quota.measure.clone(),
        limit: override_limit.unwrap_or(quota.limit),
        used: used.saturating_add(held),
        need,
        hard: quota.enforcement == Enforcement::Hard,
        reset_at: quota.period.reset_at(cal, now, oldest),
    };
    Counted {
        start: quota.period.counter_start(cal, now),
        quota,
        standing,
        expired_holds,
    }
}

/// The most a counter holds: 100 times the largest limit, far enough
/// that a counter at it is past any limit, and small enough that a
/// rolling window's buckets never overflow their sum.
pub(crate) const COUNTER_CEILING: i64 = 100 * crate::model::MAX_UNITS;

/// Raises each quota's counter by what the use adds to it (in the period
/// holding `at`, the use's time), fires the alert thresholds that
/// crossed, and for rolling quotas drops buckets that no longer count at
/// `now`. Inside the caller's transaction.
pub(crate) async fn count(
    tenant: &Tenant<'_>,
    conn: &spin_sdk::sqlite::Connection,
    counted: &[Counted],
    (at, now): (i64, i64),
) -> Result<(), Problem> {
    for c in counted.iter().filter(|c| c.standing.need > 0) {
        tenant
            .run(
                "INSERT INTO quota_counters (org_id, quota_id, period_start, used) VALUES (?1, ?2, ?3, MIN(?4, ?5))
                 ON CONFLICT (quota_id, period_start) DO UPDATE
                 SET used = CASE WHEN used > ?5 - excluded.used THEN ?5 ELSE used + excluded.used END",
                vec![
                    db::text(&c.quota.id),
                    db::int(c.start),
                    db::int(c.standing.need),
                    db::int(COUNTER_CEILING),
                ],
            )
            .await?;
        if let Period::Rolling { window } = c.quota.period {
            tenant
                .run(
                    "DELETE FROM quota_counters WHERE org_id = ?1 AND quota_id = ?2 AND period_start < ?3",
                    vec![
                        db::text(&c.quota.id),
                        db::int(now - window - Period::bucket(window) + 1),
                    ],
                )
                .await?;
        }
        fire_crossed(tenant, conn, c, (at, now)).await?;
    }
    Ok(())
}

/// Fires the quota's thresholds that this use crossed.
async fn fire_crossed(
    tenant: &Tenant<'_>,
    conn: &spin_sdk::sqlite::Connection,
    c: &Counted,
    (at, now): (i64, i64),
) -> Result<(), Problem> {
    let Ok(thresholds) = alerts::parse_thresholds(&c.quota.thresholds) else {
        return Ok(());
    };
    let before = c.standing.used;
    let after = before.saturating_add(c.standing.need);
    let crossed = alerts::crossed(&thresholds, c.standing.limit, before, after);
    if crossed.is_empty() {
        return Ok(());
    }
    let measure = match &c.quota.measure {
        Measure::Meter(key) | Measure::Spend(key) => key.as_str(),
    };
    // A rolling quota's counters are buckets of a sixtieth of its window:
    // its alerts fire at most once per window-long stretch instead.
    let period_start = match c.quota.period {
        Period::Rolling { window } => at - at.rem_euclid(window),
        _ => c.start,
    };
    let crossing = alerts::Crossing {
        quota_id: &c.quota.id,
        entity: &c.quota.entity,
        measure,
        limit: c.standing.limit,
        used: after,
        period_start,
        reset_at: c.standing.reset_at,
        enforcement: c.quota.enforcement,
    };
    alerts::fire(tenant, conn, &crossing, &crossed, now).await
}

/// Records what an allowed use spent, for the member it counts for, and
/// flags the org's day if its spend has become unusual.
pub(crate) async fn spend(
    tenant: &Tenant<'_>,
    conn: &spin_sdk::sqlite::Connection,
    target: &Target,
    units: i64,
    cost: &Cost,
    (source, actor): (&'static str, &str),
    now: i64,
) -> Result<(), Problem> {
    expenditure::record(
        tenant,
        &expenditure::Spend {
            entity: target.user.clone(),
            amount: crate::money::Amount::from_nanos(cost.amount),
            currency: &cost.currency,
            item_type: target.item_type.as_deref(),
            item_id: target.item_id.as_deref(),
            meter_key: Some(&target.meter.key),
            units: Some(units),
            source,
            occurred_at: now,
            created_by: actor,
        },
    )
    .await?;
    alerts::check_unusual_spend(tenant, conn, &cost.currency, now, &target.calendar).await
}

/// Counts spend recorded directly (not through a consume) against the
/// spend quotas of its entity, in the periods of its time, without
/// refusing: it was spent already. A refund or credit (a negative
/// amount) lowers no counter. Inside the caller's transaction.
pub(crate) async fn count_recorded(
    tenant: &Tenant<'_>,
    conn: &spin_sdk::sqlite::Connection,
    spent: &crate::expenditure::Spend<'_>,
    calendar: &Calendar,
) -> Result<(), Problem> {
    if spent.amount.nanos() <= 0 {
        return Ok(());
    }
    let id = spent.entity.id.as_str();
    let applies = Applies {
        user: (spent.entity.kind == Kind::User).then_some(id),
        team: (spent.entity.kind == Kind::Team).then_some(id),
        meter: None,
        item_type: spent.item_type,
        item_id: spent.item_id,
        calendar,
    };
    let cost = Cost {
        currency: spent.currency.to_string(),
        amount: spent.amount.nanos(),
    };
    let counted = standings(tenant, &applies, 0, Some(&cost), spent.occurred_at).await?;
    count(tenant, conn, &counted, (spent.occurred_at, unix_now())).await
}

/// `POST /v1/quotas/check`: the decision, nothing counted.
pub async fn check(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::holding(&req, caller::CONSUME).await?;
    let tenant = caller.tenant()?;
    let body: Use = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let now = unix_now();
    // An unpriced meter's standing is one statement's read: one snapshot.
    let read = resolve(&tenant, &body, now, Costing::Skip).await?;
    if read.target.meter.price.is_none() {
        let quotas: Vec<Standing> = read.counted.into_iter().map(|c| c.standing).collect();
        return Ok(response::json(200, &decide(&quotas), request_id));
    }
    // A priced one's cost is read apart: one read transaction (one
    // snapshot for every read), rolled back. A check writes nothing, so it
    // waits for no writer.
    store::begin_read(&caller.conn).await?;
    let outcome = resolve(&tenant, &body, now, Costing::Read).await;
    let ended = store::end(&caller.conn, false).await;
    let quotas: Vec<Standing> = outcome?.counted.into_iter().map(|c| c.standing).collect();
    ended?;
    Ok(response::json(200, &decide(&quotas), request_id))
}

/// `POST /v1/quotas/consume`: check and count at once. With an
/// `Idempotency-Key`, a retry answers what the first call answered and
/// counts nothing more.
pub async fn consume(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = caller::holding(&req, caller::CONSUME).await?;
    let scope = caller.idempotency_scope();
    let caller = &caller;
    create_once(
        &caller.conn,
        &scope,
        req,
        request_id,
        |body: Use| async move {
            let decided = crate::decided::consume(&caller.tenant()?, &body).await?;
            let decision = match decided {
                Some(decision) => decision,
                None => consume_in_transaction(caller, &body).await?,
            };
            Ok(response::json(200, &decision, request_id))
        },
    )
    .await
}

/// A count meter counts one event per use (a consume or a reservation).
pub(crate) fn check_amount(meter: &Meter, amount: i64) -> Result<(), Problem> {
    if meter.aggregation == Aggregation::Count && amount != 1 {
        return Err(invalid(
            "/amount",
            "count_meter_amount",
            "a count meter counts one event per use: amount must be 1",
        ));
    }
    Ok(())
}

async fn consume_in_transaction(caller: &OrgCaller, body: &Use) -> Result<Decision, Problem> {
    let tenant = caller.tenant()?;
    let actor = caller::actor_id(caller);
    store::begin(&caller.conn).await?;
    let outcome = consume_now(&tenant, &caller.conn, body, &actor).await;
    let keep = matches!(&outcome, Ok(decision) if decision.allowed);
    let ended = store::end(&caller.conn, keep).await;
    let decision = outcome?;
    ended?;
    Ok(decision)
}

async fn consume_now(
    tenant: &Tenant<'_>,
    conn: &spin_sdk::sqlite::Connection,
    body: &Use,
    actor: &str,
) -> Result<Decision, Problem> {
    let now = unix_now();
    let Resolved {
        target,
        cost,
        counted,
        ..
    } = resolve(tenant, body, now, Costing::Take).await?;
    check_amount(&target.meter, body.amount)?;
    let quotas: Vec<Standing> = counted.iter().map(|c| c.standing.clone()).collect();
    let decision = decide(&quotas);
    if counted.iter().any(|c| c.expired_holds) {
        holds::expire(tenant, &target.meter.key, now).await?;
    }
    if !decision.allowed {
        return Ok(decision);
    }
    count(tenant, conn, &counted, (now, now)).await?;
    let data = recorded_data(
        &target.meter,
        body.amount,
        target.item_type.as_deref(),
        target.item_id.as_deref(),
    );
    events::record(tenant, &target.meter.event_type, &target.user, &data, now).await?;
    if let Some(cost) = &cost {
        spend(
            tenant,
            conn,
            &target,
            body.amount,
            cost,
            ("consume", actor),
            now,
        )
        .await?;
    }
    Ok(decision)
}
