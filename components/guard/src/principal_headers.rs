//! The headers the protected app reads the caller from. Whatever a client
//! sends under the `x-gatehouse-` prefix is removed first, always, so the
//! app sees only what the guard verified.

use gatehouse_http::principal::{Credential, Principal, Subject};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The prefix of every header the guard sets.
pub const PREFIX: &str = "x-gatehouse-";

/// Removes every `x-gatehouse-*` header.
pub fn strip(headers: &mut HeaderMap) {
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(PREFIX))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
}

/// The subject's id as the app sees it.
fn subject_id(subject: &Subject) -> String {
    match subject {
        Subject::User { id } | Subject::ApiKey { id, .. } => id.clone(),
        Subject::Service { name } => format!("service:{name}"),
        Subject::External { provider, sub } => format!("external:{provider}:{sub}"),
    }
}

fn credential_name(credential: Credential) -> &'static str {
    match credential {
        Credential::Jwt => "jwt",
        Credential::ApiKey => "api_key",
        Credential::Session => "session",
    }
}

/// The verified principal's headers, as (name, value) pairs.
pub fn of(principal: &Principal) -> Vec<(&'static str, String)> {
    vec![
        ("x-gatehouse-subject", subject_id(&principal.subject)),
        (
            "x-gatehouse-org",
            principal.org_id.clone().unwrap_or_default(),
        ),
        ("x-gatehouse-roles", principal.roles.join(",")),
        ("x-gatehouse-permissions", principal.permissions.join(",")),
        (
            "x-gatehouse-credential",
            credential_name(principal.credential).to_string(),
        ),
    ]
}

/// Sets the principal's headers; a value that is not a valid header value
/// (Gatehouse's ids and names are) is left empty rather than passed raw.
pub fn set(headers: &mut HeaderMap, principal: &Principal) {
    for (name, value) in of(principal) {
        let value = HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""));
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Principal {
        Principal {
            subject: Subject::ApiKey {
                id: "key_1".into(),
                owner_user_id: Some("usr_1".into()),
            },
            org_id: Some("org_1".into()),
            org_role: None,
            team_ids: Vec::new(),
            roles: vec!["reader".into(), "auditor".into()],
            permissions: vec!["reports:read".into()],
            acting_as: None,
            credential: Credential::ApiKey,
        }
    }

    #[test]
    fn client_headers_under_the_prefix_are_removed_whatever_their_case() -> anyhow::Result<()> {
        let mut headers = HeaderMap::new();
        headers.insert("X-Gatehouse-Subject", "usr_forged".parse()?);
        headers.append("x-gatehouse-roles", "admin".parse()?);
        headers.append("x-gatehouse-roles", "owner".parse()?);
        headers.insert("x-gatehouse-anything", "1".parse()?);
        headers.insert("x-gatehousekeeping", "kept".parse()?);
        strip(&mut headers);
        let left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-gatehousekeeping"]);
        Ok(())
    }

    #[test]
    fn the_verified_principal_replaces_every_value() -> anyhow::Result<()> {
        let mut headers = HeaderMap::new();
        set(&mut headers, &principal());
        let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(value("x-gatehouse-subject"), Some("key_1"));
        assert_eq!(value("x-gatehouse-org"), Some("org_1"));
        assert_eq!(value("x-gatehouse-roles"), Some("reader,auditor"));
        assert_eq!(value("x-gatehouse-permissions"), Some("reports:read"));
        assert_eq!(value("x-gatehouse-credential"), Some("api_key"));
        assert_eq!(headers.len(), 5);
        Ok(())
    }
}
