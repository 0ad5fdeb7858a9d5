//! Calling a tool: the one entry every caller uses (the `$call` route
//! today; LLM runs and an MCP server alike), after the caller's right to
//! run the tool was checked.
//!
//! Arguments are checked against the tool's input schema before anything
//! runs. What the tool itself does may fail (an endpoint that times out,
//! answers 500, cannot be reached, a secret it names that is not set):
//! that is an answer with `is_error`, and a short message as its result,
//! which an LLM can read and act on; it is never an error of the request.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::{ErrorCode, FieldError, Problem};
use http_body_util::{BodyExt, Limited};
use serde::Serialize;
use serde_json::{Map, Value};
use spin_sdk::http::FullBody;
use spin_sdk::wasip3::http::types::RequestOptions;
use spin_sdk::wasip3::http_compat::RequestOptionsExtension;

use crate::config::{Body, Config, HttpConfig};
use crate::model::Tool;
use crate::{policy, redact, schema, template};

/// The most of an endpoint's answer read; a larger one is an error.
pub const ANSWER_MAX: usize = 256 * 1024;
/// The most of a failing answer quoted in its message, in characters.
const EXCERPT_MAX: usize = 200;

/// What a call answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The tool's result (JSON, or text when the endpoint answered text),
    /// or, when `is_error`, why it failed.
    pub result: Value,
    /// Whether the tool failed.
    pub is_error: bool,
    /// How long the call took, in milliseconds.
    pub latency_ms: u64,
}

/// Why a tool was not called.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolError {
    /// The arguments fail the tool's input schema: each failure.
    InvalidArguments(Vec<FieldError>),
    /// The tool is disabled.
    Disabled,
    /// The tool's stored configuration does not read (a fault, logged).
    Internal,
}

impl From<ToolError> for Problem {
    fn from(e: ToolError) -> Problem {
        match e {
            ToolError::InvalidArguments(errors) => Problem::new(ErrorCode::ValidationFailed)
                .detail("the arguments do not match the tool's input schema")
                .errors(errors),
            ToolError::Disabled => Problem::new(ErrorCode::Conflict).detail("the tool is disabled"),
            ToolError::Internal => Problem::internal(),
        }
    }
}

/// A call checked and ready to run: the tool is enabled, its
/// configuration reads and the arguments match its input schema.
pub struct Prepared {
    config: Config,
    arguments: serde_json::Map<String, Value>,
}

/// Checks a call of `tool` with `arguments` without running it.
pub fn prepare(tool: &Tool, arguments: &Value) -> Result<Prepared, ToolError> {
    if !tool.enabled {
        return Err(ToolError::Disabled);
    }
    let config = Config::parse(tool.kind, &tool.config).map_err(|e| {
        eprintln!("tools: the config of {} does not read: {e:?}", tool.id);
        ToolError::Internal
    })?;
    schema::check_arguments(&tool.input_schema, arguments).map_err(ToolError::InvalidArguments)?;
    Ok(Prepared {
        config,
        arguments: arguments.as_object().cloned().unwrap_or_default(),
    })
}

impl Prepared {
    /// Runs the call in the org of `tenant`.
    pub async fn run(&self, tenant: &Tenant<'_>) -> Outcome {
        let started = Instant::now();
        let answer = match &self.config {
            Config::Static(c) => Ok(template::fill_static(&c.result, &self.arguments)),
            Config::Http(c) => call_http(tenant, c, &self.arguments).await,
        };
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match answer {
            Ok(result) => Outcome {
                result,
                is_error: false,
                latency_ms,
            },
            Err(why) => Outcome {
                result: Value::String(why),
                is_error: true,
                latency_ms,
            },
        }
    }
}

/// Calls `tool` with `arguments` in the org of `tenant`.
pub async fn call(
    tenant: &Tenant<'_>,
    tool: &Tool,
    arguments: &Value,
) -> Result<Outcome, ToolError> {
    Ok(prepare(tool, arguments)?.run(tenant).await)
}

/// The values of the secrets `config`'s headers name, as headers; a
/// failure's message.
pub(crate) async fn headers(
    tenant: &Tenant<'_>,
    config: &HttpConfig,
) -> Result<(Vec<(String, String)>, Vec<String>), String> {
    let mut headers = Vec::with_capacity(config.headers.len());
    let mut secrets = Vec::new();
    for header in &config.headers {
        let value = match (&header.value, &header.secret) {
            (Some(value), _) => value.clone(),
            (None, Some(reference)) => {
                let read = gatehouse_secrets::read_reference(tenant, reference, unix_now()).await;
                let bytes = match read {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => return Err(format!("the secret {reference} is not set")),
                    Err(_) => return Err(format!("the secret {reference} could not be read")),
                };
                let text = String::from_utf8(bytes)
                    .ok()
                    .filter(|t| http::HeaderValue::from_str(t).is_ok())
                    .ok_or_else(|| format!("the secret {reference} is no valid header value"))?;
                secrets.push(text.clone());
                text
            }
            (None, None) => continue,
        };
        headers.push((header.name.clone(), value));
    }
    Ok((headers, secrets))
}

async fn call_http(
    tenant: &Tenant<'_>,
    config: &HttpConfig,
    arguments: &Map<String, Value>,
) -> Result<Value, String> {
    let url = template::fill_url(&config.url, arguments);
    // Checked when the tool was written; again now, as the operator may
    // have narrowed the settings since.
    if let Err(refusal) = policy::tools().await.check(&url) {
        eprintln!("tools: not calling {url}: {refusal}");
        return Err(
            "this deployment's settings no longer allow the tool's URL (tool_outbound_hosts)"
                .into(),
        );
    }
    let (headers, secrets) = headers(tenant, config).await?;
    let limit = Duration::from_millis(u64::from(config.timeout_ms));
    let exchange = send(config, &url, headers, arguments, limit);
    let (status, bytes) = match within(limit, exchange).await {
        Some(result) => result?,
        None => {
            return Err(format!(
                "the endpoint did not answer within {} ms",
                config.timeout_ms
            ));
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    if !(200..300).contains(&status) {
        let excerpt: String = redact::text(text.trim(), &secrets)
            .chars()
            .take(EXCERPT_MAX)
            .collect();
        return Err(if excerpt.is_empty() {
            format!("the endpoint answered {status}")
        } else {
            format!("the endpoint answered {status}: {excerpt}")
        });
    }
    let result = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(text.into_owned()))
    };
    Ok(redact::value(result, &secrets))
}

/// The request, sent, and its answer's status and body.
async fn send(
    config: &HttpConfig,
    url: &str,
    headers: Vec<(String, String)>,
    arguments: &Map<String, Value>,
    limit: Duration,
) -> Result<(u16, Bytes), String> {
    let mut builder = http::Request::builder()
        .method(config.method.as_str())
        .uri(url);
    for (name, value) in &headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = if config.body == Some(Body::Arguments) {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        Bytes::from(Value::Object(arguments.clone()).to_string())
    } else {
        Bytes::new()
    };
    let mut req = builder
        .body(FullBody::new(body))
        .map_err(|_| "the request could not be built from the tool's configuration".to_string())?;
    // The host's own phase limits a little past the deadline below, so
    // that a slow endpoint is told as one, in the tool's own terms.
    req.extensions_mut()
        .insert(options(limit + Duration::from_millis(500)));
    let res = spin_sdk::http::send(req).await.map_err(|code| {
        format!(
            "the endpoint could not be reached ({})",
            gatehouse_http::outbound::failure(&code)
        )
    })?;
    let status = res.status().as_u16();
    let bytes = Limited::new(res.into_body(), ANSWER_MAX)
        .collect()
        .await
        .map_err(|_| {
            format!(
                "the endpoint's answer broke off or is larger than {} KiB",
                ANSWER_MAX / 1024
            )
        })?
        .to_bytes();
    Ok((status, bytes))
}

/// Each phase of the request bounded, for a host that enforces them
/// even without the overall deadline.
pub(crate) fn options(limit: Duration) -> RequestOptionsExtension {
    let ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
    let options = RequestOptions::new();
    // A host that does not support one keeps its own default.
    let _ = options.set_connect_timeout(Some(ns));
    let _ = options.set_first_byte_timeout(Some(ns));
    let _ = options.set_between_bytes_timeout(Some(ns));
    RequestOptionsExtension(options)
}

/// `work`'s output, or none when `limit` passes first (`work` is then
/// dropped, which cancels what it was waiting on).
pub(crate) async fn within<F: Future>(limit: Duration, work: F) -> Option<F::Output> {
    let mut work = pin!(work);
    let mut timer = pin!(spin_sdk::time::sleep(limit));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
