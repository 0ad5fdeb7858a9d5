//! One usage event of a batch, checked on its own before anything is
//! looked up: its attributes, its subject's shape, its time and its data.

use serde::Deserialize;

use crate::model::valid_event_type;
use crate::period::parse_rfc3339;
use crate::subject::{self, Subject};

/// The largest `data` of one event, as JSON.
const MAX_DATA_BYTES: usize = 16 * 1024;

/// One event as sent. Other CloudEvents attributes (extensions,
/// `datacontenttype`) are allowed and not kept.
#[derive(Deserialize)]
struct Event {
    id: String,
    source: String,
    #[serde(rename = "type")]
    event_type: String,
    subject: String,
    time: String,
    #[serde(default)]
    specversion: Option<String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// An event ready to store.
pub struct Checked {
    pub id: String,
    pub source: String,
    pub event_type: String,
    pub subject: Subject,
    pub occurred_at: i64,
    pub data: String,
}

fn visible(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len()) && !text.chars().any(char::is_control)
}

/// The event's own checks, before anything is looked up.
pub fn check(value: serde_json::Value) -> Result<Checked, (&'static str, String)> {
    let event: Event = serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        (
            "invalid_event",
            format!("the event is malformed: {message}"),
        )
    })?;
    if event.specversion.as_deref().is_some_and(|v| v != "1.0") {
        return Err(("invalid_specversion", "specversion must be 1.0".into()));
    }
    if !visible(&event.id, 256) {
        return Err(("invalid_id", "id must be 1 to 256 characters".into()));
    }
    if !visible(&event.source, 512) {
        return Err((
            "invalid_source",
            "source must be 1 to 512 characters".into(),
        ));
    }
    if !valid_event_type(&event.event_type) {
        return Err((
            "invalid_type",
            "type must be 1 to 128 visible ASCII characters".into(),
        ));
    }
    let subject = subject::parse(&event.subject).ok_or((
        "invalid_subject",
        "subject must be org:<id>, team:<id>, user:<id> or key:<id>".to_string(),
    ))?;
    let occurred_at = parse_rfc3339(&event.time).ok_or((
        "invalid_time",
        "time must be an RFC 3339 date-time".to_string(),
    ))?;
    let data = match event.data {
        None => "{}".to_string(),
        Some(data @ serde_json::Value::Object(_)) => data.to_string(),
        Some(_) => return Err(("invalid_data", "data must be a JSON object".into())),
    };
    if data.len() > MAX_DATA_BYTES {
        return Err((
            "invalid_data",
            format!("data may be at most {MAX_DATA_BYTES} bytes as JSON"),
        ));
    }
    Ok(Checked {
        id: event.id,
        source: event.source,
        event_type: event.event_type,
        subject,
        occurred_at,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> serde_json::Value {
        json!({"id": "e1", "source": "app", "type": "llm.call", "subject": "user:usr_1",
               "time": "2026-01-01T00:00:00Z", "data": {"tokens": 5}, "traceparent": "x"})
    }

    fn code(value: serde_json::Value) -> &'static str {
        check(value).err().map_or("ok", |(code, _)| code)
    }

    #[test]
    fn a_well_formed_event_passes_with_its_extensions() {
        assert_eq!(code(event()), "ok");
    }

    #[test]
    fn each_malformed_attribute_has_its_code() {
        let with = |key: &str, value: serde_json::Value| {
            let mut e = event();
            e[key] = value;
            e
        };
        assert_eq!(code(json!([1])), "invalid_event");
        assert_eq!(code(with("id", json!(""))), "invalid_id");
        assert_eq!(code(with("source", json!(7))), "invalid_event");
        assert_eq!(code(with("type", json!("a b"))), "invalid_type");
        assert_eq!(code(with("subject", json!("usr_1"))), "invalid_subject");
        assert_eq!(code(with("time", json!("yesterday"))), "invalid_time");
        assert_eq!(code(with("data", json!([1]))), "invalid_data");
        assert_eq!(
            code(with("specversion", json!("0.3"))),
            "invalid_specversion"
        );
    }
}
