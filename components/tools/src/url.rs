//! A tool's URL, checked when the tool is written: at most [`URL_MAX`]
//! bytes; `{name}` placeholders only in its path and query (an argument
//! never chooses the host), each naming a required argument; and, with
//! the placeholders standing for any argument, a URL the deployment's
//! policy takes (the one OIDC issuers pass: `tool_outbound_hosts`, no
//! private host unless `tool_allow_private_hosts`, never a metadata
//! service).

use gatehouse_auth::oidc::{OutboundPolicy, Refusal};
use gatehouse_http::FieldError;
use serde_json::Value;

use crate::config::declared;
use crate::template;

/// The longest URL, in bytes.
pub const URL_MAX: usize = 2048;

/// Adds to `errors` every reason `url` (a tool's, with placeholders) is
/// not taken, pointers `/config/url`.
pub fn check(url: &str, schema: &Value, policy: &OutboundPolicy, errors: &mut Vec<FieldError>) {
    let field = |code: &str, message: String| FieldError::new("/config/url", code, message);
    if url.len() > URL_MAX {
        errors.push(field("too_long", "a URL is at most 2048 bytes".into()));
        return;
    }
    let (_, required) = declared(schema);
    let end = template::authority_end(url);
    let found = template::placeholders(url, "{", "}");
    for p in &found {
        if p.start < end {
            errors.push(field(
                "placeholder_in_host",
                format!(
                    "{{{}}} is in the URL's scheme or host: placeholders go in its path and query",
                    p.name
                ),
            ));
        } else if !required.contains(&p.name.as_str()) {
            errors.push(field(
                "unknown_argument",
                format!(
                    "{{{}}} names no required property of the input schema",
                    p.name
                ),
            ));
        }
    }
    // The URL as it will be called, a placeholder standing for any
    // argument (filled ones are URL-encoded, so they change nothing else).
    let sample = found.iter().rev().fold(url.to_string(), |mut u, p| {
        u.replace_range(p.start..p.end, "x");
        u
    });
    if sample.contains(['{', '}', ' ']) || sample.chars().any(|c| c.is_control()) {
        errors.push(field(
            "invalid_url",
            "braces are only placeholders ({name}); spaces and control characters are not taken"
                .into(),
        ));
        return;
    }
    if let Err(refusal) = policy.check(&sample) {
        errors.push(field("url_not_allowed", refused(&refusal, TOOLS)));
    }
}

/// What a refused URL was to reach: tools or model providers, each with
/// its own pair of Spin variables (`<prefix>_outbound_hosts`,
/// `<prefix>_allow_private_hosts`).
#[derive(Debug, Clone, Copy)]
pub struct Callee {
    /// `tools`, `providers`.
    pub noun: &'static str,
    /// `tool`, `llm`.
    pub prefix: &'static str,
}

/// HTTP tools' endpoints.
pub const TOOLS: Callee = Callee {
    noun: "tools",
    prefix: "tool",
};

/// Model providers' base URLs.
pub const PROVIDERS: Callee = Callee {
    noun: "providers",
    prefix: "llm",
};

/// Why this deployment does not call a URL of `callee`'s.
pub fn refused(refusal: &Refusal, callee: Callee) -> String {
    let Callee { noun, prefix } = callee;
    match refusal {
        Refusal::NotAUrl => {
            "not an absolute http(s) URL with a host and without credentials".into()
        }
        Refusal::BadHost { host } => format!("`{host}` is not a valid host"),
        Refusal::Forbidden { host, kind } => {
            format!("{host} is {}, which is never called", kind.describe())
        }
        Refusal::Private { host, kind } => format!(
            "{host} is {}; {noun} are called on public hosts only, unless the operator sets {prefix}_allow_private_hosts",
            kind.describe()
        ),
        Refusal::PlainHttp => {
            "plain http is taken only for private hosts the operator allows: use https".into()
        }
        Refusal::OutsideRule { rule } => format!(
            "outside this deployment's outbound rule for {noun} ({prefix}_outbound_hosts = `{rule}`)"
        ),
        Refusal::NotConfigured { rule, .. } => format!(
            "this deployment calls no {noun} until the operator sets {prefix}_outbound_hosts (now `{rule}`)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::model::Kind;
    use gatehouse_auth::oidc::OutboundPolicy;
    use serde_json::{Value, json};

    fn schema() -> Value {
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    }

    fn codes(config: &Value, policy: &OutboundPolicy) -> Vec<(String, String)> {
        Config::check(Kind::Http, config, &schema(), policy)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.pointer, e.code))
            .collect()
    }

    fn open() -> OutboundPolicy {
        OutboundPolicy::new("*://*:*", "true")
    }

    #[test]
    fn private_urls_are_refused_unless_the_operator_allows_them() {
        let config = json!({"method": "GET", "url": "http://127.0.0.1:9000/x"});
        let closed = OutboundPolicy::new("http://127.0.0.1:*", "false");
        assert_eq!(
            codes(&config, &closed),
            vec![("/config/url".to_string(), "url_not_allowed".to_string())]
        );
        assert!(
            Config::check(
                Kind::Http,
                &config,
                &schema(),
                &OutboundPolicy::new("http://127.0.0.1:*", "true")
            )
            .is_ok()
        );
        let metadata = json!({"method": "GET", "url": "http://169.254.169.254/latest"});
        assert!(Config::check(Kind::Http, &metadata, &schema(), &open()).is_err());
        let unset = OutboundPolicy::new("https://tools-not-configured.invalid:443", "false");
        let public = json!({"method": "GET", "url": "https://api.example.com/x"});
        assert!(Config::check(Kind::Http, &public, &schema(), &unset).is_err());
    }
}
