//! Which provider URLs Gatehouse may call: the issuer an org admin saves,
//! and the endpoints its discovery document names. Any new user can make
//! an org and configure a provider, and `/v1/oidc/{id}/start` fetches the
//! issuer's discovery document without authentication, so an unchecked
//! issuer would let anyone make the server connect where it points. A URL
//! is taken when
//! - it is an absolute `https` URL (or `http` to a host on a private
//!   network), without credentials in it;
//! - its host is public, or private and the operator allows private
//!   issuers (`oidc_allow_private_issuers`); metadata services, unspecified
//!   and reserved addresses are never taken (see [`super::address`]);
//! - the operator's outbound rule (`oidc_outbound_hosts`) allows it.
//!
//! Names are judged by spelling only: the guest cannot resolve DNS, so a
//! public name pointing at a private address is bounded by the outbound
//! rule alone, which is why that rule should name the providers' hosts.

use std::fmt;

use super::address::{self, HostKind};
use super::outbound_rule::OutboundRule;

/// The operator's settings for reaching identity providers.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    /// `oidc_outbound_hosts` as configured.
    rule_text: String,
    /// The rule, or why it is no rule.
    rule: Result<OutboundRule, String>,
    /// `oidc_allow_private_issuers = "true"`.
    allow_private: bool,
}

/// Where a URL points: scheme, host as spelled (IPv6 in brackets), port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: String,
    /// The host, lower-cased.
    pub host: String,
    /// The explicit port, if any.
    pub port: Option<u16>,
}

/// The scheme, host and port of an absolute http(s) URL; `None` for
/// anything else, or a URL carrying credentials (`user@host`), which
/// would make the host ambiguous to a reader.
pub fn target(url: &str) -> Option<Target> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host();
    if host.is_empty() {
        return None;
    }
    // `http::Uri` takes `host:` and `host:99999`; a request would not.
    let port = match authority.as_str().strip_prefix(host) {
        Some("") => None,
        Some(rest) => Some(rest.strip_prefix(':')?.parse::<u16>().ok()?),
        None => return None,
    };
    Some(Target {
        scheme: scheme.to_string(),
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// Why a URL is not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not an absolute http(s) URL with a host, or it carries credentials.
    NotAUrl,
    /// A host that names nothing reachable (`256.1.1.1`, `a_b`).
    BadHost {
        /// The host as given.
        host: String,
    },
    /// A metadata service, an unspecified or a reserved address.
    Forbidden {
        /// The host as given.
        host: String,
        /// What it is.
        kind: HostKind,
    },
    /// A private host, and the operator does not allow them.
    Private {
        /// The host as given.
        host: String,
        /// What it is.
        kind: HostKind,
    },
    /// Plain `http` to a public host: the client secret and the keys would
    /// cross the internet in clear.
    PlainHttp,
    /// The outbound rule does not allow it.
    OutsideRule {
        /// `oidc_outbound_hosts`.
        rule: String,
    },
    /// The outbound rule is the placeholder or no valid rule.
    NotConfigured {
        /// `oidc_outbound_hosts`.
        rule: String,
        /// Why it is no rule, when it is not one.
        problem: Option<String>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAUrl => write!(
                f,
                "it is not an absolute http(s) URL with a host and without credentials"
            ),
            Refusal::BadHost { host } => write!(f, "its host `{host}` is not a valid host"),
            Refusal::Forbidden { host, kind } => write!(
                f,
                "its host {host} is {}, which is never an identity provider",
                kind.describe()
            ),
            Refusal::Private { host, kind } => write!(
                f,
                "its host {host} is {}; providers must be on the public internet unless the operator sets oidc_allow_private_issuers",
                kind.describe()
            ),
            Refusal::PlainHttp => write!(
                f,
                "plain http is taken only on a private network the operator allows: use https"
            ),
            Refusal::OutsideRule { rule } => write!(
                f,
                "it is outside this deployment's outbound rule for identity providers (oidc_outbound_hosts = `{rule}`)"
            ),
            Refusal::NotConfigured { rule, problem } => match problem {
                Some(problem) => write!(
                    f,
                    "this deployment's outbound rule for identity providers (oidc_outbound_hosts = `{rule}`) is not valid: {problem}"
                ),
                None => write!(
                    f,
                    "this deployment reaches no identity provider until the operator sets oidc_outbound_hosts (now `{rule}`)"
                ),
            },
        }
    }
}

impl OutboundPolicy {
    /// The policy from the two variables' values.
    pub fn new(rule: &str, allow_private: &str) -> OutboundPolicy {
        OutboundPolicy {
            rule_text: rule.trim().to_string(),
            rule: OutboundRule::parse(rule),
            allow_private: allow_private.trim().eq_ignore_ascii_case("true"),
        }
    }

    /// A policy that takes nothing, for a component that was not given
    /// the variables.
    pub fn deny_all() -> OutboundPolicy {
        OutboundPolicy {
            rule_text: String::new(),
            rule: Err("oidc_outbound_hosts is not available to this component".into()),
            allow_private: false,
        }
    }

    /// Whether Gatehouse may call `url`.
    pub fn check(&self, url: &str) -> Result<(), Refusal> {
        let target = target(url).ok_or(Refusal::NotAUrl)?;
        let kind = address::classify(&target.host).ok_or_else(|| Refusal::BadHost {
            host: target.host.clone(),
        })?;
        if !kind.may_be_allowed() && kind != HostKind::Public {
            return Err(Refusal::Forbidden {
                host: target.host,
                kind,
            });
        }
        if kind != HostKind::Public && !self.allow_private {
            return Err(Refusal::Private {
                host: target.host,
                kind,
            });
        }
        if target.scheme == "http" && kind == HostKind::Public {
            return Err(Refusal::PlainHttp);
        }
        let rule = match &self.rule {
            Ok(rule) if rule.is_unconfigured() => {
                return Err(Refusal::NotConfigured {
                    rule: self.rule_text.clone(),
                    problem: None,
                });
            }
            Ok(rule) => rule,
            Err(problem) => {
                return Err(Refusal::NotConfigured {
                    rule: self.rule_text.clone(),
                    problem: Some(problem.clone()),
                });
            }
        };
        if !rule.allows(&target.scheme, &target.host, target.port) {
            return Err(Refusal::OutsideRule {
                rule: self.rule_text.clone(),
            });
        }
        Ok(())
    }
}

/// Whether an issuer may use plain `http` as far as its spelling tells:
/// only to a host that is not public (a provider beside Gatehouse). The
/// operator's settings decide the rest when the provider is saved.
pub fn plain_http_possible(url: &str) -> bool {
    target(url).is_some_and(|t| {
        t.scheme == "https" || address::classify(&t.host).is_some_and(|k| k != HostKind::Public)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNSET: &str = "https://oidc-not-configured.invalid:443";

    #[test]
    fn urls_are_split_as_a_request_would_address_them() {
        let t = |url: &str| target(url).map(|t| (t.scheme, t.host, t.port));
        assert_eq!(
            t("https://Acme.eu.auth0.com/"),
            Some(("https".into(), "acme.eu.auth0.com".into(), None))
        );
        assert_eq!(
            t("http://[::1]:8080/realms/x"),
            Some(("http".into(), "[::1]".into(), Some(8080)))
        );
        assert_eq!(
            t("http://2130706433"),
            Some(("http".into(), "2130706433".into(), None))
        );
        for bad in [
            "idp.example.com",
            "ftp://idp.example.com",
            "https://user@127.0.0.1",
            "https://idp.example.com@127.0.0.1",
            "https://idp.example.com:99999",
            "https://idp.example.com:",
            "/relative",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn private_issuers_are_refused_unless_the_operator_allows_them() {
        let closed = OutboundPolicy::new("*://*:*", "false");
        let open = OutboundPolicy::new("*://*:*", "true");
        for issuer in [
            "https://127.0.0.1",
            "http://10.0.0.1",
            "http://[::1]",
            "http://2130706433",
            "https://0x7f.1",
            "https://[::ffff:127.0.0.1]",
            "http://localhost:8080",
            "https://keycloak:8443/realms/acme",
            "https://192.168.1.20",
            "https://100.64.0.1",
            "https://169.254.10.10",
        ] {
            assert!(
                matches!(closed.check(issuer), Err(Refusal::Private { .. })),
                "{issuer}"
            );
            assert_eq!(open.check(issuer), Ok(()), "{issuer}");
        }
        for issuer in [
            "http://169.254.169.254",
            "https://169.254.169.254/latest",
            "https://[fd00:ec2::254]",
            "https://metadata.google.internal",
            "https://0.0.0.0",
            "https://[::]",
            "https://224.0.0.1",
        ] {
            for policy in [&closed, &open] {
                assert!(
                    matches!(policy.check(issuer), Err(Refusal::Forbidden { .. })),
                    "{issuer}"
                );
            }
        }
        assert_eq!(
            open.check("https://256.0.0.1"),
            Err(Refusal::BadHost {
                host: "256.0.0.1".into()
            })
        );
        assert_eq!(open.check("idp"), Err(Refusal::NotAUrl));
        assert_eq!(closed.check("https://acme.eu.auth0.com/"), Ok(()));
        assert_eq!(
            closed.check("http://acme.eu.auth0.com"),
            Err(Refusal::PlainHttp)
        );
        assert_eq!(
            open.check("http://idp.example.com"),
            Err(Refusal::PlainHttp)
        );
    }

    #[test]
    fn the_outbound_rule_bounds_what_the_address_rules_take() {
        let local = OutboundPolicy::new("http://127.0.0.1:*", "true");
        assert_eq!(local.check("http://127.0.0.1:4000"), Ok(()));
        let refused = local.check("http://localhost:4000");
        assert_eq!(
            refused,
            Err(Refusal::OutsideRule {
                rule: "http://127.0.0.1:*".into()
            })
        );
        assert!(
            refused
                .map_err(|r| r.to_string())
                .is_err_and(|m| m.contains("oidc_outbound_hosts = `http://127.0.0.1:*`"))
        );
        let auth0 = OutboundPolicy::new("https://*.auth0.com:443", "false");
        assert_eq!(auth0.check("https://acme.eu.auth0.com/"), Ok(()));
        assert!(matches!(
            auth0.check("https://corp.okta.com"),
            Err(Refusal::OutsideRule { .. })
        ));
        let unset = OutboundPolicy::new(UNSET, "false");
        assert!(matches!(
            unset.check("https://acme.eu.auth0.com/"),
            Err(Refusal::NotConfigured { problem: None, .. })
        ));
        let broken = OutboundPolicy::new("auth0.com", "false");
        assert!(matches!(
            broken.check("https://acme.eu.auth0.com/"),
            Err(Refusal::NotConfigured {
                problem: Some(_),
                ..
            })
        ));
        assert!(
            OutboundPolicy::deny_all()
                .check("https://acme.eu.auth0.com/")
                .is_err()
        );
    }

    #[test]
    fn plain_http_is_possible_only_off_the_public_internet() {
        assert!(plain_http_possible("https://idp.example.com"));
        assert!(plain_http_possible("http://127.0.0.1:4000"));
        assert!(plain_http_possible("http://keycloak:8080"));
        assert!(!plain_http_possible("http://idp.example.com"));
        assert!(!plain_http_possible("idp.example.com"));
    }
}
