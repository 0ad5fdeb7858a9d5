//! A client of a mounted remote MCP server over Streamable HTTP: one
//! request (`tools/list`, `tools/call`) answered, as a stateless
//! gateway would ask it.
//!
//! It speaks 2026-07-28 first (one POST: the version in `_meta` and
//! `MCP-Protocol-Version`, the method in `Mcp-Method`, a call's tool in
//! `Mcp-Name`). A remote that refuses that with a 4xx carrying no error
//! of that revision is a 2025-11-25 one (the revision's own fallback
//! rule): the handshake is run for the one request (`initialize`,
//! `notifications/initialized`, the request, then `DELETE` of the session
//! it may have opened). Answers are read as JSON or as an SSE stream.
//!
//! The URL is checked against the deployment's settings again before each
//! exchange, the headers' secrets are read at that moment, and no answer
//! shows a secret's value.

use std::time::Duration;

use bytes::Bytes;
use gatehouse_auth::tenant::Tenant;
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value, json};
use spin_sdk::http::FullBody;

use super::era::{LEGACY, MODERN, VERSION_META};
use super::shape::object;
use super::wire::{ID, header_value, legacy_only, response_in};
use crate::config::HttpConfig;
use crate::execute::{self, ANSWER_MAX};
use crate::{policy, redact};

/// Why a remote request has no result.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// It could not be asked, or did not answer as MCP: why, for people.
    Unreachable(String),
    /// It answered a JSON-RPC error.
    Rpc {
        /// The code.
        code: i64,
        /// The message (secrets redacted).
        message: String,
    },
}

/// One remote, ready to be asked.
pub struct Remote<'a> {
    config: &'a HttpConfig,
    headers: Vec<(String, String)>,
    secrets: Vec<String>,
}

/// What one POST answered.
struct Answer {
    status: u16,
    session: Option<String>,
    message: Option<Value>,
}

fn client_info() -> Value {
    json!({"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")})
}

impl<'a> Remote<'a> {
    /// The remote `config` names, its URL checked and its secrets read.
    pub async fn open(tenant: &Tenant<'_>, config: &'a HttpConfig) -> Result<Remote<'a>, Failure> {
        if let Err(refusal) = policy::tools().await.check(&config.url) {
            eprintln!(
                "tools: not calling the MCP server at {}: {refusal}",
                config.url
            );
            return Err(Failure::Unreachable(
                "this deployment's settings no longer allow the MCP server's URL (tool_outbound_hosts)"
                    .into(),
            ));
        }
        let (headers, secrets) = execute::headers(tenant, config)
            .await
            .map_err(Failure::Unreachable)?;
        Ok(Remote {
            config,
            headers,
            secrets,
        })
    }

    /// Whatever the remote answered, without the secrets it was sent.
    pub fn redact(&self, value: Value) -> Value {
        redact::value(value, &self.secrets)
    }

    fn limit(&self) -> Duration {
        Duration::from_millis(u64::from(self.config.timeout_ms))
    }

    /// The result of `method` with `params` (`name`, for a call, mirrored
    /// in `Mcp-Name`), within the remote's timeout.
    pub async fn request(
        &self,
        method: &str,
        params: Map<String, Value>,
        name: Option<&str>,
    ) -> Result<Value, Failure> {
        let limit = self.limit();
        match execute::within(limit, self.exchange(method, params, name)).await {
            Some(answer) => answer,
            None => Err(Failure::Unreachable(format!(
                "the MCP server did not answer within {} ms",
                self.config.timeout_ms
            ))),
        }
    }

    async fn exchange(
        &self,
        method: &str,
        params: Map<String, Value>,
        name: Option<&str>,
    ) -> Result<Value, Failure> {
        let mut modern = params.clone();
        modern.insert(
            "_meta".into(),
            json!({
                VERSION_META: MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": client_info(),
            }),
        );
        let mut headers = vec![
            ("mcp-protocol-version", MODERN.to_string()),
            ("mcp-method", method.to_string()),
        ];
        if let Some(name) = name {
            headers.push(("mcp-name", header_value(name)));
        }
        let answer = self.post(&message(method, modern), &headers).await?;
        if !legacy_only(answer.status, answer.message.as_ref()) {
            return self.outcome(answer);
        }
        self.legacy(method, params).await
    }

    /// The 2025-11-25 way: the handshake, the request, the session closed.
    async fn legacy(&self, method: &str, params: Map<String, Value>) -> Result<Value, Failure> {
        let init =
            json!({"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": client_info()});
        let answer = self.post(&message("initialize", object(init)), &[]).await?;
        let session = answer.session.clone();
        let result = self.outcome(answer)?;
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(LEGACY)
            .to_string();
        let mut headers = vec![("mcp-protocol-version", version)];
        if let Some(session) = &session {
            headers.push(("mcp-session-id", session.clone()));
        }
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post(&initialized, &headers).await?;
        let outcome = self.outcome(self.post(&message(method, params), &headers).await?);
        if session.is_some() {
            // A session left open ends on the remote's own timer anyway.
            let _ = self.send("DELETE", Bytes::new(), &headers).await;
        }
        outcome
    }

    /// The result an answer carries, or why there is none.
    fn outcome(&self, answer: Answer) -> Result<Value, Failure> {
        let Some(message) = answer.message else {
            return Err(Failure::Unreachable(format!(
                "the MCP server answered {} without a JSON-RPC response",
                answer.status
            )));
        };
        if let Some(error) = message.get("error") {
            let text = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Err(Failure::Rpc {
                code: error
                    .get("code")
                    .and_then(Value::as_i64)
                    .unwrap_or_default(),
                message: redact::text(text, &self.secrets)
                    .chars()
                    .take(500)
                    .collect(),
            });
        }
        match message.get("result") {
            Some(result) if result.is_object() => Ok(self.redact(result.clone())),
            _ => Err(Failure::Unreachable(
                "the MCP server's response carries no result".into(),
            )),
        }
    }

    /// POSTs `body`; the answer's JSON-RPC response to it, if any.
    async fn post(&self, body: &Value, extra: &[(&str, String)]) -> Result<Answer, Failure> {
        let bytes = Bytes::from(body.to_string());
        let (status, content_type, session, answer) = self.send("POST", bytes, extra).await?;
        Ok(Answer {
            status,
            session,
            message: response_in(&content_type, &answer),
        })
    }

    /// One HTTP exchange: status, content type, session id, body.
    async fn send(
        &self,
        method: &str,
        body: Bytes,
        extra: &[(&str, String)],
    ) -> Result<(u16, String, Option<String>, Bytes), Failure> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(&self.config.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json, text/event-stream");
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        for (name, value) in extra {
            builder = builder.header(*name, value.as_str());
        }
        let mut req = builder.body(FullBody::new(body)).map_err(|_| {
            Failure::Unreachable("the request to the MCP server could not be built".into())
        })?;
        req.extensions_mut()
            .insert(execute::options(self.limit() + Duration::from_millis(500)));
        let res = spin_sdk::http::send(req).await.map_err(|code| {
            Failure::Unreachable(format!(
                "the MCP server could not be reached ({})",
                gatehouse_http::outbound::failure(&code)
            ))
        })?;
        let status = res.status().as_u16();
        let text = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = text("content-type").unwrap_or_default();
        let session = text("mcp-session-id");
        let bytes = Limited::new(res.into_body(), ANSWER_MAX)
            .collect()
            .await
            .map_err(|_| {
                Failure::Unreachable(format!(
                    "the MCP server's answer broke off or is larger than {} KiB",
                    ANSWER_MAX / 1024
                ))
            })?
            .to_bytes();
        if status >= 500 {
            return Err(Failure::Unreachable(format!(
                "the MCP server answered {status}"
            )));
        }
        Ok((status, content_type, session, bytes))
    }
}

fn message(method: &str, params: Map<String, Value>) -> Value {
    json!({"jsonrpc": "2.0", "id": ID, "method": method, "params": params})
}
