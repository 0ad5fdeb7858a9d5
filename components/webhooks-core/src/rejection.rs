//! Why a delivery was refused: a stable code for logs, metrics and problem
//! documents, and a message that names at most a header, never a secret or
//! any part of the payload.

use std::fmt;

/// Why [`crate::verify`] refused a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The source has no secret (or credential) usable for this provider.
    NotConfigured,
    /// The header that carries the signature is absent.
    MissingSignature,
    /// The signature header is present but not in the provider's format.
    MalformedSignature,
    /// A header the provider always sends is absent (named).
    MissingHeader(&'static str),
    /// The signed timestamp is not a whole number of seconds.
    MalformedTimestamp,
    /// No signature matches any configured secret or key.
    SignatureMismatch,
    /// The signature is good but its timestamp is too far from now.
    TimestampOutOfTolerance,
    /// Azure DevOps: a configured credential was not sent.
    MissingCredentials,
    /// Azure DevOps: the credentials sent match none configured.
    CredentialsMismatch,
    /// The body must be JSON for this provider (its id or type is in it)
    /// and is not.
    BodyNotJson,
}

impl Rejection {
    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::NotConfigured => "not_configured",
            Rejection::MissingSignature => "missing_signature",
            Rejection::MalformedSignature => "malformed_signature",
            Rejection::MissingHeader(_) => "missing_header",
            Rejection::MalformedTimestamp => "malformed_timestamp",
            Rejection::SignatureMismatch => "signature_mismatch",
            Rejection::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            Rejection::MissingCredentials => "missing_credentials",
            Rejection::CredentialsMismatch => "credentials_mismatch",
            Rejection::BodyNotJson => "body_not_json",
        }
    }

    /// A message for a person; it never contains a secret or payload data.
    pub fn message(self) -> String {
        match self {
            Rejection::NotConfigured => {
                "this webhook source has no secret or credential for its provider".into()
            }
            Rejection::MissingSignature => "the delivery carries no signature".into(),
            Rejection::MalformedSignature => {
                "the signature header is not in the provider's format".into()
            }
            Rejection::MissingHeader(name) => format!("the {name} header is missing"),
            Rejection::MalformedTimestamp => "the signed timestamp is not a number".into(),
            Rejection::SignatureMismatch => {
                "no signature matches a secret configured for this source".into()
            }
            Rejection::TimestampOutOfTolerance => {
                "the signed timestamp is too far from the current time".into()
            }
            Rejection::MissingCredentials => "the delivery carries no credentials".into(),
            Rejection::CredentialsMismatch => {
                "the credentials match none configured for this source".into()
            }
            Rejection::BodyNotJson => "the body is not JSON".into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Rejection {}
