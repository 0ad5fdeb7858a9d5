//! Mounted MCP servers: an org registers a remote MCP server (a Streamable
//! HTTP endpoint) as one of its MCP servers, with `remote` in place of
//! `tools`:
//!
//! ```json
//! {"name": "weather", "remote": {"url": "https://mcp.example.com/mcp",
//!   "headers": [{"name": "Authorization", "secret": "org/WEATHER_MCP"}],
//!   "timeout_ms": 10000}, "permission": "weather:tools"}
//! ```
//!
//! The remote is held to the rules of HTTP tools, checked by the same
//! code: its URL must be allowed by `tool_outbound_hosts` (private hosts
//! only with `tool_allow_private_hosts`), when it is written and again at
//! each call; a header names a sealed secret of the org, read when the
//! remote is called, and naming one takes the right to read it.
//!
//! `POST /v1/mcp-servers/{name}/$refresh` lists the remote's tools over
//! Streamable HTTP and keeps them; each is then offered, to callers with
//! `tools:run` (and the mount's `permission`, if it names one), as
//! `<mount>__<tool>` (tool names allow no dot) on `/v1/mcp` and on the
//! mount's own endpoint, and a `tools/call` of it is forwarded to the
//! remote. A remote tool whose joined name is no valid tool name (longer
//! than 64, other characters) is left out, and the refresh says so.

use gatehouse_auth::oidc::OutboundPolicy;
use gatehouse_http::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::{Config, HttpConfig};
use crate::model::{self, DESCRIPTION_MAX, Kind};
use crate::schema;

/// The most tools kept of one remote.
pub const TOOLS_MAX: usize = 100;

/// What joins a mount's name to its tools'.
pub const JOIN: &str = "__";

/// A remote's tool, as kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteTool {
    /// `<mount>__<tool>`: its name here.
    pub name: String,
    /// Its name on the remote.
    pub remote_name: String,
    /// Its description (at most 1024 characters kept).
    pub description: String,
    /// Its input schema as the remote gave it.
    pub input_schema: Value,
}

/// Headers the remote exchange itself sets.
fn reserved(header: &str) -> bool {
    let h = header.to_ascii_lowercase();
    h.starts_with("mcp-") || matches!(h.as_str(), "content-type" | "accept")
}

/// A mount's `remote` checked as an HTTP tool's configuration (a `POST`
/// to its URL): every failing field, pointers under `/remote`.
pub fn check_remote(value: &Value, policy: &OutboundPolicy) -> Result<HttpConfig, Vec<FieldError>> {
    let Some(object) = value.as_object() else {
        return Err(vec![FieldError::new(
            "/remote",
            "invalid",
            "remote is an object: url, headers, timeout_ms",
        )]);
    };
    let mut errors = Vec::new();
    for key in ["method", "body"] {
        if object.contains_key(key) {
            errors.push(FieldError::new(
                format!("/remote/{key}"),
                "invalid",
                "an MCP exchange is a POST of JSON-RPC; it takes no method or body",
            ));
        }
    }
    let mut with_method = object.clone();
    with_method.insert("method".into(), json!("POST"));
    let checked = Config::check(
        Kind::Http,
        &Value::Object(with_method),
        &model::empty_schema(),
        policy,
    );
    let config = match checked {
        Ok(Config::Http(config)) => Some(config),
        Ok(Config::Static(_)) => None,
        Err(e) => {
            errors.extend(e.into_iter().map(|mut e| {
                if let Some(rest) = e.pointer.strip_prefix("/config") {
                    e.pointer = format!("/remote{rest}");
                }
                e
            }));
            None
        }
    };
    if let Some(config) = &config {
        for (i, header) in config.headers.iter().enumerate() {
            if reserved(&header.name) {
                errors.push(FieldError::new(
                    format!("/remote/headers/{i}/name"),
                    "reserved_header",
                    "the MCP exchange sets this header itself",
                ));
            }
        }
    }
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(errors),
    }
}

/// A mount's remote as stored and answered: `url`, `headers`, `timeout_ms`.
pub fn stored(config: &HttpConfig) -> Value {
    json!({"url": config.url, "headers": config.headers, "timeout_ms": config.timeout_ms})
}

/// A stored remote read back as the configuration it was checked as.
pub fn config_of(stored: &Value) -> Option<HttpConfig> {
    let mut object = stored.as_object()?.clone();
    object.insert("method".into(), json!("POST"));
    match Config::parse(Kind::Http, &Value::Object(object)) {
        Ok(Config::Http(config)) => Some(config),
        _ => None,
    }
}

/// The mount and the remote tool a name `<mount>__<tool>` names.
pub fn split(name: &str) -> Option<(&str, &str)> {
    name.split_once(JOIN)
        .filter(|(mount, tool)| !mount.is_empty() && !tool.is_empty())
}

/// The tools of a `tools/list` answer's `tools`, kept for `mount`; and
/// the names left out (joined name not a tool name, or past the most).
pub fn tools_of(mount: &str, listed: &[Value]) -> (Vec<RemoteTool>, Vec<String>) {
    let mut kept: Vec<RemoteTool> = Vec::new();
    let mut skipped = Vec::new();
    for tool in listed {
        let Some(remote_name) = tool.get("name").and_then(Value::as_str) else {
            continue;
        };
        let name = format!("{mount}{JOIN}{remote_name}");
        let schema = tool
            .get("inputSchema")
            .filter(|s| s.is_object())
            .cloned()
            .unwrap_or_else(model::empty_schema);
        // A leading `_` would make the join ambiguous (`a___x` splits as
        // `a` and `_x`).
        let fits = model::valid_name(&name)
            && !remote_name.starts_with('_')
            && kept.len() < TOOLS_MAX
            && !kept.iter().any(|t| t.name == name)
            && schema.to_string().len() <= schema::SCHEMA_MAX;
        if !fits {
            skipped.push(remote_name.chars().take(200).collect());
            continue;
        }
        let description = tool
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(DESCRIPTION_MAX)
            .collect();
        kept.push(RemoteTool {
            name,
            remote_name: remote_name.to_string(),
            description,
            input_schema: schema,
        });
    }
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    (kept, skipped)
}

/// What a remote's `tools/call` result becomes here: its content, its
/// structured content and whether it failed, nothing else of the remote's
/// (no `_meta` of its own, no other fields).
pub fn relayed_call(result: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let content = result
        .get("content")
        .filter(|c| c.is_array())
        .cloned()
        .unwrap_or_else(|| json!([]));
    out.insert("content".into(), content);
    if let Some(structured) = result.get("structuredContent").filter(|s| !s.is_null()) {
        out.insert("structuredContent".into(), structured.clone());
    }
    let failed = result
        .get("isError")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    out.insert("isError".into(), json!(failed));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OutboundPolicy {
        OutboundPolicy::new("http://127.0.0.1:*", "true")
    }

    #[test]
    fn a_remote_is_checked_as_an_http_tools_request() {
        let ok = check_remote(
            &json!({"url": "http://127.0.0.1:9000/mcp",
                    "headers": [{"name": "Authorization", "secret": "org/MCP_TOKEN"}]}),
            &policy(),
        )
        .expect("a valid remote");
        assert_eq!(ok.secrets().collect::<Vec<_>>(), ["org/MCP_TOKEN"]);
        assert_eq!(stored(&ok)["url"], "http://127.0.0.1:9000/mcp");
        assert_eq!(config_of(&stored(&ok)), Some(ok));
        let errors = check_remote(
            &json!({"url": "http://169.254.169.254/mcp", "method": "GET",
                    "headers": [{"name": "Mcp-Method", "value": "x"}]}),
            &policy(),
        )
        .expect_err("refused");
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/remote/method"), "{pointers:?}");
        assert!(
            pointers.iter().any(|p| p.starts_with("/remote/url")),
            "{pointers:?}"
        );
        assert!(check_remote(&json!("http://x"), &policy()).is_err());
    }

    #[test]
    fn remote_tools_are_joined_to_the_mounts_name_and_misfits_left_out() {
        let listed = vec![
            json!({"name": "forecast", "description": "Weather.", "inputSchema": {"type": "object"}}),
            json!({"name": "has.dot", "inputSchema": {"type": "object"}}),
            json!({"name": "x".repeat(60)}),
            json!({"name": "alerts"}),
        ];
        let (kept, skipped) = tools_of("weather", &listed);
        let names: Vec<&str> = kept.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["weather__alerts", "weather__forecast"]);
        assert_eq!(kept[1].remote_name, "forecast");
        assert_eq!(kept[0].input_schema, model::empty_schema());
        assert_eq!(skipped.len(), 2);
        assert_eq!(split("weather__forecast"), Some(("weather", "forecast")));
        assert_eq!(split("weather"), None);
        assert_eq!(split("__x"), None);
    }

    #[test]
    fn a_relayed_result_keeps_content_structured_content_and_the_error_flag() {
        let relayed = relayed_call(&json!({"content": [{"type": "text", "text": "hi"}],
            "structuredContent": {"a": 1}, "isError": false, "_meta": {"x": 1}, "resultType": "complete"}));
        assert_eq!(
            Value::Object(relayed),
            json!({"content": [{"type": "text", "text": "hi"}], "structuredContent": {"a": 1}, "isError": false})
        );
        assert_eq!(relayed_call(&json!({}))["isError"], false);
    }
}
