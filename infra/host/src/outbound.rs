//! `allowed_outbound_hosts` patterns and the check applied to every outbound
//! request.
//!
//! Patterns follow Spin: `scheme://host[:port]`, where the scheme may be `*`,
//! the host may be `*` or start with `*.` (any subdomain), and the port may be
//! `*`; without a port the scheme's default applies (80 for http, 443 for
//! https). `http://<component>.spin.internal` names another component of the
//! same app and is reached without the network.

use anyhow::{Result, bail};

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
    /// Parses one `allowed_outbound_hosts` entry.
    pub fn parse(text: &str) -> Result<HostPattern> {
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

    #[test]
    fn rejects_malformed_patterns() {
        assert!(HostPattern::parse("example.com").is_err());
        assert!(HostPattern::parse("ftp://example.com").is_err());
        assert!(HostPattern::parse("https://example.com/path").is_err());
        assert!(HostPattern::parse("https://ex*ample.com").is_err());
        assert!(HostPattern::parse("https://example.com:port").is_err());
    }
}
