//! The fields of a provider as a create or a patch sends them, checked
//! for form; the deployment's settings are checked when it is saved.

use gatehouse_auth::oidc::policy;
use gatehouse_http::FieldError;
use gatehouse_http::json::Validate;
use serde::Deserialize;
use std::collections::BTreeMap;

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// An issuer URL by its form: absolute https (http only to a host off the
/// public internet), with a host, without credentials, query or fragment.
/// Whether the deployment may call it is decided when it is saved
/// (`providers::admit`): that takes the operator's settings.
fn valid_issuer(issuer: &str) -> bool {
    issuer.len() <= 300
        && !issuer.contains(['?', '#', ' '])
        && policy::target(issuer).is_some()
        && policy::plain_http_possible(issuer)
}

fn short_strings(list: &[String], max: usize) -> bool {
    list.len() <= max
        && list
            .iter()
            .all(|s| (1..=300).contains(&s.len()) && !s.chars().any(char::is_control))
}

/// The fields a create or a patch sets; `None` leaves a field as it is.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Fields {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) issuer: Option<String>,
    #[serde(default)]
    pub(super) client_id: Option<String>,
    /// An empty string removes the secret (a public client).
    #[serde(default)]
    pub(super) client_secret: Option<String>,
    #[serde(default)]
    pub(super) scopes: Option<String>,
    #[serde(default)]
    pub(super) audiences: Option<Vec<String>>,
    #[serde(default)]
    pub(super) allowed_azp: Option<Vec<String>>,
    #[serde(default)]
    pub(super) tenant_id: Option<Option<String>>,
    #[serde(default)]
    pub(super) role_claim: Option<String>,
    #[serde(default)]
    pub(super) role_map: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(super) require_at_jwt_typ: Option<bool>,
}

impl Validate for Fields {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut fail = |pointer: &str, code: &str, message: &str| {
            errors.push(FieldError::new(pointer, code, message));
        };
        if self.name.as_deref().is_some_and(|n| !valid_name(n)) {
            fail(
                "/name",
                "invalid_format",
                "name must be 1 to 64 of a-z, 0-9 and '-', starting with a letter",
            );
        }
        if self.issuer.as_deref().is_some_and(|i| !valid_issuer(i)) {
            fail(
                "/issuer",
                "invalid_format",
                "issuer must be an https URL (http only on a private network) with a host and without credentials, query or fragment",
            );
        }
        if self
            .client_id
            .as_deref()
            .is_some_and(|c| !(1..=300).contains(&c.len()) || c.chars().any(char::is_control))
        {
            fail(
                "/client_id",
                "invalid_length",
                "client_id must have 1 to 300 characters",
            );
        }
        if self
            .client_secret
            .as_deref()
            .is_some_and(|s| s.len() > 1000)
        {
            fail(
                "/client_secret",
                "invalid_length",
                "client_secret must have at most 1000 characters",
            );
        }
        if let Some(scopes) = &self.scopes
            && (scopes.len() > 500
                || !scopes.split(' ').any(|s| s == "openid")
                || !scopes.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        {
            fail(
                "/scopes",
                "invalid",
                "scopes must be space-separated and include openid",
            );
        }
        if self
            .audiences
            .as_deref()
            .is_some_and(|a| !short_strings(a, 20))
        {
            fail(
                "/audiences",
                "invalid",
                "at most 20 audiences of 1 to 300 characters",
            );
        }
        if self
            .allowed_azp
            .as_deref()
            .is_some_and(|a| !short_strings(a, 50))
        {
            fail(
                "/allowed_azp",
                "invalid",
                "at most 50 client ids of 1 to 300 characters",
            );
        }
        if let Some(Some(tid)) = &self.tenant_id
            && !(1..=100).contains(&tid.len())
        {
            fail(
                "/tenant_id",
                "invalid_length",
                "tenant_id must have 1 to 100 characters",
            );
        }
        if self
            .role_claim
            .as_deref()
            .is_some_and(|c| !(1..=200).contains(&c.len()))
        {
            fail(
                "/role_claim",
                "invalid_length",
                "role_claim must have 1 to 200 characters",
            );
        }
        if let Some(map) = &self.role_map
            && (map.len() > 100
                || map
                    .iter()
                    .any(|(k, v)| !(1..=200).contains(&k.len()) || !(1..=100).contains(&v.len())))
        {
            fail(
                "/role_map",
                "invalid",
                "at most 100 entries, each a claim value of 1 to 200 characters to a role name of 1 to 100",
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}
