//! The query of `GET /v1/usage`, read from the query string, the windows
//! its buckets fill (hours in UTC; days, weeks and months in the org's
//! calendar) and the statement that folds events into them. Pure, so the
//! rules are tested natively.

use gatehouse_http::{ErrorCode, FieldError, Problem};

use crate::model::{Aggregation, valid_key, valid_path};
use crate::period::{Calendar, Unit, parse_rfc3339};
use crate::subject::{self, Kind, Subject};

/// The most buckets one query answers: enough for six weeks by the hour
/// or almost three years by the day.
pub const MAX_BUCKETS: usize = 1000;

/// How long one bucket runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// An hour of UTC: every zone's hours start on UTC's but for those a
    /// fraction of an hour off, so hours stay as they always were.
    Hour,
    /// A day of the org's calendar.
    Day,
    /// A week of the org's calendar, from Monday.
    Week,
    /// A month of the org's calendar.
    Month,
}

impl Window {
    /// The name in queries and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Week => "week",
            Window::Month => "month",
        }
    }

    fn parse(name: &str) -> Option<Window> {
        [Window::Hour, Window::Day, Window::Week, Window::Month]
            .into_iter()
            .find(|w| w.as_str() == name)
    }

    /// The window holding `t` in `calendar`: its first second and the
    /// next window's.
    pub fn around(self, calendar: &Calendar, t: i64) -> (i64, i64) {
        let unit = match self {
            Window::Hour => {
                let start = t.div_euclid(3600) * 3600;
                return (start, start + 3600);
            }
            Window::Day => Unit::Day,
            Window::Week => Unit::Week,
            Window::Month => Unit::Month,
        };
        calendar.window(unit, t)
    }
}

/// A parsed usage query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    /// The meter's key.
    pub meter: String,
    /// Whose events: none for every event of the org (`subject=org`).
    pub subject: Option<Subject>,
    /// First second counted.
    pub from: i64,
    /// First second not counted.
    pub to: i64,
    /// The bucket width.
    pub window: Window,
    /// One of the meter's group-by paths, checked against the meter later.
    pub group_by: Option<String>,
}

/// One bucket's span: the window's first second and the part of it inside
/// the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The window's first second.
    pub key: i64,
    /// `max(window start, from)`.
    pub start: i64,
    /// `min(window end, to)`.
    pub end: i64,
}

/// A query parameter that is wrong: `invalid_query` with the parameter as
/// its pointer.
pub fn bad(param: &str, code: &str, message: impl Into<String>) -> Problem {
    let message = message.into();
    Problem::new(ErrorCode::InvalidQuery)
        .detail(message.clone())
        .errors(vec![FieldError::new(format!("/{param}"), code, message)])
}

/// Why a query (of usage, or of stats) was refused; [`Invalid::problem`]
/// is its answer (`invalid_query` with the parameter as its pointer).
/// Kept small, so results carrying it stay cheap to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    param: &'static str,
    code: &'static str,
    message: String,
}

impl Invalid {
    pub(crate) fn new(
        param: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Invalid {
        Invalid {
            param,
            code,
            message: message.into(),
        }
    }

    /// The `invalid_query` problem.
    pub fn problem(self) -> Problem {
        bad(self.param, self.code, self.message)
    }
}

/// The parameter's value, or why it is missing.
pub(crate) fn required(param: &'static str, value: Option<String>) -> Result<String, Invalid> {
    value.ok_or_else(|| Invalid::new(param, "required", format!("{param} is required")))
}

/// The parameter as an RFC 3339 time in unix seconds.
pub(crate) fn time(param: &'static str, value: Option<String>) -> Result<i64, Invalid> {
    parse_rfc3339(&required(param, value)?).ok_or_else(|| {
        Invalid::new(
            param,
            "invalid",
            format!("{param} must be an RFC 3339 date-time"),
        )
    })
}

impl UsageQuery {
    /// Reads the query from its decoded `(key, value)` pairs; unknown keys
    /// are ignored, a repeated key takes its last value.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
        org_id: &str,
    ) -> Result<UsageQuery, Invalid> {
        let (mut meter, mut subject, mut from, mut to, mut window, mut group_by) =
            (None, None, None, None, None, None);
        for (key, value) in pairs {
            let slot = match key.as_str() {
                "meter" => &mut meter,
                "subject" => &mut subject,
                "from" => &mut from,
                "to" => &mut to,
                "window" => &mut window,
                "group_by" => &mut group_by,
                _ => continue,
            };
            *slot = Some(value);
        }
        let meter = required("meter", meter)?;
        if !valid_key(&meter) {
            return Err(Invalid::new(
                "meter",
                "invalid",
                "meter must be a meter key",
            ));
        }
        let subject = match subject.as_deref() {
            None | Some("org") => None,
            Some(text) => {
                let parsed = subject::parse(text).ok_or_else(|| {
                    Invalid::new(
                        "subject",
                        "invalid",
                        "subject must be org, org:<id>, team:<id>, user:<id> or key:<id>",
                    )
                })?;
                if parsed.kind == Kind::Org && parsed.id == org_id {
                    None
                } else {
                    Some(parsed)
                }
            }
        };
        let from = time("from", from)?;
        let to = time("to", to)?;
        if from >= to {
            return Err(Invalid::new(
                "to",
                "not_after_from",
                "to must be later than from",
            ));
        }
        let window = Window::parse(&required("window", window)?).ok_or_else(|| {
            Invalid::new(
                "window",
                "invalid",
                "window must be hour, day, week or month",
            )
        })?;
        if let Some(path) = &group_by
            && !valid_path(path)
        {
            return Err(Invalid::new(
                "group_by",
                "invalid",
                "group_by must be a dotted path",
            ));
        }
        Ok(UsageQuery {
            meter,
            subject,
            from,
            to,
            window,
            group_by,
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
            let (key, next) = self.window.around(calendar, t);
            // Past the calendar's last date a window would not end: never
            // let one fail to move on.
            let next = next.max(t + 1);
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

/// The spans as the JSON array the statement reads them from:
/// `[[start, end], …]`.
pub fn spans_json(spans: &[Span]) -> String {
    let pairs: Vec<String> = spans
        .iter()
        .map(|s| format!("[{},{}]", s.start, s.end))
        .collect();
    format!("[{}]", pairs.join(","))
}

impl UsageQuery {
    /// The statement that folds the events of a meter with `aggregation`
    /// into the spans, and the highest parameter it takes. Its parameters
    /// after the org (`?1`): `?2` the event type, `?3` the spans
    /// ([`spans_json`]), `?4` the value path, `?5` the group path, `?6` and
    /// `?7` the subject's kind and id. A row: the span's start, the group
    /// (null ungrouped), the value.
    ///
    /// The boundaries come from the org's calendar, which SQLite does not
    /// know; joined by range, each span reads its own events through the
    /// `(org, type, time)` index. `CROSS JOIN` keeps the spans the outer
    /// loop whatever the planner guesses of a JSON list's size.
    pub fn statement(&self, aggregation: Aggregation) -> (String, usize) {
        let (value, only) = match aggregation {
            Aggregation::Count => ("COUNT(*)", ""),
            Aggregation::Sum => (
                "SUM(json_extract(e.data, ?4))",
                " AND json_type(e.data, ?4) IN ('integer', 'real')",
            ),
            Aggregation::Max => (
                "MAX(json_extract(e.data, ?4))",
                " AND json_type(e.data, ?4) IN ('integer', 'real')",
            ),
            Aggregation::UniqueCount => (
                "COUNT(DISTINCT json_extract(e.data, ?4))",
                " AND json_type(e.data, ?4) <> 'null'",
            ),
            // With one MAX(), SQLite takes the other columns from the row
            // that has the maximum: the newest event's value.
            Aggregation::Latest => (
                "json_extract(e.data, ?4), MAX(e.occurred_at)",
                " AND json_type(e.data, ?4) <> 'null'",
            ),
        };
        let group = if self.group_by.is_some() {
            "json_extract(e.data, ?5)"
        } else {
            "NULL"
        };
        let whose = if self.subject.is_some() {
            " AND e.subject_type = ?6 AND e.subject_id = ?7"
        } else {
            ""
        };
        let sql = format!(
            "SELECT s.start AS bucket, {group} AS grp, {value}
             FROM (SELECT json_extract(j.value, '$[0]') AS start, json_extract(j.value, '$[1]') AS stop
                   FROM json_each(?3) j) s
             CROSS JOIN usage_events e
             WHERE e.org_id = ?1 AND e.event_type = ?2
               AND e.occurred_at >= s.start AND e.occurred_at < s.stop{only}{whose}
             GROUP BY bucket, grp ORDER BY bucket, grp"
        );
        // A statement takes as many parameters as its highest number.
        let highest = if self.subject.is_some() {
            7
        } else if self.group_by.is_some() {
            5
        } else if aggregation != Aggregation::Count {
            4
        } else {
            3
        };
        (sql, highest)
    }
}

/// A dotted data path as an SQLite JSON path, each name quoted
/// (`tokens.input` → `$."tokens"."input"`); names hold no quotes.
pub fn json_path(path: &str) -> String {
    path.split('.').fold(String::from("$"), |mut out, name| {
        out.push_str(&format!(".\"{name}\""));
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> Result<UsageQuery, Invalid> {
        let pairs = text.split('&').map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_string(), v.to_string())
        });
        UsageQuery::from_pairs(pairs, "org_1")
    }

    fn code(text: &str) -> String {
        let problem = query(text).unwrap_err().problem();
        let body: serde_json::Value = serde_json::from_slice(&problem.to_json()).unwrap();
        format!(
            "{} {}",
            body["errors"][0]["pointer"], body["errors"][0]["code"]
        )
    }

    const DAYS: &str = "meter=m&from=2026-11-01T06:00:00Z&to=2026-11-03T00:00:00Z&window=day";

    fn at(text: &str) -> i64 {
        parse_rfc3339(text).unwrap()
    }

    /// Each span's `(start, end)`.
    fn bounds(text: &str, calendar: &Calendar) -> Vec<(i64, i64)> {
        let spans = query(text).unwrap().spans(calendar).unwrap();
        spans.iter().map(|s| (s.start, s.end)).collect()
    }

    #[test]
    fn days_are_cut_to_from_and_to() {
        let q = query(DAYS).unwrap();
        assert_eq!(q.subject, None);
        let nov1 = at("2026-11-01T00:00:00Z");
        assert_eq!(
            bounds(DAYS, &Calendar::utc()),
            [(nov1 + 6 * 3600, nov1 + 86_400), (nov1 + 86_400, q.to)]
        );
        assert_eq!(
            q.window.around(&Calendar::utc(), nov1 + 7 * 3600),
            (nov1, nov1 + 86_400)
        );
    }

    #[test]
    fn months_follow_the_calendar() {
        let text = "meter=m&from=2024-01-15T00:00:00Z&to=2024-03-02T00:00:00Z&window=month";
        assert_eq!(
            bounds(text, &Calendar::utc()),
            [
                (at("2024-01-15T00:00:00Z"), at("2024-02-01T00:00:00Z")),
                (at("2024-02-01T00:00:00Z"), at("2024-03-01T00:00:00Z")),
                (at("2024-03-01T00:00:00Z"), at("2024-03-02T00:00:00Z")),
            ]
        );
    }

    #[test]
    fn days_weeks_and_months_start_at_the_orgs_midnights_and_hours_stay_utcs() {
        let tokyo = Calendar::of("Asia/Tokyo").unwrap();
        let days = "meter=m&from=2026-11-30T00:00:00Z&to=2026-12-01T12:00:00Z&window=day";
        assert_eq!(
            bounds(days, &tokyo),
            [
                (at("2026-11-30T00:00:00Z"), at("2026-11-30T15:00:00Z")),
                (at("2026-11-30T15:00:00Z"), at("2026-12-01T12:00:00Z")),
            ]
        );
        // Monday 2026-11-30 starts at 15:00 UTC on Sunday in Tokyo.
        let weeks = "meter=m&from=2026-11-25T00:00:00Z&to=2026-12-10T00:00:00Z&window=week";
        assert_eq!(
            bounds(weeks, &tokyo),
            [
                (at("2026-11-25T00:00:00Z"), at("2026-11-29T15:00:00Z")),
                (at("2026-11-29T15:00:00Z"), at("2026-12-06T15:00:00Z")),
                (at("2026-12-06T15:00:00Z"), at("2026-12-10T00:00:00Z")),
            ]
        );
        let kolkata = Calendar::of("Asia/Kolkata").unwrap();
        let hours = "meter=m&from=2026-11-30T00:00:00Z&to=2026-11-30T02:00:00Z&window=hour";
        assert_eq!(
            bounds(hours, &kolkata),
            [
                (at("2026-11-30T00:00:00Z"), at("2026-11-30T01:00:00Z")),
                (at("2026-11-30T01:00:00Z"), at("2026-11-30T02:00:00Z")),
            ]
        );
    }

    #[test]
    fn a_day_with_a_clock_change_is_one_bucket_of_its_own_length() {
        let new_york = Calendar::of("America/New_York").unwrap();
        let text = "meter=m&from=2026-03-07T05:00:00Z&to=2026-03-10T04:00:00Z&window=day";
        let spans = bounds(text, &new_york);
        let lengths: Vec<i64> = spans.iter().map(|(a, b)| (b - a) / 3600).collect();
        assert_eq!(lengths, [24, 23, 24]);
        assert_eq!(
            spans[1],
            (at("2026-03-08T05:00:00Z"), at("2026-03-09T04:00:00Z"))
        );
    }

    #[test]
    fn the_statement_is_bound_to_the_org_and_reads_the_spans_as_json() {
        use gatehouse_auth::tenant::is_scoped;
        let plain = query(DAYS).unwrap();
        let (sql, highest) = plain.statement(Aggregation::Count);
        assert!(is_scoped(&sql), "{sql}");
        assert!(sql.contains("json_each(?3)") && !sql.contains("?4"));
        assert_eq!(highest, 3);
        let narrow = query(&format!("{DAYS}&subject=user:usr_1&group_by=model")).unwrap();
        let (sql, highest) = narrow.statement(Aggregation::Latest);
        assert!(is_scoped(&sql), "{sql}");
        assert_eq!(highest, 7);
        assert!(sql.contains("?7") && !sql.contains("?8"));
        assert_eq!(plain.statement(Aggregation::Sum).1, 4);
        let spans = plain.spans(&Calendar::utc()).unwrap();
        let json: serde_json::Value = serde_json::from_str(&spans_json(&spans)).unwrap();
        assert_eq!(json[1], serde_json::json!([spans[1].start, spans[1].end]));
        assert_eq!(json.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn the_org_and_its_own_id_mean_every_event_of_the_org() {
        assert_eq!(query(&format!("{DAYS}&subject=org")).unwrap().subject, None);
        assert_eq!(
            query(&format!("{DAYS}&subject=org:org_1")).unwrap().subject,
            None
        );
        let user = query(&format!("{DAYS}&subject=user:usr_1"))
            .unwrap()
            .subject
            .unwrap();
        assert_eq!((user.kind, user.id.as_str()), (Kind::User, "usr_1"));
    }

    #[test]
    fn bad_queries_name_the_parameter_and_a_code() {
        assert_eq!(code("from=x"), "\"/meter\" \"required\"");
        assert_eq!(
            code(&DAYS.replace("day", "fortnight")),
            "\"/window\" \"invalid\""
        );
        assert_eq!(
            code(&format!("{DAYS}&subject=robot:1")),
            "\"/subject\" \"invalid\""
        );
        assert_eq!(
            code("meter=m&from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z&window=day"),
            "\"/to\" \"not_after_from\""
        );
        let long =
            query("meter=m&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z&window=hour").unwrap();
        let problem = long.spans(&Calendar::utc()).unwrap_err().problem();
        let body: serde_json::Value = serde_json::from_slice(&problem.to_json()).unwrap();
        assert_eq!(body["errors"][0]["code"], "too_many_buckets");
        assert_eq!(body["status"], 400);
    }

    #[test]
    fn paths_become_quoted_json_paths() {
        assert_eq!(json_path("tokens.input"), "$.\"tokens\".\"input\"");
        assert_eq!(json_path("model-name"), "$.\"model-name\"");
    }
}
