//! The policy document: data, stored per org under a name, every change a
//! new version. A policy says, per action, which paths to a resource give
//! access to it:
//!
//! ```json
//! {
//!   "description": "Datasources: creators, owning teams and their sub-teams, granted roles",
//!   "applies_to": {"service": "datasources", "collection": "datasources"},
//!   "rules": {
//!     "read": {
//!       "owner": {"user": true, "team": "with_subteams", "org": "members"},
//!       "grant_permission": "read",
//!       "everything": {"org_admin": true, "permissions": ["datasources:read-all"]}
//!     },
//!     "*": {"owner": {"user": true}}
//!   }
//! }
//! ```
//!
//! - `rules` maps an action to its rule; `"*"` is the rule of every action
//!   not named. An action without a rule is denied.
//! - `owner`: which ownership edges give access. `user`: the subject is the
//!   resource's owning user. `team`: `"direct"` — the subject is in an owning
//!   team; `"with_subteams"` — also when the subject is in a team below an
//!   owning team (a business unit owning a resource shares it with its
//!   sub-teams); `"none"` (default). `org`: the org owns the resource and the
//!   subject is one of its `"members"`, or one of its `"admins"`; `"none"`
//!   (default).
//! - `grant_permission`: resource ids granted to a role the subject holds
//!   count when that role has this permission. Absent: the action's own
//!   name (`read` for `read`); `null`: grants never count.
//! - `everything`: the subject reaches every resource of the collection when
//!   it administers the org (`org_admin`) or holds one of `permissions`.
//! - `applies_to` (optional) pins the service and collection the policy is
//!   for: requests may then leave them out, and may not name others.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::names::{valid_name, valid_permission};

/// The rule key that applies to every action without its own rule.
pub const ANY_ACTION: &str = "*";
/// The most rules a policy may have.
pub const MAX_RULES: usize = 64;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 500;

/// A policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// What the policy is for, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The service and collection the policy is pinned to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<AppliesTo>,
    /// Action (or `*`) to rule.
    pub rules: BTreeMap<String, Rule>,
}

/// The resources a policy is pinned to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliesTo {
    /// The service, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The collection, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
}

/// How one action is decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Which ownership edges give access.
    #[serde(default, skip_serializing_if = "OwnerRule::is_empty")]
    pub owner: OwnerRule,
    /// `None`: the action's name; `Some(None)`: grants do not count;
    /// `Some(Some(p))`: granted roles need `p`.
    #[serde(
        default,
        deserialize_with = "explicit_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub grant_permission: Option<Option<String>>,
    /// Who reaches every resource.
    #[serde(default, skip_serializing_if = "Everything::is_empty")]
    pub everything: Everything,
}

/// Keeps `null` apart from absent: absent stays `None` (`#[serde(default)]`),
/// `null` is `Some(None)`.
fn explicit_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Ownership edges that give access.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerRule {
    /// The subject is the owning user.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user: bool,
    /// Owning teams.
    #[serde(default, skip_serializing_if = "TeamOwners::is_none")]
    pub team: TeamOwners,
    /// The owning org.
    #[serde(default, skip_serializing_if = "OrgOwners::is_none")]
    pub org: OrgOwners,
}

// Defaults are left out when a document is stored, so it reads back as
// written and an unchanged document is recognised as such.
impl OwnerRule {
    /// Whether no ownership edge gives access.
    pub fn is_empty(&self) -> bool {
        *self == OwnerRule::default()
    }
}

impl TeamOwners {
    /// Whether team ownership gives nobody access.
    pub fn is_none(&self) -> bool {
        *self == TeamOwners::None
    }
}

impl OrgOwners {
    /// Whether org ownership gives nobody access.
    pub fn is_none(&self) -> bool {
        *self == OrgOwners::None
    }
}

/// Which members of an owning team get access.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamOwners {
    /// Team ownership gives nobody access.
    #[default]
    None,
    /// The team's own members.
    Direct,
    /// The team's members and the members of every team below it.
    WithSubteams,
}

/// Which members of an owning org get access.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgOwners {
    /// Org ownership gives nobody access.
    #[default]
    None,
    /// Every member.
    Members,
    /// The org's admins.
    Admins,
}

/// Who reaches every resource of the collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Everything {
    /// The org's admins.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub org_admin: bool,
    /// Holders of any of these permissions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
}

impl Everything {
    /// Whether nobody reaches everything.
    pub fn is_empty(&self) -> bool {
        !self.org_admin && self.permissions.is_empty()
    }
}

/// A wrong part of a document: a JSON pointer into it and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Where, relative to the document (`/rules/read/grant_permission`).
    pub pointer: String,
    /// A stable code.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

fn invalid(pointer: String, code: &'static str, message: &str) -> Invalid {
    Invalid {
        pointer,
        code,
        message: message.to_string(),
    }
}

/// RFC 6901 escaping of one pointer token.
fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl PolicyDocument {
    /// Every rule the shape alone cannot enforce.
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut errors = Vec::new();
        if self.description.chars().count() > MAX_DESCRIPTION {
            errors.push(invalid(
                "/description".into(),
                "invalid_length",
                "description may have at most 500 characters",
            ));
        }
        if let Some(applies) = &self.applies_to {
            for (field, value) in [
                ("service", &applies.service),
                ("collection", &applies.collection),
            ] {
                if value.as_deref().is_some_and(|v| !valid_name(v)) {
                    errors.push(invalid(
                        format!("/applies_to/{field}"),
                        "invalid_format",
                        "must be 1 to 64 of a-z 0-9 _ . - starting with a letter or digit",
                    ));
                }
            }
        }
        if self.rules.is_empty() || self.rules.len() > MAX_RULES {
            errors.push(invalid(
                "/rules".into(),
                "invalid_length",
                "a policy has 1 to 64 rules",
            ));
        }
        for (action, rule) in &self.rules {
            let at = format!("/rules/{}", token(action));
            if action != ANY_ACTION && !valid_name(action) {
                errors.push(invalid(
                    at.clone(),
                    "invalid_format",
                    "an action is 1 to 64 of a-z 0-9 _ . - starting with a letter or digit, or *",
                ));
            }
            if let Some(Some(p)) = &rule.grant_permission
                && !valid_permission(p)
            {
                errors.push(invalid(
                    format!("{at}/grant_permission"),
                    "invalid_format",
                    "not a permission",
                ));
            }
            for (i, p) in rule.everything.permissions.iter().enumerate() {
                if !valid_permission(p) {
                    errors.push(invalid(
                        format!("{at}/everything/permissions/{i}"),
                        "invalid_format",
                        "not a permission",
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The rule deciding `action`: its own, else `*`'s.
    pub fn rule_for(&self, action: &str) -> Option<&Rule> {
        self.rules
            .get(action)
            .or_else(|| self.rules.get(ANY_ACTION))
    }
}

impl Rule {
    /// The permission a granted role needs for `action`, if grants count.
    pub fn grant_permission_for<'a>(&'a self, action: &'a str) -> Option<&'a str> {
        match &self.grant_permission {
            None => Some(action),
            Some(p) => p.as_deref(),
        }
    }
}

/// A policy version as stored: its name, version and document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPolicy {
    /// The policy's name (`datasources_filter`).
    pub name: String,
    /// 1, 2, … per org and name.
    pub version: i64,
    /// The document.
    pub document: PolicyDocument,
}

/// `name:action` (`datasources_filter:read`) split at its last `:`;
/// `None` unless both are simple names.
pub fn parse_reference(reference: &str) -> Option<(&str, &str)> {
    let (name, action) = reference.rsplit_once(':')?;
    (valid_name(name) && valid_name(action)).then_some((name, action))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> anyhow::Result<PolicyDocument> {
        Ok(serde_json::from_value(value)?)
    }

    #[test]
    fn a_full_document_parses_and_round_trips() -> anyhow::Result<()> {
        let value = json!({
            "description": "datasources",
            "applies_to": {"service": "datasources", "collection": "datasources"},
            "rules": {
                "read": {
                    "owner": {"user": true, "team": "with_subteams", "org": "members"},
                    "grant_permission": "read",
                    "everything": {"org_admin": true, "permissions": ["datasources:read-all"]}
                },
                "delete": {"owner": {"user": true}, "grant_permission": null},
                "*": {}
            }
        });
        let doc = parse(value.clone())?;
        assert_eq!(doc.validate(), Ok(()));
        let read = doc.rule_for("read").expect("read rule");
        assert_eq!(read.owner.team, TeamOwners::WithSubteams);
        assert_eq!(read.owner.org, OrgOwners::Members);
        assert_eq!(read.grant_permission_for("read"), Some("read"));
        assert_eq!(
            doc.rule_for("delete")
                .and_then(|r| r.grant_permission_for("delete")),
            None
        );
        // `*` answers for unnamed actions, with the action as its permission.
        let any = doc.rule_for("share").expect("* rule");
        assert_eq!(any.grant_permission_for("share"), Some("share"));
        assert_eq!(any.owner, OwnerRule::default());
        // Serializing keeps `null` apart from absent, and leaves defaults out.
        let back = serde_json::to_value(&doc)?;
        assert_eq!(back["rules"]["delete"]["owner"], json!({"user": true}));
        assert_eq!(back["rules"]["*"], json!({}));
        assert_eq!(back["rules"]["delete"]["grant_permission"], json!(null));
        assert!(back["rules"]["*"].get("grant_permission").is_none());
        assert_eq!(parse(back)?, doc);
        Ok(())
    }

    #[test]
    fn unknown_fields_and_modes_are_refused_by_shape() {
        for bad in [
            json!({"rules": {"read": {"owners": {}}}}),
            json!({"rules": {"read": {"owner": {"team": "everyone"}}}}),
            json!({"rules": {"read": {}}, "extra": 1}),
            json!({"description": "no rules"}),
        ] {
            assert!(
                serde_json::from_value::<PolicyDocument>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn validation_points_at_every_wrong_part() -> anyhow::Result<()> {
        let doc = parse(json!({
            "applies_to": {"service": "Bad Service"},
            "rules": {
                "Read": {},
                "write": {"grant_permission": "no spaces", "everything": {"permissions": ["ok", "NOT"]}}
            }
        }))?;
        let pointers: Vec<String> = doc
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.pointer)
            .collect();
        assert_eq!(
            pointers,
            [
                "/applies_to/service",
                "/rules/Read",
                "/rules/write/grant_permission",
                "/rules/write/everything/permissions/1"
            ]
        );
        let empty = parse(json!({"rules": {}}))?;
        assert_eq!(empty.validate().unwrap_err()[0].pointer, "/rules");
        Ok(())
    }

    #[test]
    fn references_name_a_policy_and_an_action() {
        assert_eq!(
            parse_reference("datasources_filter:read"),
            Some(("datasources_filter", "read"))
        );
        for bad in ["datasources_filter", ":read", "p:", "P:read", "a:b:c"] {
            assert_eq!(parse_reference(bad), None, "{bad}");
        }
    }
}
