//! Between Gatehouse's shapes and the records of `gatehouse:client`.

use gatehouse_http::principal::{Credential, OrgRole, Principal, Subject};
use serde_json::Value;

use crate::exports::gatehouse::client::types;

/// A verified principal as the WIT record.
pub fn principal(p: &Principal) -> types::Principal {
    let (kind, owner) = match &p.subject {
        Subject::User { .. } => (types::SubjectKind::User, None),
        Subject::ApiKey { owner_user_id, .. } => {
            (types::SubjectKind::ApiKey, owner_user_id.clone())
        }
        Subject::Service { .. } => (types::SubjectKind::Service, None),
        Subject::External { .. } => (types::SubjectKind::External, None),
    };
    types::Principal {
        kind,
        id: p.subject.display_id(),
        owner,
        org: p.org_id.clone(),
        org_role: p.org_role.map(|role| {
            match role {
                OrgRole::Admin => "admin",
                OrgRole::Member => "member",
            }
            .to_string()
        }),
        teams: p.team_ids.clone(),
        roles: p.roles.clone(),
        permissions: p.permissions.clone(),
        credential: match p.credential {
            Credential::Jwt => types::Credential::Jwt,
            Credential::ApiKey => types::Credential::ApiKey,
            Credential::Session => types::Credential::Session,
        },
        impersonator: p.acting_as.as_ref().map(|a| a.impersonator_user_id.clone()),
    }
}

/// The quota subject of a principal (`user:…`, `key:…`); other kinds have
/// no quotas.
pub fn quota_subject(who: &types::Principal) -> Option<String> {
    match who.kind {
        types::SubjectKind::User => Some(format!("user:{}", who.id)),
        types::SubjectKind::ApiKey => Some(format!("key:{}", who.id)),
        types::SubjectKind::Service | types::SubjectKind::External => None,
    }
}

/// A problem made here (or by `gatehouse_trust`) as the WIT record; its
/// `Retry-After` and `WWW-Authenticate` headers become fields.
pub fn problem(p: gatehouse_http::Problem) -> types::Problem {
    let header = |name: &str| {
        p.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    types::Problem {
        status: p.status,
        code: p.code.to_string(),
        title: p.title.clone(),
        detail: p.detail.clone(),
        errors: p
            .errors
            .iter()
            .map(|e| types::FieldError {
                pointer: e.pointer.clone(),
                code: e.code.clone(),
                message: e.message.clone(),
            })
            .collect(),
        retry_after: header("retry-after").and_then(|v| v.parse().ok()),
        challenge: header("www-authenticate"),
    }
}

/// Gatehouse's problem document (an answer of `status` with `body` and
/// its `Retry-After`) as the WIT record.
pub fn answered(status: u16, body: &[u8], retry_after: Option<&str>) -> types::Problem {
    types::Problem {
        retry_after: retry_after.and_then(|v| v.trim().parse().ok()),
        ..from_client(gatehouse_client::Problem::from_answer(status, body))
    }
}

/// A problem as the `gatehouse-client` crate read it, as the WIT record; a
/// failure without a problem document still has a code.
pub fn from_client(p: gatehouse_client::Problem) -> types::Problem {
    types::Problem {
        status: p.status,
        code: if p.code.is_empty() {
            "unavailable".to_string()
        } else {
            p.code
        },
        title: p.title,
        detail: p.detail,
        errors: p
            .errors
            .into_iter()
            .map(|e| types::FieldError {
                pointer: e.pointer,
                code: e.code,
                message: e.message,
            })
            .collect(),
        retry_after: None,
        challenge: None,
    }
}

/// What a quota has left: units as a number, spend as a decimal string.
pub fn remaining(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The id of the quota that decided.
pub fn blocking(value: Option<&Value>) -> Option<String> {
    value?.get("id")?.as_str().map(str::to_string)
}

/// A reservation id as Gatehouse makes them (`rsv_` and hex); anything
/// else is never sent into a path.
pub fn reservation_id(id: &str) -> bool {
    id.len() <= 64 && id.starts_with("rsv_") && id[4..].chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_http::ErrorCode;

    fn member(credential: Credential) -> Principal {
        Principal {
            subject: Subject::User { id: "usr_1".into() },
            org_id: Some("org_1".into()),
            org_role: Some(OrgRole::Admin),
            team_ids: vec!["team_1".into()],
            roles: vec!["editor".into()],
            permissions: vec!["notes:read".into()],
            acting_as: None,
            credential,
        }
    }

    #[test]
    fn a_principal_keeps_who_and_what_it_may() {
        let p = principal(&member(Credential::Session));
        assert_eq!((p.kind, p.id.as_str()), (types::SubjectKind::User, "usr_1"));
        assert_eq!(p.org.as_deref(), Some("org_1"));
        assert_eq!(p.org_role.as_deref(), Some("admin"));
        assert_eq!(
            (p.teams, p.roles),
            (vec!["team_1".to_string()], vec!["editor".to_string()])
        );
        assert_eq!(p.credential, types::Credential::Session);
        assert_eq!(
            quota_subject(&principal(&member(Credential::Jwt))).as_deref(),
            Some("user:usr_1")
        );

        let key = Principal {
            subject: Subject::ApiKey {
                id: "key_9".into(),
                owner_user_id: Some("usr_1".into()),
            },
            credential: Credential::ApiKey,
            ..member(Credential::ApiKey)
        };
        let k = principal(&key);
        assert_eq!(
            (k.id.as_str(), k.owner.as_deref()),
            ("key_9", Some("usr_1"))
        );
        assert_eq!(quota_subject(&k).as_deref(), Some("key:key_9"));
        let service = Principal {
            subject: Subject::Service {
                name: "billing".into(),
            },
            ..member(Credential::Jwt)
        };
        assert_eq!(quota_subject(&principal(&service)), None);
    }

    #[test]
    fn a_problem_carries_its_retry_and_challenge_headers_as_fields() {
        let p = problem(
            gatehouse_http::Problem::new(ErrorCode::QuotaExceeded)
                .detail("used up")
                .header("retry-after", "60"),
        );
        assert_eq!(
            (p.status, p.code.as_str(), p.retry_after),
            (429, "quota_exceeded", Some(60))
        );
        let p = problem(
            gatehouse_http::Problem::new(ErrorCode::Unauthenticated)
                .header("www-authenticate", "Bearer"),
        );
        assert_eq!((p.status, p.challenge.as_deref()), (401, Some("Bearer")));
    }

    #[test]
    fn gatehouse_problems_pass_through_and_a_bodyless_failure_still_has_a_code() {
        let body = br#"{"type":"urn:gatehouse:problem:validation_failed","title":"Validation Failed","status":422,"code":"validation_failed","errors":[{"pointer":"/meter","code":"unknown_meter","message":"no such meter"}]}"#;
        let p = answered(422, body, None);
        assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
        assert_eq!(p.errors[0].code, "unknown_meter");
        assert_eq!(answered(502, b"<html>", None).code, "unavailable");
        assert_eq!(answered(503, b"{}", Some("2")).retry_after, Some(2));
    }

    #[test]
    fn remaining_and_blocking_read_both_shapes() {
        assert_eq!(remaining(Some(&serde_json::json!(3))).as_deref(), Some("3"));
        assert_eq!(
            remaining(Some(&serde_json::json!("1.50"))).as_deref(),
            Some("1.50")
        );
        assert_eq!(remaining(Some(&Value::Null)), None);
        assert_eq!(
            blocking(Some(&serde_json::json!({"id": "q_1"}))).as_deref(),
            Some("q_1")
        );
        assert_eq!(blocking(None), None);
    }

    #[test]
    fn only_reservation_ids_reach_a_path() {
        assert!(reservation_id("rsv_0123456789abcdef"));
        assert!(!reservation_id("rsv_../../v1/keys"));
        assert!(!reservation_id("key_1"));
        assert!(!reservation_id(&format!("rsv_{}", "a".repeat(80))));
    }
}
