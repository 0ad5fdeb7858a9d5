//! One audit record, computed from a served request: the columns of
//! `audit_events` (migration 0031). Plain Rust, unit-tested natively.

use sha2::{Digest, Sha256};

use super::routes::Matched;
use super::trail::{Actor, Notes};
use crate::principal::{Credential, Principal, Subject};

/// Which org's trail a record joins, decided by the database when it is
/// written: the org `reference` names (an id or a handle), but only if it
/// still exists and the actor belongs to it: `member` is a member of it,
/// or it is the org `bound_to` (a key's or a token's own). Else the
/// record is the deployment's, for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OrgClaim {
    /// The org the path or the credential names.
    pub reference: Option<String>,
    /// A user who must be a member of it.
    pub member: Option<String>,
    /// The org it must be.
    pub bound_to: Option<String>,
}

/// The columns of one record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Which org.
    pub org: OrgClaim,
    /// `<resource>.<verb>`.
    pub action: &'static str,
    /// `user`, `api_key`, `service`, `external`, `operator` or `anonymous`.
    pub actor_type: &'static str,
    /// The user, key, service or `provider:sub`.
    pub actor_id: Option<String>,
    /// The person behind the actor: the user, a key's owner, the admin
    /// acting as a member.
    pub actor_user_id: Option<String>,
    /// The member an admin acted as.
    pub subject_user_id: Option<String>,
    /// `session`, `api_key` or `jwt`.
    pub credential: Option<&'static str>,
    /// What was acted on.
    pub resource_type: &'static str,
    /// Its id: the created resource's `id`, else the path's last parameter.
    pub resource_id: Option<String>,
    /// The HTTP status answered; `None` for a record written before the
    /// request is served (an impersonated request).
    pub outcome: Option<u16>,
    /// The body's top-level field names, as a JSON array.
    pub changed_fields: Option<String>,
    /// SHA-256 (hex) of a successful answer's body: the resource as it
    /// now is, comparable across records without holding its content.
    pub digest: Option<String>,
}

fn credential_name(credential: Credential) -> &'static str {
    match credential {
        Credential::Session => "session",
        Credential::ApiKey => "api_key",
        Credential::Jwt => "jwt",
    }
}

impl Entry {
    /// The record of a request that took route `matched`, learned `notes`
    /// and answered `status` with `body`.
    ///
    /// A request nobody is known for that was refused for its credential
    /// (`401`) is not recorded, except on the sign-in routes (`auth.*`):
    /// anyone can send those, and they say nothing about any tenant.
    pub fn of(matched: &Matched, notes: &Notes, status: u16, body: &[u8]) -> Option<Entry> {
        let action = matched.action()?;
        if notes.actor.is_none() && status == 401 && !action.starts_with("auth.") {
            return None;
        }
        let path_org = matched.param("org").map(str::to_string);
        let resource_id = created_id(status, body).or_else(|| {
            matched
                .params
                .iter()
                .rfind(|(name, _)| *name != "org" || matched.params.len() == 1)
                .map(|(_, v)| v.clone())
        });
        let mut entry = Entry::anonymous(action, resource_id, Some(status));
        entry.changed_fields = (!notes.fields.is_empty())
            .then(|| serde_json::to_string(&notes.fields).unwrap_or_default());
        entry.digest = ((200..300).contains(&status) && !body.is_empty())
            .then(|| hex::encode(Sha256::digest(body)));
        match &notes.actor {
            None => {}
            Some(Actor::Operator) => {
                entry.actor_type = "operator";
                entry.actor_id = Some("operator".into());
            }
            Some(Actor::User(id)) => {
                entry.actor_type = "user";
                entry.actor_id = Some(id.clone());
                entry.actor_user_id = Some(id.clone());
            }
            Some(Actor::Principal(principal)) => entry.take_principal(principal, path_org),
        }
        if action == "org.create"
            && let Some(created) = &entry.resource_id
            && entry.org.member.is_some()
        {
            // The org just made, which its creator now belongs to.
            entry.org.reference = Some(created.clone());
        }
        Some(entry)
    }

    /// The record of `action` by `principal` in the org `org` names (the
    /// principal's own when `None`), outside [`serve`](super::serve): a
    /// read that is audited (a secret's value), an impersonated request.
    pub fn by(
        principal: &Principal,
        org: Option<&str>,
        action: &'static str,
        resource_id: Option<String>,
        outcome: Option<u16>,
    ) -> Entry {
        let mut entry = Entry::anonymous(action, resource_id, outcome);
        entry.take_principal(principal, org.map(str::to_string));
        entry
    }

    /// A record of nobody known, in no org, yet.
    fn anonymous(action: &'static str, resource_id: Option<String>, outcome: Option<u16>) -> Entry {
        Entry {
            org: OrgClaim::default(),
            action,
            actor_type: "anonymous",
            actor_id: None,
            actor_user_id: None,
            subject_user_id: None,
            credential: None,
            resource_type: action.rsplit_once('.').map_or(action, |(r, _)| r),
            resource_id,
            outcome,
            changed_fields: None,
            digest: None,
        }
    }

    fn take_principal(&mut self, principal: &Principal, path_org: Option<String>) {
        self.credential = Some(credential_name(principal.credential));
        let reference = path_org.or_else(|| principal.org_id.clone());
        match &principal.subject {
            Subject::User { id } => {
                self.actor_type = "user";
                let admin = principal
                    .acting_as
                    .as_ref()
                    .map(|a| a.impersonator_user_id.clone());
                // An admin acting as a member is the actor; the member is
                // the subject.
                self.subject_user_id = admin.as_ref().map(|_| id.clone());
                self.actor_id = Some(admin.unwrap_or_else(|| id.clone()));
                self.actor_user_id = self.actor_id.clone();
                self.org = if principal.credential == Credential::Session {
                    OrgClaim {
                        reference,
                        member: Some(id.clone()),
                        bound_to: None,
                    }
                } else {
                    OrgClaim {
                        reference,
                        member: None,
                        bound_to: principal.org_id.clone(),
                    }
                };
                return;
            }
            Subject::ApiKey { id, owner_user_id } => {
                self.actor_type = "api_key";
                self.actor_id = Some(id.clone());
                self.actor_user_id = owner_user_id.clone();
            }
            Subject::Service { name } => {
                self.actor_type = "service";
                self.actor_id = Some(name.clone());
            }
            Subject::External { provider, sub } => {
                self.actor_type = "external";
                self.actor_id = Some(format!("{provider}:{sub}").chars().take(200).collect());
            }
        }
        self.org = OrgClaim {
            reference,
            member: None,
            bound_to: principal.org_id.clone(),
        };
    }
}

/// The `id` of a resource a `201` answer created.
fn created_id(status: u16, body: &[u8]) -> Option<String> {
    if status != 201 {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .get("id")
        .and_then(|v| v.as_str())
        .map(|s| s.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::routes::find;
    use crate::principal::{ActingAs, OrgRole};

    fn member(id: &str, org: Option<&str>, credential: Credential) -> Principal {
        Principal {
            subject: Subject::User { id: id.into() },
            org_id: org.map(str::to_string),
            org_role: Some(OrgRole::Admin),
            team_ids: vec![],
            roles: vec![],
            permissions: vec![],
            acting_as: None,
            credential,
        }
    }

    #[test]
    fn a_session_joins_the_trail_of_the_org_in_the_path_only_as_a_member() {
        let matched = find("DELETE", "/v1/orgs/acme/teams/tm_1").expect("route");
        let notes = Notes {
            actor: Some(Actor::Principal(member(
                "usr_1",
                Some("org_2"),
                Credential::Session,
            ))),
            fields: vec![],
        };
        let entry = Entry::of(&matched, &notes, 204, b"").expect("recorded");
        assert_eq!(entry.action, "team.delete");
        assert_eq!(entry.resource_type, "team");
        assert_eq!(entry.resource_id.as_deref(), Some("tm_1"));
        assert_eq!(
            entry.org,
            OrgClaim {
                reference: Some("acme".into()),
                member: Some("usr_1".into()),
                bound_to: None
            }
        );
        assert_eq!(entry.digest, None);
    }

    #[test]
    fn a_key_joins_only_its_own_org_and_names_its_owner() {
        let matched = find("POST", "/v1/roles").expect("route");
        let principal = Principal {
            subject: Subject::ApiKey {
                id: "key_1".into(),
                owner_user_id: Some("usr_9".into()),
            },
            credential: Credential::ApiKey,
            ..member("x", Some("org_1"), Credential::ApiKey)
        };
        let notes = Notes {
            actor: Some(Actor::Principal(principal)),
            fields: vec!["name".into()],
        };
        let body = br#"{"id":"role_7","name":"ops"}"#;
        let entry = Entry::of(&matched, &notes, 201, body).expect("recorded");
        assert_eq!(entry.actor_type, "api_key");
        assert_eq!(entry.actor_id.as_deref(), Some("key_1"));
        assert_eq!(entry.actor_user_id.as_deref(), Some("usr_9"));
        assert_eq!(entry.org.bound_to.as_deref(), Some("org_1"));
        assert_eq!(entry.resource_id.as_deref(), Some("role_7"));
        assert_eq!(entry.changed_fields.as_deref(), Some(r#"["name"]"#));
        assert_eq!(entry.digest.as_deref().map(str::len), Some(64));
    }

    #[test]
    fn an_admin_acting_as_a_member_is_the_actor_and_the_member_the_subject() {
        let matched = find("PATCH", "/v1/me").expect("route");
        let mut principal = member("usr_member", Some("org_1"), Credential::Session);
        principal.acting_as = Some(ActingAs {
            impersonator_user_id: "usr_admin".into(),
        });
        let notes = Notes {
            actor: Some(Actor::Principal(principal)),
            fields: vec![],
        };
        let entry = Entry::of(&matched, &notes, 403, b"{}").expect("recorded");
        assert_eq!(entry.actor_id.as_deref(), Some("usr_admin"));
        assert_eq!(entry.subject_user_id.as_deref(), Some("usr_member"));
        assert_eq!(entry.outcome, Some(403));
    }

    #[test]
    fn a_request_nobody_is_known_for_is_anonymous_and_the_deployments() {
        let matched = find("POST", "/v1/auth/login").expect("route");
        let entry = Entry::of(&matched, &Notes::default(), 422, b"{}").expect("recorded");
        assert_eq!(entry.actor_type, "anonymous");
        assert_eq!(entry.org, OrgClaim::default());
        let unrecorded = find("POST", "/v1/quotas/consume").expect("route");
        assert!(Entry::of(&unrecorded, &Notes::default(), 200, b"{}").is_none());
    }

    #[test]
    fn a_request_refused_for_want_of_a_credential_is_recorded_only_on_sign_in_routes() {
        let team = find("POST", "/v1/orgs/acme/teams").expect("route");
        assert!(Entry::of(&team, &Notes::default(), 401, b"{}").is_none());
        let login = find("POST", "/v1/auth/login").expect("route");
        let failed = Entry::of(&login, &Notes::default(), 401, b"{}").expect("recorded");
        assert_eq!(failed.actor_type, "anonymous");
    }

    #[test]
    fn a_new_org_is_the_org_of_its_creation_record() {
        let matched = find("POST", "/v1/orgs").expect("route");
        let notes = Notes {
            actor: Some(Actor::Principal(member("usr_1", None, Credential::Session))),
            fields: vec!["handle".into(), "name".into()],
        };
        let entry = Entry::of(&matched, &notes, 201, br#"{"id":"org_9"}"#).expect("recorded");
        assert_eq!(entry.org.reference.as_deref(), Some("org_9"));
        assert_eq!(entry.org.member.as_deref(), Some("usr_1"));
        let refused = Entry::of(&matched, &notes, 422, b"{}").expect("recorded");
        assert_eq!(refused.org.reference, None);
    }
}
