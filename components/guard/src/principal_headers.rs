//! The headers the protected app reads the caller from. Whatever a client
//! sends under the `x-gatehouse-` prefix is removed first, always, so the
//! app sees only what the guard verified.

use gatehouse_http::principal::{Credential, Principal};
use http::HeaderValue;

/// A header as `wasi:http` lists it: its name and its value's bytes.
pub type Header = (String, Vec<u8>);

/// The prefix of every header the guard sets.
pub const PREFIX: &str = "x-gatehouse-";

/// Removes every `x-gatehouse-*` header, whatever its case.
pub fn strip(headers: &mut Vec<Header>) {
    headers.retain(|(name, _)| {
        !name
            .as_bytes()
            .get(..PREFIX.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(PREFIX.as_bytes()))
    });
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
        ("x-gatehouse-subject", principal.subject.display_id()),
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

/// Adds the principal's headers (after [`strip`], so each is the only one
/// of its name); a value that is not a valid header value (Gatehouse's ids
/// and names are) is left empty rather than passed raw.
pub fn set(headers: &mut Vec<Header>, principal: &Principal) {
    for (name, value) in of(principal) {
        let value = if HeaderValue::from_str(&value).is_ok() {
            value.into_bytes()
        } else {
            Vec::new()
        };
        headers.push((name.to_string(), value));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use gatehouse_http::principal::Subject;

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

    /// A header of the list, for tests.
    pub(crate) fn header(name: &str, value: &str) -> Header {
        (name.to_string(), value.as_bytes().to_vec())
    }

    #[test]
    fn client_headers_under_the_prefix_are_removed_whatever_their_case() {
        let mut headers = vec![
            header("X-Gatehouse-Subject", "usr_forged"),
            header("x-gatehouse-roles", "admin"),
            header("X-GATEHOUSE-ROLES", "owner"),
            header("x-gatehouse-anything", "1"),
            header("x-gatehousekeeping", "kept"),
            header("x-gate", "short"),
        ];
        strip(&mut headers);
        let left: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(left, ["x-gatehousekeeping", "x-gate"]);
    }

    #[test]
    fn the_verified_principal_replaces_every_value() {
        let mut headers = vec![header("x-gatehouse-subject", "usr_forged")];
        strip(&mut headers);
        set(&mut headers, &principal());
        let value = |name: &str| crate::value(&headers, name);
        assert_eq!(value("x-gatehouse-subject"), Some("key_1"));
        assert_eq!(value("x-gatehouse-org"), Some("org_1"));
        assert_eq!(value("x-gatehouse-roles"), Some("reader,auditor"));
        assert_eq!(value("x-gatehouse-permissions"), Some("reports:read"));
        assert_eq!(value("x-gatehouse-credential"), Some("api_key"));
        assert_eq!(headers.len(), 5);
    }
}
