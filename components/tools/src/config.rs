//! A tool's configuration, by kind, checked when the tool is written so
//! that a call never finds a broken one:
//!
//! - `static`: `{"result": <any JSON>}`; its strings' `{{name}}`
//!   placeholders name properties of the input schema.
//! - `http`: `{"method", "url", "headers", "timeout_ms", "body"}`; the URL
//!   is one the deployment may call (`tool_outbound_hosts`, and not a
//!   private address unless `tool_allow_private_hosts`), its `{name}`
//!   placeholders are in its path or query and name required arguments;
//!   a header has a plain `value` or names a `secret` (`org/NAME`), read
//!   when the tool is called and never stored here.

use gatehouse_auth::oidc::OutboundPolicy;
use gatehouse_http::FieldError;
use gatehouse_secrets::scope::{Scope, parse_reference};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Kind;
use crate::template;
use crate::url;

/// The most headers a tool sends.
pub const HEADERS_MAX: usize = 32;
/// The longest plain header value, in bytes.
pub const HEADER_VALUE_MAX: usize = 4096;
/// The longest a call may wait for its answer, in milliseconds.
pub const TIMEOUT_MAX_MS: u32 = 30_000;
/// What a call waits unless the tool says.
pub const TIMEOUT_DEFAULT_MS: u32 = 10_000;
/// The largest static result, serialized.
pub const STATIC_RESULT_MAX: usize = 64 * 1024;

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum Config {
    /// A static tool's.
    Static(StaticConfig),
    /// An HTTP tool's.
    Http(HttpConfig),
}

/// `{"result": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// The answer, its strings' placeholders filled at each call.
    pub result: Value,
}

/// The methods an HTTP tool may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// As the request line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    fn takes_body(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

/// What an HTTP tool's request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    /// The arguments, as a JSON object.
    Arguments,
    /// Nothing.
    None,
}

/// One header an HTTP tool sends: a plain `value`, or the `secret` whose
/// value it is at call time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The header's name.
    pub name: String,
    /// Its value, when plain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A secret reference (`org/NAME`, `team/<id>/NAME`, `user/<id>/NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// An HTTP tool's request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: Method,
    /// Absolute; `{name}` placeholders in its path and query.
    pub url: String,
    /// Sent as given.
    #[serde(default)]
    pub headers: Vec<Header>,
    /// 1 to 30,000.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
    /// `arguments` (the default for POST, PUT and PATCH) or `none`.
    #[serde(default)]
    pub body: Option<Body>,
}

fn default_timeout() -> u32 {
    TIMEOUT_DEFAULT_MS
}

impl HttpConfig {
    /// The secret references its headers name.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().filter_map(|h| h.secret.as_deref())
    }
}

impl Config {
    /// The configuration as stored and answered: defaults written out.
    pub fn to_value(&self) -> Value {
        let value = match self {
            Config::Static(c) => serde_json::to_value(c),
            Config::Http(c) => serde_json::to_value(c),
        };
        // Plain data (strings, numbers, JSON values) always serializes.
        value.unwrap_or(Value::Null)
    }

    /// The secret references the configuration names.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            Config::Static(_) => Vec::new(),
            Config::Http(c) => c.secrets().map(str::to_string).collect(),
        }
    }

    /// A configuration of `kind` read from `value`, shape only: a stored
    /// one, checked when it was written.
    pub fn parse(kind: Kind, value: &Value) -> Result<Config, Vec<FieldError>> {
        let shaped = match kind {
            Kind::Static => shape(value).map(Config::Static),
            Kind::Http => shape(value).map(|mut c: HttpConfig| {
                if c.body.is_none() {
                    c.body = Some(if c.method.takes_body() {
                        Body::Arguments
                    } else {
                        Body::None
                    });
                }
                Config::Http(c)
            }),
        };
        shaped.map_err(|e| vec![e])
    }

    /// A configuration of `kind` read from `value` and checked against the
    /// tool's `schema` (already checked itself) and the deployment's
    /// outbound `policy`: every failing field.
    pub fn check(
        kind: Kind,
        value: &Value,
        schema: &Value,
        policy: &OutboundPolicy,
    ) -> Result<Config, Vec<FieldError>> {
        let config = Config::parse(kind, value)?;
        let errors = match &config {
            Config::Static(c) => check_static(c, schema),
            Config::Http(c) => check_http(c, schema, policy),
        };
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }
}

/// `value` as `T`, a wrong field named by its pointer under `/config`.
fn shape<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut pointer = String::from("/config");
        for segment in e.path().iter() {
            use serde_path_to_error::Segment;
            match segment {
                Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                Segment::Map { key } | Segment::Enum { variant: key } => {
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                Segment::Unknown => {}
            }
        }
        FieldError::new(pointer, "invalid", e.inner().to_string())
    })
}

/// The properties a schema declares, and which of them it requires.
pub(crate) fn declared(schema: &Value) -> (Vec<&str>, Vec<&str>) {
    let properties = schema["properties"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let required = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    (properties, required)
}

fn check_static(config: &StaticConfig, schema: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if config.result.to_string().len() > STATIC_RESULT_MAX {
        errors.push(FieldError::new(
            "/config/result",
            "too_long",
            "a static result is at most 64 KiB of JSON",
        ));
    }
    let (properties, _) = declared(schema);
    for (name, pointer) in template::static_placeholders(&config.result, "/config/result") {
        if !properties.contains(&name.as_str()) {
            errors.push(FieldError::new(
                pointer,
                "unknown_argument",
                format!("{{{{{name}}}}} names no property of the input schema"),
            ));
        }
    }
    errors
}

fn check_http(config: &HttpConfig, schema: &Value, policy: &OutboundPolicy) -> Vec<FieldError> {
    let mut errors = Vec::new();
    url::check(&config.url, schema, policy, &mut errors);
    if !(1..=TIMEOUT_MAX_MS).contains(&config.timeout_ms) {
        errors.push(FieldError::new(
            "/config/timeout_ms",
            "out_of_range",
            "timeout_ms is 1 to 30000",
        ));
    }
    if config.body == Some(Body::Arguments) && !config.method.takes_body() {
        errors.push(FieldError::new(
            "/config/body",
            "invalid",
            format!("a {} request carries no body", config.method.as_str()),
        ));
    }
    if config.headers.len() > HEADERS_MAX {
        errors.push(FieldError::new(
            "/config/headers",
            "too_many",
            "at most 32 headers",
        ));
    }
    for (i, header) in config.headers.iter().enumerate() {
        check_header(header, &format!("/config/headers/{i}"), &mut errors);
    }
    errors
}

/// Headers a tool may not set: the connection's own, which the client
/// writes, and the body's framing.
const RESERVED_HEADERS: [&str; 8] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
];

fn check_header(header: &Header, pointer: &str, errors: &mut Vec<FieldError>) {
    let name_ok = http::HeaderName::from_bytes(header.name.as_bytes()).is_ok();
    if !name_ok || RESERVED_HEADERS.contains(&header.name.to_ascii_lowercase().as_str()) {
        errors.push(FieldError::new(
            format!("{pointer}/name"),
            "invalid",
            "a header name is a token, and not one the connection sets (host, content-length, …)",
        ));
    }
    match (&header.value, &header.secret) {
        (Some(value), None) => {
            if value.len() > HEADER_VALUE_MAX || http::HeaderValue::from_str(value).is_err() {
                errors.push(FieldError::new(
                    format!("{pointer}/value"),
                    "invalid",
                    "a header value is visible ASCII, at most 4096 bytes",
                ));
            }
        }
        (None, Some(reference)) => {
            if parse_reference(reference).is_none() {
                errors.push(FieldError::new(
                    format!("{pointer}/secret"),
                    "invalid_reference",
                    "a secret reference is org/NAME, team/<team id>/NAME or user/<user id>/NAME",
                ));
            }
        }
        _ => errors.push(FieldError::new(
            pointer,
            "invalid",
            "a header has either a value or a secret",
        )),
    }
}

/// The scope a reference names, for the writer's right to it.
pub fn reference_scope(reference: &str) -> Option<Scope> {
    parse_reference(reference).map(|(scope, _)| scope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn open() -> OutboundPolicy {
        OutboundPolicy::new("*://*:*", "true")
    }

    fn schema() -> Value {
        json!({"type": "object", "properties": {"city": {"type": "string"}, "n": {}}, "required": ["city"]})
    }

    fn codes(result: Result<Config, Vec<FieldError>>) -> Vec<(String, String)> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.pointer, e.code))
            .collect()
    }

    #[test]
    fn an_http_config_takes_defaults_by_method() -> anyhow::Result<()> {
        let config = Config::check(
            Kind::Http,
            &json!({"method": "POST", "url": "http://127.0.0.1:8080/w/{city}"}),
            &schema(),
            &open(),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(
            config.to_value(),
            json!({"method": "POST", "url": "http://127.0.0.1:8080/w/{city}", "headers": [], "timeout_ms": 10000, "body": "arguments"})
        );
        let get = Config::parse(
            Kind::Http,
            &json!({"method": "GET", "url": "https://a.example"}),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(get.to_value()["body"], "none");
        Ok(())
    }

    #[test]
    fn broken_http_configs_name_each_wrong_field() {
        let wrong = Config::check(
            Kind::Http,
            &json!({
                "method": "GET",
                "url": "https://{city}.example.com/{nope}",
                "timeout_ms": 0,
                "body": "arguments",
                "headers": [
                    {"name": "Host", "value": "x"},
                    {"name": "X-Key", "secret": "vault/KEY"},
                    {"name": "X-Both", "value": "a", "secret": "org/A"},
                    {"name": "X-Bad", "value": "line\nbreak"}
                ]
            }),
            &schema(),
            &open(),
        );
        let found = codes(wrong);
        for expected in [
            ("/config/url", "placeholder_in_host"),
            ("/config/url", "unknown_argument"),
            ("/config/timeout_ms", "out_of_range"),
            ("/config/body", "invalid"),
            ("/config/headers/0/name", "invalid"),
            ("/config/headers/1/secret", "invalid_reference"),
            ("/config/headers/2", "invalid"),
            ("/config/headers/3/value", "invalid"),
        ] {
            assert!(
                found.contains(&(expected.0.to_string(), expected.1.to_string())),
                "{expected:?} in {found:?}"
            );
        }
        let shape = Config::check(
            Kind::Http,
            &json!({"method": "TRACE", "url": "https://a.example"}),
            &schema(),
            &open(),
        );
        assert_eq!(codes(shape)[0].0, "/config/method");
        let unknown = Config::check(
            Kind::Static,
            &json!({"result": 1, "code": "x"}),
            &schema(),
            &open(),
        );
        assert_eq!(codes(unknown)[0].1, "invalid");
    }

    #[test]
    fn static_placeholders_name_declared_properties() {
        let ok = Config::check(
            Kind::Static,
            &json!({"result": {"t": "{{city}} {{n}}"}}),
            &schema(),
            &open(),
        );
        assert!(ok.is_ok());
        let wrong = Config::check(
            Kind::Static,
            &json!({"result": ["{{town}}"]}),
            &schema(),
            &open(),
        );
        assert_eq!(
            codes(wrong),
            vec![(
                "/config/result/0".to_string(),
                "unknown_argument".to_string()
            )]
        );
    }
}
