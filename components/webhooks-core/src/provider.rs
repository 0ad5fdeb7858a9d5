//! The senders Gatehouse accepts webhooks from, named by stable strings that
//! are stored with each configured source.

use std::fmt;
use std::str::FromStr;

/// A webhook sender and so the way its deliveries are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Stripe: `Stripe-Signature: t=…,v1=…`, HMAC-SHA256 of `{t}.{body}`.
    Stripe,
    /// GitHub: `X-Hub-Signature-256: sha256=…`, HMAC-SHA256 of the body.
    GitHub,
    /// Any Standard Webhooks sender: `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature` with `v1` (HMAC-SHA256) and `v1a` (Ed25519).
    Standard,
    /// Jira Cloud admin webhooks with a secret: `X-Hub-Signature: sha256=…`.
    Jira,
    /// Microsoft Teams outgoing webhooks: `Authorization: HMAC …`.
    Teams,
    /// Azure DevOps service hooks: no signature; Basic credentials and/or a
    /// configured header.
    AzureDevOps,
    /// Slack: `X-Slack-Signature: v0=…` over `v0:{timestamp}:{body}`.
    Slack,
}

impl Provider {
    /// Every provider, in a fixed order.
    pub const ALL: [Provider; 7] = [
        Provider::Stripe,
        Provider::GitHub,
        Provider::Standard,
        Provider::Jira,
        Provider::Teams,
        Provider::AzureDevOps,
        Provider::Slack,
    ];

    /// The stable lowercase name (`stripe`, `github`, `standard`, `jira`,
    /// `teams`, `azure_devops`, `slack`).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::GitHub => "github",
            Provider::Standard => "standard",
            Provider::Jira => "jira",
            Provider::Teams => "teams",
            Provider::AzureDevOps => "azure_devops",
            Provider::Slack => "slack",
        }
    }

    /// The provider named exactly `name` (lowercase, as [`Provider::as_str`]).
    pub fn parse(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// How far, in seconds, a signed timestamp may be from now in either
    /// direction, for providers that sign one (`None` for those that do
    /// not). Stripe's and Slack's documented window and the Standard
    /// Webhooks libraries' are all five minutes.
    pub fn default_tolerance_secs(self) -> Option<u64> {
        match self {
            Provider::Stripe | Provider::Standard | Provider::Slack => Some(300),
            Provider::GitHub | Provider::Jira | Provider::Teams | Provider::AzureDevOps => None,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider name that is not one of [`Provider::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProvider;

impl fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown webhook provider")
    }
}

impl std::error::Error for UnknownProvider {}

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(name: &str) -> Result<Provider, UnknownProvider> {
        Provider::parse(name).ok_or(UnknownProvider)
    }
}
