//! The bodies of `POST /v1/webhooks/sources` and `PATCH …/{id}`, checked
//! before anything is stored. A source's settings become the
//! [`VerifyConfig`] its deliveries are verified with.

use gatehouse_http::FieldError;
use gatehouse_http::json::Validate;
use serde::{Deserialize, Deserializer, Serialize};
use webhooks_core::{ConfigError, Provider, VerifyConfig};

/// The most secrets (or public keys) a source holds: a rotation needs two.
pub const MAX_SECRETS: usize = 5;
/// The longest secret, credential or header value accepted.
const MAX_SECRET_LEN: usize = 512;
/// The longest description.
const MAX_DESCRIPTION: usize = 200;

/// Basic credentials an Azure DevOps service hook sends. Azure DevOps
/// makes both the user name and the password optional (the Web Hooks
/// consumer's `basicAuthUsername` and `basicAuthPassword`), so a
/// subscription may send a password with an empty user name; the password
/// is the secret and is required here.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Basic {
    pub username: String,
    pub password: String,
}

/// A header (and its value) an Azure DevOps service hook sends.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// `POST /v1/webhooks/sources`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    pub provider: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub secrets: Option<Vec<String>>,
    #[serde(default)]
    pub tolerance_seconds: Option<i64>,
    #[serde(default)]
    pub basic: Option<Basic>,
    #[serde(default)]
    pub header: Option<Header>,
    #[serde(default)]
    pub deduplicate_bodies: Option<bool>,
}

/// `PATCH /v1/webhooks/sources/{id}`: each field present replaces the
/// stored one; `null` clears an optional one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchSource {
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub secrets: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub tolerance_seconds: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub basic: Option<Option<Basic>>,
    #[serde(default, deserialize_with = "present")]
    pub header: Option<Option<Header>>,
    #[serde(default, deserialize_with = "present")]
    pub deduplicate_bodies: Option<Option<bool>>,
}

/// A field that is present, even as null: `Some(None)`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// What a source verifies with, as sealed at rest.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Settings {
    pub secrets: Vec<String>,
    pub tolerance_seconds: Option<i64>,
    pub basic: Option<Basic>,
    pub header: Option<Header>,
    pub description: Option<String>,
    /// GitHub and Jira: whether a body already stored is a duplicate under
    /// any delivery id; `None` is yes. Sealed settings written before it
    /// existed read as `None`.
    #[serde(default)]
    pub deduplicate_bodies: Option<bool>,
}

impl Settings {
    /// The settings with `patch` applied.
    pub fn patched(mut self, patch: PatchSource) -> Settings {
        if let Some(description) = patch.description {
            self.description = description;
        }
        if let Some(secrets) = patch.secrets {
            self.secrets = secrets;
        }
        if let Some(tolerance) = patch.tolerance_seconds {
            self.tolerance_seconds = tolerance;
        }
        if let Some(basic) = patch.basic {
            self.basic = basic;
        }
        if let Some(header) = patch.header {
            self.header = header;
        }
        if let Some(deduplicate) = patch.deduplicate_bodies {
            self.deduplicate_bodies = deduplicate;
        }
        self
    }

    /// Whether `provider`'s deliveries are deduplicated by their body too
    /// (see [`webhooks_core::replay_digest`]); `None` for a provider that
    /// never is.
    pub fn deduplicates_bodies(&self, provider: Provider) -> Option<bool> {
        matches!(provider, Provider::GitHub | Provider::Jira)
            .then(|| self.deduplicate_bodies.unwrap_or(true))
    }

    /// The verification config these settings make.
    pub fn verify_config(&self) -> VerifyConfig {
        let mut config = VerifyConfig::with_secrets(self.secrets.iter().cloned());
        if let Some(t) = self.tolerance_seconds.and_then(|t| u64::try_from(t).ok()) {
            config = config.tolerance(t);
        }
        if let Some(b) = &self.basic {
            config = config.basic(&b.username, &b.password);
        }
        if let Some(h) = &self.header {
            config = config.header(&h.name, &h.value);
        }
        config
    }

    /// Every problem with these settings for `provider`.
    pub fn check(&self, provider: Provider) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
        {
            errors.push(FieldError::new(
                "/description",
                "too_long",
                format!("description is at most {MAX_DESCRIPTION} characters"),
            ));
        }
        if self.deduplicate_bodies.is_some() && self.deduplicates_bodies(provider).is_none() {
            errors.push(FieldError::new(
                "/deduplicate_bodies",
                "deduplication_not_supported",
                format!("{provider} deliveries are deduplicated by a signed or body id only"),
            ));
        }
        let signs = provider != Provider::AzureDevOps;
        if self.secrets.len() > MAX_SECRETS {
            errors.push(FieldError::new(
                "/secrets",
                "too_many_secrets",
                format!("a source holds at most {MAX_SECRETS} secrets"),
            ));
        }
        for (i, secret) in self.secrets.iter().enumerate() {
            if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
                errors.push(FieldError::new(
                    format!("/secrets/{i}"),
                    "invalid_secret",
                    format!("a secret is 1 to {MAX_SECRET_LEN} characters"),
                ));
            }
        }
        if self.tolerance_seconds.is_some() && provider.default_tolerance_secs().is_none() {
            errors.push(FieldError::new(
                "/tolerance_seconds",
                "tolerance_not_supported",
                format!("{provider} deliveries carry no signed timestamp"),
            ));
        } else if self
            .tolerance_seconds
            .is_some_and(|t| !(1..=MAX_TOLERANCE).contains(&t))
        {
            errors.push(FieldError::new(
                "/tolerance_seconds",
                "tolerance_out_of_range",
                "tolerance_seconds is 1 to 3600",
            ));
        }
        if !signs && (self.basic.is_some() || self.header.is_some()) {
            let too_long = |v: &str| v.is_empty() || v.len() > MAX_SECRET_LEN;
            if let Some(b) = &self.basic
                && (b.username.len() > MAX_SECRET_LEN
                    || too_long(&b.password)
                    || b.username.contains(':'))
            {
                errors.push(FieldError::new(
                    "/basic",
                    "invalid_credentials",
                    format!(
                        "username is up to {MAX_SECRET_LEN} characters without ':' (it may be empty), password 1 to {MAX_SECRET_LEN}"
                    ),
                ));
            }
            if let Some(h) = &self.header
                && too_long(&h.value)
            {
                errors.push(FieldError::new(
                    "/header/value",
                    "invalid_credentials",
                    format!("the header's value is 1 to {MAX_SECRET_LEN} characters"),
                ));
            }
        }
        if !signs && !self.secrets.is_empty() {
            errors.push(FieldError::new(
                "/secrets",
                "secrets_not_supported",
                "azure_devops deliveries carry no signature: use basic or header",
            ));
        }
        if signs && (self.basic.is_some() || self.header.is_some()) {
            let pointer = if self.basic.is_some() {
                "/basic"
            } else {
                "/header"
            };
            errors.push(FieldError::new(
                pointer,
                "credentials_not_supported",
                format!("{provider} deliveries are verified by their signature"),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // The provider's own rules: the secrets' form, credentials.
        self.verify_config()
            .check(provider)
            .map_err(|e| vec![config_error(provider, e)])
    }
}

/// The widest tolerance, as the verifier accepts it.
const MAX_TOLERANCE: i64 = 3600;

fn config_error(provider: Provider, e: ConfigError) -> FieldError {
    match e {
        ConfigError::NoSecret => FieldError::new(
            "/secrets",
            "secrets_required",
            format!("{provider} sources need at least one secret"),
        ),
        ConfigError::InvalidSecret(i) | ConfigError::PrivateKey(i) => {
            FieldError::new(format!("/secrets/{i}"), "invalid_secret", e.to_string())
        }
        ConfigError::NoCredentials => FieldError::new(
            "/basic",
            "credentials_required",
            "azure_devops sources need basic credentials, a header, or both",
        ),
        ConfigError::InvalidHeaderName(_) => {
            FieldError::new("/header/name", "invalid_header_name", e.to_string())
        }
        ConfigError::ToleranceOutOfRange => FieldError::new(
            "/tolerance_seconds",
            "tolerance_out_of_range",
            "tolerance_seconds is 1 to 3600",
        ),
    }
}

impl CreateSource {
    /// The provider named, if known.
    pub fn provider(&self) -> Option<Provider> {
        Provider::parse(&self.provider)
    }

    /// The settings the body gives.
    pub fn settings(&self) -> Settings {
        Settings {
            secrets: self.secrets.clone().unwrap_or_default(),
            tolerance_seconds: self.tolerance_seconds,
            basic: self.basic.clone(),
            header: self.header.clone(),
            description: self.description.clone(),
            deduplicate_bodies: self.deduplicate_bodies,
        }
    }
}

impl Validate for CreateSource {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let Some(provider) = self.provider() else {
            return Err(vec![FieldError::new(
                "/provider",
                "unknown_provider",
                "provider is one of stripe, github, standard, jira, teams, azure_devops, slack",
            )]);
        };
        self.settings().check(provider)
    }
}

impl Validate for PatchSource {
    // Checked against the source's provider once it is loaded.
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn azure(username: &str, password: &str) -> Settings {
        Settings {
            basic: Some(Basic {
                username: username.into(),
                password: password.into(),
            }),
            ..Settings::default()
        }
    }

    fn codes(settings: &Settings) -> Vec<String> {
        match settings.check(Provider::AzureDevOps) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .iter()
                .map(|e| format!("{} {}", e.pointer, e.code))
                .collect(),
        }
    }

    #[test]
    fn only_github_and_jira_sources_deduplicate_bodies_and_may_turn_it_off() {
        let off = Settings {
            deduplicate_bodies: Some(false),
            ..Settings::default()
        };
        for provider in Provider::ALL {
            let expected = match provider {
                Provider::GitHub | Provider::Jira => (Some(true), Some(false)),
                _ => (None, None),
            };
            let got = (
                Settings::default().deduplicates_bodies(provider),
                off.deduplicates_bodies(provider),
            );
            assert_eq!(got, expected, "{provider}");
        }
        assert!(codes(&off).contains(&"/deduplicate_bodies deduplication_not_supported".into()));
    }

    #[test]
    fn azure_devops_basic_credentials_may_have_an_empty_username_but_not_an_empty_password() {
        assert!(codes(&azure("", "a long service hook password")).is_empty());
        assert!(codes(&azure("gatehouse", "a long service hook password")).is_empty());
        for (username, password) in [
            ("gatehouse", ""),
            ("", ""),
            ("user:name", "password"),
            (&"u".repeat(MAX_SECRET_LEN + 1), "password"),
            ("gatehouse", &"p".repeat(MAX_SECRET_LEN + 1)),
        ] {
            let errors = codes(&azure(username, password));
            assert_eq!(
                errors,
                ["/basic invalid_credentials"],
                "{username:?} {password:?}"
            );
        }
    }
}
