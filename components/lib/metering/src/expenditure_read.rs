//! `GET /v1/expenditure`: an entity's spend from `from` to `to` (default:
//! the current calendar month of the org's time zone), totals by currency
//! as exact decimal strings, optionally split by the record's entity, by
//! item and by calendar day, week or month of the org's time zone; and a
//! forecast of the current month (see [`forecast`](crate::forecast)) when
//! the range covers it, or when asked with `forecast=month`.
//!
//! `entity=team:<id>` counts the team's rollup rows: its own spend, its
//! members' and its sub-teams'; `entity=org` or none, every record of the
//! org. `group_by=entity` splits by whose record it is (a team's spend by
//! member, say).
//!
//! Who may read what: an admin of the org, or a holder of the
//! [`READ`](crate::caller::READ) permission, reads any entity of the org;
//! any other member reads only their own spend (`entity=user:<own id>`),
//! and is refused anything else with a 403 before any lookup, so the
//! answer says nothing about whether another member exists.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::principal::Subject as Caller;
use gatehouse_http::{ErrorCode, Problem, Response, response};
use serde::Serialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::Value;

use crate::caller;
use crate::expenditure;
use crate::expenditure_groups::{Group, Sum, assemble, nanos_of, shown};
use crate::expenditure_query::{Filter, Grouping, Invalid, MAX_GROUPS, Span, SpendQuery, spans};
use crate::expenditure_sql::{Param, Statement, spend_before, sums};
use crate::forecast::{MonthForecast, base_days, method, project};
use crate::period::{Calendar, Unit, format_rfc3339};
use crate::store;
use crate::subject::Kind;

#[derive(Serialize)]
struct Expenditure {
    entity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_id: Option<String>,
    from: String,
    to: String,
    time_zone: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    group_by: Vec<&'static str>,
    totals: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<Group>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    forecast: Option<MonthForecast>,
}

/// 403 unless the caller may read the query's entity.
fn may_read(caller: &OrgCaller, query: &SpendQuery) -> Result<(), Problem> {
    let principal = &caller.principal;
    if principal.is_org_admin() || principal.has_permission(caller::READ) {
        return Ok(());
    }
    let entity = &query.filter.entity;
    let own = matches!(&principal.subject, Caller::User { id }
        if query.named && entity.kind == Kind::User && &entity.id == id);
    if own {
        Ok(())
    } else {
        Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "a member reads their own spend only (entity=user:<your id>); anything else needs an admin or the {} permission",
            caller::READ
        )))
    }
}

/// Runs a statement of [`expenditure_sql`](crate::expenditure_sql).
async fn run(
    tenant: &Tenant<'_>,
    st: Statement,
) -> Result<Vec<spin_sdk::sqlite::RowResult>, Problem> {
    let params = st
        .params
        .into_iter()
        .map(|p| match p {
            Param::Int(n) => Value::Integer(n),
            Param::Text(t) => Value::Text(t),
        })
        .collect();
    tenant.query(&st.sql, params).await
}

/// The rows of a [`sums`] statement.
async fn sum_rows(
    tenant: &Tenant<'_>,
    st: Statement,
    grouping: Grouping,
) -> Result<Vec<Sum>, Problem> {
    let rows = run(tenant, st).await?;
    Ok(rows
        .iter()
        .map(|row| Sum {
            entity: grouping
                .entity
                .then(|| format!("{}:{}", db::get_text(row, 0), db::get_text(row, 1))),
            item_type: db::get_opt_text(row, 2),
            item_id: db::get_opt_text(row, 3),
            currency: db::get_text(row, 5),
            nanos: nanos_of(
                db::get_int(row, 6).unwrap_or_default(),
                db::get_int(row, 7).unwrap_or_default(),
            ),
            first: db::get_int(row, 8).unwrap_or_default(),
        })
        .collect())
}

/// The forecast of the month holding `now`, for `filter`, by currency.
async fn forecast(
    tenant: &Tenant<'_>,
    filter: &Filter,
    most_days: u32,
    cal: &Calendar,
    now: i64,
) -> Result<MonthForecast, Problem> {
    let (month_start, month_end) = cal.window(Unit::Month, now);
    let today = cal.start(Unit::Day, now);
    let none = Grouping::default();
    let month = sum_rows(
        tenant,
        sums(filter, month_start, month_end, none, cal.name()),
        none,
    )
    .await?;
    // The days the forecast may average; a currency whose spend began
    // later averages fewer.
    let floor = base_days(cal, today, month_start, most_days)
        .first()
        .map_or(today, |d| d.start);
    let by_day = Grouping {
        time: Some(Unit::Day),
        ..none
    };
    let daily = if floor < today {
        sum_rows(
            tenant,
            sums(filter, floor, today, by_day, cal.name()),
            by_day,
        )
        .await?
    } else {
        Vec::new()
    };
    let mut currencies = std::collections::BTreeMap::new();
    for so_far in &month {
        let currency = &so_far.currency;
        let mine: Vec<&Sum> = daily.iter().filter(|d| &d.currency == currency).collect();
        let older = !run(tenant, spend_before(filter, currency, floor))
            .await?
            .is_empty();
        let began = if older {
            floor
        } else {
            mine.iter()
                .map(|d| cal.start(Unit::Day, d.first))
                .min()
                .unwrap_or(today)
        };
        let days = base_days(cal, today, began.max(month_start), most_days);
        let spend: Vec<i128> = days
            .iter()
            .map(|day| {
                mine.iter()
                    .filter(|d| (day.start..day.end).contains(&d.first))
                    .map(|d| d.nanos)
                    .sum()
            })
            .collect();
        let projection = project(so_far.nanos, &spend, month_end - now);
        currencies.insert(currency.clone(), projection.into());
    }
    Ok(MonthForecast {
        month_start: format_rfc3339(month_start),
        month_end: format_rfc3339(month_end),
        method: method(most_days),
        currencies,
    })
}

/// `GET /v1/expenditure`.
pub async fn read(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    let pairs = form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()));
    let query = SpendQuery::from_pairs(pairs, tenant.org_id()).map_err(Invalid::problem)?;
    may_read(&caller, &query)?;
    let entity = &query.filter.entity;
    if query.named && !store::belongs(&tenant, entity).await? {
        return Err(Invalid::new(
            "entity",
            "unknown_entity",
            "the entity is not this organization or one of its teams or members",
        )
        .problem());
    }
    let cal = expenditure::calendar(&tenant).await?;
    let now = unix_now();
    let (from, to) = query.range(&cal, now).map_err(Invalid::problem)?;
    let buckets = match query.group_by.time {
        Some(unit) => spans(&cal, unit, from, to).map_err(Invalid::problem)?,
        None => vec![Span {
            start: from,
            end: to,
        }],
    };
    let statement = sums(&query.filter, from, to, query.group_by, cal.name());
    let rows = sum_rows(&tenant, statement, query.group_by).await?;
    if rows.len() > MAX_GROUPS {
        return Err(Invalid::new(
            "group_by",
            "too_many_groups",
            format!("the query has more than {MAX_GROUPS} groups: narrow it"),
        )
        .problem());
    }
    let (totals, groups) = assemble(&rows, query.group_by, &buckets);
    let forecast = if query.forecasts(&cal, now, from, to) {
        Some(forecast(&tenant, &query.filter, query.forecast_days, &cal, now).await?)
    } else {
        None
    };
    let answer = Expenditure {
        entity: format!("{}:{}", entity.kind.as_str(), entity.id),
        currency: query.filter.currency.clone(),
        item_type: query.filter.item_type.clone(),
        item_id: query.filter.item_id.clone(),
        from: format_rfc3339(from),
        to: format_rfc3339(to),
        time_zone: cal.name().to_string(),
        group_by: query.group_by.names(),
        totals: shown(&totals),
        groups: query.group_by.any().then_some(groups),
        forecast,
    };
    Ok(response::json(200, &answer, request_id))
}
