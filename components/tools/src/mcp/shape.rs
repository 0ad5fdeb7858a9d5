//! The results this server answers, shaped per revision: a tool as
//! `tools/list` shows it, a call's outcome as a `CallToolResult`, the
//! `initialize` and `server/discover` results. A 2026-07-28 result carries
//! `resultType` and the server's identity in `_meta`; the list and
//! discovery results carry the caching hints that revision requires.

use serde_json::{Map, Value, json};

use super::era::{Era, LEGACY, SUPPORTED};

/// How long a client may keep a `tools/list` answer, in milliseconds: an
/// admin's change reaches agents within this.
pub const LIST_TTL_MS: u64 = 60_000;
/// How long a client may keep a `server/discover` answer.
pub const DISCOVER_TTL_MS: u64 = 3_600_000;

/// Who this server is, for `serverInfo`.
pub fn server_info(server: Option<&str>) -> Value {
    let name = match server {
        Some(server) => format!("gatehouse/{server}"),
        None => "gatehouse".into(),
    };
    json!({"name": name, "title": "Gatehouse tools", "version": env!("CARGO_PKG_VERSION")})
}

/// `result` completed for `era`: a 2026-07-28 result says it is complete
/// and who answered.
pub fn finish(era: Era, server: Option<&str>, mut result: Map<String, Value>) -> Value {
    if era == Era::Modern {
        result.insert("resultType".into(), json!("complete"));
        let meta = result
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(
                "io.modelcontextprotocol/serverInfo".into(),
                server_info(server),
            );
        }
    }
    Value::Object(result)
}

/// `value`'s members; none when it is no object.
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The capabilities: tools, and no notice of their changes (a stateless
/// server has no stream to send one on).
fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

/// The `initialize` result, whatever version the client asked for: the
/// one handshake version served is that version when asked for, and the
/// version to offer instead otherwise (the handshake's negotiation).
pub fn initialize(server: Option<&str>, instructions: Option<&str>) -> Value {
    let mut result = object(json!({
        "protocolVersion": LEGACY,
        "capabilities": capabilities(),
        "serverInfo": server_info(server),
    }));
    if let Some(text) = instructions.filter(|t| !t.is_empty()) {
        result.insert("instructions".into(), json!(text));
    }
    Value::Object(result)
}

/// The `server/discover` result.
pub fn discover(server: Option<&str>, instructions: Option<&str>) -> Value {
    let mut result = object(json!({
        "supportedVersions": SUPPORTED,
        "capabilities": capabilities(),
        "ttlMs": DISCOVER_TTL_MS,
        // Only callers with credentials get here.
        "cacheScope": "private",
    }));
    if let Some(text) = instructions.filter(|t| !t.is_empty()) {
        result.insert("instructions".into(), json!(text));
    }
    finish(Era::Modern, server, result)
}

/// A tool as `tools/list` shows it.
pub fn tool(name: &str, description: &str, input_schema: &Value) -> Value {
    json!({"name": name, "description": description, "inputSchema": input_schema})
}

/// The `tools/list` result: `tools`, and where the next page starts.
pub fn tool_list(era: Era, server: Option<&str>, tools: Vec<Value>, next: Option<String>) -> Value {
    let mut result = object(json!({"tools": tools}));
    if let Some(cursor) = next {
        result.insert("nextCursor".into(), json!(cursor));
    }
    if era == Era::Modern {
        result.insert("ttlMs".into(), json!(LIST_TTL_MS));
        // What a caller may run is the caller's own.
        result.insert("cacheScope".into(), json!("private"));
    }
    finish(era, server, result)
}

/// A call's outcome as a `CallToolResult`: the result as text (a string as
/// it is, anything else as JSON), and as `structuredContent` when it is a
/// JSON object.
pub fn call_result(era: Era, server: Option<&str>, result: &Value, is_error: bool) -> Value {
    let text = match result {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = object(json!({
        "content": [{"type": "text", "text": text}],
        "isError": is_error,
    }));
    if result.is_object() && !is_error {
        out.insert("structuredContent".into(), result.clone());
    }
    finish(era, server, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_object_result_is_text_and_structured_content() {
        let r = call_result(Era::Legacy, None, &json!({"temp": 21}), false);
        assert_eq!(
            r["content"],
            json!([{"type": "text", "text": "{\"temp\":21}"}])
        );
        assert_eq!(r["structuredContent"], json!({"temp": 21}));
        assert_eq!(r["isError"], false);
        assert!(r.get("resultType").is_none());
        let failed = call_result(
            Era::Modern,
            Some("ops"),
            &json!("the endpoint answered 500"),
            true,
        );
        assert_eq!(failed["content"][0]["text"], "the endpoint answered 500");
        assert!(failed.get("structuredContent").is_none());
        assert_eq!(failed["resultType"], "complete");
        assert_eq!(
            failed["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            "gatehouse/ops"
        );
        let list = call_result(Era::Legacy, None, &json!([1, 2]), false);
        assert!(list.get("structuredContent").is_none());
    }

    #[test]
    fn initialize_offers_the_handshake_version_it_serves() {
        let result = initialize(Some("ops"), Some("Ops tools"));
        assert_eq!(result["protocolVersion"], "2025-11-25");
        assert!(result["capabilities"]["tools"].is_object());
        assert_eq!(result["serverInfo"]["name"], "gatehouse/ops");
        assert_eq!(result["instructions"], "Ops tools");
    }

    #[test]
    fn modern_lists_carry_caching_hints_and_discovery_names_every_version() {
        let list = tool_list(Era::Modern, None, vec![], Some("b".into()));
        assert_eq!(
            (list["ttlMs"].as_u64(), list["cacheScope"].as_str()),
            (Some(LIST_TTL_MS), Some("private"))
        );
        assert_eq!(list["nextCursor"], "b");
        assert!(
            tool_list(Era::Legacy, None, vec![], None)
                .get("ttlMs")
                .is_none()
        );
        let d = discover(None, Some("Tools of acme"));
        assert_eq!(d["supportedVersions"], json!(["2026-07-28", "2025-11-25"]));
        assert_eq!(d["instructions"], "Tools of acme");
        assert_eq!(d["resultType"], "complete");
    }
}
