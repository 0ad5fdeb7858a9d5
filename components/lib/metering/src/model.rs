//! Meters and quotas as stored and shown, and the bodies that create them.

use gatehouse_http::FieldError;
use gatehouse_http::json::Validate;
use serde::{Deserialize, Serialize};

use crate::period::Period;
use crate::subject::Kind;

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
    /// What its units cost; none when it is not priced.
    pub price: Option<crate::price::Price>,
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
    #[serde(default)]
    pub price: Option<crate::price::PriceBody>,
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
        if let Some(Err(price)) = self
            .price
            .as_ref()
            .map(|p| crate::price::Price::from_body(p, "/price"))
        {
            errors.extend(price);
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
    /// From the stored name.
    pub fn parse(name: &str) -> Enforcement {
        if name == "soft" {
            Enforcement::Soft
        } else {
            Enforcement::Hard
        }
    }

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

/// An item type or item id a use names: a slug or plain id of 1 to 128
/// characters. Types are the app's (`agent`, `tool`, `assistant`,
/// `prompt`, `model`) or the org's own.
pub fn valid_item(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'))
}

/// What a quota limits: a meter's units, or spend in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Measure {
    /// Units of the meter with this key.
    Meter(String),
    /// Spend in this currency, counted in billionths.
    Spend(String),
}

/// A quota as stored.
#[derive(Debug, Clone)]
pub struct Quota {
    /// `quo_…`.
    pub id: String,
    /// `org:<id>`, `team:<id>` or `user:<id>`.
    pub entity: String,
    /// What it limits.
    pub measure: Measure,
    /// The item type it is limited to; none for every item.
    pub item_type: Option<String>,
    /// The item it is limited to; none for every item of the type.
    pub item_id: Option<String>,
    /// Units (or billionths) per period.
    pub limit: i64,
    /// How long a counter runs.
    pub period: Period,
    /// Hard or soft.
    pub enforcement: Enforcement,
    /// Alert thresholds, as given.
    pub thresholds: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// `plan` for a quota the org's plan sets (billing keeps it); none
    /// for one an admin made.
    pub managed_by: Option<String>,
}

/// A quota's limit as shown: units as a number, spend as a decimal
/// string in the currency.
pub fn show_amount(measure: &Measure, amount: i64) -> serde_json::Value {
    match measure {
        Measure::Meter(_) => amount.into(),
        Measure::Spend(_) => crate::money::Amount::from_nanos(amount).to_string().into(),
    }
}

impl Serialize for Quota {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (meter, currency) = match &self.measure {
            Measure::Meter(key) => (Some(key), None),
            Measure::Spend(currency) => (None, Some(currency)),
        };
        serde_json::json!({
            "id": self.id,
            "entity": self.entity,
            "meter": meter,
            "currency": currency,
            "item_type": self.item_type,
            "item_id": self.item_id,
            "limit": show_amount(&self.measure, self.limit),
            "period": self.period.as_str(),
            "window_seconds": self.period.window_seconds(),
            "enforcement": self.enforcement,
            "thresholds": self.thresholds,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "managed_by": self.managed_by,
        })
        .serialize(serializer)
    }
}

/// `POST /v1/quotas`: `meter` or `currency`; `limit` a whole number of
/// units, or for spend a decimal string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateQuota {
    pub entity: String,
    #[serde(default)]
    pub meter: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub item_type: Option<String>,
    #[serde(default)]
    pub item_id: Option<String>,
    pub limit: serde_json::Value,
    pub period: String,
    #[serde(default)]
    pub window_seconds: Option<i64>,
    #[serde(default = "hard")]
    pub enforcement: Enforcement,
    #[serde(default = "no_thresholds")]
    pub thresholds: serde_json::Value,
}

fn hard() -> Enforcement {
    Enforcement::Hard
}

fn no_thresholds() -> serde_json::Value {
    serde_json::json!([])
}

/// A limit or an override's limit: whole units for a meter, a
/// non-negative decimal string for spend.
pub fn parse_limit(measure: &Measure, value: &serde_json::Value) -> Option<i64> {
    let limit = match measure {
        Measure::Meter(_) => value.as_i64()?,
        Measure::Spend(_) => crate::money::Amount::parse(value.as_str()?)?.nanos(),
    };
    (0..=MAX_UNITS).contains(&limit).then_some(limit)
}

impl CreateQuota {
    /// What it limits, once validated.
    pub fn measure(&self) -> Measure {
        match (&self.meter, &self.currency) {
            (Some(key), _) => Measure::Meter(key.clone()),
            (None, Some(currency)) => Measure::Spend(currency.clone()),
            (None, None) => Measure::Meter(String::new()),
        }
    }

    /// The period, once validated.
    pub fn period(&self) -> Period {
        Period::parse(&self.period, self.window_seconds).unwrap_or(Period::Lifetime)
    }
}

impl Validate for CreateQuota {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        match (&self.meter, &self.currency) {
            (Some(key), None) if !valid_key(key) => errors.push(FieldError::new(
                "/meter",
                "invalid",
                "meter must be a meter key",
            )),
            (None, Some(currency)) if !crate::money::valid_currency(currency) => {
                errors.push(FieldError::new(
                    "/currency",
                    "invalid",
                    "currency must be an ISO 4217 code such as USD",
                ))
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => errors.push(FieldError::new(
                "/meter",
                "meter_or_currency",
                "a quota limits either a meter (meter) or spend (currency): give exactly one",
            )),
        }
        if errors.is_empty() && parse_limit(&self.measure(), &self.limit).is_none() {
            let message = match self.measure() {
                Measure::Meter(_) => format!("limit must be a whole number 0 to {MAX_UNITS}"),
                Measure::Spend(_) => {
                    "limit must be a non-negative decimal string such as \"25.00\"".to_string()
                }
            };
            errors.push(FieldError::new("/limit", "invalid_range", message));
        }
        if Period::parse(&self.period, self.window_seconds).is_none() {
            errors.push(FieldError::new(
                "/period",
                "invalid",
                format!(
                    "period must be day, week, month, lifetime, or rolling with window_seconds {} to {}",
                    crate::period::ROLLING_WINDOWS.start(),
                    crate::period::ROLLING_WINDOWS.end()
                ),
            ));
        }
        if self.item_type.as_deref().is_some_and(|t| !valid_item(t)) {
            errors.push(FieldError::new(
                "/item_type",
                "invalid",
                "item_type must be 1 to 128 letters, digits or _ - . : /",
            ));
        }
        match (&self.item_type, &self.item_id) {
            (_, Some(id)) if !valid_item(id) => errors.push(FieldError::new(
                "/item_id",
                "invalid",
                "item_id must be 1 to 128 letters, digits or _ - . : /",
            )),
            (None, Some(_)) => errors.push(FieldError::new(
                "/item_id",
                "needs_item_type",
                "item_id needs its item_type",
            )),
            _ => {}
        }
        if let Err(more) = crate::alerts::parse_thresholds(&self.thresholds) {
            errors.extend(more);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `PATCH /v1/quotas/{id}`: a new limit, enforcement or thresholds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchQuota {
    #[serde(default)]
    pub limit: Option<serde_json::Value>,
    #[serde(default)]
    pub enforcement: Option<Enforcement>,
    #[serde(default)]
    pub thresholds: Option<serde_json::Value>,
}

impl Validate for PatchQuota {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        match &self.thresholds {
            Some(t) => crate::alerts::parse_thresholds(t).map(|_| ()),
            None => Ok(()),
        }
    }
}

/// `POST /v1/quotas/{id}/overrides`: a limit in place of the quota's own
/// until `expires_at` (RFC 3339) or for `ttl_seconds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOverride {
    pub limit: serde_json::Value,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The longest an override lasts: a year.
pub const MAX_OVERRIDE_SECONDS: i64 = 366 * 86_400;

impl Validate for CreateOverride {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        match (&self.expires_at, self.ttl_seconds) {
            (Some(at), None) if crate::period::parse_rfc3339(at).is_none() => {
                errors.push(FieldError::new(
                    "/expires_at",
                    "invalid",
                    "expires_at must be an RFC 3339 time",
                ))
            }
            (None, Some(ttl)) if !(1..=MAX_OVERRIDE_SECONDS).contains(&ttl) => {
                errors.push(FieldError::new(
                    "/ttl_seconds",
                    "invalid_range",
                    format!("ttl_seconds must be 1 to {MAX_OVERRIDE_SECONDS}"),
                ))
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => errors.push(FieldError::new(
                "/expires_at",
                "expiry_required",
                "an override needs exactly one of expires_at and ttl_seconds",
            )),
        }
        if self
            .reason
            .as_deref()
            .is_some_and(|r| r.chars().count() > 500)
        {
            errors.push(FieldError::new(
                "/reason",
                "too_long",
                "reason takes at most 500 characters",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `POST /v1/quotas/check` and `/consume`: a use of `amount` units of a
/// meter by a member (`user:<id>`) or one of the org's keys (`key:<id>`,
/// counted for the key's owner), optionally of one item.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Use {
    pub subject: String,
    pub meter: String,
    #[serde(default = "one")]
    pub amount: i64,
    #[serde(default)]
    pub item_type: Option<String>,
    #[serde(default)]
    pub item_id: Option<String>,
}

fn one() -> i64 {
    1
}

/// Checks a use's item fields.
pub fn item_errors(item_type: Option<&str>, item_id: Option<&str>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if item_type.is_some_and(|t| !valid_item(t)) {
        errors.push(FieldError::new(
            "/item_type",
            "invalid",
            "item_type must be 1 to 128 letters, digits or _ - . : /",
        ));
    }
    if item_id.is_some_and(|t| !valid_item(t)) {
        errors.push(FieldError::new(
            "/item_id",
            "invalid",
            "item_id must be 1 to 128 letters, digits or _ - . : /",
        ));
    }
    if item_id.is_some() && item_type.is_none() {
        errors.push(FieldError::new(
            "/item_id",
            "needs_item_type",
            "item_id needs its item_type",
        ));
    }
    errors
}

impl Validate for Use {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let subject = crate::subject::parse(&self.subject);
        if !subject.is_some_and(|s| matches!(s.kind, Kind::User | Kind::Key)) {
            errors.push(FieldError::new(
                "/subject",
                "invalid_subject",
                "subject must be user:<id> or key:<id>",
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
        errors.extend(item_errors(
            self.item_type.as_deref(),
            self.item_id.as_deref(),
        ));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The event data a consume records: the amount at the meter's value
/// path (`{"tokens": {"input": 5}}`), nothing for a count meter (whose
/// one event is the unit), and the item when the use named one
/// (`item_type`, `item_id` at the top level).
pub fn recorded_data(
    meter: &Meter,
    amount: i64,
    item_type: Option<&str>,
    item_id: Option<&str>,
) -> serde_json::Value {
    let mut data = match meter.value_path.as_deref() {
        Some(path) => {
            let mut data = serde_json::Value::from(amount);
            for name in path.rsplit('.') {
                data = serde_json::json!({ name: data });
            }
            data
        }
        None => serde_json::json!({}),
    };
    if let Some(object) = data.as_object_mut() {
        for (key, value) in [("item_type", item_type), ("item_id", item_id)] {
            if let Some(value) = value
                && !object.contains_key(key)
            {
                object.insert(key.to_string(), value.into());
            }
        }
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
            price: None,
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
            price: None,
            created_at: 0,
        }
    }

    #[test]
    fn a_consume_records_its_amount_where_the_meter_reads_it() {
        let sum = meter(Aggregation::Sum, Some("tokens.input"));
        assert_eq!(
            recorded_data(&sum, 5, None, None),
            serde_json::json!({"tokens": {"input": 5}})
        );
        assert_eq!(
            recorded_data(
                &meter(Aggregation::Count, None),
                1,
                Some("agent"),
                Some("a1")
            ),
            serde_json::json!({"item_type": "agent", "item_id": "a1"})
        );
    }
}
