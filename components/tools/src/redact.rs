//! Secret values kept out of what a call answers: an endpoint that echoes
//! the request's headers (a debugging endpoint, an error page quoting
//! them) would otherwise hand the tool's secrets to whoever may run it.

use serde_json::Value;

/// What stands where a secret value was.
pub const MARK: &str = "[redacted]";

/// `text` with every occurrence of each of `secrets` replaced.
pub fn text(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), MARK))
}

/// `value` with every string (keys too) redacted.
pub fn value(value: Value, secrets: &[String]) -> Value {
    if secrets.iter().all(String::is_empty) {
        return value;
    }
    match value {
        Value::String(s) => Value::String(text(&s, secrets)),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| self::value(v, secrets)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (text(&k, secrets), self::value(v, secrets)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_are_replaced_wherever_they_appear() {
        let secrets = vec!["sk-123".to_string(), String::new()];
        let echoed =
            json!({"headers": {"authorization": "Bearer sk-123"}, "sk-123": [1, "a sk-123 b"]});
        assert_eq!(
            value(echoed, &secrets),
            json!({"headers": {"authorization": "Bearer [redacted]"}, "[redacted]": [1, "a [redacted] b"]})
        );
        assert_eq!(text("xsk-123x", &secrets), "x[redacted]x");
        assert_eq!(text("plain", &[]), "plain");
    }
}
