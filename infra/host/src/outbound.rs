//! `allowed_outbound_hosts` patterns and the check applied to every outbound
//! request.
//!
//! Patterns follow Spin: `scheme://host[:port]`, where the scheme may be `*`,
//! the host may be `*` or start with `*.` (any subdomain), and the port may be
//! `*`; without a port the scheme's default applies (80 for http, 443 for
//! https). `http://<component>.spin.internal` names another component of the
//! same app and is reached without the network.
//!
//! An entry may also be a template over application variables, as in Spin
//! (`"{{ api_base_url }}"`, `"https://{{ api_host }}"`): the manifest parser
//! checks that every variable it names is declared, and loading the app
//! renders it from the resolved variables and parses the result, failing
//! with the entry's name when it is not a valid pattern. Spin resolves such
//! entries from the same application variables when it prepares an
//! instance; this host's variables are fixed at load, so rendering once
//! there grants the same hosts and reports a bad value before serving.

use anyhow::{Context, Result, bail};

use crate::variables::{Template, Variables};

/// One parsed allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Option<String>,
    host: HostMatch,
    port: PortMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    Subdomain(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortMatch {
    Any,
    Default,
    Exact(u16),
}

/// The suffix that addresses components of the same app.
pub const INTERNAL_SUFFIX: &str = ".spin.internal";

impl HostPattern {
    /// Parses one `allowed_outbound_hosts` entry. Surrounding whitespace is
    /// ignored, as Spin does.
    pub fn parse(text: &str) -> Result<HostPattern> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            bail!("must have the form scheme://host[:port]");
        };
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_string()),
            other => bail!("unsupported scheme `{other}`"),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            bail!("must not contain a path");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, "*")) => (host, PortMatch::Any),
            Some((host, port)) => match port.parse::<u16>() {
                Ok(port) => (host, PortMatch::Exact(port)),
                Err(_) => bail!("invalid port `{port}`"),
            },
            None => (rest, PortMatch::Default),
        };
        let host = match host {
            "" => bail!("missing host"),
            "*" => HostMatch::Any,
            h if h.starts_with("*.") => HostMatch::Subdomain(h[1..].to_ascii_lowercase()),
            h if h.contains('*') => {
                bail!("`*` may only stand for the whole host or a leading label")
            }
            h => HostMatch::Exact(h.to_ascii_lowercase()),
        };
        Ok(HostPattern { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        if self.scheme.as_deref().is_some_and(|s| s != scheme) {
            return false;
        }
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => *h == host,
            HostMatch::Subdomain(suffix) => host.ends_with(suffix.as_str()),
        };
        let default_port = if scheme == "https" { 443 } else { 80 };
        let port = port.unwrap_or(default_port);
        let port_ok = match self.port {
            PortMatch::Any => true,
            PortMatch::Default => port == default_port,
            PortMatch::Exact(p) => p == port,
        };
        host_ok && port_ok
    }
}

/// One `allowed_outbound_hosts` entry as the manifest writes it.
#[derive(Debug, Clone)]
pub enum AllowedHost {
    /// A literal pattern, checked when the manifest is parsed.
    Pattern(HostPattern),
    /// A template over application variables, rendered and checked when the
    /// app loads.
    Template {
        /// The entry as written, for error messages.
        text: String,
        /// The parsed template.
        template: Template,
    },
}

impl AllowedHost {
    /// Parses an entry: a template when it has `{{ ... }}` holes (whether
    /// the names are declared is the manifest's check), otherwise a pattern.
    pub fn parse(text: &str) -> Result<AllowedHost> {
        let template = Template::parse(text)?;
        if template.references().next().is_none() {
            return HostPattern::parse(text).map(AllowedHost::Pattern);
        }
        Ok(AllowedHost::Template {
            text: text.to_string(),
            template,
        })
    }

    /// The application variables the entry names (none for a pattern).
    pub fn references(&self) -> Vec<&str> {
        match self {
            AllowedHost::Pattern(_) => Vec::new(),
            AllowedHost::Template { template, .. } => template.references().collect(),
        }
    }

    /// The pattern this entry grants with these variables. The error shows
    /// the rendered value unless a secret variable went into it.
    pub fn resolve(&self, variables: &Variables) -> Result<HostPattern> {
        let (text, template) = match self {
            AllowedHost::Pattern(p) => return Ok(p.clone()),
            AllowedHost::Template { text, template } => (text, template),
        };
        let entry = || format!("allowed_outbound_hosts entry `{text}`");
        let rendered = variables.render(template).with_context(entry)?;
        HostPattern::parse(&rendered).with_context(|| {
            if template.references().any(|name| variables.is_secret(name)) {
                format!("{}: its value (secret)", entry())
            } else {
                format!("{}: its value `{rendered}`", entry())
            }
        })
    }
}

/// Whether any entry of `allowed` permits the request.
pub fn is_allowed(allowed: &[HostPattern], scheme: &str, host: &str, port: Option<u16>) -> bool {
    allowed.iter().any(|p| p.allows(scheme, host, port))
}

/// The component id addressed by an internal host name, if it is one.
pub fn internal_component(host: &str) -> Option<&str> {
    host.strip_suffix(INTERNAL_SUFFIX)
        .filter(|id| !id.is_empty() && !id.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(pattern: &str, scheme: &str, host: &str, port: Option<u16>) -> bool {
        HostPattern::parse(pattern)
            .unwrap()
            .allows(scheme, host, port)
    }

    #[test]
    fn exact_host_uses_the_default_port() {
        assert!(allowed(
            "https://api.stripe.com",
            "https",
            "api.stripe.com",
            None
        ));
        assert!(allowed(
            "https://api.stripe.com",
            "https",
            "API.stripe.com",
            Some(443)
        ));
        assert!(!allowed(
            "https://api.stripe.com",
            "https",
            "api.stripe.com",
            Some(8443)
        ));
        assert!(!allowed(
            "https://api.stripe.com",
            "http",
            "api.stripe.com",
            None
        ));
    }

    #[test]
    fn wildcards_cover_scheme_subdomain_and_port() {
        assert!(allowed(
            "*://example.com:*",
            "http",
            "example.com",
            Some(8080)
        ));
        assert!(allowed(
            "https://*.example.com",
            "https",
            "a.b.example.com",
            None
        ));
        assert!(!allowed(
            "https://*.example.com",
            "https",
            "example.com",
            None
        ));
        assert!(!allowed(
            "https://*.example.com",
            "https",
            "badexample.com",
            None
        ));
        assert!(allowed(
            "http://127.0.0.1:*",
            "http",
            "127.0.0.1",
            Some(5000)
        ));
        assert!(allowed("*://*:*", "https", "anything", Some(1)));
    }

    #[test]
    fn internal_hosts_name_components() {
        assert_eq!(internal_component("keys.spin.internal"), Some("keys"));
        assert_eq!(internal_component("a.b.spin.internal"), None);
        assert_eq!(internal_component("spin.internal"), None);
        assert!(allowed(
            "http://*.spin.internal",
            "http",
            "keys.spin.internal",
            None
        ));
    }

    fn variables(declarations: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Variables> {
        let manifest = format!(
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n[variables]\n{declarations}"
        );
        let app = crate::manifest::App::parse(&manifest, std::path::Path::new("."))?;
        Variables::resolve(&app, env)
    }

    #[test]
    fn templated_entries_render_from_application_variables() -> Result<()> {
        let env = |k: &str| (k == "SPIN_VARIABLE_API").then(|| "http://127.0.0.1:9000/".into());
        let vars = variables(
            "api = { default = \"https://api.example.com\" }\nport = { default = \"8080\" }",
            &env,
        )?;
        let api = AllowedHost::parse("{{ api }}")?.resolve(&vars)?;
        assert!(api.allows("http", "127.0.0.1", Some(9000)));
        assert!(!api.allows("https", "api.example.com", None));
        let mixed = AllowedHost::parse("http://localhost:{{port}}")?;
        assert_eq!(mixed.references(), vec!["port"]);
        assert!(
            mixed
                .resolve(&vars)?
                .allows("http", "localhost", Some(8080))
        );
        let literal = AllowedHost::parse(" https://example.com ")?;
        assert!(literal.references().is_empty());
        assert!(literal.resolve(&vars)?.allows("https", "example.com", None));
        Ok(())
    }

    #[test]
    fn a_template_that_renders_no_valid_pattern_is_refused() -> Result<()> {
        let vars = variables(
            "api = { default = \"api.example.com\" }\n\
             key = { default = \"s3cret.example.com\", secret = true }\n\
             unset = {}",
            &|_| None,
        )?;
        let err = |text: &str| -> Result<String> {
            let e = AllowedHost::parse(text)?.resolve(&vars).unwrap_err();
            Ok(format!("{e:#}"))
        };
        let plain = err("{{ api }}")?;
        assert!(
            plain.contains("`{{ api }}`")
                && plain.contains("`api.example.com`")
                && plain.contains("scheme://host"),
            "{plain}"
        );
        let secret = err("{{ key }}")?;
        assert!(!secret.contains("s3cret"), "{secret}");
        let unset = err("https://{{ unset }}")?;
        assert!(unset.contains("`unset` has no value"), "{unset}");
        assert!(err("https://{{ api }}/v1")?.contains("path"));
        assert!(AllowedHost::parse("{{ api").is_err());
        Ok(())
    }

    #[test]
    fn rejects_malformed_patterns() {
        assert!(HostPattern::parse("example.com").is_err());
        assert!(HostPattern::parse("ftp://example.com").is_err());
        assert!(HostPattern::parse("https://example.com/path").is_err());
        assert!(HostPattern::parse("https://ex*ample.com").is_err());
        assert!(HostPattern::parse("https://example.com:port").is_err());
    }
}
