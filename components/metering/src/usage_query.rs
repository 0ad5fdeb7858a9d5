//! The query of `GET /v1/usage`, read from the query string, and the UTC
//! windows its buckets fill. Pure, so the rules are tested natively.

use gatehouse_http::{ErrorCode, FieldError, Problem};

use crate::model::{valid_key, valid_path};
use crate::period::{Calendar, Unit, parse_rfc3339};
use crate::subject::{self, Kind, Subject};

/// The most buckets one query answers: enough for six weeks by the hour
/// or almost three years by the day.
pub const MAX_BUCKETS: usize = 1000;

/// How long one bucket runs, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// An hour.
    Hour,
    /// A calendar day.
    Day,
    /// A calendar month.
    Month,
}

impl Window {
    /// The name in queries and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
        }
    }

    fn parse(name: &str) -> Option<Window> {
        [Window::Hour, Window::Day, Window::Month]
            .into_iter()
            .find(|w| w.as_str() == name)
    }

    /// The window holding `t`: its first second and the next window's.
    pub fn around(self, t: i64) -> (i64, i64) {
        let fixed = |width: i64| {
            let start = t.div_euclid(width) * width;
            (start, start + width)
        };
        match self {
            Window::Hour => fixed(3600),
            Window::Day => fixed(86_400),
            Window::Month => Calendar::utc().window(Unit::Month, t),
        }
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

/// One bucket's span: the window's first second (the key events are
/// grouped by) and the part of it inside the query.
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

/// Why a query was refused; [`Invalid::problem`] is its answer. Kept
/// small, so results carrying it stay cheap to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    param: &'static str,
    code: &'static str,
    message: String,
}

impl Invalid {
    fn new(param: &'static str, code: &'static str, message: impl Into<String>) -> Invalid {
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

fn required(param: &'static str, value: Option<String>) -> Result<String, Invalid> {
    value.ok_or_else(|| Invalid::new(param, "required", format!("{param} is required")))
}

fn time(param: &'static str, value: Option<String>) -> Result<i64, Invalid> {
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
            Invalid::new("window", "invalid", "window must be hour, day or month")
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

    /// The buckets from `from` to `to`, the first and last cut to them;
    /// more than [`MAX_BUCKETS`] is `too_many_buckets`.
    pub fn spans(&self) -> Result<Vec<Span>, Invalid> {
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
            let (key, next) = self.window.around(t);
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

    #[test]
    fn days_are_cut_to_from_and_to() {
        let q = query(DAYS).unwrap();
        assert_eq!(q.subject, None);
        let spans = q.spans().unwrap();
        let nov1 = parse_rfc3339("2026-11-01T00:00:00Z").unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].key, spans[0].start), (nov1, nov1 + 6 * 3600));
        assert_eq!((spans[1].key, spans[1].end), (nov1 + 86_400, q.to));
    }

    #[test]
    fn months_follow_the_calendar() {
        let q = query("meter=m&from=2024-01-15T00:00:00Z&to=2024-03-02T00:00:00Z&window=month")
            .unwrap();
        let keys: Vec<i64> = q.spans().unwrap().iter().map(|s| s.key).collect();
        let at = |t| parse_rfc3339(t).unwrap();
        assert_eq!(
            keys,
            [
                at("2024-01-01T00:00:00Z"),
                at("2024-02-01T00:00:00Z"),
                at("2024-03-01T00:00:00Z")
            ]
        );
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
            code(&DAYS.replace("day", "week")),
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
        let problem = long.spans().unwrap_err().problem();
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
