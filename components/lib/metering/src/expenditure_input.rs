//! The records of `POST /v1/expenditure`, checked before anything is
//! looked up: each field's shape, every bad field of every record named by
//! its JSON pointer (`/amount` for one record, `/3/amount` in an array).

use gatehouse_http::FieldError;
use serde_json::{Map, Value};

use crate::expenditure_query::valid_item_id;
use crate::model::valid_event_type;
use crate::money::{Amount, valid_currency};
use crate::period::parse_rfc3339;
use crate::subject::{self, Subject};

/// The most records one request carries.
pub const MAX_RECORDS: usize = 1000;
/// How far ahead of the server's clock a record's time may be (the
/// writer's clock may run a little fast).
pub const MAX_CLOCK_SKEW: i64 = 300;
/// The largest amount one record takes, either way: 100 million in the
/// currency. Sums of many stay exact (they are summed as whole units and
/// billionths apart) and quota counters saturate far below overflow.
pub const MAX_RECORD_NANOS: i64 = 100_000_000 * 1_000_000_000;

/// The fields a record may have.
const FIELDS: [&str; 7] = [
    "entity",
    "amount",
    "currency",
    "item_type",
    "item_id",
    "timestamp",
    "id",
];

/// A record ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Whose spend: the org, a team or a member (not yet known to belong).
    pub entity: Subject,
    /// How much; negative for a refund or a credit.
    pub amount: Amount,
    /// In which currency.
    pub currency: String,
    /// On what kind of item.
    pub item_type: Option<String>,
    /// On which item.
    pub item_id: Option<String>,
    /// When it was spent.
    pub occurred_at: i64,
    /// The writer's own id for it: a re-sent id is a duplicate.
    pub external_id: Option<String>,
}

/// The body's records: one object, or an array of them. The pointer of
/// record `i` is `""` for an object and `/i` in an array.
pub fn records(body: Value) -> Result<Vec<(String, Value)>, FieldError> {
    match body {
        Value::Array(items) if items.len() > MAX_RECORDS => Err(FieldError::new(
            "",
            "too_many_records",
            format!("send at most {MAX_RECORDS} records per request"),
        )),
        Value::Array(items) => Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, item)| (format!("/{i}"), item))
            .collect()),
        object @ Value::Object(_) => Ok(vec![(String::new(), object)]),
        _ => Err(FieldError::new(
            "",
            "invalid_type",
            "the body is a record (a JSON object) or an array of records",
        )),
    }
}

fn text<'v>(
    record: &'v Map<String, Value>,
    at: &str,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'v str> {
    match record.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(_)) if field == "amount" => {
            errors.push(FieldError::new(
                format!("{at}/amount"),
                "invalid_type",
                "amount must be a decimal string such as \"0.30\", not a JSON number: numbers pass through floats, which cannot hold 0.1",
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                format!("{at}/{field}"),
                "invalid_type",
                format!("{field} must be a string"),
            ));
            None
        }
    }
}

fn required<'v>(
    value: Option<&'v str>,
    record: &Map<String, Value>,
    at: &str,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'v str> {
    if value.is_none() && matches!(record.get(field), None | Some(Value::Null)) {
        errors.push(FieldError::new(
            format!("{at}/{field}"),
            "required",
            format!("{field} is required"),
        ));
    }
    value
}

/// Checks one record at pointer `at`; the org's id stands for `org`, and
/// a record without a timestamp happened `now`.
pub fn check(value: &Value, at: &str, org_id: &str, now: i64) -> Result<Input, Vec<FieldError>> {
    let Some(record) = value.as_object() else {
        return Err(vec![FieldError::new(
            at,
            "invalid_type",
            "a record is a JSON object",
        )]);
    };
    let mut errors = Vec::new();
    for key in record.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errors.push(FieldError::new(
            format!("{at}/{key}"),
            "unknown_field",
            format!("unknown field {key}"),
        ));
    }
    let entity = text(record, at, "entity", &mut errors);
    let entity = required(entity, record, at, "entity", &mut errors).and_then(|e| {
        let parsed = subject::parse_entity(e, org_id);
        if parsed.is_none() {
            errors.push(FieldError::new(
                format!("{at}/entity"),
                "invalid_entity",
                "entity must be org, team:<id> or user:<id>",
            ));
        }
        parsed
    });
    let amount = text(record, at, "amount", &mut errors);
    let amount = required(amount, record, at, "amount", &mut errors).and_then(|a| {
        let amount = Amount::read(a)
            .map_err(|e| {
                errors.push(FieldError::new(
                    format!("{at}/amount"),
                    e.code(),
                    e.message("amount"),
                ))
            })
            .ok()?;
        if amount.nanos().unsigned_abs() > MAX_RECORD_NANOS.unsigned_abs() {
            errors.push(FieldError::new(
                format!("{at}/amount"),
                "out_of_range",
                "amount may be at most 100000000 either way",
            ));
            return None;
        }
        Some(amount)
    });
    let currency = text(record, at, "currency", &mut errors);
    let currency = required(currency, record, at, "currency", &mut errors).filter(|c| {
        let valid = valid_currency(c);
        if !valid {
            errors.push(FieldError::new(
                format!("{at}/currency"),
                "invalid_currency",
                "currency must be three upper-case letters, an ISO 4217 code such as USD",
            ));
        }
        valid
    });
    let item_type = text(record, at, "item_type", &mut errors);
    if item_type.is_some_and(|t| !valid_event_type(t)) {
        errors.push(FieldError::new(
            format!("{at}/item_type"),
            "invalid",
            "item_type must be 1 to 128 visible ASCII characters",
        ));
    }
    let item_id = text(record, at, "item_id", &mut errors);
    match (item_type, item_id) {
        (None, Some(_)) => errors.push(FieldError::new(
            format!("{at}/item_id"),
            "item_type_required",
            "item_id needs item_type",
        )),
        (_, Some(id)) if !valid_item_id(id) => errors.push(FieldError::new(
            format!("{at}/item_id"),
            "invalid",
            "item_id must be 1 to 256 characters without control characters",
        )),
        _ => {}
    }
    let occurred_at = match text(record, at, "timestamp", &mut errors) {
        None => Some(now),
        Some(t) => {
            let parsed = parse_rfc3339(t);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    format!("{at}/timestamp"),
                    "invalid_time",
                    "timestamp must be an RFC 3339 date-time",
                ));
            } else if parsed.is_some_and(|t| t > now + MAX_CLOCK_SKEW) {
                // Spend is recorded once it happened; a time ahead of now
                // would count in periods that have not begun.
                errors.push(FieldError::new(
                    format!("{at}/timestamp"),
                    "in_the_future",
                    format!("timestamp may be at most {MAX_CLOCK_SKEW} seconds ahead of now"),
                ));
            }
            parsed
        }
    };
    let external_id = text(record, at, "id", &mut errors);
    if external_id
        .is_some_and(|id| id.is_empty() || id.len() > 256 || id.chars().any(char::is_control))
    {
        errors.push(FieldError::new(
            format!("{at}/id"),
            "invalid",
            "id must be 1 to 256 characters without control characters",
        ));
    }
    match (entity, amount, currency, occurred_at) {
        (Some(entity), Some(amount), Some(currency), Some(occurred_at)) if errors.is_empty() => {
            Ok(Input {
                entity,
                amount,
                currency: currency.to_string(),
                item_type: item_type.map(str::to_string),
                item_id: item_id.map(str::to_string),
                occurred_at,
                external_id: external_id.map(str::to_string),
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::Kind;
    use serde_json::json;

    fn codes(value: Value) -> Vec<(String, String)> {
        check(&value, "/2", "org_1", 100)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.pointer, e.code))
            .collect()
    }

    fn pair(pointer: &str, code: &str) -> (String, String) {
        (pointer.into(), code.into())
    }

    #[test]
    fn a_whole_record_reads_exactly() {
        let input = check(
            &json!({"entity": "team:t1", "amount": "0.10", "currency": "EUR",
                    "item_type": "model", "item_id": "gpt-x", "timestamp": "1970-01-01T00:01:40Z", "id": "inv-7"}),
            "",
            "org_1",
            5,
        )
        .unwrap();
        assert_eq!(input.entity.kind, Kind::Team);
        assert_eq!(input.amount.nanos(), 100_000_000);
        assert_eq!(input.occurred_at, 100);
        assert_eq!(input.external_id.as_deref(), Some("inv-7"));
        let bare = check(
            &json!({"entity": "org", "amount": "-2", "currency": "USD"}),
            "",
            "org_1",
            5,
        )
        .unwrap();
        assert_eq!((bare.entity.id.as_str(), bare.occurred_at), ("org_1", 5));
        assert_eq!(bare.amount.nanos(), -2_000_000_000);
    }

    #[test]
    fn every_bad_field_is_named_with_its_pointer() {
        assert_eq!(
            codes(json!({"entity": "key:k1", "amount": 0.1, "currency": "usd", "extra": 1})),
            vec![
                pair("/2/extra", "unknown_field"),
                pair("/2/entity", "invalid_entity"),
                pair("/2/amount", "invalid_type"),
                pair("/2/currency", "invalid_currency"),
            ]
        );
        assert_eq!(
            codes(json!({"amount": "1.0000000001", "item_id": "x", "timestamp": "now", "id": ""})),
            vec![
                pair("/2/entity", "required"),
                pair("/2/amount", "too_precise"),
                pair("/2/currency", "required"),
                pair("/2/item_id", "item_type_required"),
                pair("/2/timestamp", "invalid_time"),
                pair("/2/id", "invalid"),
            ]
        );
        assert_eq!(
            codes(json!({"entity": "org", "amount": "1e2", "currency": "USD", "item_type": "a b"})),
            vec![
                pair("/2/amount", "invalid_decimal"),
                pair("/2/item_type", "invalid")
            ]
        );
        assert_eq!(codes(json!("x")), vec![pair("/2", "invalid_type")]);
    }

    #[test]
    fn a_body_is_one_record_or_an_array_of_them() {
        let one = records(json!({"a": 1})).unwrap();
        assert_eq!(one[0].0, "");
        let many = records(json!([{}, {}])).unwrap();
        assert_eq!(many[1].0, "/1");
        assert_eq!(records(json!(7)).unwrap_err().code, "invalid_type");
        let too_many = Value::Array(vec![json!({}); MAX_RECORDS + 1]);
        assert_eq!(records(too_many).unwrap_err().code, "too_many_records");
    }
}
