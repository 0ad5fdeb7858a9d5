//! `GET /v1/usage`: a meter's usage in windows, computed from the stored
//! events with the meter's aggregation. Hours are UTC's; days, weeks (from
//! Monday) and months start at the org's midnights, in its time zone, and
//! the answer names that zone.
//!
//! Who may read what: an admin of the org, or a holder of the
//! [`READ`](crate::caller::READ) permission, reads any subject of the org
//! (`org`, the default, is every event of the org whatever its subject); any
//! other member reads only their own `user:<id>` subject, and an API key
//! only its own `key:<id>`. Another org's meter is not found.
//!
//! Every window from `from` to `to` is a bucket, the first and last cut to
//! them. Without `group_by`, windows without events are listed too, with 0
//! (`count`, `sum`, `unique_count`) or null (`max`, `latest`); with it,
//! only the windows and groups that have events are, by window then group.

use std::collections::HashMap;

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_http::principal::Subject as Caller;
use gatehouse_http::{ErrorCode, Problem, Response, response};
use serde::Serialize;
use serde_json::Value as Json;
use spin_sdk::http::Request;
use spin_sdk::sqlite::Value;

use crate::caller;
use crate::expenditure::calendar;
use crate::meters::no_meter;
use crate::model::{Aggregation, Meter};
use crate::period::format_rfc3339;
use crate::store;
use crate::subject::{Kind, Subject};
use crate::usage_query::{Invalid, Span, UsageQuery, bad, json_path, spans_json};

#[derive(Serialize)]
struct Bucket {
    start: String,
    end: String,
    value: Json,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<Json>,
}

#[derive(Serialize)]
struct Usage {
    meter: String,
    aggregation: Aggregation,
    subject: String,
    window: &'static str,
    time_zone: String,
    from: String,
    to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_by: Option<String>,
    buckets: Vec<Bucket>,
}

/// 403 unless the caller may read `subject` (none: the whole org).
fn may_read(caller: &OrgCaller, subject: Option<&Subject>) -> Result<(), Problem> {
    let principal = &caller.principal;
    if principal.is_org_admin() || principal.has_permission(caller::READ) {
        return Ok(());
    }
    let own = match (&principal.subject, subject) {
        (Caller::User { id }, Some(s)) => s.kind == Kind::User && &s.id == id,
        (Caller::ApiKey { id, .. }, Some(s)) => s.kind == Kind::Key && &s.id == id,
        _ => false,
    };
    if own {
        Ok(())
    } else {
        Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "a member reads their own usage only; the org's needs an admin or the {} permission",
            caller::READ
        )))
    }
}

/// The SQL value of a bucket as JSON.
fn json_of(value: Option<&Value>) -> Json {
    match value {
        Some(Value::Integer(n)) => Json::from(*n),
        Some(Value::Real(x)) => serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number),
        // A text value is a JSON string, or JSON text for objects and arrays.
        Some(Value::Text(t)) => Json::from(t.clone()),
        _ => Json::Null,
    }
}

/// The statement for `query` over `meter`'s events into `spans`, with
/// its parameters after the org.
fn statement(query: &UsageQuery, meter: &Meter, spans: &[Span]) -> (String, Vec<Value>) {
    let (sql, highest) = query.statement(meter.aggregation);
    let (kind, id) = query
        .subject
        .as_ref()
        .map_or(("", ""), |s| (s.kind.as_str(), s.id.as_str()));
    let mut params = vec![
        db::text(&meter.event_type),
        db::text(spans_json(spans)),
        db::opt_text(meter.value_path.as_deref().map(json_path)),
        db::opt_text(query.group_by.as_deref().map(json_path)),
        db::text(kind),
        db::text(id),
    ];
    // Bind no more than the statement numbers (the org, ?1, is bound apart).
    params.truncate(highest - 1);
    (sql, params)
}

/// The value of a window without events.
fn empty(aggregation: Aggregation) -> Json {
    match aggregation {
        Aggregation::Count | Aggregation::Sum | Aggregation::UniqueCount => Json::from(0),
        Aggregation::Max | Aggregation::Latest => Json::Null,
    }
}

/// `GET /v1/usage`.
pub async fn usage(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    let pairs = form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()));
    let query = UsageQuery::from_pairs(pairs, tenant.org_id()).map_err(Invalid::problem)?;
    may_read(&caller, query.subject.as_ref())?;
    let meter = store::meter(&tenant, &query.meter)
        .await?
        .ok_or_else(no_meter)?;
    if let Some(path) = &query.group_by
        && !meter.group_by.contains(path)
    {
        return Err(bad(
            "group_by",
            "unknown_group_by",
            "group_by must be one of the meter's group_by paths",
        ));
    }
    if let Some(subject) = &query.subject
        && !store::belongs(&tenant, subject).await?
    {
        return Err(bad(
            "subject",
            "unknown_subject",
            "the subject is not this organization or one of its teams, members or keys",
        ));
    }
    let calendar = calendar(&tenant).await?;
    let spans = query.spans(&calendar).map_err(Invalid::problem)?;
    let (sql, params) = statement(&query, &meter, &spans);
    let rows = tenant.query(&sql, params).await?;
    let at: HashMap<i64, &Span> = spans.iter().map(|s| (s.start, s)).collect();
    let bucket = |span: &Span, value, group| Bucket {
        start: format_rfc3339(span.start),
        end: format_rfc3339(span.end),
        value,
        group,
    };
    let buckets = if query.group_by.is_some() {
        rows.iter()
            .filter_map(|row| {
                let span = at.get(&db::get_int(row, 0)?)?;
                let group = json_of(row.values.get(1));
                Some(bucket(span, json_of(row.values.get(2)), Some(group)))
            })
            .collect()
    } else {
        let mut values: HashMap<i64, Json> = rows
            .iter()
            .filter_map(|row| Some((db::get_int(row, 0)?, json_of(row.values.get(2)))))
            .collect();
        spans
            .iter()
            .map(|span| {
                let value = values
                    .remove(&span.start)
                    .unwrap_or_else(|| empty(meter.aggregation));
                bucket(span, value, None)
            })
            .collect()
    };
    let subject = query.subject.as_ref().map_or_else(
        || format!("org:{}", tenant.org_id()),
        |s| format!("{}:{}", s.kind.as_str(), s.id),
    );
    let answer = Usage {
        meter: meter.key.clone(),
        aggregation: meter.aggregation,
        subject,
        window: query.window.as_str(),
        time_zone: calendar.name().to_string(),
        from: format_rfc3339(query.from),
        to: format_rfc3339(query.to),
        group_by: query.group_by.clone(),
        buckets,
    };
    Ok(response::json(200, &answer, request_id))
}
