//! Policy engines: a [`PolicyEngine`] decides one check and answers one
//! filter from a stored policy and the resolved [`facts`](crate::facts).
//! Handlers only talk to the trait. [`Builtin`] evaluates the
//! [policy document](crate::policy) in process; an external engine (OPA over
//! HTTP, say) would send the same serializable inputs as its `input`
//! document and map its answer back, with no change to any caller.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::facts::{CollectionFacts, Owner, OwnerType, ResourceFacts, SubjectFacts, SubjectKind};
use crate::filter::{Field, FieldMap, Filter};
use crate::policy::{OrgOwners, Rule, StoredPolicy, TeamOwners};

/// Why a check came out as it did: a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Org admins reach every resource under the rule.
    OrgAdmin,
    /// A permission the rule names reaches every resource.
    Permission,
    /// The subject owns the resource.
    OwnerUser,
    /// A team the subject is in (or below) owns the resource.
    OwnerTeam,
    /// The org owns the resource and the rule lets the subject in.
    OwnerOrg,
    /// The resource is granted to a role the subject holds.
    RoleGrant,
    /// The policy has no rule for the action.
    NoRule,
    /// Nothing in the rule reaches the resource.
    NotGranted,
}

/// A check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// Why, for people (names the role, team or permission).
    pub detail: String,
}

impl Decision {
    fn allow(reason: Reason, detail: String) -> Decision {
        Decision {
            allowed: true,
            reason,
            detail,
        }
    }

    fn deny(reason: Reason, detail: String) -> Decision {
        Decision {
            allowed: false,
            reason,
            detail,
        }
    }
}

/// What a check is asked about.
#[derive(Debug, Clone, Serialize)]
pub struct CheckInput<'a> {
    /// The policy version in force.
    pub policy: &'a StoredPolicy,
    /// The action (`read`).
    pub action: &'a str,
    /// Who.
    pub subject: &'a SubjectFacts,
    /// On what.
    pub resource: &'a ResourceFacts,
}

/// What a filter is asked about.
#[derive(Debug, Clone, Serialize)]
pub struct FilterInput<'a> {
    /// The policy version in force.
    pub policy: &'a StoredPolicy,
    /// The action.
    pub action: &'a str,
    /// Who.
    pub subject: &'a SubjectFacts,
    /// Over which collection.
    pub collection: &'a CollectionFacts,
    /// The fields the caller's rows have.
    pub fields: &'a FieldMap,
}

/// An engine that could not answer (an external engine down or answering
/// nonsense); callers answer 503 without its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    /// For the server's log only.
    pub log: String,
}

/// Decides checks and filters.
// Guests are single-threaded: the futures need no `Send` bound, which is
// what the lint warns about.
#[allow(async_fn_in_trait)]
pub trait PolicyEngine {
    /// Whether the subject may do the action on the resource, and why.
    async fn check(&self, input: &CheckInput<'_>) -> Result<Decision, EngineError>;
    /// The resources of the collection the subject may do the action on.
    async fn filter(&self, input: &FilterInput<'_>) -> Result<Filter, EngineError>;
}

/// The built-in engine: evaluates the policy document in process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Builtin;

impl PolicyEngine for Builtin {
    async fn check(&self, input: &CheckInput<'_>) -> Result<Decision, EngineError> {
        Ok(decide(input))
    }

    async fn filter(&self, input: &FilterInput<'_>) -> Result<Filter, EngineError> {
        Ok(filter(input))
    }
}

/// Which owning teams reach the subject under `mode`.
fn teams_reaching(subject: &SubjectFacts, mode: TeamOwners) -> BTreeSet<&str> {
    let direct = subject.team_ids.iter().map(String::as_str);
    match mode {
        TeamOwners::None => BTreeSet::new(),
        TeamOwners::Direct => direct.collect(),
        TeamOwners::WithSubteams => direct
            .chain(subject.ancestor_team_ids.iter().map(String::as_str))
            .collect(),
    }
}

fn org_reaches(subject: &SubjectFacts, mode: OrgOwners) -> bool {
    match mode {
        OrgOwners::None => false,
        OrgOwners::Members => true,
        OrgOwners::Admins => subject.org_admin,
    }
}

/// Whether `owner` reaches the subject under `rule`.
fn owner_reaches(rule: &Rule, subject: &SubjectFacts, owner: &Owner) -> bool {
    match owner.owner_type {
        OwnerType::User => rule.owner.user && subject.is_user(&owner.id),
        OwnerType::Team => teams_reaching(subject, rule.owner.team).contains(owner.id.as_str()),
        OwnerType::Org => owner.id == subject.org_id && org_reaches(subject, rule.owner.org),
    }
}

/// Whether the whole collection is open to the subject, and why.
fn everything(rule: &Rule, subject: &SubjectFacts) -> Option<Decision> {
    if rule.everything.org_admin && subject.org_admin {
        return Some(Decision::allow(
            Reason::OrgAdmin,
            "org admins reach every resource under this rule".into(),
        ));
    }
    rule.everything
        .permissions
        .iter()
        .find(|p| subject.has_permission(p))
        .map(|p| {
            Decision::allow(
                Reason::Permission,
                format!("holds {p}, which reaches every resource"),
            )
        })
}

/// The built-in decision.
pub fn decide(input: &CheckInput<'_>) -> Decision {
    let (subject, resource) = (input.subject, input.resource);
    let Some(rule) = input.policy.document.rule_for(input.action) else {
        return Decision::deny(
            Reason::NoRule,
            format!(
                "policy {} has no rule for {}",
                input.policy.name, input.action
            ),
        );
    };
    if let Some(decision) = everything(rule, subject) {
        return decision;
    }
    // Owners in a fixed order (user, team, org) so the reason is stable.
    let mut owners: Vec<&Owner> = resource
        .owners
        .iter()
        .filter(|o| owner_reaches(rule, subject, o))
        .collect();
    owners.sort();
    if let Some(owner) = owners.first() {
        return match owner.owner_type {
            OwnerType::User => {
                Decision::allow(Reason::OwnerUser, "the subject owns the resource".into())
            }
            OwnerType::Team if subject.team_ids.contains(&owner.id) => Decision::allow(
                Reason::OwnerTeam,
                format!("owned by team {}, which the subject is in", owner.id),
            ),
            OwnerType::Team => Decision::allow(
                Reason::OwnerTeam,
                format!("owned by team {}, above a team the subject is in", owner.id),
            ),
            OwnerType::Org => Decision::allow(Reason::OwnerOrg, "owned by the org".into()),
        };
    }
    if let Some(permission) = rule.grant_permission_for(input.action) {
        let mut via: Vec<&str> = resource
            .grants
            .iter()
            .filter(|g| subject.holds(&g.name) && g.has(permission))
            .map(|g| g.name.as_str())
            .collect();
        via.sort();
        if let Some(role) = via.first() {
            return Decision::allow(
                Reason::RoleGrant,
                format!(
                    "granted to role {role}, which the subject holds and which has {permission}"
                ),
            );
        }
    }
    Decision::deny(
        Reason::NotGranted,
        format!(
            "no rule of {}:{} reaches the resource",
            input.policy.name, input.action
        ),
    )
}

/// The built-in filter: every resource when the rule opens the collection,
/// else the ids owned or granted as the rule says, or'ed with the owner
/// columns the caller's rows have.
pub fn filter(input: &FilterInput<'_>) -> Filter {
    let (subject, facts, fields) = (input.subject, input.collection, input.fields);
    let Some(rule) = input.policy.document.rule_for(input.action) else {
        return Filter::False;
    };
    if everything(rule, subject).is_some() {
        return Filter::True;
    }
    let mut ids: BTreeSet<&str> = facts
        .owned
        .iter()
        .filter(|(_, owner)| owner_reaches(rule, subject, owner))
        .map(|(id, _)| id.as_str())
        .collect();
    if let Some(permission) = rule.grant_permission_for(input.action) {
        ids.extend(
            facts
                .granted
                .iter()
                .filter(|(_, role)| subject.holds(&role.name) && role.has(permission))
                .map(|(id, _)| id.as_str()),
        );
    }
    let mut terms = vec![Filter::In {
        field: Field::Id,
        values: ids.into_iter().map(str::to_string).collect(),
    }];
    if rule.owner.user && fields.has(Field::OwnerUser) && subject.kind == Some(SubjectKind::User) {
        terms.push(Filter::Eq {
            field: Field::OwnerUser,
            value: subject.id.clone(),
        });
    }
    let teams = teams_reaching(subject, rule.owner.team);
    if fields.has(Field::OwnerTeam) {
        terms.push(Filter::In {
            field: Field::OwnerTeam,
            values: teams.into_iter().map(str::to_string).collect(),
        });
    }
    if fields.has(Field::Org) && org_reaches(subject, rule.owner.org) {
        terms.push(Filter::Eq {
            field: Field::Org,
            value: subject.org_id.clone(),
        });
    }
    Filter::any(terms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::GrantedRole;
    use crate::policy::PolicyDocument;
    use serde_json::json;

    fn policy(rules: serde_json::Value) -> StoredPolicy {
        StoredPolicy {
            name: "datasources_filter".into(),
            version: 1,
            document: serde_json::from_value::<PolicyDocument>(json!({ "rules": rules }))
                .expect("document"),
        }
    }

    fn standard() -> StoredPolicy {
        policy(json!({
            "read": {
                "owner": {"user": true, "team": "with_subteams", "org": "admins"},
                "everything": {"permissions": ["datasources:read-all"]}
            },
            "delete": {"owner": {"user": true}, "grant_permission": null},
            "write": {"owner": {"team": "direct"}, "grant_permission": "write"}
        }))
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn bob() -> SubjectFacts {
        SubjectFacts {
            kind: Some(SubjectKind::User),
            id: "usr_bob".into(),
            org_id: "org_1".into(),
            org_admin: false,
            team_ids: strings(&["team_api"]),
            ancestor_team_ids: strings(&["team_backend", "team_eng"]),
            roles: strings(&["mygroup:write"]),
            permissions: strings(&["read", "write"]),
        }
    }

    fn owner(owner_type: OwnerType, id: &str) -> Owner {
        Owner {
            owner_type,
            id: id.into(),
        }
    }

    fn role(name: &str, perms: &[&str]) -> GrantedRole {
        GrantedRole {
            name: name.into(),
            permissions: strings(perms),
        }
    }

    fn resource(owners: Vec<Owner>, grants: Vec<GrantedRole>) -> ResourceFacts {
        ResourceFacts {
            service: "datasources".into(),
            collection: "datasources".into(),
            id: "ds_1".into(),
            owners,
            grants,
        }
    }

    fn check(
        policy: &StoredPolicy,
        action: &str,
        subject: &SubjectFacts,
        r: &ResourceFacts,
    ) -> Decision {
        let input = CheckInput {
            policy,
            action,
            subject,
            resource: r,
        };
        futures::executor::block_on(Builtin.check(&input)).expect("builtin answers")
    }

    #[test]
    fn each_path_to_a_resource_gives_its_own_reason() {
        let p = standard();
        let cases = [
            (
                resource(vec![owner(OwnerType::User, "usr_bob")], vec![]),
                Reason::OwnerUser,
            ),
            (
                resource(vec![owner(OwnerType::Team, "team_api")], vec![]),
                Reason::OwnerTeam,
            ),
            (
                resource(vec![owner(OwnerType::Team, "team_eng")], vec![]),
                Reason::OwnerTeam,
            ),
            (
                resource(vec![], vec![role("mygroup:write", &["read", "write"])]),
                Reason::RoleGrant,
            ),
        ];
        for (r, reason) in cases {
            let d = check(&p, "read", &bob(), &r);
            assert!(d.allowed, "{r:?}");
            assert_eq!(d.reason, reason, "{r:?}");
        }
        let via_bu = check(
            &p,
            "read",
            &bob(),
            &resource(vec![owner(OwnerType::Team, "team_eng")], vec![]),
        );
        assert!(via_bu.detail.contains("above a team"), "{}", via_bu.detail);
        let grant = check(
            &p,
            "read",
            &bob(),
            &resource(vec![], vec![role("mygroup:write", &["read"])]),
        );
        assert!(grant.detail.contains("mygroup:write"), "{}", grant.detail);
    }

    #[test]
    fn paths_the_rule_does_not_open_are_denied() {
        let p = standard();
        let denied = [
            // Another user's resource; an unrelated team's; the org's, for a non-admin.
            resource(vec![owner(OwnerType::User, "usr_eve")], vec![]),
            resource(vec![owner(OwnerType::Team, "team_sales")], vec![]),
            resource(vec![owner(OwnerType::Org, "org_1")], vec![]),
            // Granted to a role bob does not hold, or whose permissions lack read.
            resource(vec![], vec![role("mygroup:admin", &["read"])]),
            resource(vec![], vec![role("mygroup:write", &["write"])]),
        ];
        for r in denied {
            let d = check(&p, "read", &bob(), &r);
            assert_eq!((d.allowed, d.reason), (false, Reason::NotGranted), "{r:?}");
        }
        // Direct team ownership does not reach up from a sub-team.
        let d = check(
            &p,
            "write",
            &bob(),
            &resource(vec![owner(OwnerType::Team, "team_eng")], vec![]),
        );
        assert!(!d.allowed);
        // Grants do not count where the rule says null.
        let d = check(
            &p,
            "delete",
            &bob(),
            &resource(vec![], vec![role("mygroup:write", &["delete"])]),
        );
        assert!(!d.allowed);
        // An action without a rule.
        let d = check(
            &p,
            "share",
            &bob(),
            &resource(vec![owner(OwnerType::User, "usr_bob")], vec![]),
        );
        assert_eq!((d.allowed, d.reason), (false, Reason::NoRule));
    }

    #[test]
    fn admins_and_permission_holders_reach_what_the_rule_opens_to_them() {
        let p = standard();
        let admin = SubjectFacts {
            org_admin: true,
            ..bob()
        };
        let org_owned = resource(vec![owner(OwnerType::Org, "org_1")], vec![]);
        assert_eq!(
            check(&p, "read", &admin, &org_owned).reason,
            Reason::OwnerOrg
        );
        // Another org's id in an org edge reaches nobody.
        let foreign = resource(vec![owner(OwnerType::Org, "org_2")], vec![]);
        assert!(!check(&p, "read", &admin, &foreign).allowed);
        let reader = SubjectFacts {
            permissions: strings(&["datasources:read-all"]),
            ..bob()
        };
        let d = check(&p, "read", &reader, &resource(vec![], vec![]));
        assert_eq!((d.allowed, d.reason), (true, Reason::Permission));
        let p = policy(json!({"*": {"everything": {"org_admin": true}}}));
        let d = check(&p, "anything", &admin, &resource(vec![], vec![]));
        assert_eq!((d.allowed, d.reason), (true, Reason::OrgAdmin));
        assert!(!check(&p, "anything", &bob(), &resource(vec![], vec![])).allowed);
    }

    #[test]
    fn an_api_key_never_matches_a_user_owner() {
        let key = SubjectFacts {
            kind: Some(SubjectKind::ApiKey),
            id: "usr_bob".into(),
            ..bob()
        };
        let r = resource(vec![owner(OwnerType::User, "usr_bob")], vec![]);
        assert!(!check(&standard(), "read", &key, &r).allowed);
    }

    fn collection() -> CollectionFacts {
        CollectionFacts {
            service: "datasources".into(),
            collection: "datasources".into(),
            owned: vec![
                ("ds_mine".into(), owner(OwnerType::User, "usr_bob")),
                ("ds_bu".into(), owner(OwnerType::Team, "team_eng")),
                ("ds_org".into(), owner(OwnerType::Org, "org_1")),
            ],
            granted: vec![
                (
                    "ds_shared".into(),
                    role("mygroup:write", &["read", "write"]),
                ),
                ("ds_mine".into(), role("mygroup:write", &["read", "write"])),
                ("ds_admin_only".into(), role("mygroup:admin", &["read"])),
            ],
        }
    }

    fn filter_of(
        p: &StoredPolicy,
        action: &str,
        subject: &SubjectFacts,
        fields: &FieldMap,
    ) -> Filter {
        let c = collection();
        let input = FilterInput {
            policy: p,
            action,
            subject,
            collection: &c,
            fields,
        };
        futures::executor::block_on(Builtin.filter(&input)).expect("builtin answers")
    }

    fn ids(values: &[&str]) -> Filter {
        Filter::In {
            field: Field::Id,
            values: strings(values),
        }
    }

    #[test]
    fn the_filter_unites_owned_and_granted_ids() {
        let only_ids = FieldMap::new("id", None, None, None).expect("valid");
        assert_eq!(
            filter_of(&standard(), "read", &bob(), &only_ids),
            ids(&["ds_bu", "ds_mine", "ds_shared"])
        );
        // Grants need the rule's permission; owners need the rule's mode.
        assert_eq!(
            filter_of(&standard(), "delete", &bob(), &only_ids),
            ids(&["ds_mine"])
        );
        assert_eq!(
            filter_of(&standard(), "write", &bob(), &only_ids),
            ids(&["ds_mine", "ds_shared"])
        );
        assert_eq!(
            filter_of(&standard(), "share", &bob(), &only_ids),
            Filter::False
        );
        let nobody = SubjectFacts {
            id: "usr_eve".into(),
            team_ids: vec![],
            ancestor_team_ids: vec![],
            roles: vec![],
            permissions: vec![],
            ..bob()
        };
        assert_eq!(
            filter_of(&standard(), "read", &nobody, &only_ids),
            Filter::False
        );
        let reader = SubjectFacts {
            permissions: strings(&["datasources:read-all"]),
            ..bob()
        };
        assert_eq!(
            filter_of(&standard(), "read", &reader, &only_ids),
            Filter::True
        );
    }

    #[test]
    fn owner_columns_join_the_filter_when_the_caller_maps_them() {
        let all = FieldMap::new("id", Some("created_by"), Some("team_id"), Some("org_id"))
            .expect("valid");
        let admin = SubjectFacts {
            org_admin: true,
            ..bob()
        };
        assert_eq!(
            filter_of(&standard(), "read", &admin, &all),
            Filter::Or {
                args: vec![
                    ids(&["ds_bu", "ds_mine", "ds_org", "ds_shared"]),
                    Filter::Eq {
                        field: Field::OwnerUser,
                        value: "usr_bob".into()
                    },
                    Filter::In {
                        field: Field::OwnerTeam,
                        values: strings(&["team_api", "team_backend", "team_eng"])
                    },
                    Filter::Eq {
                        field: Field::Org,
                        value: "org_1".into()
                    },
                ]
            }
        );
        // A rule without team ownership adds no team term, even when mapped.
        let d = filter_of(&standard(), "delete", &bob(), &all);
        assert_eq!(
            d,
            Filter::Or {
                args: vec![
                    ids(&["ds_mine"]),
                    Filter::Eq {
                        field: Field::OwnerUser,
                        value: "usr_bob".into()
                    }
                ]
            }
        );
    }

    #[test]
    fn inputs_serialize_for_an_external_engine() -> anyhow::Result<()> {
        let p = standard();
        let subject = bob();
        let r = resource(vec![owner(OwnerType::Team, "team_api")], vec![]);
        let input = CheckInput {
            policy: &p,
            action: "read",
            subject: &subject,
            resource: &r,
        };
        let value = serde_json::to_value(&input)?;
        assert_eq!(value["policy"]["name"], "datasources_filter");
        assert_eq!(value["subject"]["kind"], "user");
        assert_eq!(
            value["resource"]["owners"][0],
            json!({"type": "team", "id": "team_api"})
        );
        let decision = serde_json::to_value(check(&p, "read", &subject, &r))?;
        assert_eq!(decision["reason"], "owner_team");
        Ok(())
    }
}
