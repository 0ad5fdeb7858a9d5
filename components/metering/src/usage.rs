//! `GET /v1/usage`: a meter's usage in UTC windows, computed from the
//! stored events with the meter's aggregation.
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
use crate::meters::no_meter;
use crate::model::{Aggregation, Meter};
use crate::period::format_rfc3339;
use crate::store;
use crate::subject::{Kind, Subject};
use crate::usage_query::{Invalid, Span, UsageQuery, bad, json_path};

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

/// The window's first second, as SQL over `occurred_at`.
fn window_key(query: &UsageQuery) -> &'static str {
    use crate::usage_query::Window;
    match query.window {
        Window::Hour => "occurred_at - (occurred_at % 3600 + 3600) % 3600",
        Window::Day => "occurred_at - (occurred_at % 86400 + 86400) % 86400",
        Window::Month => {
            "CAST(strftime('%s', occurred_at, 'unixepoch', 'start of month') AS INTEGER)"
        }
    }
}

/// The statement that folds the events, and its parameters after the org:
/// ?2 event type, ?3 from, ?4 to, ?5 value path, ?6 group path,
/// ?7 and ?8 the subject's kind and id.
fn statement(query: &UsageQuery, meter: &Meter) -> (String, Vec<Value>) {
    let value_path = meter.value_path.as_deref().map(json_path);
    let (value, only) = match meter.aggregation {
        Aggregation::Count => ("COUNT(*)", ""),
        Aggregation::Sum => (
            "SUM(json_extract(data, ?5))",
            " AND json_type(data, ?5) IN ('integer', 'real')",
        ),
        Aggregation::Max => (
            "MAX(json_extract(data, ?5))",
            " AND json_type(data, ?5) IN ('integer', 'real')",
        ),
        Aggregation::UniqueCount => (
            "COUNT(DISTINCT json_extract(data, ?5))",
            " AND json_type(data, ?5) <> 'null'",
        ),
        // With one MAX(), SQLite takes the other columns from the row that
        // has the maximum: the newest event's value.
        Aggregation::Latest => (
            "json_extract(data, ?5), MAX(occurred_at)",
            " AND json_type(data, ?5) <> 'null'",
        ),
    };
    let group = if query.group_by.is_some() {
        "json_extract(data, ?6)"
    } else {
        "NULL"
    };
    let whose = if query.subject.is_some() {
        " AND subject_type = ?7 AND subject_id = ?8"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {key} AS bucket, {group} AS grp, {value} FROM usage_events
         WHERE org_id = ?1 AND event_type = ?2 AND occurred_at >= ?3 AND occurred_at < ?4{only}{whose}
         GROUP BY bucket, grp ORDER BY bucket, grp",
        key = window_key(query),
    );
    let (kind, id) = query
        .subject
        .as_ref()
        .map_or(("", ""), |s| (s.kind.as_str(), s.id.as_str()));
    let mut params = vec![
        db::text(&meter.event_type),
        db::int(query.from),
        db::int(query.to),
        db::opt_text(value_path),
        db::opt_text(query.group_by.as_deref().map(json_path)),
        db::text(kind),
        db::text(id),
    ];
    // A statement takes as many parameters as its highest number: bind no
    // more than that (the org, ?1, is bound apart).
    let highest = if query.subject.is_some() {
        8
    } else if query.group_by.is_some() {
        6
    } else if meter.aggregation != Aggregation::Count {
        5
    } else {
        4
    };
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
    let spans = query.spans().map_err(Invalid::problem)?;
    let (sql, params) = statement(&query, &meter);
    let rows = tenant.query(&sql, params).await?;
    let at: HashMap<i64, &Span> = spans.iter().map(|s| (s.key, s)).collect();
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
                    .remove(&span.key)
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
        from: format_rfc3339(query.from),
        to: format_rfc3339(query.to),
        group_by: query.group_by.clone(),
        buckets,
    };
    Ok(response::json(200, &answer, request_id))
}
