//! `GET /v1/metering/stats?entity=&from=&to=&window=`: an entity's usage,
//! spend and quotas for dashboards.
//!
//! - Buckets are days, weeks (from Monday) or months of the org's time
//!   zone from `from` to `to`, the first and last cut to them.
//! - Usage: for every additive meter of the org (count and sum), the
//!   events of its type in each bucket: counted, or their values at the
//!   meter's path summed (an event without a number there adds nothing).
//!   Whose events: for the org, every event; for a member, the events sent
//!   for exactly `user:<id>`; for a team, those sent for the team or any
//!   team below it, or for a member of any of them.
//! - Spend: per currency, the entity's rows of the expenditure rollup.
//! - Quotas: each quota of the entity where it stands now: its limit (an
//!   override's while one runs), what its current period (or rolling
//!   window) counted, what open reservations hold, what is left, the
//!   percent used and when the count resets.
//!
//! Admins of the org read any entity of it; any other member reads only
//! their own `user:<id>`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::principal::Subject as Caller;
use gatehouse_http::{ErrorCode, Problem, Response, response};
use serde::Serialize;
use serde_json::{Value as Json, json};
use spin_sdk::http::Request;
use spin_sdk::sqlite::Value;

use crate::model::{Measure, show_amount};
use crate::period::{Calendar, format_rfc3339};
use crate::quotas::{QUOTA_COLUMNS_Q, quota_of};
use crate::stats_query::{StatsQuery, percent, remaining, spans_table};
use crate::store;
use crate::subject::{Kind, Subject};
use crate::usage_query::Invalid;
use crate::usage_query::{Span, bad};

#[derive(Serialize)]
struct Bucket {
    start: String,
    end: String,
    usage: BTreeMap<String, Json>,
    spend: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Stats {
    entity: String,
    window: &'static str,
    time_zone: String,
    from: String,
    to: String,
    buckets: Vec<Bucket>,
    quotas: Vec<Json>,
}

/// 403 unless the caller may read `entity`'s stats: an admin or a holder
/// of [`READ`](crate::caller::READ) reads any entity's (as usage and
/// spend), a member its own.
fn may_read(caller: &OrgCaller, entity: &Subject) -> Result<(), Problem> {
    if caller.principal.is_org_admin() || caller.principal.has_permission(crate::caller::READ) {
        return Ok(());
    }
    match &caller.principal.subject {
        Caller::User { id } if entity.kind == Kind::User && &entity.id == id => Ok(()),
        _ => Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "a member reads their own stats only (user:<id>); others need an admin or {}",
            crate::caller::READ
        ))),
    }
}

/// A number SQLite summed: an integer, or a real for sums of fractions.
fn number(value: Option<&Value>) -> Json {
    match value {
        Some(Value::Integer(n)) => Json::from(*n),
        Some(Value::Real(x)) => serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number),
        _ => Json::from(0),
    }
}

/// The org's time zone.
async fn calendar(tenant: &Tenant<'_>) -> Result<Calendar, Problem> {
    let rows = tenant
        .query("SELECT time_zone FROM orgs WHERE org_id = ?1", vec![])
        .await?;
    Ok(rows
        .first()
        .and_then(|r| db::get_opt_text(r, 0))
        .and_then(|zone| Calendar::of(&zone))
        .unwrap_or_else(Calendar::utc))
}

/// The team and every team below it (`down`), as a common table; `?4`
/// is the team.
const TEAMS_BELOW: &str = "down(team_id) AS (
        SELECT team_id FROM teams WHERE org_id = ?1 AND team_id = ?4
        UNION
        SELECT t.team_id FROM teams t JOIN down ON t.parent_team_id = down.team_id
        WHERE t.org_id = ?1)";

/// The events of `entity`, as a condition on `e` (`?4` is the entity's id).
fn whose(entity: &Subject) -> &'static str {
    match entity.kind {
        Kind::Org | Kind::Key => "",
        Kind::User => " AND e.subject_type = 'user' AND e.subject_id = ?4",
        Kind::Team => {
            " AND ((e.subject_type = 'team' AND e.subject_id IN (SELECT team_id FROM down))
                   OR (e.subject_type = 'user' AND e.subject_id IN (
                       SELECT tm.user_id FROM team_members tm
                       WHERE tm.org_id = ?1 AND tm.team_id IN (SELECT team_id FROM down))))"
        }
    }
}

/// Each additive meter's total per bucket: `(bucket key, meter, total)`.
async fn usage(
    tenant: &Tenant<'_>,
    entity: &Subject,
    windows: &[(i64, i64)],
    (from, to): (i64, i64),
) -> Result<Vec<(i64, String, Json)>, Problem> {
    let teams = if entity.kind == Kind::Team {
        format!("{TEAMS_BELOW}, ")
    } else {
        String::new()
    };
    // A sum meter's value path (`usage.tokens`) as a JSON path with each
    // name quoted (`$."usage"."tokens"`), as `GET /v1/usage` reads it.
    let path = "'$.\"' || replace(m.value_path, '.', '\".\"') || '\"'";
    let sql = format!(
        "WITH RECURSIVE {teams}{spans}
         SELECT s.start, m.meter_key,
                SUM(CASE WHEN m.aggregation = 'count' THEN 1
                         WHEN json_type(e.data, {path}) IN ('integer', 'real') THEN json_extract(e.data, {path})
                         ELSE 0 END)
         FROM spans s
         JOIN usage_events e ON e.occurred_at >= s.start AND e.occurred_at < s.stop
         JOIN meters m ON m.org_id = e.org_id AND m.event_type = e.event_type
         WHERE e.org_id = ?1 AND m.aggregation IN ('count', 'sum')
           AND e.occurred_at >= ?2 AND e.occurred_at < ?3{whose}
         GROUP BY s.start, m.meter_key",
        spans = spans_table(windows),
        whose = whose(entity),
    );
    // A statement binds as many parameters as its highest number.
    let mut params = vec![db::int(from), db::int(to)];
    if matches!(entity.kind, Kind::User | Kind::Team) {
        params.push(db::text(&entity.id));
    }
    let rows = tenant.query(&sql, params).await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                db::get_int(r, 0)?,
                db::get_text(r, 1),
                number(r.values.get(2)),
            ))
        })
        .collect())
}

/// The entity's spend per bucket and currency: `(bucket key, currency,
/// billionths)`.
async fn spend(
    tenant: &Tenant<'_>,
    entity: &Subject,
    windows: &[(i64, i64)],
    (from, to): (i64, i64),
) -> Result<Vec<(i64, String, i64)>, Problem> {
    let sql = format!(
        "WITH {} SELECT s.start, r.currency, SUM(r.amount / 1000000000), SUM(r.amount % 1000000000) FROM spans s
         JOIN expenditure_rollup r ON r.occurred_at >= s.start AND r.occurred_at < s.stop
         WHERE r.org_id = ?1 AND r.entity_type = ?2 AND r.entity_id = ?3
           AND r.occurred_at >= ?4 AND r.occurred_at < ?5
         GROUP BY s.start, r.currency",
        spans_table(windows)
    );
    let rows = tenant
        .query(
            &sql,
            vec![
                db::text(entity.kind.as_str()),
                db::text(&entity.id),
                db::int(from),
                db::int(to),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            // Units and billionths summed apart, so no sum overflows.
            let sum =
                i128::from(db::get_int(r, 2)?) * 1_000_000_000 + i128::from(db::get_int(r, 3)?);
            let sum = i64::try_from(sum).unwrap_or(if sum < 0 { i64::MIN } else { i64::MAX });
            Some((db::get_int(r, 0)?, db::get_text(r, 1), sum))
        })
        .collect())
}

/// The org's additive meters, by key.
async fn additive_meters(tenant: &Tenant<'_>) -> Result<Vec<String>, Problem> {
    let rows = tenant
        .query(
            "SELECT meter_key FROM meters WHERE org_id = ?1 AND aggregation IN ('count', 'sum')
             ORDER BY meter_key",
            vec![],
        )
        .await?;
    Ok(rows.iter().map(|r| db::get_text(r, 0)).collect())
}

/// Each quota of the entity where it stands at `now`.
async fn quotas(
    tenant: &Tenant<'_>,
    entity: &Subject,
    calendar: &Calendar,
    now: i64,
) -> Result<Vec<Json>, Problem> {
    let rows = tenant
        .query(
            &format!(
                "SELECT {QUOTA_COLUMNS_Q},
                    (SELECT v.limit_units FROM quota_overrides v
                     WHERE v.org_id = ?1 AND v.quota_id = q.quota_id AND v.expires_at > ?4
                     ORDER BY v.created_at DESC, v.override_id DESC LIMIT 1)
                 FROM quotas q WHERE q.org_id = ?1 AND q.entity_type = ?2 AND q.entity_id = ?3
                 ORDER BY q.quota_id"
            ),
            vec![
                db::text(entity.kind.as_str()),
                db::text(&entity.id),
                db::int(now),
            ],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let quota = quota_of(row);
        let limit = db::get_int(row, row.values.len() - 1).unwrap_or(quota.limit);
        let counting_from = quota.period.counting_from(calendar, now);
        let counted = tenant
            .query(
                "SELECT
                    (SELECT COALESCE(SUM(c.used), 0) FROM quota_counters c
                     WHERE c.org_id = ?1 AND c.quota_id = ?2 AND c.period_start >= ?3 AND c.period_start <= ?4),
                    (SELECT MIN(c.period_start) FROM quota_counters c
                     WHERE c.org_id = ?1 AND c.quota_id = ?2 AND c.used > 0
                       AND c.period_start >= ?3 AND c.period_start <= ?4),
                    (SELECT COALESCE(SUM(h.amount), 0) FROM quota_holds h
                     WHERE h.org_id = ?1 AND h.quota_id = ?2 AND h.expires_at > ?4 AND h.period_start >= ?3)",
                vec![db::text(&quota.id), db::int(counting_from), db::int(now)],
            )
            .await?;
        let row = counted.first();
        let used = row.and_then(|r| db::get_int(r, 0)).unwrap_or(0);
        let oldest = row.and_then(|r| db::get_int(r, 1));
        let held = row.and_then(|r| db::get_int(r, 2)).unwrap_or(0);
        let measure = &quota.measure;
        let (meter, currency) = match measure {
            Measure::Meter(key) => (Some(key), None),
            Measure::Spend(currency) => (None, Some(currency)),
        };
        out.push(json!({
            "id": quota.id,
            "meter": meter,
            "currency": currency,
            "item_type": quota.item_type,
            "item_id": quota.item_id,
            "period": quota.period.as_str(),
            "window_seconds": quota.period.window_seconds(),
            "enforcement": quota.enforcement,
            "limit": show_amount(measure, limit),
            "used": show_amount(measure, used),
            "held": show_amount(measure, held),
            "remaining": show_amount(measure, remaining(limit, used, held)),
            "percent": percent(used, limit),
            "period_start": quota.period.counter_start(calendar, now),
            "reset_at": quota.period.reset_at(calendar, now, oldest),
        }));
    }
    Ok(out)
}

fn buckets(
    spans: &[Span],
    meters: &[String],
    usage: Vec<(i64, String, Json)>,
    spend: Vec<(i64, String, i64)>,
) -> Vec<Bucket> {
    let currencies: BTreeSet<&String> = spend.iter().map(|(_, c, _)| c).collect();
    let mut used: HashMap<(i64, String), Json> = usage
        .into_iter()
        .map(|(key, meter, total)| ((key, meter), total))
        .collect();
    let spent: HashMap<(i64, &String), i64> = spend
        .iter()
        .map(|(key, c, amount)| ((*key, c), *amount))
        .collect();
    spans
        .iter()
        .map(|span| Bucket {
            start: format_rfc3339(span.start),
            end: format_rfc3339(span.end),
            usage: meters
                .iter()
                .map(|m| {
                    let total = used
                        .remove(&(span.start, m.clone()))
                        .unwrap_or(Json::from(0));
                    (m.clone(), total)
                })
                .collect(),
            spend: currencies
                .iter()
                .map(|&c| {
                    let nanos = spent.get(&(span.start, c)).copied().unwrap_or(0);
                    (
                        c.clone(),
                        crate::money::Amount::from_nanos(nanos).to_string(),
                    )
                })
                .collect(),
        })
        .collect()
}

/// `GET /v1/metering/stats`.
pub async fn stats(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    let pairs = form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()));
    let query = StatsQuery::from_pairs(pairs, tenant.org_id()).map_err(Invalid::problem)?;
    may_read(&caller, &query.entity)?;
    if !store::belongs(&tenant, &query.entity).await? {
        return Err(bad(
            "entity",
            "unknown_entity",
            "the entity is not this organization, one of its teams or one of its members",
        ));
    }
    let calendar = calendar(&tenant).await?;
    let spans = query.spans(&calendar).map_err(Invalid::problem)?;
    // Rows are summed per bucket as cut to `from` and `to`, and keyed by
    // the cut start.
    let windows: Vec<(i64, i64)> = spans.iter().map(|s| (s.start, s.end)).collect();
    let range = (query.from, query.to);
    let meters = additive_meters(&tenant).await?;
    let used = usage(&tenant, &query.entity, &windows, range).await?;
    let spent = spend(&tenant, &query.entity, &windows, range).await?;
    let quotas = quotas(&tenant, &query.entity, &calendar, unix_now()).await?;
    let answer = Stats {
        entity: format!("{}:{}", query.entity.kind.as_str(), query.entity.id),
        window: query.window.as_str(),
        time_zone: calendar.name().to_string(),
        from: format_rfc3339(query.from),
        to: format_rfc3339(query.to),
        buckets: buckets(&spans, &meters, used, spent),
        quotas,
    };
    Ok(response::json(200, &answer, request_id))
}
