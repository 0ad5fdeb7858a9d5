//! The filter tree: which resources of a collection a subject reaches,
//! as a small JSON document a calling service turns into its own query.
//!
//! ```json
//! {"op": "or", "args": [
//!   {"op": "in", "field": "id", "values": ["ds_1", "ds_7"]},
//!   {"op": "eq", "field": "owner_user", "value": "usr_…"}
//! ]}
//! ```
//!
//! Nodes (`op`): `true` (every resource), `false` (none), `or` and `and`
//! (`args`: nodes), `in` (`field` is one of `values`), `eq` (`field` equals
//! `value`). Fields are logical: `id` (the resource id), `owner_user`,
//! `owner_team` and `org` (columns of the service's own rows holding the
//! owning user, team and org); a [`FieldMap`] names the real column or
//! document field of each. Values are strings.

use serde::{Deserialize, Serialize};

/// A logical field of a service's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The resource id.
    Id,
    /// The owning user's id.
    OwnerUser,
    /// The owning team's id.
    OwnerTeam,
    /// The owning org's id.
    Org,
}

/// A filter over a collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Filter {
    /// Every resource.
    True,
    /// No resource.
    False,
    /// Any of `args`.
    Or {
        /// The alternatives.
        args: Vec<Filter>,
    },
    /// All of `args`.
    And {
        /// The conditions.
        args: Vec<Filter>,
    },
    /// `field` is one of `values`.
    In {
        /// The field.
        field: Field,
        /// The values.
        values: Vec<String>,
    },
    /// `field` equals `value`.
    Eq {
        /// The field.
        field: Field,
        /// The value.
        value: String,
    },
}

impl Filter {
    /// `true`, `false`, an empty `in`, and one-argument `or`/`and` folded
    /// away, so `true` and `false` only ever stand alone.
    pub fn simplified(self) -> Filter {
        match self {
            Filter::In { values, .. } if values.is_empty() => Filter::False,
            Filter::Or { args } => Filter::any(args),
            Filter::And { args } => Filter::all(args),
            other => other,
        }
    }

    /// Any of `terms`, simplified.
    pub fn any(terms: impl IntoIterator<Item = Filter>) -> Filter {
        let mut args = Vec::new();
        for term in terms.into_iter().map(Filter::simplified) {
            match term {
                Filter::True => return Filter::True,
                Filter::False => {}
                Filter::Or { args: inner } => args.extend(inner),
                other => args.push(other),
            }
        }
        match args.len() {
            0 => Filter::False,
            1 => args.remove(0),
            _ => Filter::Or { args },
        }
    }

    /// All of `terms`, simplified.
    pub fn all(terms: impl IntoIterator<Item = Filter>) -> Filter {
        let mut args = Vec::new();
        for term in terms.into_iter().map(Filter::simplified) {
            match term {
                Filter::False => return Filter::False,
                Filter::True => {}
                Filter::And { args: inner } => args.extend(inner),
                other => args.push(other),
            }
        }
        match args.len() {
            0 => Filter::True,
            1 => args.remove(0),
            _ => Filter::And { args },
        }
    }
}

/// The longest field path.
pub const MAX_FIELD: usize = 128;

/// Whether `path` is a plain identifier or up to three of them joined by
/// `.` (`id`, `ds.created_by`, `main.ds.team_id`): each part starts with a
/// letter or `_` and holds letters, digits and `_`, at most 63 of them. Such
/// a name can be quoted in SQL and used as a Mongo field path as it is; it
/// never carries an operator (`$`), a quote or whitespace.
pub fn valid_identifier(path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    path.len() <= MAX_FIELD
        && parts.len() <= 3
        && parts.iter().all(|part| {
            let mut bytes = part.bytes();
            bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && part.len() <= 63
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// A field path that is not an identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadField {
    /// The logical field it was meant for.
    pub field: Field,
}

/// The caller's names for the logical fields: `id` always, the owner
/// columns when the service's rows have them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldMap {
    id: String,
    owner_user: Option<String>,
    owner_team: Option<String>,
    org: Option<String>,
}

impl FieldMap {
    /// Checks every name with [`valid_identifier`].
    pub fn new(
        id: &str,
        owner_user: Option<&str>,
        owner_team: Option<&str>,
        org: Option<&str>,
    ) -> Result<FieldMap, BadField> {
        let check = |field: Field, name: Option<&str>| match name {
            Some(n) if !valid_identifier(n) => Err(BadField { field }),
            other => Ok(other.map(str::to_string)),
        };
        Ok(FieldMap {
            id: check(Field::Id, Some(id))?.unwrap_or_default(),
            owner_user: check(Field::OwnerUser, owner_user)?,
            owner_team: check(Field::OwnerTeam, owner_team)?,
            org: check(Field::Org, org)?,
        })
    }

    /// The name of `field`, when mapped.
    pub fn name(&self, field: Field) -> Option<&str> {
        match field {
            Field::Id => Some(&self.id),
            Field::OwnerUser => self.owner_user.as_deref(),
            Field::OwnerTeam => self.owner_team.as_deref(),
            Field::Org => self.org.as_deref(),
        }
    }

    /// Whether `field` is mapped.
    pub fn has(&self, field: Field) -> bool {
        self.name(field).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(values: &[&str]) -> Filter {
        Filter::In {
            field: Field::Id,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn the_tree_serializes_as_documented() -> anyhow::Result<()> {
        let tree = Filter::any([
            ids(&["ds_1"]),
            Filter::Eq {
                field: Field::OwnerUser,
                value: "usr_1".into(),
            },
        ]);
        let value = serde_json::to_value(&tree)?;
        assert_eq!(
            value,
            json!({"op": "or", "args": [
                {"op": "in", "field": "id", "values": ["ds_1"]},
                {"op": "eq", "field": "owner_user", "value": "usr_1"}
            ]})
        );
        assert_eq!(serde_json::from_value::<Filter>(value)?, tree);
        assert_eq!(serde_json::to_value(Filter::True)?, json!({"op": "true"}));
        Ok(())
    }

    #[test]
    fn true_false_and_empty_terms_fold_away() {
        assert_eq!(Filter::any([]), Filter::False);
        assert_eq!(Filter::any([ids(&[]), Filter::False]), Filter::False);
        assert_eq!(Filter::any([ids(&["a"]), Filter::True]), Filter::True);
        assert_eq!(Filter::any([ids(&[]), ids(&["a"])]), ids(&["a"]));
        assert_eq!(Filter::all([]), Filter::True);
        assert_eq!(Filter::all([ids(&["a"]), ids(&[])]), Filter::False);
        assert_eq!(
            Filter::any([Filter::any([ids(&["a"]), ids(&["b"])]), ids(&["c"])]),
            Filter::Or {
                args: vec![ids(&["a"]), ids(&["b"]), ids(&["c"])]
            }
        );
        assert_eq!(
            Filter::Or {
                args: vec![Filter::And {
                    args: vec![ids(&[])]
                }]
            }
            .simplified(),
            Filter::False
        );
    }

    #[test]
    fn field_names_are_plain_identifiers() {
        for ok in [
            "id",
            "_id",
            "created_by",
            "ds.owner",
            "main.ds.team_id",
            "Col9",
        ] {
            assert!(valid_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "9id",
            "id;drop",
            "a b",
            "\"id\"",
            "$where",
            "a..b",
            "a.b.c.d",
            "x-y",
            &"a".repeat(64),
        ] {
            assert!(!valid_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn a_field_map_refuses_a_bad_name_and_knows_what_is_mapped() {
        assert_eq!(
            FieldMap::new("id", Some("created by"), None, None),
            Err(BadField {
                field: Field::OwnerUser
            })
        );
        assert_eq!(
            FieldMap::new("x'", None, None, None),
            Err(BadField { field: Field::Id })
        );
        let map = FieldMap::new("id", None, Some("team_id"), None).expect("valid");
        assert!(map.has(Field::Id) && map.has(Field::OwnerTeam));
        assert!(!map.has(Field::OwnerUser) && !map.has(Field::Org));
        assert_eq!(map.name(Field::OwnerTeam), Some("team_id"));
    }
}
