//! The wire of a mounted remote's exchange, plain code: header values,
//! the answer found in a JSON or SSE body, and when a remote is one of
//! the handshake revision.

use serde_json::Value;

use super::era::MODERN;
use super::rpc::{HEADER_MISMATCH, METHOD_NOT_FOUND, UNSUPPORTED_PROTOCOL_VERSION};

/// The id of the one request of an exchange.
pub const ID: i64 = 1;
/// 2026-07-28: a capability the client did not declare is required.
const MISSING_CAPABILITY: i64 = -32021;

/// `value` as a header value: plain when it is visible ASCII without
/// edge spaces, else the base64 sentinel.
pub fn header_value(value: &str) -> String {
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && value.trim() == value
        && !(value.starts_with("=?base64?") && value.ends_with("?="));
    if plain {
        value.to_string()
    } else {
        format!("=?base64?{}?=", base64(value.as_bytes()))
    }
}

pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether a modern request's answer says the remote only speaks the
/// handshake revision: a 400, 404 or 405 without an error of the modern
/// revision, or that revision's unsupported-version error naming no
/// modern version.
pub fn legacy_only(status: u16, message: Option<&Value>) -> bool {
    let error = message.and_then(|m| m.get("error"));
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_i64);
    match code {
        Some(UNSUPPORTED_PROTOCOL_VERSION) => {
            let supported = error
                .and_then(|e| e.pointer("/data/supported"))
                .and_then(Value::as_array);
            !supported.is_some_and(|s| s.iter().any(|v| v == MODERN))
        }
        Some(HEADER_MISMATCH) | Some(MISSING_CAPABILITY) => false,
        // A modern remote answers an unknown method 404 with -32601.
        Some(METHOD_NOT_FOUND) if status == 404 => false,
        // What a handshake-revision server answers a request outside a
        // session. Any other refusal (401, 403, 409, 429) may come from a
        // server that has taken the request: it is not sent again.
        _ => matches!(status, 400 | 404 | 405),
    }
}

/// The JSON-RPC response to request [`ID`] in a body of `content_type`
/// (JSON, or an SSE stream whose events carry messages).
pub fn response_in(content_type: &str, body: &[u8]) -> Option<Value> {
    let is_ours = |v: &Value| {
        v.get("id").and_then(Value::as_i64) == Some(ID)
            && (v.get("result").is_some() || v.get("error").is_some())
    };
    if content_type
        .to_ascii_lowercase()
        .starts_with("text/event-stream")
    {
        let text = String::from_utf8_lossy(body);
        let mut data = String::new();
        for line in text.lines().chain(std::iter::once("")) {
            if line.is_empty() {
                if let Ok(v) = serde_json::from_str::<Value>(&data)
                    && is_ours(&v)
                {
                    return Some(v);
                }
                data.clear();
            } else if let Some(rest) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            }
        }
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    // A response without an id (a transport-level error) is still the
    // answer to the one request sent.
    (is_ours(&value) || value.get("error").is_some()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_values_that_are_not_plain_ascii_are_base64_sentinels() {
        assert_eq!(header_value("forecast"), "forecast");
        assert_eq!(
            header_value("Hello, 世界"),
            "=?base64?SGVsbG8sIOS4lueVjA==?="
        );
        assert_eq!(header_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn the_response_is_found_in_json_and_in_an_event_stream() {
        let json_body = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#;
        assert_eq!(
            response_in("application/json", json_body).map(|v| v["result"].clone()),
            Some(json!({"tools": []}))
        );
        let sse = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nid: 7\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\n\ndata: \"result\":{}}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"ok\":true}}\n\n";
        assert_eq!(
            response_in("text/event-stream", sse.as_bytes()).map(|v| v["result"].clone()),
            Some(json!({"ok": true}))
        );
        assert_eq!(response_in("application/json", b"<html>"), None);
    }

    #[test]
    fn only_a_400_404_or_405_without_a_modern_error_means_a_handshake_remote() {
        assert!(legacy_only(400, None));
        assert!(legacy_only(405, None));
        // A refusal that may follow the request's work is not a reason to
        // send it again.
        for status in [401, 403, 409, 429] {
            assert!(!legacy_only(status, None), "{status}");
        }
        assert!(legacy_only(
            404,
            Some(&json!({"error": {"code": -32600, "message": "no session"}}))
        ));
        assert!(!legacy_only(200, None));
        assert!(!legacy_only(
            400,
            Some(&json!({"error": {"code": -32020, "message": "x"}}))
        ));
        assert!(!legacy_only(
            404,
            Some(&json!({"error": {"code": -32601, "message": "x"}}))
        ));
        let old = json!({"error": {"code": -32022, "message": "x", "data": {"supported": ["2025-06-18"]}}});
        assert!(legacy_only(400, Some(&old)));
        let new = json!({"error": {"code": -32022, "message": "x", "data": {"supported": ["2026-07-28"]}}});
        assert!(!legacy_only(400, Some(&new)));
    }
}
