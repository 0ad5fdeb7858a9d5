//! The query of `GET /v1/metering/stats`, read from the query string, the
//! buckets it fills in the org's calendar, and a quota's status. Pure, so
//! the rules are tested natively.

use crate::period::{Calendar, Unit};
use crate::subject::{self, Kind, Subject};
use crate::usage_query::{Invalid, MAX_BUCKETS, Span, required, time};

/// A parsed stats query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    /// The org, one of its teams or one of its members.
    pub entity: Subject,
    /// First second counted.
    pub from: i64,
    /// First second not counted.
    pub to: i64,
    /// The bucket: a day, week or month of the org's calendar.
    pub window: Unit,
}

impl StatsQuery {
    /// Reads the query from its decoded `(key, value)` pairs; unknown keys
    /// are ignored, a repeated key takes its last value. `org` and
    /// `org:<the org's id>` name the org; another org is not an entity here.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
        org_id: &str,
    ) -> Result<StatsQuery, Invalid> {
        let (mut entity, mut from, mut to, mut window) = (None, None, None, None);
        for (key, value) in pairs {
            let slot = match key.as_str() {
                "entity" => &mut entity,
                "from" => &mut from,
                "to" => &mut to,
                "window" => &mut window,
                _ => continue,
            };
            *slot = Some(value);
        }
        let entity = subject::parse_entity(&required("entity", entity)?, org_id)
            .filter(|e| e.kind != Kind::Org || e.id == org_id)
            .ok_or_else(|| {
                Invalid::new(
                    "entity",
                    "invalid",
                    "entity must be org, team:<id> or user:<id>",
                )
            })?;
        let from = time("from", from)?;
        let to = time("to", to)?;
        if from >= to {
            return Err(Invalid::new(
                "to",
                "not_after_from",
                "to must be later than from",
            ));
        }
        let window = Unit::parse(&required("window", window)?).ok_or_else(|| {
            Invalid::new("window", "invalid", "window must be day, week or month")
        })?;
        Ok(StatsQuery {
            entity,
            from,
            to,
            window,
        })
    }

    /// The buckets from `from` to `to` in `calendar`, the first and last
    /// cut to them; more than [`MAX_BUCKETS`] is `too_many_buckets`.
    pub fn spans(&self, calendar: &Calendar) -> Result<Vec<Span>, Invalid> {
        let mut spans = Vec::new();
        let mut t = self.from;
        while t < self.to {
            if spans.len() == MAX_BUCKETS {
                return Err(Invalid::new(
                    "window",
                    "too_many_buckets",
                    format!(
                        "from and to span more than {MAX_BUCKETS} windows: narrow them or widen the window"
                    ),
                ));
            }
            let (key, next) = calendar.window(self.window, t);
            spans.push(Span {
                key,
                start: t,
                end: next.min(self.to),
            });
            t = next;
        }
        Ok(spans)
    }
}

/// A common table `spans(start, stop)` of `(first second, first second
/// after)` pairs, for statements that sum rows per bucket. The numbers
/// are the app's own, written as literals; no pair matches nothing.
pub fn spans_table(spans: &[(i64, i64)]) -> String {
    let rows: Vec<String> = spans.iter().map(|(a, b)| format!("({a}, {b})")).collect();
    let rows = if rows.is_empty() {
        "(0, 0)".to_string()
    } else {
        rows.join(", ")
    };
    format!("spans(start, stop) AS (VALUES {rows})")
}

/// What a quota has left of `limit` once `used` and `held` (by open
/// reservations) count, never below zero.
pub fn remaining(limit: i64, used: i64, held: i64) -> i64 {
    limit.saturating_sub(used).saturating_sub(held).max(0)
}

/// `used` as a percent of `limit`, to two decimals; none for a zero limit.
pub fn percent(used: i64, limit: i64) -> Option<f64> {
    if limit <= 0 {
        return None;
    }
    let hundredths = (i128::from(used) * 10_000 + i128::from(limit) / 2) / i128::from(limit);
    Some(hundredths as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> Result<StatsQuery, Invalid> {
        let pairs = text.split('&').map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_string(), v.to_string())
        });
        StatsQuery::from_pairs(pairs, "org_1")
    }

    fn code(text: &str) -> String {
        let problem = query(text).unwrap_err().problem();
        assert_eq!((problem.status, problem.code), (400, "invalid_query"));
        format!("{} {}", problem.errors[0].pointer, problem.errors[0].code)
    }

    fn at(text: &str) -> i64 {
        crate::period::parse_rfc3339(text).unwrap()
    }

    const WEEK: &str = "from=2026-11-01T00:00:00Z&to=2026-11-08T00:00:00Z&window=day";

    #[test]
    fn the_entity_is_the_org_a_team_or_a_member() {
        let org = query(&format!("entity=org&{WEEK}")).unwrap();
        assert_eq!(
            (org.entity.kind, org.entity.id.as_str()),
            (Kind::Org, "org_1")
        );
        assert_eq!(
            query(&format!("entity=org:org_1&{WEEK}")).unwrap().entity,
            org.entity
        );
        let team = query(&format!("entity=team:team_7&{WEEK}")).unwrap();
        assert_eq!(
            (team.entity.kind, team.entity.id.as_str()),
            (Kind::Team, "team_7")
        );
        assert_eq!(
            query(&format!("entity=user:usr_2&{WEEK}"))
                .unwrap()
                .entity
                .kind,
            Kind::User
        );
        for bad in ["org:org_2", "key:key_1", "robot:1", "user:", "team", ""] {
            assert_eq!(
                code(&format!("entity={bad}&{WEEK}")),
                "/entity invalid",
                "{bad}"
            );
        }
        assert_eq!(code(WEEK), "/entity required");
    }

    #[test]
    fn times_and_windows_are_checked() {
        assert_eq!(
            code("entity=org&from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z&window=day"),
            "/to not_after_from"
        );
        assert_eq!(
            code("entity=org&from=2026-11-01T00:00:00Z&to=2026-11-01T00:00:00Z&window=day"),
            "/to not_after_from"
        );
        assert_eq!(
            code(&format!("entity=org&{}", WEEK.replace("day", "hour"))),
            "/window invalid"
        );
        assert_eq!(
            code("entity=org&from=2026-11-01&to=2026-11-02T00:00:00Z&window=day"),
            "/from invalid"
        );
        assert_eq!(
            code("entity=org&from=2026-11-01T00:00:00Z&window=day"),
            "/to required"
        );
        assert_eq!(
            code("entity=org&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z"),
            "/window required"
        );
    }

    #[test]
    fn buckets_follow_the_orgs_calendar_and_are_cut_to_from_and_to() {
        let q = query("entity=org&from=2026-11-01T12:00:00Z&to=2026-11-03T06:00:00Z&window=day")
            .unwrap();
        let berlin = Calendar::of("Europe/Berlin").unwrap();
        let spans = q.spans(&berlin).unwrap();
        // Berlin's days start at 23:00 UTC in November.
        assert_eq!(
            spans,
            [
                Span {
                    key: at("2026-10-31T23:00:00Z"),
                    start: q.from,
                    end: at("2026-11-01T23:00:00Z")
                },
                Span {
                    key: at("2026-11-01T23:00:00Z"),
                    start: at("2026-11-01T23:00:00Z"),
                    end: at("2026-11-02T23:00:00Z")
                },
                Span {
                    key: at("2026-11-02T23:00:00Z"),
                    start: at("2026-11-02T23:00:00Z"),
                    end: q.to
                },
            ]
        );
        let weeks =
            query("entity=org&from=2026-11-01T00:00:00Z&to=2026-11-20T00:00:00Z&window=week")
                .unwrap();
        let keys: Vec<i64> = weeks
            .spans(&Calendar::utc())
            .unwrap()
            .iter()
            .map(|s| s.key)
            .collect();
        // 2026-11-01 is a Sunday: its week began on Monday, 26 October.
        assert_eq!(
            keys,
            [
                at("2026-10-26T00:00:00Z"),
                at("2026-11-02T00:00:00Z"),
                at("2026-11-09T00:00:00Z"),
                at("2026-11-16T00:00:00Z")
            ]
        );
        let months =
            query("entity=org&from=2026-01-15T00:00:00Z&to=2026-03-01T00:00:00Z&window=month")
                .unwrap();
        assert_eq!(months.spans(&Calendar::utc()).unwrap().len(), 2);
    }

    #[test]
    fn too_many_buckets_are_refused() {
        let long = query("entity=org&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&window=day")
            .unwrap();
        let problem = long.spans(&Calendar::utc()).unwrap_err().problem();
        assert_eq!(problem.errors[0].code, "too_many_buckets");
        let months =
            query("entity=org&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&window=month")
                .unwrap();
        assert_eq!(months.spans(&Calendar::utc()).unwrap().len(), 72);
    }

    #[test]
    fn spans_become_a_values_table() {
        assert_eq!(
            spans_table(&[(0, 86_400), (86_400, 172_800)]),
            "spans(start, stop) AS (VALUES (0, 86400), (86400, 172800))"
        );
        assert_eq!(spans_table(&[]), "spans(start, stop) AS (VALUES (0, 0))");
    }

    #[test]
    fn a_quota_status_counts_what_is_held_and_never_goes_below_zero() {
        assert_eq!(remaining(1000, 600, 100), 300);
        assert_eq!(remaining(1000, 1200, 0), 0);
        assert_eq!(remaining(0, 0, 0), 0);
        assert_eq!(percent(812, 1000), Some(81.2));
        assert_eq!(percent(1, 3), Some(33.33));
        assert_eq!(percent(2, 3), Some(66.67));
        assert_eq!(percent(1500, 1000), Some(150.0));
        assert_eq!(percent(5, 0), None);
    }
}
