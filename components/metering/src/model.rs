//! Meters and quotas as stored and shown, and the bodies that create them.

use gatehouse_http::FieldError;
use gatehouse_http::json::Validate;
use serde::{Deserialize, Serialize};

use crate::period::Period;

/// How a meter folds its events' values into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// How many events.
    Count,
    /// The sum of the value.
    Sum,
    /// The largest value.
    Max,
    /// How many distinct values.
    UniqueCount,
    /// The value of the newest event.
    Latest,
}

impl Aggregation {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Count => "count",
            Aggregation::Sum => "sum",
            Aggregation::Max => "max",
            Aggregation::UniqueCount => "unique_count",
            Aggregation::Latest => "latest",
        }
    }

    /// From the stored name.
    pub fn parse(name: &str) -> Option<Aggregation> {
        [
            Aggregation::Count,
            Aggregation::Sum,
            Aggregation::Max,
            Aggregation::UniqueCount,
            Aggregation::Latest,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }

    /// Whether units of this meter add up, so a quota can count them:
    /// a maximum or a latest value cannot be consumed.
    pub fn is_additive(self) -> bool {
        matches!(self, Aggregation::Count | Aggregation::Sum)
    }
}

/// The most group-by dimensions a meter takes.
pub const MAX_GROUP_BY: usize = 8;
/// The most segments a data path has.
const MAX_PATH_SEGMENTS: usize = 8;

/// A meter key: a lower-case slug of 1 to 64 characters.
pub fn valid_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A dotted path into event data (`tokens.input`): 1 to 8 names of
/// letters, digits, `_` and `-`.
pub fn valid_path(path: &str) -> bool {
    let segments: Vec<&str> = path.split('.').collect();
    segments.len() <= MAX_PATH_SEGMENTS
        && segments.iter().all(|s| {
            (1..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// An event type (CloudEvents `type`): 1 to 128 visible ASCII characters.
pub fn valid_event_type(event_type: &str) -> bool {
    (1..=128).contains(&event_type.len()) && event_type.bytes().all(|b| b.is_ascii_graphic())
}

/// A meter as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Meter {
    /// Its key, unique in the org.
    pub key: String,
    /// The event type it counts.
    pub event_type: String,
    /// How it aggregates.
    pub aggregation: Aggregation,
    /// Where the value is in the event data; none for count.
    pub value_path: Option<String>,
    /// Data paths usage is grouped by.
    pub group_by: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// `POST /v1/meters`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMeter {
    pub key: String,
    pub event_type: String,
    pub aggregation: Aggregation,
    #[serde(default)]
    pub value_path: Option<String>,
    #[serde(default)]
    pub group_by: Vec<String>,
}

impl Validate for CreateMeter {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if !valid_key(&self.key) {
            errors.push(FieldError::new(
                "/key",
                "invalid",
                "key must be 1 to 64 lower-case letters, digits, _ or -, starting with a letter or digit",
            ));
        }
        if !valid_event_type(&self.event_type) {
            errors.push(FieldError::new(
                "/event_type",
                "invalid",
                "event_type must be 1 to 128 visible ASCII characters",
            ));
        }
        match (&self.value_path, self.aggregation) {
            (None, Aggregation::Count) => {}
            (None, _) => errors.push(FieldError::new(
                "/value_path",
                "required",
                "value_path is required unless the aggregation is count",
            )),
            (Some(path), _) if !valid_path(path) => errors.push(FieldError::new(
                "/value_path",
                "invalid",
                "value_path must be a dotted path of 1 to 8 names (letters, digits, _ or -)",
            )),
            (Some(_), _) => {}
        }
        if self.group_by.len() > MAX_GROUP_BY {
            errors.push(FieldError::new(
                "/group_by",
                "too_many",
                format!("group_by takes at most {MAX_GROUP_BY} paths"),
            ));
        }
        for (i, path) in self.group_by.iter().enumerate() {
            if !valid_path(path) {
                errors.push(FieldError::new(
                    format!("/group_by/{i}"),
                    "invalid",
                    "a group_by entry must be a dotted path of 1 to 8 names",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Whether a quota refuses or only counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// Refuses what would exceed the limit.
    Hard,
    /// Counts, never refuses.
    Soft,
}

impl Enforcement {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Hard => "hard",
            Enforcement::Soft => "soft",
        }
    }
}

/// The largest limit and amount: far beyond any real use, and small
/// enough that sums of them never overflow.
pub const MAX_UNITS: i64 = 1_000_000_000_000_000;

/// A quota as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Quota {
    /// `quo_…`.
    pub id: String,
    /// `org:<id>`, `team:<id>` or `user:<id>`.
    pub entity: String,
    /// The meter's key.
    pub meter: String,
    /// Units per period.
    pub limit: i64,
    /// How long a counter runs.
    pub period: Period,
    /// Hard or soft.
    pub enforcement: Enforcement,
    /// Unix seconds.
    pub created_at: i64,
}

/// `POST /v1/quotas`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateQuota {
    pub entity: String,
    pub meter: String,
    pub limit: i64,
    pub period: Period,
    #[serde(default = "hard")]
    pub enforcement: Enforcement,
}

fn hard() -> Enforcement {
    Enforcement::Hard
}

impl Validate for CreateQuota {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if !valid_key(&self.meter) {
            errors.push(FieldError::new(
                "/meter",
                "invalid",
                "meter must be a meter key",
            ));
        }
        if !(0..=MAX_UNITS).contains(&self.limit) {
            errors.push(FieldError::new(
                "/limit",
                "invalid_range",
                format!("limit must be 0 to {MAX_UNITS}"),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `POST /v1/quotas/check` and `/consume`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Use {
    pub subject: String,
    pub meter: String,
    #[serde(default = "one")]
    pub amount: i64,
}

fn one() -> i64 {
    1
}

impl Validate for Use {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if !self.subject.starts_with("user:") || crate::subject::parse(&self.subject).is_none() {
            errors.push(FieldError::new(
                "/subject",
                "invalid_subject",
                "subject must be user:<id>",
            ));
        }
        if !valid_key(&self.meter) {
            errors.push(FieldError::new(
                "/meter",
                "invalid",
                "meter must be a meter key",
            ));
        }
        if !(1..=MAX_UNITS).contains(&self.amount) {
            errors.push(FieldError::new(
                "/amount",
                "invalid_range",
                format!("amount must be 1 to {MAX_UNITS}"),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The event data a consume records: the amount at the meter's value
/// path (`{"tokens": {"input": 5}}`); nothing for a count meter, whose
/// one event is the unit.
pub fn recorded_data(meter: &Meter, amount: i64) -> serde_json::Value {
    let mut data = serde_json::Value::from(amount);
    let Some(path) = meter.value_path.as_deref() else {
        return serde_json::json!({});
    };
    for name in path.rsplit('.') {
        data = serde_json::json!({ name: data });
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_paths_are_plain() {
        assert!(valid_key("llm-tokens_2"));
        assert!(!valid_key("LLM") && !valid_key("-x") && !valid_key(""));
        assert!(valid_path("tokens.input") && valid_path("model"));
        assert!(!valid_path("tokens..input") && !valid_path("") && !valid_path("a.b c"));
    }

    #[test]
    fn a_value_meter_needs_its_path() {
        let meter = |aggregation, value_path: Option<&str>| CreateMeter {
            key: "m".into(),
            event_type: "llm.call".into(),
            aggregation,
            value_path: value_path.map(Into::into),
            group_by: vec![],
        };
        assert!(meter(Aggregation::Count, None).validate().is_ok());
        let errors = meter(Aggregation::Sum, None).validate().unwrap_err();
        assert_eq!(errors[0].pointer, "/value_path");
        assert!(meter(Aggregation::Sum, Some("tokens")).validate().is_ok());
    }

    fn meter(aggregation: Aggregation, value_path: Option<&str>) -> Meter {
        Meter {
            key: "m".into(),
            event_type: "llm.call".into(),
            aggregation,
            value_path: value_path.map(Into::into),
            group_by: vec![],
            created_at: 0,
        }
    }

    #[test]
    fn a_consume_records_its_amount_where_the_meter_reads_it() {
        let sum = meter(Aggregation::Sum, Some("tokens.input"));
        assert_eq!(
            recorded_data(&sum, 5),
            serde_json::json!({"tokens": {"input": 5}})
        );
        assert_eq!(
            recorded_data(&meter(Aggregation::Count, None), 1),
            serde_json::json!({})
        );
    }
}
