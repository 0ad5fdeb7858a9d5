//! Where outgoing webhooks may be sent. Any org admin can save an endpoint
//! URL and Gatehouse then posts to it, so an unchecked URL would let an
//! org make the server call its own network (a database's HTTP port, a
//! cloud metadata service). A URL is taken when
//! - it is an absolute `http(s)` URL of at most [`MAX_URL_LEN`] bytes,
//!   without credentials in it;
//! - it is `https`, unless its host is one the operator lists in
//!   `webhook_endpoint_private_hosts` ([`PRIVATE_HOSTS_VARIABLE`]);
//! - its host is public, or the operator lists it: loopback, private,
//!   carrier-grade NAT, link-local and local names are refused otherwise;
//!   metadata services, unspecified and reserved addresses always are;
//! - the jobs component's outbound rule (`webhook_delivery_hosts`,
//!   [`DELIVERY_HOSTS_VARIABLE`], one `allowed_outbound_hosts` entry) lets
//!   it be called: Spin refuses every other call, so an endpoint outside
//!   it (`https://hooks.example.com:8443/` under `https://*:443`) would be
//!   saved and then fail every attempt until it is disabled. The rule is
//!   read as Spin reads it, by the matcher the OIDC policy uses
//!   ([`gatehouse_auth::oidc::outbound_rule`]).
//!
//! The same check runs when an admin saves the URL and before each
//! delivery, so a URL saved under a wider list is not called after the
//! operator narrows it; [`UrlPolicy::from_variables`] reads both variables
//! for either. Hosts are judged by spelling only
//! ([`gatehouse_auth::oidc::address`]): a component cannot resolve DNS, so
//! a public name that resolves to a private address is bounded by the
//! component's `allowed_outbound_hosts`, not here.

use std::fmt;

use gatehouse_auth::oidc::address::{self, HostKind};
use gatehouse_auth::oidc::outbound_rule::OutboundRule;
use gatehouse_auth::oidc::policy::target;

/// The Spin variable listing the hosts endpoints may be on despite being
/// loopback, private, link-local or local names (comma-separated).
pub const PRIVATE_HOSTS_VARIABLE: &str = "webhook_endpoint_private_hosts";

/// The Spin variable holding the jobs component's `allowed_outbound_hosts`
/// entry for deliveries (`https://*:443` by default).
pub const DELIVERY_HOSTS_VARIABLE: &str = "webhook_delivery_hosts";

/// The longest endpoint URL taken, in bytes.
pub const MAX_URL_LEN: usize = 2000;

/// The operator's settings for endpoint URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Hosts as spelled in URLs, lower-cased, IPv6 in brackets, without a
    /// trailing dot.
    private_hosts: Vec<String>,
    /// Where deliveries may go (`webhook_delivery_hosts`); `None`: not
    /// checked here, left to the host's `allowed_outbound_hosts`.
    delivery_rule: Option<DeliveryRule>,
}

/// `webhook_delivery_hosts` as configured, and the rule it is (or why it
/// is none).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeliveryRule {
    text: String,
    rule: Result<OutboundRule, String>,
}

/// Why an endpoint URL is not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    /// Longer than [`MAX_URL_LEN`].
    TooLong,
    /// Not an absolute http(s) URL with a host.
    NotAUrl,
    /// A user name or password in the URL (`https://user:pw@host/`).
    Credentials,
    /// A host that names nothing reachable (`256.1.1.1`, `a_b`).
    BadHost {
        /// The host as given.
        host: String,
    },
    /// Plain `http` to a host the operator does not list.
    PlainHttp {
        /// The host as given.
        host: String,
    },
    /// A metadata service, an unspecified or a reserved address: never.
    Forbidden {
        /// The host as given.
        host: String,
        /// What it is.
        kind: HostKind,
    },
    /// A loopback, private, link-local or local host the operator does
    /// not list.
    Private {
        /// The host as given.
        host: String,
        /// What it is.
        kind: HostKind,
    },
    /// Outside the outbound rule deliveries are sent under.
    OutsideRule {
        /// `webhook_delivery_hosts`.
        rule: String,
    },
    /// The outbound rule is missing or no valid rule: nothing is taken.
    RuleNotValid {
        /// `webhook_delivery_hosts`, as configured.
        rule: String,
        /// Why it is no rule.
        problem: String,
    },
}

impl UrlRefusal {
    /// The stable code of the refusal (a field error's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            UrlRefusal::TooLong => "too_long",
            UrlRefusal::NotAUrl => "invalid_url",
            UrlRefusal::Credentials => "url_has_credentials",
            UrlRefusal::BadHost { .. } => "invalid_host",
            UrlRefusal::PlainHttp { .. } => "https_required",
            UrlRefusal::Forbidden { .. } => "forbidden_host",
            UrlRefusal::Private { .. } => "private_host",
            UrlRefusal::OutsideRule { .. } => "outside_outbound_rule",
            UrlRefusal::RuleNotValid { .. } => "outbound_rule_invalid",
        }
    }
}

impl fmt::Display for UrlRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlRefusal::TooLong => write!(f, "url is at most {MAX_URL_LEN} characters"),
            UrlRefusal::NotAUrl => write!(f, "url is not an absolute http(s) URL with a host"),
            UrlRefusal::Credentials => {
                write!(
                    f,
                    "url carries credentials: put them nowhere, the signature authenticates deliveries"
                )
            }
            UrlRefusal::BadHost { host } => write!(f, "the host `{host}` is not a valid host"),
            UrlRefusal::PlainHttp { host } => write!(
                f,
                "deliveries to {host} must use https (plain http is for hosts the operator lists in {PRIVATE_HOSTS_VARIABLE})"
            ),
            UrlRefusal::Forbidden { host, kind } => write!(
                f,
                "the host {host} is {}, which never receives webhooks",
                kind.describe()
            ),
            UrlRefusal::Private { host, kind } => write!(
                f,
                "the host {host} is {}; endpoints must be on the public internet unless the operator lists the host in {PRIVATE_HOSTS_VARIABLE}",
                kind.describe()
            ),
            UrlRefusal::OutsideRule { rule } => write!(
                f,
                "the URL's scheme, host or port is outside this deployment's outbound rule for webhooks ({DELIVERY_HOSTS_VARIABLE} = `{rule}`): deliveries to it could never be sent"
            ),
            UrlRefusal::RuleNotValid { rule, problem } => write!(
                f,
                "this deployment's outbound rule for webhooks ({DELIVERY_HOSTS_VARIABLE} = `{rule}`) is not valid: {problem}"
            ),
        }
    }
}

/// A host as it is compared: lower case, one trailing dot dropped, an IPv6
/// address in brackets (the list may name it either way).
fn normalized(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host).to_string();
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    }
}

/// Whether the authority of `url` (between `//` and the path) holds an `@`.
fn has_credentials(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest[..end].contains('@')
}

impl UrlPolicy {
    /// The policy of `private_hosts`, the variable's value: hosts separated
    /// by commas (`127.0.0.1, hooks.internal, [::1]`); empty lists none.
    /// It leaves the outbound rule to the host; see
    /// [`UrlPolicy::with_delivery_rule`].
    pub fn new(private_hosts: &str) -> UrlPolicy {
        UrlPolicy {
            private_hosts: private_hosts
                .split(',')
                .map(normalized)
                .filter(|h| !h.is_empty())
                .collect(),
            delivery_rule: None,
        }
    }

    /// The policy that also holds URLs to `rule`, the value of
    /// `webhook_delivery_hosts` (one `allowed_outbound_hosts` entry); a
    /// rule that does not parse takes nothing.
    pub fn with_delivery_rule(self, rule: &str) -> UrlPolicy {
        self.with_rule(rule.trim(), OutboundRule::parse(rule))
    }

    fn with_rule(mut self, text: &str, rule: Result<OutboundRule, String>) -> UrlPolicy {
        self.delivery_rule = Some(DeliveryRule {
            text: text.to_string(),
            rule,
        });
        self
    }

    /// The deployment's policy, from both variables
    /// ([`PRIVATE_HOSTS_VARIABLE`], [`DELIVERY_HOSTS_VARIABLE`]). An
    /// unset private-hosts list lists none; a component not given
    /// `webhook_delivery_hosts` takes no URL (refused as
    /// `outbound_rule_invalid`, naming the variable).
    #[cfg(target_arch = "wasm32")]
    pub async fn from_variables() -> UrlPolicy {
        let private_hosts = spin_sdk::variables::get(PRIVATE_HOSTS_VARIABLE)
            .await
            .unwrap_or_default();
        let policy = UrlPolicy::new(&private_hosts);
        match spin_sdk::variables::get(DELIVERY_HOSTS_VARIABLE).await {
            Ok(rule) => policy.with_delivery_rule(&rule),
            Err(_) => policy.with_rule(
                "",
                Err(format!(
                    "{DELIVERY_HOSTS_VARIABLE} is not available to this component"
                )),
            ),
        }
    }

    /// Whether the operator lists `host`.
    fn lists(&self, host: &str) -> bool {
        let host = normalized(host);
        self.private_hosts.contains(&host)
    }

    /// `Ok` when deliveries may be sent to `url`; else why not.
    pub fn check(&self, url: &str) -> Result<(), UrlRefusal> {
        if url.len() > MAX_URL_LEN {
            return Err(UrlRefusal::TooLong);
        }
        if has_credentials(url) {
            return Err(UrlRefusal::Credentials);
        }
        // A fragment is never sent; a URL holding one was not meant for a server.
        if url.contains('#') {
            return Err(UrlRefusal::NotAUrl);
        }
        let target = target(url).ok_or(UrlRefusal::NotAUrl)?;
        let host = target.host;
        let kind =
            address::classify(&host).ok_or_else(|| UrlRefusal::BadHost { host: host.clone() })?;
        let listed = self.lists(&host);
        if kind != HostKind::Public && !kind.may_be_allowed() {
            return Err(UrlRefusal::Forbidden { host, kind });
        }
        if kind != HostKind::Public && !listed {
            return Err(UrlRefusal::Private { host, kind });
        }
        if target.scheme != "https" && !listed {
            return Err(UrlRefusal::PlainHttp { host });
        }
        if let Some(delivery) = &self.delivery_rule {
            match &delivery.rule {
                Ok(rule) if rule.allows(&target.scheme, &host, target.port) => {}
                Ok(_) => {
                    return Err(UrlRefusal::OutsideRule {
                        rule: delivery.text.clone(),
                    });
                }
                Err(problem) => {
                    return Err(UrlRefusal::RuleNotValid {
                        rule: delivery.text.clone(),
                        problem: problem.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(policy: &UrlPolicy, url: &str) -> &'static str {
        match policy.check(url) {
            Ok(()) => "ok",
            Err(refusal) => refusal.code(),
        }
    }

    #[test]
    fn public_https_urls_are_taken_with_ports_paths_and_queries() {
        let policy = UrlPolicy::default();
        for url in [
            "https://hooks.example.com/gatehouse",
            "https://hooks.example.com:8443/in?tenant=acme&x=%20",
            "https://8.8.8.8/hook",
            "https://[2606:4700::1111]/hook",
            "HTTPS://Hooks.Example.com",
        ] {
            assert_eq!(code(&policy, url), "ok", "{url}");
        }
    }

    #[test]
    fn plain_http_to_a_public_host_is_refused() {
        let policy = UrlPolicy::new("127.0.0.1");
        assert_eq!(
            code(&policy, "http://hooks.example.com/x"),
            "https_required"
        );
        assert_eq!(code(&policy, "http://8.8.8.8/x"), "https_required");
    }

    #[test]
    fn what_is_not_an_absolute_http_url_is_refused() {
        let policy = UrlPolicy::new("localhost");
        for url in [
            "",
            "hooks.example.com/x",
            "/relative",
            "ftp://hooks.example.com/x",
            "javascript:alert(1)",
            "https://",
            "https:///path",
            "https://hooks.example.com:99999/",
            "https://hooks.example.com/a b",
            "https://hooks.example.com/#frag",
        ] {
            assert_eq!(code(&policy, url), "invalid_url", "{url:?}");
        }
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(code(&policy, &long), "too_long");
        let at_most = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN - 26));
        assert_eq!(at_most.len(), MAX_URL_LEN);
        assert_eq!(code(&policy, &at_most), "ok");
    }

    #[test]
    fn credentials_in_a_url_are_refused_even_on_a_listed_host() {
        let policy = UrlPolicy::new("localhost");
        for url in [
            "https://user:pw@hooks.example.com/x",
            "https://user@hooks.example.com/x",
            "http://a@localhost/x",
            "https://hooks.example.com@10.0.0.1/x",
        ] {
            assert_eq!(code(&policy, url), "url_has_credentials", "{url}");
        }
        // An `@` after the authority is only part of the path or query.
        assert_eq!(
            code(&policy, "https://hooks.example.com/to/a@b?c=d@e"),
            "ok"
        );
    }

    #[test]
    fn loopback_private_link_local_and_local_names_are_refused_unless_listed() {
        let policy = UrlPolicy::default();
        for url in [
            "https://127.0.0.1/x",
            "https://2130706433/x",
            "https://localhost:8080/x",
            "https://[::1]/x",
            "https://10.0.0.1/x",
            "https://192.168.1.20/x",
            "https://172.16.5.4/x",
            "https://[fd12::1]/x",
            "https://100.64.0.1/x",
            "https://169.254.10.10/x",
            "https://hooks.internal/x",
            "https://printer.local/x",
            "https://billing/x",
        ] {
            assert_eq!(code(&policy, url), "private_host", "{url}");
        }
    }

    #[test]
    fn listed_hosts_are_taken_over_http_and_https_and_only_they() {
        let policy = UrlPolicy::new(" 127.0.0.1 , Hooks.Internal., ::1,,");
        for url in [
            "http://127.0.0.1:9000/hook",
            "https://127.0.0.1/hook",
            "http://hooks.internal/x",
            "https://HOOKS.internal./x",
            "http://[::1]:8080/x",
        ] {
            assert_eq!(code(&policy, url), "ok", "{url}");
        }
        // Listing one spelling lists that spelling: others are judged anew.
        assert_eq!(code(&policy, "http://127.0.0.2/x"), "private_host");
        assert_eq!(code(&policy, "http://2130706433/x"), "private_host");
        assert_eq!(code(&policy, "http://localhost/x"), "private_host");
        assert_eq!(code(&policy, "http://10.0.0.1/x"), "private_host");
    }

    #[test]
    fn metadata_services_unspecified_and_reserved_hosts_are_refused_even_when_listed() {
        let listed =
            "169.254.169.254, metadata.google.internal, 0.0.0.0, 224.0.0.1, [fd00:ec2::254]";
        let policy = UrlPolicy::new(listed);
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "https://169.254.169.254/",
            "http://0xa9fea9fe/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://[fd00:ec2::254]/",
            "http://0.0.0.0:8080/",
            "http://224.0.0.1/",
        ] {
            assert_eq!(code(&policy, url), "forbidden_host", "{url}");
        }
    }

    #[test]
    fn hosts_that_are_no_address_or_name_are_refused() {
        let policy = UrlPolicy::default();
        for url in ["https://256.0.0.1/x", "https://a_b.example.com/x"] {
            assert_eq!(code(&policy, url), "invalid_host", "{url}");
        }
    }

    #[test]
    fn urls_outside_the_delivery_rule_are_refused_naming_it() {
        let policy = UrlPolicy::new("127.0.0.1").with_delivery_rule(" https://*:443 ");
        for url in [
            "https://hooks.example.com/x",
            "https://hooks.example.com:443/x",
            "HTTPS://Hooks.Example.com",
        ] {
            assert_eq!(code(&policy, url), "ok", "{url}");
        }
        for url in [
            "https://hooks.example.com:8443/x",
            "https://hooks.example.com:80/x",
            // Listed, so plain http passes the host check; the rule still refuses it.
            "http://127.0.0.1:9000/x",
        ] {
            assert_eq!(code(&policy, url), "outside_outbound_rule", "{url}");
        }
        let text = policy
            .check("https://hooks.example.com:8443/secret-path")
            .err()
            .map(|r| r.to_string())
            .unwrap_or_default();
        assert!(
            text.contains("webhook_delivery_hosts = `https://*:443`"),
            "{text}"
        );
        assert!(!text.contains("secret-path"), "{text}");
        // The host checks come first: their codes say more.
        assert_eq!(code(&policy, "https://10.0.0.1/x"), "private_host");

        let narrow = UrlPolicy::default().with_delivery_rule("https://*.example.com");
        assert_eq!(code(&narrow, "https://hooks.example.com/x"), "ok");
        assert_eq!(
            code(&narrow, "https://hooks.example.org/x"),
            "outside_outbound_rule"
        );
        let local = UrlPolicy::new("127.0.0.1").with_delivery_rule("http://127.0.0.1:*");
        assert_eq!(code(&local, "http://127.0.0.1:9000/x"), "ok");
    }

    #[test]
    fn a_delivery_rule_that_is_no_rule_takes_nothing() {
        for rule in ["", "hooks.example.com", "https://*:port"] {
            let policy = UrlPolicy::default().with_delivery_rule(rule);
            assert_eq!(
                code(&policy, "https://hooks.example.com/x"),
                "outbound_rule_invalid",
                "{rule:?}"
            );
        }
        // Without a rule, the host's allowed_outbound_hosts is left to judge.
        assert_eq!(
            code(&UrlPolicy::default(), "https://hooks.example.com:8443/x"),
            "ok"
        );
    }

    #[test]
    fn every_refusal_explains_itself_without_the_url_s_path() {
        let policy = UrlPolicy::default();
        let text = match policy.check("https://10.0.0.1/secret-path?token=t") {
            Err(refusal) => refusal.to_string(),
            Ok(()) => String::new(),
        };
        assert!(
            text.contains("10.0.0.1") && text.contains(PRIVATE_HOSTS_VARIABLE),
            "{text}"
        );
        assert!(
            !text.contains("secret-path") && !text.contains("token"),
            "{text}"
        );
    }
}
