//! The SQL that sums an org's spend from its rollup rows into groups,
//! currencies and calendar buckets of the org's time zone. SQLite knows no
//! time zones, so a bucket's key is computed from the local time: the unix
//! second plus the zone's offset, which this module finds at each of the
//! zone's transitions inside the query. Pure, so the statements are tested
//! natively (against the tenant guard too).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::expenditure_query::{Filter, Grouping, MAX_GROUPS};
use crate::money::NANOS_PER_UNIT;
use crate::period::Unit;

/// The zone's offset from UTC at `at`, in seconds.
fn offset_at(zone: &TimeZone, at: i64) -> i64 {
    let at = Timestamp::from_second(at).unwrap_or(Timestamp::UNIX_EPOCH);
    i64::from(zone.to_offset(at).seconds())
}

/// SQL for the local time (in the zone) of `column`, a unix second: the
/// column plus the zone's offset, which changes only at the zone's
/// transitions inside `from`..`to` (each a literal integer, computed here).
pub fn local_time(zone_name: &str, column: &str, from: i64, to: i64) -> String {
    let zone = TimeZone::get(zone_name).unwrap_or(TimeZone::UTC);
    let first = offset_at(&zone, from);
    let start = Timestamp::from_second(from).unwrap_or(Timestamp::UNIX_EPOCH);
    let changes: Vec<(i64, i64)> = zone
        .following(start)
        .map(|t| (t.timestamp().as_second(), i64::from(t.offset().seconds())))
        .take_while(|(at, _)| *at < to)
        .collect();
    if changes.is_empty() {
        return format!("({column} + {first})");
    }
    let mut sql = format!("({column} + CASE");
    let mut offset = first;
    for (at, next) in changes {
        sql.push_str(&format!(" WHEN {column} < {at} THEN {offset}"));
        offset = next;
    }
    sql.push_str(&format!(" ELSE {offset} END)"));
    sql
}

/// SQL for a key equal for every instant of one local `unit` (and only
/// for them), from SQL for a local time in unix seconds.
pub fn bucket_key(unit: Unit, local: &str) -> String {
    let midnight = format!("({local} - (({local} % 86400) + 86400) % 86400)");
    match unit {
        Unit::Day => midnight,
        // 1970-01-01 was a Thursday: day n is (n + 3) mod 7 days past Monday.
        Unit::Week => format!("({midnight} / 86400 - ((({midnight} / 86400 + 3) % 7) + 7) % 7)"),
        Unit::Month => format!("strftime('%Y-%m', {local}, 'unixepoch')"),
    }
}

/// A statement's parameter after the org (`?1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// An integer.
    Int(i64),
    /// A text.
    Text(String),
}

/// A statement and its parameters after the org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The SQL, bound to the org in `?1`.
    pub sql: String,
    /// `?2`, `?3`, ….
    pub params: Vec<Param>,
}

impl Statement {
    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("?{}", self.params.len() + 1)
    }
}

/// `filter`'s rollup rows (`u`) from `from` to `to`, as SQL conditions
/// bound to the org and to parameters pushed onto `st`.
fn conditions(st: &mut Statement, filter: &Filter, from: i64, to: i64) -> String {
    let entity_type = st.bind(Param::Text(filter.entity.kind.as_str().into()));
    let entity_id = st.bind(Param::Text(filter.entity.id.clone()));
    let from_param = st.bind(Param::Int(from));
    let to_param = st.bind(Param::Int(to));
    let mut conditions = format!(
        "u.org_id = ?1 AND u.entity_type = {entity_type} AND u.entity_id = {entity_id} \
         AND u.occurred_at >= {from_param} AND u.occurred_at < {to_param}"
    );
    let optional = [
        ("u.currency", &filter.currency),
        ("u.item_type", &filter.item_type),
        ("u.item_id", &filter.item_id),
    ];
    for (column, value) in optional {
        if let Some(value) = value {
            let p = st.bind(Param::Text(value.clone()));
            conditions.push_str(&format!(" AND {column} = {p}"));
        }
    }
    conditions
}

/// The statement that sums `filter`'s spend from `from` to `to` into the
/// groups of `grouping` and currencies. Sums are taken in whole units and
/// billionths apart, so no sum of `i64` billionths overflows SQLite's
/// integers; the caller adds them exactly.
pub fn sums(filter: &Filter, from: i64, to: i64, grouping: Grouping, zone: &str) -> Statement {
    let mut st = Statement {
        sql: String::new(),
        params: Vec::new(),
    };
    let mut conditions = conditions(&mut st, filter, from, to);
    let (join, entity) = if grouping.entity {
        (
            " JOIN expenditure_records e ON e.record_id = u.record_id",
            "e.entity_type, e.entity_id",
        )
    } else {
        ("", "NULL, NULL")
    };
    if grouping.entity {
        conditions.push_str(" AND e.org_id = ?1");
    }
    let item = if grouping.item {
        "u.item_type, u.item_id"
    } else {
        "NULL, NULL"
    };
    let bucket = grouping.time.map_or_else(
        || "NULL".to_string(),
        |unit| bucket_key(unit, &local_time(zone, "u.occurred_at", from, to)),
    );
    st.sql = format!(
        "SELECT {entity}, {item}, {bucket} AS bucket, u.currency,
                SUM(u.amount / {NANOS_PER_UNIT}), SUM(u.amount % {NANOS_PER_UNIT}), MIN(u.occurred_at)
         FROM expenditure_rollup u{join}
         WHERE {conditions}
         GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY MIN(u.occurred_at), 1, 2, 3, 4, 6
         LIMIT {}",
        MAX_GROUPS + 1
    );
    st
}

/// The statement that finds whether `filter` has spend in `currency`
/// before `before`: a row, or none.
pub fn spend_before(filter: &Filter, currency: &str, before: i64) -> Statement {
    let narrowed = Filter {
        currency: Some(currency.to_string()),
        ..filter.clone()
    };
    let mut st = Statement {
        sql: String::new(),
        params: Vec::new(),
    };
    let conditions = conditions(&mut st, &narrowed, i64::MIN, before);
    st.sql = format!("SELECT 1 FROM expenditure_rollup u WHERE {conditions} LIMIT 1");
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expenditure_query::tests::{at, query};
    use gatehouse_auth::tenant::is_scoped;

    #[test]
    fn local_time_changes_offset_at_the_zones_transitions() {
        assert_eq!(local_time("UTC", "t", 0, 1_000_000_000), "(t + 0)");
        let from = at("2026-01-01T00:00:00Z");
        let to = at("2027-01-01T00:00:00Z");
        let berlin = local_time("Europe/Berlin", "t", from, to);
        let spring = at("2026-03-29T01:00:00Z");
        let autumn = at("2026-10-25T01:00:00Z");
        assert_eq!(
            berlin,
            format!(
                "(t + CASE WHEN t < {spring} THEN 3600 WHEN t < {autumn} THEN 7200 ELSE 3600 END)"
            )
        );
    }

    #[test]
    fn the_sums_statement_is_bound_to_the_org_and_numbers_its_parameters() {
        let q = query(
            "entity=team:t1&currency=USD&item_type=model&item_id=m1&group_by=entity,item,day",
        )
        .unwrap();
        let st = sums(&q.filter, 0, 86_400, q.group_by, "Asia/Kolkata");
        assert!(is_scoped(&st.sql), "{}", st.sql);
        assert_eq!(st.params.len(), 7);
        assert!(st.sql.contains("?8") && !st.sql.contains("?9"));
        assert!(st.sql.contains("u.occurred_at + 19800"));
        let plain = sums(&query("").unwrap().filter, 0, 1, Grouping::default(), "UTC");
        assert!(is_scoped(&plain.sql) && !plain.sql.contains("JOIN"));
        assert_eq!(plain.params.len(), 4);
    }

    #[test]
    fn spend_before_a_time_is_one_indexed_row() {
        let filter = query("item_type=model").unwrap().filter;
        let st = spend_before(&filter, "USD", 100);
        assert!(is_scoped(&st.sql), "{}", st.sql);
        assert!(st.sql.ends_with("LIMIT 1"));
        assert_eq!(st.params.len(), 6);
    }
}
