//! The query of `GET /v1/expenditure`, read from the query string, and
//! the calendar buckets of the org's time zone it asks for. Pure, so the
//! rules are tested natively.

use gatehouse_http::{ErrorCode, FieldError, Problem};

use crate::model::valid_event_type;
use crate::money::valid_currency;
use crate::period::{Calendar, Unit, parse_rfc3339};
use crate::subject::{self, Kind, Subject};

/// The most time buckets one query answers: almost three years by the day.
pub const MAX_BUCKETS: usize = 1000;
/// The most rows (groups by currency) one query sums into.
pub const MAX_GROUPS: usize = 5000;
/// The full days a forecast averages by default, and at most.
pub const FORECAST_DAYS: (u32, u32) = (7, 31);

/// Why a query was refused; [`Invalid::problem`] is its answer. Small, so
/// results carrying it stay cheap to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    param: &'static str,
    code: &'static str,
    message: String,
}

impl Invalid {
    /// A refusal of `param`.
    pub fn new(param: &'static str, code: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            param,
            code,
            message: message.into(),
        }
    }

    /// The `invalid_query` problem, the parameter as its pointer.
    pub fn problem(self) -> Problem {
        Problem::new(ErrorCode::InvalidQuery)
            .detail(self.message.clone())
            .errors(vec![FieldError::new(
                format!("/{}", self.param),
                self.code,
                self.message,
            )])
    }
}

/// Whether and how a forecast is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forecast {
    /// When `from` and `to` cover the whole current month.
    Auto,
    /// Always, for the current month.
    Month,
    /// Never.
    Off,
}

/// What groups split the spend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grouping {
    /// By the entity each record is of.
    pub entity: bool,
    /// By item type and item id.
    pub item: bool,
    /// By calendar day, week or month.
    pub time: Option<Unit>,
}

impl Grouping {
    /// Whether anything splits the spend.
    pub fn any(self) -> bool {
        self.entity || self.item || self.time.is_some()
    }

    /// The names, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.entity {
            names.push("entity");
        }
        if self.item {
            names.push("item");
        }
        names.extend(self.time.map(Unit::as_str));
        names
    }

    fn parse(text: &str) -> Result<Grouping, Invalid> {
        let mut grouping = Grouping::default();
        for name in text.split(',').filter(|n| !n.is_empty()) {
            match name {
                "entity" => grouping.entity = true,
                "item" => grouping.item = true,
                _ => {
                    let unit = Unit::parse(name).ok_or_else(|| {
                        Invalid::new(
                            "group_by",
                            "invalid",
                            "group_by is a comma list of entity, item and one of day, week or month",
                        )
                    })?;
                    if grouping.time.is_some_and(|u| u != unit) {
                        return Err(Invalid::new(
                            "group_by",
                            "one_time_unit",
                            "group_by takes one of day, week or month at most",
                        ));
                    }
                    grouping.time = Some(unit);
                }
            }
        }
        Ok(grouping)
    }
}

/// Which records count: whose rollup rows, in which currency, of which item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Whose spend: the org, a team (with its members' and sub-teams'),
    /// or a member.
    pub entity: Subject,
    /// One currency only.
    pub currency: Option<String>,
    /// One item type only.
    pub item_type: Option<String>,
    /// One item only.
    pub item_id: Option<String>,
}

/// A parsed expenditure query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendQuery {
    /// Which records count.
    pub filter: Filter,
    /// Whether the entity was named (`entity=`), not the org by default.
    pub named: bool,
    /// First second counted; none: the current month's first.
    pub from: Option<i64>,
    /// First second not counted; none: the next month's first.
    pub to: Option<i64>,
    /// How the spend is split.
    pub group_by: Grouping,
    /// Whether to forecast the month.
    pub forecast: Forecast,
    /// The full days a forecast averages, at most.
    pub forecast_days: u32,
}

fn time(param: &'static str, value: Option<String>) -> Result<Option<i64>, Invalid> {
    value
        .map(|text| {
            parse_rfc3339(&text).ok_or_else(|| {
                Invalid::new(
                    param,
                    "invalid",
                    format!("{param} must be an RFC 3339 date-time"),
                )
            })
        })
        .transpose()
}

impl SpendQuery {
    /// Reads the query from its decoded `(key, value)` pairs; unknown keys
    /// are ignored, a repeated key takes its last value.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
        org_id: &str,
    ) -> Result<SpendQuery, Invalid> {
        let mut slots: [Option<String>; 9] = Default::default();
        const KEYS: [&str; 9] = [
            "entity",
            "currency",
            "item_type",
            "item_id",
            "from",
            "to",
            "group_by",
            "forecast",
            "forecast_days",
        ];
        for (key, value) in pairs {
            if let Some(i) = KEYS.iter().position(|k| *k == key) {
                slots[i] = Some(value);
            }
        }
        let [
            entity,
            currency,
            item_type,
            item_id,
            from,
            to,
            group_by,
            forecast,
            days,
        ] = slots;
        let named = entity.is_some();
        let entity = match entity {
            None => Subject {
                kind: Kind::Org,
                id: org_id.to_string(),
            },
            Some(text) => subject::parse_entity(&text, org_id).ok_or_else(|| {
                Invalid::new(
                    "entity",
                    "invalid",
                    "entity must be org, team:<id> or user:<id>",
                )
            })?,
        };
        if currency.as_deref().is_some_and(|c| !valid_currency(c)) {
            return Err(Invalid::new(
                "currency",
                "invalid",
                "currency must be three upper-case letters, an ISO 4217 code such as USD",
            ));
        }
        if item_type.as_deref().is_some_and(|t| !valid_event_type(t)) {
            return Err(Invalid::new(
                "item_type",
                "invalid",
                "item_type must be 1 to 128 visible ASCII characters",
            ));
        }
        match (&item_type, &item_id) {
            (None, Some(_)) => {
                return Err(Invalid::new(
                    "item_id",
                    "item_type_required",
                    "item_id needs item_type",
                ));
            }
            (_, Some(id)) if !valid_item_id(id) => {
                return Err(Invalid::new(
                    "item_id",
                    "invalid",
                    "item_id must be 1 to 256 characters without control characters",
                ));
            }
            _ => {}
        }
        let from = time("from", from)?;
        let to = time("to", to)?;
        let group_by = group_by
            .as_deref()
            .map_or(Ok(Grouping::default()), Grouping::parse)?;
        let forecast = match forecast.as_deref() {
            None => Forecast::Auto,
            Some("month") => Forecast::Month,
            Some("none") => Forecast::Off,
            Some(_) => {
                return Err(Invalid::new(
                    "forecast",
                    "invalid",
                    "forecast must be month or none (left out: when from and to cover the current month)",
                ));
            }
        };
        let (default_days, most_days) = FORECAST_DAYS;
        let forecast_days = match days {
            None => default_days,
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| (1..=most_days).contains(n))
                .ok_or_else(|| {
                    Invalid::new(
                        "forecast_days",
                        "invalid",
                        format!("forecast_days must be 1 to {most_days}"),
                    )
                })?,
        };
        Ok(SpendQuery {
            filter: Filter {
                entity,
                currency,
                item_type,
                item_id,
            },
            named,
            from,
            to,
            group_by,
            forecast,
            forecast_days,
        })
    }

    /// `from` and `to`, each defaulting to the current month's bounds in
    /// the org's calendar.
    pub fn range(&self, cal: &Calendar, now: i64) -> Result<(i64, i64), Invalid> {
        let (month_start, month_end) = cal.window(Unit::Month, now);
        let from = self.from.unwrap_or(month_start);
        let to = self.to.unwrap_or(month_end);
        if from >= to {
            return Err(Invalid::new(
                "to",
                "not_after_from",
                "to must be later than from",
            ));
        }
        Ok((from, to))
    }

    /// Whether the answer carries a forecast of the month holding `now`.
    pub fn forecasts(&self, cal: &Calendar, now: i64, from: i64, to: i64) -> bool {
        let (month_start, month_end) = cal.window(Unit::Month, now);
        match self.forecast {
            Forecast::Auto => from <= month_start && to >= month_end,
            Forecast::Month => true,
            Forecast::Off => false,
        }
    }
}

/// An item id: 1 to 256 characters without control characters.
pub fn valid_item_id(id: &str) -> bool {
    (1..=256).contains(&id.len()) && !id.chars().any(char::is_control)
}

/// One bucket: the calendar unit's first second, and the part of the unit
/// inside the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// `max(unit start, from)`.
    pub start: i64,
    /// `min(unit end, to)`.
    pub end: i64,
}

/// The `unit`s from `from` to `to` in the org's calendar, the first and
/// last cut to them; more than [`MAX_BUCKETS`] is `too_many_buckets`.
pub fn spans(cal: &Calendar, unit: Unit, from: i64, to: i64) -> Result<Vec<Span>, Invalid> {
    let mut spans = Vec::new();
    let mut t = from;
    while t < to {
        if spans.len() == MAX_BUCKETS {
            return Err(Invalid::new(
                "group_by",
                "too_many_buckets",
                format!(
                    "from and to span more than {MAX_BUCKETS} buckets: narrow them or take a longer unit"
                ),
            ));
        }
        let (_, next) = cal.window(unit, t);
        spans.push(Span {
            start: t,
            end: next.min(to),
        });
        t = next;
    }
    Ok(spans)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn query(text: &str) -> Result<SpendQuery, Invalid> {
        let pairs = text.split('&').filter(|p| !p.is_empty()).map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_string(), v.to_string())
        });
        SpendQuery::from_pairs(pairs, "org_1")
    }

    fn refusal(text: &str) -> (String, String) {
        let body: serde_json::Value =
            serde_json::from_slice(&query(text).unwrap_err().problem().to_json()).unwrap();
        assert_eq!(body["code"], "invalid_query");
        (
            body["errors"][0]["pointer"].as_str().unwrap().to_string(),
            body["errors"][0]["code"].as_str().unwrap().to_string(),
        )
    }

    pub(crate) fn at(text: &str) -> i64 {
        parse_rfc3339(text).unwrap()
    }

    #[test]
    fn without_an_entity_the_query_is_the_orgs_whole_month() {
        let q = query("").unwrap();
        assert_eq!(q.filter.entity.kind, Kind::Org);
        assert!(!q.named);
        let utc = Calendar::utc();
        let now = at("2026-11-17T10:00:00Z");
        let (from, to) = q.range(&utc, now).unwrap();
        assert_eq!(
            (from, to),
            (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"))
        );
        assert!(q.forecasts(&utc, now, from, to));
        // A range inside the month forecasts only when asked to.
        let part = query("from=2026-11-02T00:00:00Z").unwrap();
        let (from, to) = part.range(&utc, now).unwrap();
        assert!(!part.forecasts(&utc, now, from, to));
        let asked = query("from=2026-11-02T00:00:00Z&forecast=month").unwrap();
        assert!(asked.forecasts(&utc, now, from, to));
        let off = query("forecast=none").unwrap();
        assert!(!off.forecasts(&utc, now, at("2026-01-01T00:00:00Z"), i64::MAX));
    }

    #[test]
    fn group_by_is_a_list_with_one_time_unit_at_most() {
        let q = query("group_by=item,entity,week&entity=team:t1").unwrap();
        assert_eq!(q.group_by.names(), ["entity", "item", "week"]);
        assert_eq!(q.filter.entity.kind, Kind::Team);
        assert_eq!(
            refusal("group_by=day,month"),
            ("/group_by".into(), "one_time_unit".into())
        );
        assert_eq!(
            refusal("group_by=hour"),
            ("/group_by".into(), "invalid".into())
        );
    }

    #[test]
    fn bad_parameters_name_themselves() {
        for (text, pointer, code) in [
            ("entity=key:k1", "/entity", "invalid"),
            ("currency=usd", "/currency", "invalid"),
            ("item_id=x", "/item_id", "item_type_required"),
            ("from=yesterday", "/from", "invalid"),
            ("forecast=year", "/forecast", "invalid"),
            ("forecast_days=0", "/forecast_days", "invalid"),
            ("forecast_days=32", "/forecast_days", "invalid"),
        ] {
            assert_eq!(refusal(text), (pointer.into(), code.into()), "{text}");
        }
        let backwards = query("from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z").unwrap();
        let problem = backwards.range(&Calendar::utc(), 0).unwrap_err();
        assert_eq!(problem.code, "not_after_from");
    }

    #[test]
    fn buckets_follow_the_orgs_calendar_and_are_capped() {
        let berlin = Calendar::of("Europe/Berlin").unwrap();
        let from = at("2026-03-28T12:00:00Z");
        let to = at("2026-03-31T00:00:00Z");
        let days = spans(&berlin, Unit::Day, from, to).unwrap();
        // The 29th has 23 hours in Berlin: clocks go forward at 02:00.
        assert_eq!(
            days[0],
            Span {
                start: from,
                end: at("2026-03-28T23:00:00Z")
            }
        );
        assert_eq!(days[1].end - days[1].start, 23 * 3600);
        assert_eq!(days.last().unwrap().end, to);
        let years = spans(&Calendar::utc(), Unit::Day, 0, 4 * 365 * 86_400);
        assert_eq!(years.unwrap_err().code, "too_many_buckets");
    }
}
