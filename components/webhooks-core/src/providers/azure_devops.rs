//! Azure DevOps service hooks ("Web Hooks" consumer) sign nothing. A
//! subscription can send Basic credentials and extra HTTP headers; a source
//! configures either or both, and each kind configured must be present and
//! match (any one entry of that kind). Values are compared in constant time.

use crate::compare::credential_equal;
use crate::verify::{json, text_at, verified};
use crate::{Headers, Rejection, Verified, VerifyConfig};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub(crate) fn verify<H: Headers + ?Sized>(
    config: &VerifyConfig,
    headers: &H,
    body: &[u8],
) -> Result<Verified, Rejection> {
    if config.basic.is_empty() && config.headers.is_empty() {
        return Err(Rejection::NotConfigured);
    }
    if !config.basic.is_empty() {
        check_basic(config, headers)?;
    }
    if !config.headers.is_empty() {
        check_headers(config, headers)?;
    }
    let event = json(body).ok_or(Rejection::BodyNotJson)?;
    Ok(verified(
        text_at(&event, "/id"),
        body,
        text_at(&event, "/eventType"),
        None,
    ))
}

fn check_basic<H: Headers + ?Sized>(config: &VerifyConfig, headers: &H) -> Result<(), Rejection> {
    let header = headers
        .header("authorization")
        .ok_or(Rejection::MissingCredentials)?;
    let sent = match header.trim().split_once(' ') {
        Some((scheme, value)) if scheme.eq_ignore_ascii_case("basic") => STANDARD
            .decode(value.trim())
            .map_err(|_| Rejection::CredentialsMismatch)?,
        _ => return Err(Rejection::MissingCredentials),
    };
    // Every entry is compared, so the time taken does not say which matched.
    let matched = config.basic.iter().fold(false, |found, c| {
        let configured = format!("{}:{}", c.username, c.password);
        credential_equal(&sent, configured.as_bytes()) | found
    });
    if matched {
        Ok(())
    } else {
        Err(Rejection::CredentialsMismatch)
    }
}

fn check_headers<H: Headers + ?Sized>(config: &VerifyConfig, headers: &H) -> Result<(), Rejection> {
    let mut present = false;
    let mut matched = false;
    for credential in &config.headers {
        if let Some(sent) = headers.header(&credential.name) {
            present = true;
            matched |= credential_equal(sent.trim().as_bytes(), credential.value.as_bytes());
        }
    }
    match (present, matched) {
        (_, true) => Ok(()),
        (false, false) => Err(Rejection::MissingCredentials),
        (true, false) => Err(Rejection::CredentialsMismatch),
    }
}
