//! JSON-RPC 2.0 as MCP uses it: one message a POST (the 2025-06-18
//! revision dropped batches and neither later revision brought them back,
//! so an array is an invalid request), request ids that are strings or
//! integers and never `null`, params that are an object. Errors carry the
//! HTTP status the Streamable HTTP transport answers them with.

use serde_json::{Map, Value, json};

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a JSON-RPC request.
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Wrong params (an unknown tool, arguments failing its schema).
pub const INVALID_PARAMS: i64 = -32602;
/// A fault of the server.
pub const INTERNAL_ERROR: i64 = -32603;
/// 2026-07-28: the HTTP headers do not match the body, or are missing.
pub const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: the requested protocol version is not served here.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// One message the client sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request, which gets an answer.
    Request(Request),
    /// A notification: `202`, no body.
    Notification {
        /// Its method.
        method: String,
    },
    /// A client's answer to a request of the server's; this server sends
    /// none, so it is accepted and dropped.
    Response,
}

/// A request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// A string or an integer.
    pub id: Value,
    /// The method.
    pub method: String,
    /// The params (none: empty).
    pub params: Map<String, Value>,
}

impl Request {
    /// The string param `name`, if it is one.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }

    /// `params._meta[key]`.
    pub fn meta(&self, key: &str) -> Option<&Value> {
        self.params.get("_meta").and_then(|m| m.get(key))
    }
}

/// A JSON-RPC error, with the HTTP status that carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The request's id; `null` when it could not be read.
    pub id: Value,
    /// The code.
    pub code: i64,
    /// For people.
    pub message: String,
    /// More, for programs.
    pub data: Option<Value>,
    /// The HTTP status of the answer.
    pub status: u16,
}

impl RpcError {
    /// An error answered `200`, as JSON-RPC errors of a served request are.
    pub fn new(id: Value, code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            id,
            code,
            message: message.into(),
            data: None,
            status: 200,
        }
    }

    /// The same error answered with `status`.
    pub fn status(mut self, status: u16) -> RpcError {
        self.status = status;
        self
    }

    /// The same error with `data`.
    pub fn data(mut self, data: Value) -> RpcError {
        self.data = Some(data);
        self
    }

    /// The answer's body.
    pub fn to_json(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({"jsonrpc": "2.0", "id": self.id, "error": error})
    }
}

/// A result's answer body.
pub fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn invalid(id: Value, why: &str) -> RpcError {
    RpcError::new(id, INVALID_REQUEST, format!("Invalid Request: {why}")).status(400)
}

/// The message in a POST body.
pub fn parse(body: &[u8]) -> Result<Message, RpcError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| RpcError::new(Value::Null, PARSE_ERROR, "Parse error").status(400))?;
    let object = match value {
        Value::Object(object) => object,
        Value::Array(_) => {
            return Err(invalid(
                Value::Null,
                "one JSON-RPC message a request; batches are not part of MCP since 2025-06-18",
            ));
        }
        _ => return Err(invalid(Value::Null, "a JSON-RPC message is an object")),
    };
    // An id worth echoing: a string or an integer.
    let id = object
        .get("id")
        .filter(|id| id.is_string() || id.is_i64() || id.is_u64())
        .cloned();
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(
            id.unwrap_or(Value::Null),
            "\"jsonrpc\" must be \"2.0\"",
        ));
    }
    let Some(method) = object.get("method") else {
        let answers = object.contains_key("result") || object.contains_key("error");
        return if answers && id.is_some() {
            Ok(Message::Response)
        } else {
            Err(invalid(id.unwrap_or(Value::Null), "no \"method\""))
        };
    };
    let Some(method) = method.as_str().map(str::to_string) else {
        return Err(invalid(id.unwrap_or(Value::Null), "\"method\" is a string"));
    };
    let params = match object.get("params") {
        None => Map::new(),
        Some(Value::Object(params)) => params.clone(),
        Some(_) => {
            return Err(invalid(
                id.unwrap_or(Value::Null),
                "\"params\" is an object",
            ));
        }
    };
    match (object.get("id"), id) {
        (None, _) => Ok(Message::Notification { method }),
        (Some(_), Some(id)) => Ok(Message::Request(Request { id, method, params })),
        (Some(_), None) => Err(invalid(
            Value::Null,
            "a request's \"id\" is a string or an integer, never null",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(body: &str) -> (i64, u16, Value) {
        let e = parse(body.as_bytes()).expect_err("an error");
        (e.code, e.status, e.id)
    }

    #[test]
    fn requests_notifications_and_answers_are_told_apart() {
        let request =
            parse(br#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{"cursor":"x"}}"#);
        let Ok(Message::Request(request)) = request else {
            panic!("a request: {request:?}");
        };
        assert_eq!(request.text("cursor"), Some("x"));
        assert_eq!(request.id, json!("a"));
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification {
                method: "notifications/initialized".into()
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#),
            Ok(Message::Response)
        );
    }

    #[test]
    fn malformed_messages_get_the_json_rpc_codes() {
        assert_eq!(error_of("{nope"), (PARSE_ERROR, 400, Value::Null));
        let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#;
        assert_eq!(error_of(batch), (INVALID_REQUEST, 400, Value::Null));
        assert_eq!(
            error_of(r#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#),
            (INVALID_REQUEST, 400, json!(7))
        );
        assert_eq!(
            error_of(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).0,
            INVALID_REQUEST
        );
        assert_eq!(
            error_of(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#).0,
            INVALID_REQUEST
        );
        assert_eq!(error_of("{}").0, INVALID_REQUEST);
    }

    #[test]
    fn an_error_answer_echoes_the_id_and_carries_its_data() {
        let e = RpcError::new(json!(5), INVALID_PARAMS, "Unknown tool: x").data(json!({"a": 1}));
        assert_eq!(
            e.to_json(),
            json!({"jsonrpc": "2.0", "id": 5, "error": {"code": -32602, "message": "Unknown tool: x", "data": {"a": 1}}})
        );
    }
}
