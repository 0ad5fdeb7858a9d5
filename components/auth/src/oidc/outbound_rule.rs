//! The operator's `oidc_outbound_hosts` rule, read as Spin reads an
//! `allowed_outbound_hosts` entry: `scheme://host[:port]`, where the
//! scheme may be `*`, the host `*` or `*.domain` (any subdomain, not the
//! domain itself), and the port `*`; without a port, the scheme's default
//! (80 for http, 443 for https). Spin enforces the entry on every call; the
//! guest reads the same rule so that a provider the rule denies is refused
//! when it is saved, with a message naming the rule, rather than failing
//! on every sign-in and bearer request afterwards.

/// One parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    text: String,
    scheme: Option<String>,
    host: HostMatch,
    port: PortMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.domain`, kept as `.domain`.
    Subdomain(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortMatch {
    Any,
    Default,
    Exact(u16),
}

/// The reserved top-level domain (RFC 2606) of the rule a deployment has
/// until its operator names the providers' hosts: it reaches nothing.
const UNCONFIGURED_SUFFIX: &str = ".invalid";

impl OutboundRule {
    /// Parses a rule; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<OutboundRule, String> {
        let trimmed = text.trim();
        let (scheme, rest) = trimmed
            .split_once("://")
            .ok_or("it must have the form scheme://host[:port]")?;
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_string()),
            other => return Err(format!("the scheme `{other}` is not http, https or *")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err("it must not have a path".into());
        }
        let (host, port) = match rest.rsplit_once(':') {
            // An IPv6 host without a port ends in `]`, not in a port.
            Some((host, port)) if !port.ends_with(']') => {
                let port = match port {
                    "*" => PortMatch::Any,
                    digits => PortMatch::Exact(
                        digits
                            .parse()
                            .map_err(|_| format!("the port `{digits}` is not a number or *"))?,
                    ),
                };
                (host, port)
            }
            _ => (rest, PortMatch::Default),
        };
        let host = match host {
            "" => return Err("it has no host".into()),
            "*" => HostMatch::Any,
            h if h.starts_with("*.") => HostMatch::Subdomain(h[1..].to_ascii_lowercase()),
            h if h.contains('*') => {
                return Err("`*` may only stand for the whole host or its first labels".into());
            }
            h => HostMatch::Exact(h.to_ascii_lowercase()),
        };
        Ok(OutboundRule {
            text: trimmed.to_string(),
            scheme,
            host,
            port,
        })
    }

    /// The rule as configured.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the rule is the placeholder that reaches nothing (a host
    /// under `.invalid`): the operator has not configured providers yet.
    pub fn is_unconfigured(&self) -> bool {
        match &self.host {
            HostMatch::Exact(h) => h.ends_with(UNCONFIGURED_SUFFIX),
            HostMatch::Subdomain(s) => s.ends_with(UNCONFIGURED_SUFFIX),
            HostMatch::Any => false,
        }
    }

    /// Whether a request to `scheme://host[:port]` is allowed. `host` is
    /// as a URL spells it (IPv6 in brackets).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(rule: &str, scheme: &str, host: &str, port: Option<u16>) -> bool {
        OutboundRule::parse(rule)
            .map(|r| r.allows(scheme, host, port))
            .unwrap_or(false)
    }

    #[test]
    fn rules_match_scheme_host_and_port_as_spin_does() {
        assert!(allows("https://*:443", "https", "idp.example.com", None));
        assert!(allows(
            "https://*:443",
            "https",
            "idp.example.com",
            Some(443)
        ));
        assert!(!allows(
            "https://*:443",
            "https",
            "idp.example.com",
            Some(8443)
        ));
        assert!(!allows(
            "https://*:443",
            "http",
            "idp.example.com",
            Some(443)
        ));
        assert!(allows(
            "http://127.0.0.1:*",
            "http",
            "127.0.0.1",
            Some(4000)
        ));
        assert!(!allows(
            "http://127.0.0.1:*",
            "http",
            "localhost",
            Some(4000)
        ));
        assert!(!allows(
            "http://127.0.0.1:*",
            "https",
            "127.0.0.1",
            Some(4000)
        ));
        assert!(allows(
            "https://*.auth0.com",
            "https",
            "acme.eu.auth0.com",
            None
        ));
        assert!(!allows("https://*.auth0.com", "https", "auth0.com", None));
        assert!(!allows(
            "https://*.auth0.com",
            "https",
            "evilauth0.com",
            None
        ));
        assert!(allows(
            "https://Login.Example.com",
            "https",
            "login.example.COM",
            None
        ));
        assert!(allows("*://*:*", "http", "10.0.0.1", Some(1)));
        assert!(allows("http://[::1]:*", "http", "[::1]", Some(80)));
        assert!(allows("http://[::1]", "http", "[::1]", None));
        assert!(!allows("http://[::1]", "http", "[::1]", Some(8080)));
    }

    #[test]
    fn malformed_rules_are_refused_with_a_reason() {
        for rule in [
            "example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://ex*ample.com",
            "https://example.com:port",
            "https://",
        ] {
            assert!(OutboundRule::parse(rule).is_err(), "{rule}");
        }
    }

    #[test]
    fn the_placeholder_rule_reaches_nothing_and_says_so() -> Result<(), String> {
        let unset = OutboundRule::parse("https://oidc-not-configured.invalid:443")?;
        assert!(unset.is_unconfigured());
        assert!(!unset.allows("https", "acme.eu.auth0.com", None));
        assert!(!OutboundRule::parse("https://*:443")?.is_unconfigured());
        assert_eq!(
            OutboundRule::parse(" https://*:443 ")?.text(),
            "https://*:443"
        );
        Ok(())
    }
}
