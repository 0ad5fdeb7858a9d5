//! Which protocol revision a request speaks, and whether its headers say
//! the same as its body.
//!
//! Two revisions are served on the same endpoint (the 2026-07-28
//! revision calls such a server dual-era):
//!
//! - 2026-07-28 ("modern"): no handshake; every request names its version
//!   in `params._meta["io.modelcontextprotocol/protocolVersion"]`, repeats
//!   it in `MCP-Protocol-Version`, and mirrors its method in `Mcp-Method`
//!   (and a `tools/call`'s tool in `Mcp-Name`). A header missing or
//!   differing from the body is `HeaderMismatch` (-32020, HTTP 400); a
//!   version not served is `UnsupportedProtocolVersion` (-32022, HTTP 400,
//!   with the versions that are).
//! - 2025-11-25 ("legacy"): `initialize` negotiates the version (a client
//!   asking for one not served is offered 2025-11-25), then every request
//!   carries `MCP-Protocol-Version`. Nothing of the handshake is kept:
//!   the header is the whole state, so any instance answers any request.
//!
//! A request without the header and without `_meta`'s version would be,
//! per both revisions, a 2025-03-26 client, which is not served: it is
//! refused as a missing header.

use serde_json::{Value, json};

use super::rpc::{HEADER_MISMATCH, RpcError, UNSUPPORTED_PROTOCOL_VERSION};

/// The stateless revision.
pub const MODERN: &str = "2026-07-28";
/// The handshake revision.
pub const LEGACY: &str = "2025-11-25";
/// Every version served, newest first.
pub const SUPPORTED: [&str; 2] = [MODERN, LEGACY];

/// `_meta`'s key for the request's protocol version.
pub const VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// How a request is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28: stateless, `server/discover`, `resultType`.
    Modern,
    /// 2025-11-25: `initialize`, `ping`.
    Legacy,
}

/// The MCP headers of a request, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a> {
    /// `MCP-Protocol-Version`.
    pub protocol_version: Option<&'a str>,
    /// `Mcp-Method`.
    pub method: Option<&'a str>,
    /// `Mcp-Name`.
    pub name: Option<&'a str>,
}

/// The error a version not served gets.
pub fn unsupported(id: &Value, requested: &str) -> RpcError {
    RpcError::new(
        id.clone(),
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
    )
    .data(json!({"supported": SUPPORTED, "requested": requested}))
    .status(400)
}

fn mismatch(id: &Value, message: String) -> RpcError {
    RpcError::new(
        id.clone(),
        HEADER_MISMATCH,
        format!("Header mismatch: {message}"),
    )
    .status(400)
}

/// The era of a request with `id`, `method` and `params`, checked
/// against its `headers`.
pub fn of_request(
    headers: &Headers,
    id: &Value,
    method: &str,
    params: &serde_json::Map<String, Value>,
) -> Result<Era, RpcError> {
    let meta_version = params
        .get("_meta")
        .and_then(|m| m.get(VERSION_META))
        .map(|v| v.as_str().unwrap_or_default());
    let Some(version) = meta_version else {
        return legacy(headers, id, method);
    };
    match headers.protocol_version {
        None => {
            return Err(mismatch(
                id,
                "the MCP-Protocol-Version header is required".into(),
            ));
        }
        Some(header) if header != version => {
            return Err(mismatch(
                id,
                format!(
                    "MCP-Protocol-Version header value '{header}' does not match body value '{version}'"
                ),
            ));
        }
        Some(_) => {}
    }
    if version == LEGACY {
        // A handshake-era version named the modern way is still served by
        // that revision's rules.
        return Ok(Era::Legacy);
    }
    if version != MODERN {
        return Err(unsupported(id, version));
    }
    check_mirrors(headers, id, method, params)?;
    Ok(Era::Modern)
}

/// A request without `_meta`'s version: `initialize`, or a request after
/// it.
fn legacy(headers: &Headers, id: &Value, method: &str) -> Result<Era, RpcError> {
    if method == "initialize" {
        // The handshake itself negotiates; a header there says nothing.
        return Ok(Era::Legacy);
    }
    match headers.protocol_version {
        Some(LEGACY) => Ok(Era::Legacy),
        Some(MODERN) => Err(mismatch(
            id,
            format!("MCP-Protocol-Version is {MODERN} but the body's _meta names no version"),
        )),
        Some(other) => Err(unsupported(id, other)),
        None => Err(mismatch(
            id,
            "the MCP-Protocol-Version header is required (clients of 2025-03-26 and earlier are not served)"
                .into(),
        )),
    }
}

/// `Mcp-Method` and, for a call, `Mcp-Name` against the body.
fn check_mirrors(
    headers: &Headers,
    id: &Value,
    method: &str,
    params: &serde_json::Map<String, Value>,
) -> Result<(), RpcError> {
    match headers.method {
        None => return Err(mismatch(id, "the Mcp-Method header is required".into())),
        Some(header) if header != method => {
            return Err(mismatch(
                id,
                format!("Mcp-Method header value '{header}' does not match body value '{method}'"),
            ));
        }
        Some(_) => {}
    }
    let named = match method {
        "tools/call" | "prompts/get" => params.get("name"),
        "resources/read" => params.get("uri"),
        _ => return Ok(()),
    };
    let body = named.and_then(Value::as_str).unwrap_or_default();
    let Some(header) = headers.name else {
        return Err(mismatch(id, "the Mcp-Name header is required".into()));
    };
    match decode_sentinel(header) {
        Some(decoded) if decoded == body => Ok(()),
        Some(_) => Err(mismatch(
            id,
            format!("Mcp-Name header value '{header}' does not match body value '{body}'"),
        )),
        None => Err(mismatch(id, "the Mcp-Name header is malformed".into())),
    }
}

/// A header value as meant: `=?base64?…?=` decoded (UTF-8), else as it is.
pub fn decode_sentinel(value: &str) -> Option<String> {
    match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        Some(encoded) => String::from_utf8(base64(encoded)?).ok(),
        None => Some(value.to_string()),
    }
}

/// Standard base64, padded or not.
fn base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::rpc::HEADER_MISMATCH;
    use serde_json::Map;

    fn params(version: Option<&str>, name: Option<&str>) -> Map<String, Value> {
        let mut p = Map::new();
        if let Some(v) = version {
            p.insert(
                "_meta".into(),
                json!({VERSION_META: v, "io.modelcontextprotocol/clientCapabilities": {}}),
            );
        }
        if let Some(n) = name {
            p.insert("name".into(), json!(n));
        }
        p
    }

    fn code(r: Result<Era, RpcError>) -> (i64, u16) {
        r.map(|_| (0, 0)).unwrap_or_else(|e| (e.code, e.status))
    }

    #[test]
    fn a_modern_request_must_mirror_its_version_method_and_tool_in_headers() {
        let id = json!(1);
        let full = Headers {
            protocol_version: Some(MODERN),
            method: Some("tools/call"),
            name: Some("greet"),
        };
        let p = params(Some(MODERN), Some("greet"));
        assert_eq!(of_request(&full, &id, "tools/call", &p), Ok(Era::Modern));
        let encoded = Headers {
            name: Some("=?base64?Z3JlZXQ=?="),
            ..full
        };
        assert_eq!(of_request(&encoded, &id, "tools/call", &p), Ok(Era::Modern));
        for wrong in [
            Headers {
                protocol_version: None,
                ..full
            },
            Headers {
                method: Some("tools/list"),
                ..full
            },
            Headers {
                name: Some("other"),
                ..full
            },
            Headers { name: None, ..full },
        ] {
            assert_eq!(
                code(of_request(&wrong, &id, "tools/call", &p)),
                (HEADER_MISMATCH, 400)
            );
        }
    }

    #[test]
    fn versions_not_served_name_the_ones_that_are() {
        let id = json!("x");
        let headers = Headers {
            protocol_version: Some("1900-01-01"),
            method: Some("tools/list"),
            name: None,
        };
        let e = of_request(
            &headers,
            &id,
            "tools/list",
            &params(Some("1900-01-01"), None),
        )
        .expect_err("refused");
        assert_eq!((e.code, e.status), (UNSUPPORTED_PROTOCOL_VERSION, 400));
        assert_eq!(
            e.data,
            Some(json!({"supported": ["2026-07-28", "2025-11-25"], "requested": "1900-01-01"}))
        );
        // The legacy way of saying it: the header alone.
        let legacy = of_request(&headers, &id, "tools/list", &Map::new());
        assert_eq!(code(legacy), (UNSUPPORTED_PROTOCOL_VERSION, 400));
    }

    #[test]
    fn legacy_requests_follow_the_handshake_and_then_the_header() {
        let id = json!(1);
        let none = Headers::default();
        assert_eq!(
            of_request(&none, &id, "initialize", &Map::new()),
            Ok(Era::Legacy)
        );
        let after = Headers {
            protocol_version: Some(LEGACY),
            ..none
        };
        assert_eq!(
            of_request(&after, &id, "tools/list", &Map::new()),
            Ok(Era::Legacy)
        );
        assert_eq!(
            code(of_request(&none, &id, "tools/list", &Map::new())),
            (HEADER_MISMATCH, 400)
        );
    }

    #[test]
    fn base64_sentinels_decode_and_plain_values_stay() {
        assert_eq!(
            decode_sentinel("=?base64?SGVsbG8sIOS4lueVjA==?="),
            Some("Hello, 世界".into())
        );
        assert_eq!(decode_sentinel("us-west1"), Some("us-west1".into()));
        assert_eq!(decode_sentinel("=?base64?***?="), None);
    }
}
