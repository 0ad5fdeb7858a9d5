//! The groups of `GET /v1/expenditure`'s answer, from the rows its
//! statement sums: exact totals by currency per group and overall, and the
//! calendar bucket each row falls in. Pure, so the rules are tested
//! natively.

use std::collections::BTreeMap;

use crate::expenditure_query::{Grouping, Span};
use crate::money::{NANOS_PER_UNIT, format_nanos};
use crate::period::format_rfc3339;

/// One row of [`sums`](crate::expenditure_sql::sums).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sum {
    /// The record's entity (`user:usr_1`), if grouped by entity.
    pub entity: Option<String>,
    /// The item type, if grouped by item (and the records name one).
    pub item_type: Option<String>,
    /// The item id, likewise.
    pub item_id: Option<String>,
    /// The first second summed: it finds the row's bucket.
    pub first: i64,
    /// Its currency.
    pub currency: String,
    /// The sum in billionths.
    pub nanos: i128,
}

/// A sum's billionths from its whole units and its billionths apart.
pub fn nanos_of(whole: i64, rest: i64) -> i128 {
    i128::from(whole) * i128::from(NANOS_PER_UNIT) + i128::from(rest)
}

/// Totals by currency, each exact.
pub type Totals = BTreeMap<String, i128>;

/// Totals as decimal strings.
pub fn shown(totals: &Totals) -> BTreeMap<String, String> {
    totals
        .iter()
        .map(|(currency, nanos)| (currency.clone(), format_nanos(*nanos)))
        .collect()
}

/// One group of the answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    /// The record's entity, if grouped by entity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// The item type, if grouped by item: null for records of no item.
    #[serde(skip_serializing_if = "Skip::skip")]
    pub item_type: Skip<String>,
    /// The item id, likewise.
    #[serde(skip_serializing_if = "Skip::skip")]
    pub item_id: Skip<String>,
    /// The bucket's first second (cut to `from`), if grouped by time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// The bucket's end (cut to `to`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Spend by currency, as decimal strings.
    pub totals: BTreeMap<String, String>,
}

/// A field left out of a group unless grouped by it, where null is a value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Skip<T> {
    /// Shown, null or not.
    Shown(Option<T>),
    /// Left out.
    Skipped,
}

impl<T> Skip<T> {
    fn skip(&self) -> bool {
        matches!(self, Skip::Skipped)
    }
}

type GroupKey = (usize, Option<String>, Option<String>, Option<String>);

/// The answer's overall totals and groups from [`sums`](crate::expenditure_sql::sums)' rows. Grouped by
/// time alone, every bucket is listed, empty ones with no totals; grouped
/// by anything else, only groups with spend are.
pub fn assemble(sums: &[Sum], grouping: Grouping, spans: &[Span]) -> (Totals, Vec<Group>) {
    let mut totals = Totals::new();
    let mut groups: BTreeMap<GroupKey, Totals> = BTreeMap::new();
    for sum in sums {
        *totals.entry(sum.currency.clone()).or_default() += sum.nanos;
        let bucket = spans.partition_point(|s| s.end <= sum.first);
        let key = (
            bucket,
            sum.entity.clone(),
            sum.item_type.clone(),
            sum.item_id.clone(),
        );
        *groups
            .entry(key)
            .or_default()
            .entry(sum.currency.clone())
            .or_default() += sum.nanos;
    }
    if grouping.time.is_some() && !grouping.entity && !grouping.item {
        for bucket in 0..spans.len() {
            groups.entry((bucket, None, None, None)).or_default();
        }
    }
    let shown_if = |on: bool, value: &Option<String>| {
        if on {
            Skip::Shown(value.clone())
        } else {
            Skip::Skipped
        }
    };
    let groups = groups
        .into_iter()
        .map(|((bucket, entity, item_type, item_id), sums)| {
            let span = grouping.time.and_then(|_| spans.get(bucket));
            Group {
                entity,
                item_type: shown_if(grouping.item, &item_type),
                item_id: shown_if(grouping.item, &item_id),
                start: span.map(|s| format_rfc3339(s.start)),
                end: span.map(|s| format_rfc3339(s.end)),
                totals: shown(&sums),
            }
        })
        .collect();
    (totals, groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Unit;

    fn sum(entity: Option<&str>, first: i64, currency: &str, nanos: i128) -> Sum {
        Sum {
            entity: entity.map(Into::into),
            item_type: None,
            item_id: None,
            first,
            currency: currency.into(),
            nanos,
        }
    }

    #[test]
    fn groups_sum_per_currency_and_every_time_bucket_is_listed() {
        let spans = [
            Span {
                start: 0,
                end: 86_400,
            },
            Span {
                start: 86_400,
                end: 172_800,
            },
            Span {
                start: 172_800,
                end: 200_000,
            },
        ];
        let rows = [
            sum(None, 10, "USD", 100_000_000),
            sum(None, 20, "EUR", 5),
            sum(None, 172_900, "USD", 200_000_000),
        ];
        let days = Grouping {
            time: Some(Unit::Day),
            ..Grouping::default()
        };
        let (totals, groups) = assemble(&rows, days, &spans);
        assert_eq!(format_nanos(totals["USD"]), "0.30");
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].totals["EUR"], "0.000000005");
        assert!(groups[1].totals.is_empty());
        assert_eq!(groups[2].start.as_deref(), Some("1970-01-03T00:00:00Z"));
        assert_eq!(groups[2].end.as_deref(), Some("1970-01-03T07:33:20Z"));
        let json = serde_json::to_value(&groups[0]).unwrap();
        assert!(json.get("item_type").is_none() && json.get("entity").is_none());

        let by_entity = Grouping {
            entity: true,
            item: true,
            ..Grouping::default()
        };
        let rows = [
            sum(Some("user:u1"), 1, "USD", 1),
            sum(Some("user:u2"), 2, "USD", 2),
        ];
        let (_, groups) = assemble(&rows, by_entity, &[Span { start: 0, end: 9 }]);
        assert_eq!(groups.len(), 2);
        let json = serde_json::to_value(&groups[1]).unwrap();
        assert_eq!(json["entity"], "user:u2");
        assert_eq!(json["item_type"], serde_json::Value::Null);
        assert!(json.get("start").is_none());
    }

    #[test]
    fn sums_split_in_whole_units_and_billionths_add_back_exactly() {
        assert_eq!(nanos_of(-1, -500_000_000), -1_500_000_000);
        let huge = nanos_of(i64::MAX, 999_999_999);
        assert_eq!(format_nanos(huge), "9223372036854775807.999999999");
    }
}
