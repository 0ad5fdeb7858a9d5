//! The words of a notification: its kind's title, and its data's
//! `message` and other plain fields, one per line.

use serde_json::Value;

use crate::kinds::Kind;

/// The subject and plain-text body of a notification of `kind` with `data`.
pub fn render(kind: &Kind, data: &Value) -> (String, String) {
    let mut body = String::from(kind.title);
    body.push_str(".\n");
    if let Some(message) = data.get("message").and_then(Value::as_str) {
        body.push('\n');
        body.push_str(message);
        body.push('\n');
    }
    let details: Vec<String> = data
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| key.as_str() != "message")
        .filter_map(|(key, value)| match value {
            Value::String(s) => Some(format!("{key}: {s}")),
            Value::Number(n) => Some(format!("{key}: {n}")),
            Value::Bool(b) => Some(format!("{key}: {b}")),
            _ => None,
        })
        .collect();
    if !details.is_empty() {
        body.push('\n');
        body.push_str(&details.join("\n"));
        body.push('\n');
    }
    (kind.title.to_string(), body)
}

/// The text of an SMS: the title, and the message when there is one,
/// kept short.
pub fn short(kind: &Kind, data: &Value) -> String {
    let text = match data.get("message").and_then(Value::as_str) {
        Some(message) => format!("Gatehouse: {}. {message}", kind.title),
        None => format!("Gatehouse: {}.", kind.title),
    };
    text.chars().take(320).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_body_holds_the_title_the_message_and_the_plain_fields() {
        let kind = crate::kinds::kind("key.expiring").expect("kind");
        let (subject, body) = render(
            kind,
            &json!({"message": "Rotate it.", "key_id": "key_1", "expires_at": 5, "nested": {"x": 1}}),
        );
        assert_eq!(subject, "An API key of yours expires soon");
        assert!(body.starts_with("An API key of yours expires soon.\n\nRotate it.\n"));
        assert!(body.contains("key_id: key_1\n") && body.contains("expires_at: 5"));
        assert!(!body.contains("nested"));
        assert_eq!(
            short(kind, &json!({})),
            "Gatehouse: An API key of yours expires soon."
        );
    }
}
