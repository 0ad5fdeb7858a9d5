//! Alerts: a quota's thresholds, each fired once per period when its use
//! reaches it, and unusual spend, flagged once per org, currency and day.
//!
//! A threshold is a percent of the quota's limit (`{"percent": 80}`, 1 to
//! 1000, so 120 % warns past a soft limit) or an amount in the quota's own
//! units (`{"units": 5000}`; billionths for a spend quota). Its level is
//! the use at which it is reached: `units`, or `ceil(limit × percent / 100)`
//! and never less than 1, so a threshold is always reached by some use,
//! also on a zero limit. A use that moves a counter from `before` to
//! `after` reaches every threshold with `before < level <= after`
//! ([`crossed`]).
//!
//! [`fire`] runs inside the consuming write transaction: a row in
//! `quota_alerts` per quota, period and threshold decides, by its primary
//! key, that a threshold fires once per period however many consumes race
//! for it; only the one that inserted it records an `org_events` row
//! (`quota.threshold_reached`) and queues a mail to each of the org's
//! admins. [`check_unusual_spend`] does the same for a day's spend (see
//! [`spend`] for the rule).
//!
//! - [`notice`]: what an event and a mail say, pure.
//! - [`spend`]: the unusual-spend rule, pure.

use gatehouse_http::FieldError;
use serde::{Deserialize, Serialize};

use crate::model::{Enforcement, MAX_UNITS, Measure};

pub mod notice;
pub mod spend;

#[cfg(target_arch = "wasm32")]
mod fire;
#[cfg(target_arch = "wasm32")]
pub mod listing;

#[cfg(target_arch = "wasm32")]
pub use fire::{check_unusual_spend, fire};

/// The most thresholds a quota takes.
pub const MAX_THRESHOLDS: usize = 10;
/// The highest percent a threshold names: ten times the limit.
pub const MAX_PERCENT: u32 = 1000;

/// One alert threshold of a quota. Serialized as it is given:
/// `{"percent": 80}` or `{"units": 5000}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Threshold {
    /// A percent of the limit, 1 to [`MAX_PERCENT`].
    Percent(u32),
    /// An amount in the quota's units (billionths for spend), 1 to
    /// [`MAX_UNITS`].
    Units(i64),
}

impl Threshold {
    /// Its canonical key (`percent:80`, `units:5000`): how `quota_alerts`
    /// names it, so equal thresholds fire once however they were written.
    pub fn key(&self) -> String {
        match self {
            Threshold::Percent(p) => format!("percent:{p}"),
            Threshold::Units(u) => format!("units:{u}"),
        }
    }

    /// The threshold a [`key`](Threshold::key) names.
    pub fn from_key(key: &str) -> Option<Threshold> {
        let (kind, number) = key.split_once(':')?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match kind {
            "percent" => number
                .parse()
                .ok()
                .filter(|p| (1..=MAX_PERCENT).contains(p))
                .map(Threshold::Percent),
            "units" => number
                .parse()
                .ok()
                .filter(|u| (1..=MAX_UNITS).contains(u))
                .map(Threshold::Units),
            _ => None,
        }
    }

    /// The use at which it is reached under `limit`: at least 1, since no
    /// use reaches nothing.
    pub fn level(&self, limit: i64) -> i64 {
        let level = match *self {
            Threshold::Units(units) => i128::from(units),
            Threshold::Percent(p) => {
                let scaled = i128::from(limit.max(0)) * i128::from(p);
                (scaled + 99) / 100
            }
        };
        i64::try_from(level.max(1)).unwrap_or(i64::MAX)
    }
}

fn error(pointer: String, code: &str, message: &str) -> FieldError {
    FieldError::new(pointer, code, message)
}

/// One element of the array, at `pointer`.
fn parse_one(value: &serde_json::Value, pointer: String) -> Result<Threshold, FieldError> {
    let shape = "a threshold is {\"percent\": <1 to 1000>} or {\"units\": <1 or more>}";
    let Some(object) = value.as_object().filter(|o| o.len() == 1) else {
        return Err(error(pointer, "invalid", shape));
    };
    let Some((name, number)) = object.iter().next() else {
        return Err(error(pointer, "invalid", shape));
    };
    let at = format!("{pointer}/{name}");
    if !(number.is_i64() || number.is_u64()) {
        return match name.as_str() {
            "percent" | "units" => Err(error(at, "invalid", "must be a whole number")),
            _ => Err(error(pointer, "invalid", shape)),
        };
    }
    // A whole number too large for i64 is simply out of range.
    let n = number.as_i64().unwrap_or(i64::MAX);
    match name.as_str() {
        "percent" => u32::try_from(n)
            .ok()
            .filter(|p| (1..=MAX_PERCENT).contains(p))
            .map(Threshold::Percent)
            .ok_or_else(|| {
                error(
                    at,
                    "invalid_range",
                    &format!("percent must be 1 to {MAX_PERCENT}"),
                )
            }),
        "units" => Some(n)
            .filter(|u| (1..=MAX_UNITS).contains(u))
            .map(Threshold::Units)
            .ok_or_else(|| {
                error(
                    at,
                    "invalid_range",
                    &format!("units must be 1 to {MAX_UNITS}"),
                )
            }),
        _ => Err(error(pointer, "invalid", shape)),
    }
}

/// A quota's `thresholds` as given in a request: a JSON array of at most
/// [`MAX_THRESHOLDS`] thresholds, none twice (by [`Threshold::key`]);
/// `null` is none. Errors point under `/thresholds`.
pub fn parse_thresholds(value: &serde_json::Value) -> Result<Vec<Threshold>, Vec<FieldError>> {
    let items = match value {
        serde_json::Value::Null => return Ok(Vec::new()),
        serde_json::Value::Array(items) => items,
        _ => {
            return Err(vec![error(
                "/thresholds".into(),
                "invalid",
                "thresholds must be an array such as [{\"percent\": 80}, {\"percent\": 100}]",
            )]);
        }
    };
    let mut errors = Vec::new();
    if items.len() > MAX_THRESHOLDS {
        errors.push(error(
            "/thresholds".into(),
            "too_many",
            &format!("a quota takes at most {MAX_THRESHOLDS} thresholds"),
        ));
    }
    let mut thresholds: Vec<Threshold> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match parse_one(item, format!("/thresholds/{i}")) {
            Ok(t) if thresholds.contains(&t) => errors.push(error(
                format!("/thresholds/{i}"),
                "duplicate",
                "this threshold is given twice",
            )),
            Ok(t) => thresholds.push(t),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(thresholds)
    } else {
        Err(errors)
    }
}

/// The thresholds a use from `before` to `after` reaches under `limit`:
/// those whose level `L` has `before < L <= after`, in the order given.
/// Nothing is reached when the use did not grow (`after <= before`).
pub fn crossed(thresholds: &[Threshold], limit: i64, before: i64, after: i64) -> Vec<&Threshold> {
    thresholds
        .iter()
        .filter(|t| {
            let level = t.level(limit);
            before < level && level <= after
        })
        .collect()
}

/// The levels either side of a use from `before` by `need` that reaches
/// no threshold: the highest at or below `before` and the lowest above
/// `before + need` (none: no such level). A use of `need` from any `u`
/// with `lo <= u` and `u + need < hi` reaches none either. `None` when
/// this use reaches one.
pub fn levels_around(
    thresholds: &[Threshold],
    limit: i64,
    before: i64,
    need: i64,
) -> Option<(Option<i64>, Option<i64>)> {
    let after = before.saturating_add(need);
    if !crossed(thresholds, limit, before, after).is_empty() {
        return None;
    }
    let levels = thresholds.iter().map(|t| t.level(limit));
    let lo = levels.clone().filter(|&l| l <= before).max();
    let hi = levels.filter(|&l| l > after).min();
    Some((lo, hi))
}

/// A quota whose use just reached thresholds: what [`fire`] records and
/// mails.
#[derive(Debug, Clone)]
pub struct Crossing<'a> {
    /// `quo_…`.
    pub quota_id: &'a str,
    /// `org:<id>`, `team:<id>` or `user:<id>`.
    pub entity: &'a str,
    /// The meter key or the currency (ISO 4217) it limits: a meter key
    /// is lower-case, a currency upper-case, so the two never meet.
    pub measure: &'a str,
    /// Its limit in the period (an override's while one runs).
    pub limit: i64,
    /// Its use once the consume is counted.
    pub used: i64,
    /// The period's (or, rolling, the bucket's) first second: one alert
    /// per threshold and period start.
    pub period_start: i64,
    /// When the period's count resets; none for lifetime.
    pub reset_at: Option<i64>,
    /// Hard or soft.
    pub enforcement: Enforcement,
}

impl Crossing<'_> {
    /// What the quota limits.
    pub fn measure(&self) -> Measure {
        if crate::money::valid_currency(self.measure) {
            Measure::Spend(self.measure.to_string())
        } else {
            Measure::Meter(self.measure.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(value: serde_json::Value) -> Vec<Threshold> {
        parse_thresholds(&value).unwrap()
    }

    /// `pointer code` of each error.
    fn errors(value: serde_json::Value) -> Vec<String> {
        parse_thresholds(&value)
            .unwrap_err()
            .iter()
            .map(|e| format!("{} {}", e.pointer, e.code))
            .collect()
    }

    #[test]
    fn levels_around_a_use_bound_every_use_that_reaches_no_threshold() {
        let thresholds = parsed(json!([{"percent": 50}, {"units": 8}, {"percent": 100}]));
        // Under a limit of 10 the levels are 5, 8 and 10.
        assert_eq!(
            levels_around(&thresholds, 10, 5, 2),
            Some((Some(5), Some(8)))
        );
        assert_eq!(levels_around(&thresholds, 10, 0, 1), Some((None, Some(5))));
        assert_eq!(
            levels_around(&thresholds, 10, 10, 3),
            Some((Some(10), None))
        );
        assert_eq!(levels_around(&thresholds, 10, 4, 1), None);
        assert_eq!(levels_around(&[], 10, 4, 1), Some((None, None)));
        // Whatever the use was read at, every other use within the bounds
        // reaches nothing, and every use past them that reaches one is
        // outside them.
        for before in 0..14 {
            for need in 1..4 {
                let Some((lo, hi)) = levels_around(&thresholds, 10, before, need) else {
                    assert!(!crossed(&thresholds, 10, before, before + need).is_empty());
                    continue;
                };
                for u in 0..16 {
                    let within = lo.is_none_or(|lo| lo <= u) && hi.is_none_or(|hi| u + need < hi);
                    if within {
                        assert!(
                            crossed(&thresholds, 10, u, u + need).is_empty(),
                            "{before} {need} {u}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn thresholds_read_as_percents_and_units_in_the_order_given() {
        assert_eq!(
            parsed(json!([{"percent": 100}, {"units": 5000}, {"percent": 80}])),
            [
                Threshold::Percent(100),
                Threshold::Units(5000),
                Threshold::Percent(80)
            ]
        );
        assert_eq!(parsed(json!([])), []);
        assert_eq!(parsed(json!(null)), []);
        assert_eq!(
            parsed(json!([{"percent": 1}, {"percent": 1000}, {"units": MAX_UNITS}])).len(),
            3
        );
    }

    #[test]
    fn thresholds_write_back_in_the_shape_they_were_read() {
        let given = json!([{"percent": 80}, {"units": 5000}]);
        let thresholds = parsed(given.clone());
        assert_eq!(serde_json::to_value(&thresholds).unwrap(), given);
        // What was written reads back as it was.
        assert_eq!(
            parsed(serde_json::to_value(&thresholds).unwrap()),
            thresholds
        );
        let back: Vec<Threshold> = serde_json::from_value(given).unwrap();
        assert_eq!(back, thresholds);
    }

    #[test]
    fn each_threshold_has_one_canonical_key() {
        for t in [Threshold::Percent(80), Threshold::Units(5000)] {
            assert_eq!(Threshold::from_key(&t.key()), Some(t));
        }
        assert_eq!(Threshold::Percent(80).key(), "percent:80");
        assert_eq!(Threshold::Units(5000).key(), "units:5000");
        for bad in [
            "percent:0",
            "percent:1001",
            "units:0",
            "units:-5",
            "percent:",
            "percent:8x",
            "ratio:2",
            "percent",
            "",
        ] {
            assert_eq!(Threshold::from_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn malformed_thresholds_are_named_by_their_pointer() {
        assert_eq!(errors(json!({"percent": 80})), ["/thresholds invalid"]);
        assert_eq!(errors(json!("80%")), ["/thresholds invalid"]);
        assert_eq!(
            errors(json!([
                {"percent": 0},
                {"percent": 1001},
                {"units": 0},
                {"units": -1},
                {"percent": 80.5},
                {"units": "5000"},
                {"ratio": 2},
                {"percent": 80, "units": 5},
                {},
                80,
            ])),
            [
                "/thresholds/0/percent invalid_range",
                "/thresholds/1/percent invalid_range",
                "/thresholds/2/units invalid_range",
                "/thresholds/3/units invalid_range",
                "/thresholds/4/percent invalid",
                "/thresholds/5/units invalid",
                "/thresholds/6 invalid",
                "/thresholds/7 invalid",
                "/thresholds/8 invalid",
                "/thresholds/9 invalid",
            ]
        );
        // Larger than any i64, and larger than MAX_UNITS.
        assert_eq!(
            errors(json!([{"units": 18_446_744_073_709_551_615_u64}, {"units": MAX_UNITS + 1}])),
            [
                "/thresholds/0/units invalid_range",
                "/thresholds/1/units invalid_range"
            ]
        );
    }

    #[test]
    fn at_most_ten_thresholds_and_none_twice() {
        let eleven: Vec<_> = (1..=11).map(|p| json!({"percent": p * 10})).collect();
        assert_eq!(errors(json!(eleven)), ["/thresholds too_many"]);
        let ten: Vec<_> = (1..=10).map(|p| json!({"percent": p * 10})).collect();
        assert_eq!(parsed(json!(ten)).len(), MAX_THRESHOLDS);
        assert_eq!(
            errors(json!([{"percent": 80}, {"units": 80}, {"percent": 80}])),
            ["/thresholds/2 duplicate"]
        );
    }

    #[test]
    fn a_percent_level_rounds_up_and_is_never_zero() {
        assert_eq!(Threshold::Percent(80).level(1000), 800);
        assert_eq!(Threshold::Percent(80).level(1001), 801); // 800.8
        assert_eq!(Threshold::Percent(80).level(1), 1); // 0.8
        assert_eq!(Threshold::Percent(1).level(10), 1); // 0.1
        assert_eq!(Threshold::Percent(150).level(10), 15);
        assert_eq!(Threshold::Percent(1000).level(MAX_UNITS), MAX_UNITS * 10);
        // A zero limit: the first unit used reaches every percent.
        assert_eq!(Threshold::Percent(80).level(0), 1);
        assert_eq!(Threshold::Percent(100).level(0), 1);
        assert_eq!(Threshold::Units(5000).level(0), 5000);
        assert_eq!(Threshold::Units(5000).level(10), 5000);
    }

    #[test]
    fn a_use_reaches_the_levels_it_moves_onto_or_past() {
        let all = [
            Threshold::Percent(50),
            Threshold::Percent(80),
            Threshold::Percent(100),
        ];
        let keys = |c: Vec<&Threshold>| c.iter().map(|t| t.key()).collect::<Vec<_>>();
        // Landing exactly on a level reaches it.
        assert_eq!(keys(crossed(&all, 1000, 799, 800)), ["percent:80"]);
        // Starting on a level: it was reached before.
        assert_eq!(keys(crossed(&all, 1000, 800, 801)), Vec::<String>::new());
        // One use past several levels reaches each of them.
        assert_eq!(
            keys(crossed(&all, 1000, 0, 5000)),
            ["percent:50", "percent:80", "percent:100"]
        );
        // Below every level, or no growth, or a decrease: nothing.
        assert!(crossed(&all, 1000, 0, 499).is_empty());
        assert!(crossed(&all, 1000, 900, 900).is_empty());
        assert!(crossed(&all, 1000, 900, 100).is_empty());
        assert!(crossed(&[], 1000, 0, 1000).is_empty());
    }

    #[test]
    fn on_a_zero_limit_the_first_use_reaches_every_percent() {
        let all = [Threshold::Percent(80), Threshold::Units(3)];
        assert!(crossed(&all, 0, 0, 0).is_empty());
        let first = crossed(&all, 0, 0, 1);
        assert_eq!(first, [&Threshold::Percent(80)]);
        assert!(crossed(&all, 0, 1, 2).is_empty());
        assert_eq!(crossed(&all, 0, 2, 3), [&Threshold::Units(3)]);
    }

    #[test]
    fn units_and_percents_on_one_level_both_fire() {
        let both = [Threshold::Units(800), Threshold::Percent(80)];
        assert_eq!(crossed(&both, 1000, 700, 800).len(), 2);
        // Past the limit, on a soft quota.
        assert_eq!(
            crossed(&[Threshold::Percent(120)], 1000, 1199, 1250),
            [&Threshold::Percent(120)]
        );
        // Huge values do not overflow.
        assert_eq!(
            crossed(&[Threshold::Percent(1000)], MAX_UNITS, 0, i64::MAX).len(),
            1
        );
    }
}
