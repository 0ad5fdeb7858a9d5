//! Which handlers an accepted delivery is handed to: the deployment's
//! `webhook_handlers` setting, a JSON array of
//! `{"provider": "stripe", "sources": ["whs_…"], "types": ["invoice.*"], "url": "http://billing.spin.internal/…"}`.
//!
//! Sources belong to orgs, and any org may make one for any provider, so a
//! handler names the sources it trusts: their ids, or `*` for every org's
//! (a handler that then tells orgs apart by the `org_id` and `source_id`
//! it is given). A type pattern is `*` (every type), an exact type, or a
//! prefix ending in `.*` (`invoice.*` matches `invoice.paid`, not
//! `invoice`). A delivery without a type matches `*` only.

use crate::Provider;
use serde_json::Value;

/// One handler: deliveries of `provider` whose type matches go to `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    /// The provider whose deliveries it takes.
    pub provider: Provider,
    /// The sources it takes them from: ids, or `*` for any.
    pub sources: Vec<String>,
    /// The type patterns it takes.
    pub types: Vec<String>,
    /// Where deliveries are posted.
    pub url: String,
}

impl Handler {
    /// Whether a delivery from `source` of `provider` with `event_type`
    /// goes to it.
    pub fn takes(&self, source: &str, provider: Provider, event_type: Option<&str>) -> bool {
        self.provider == provider
            && self.sources.iter().any(|s| s == "*" || s == source)
            && self
                .types
                .iter()
                .any(|pattern| type_matches(pattern, event_type))
    }
}

/// Whether `event_type` matches `pattern` (see the module's rules).
pub fn type_matches(pattern: &str, event_type: Option<&str>) -> bool {
    if pattern == "*" {
        return true;
    }
    let Some(event_type) = event_type else {
        return false;
    };
    match pattern.strip_suffix(".*") {
        Some(prefix) => event_type
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1),
        None => pattern == event_type,
    }
}

/// Why a `webhook_handlers` setting was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlersError(pub String);

impl std::fmt::Display for HandlersError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "webhook_handlers: {}", self.0)
    }
}

impl std::error::Error for HandlersError {}

/// The handlers a `webhook_handlers` setting lists; empty text is none.
/// Every entry needs a known provider, at least one source (or `*`), at
/// least one type pattern and an `http` or `https` URL.
pub fn parse_handlers(text: &str) -> Result<Vec<Handler>, HandlersError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| HandlersError(format!("not JSON ({e})")))?;
    let entries = value
        .as_array()
        .ok_or_else(|| HandlersError("must be a JSON array".into()))?;
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| handler(entry).map_err(|e| HandlersError(format!("entry {i}: {e}"))))
        .collect()
}

fn handler(entry: &Value) -> Result<Handler, String> {
    let provider = entry
        .get("provider")
        .and_then(Value::as_str)
        .and_then(Provider::parse)
        .ok_or("provider must be a known provider")?;
    let texts = |name: &str| -> Vec<String> {
        entry
            .get(name)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|t| t.as_str().filter(|t| !t.is_empty()).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let sources = texts("sources");
    if sources.is_empty() {
        return Err("sources must list source ids, or \"*\" for every org's".into());
    }
    let types = texts("types");
    if types.is_empty() {
        return Err("types must list at least one pattern".into());
    }
    let url = entry
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or("url must be an http or https URL")?
        .to_string();
    Ok(Handler {
        provider,
        sources,
        types,
        url,
    })
}

/// The handlers among `handlers` that take a delivery from `source` of
/// `provider` with `event_type`, each URL once.
pub fn matching<'a>(
    handlers: &'a [Handler],
    source: &str,
    provider: Provider,
    event_type: Option<&str>,
) -> Vec<&'a Handler> {
    let mut out: Vec<&Handler> = Vec::new();
    for h in handlers
        .iter()
        .filter(|h| h.takes(source, provider, event_type))
    {
        if !out.iter().any(|o| o.url == h.url) {
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_every_type_an_exact_one_or_a_dotted_prefix() {
        assert!(type_matches("*", None));
        assert!(type_matches("*", Some("push")));
        assert!(type_matches("push", Some("push")));
        assert!(!type_matches("push", Some("pushed")));
        assert!(!type_matches("push", None));
        assert!(type_matches("invoice.*", Some("invoice.paid")));
        assert!(type_matches("invoice.*", Some("invoice.payment.failed")));
        assert!(!type_matches("invoice.*", Some("invoice")));
        assert!(!type_matches("invoice.*", Some("invoice.")));
        assert!(!type_matches("invoice.*", Some("invoices.paid")));
    }

    #[test]
    fn handlers_are_parsed_and_matched_by_provider_and_type_each_url_once() {
        let handlers = parse_handlers(
            r#"[{"provider": "stripe", "sources": ["whs_ops"], "types": ["invoice.*"], "url": "http://billing.spin.internal/a"},
                {"provider": "stripe", "sources": ["whs_ops"], "types": ["*"], "url": "http://billing.spin.internal/a"},
                {"provider": "github", "sources": ["*"], "types": ["push"], "url": "https://ci.example.com/b"}]"#,
        )
        .expect("valid");
        assert_eq!(handlers.len(), 3);
        let stripe = matching(&handlers, "whs_ops", Provider::Stripe, Some("invoice.paid"));
        assert_eq!(stripe.len(), 1);
        assert_eq!(stripe[0].url, "http://billing.spin.internal/a");
        // Another org's Stripe source is not the operator's.
        assert!(
            matching(
                &handlers,
                "whs_other",
                Provider::Stripe,
                Some("invoice.paid")
            )
            .is_empty()
        );
        assert_eq!(
            matching(&handlers, "whs_any", Provider::GitHub, Some("push")).len(),
            1
        );
        assert!(
            matching(
                &handlers,
                "whs_any",
                Provider::GitHub,
                Some("issues.opened")
            )
            .is_empty()
        );
        assert!(matching(&handlers, "whs_any", Provider::Slack, None).is_empty());
    }

    #[test]
    fn bad_settings_are_refused_with_the_entry_at_fault() {
        assert_eq!(parse_handlers(" ").expect("empty"), Vec::new());
        assert_eq!(parse_handlers("[]").expect("empty"), Vec::new());
        for (text, said) in [
            ("{", "not JSON"),
            ("{}", "array"),
            (
                r#"[{"provider": "nope", "sources": ["*"], "types": ["*"], "url": "http://a"}]"#,
                "entry 0: provider",
            ),
            (
                r#"[{"provider": "github", "types": ["*"], "url": "http://a"}]"#,
                "entry 0: sources",
            ),
            (
                r#"[{"provider": "github", "sources": ["*"], "types": [], "url": "http://a"}]"#,
                "entry 0: types",
            ),
            (
                r#"[{"provider": "github", "sources": ["*"], "types": ["*"], "url": "ftp://a"}]"#,
                "entry 0: url",
            ),
        ] {
            let error = parse_handlers(text).expect_err(text).to_string();
            assert!(error.contains(said), "{text}: {error}");
        }
    }
}
