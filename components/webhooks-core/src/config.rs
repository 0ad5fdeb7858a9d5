//! What one configured webhook source verifies its deliveries with.

use crate::Provider;
use crate::keys::{PublicKey, SigningKey, SigningSecret};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

/// The largest tolerance [`VerifyConfig::check`] accepts, in seconds: a
/// wider window makes a captured delivery replayable for longer.
pub const MAX_TOLERANCE_SECS: u64 = 3600;

/// A source's verification settings. Secrets are written as the provider
/// hands them out:
///
/// | provider | `secrets` entries |
/// | --- | --- |
/// | `stripe` | the endpoint's signing secret (`whsec_…`), used as is |
/// | `github`, `jira` | the webhook secret, used as is |
/// | `slack` | the app's signing secret, used as is |
/// | `standard` | `whsec_…` (or bare base64) HMAC secrets and `whpk_…` Ed25519 public keys |
/// | `teams` | the outgoing webhook's security token (base64) |
/// | `azure_devops` | unused: see `basic` and `headers` |
///
/// Any one entry that verifies accepts the delivery, so a new secret is
/// added beside the old one during a rotation and the old one removed after.
/// `Debug` shows how many entries there are, never their values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Secrets or public keys, in the provider's form (table above).
    pub secrets: Vec<String>,
    /// How far a signed timestamp may be from now, in seconds, in either
    /// direction; `None` takes [`Provider::default_tolerance_secs`].
    pub tolerance_secs: Option<u64>,
    /// Azure DevOps: Basic credentials, any one of which is accepted.
    pub basic: Vec<BasicCredentials>,
    /// Azure DevOps: header credentials, any one of which is accepted.
    pub headers: Vec<HeaderCredential>,
}

/// A user name and password the sender puts in `Authorization: Basic …`.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// The user name (Azure DevOps allows it to be empty).
    pub username: String,
    /// The password.
    pub password: String,
}

/// A header the sender is configured to send with a fixed secret value.
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderCredential {
    /// The header's name (matched without regard to case).
    pub name: String,
    /// Its value.
    pub value: String,
}

/// Why [`VerifyConfig::check`] refused a configuration. Entries are named
/// by position, never by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The provider needs at least one secret and none is configured.
    NoSecret,
    /// The secret at this position is not in the provider's form.
    InvalidSecret(usize),
    /// The entry at this position is an Ed25519 private key (`whsk_`): a
    /// receiver needs only the public key (`whpk_`).
    PrivateKey(usize),
    /// Azure DevOps needs Basic credentials or a header credential.
    NoCredentials,
    /// A header credential's name is empty or not a valid header name.
    InvalidHeaderName(usize),
    /// The tolerance is zero or above [`MAX_TOLERANCE_SECS`].
    ToleranceOutOfRange,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoSecret => write!(f, "no secret is configured"),
            ConfigError::InvalidSecret(i) => write!(f, "secret {i} is not in the provider's form"),
            ConfigError::PrivateKey(i) => {
                write!(
                    f,
                    "secret {i} is a private key; configure its whpk_ public key"
                )
            }
            ConfigError::NoCredentials => write!(f, "no credentials are configured"),
            ConfigError::InvalidHeaderName(i) => {
                write!(f, "header credential {i} has no valid name")
            }
            ConfigError::ToleranceOutOfRange => {
                write!(f, "the tolerance must be 1 to {MAX_TOLERANCE_SECS} seconds")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl VerifyConfig {
    /// A configuration with these secrets and the provider's tolerance.
    pub fn with_secrets<S: Into<String>>(secrets: impl IntoIterator<Item = S>) -> VerifyConfig {
        VerifyConfig {
            secrets: secrets.into_iter().map(Into::into).collect(),
            ..VerifyConfig::default()
        }
    }

    /// The same, with another tolerance in seconds.
    pub fn tolerance(mut self, secs: u64) -> VerifyConfig {
        self.tolerance_secs = Some(secs);
        self
    }

    /// The same, also accepting these Basic credentials.
    pub fn basic(mut self, username: &str, password: &str) -> VerifyConfig {
        self.basic.push(BasicCredentials {
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// The same, also accepting this header credential.
    pub fn header(mut self, name: &str, value: &str) -> VerifyConfig {
        self.headers.push(HeaderCredential {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// Checks that the configuration can verify deliveries from `provider`,
    /// for a source being created or updated. [`crate::verify`] itself
    /// skips entries it cannot use and refuses with `not_configured` when
    /// none is left.
    pub fn check(&self, provider: Provider) -> Result<(), ConfigError> {
        if let Some(secs) = self.tolerance_secs
            && !(1..=MAX_TOLERANCE_SECS).contains(&secs)
        {
            return Err(ConfigError::ToleranceOutOfRange);
        }
        if provider == Provider::AzureDevOps {
            return self.check_credentials();
        }
        if self.secrets.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        for (i, secret) in self.secrets.iter().enumerate() {
            let usable = match provider {
                Provider::Standard if secret.starts_with(SigningKey::PREFIX) => {
                    return Err(ConfigError::PrivateKey(i));
                }
                Provider::Standard if secret.starts_with(PublicKey::PREFIX) => {
                    PublicKey::parse(secret).is_ok()
                }
                Provider::Standard => SigningSecret::parse(secret).is_ok(),
                Provider::Teams => STANDARD.decode(secret).is_ok_and(|k| !k.is_empty()),
                _ => !secret.is_empty(),
            };
            if !usable {
                return Err(ConfigError::InvalidSecret(i));
            }
        }
        Ok(())
    }

    fn check_credentials(&self) -> Result<(), ConfigError> {
        if self.basic.is_empty() && self.headers.is_empty() {
            return Err(ConfigError::NoCredentials);
        }
        let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        for (i, header) in self.headers.iter().enumerate() {
            if header.name.is_empty() || !header.name.chars().all(token_char) {
                return Err(ConfigError::InvalidHeaderName(i));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for VerifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyConfig")
            .field("secrets", &self.secrets.len())
            .field("tolerance_secs", &self.tolerance_secs)
            .field("basic", &self.basic.len())
            .field("headers", &self.headers)
            .finish()
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BasicCredentials(..)")
    }
}

impl fmt::Debug for HeaderCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderCredential")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
