//! A [`Filter`] as the query a service runs: a Mongo query document, or a
//! parameterised SQL `WHERE` fragment. Field names come from a
//! [`FieldMap`] whose names are checked identifiers; values only ever
//! travel as parameters (SQL) or JSON strings (Mongo), never in query text.
//!
//! SQL quotes identifiers the ANSI way (`"created_by"`, `"ds"."id"`), which
//! SQLite, PostgreSQL and most others accept (MySQL with `ANSI_QUOTES`).

use serde_json::{Map, Value, json};

use crate::filter::{Field, FieldMap, Filter};

/// A field the filter uses but the map does not name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    /// The field.
    pub field: Field,
}

fn name(fields: &FieldMap, field: Field) -> Result<&str, Unmapped> {
    fields.name(field).ok_or(Unmapped { field })
}

/// The filter as a Mongo query document: `true` matches everything (`{}`),
/// `false` nothing (`{"<id>": {"$in": []}}`).
pub fn to_mongo(filter: &Filter, fields: &FieldMap) -> Result<Value, Unmapped> {
    Ok(match filter {
        Filter::True => json!({}),
        Filter::False => single(name(fields, Field::Id)?, json!({"$in": []})),
        Filter::Or { args } => json!({"$or": many(args, fields)?}),
        Filter::And { args } => json!({"$and": many(args, fields)?}),
        Filter::In { field, values } => single(name(fields, *field)?, json!({"$in": values})),
        Filter::Eq { field, value } => single(name(fields, *field)?, json!({"$eq": value})),
    })
}

fn single(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_string(), value);
    Value::Object(map)
}

fn many(args: &[Filter], fields: &FieldMap) -> Result<Vec<Value>, Unmapped> {
    args.iter().map(|a| to_mongo(a, fields)).collect()
}

/// How parameters are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `?` each (SQLite, MySQL, JDBC).
    Question,
    /// `?N` numbered from `first` (SQLite).
    QuestionNumbered {
        /// The first number.
        first: u32,
    },
    /// `$N` numbered from `first` (PostgreSQL).
    Dollar {
        /// The first number.
        first: u32,
    },
}

impl Placeholder {
    /// From its documented form: `?`, `?N` or `$N`, numbering from `first`.
    pub fn parse(style: &str, first: u32) -> Option<Placeholder> {
        match style {
            "?" => Some(Placeholder::Question),
            "?N" => Some(Placeholder::QuestionNumbered { first }),
            "$N" => Some(Placeholder::Dollar { first }),
            _ => None,
        }
    }

    fn write(self, index: usize) -> String {
        let n = |first: u32| u64::from(first) + index as u64;
        match self {
            Placeholder::Question => "?".to_string(),
            Placeholder::QuestionNumbered { first } => format!("?{}", n(first)),
            Placeholder::Dollar { first } => format!("${}", n(first)),
        }
    }
}

/// A `WHERE` fragment and its parameters, in order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SqlFragment {
    /// The condition, to put after `WHERE` (or `AND`).
    pub sql: String,
    /// The values of its placeholders.
    pub params: Vec<String>,
}

/// The filter as an SQL condition with parameters.
pub fn to_sql(
    filter: &Filter,
    fields: &FieldMap,
    placeholder: Placeholder,
) -> Result<SqlFragment, Unmapped> {
    let mut params = Vec::new();
    let sql = sql_of(filter, fields, placeholder, &mut params)?;
    Ok(SqlFragment { sql, params })
}

fn quoted(path: &str) -> String {
    // Checked identifiers hold no quote; quoting keeps reserved words usable.
    path.split('.')
        .map(|part| format!("\"{part}\""))
        .collect::<Vec<_>>()
        .join(".")
}

fn sql_of(
    filter: &Filter,
    fields: &FieldMap,
    placeholder: Placeholder,
    params: &mut Vec<String>,
) -> Result<String, Unmapped> {
    let param = |value: &str, params: &mut Vec<String>| {
        params.push(value.to_string());
        placeholder.write(params.len() - 1)
    };
    Ok(match filter {
        Filter::True => "1 = 1".to_string(),
        Filter::False => "1 = 0".to_string(),
        Filter::Or { args } | Filter::And { args } if args.is_empty() => {
            if matches!(filter, Filter::Or { .. }) {
                "1 = 0"
            } else {
                "1 = 1"
            }
            .to_string()
        }
        Filter::Or { args } | Filter::And { args } => {
            let joiner = if matches!(filter, Filter::Or { .. }) {
                " OR "
            } else {
                " AND "
            };
            let parts = args
                .iter()
                .map(|a| sql_of(a, fields, placeholder, params))
                .collect::<Result<Vec<_>, _>>()?;
            format!("({})", parts.join(joiner))
        }
        Filter::In { values, .. } if values.is_empty() => "1 = 0".to_string(),
        Filter::In { field, values } => {
            let column = quoted(name(fields, *field)?);
            let marks: Vec<String> = values.iter().map(|v| param(v, params)).collect();
            format!("{column} IN ({})", marks.join(", "))
        }
        Filter::Eq { field, value } => {
            let column = quoted(name(fields, *field)?);
            format!("{column} = {}", param(value, params))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> FieldMap {
        FieldMap::new("_id", Some("created_by"), Some("ds.team_id"), None).expect("valid")
    }

    fn tree() -> Filter {
        Filter::any([
            Filter::In {
                field: Field::Id,
                values: vec!["d1".into(), "d2".into()],
            },
            Filter::Eq {
                field: Field::OwnerUser,
                value: "usr_1".into(),
            },
            Filter::In {
                field: Field::OwnerTeam,
                values: vec!["team_1".into()],
            },
        ])
    }

    #[test]
    fn mongo_names_the_callers_fields() -> anyhow::Result<()> {
        let mongo = to_mongo(&tree(), &fields()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(
            mongo,
            json!({"$or": [
                {"_id": {"$in": ["d1", "d2"]}},
                {"created_by": {"$eq": "usr_1"}},
                {"ds.team_id": {"$in": ["team_1"]}}
            ]})
        );
        assert_eq!(to_mongo(&Filter::True, &fields()), Ok(json!({})));
        assert_eq!(
            to_mongo(&Filter::False, &fields()),
            Ok(json!({"_id": {"$in": []}}))
        );
        let both = Filter::all([
            tree(),
            Filter::Eq {
                field: Field::Id,
                value: "d1".into(),
            },
        ]);
        assert_eq!(
            to_mongo(&both, &fields()).map_err(|e| anyhow::anyhow!("{e:?}"))?["$and"][1],
            json!({"_id": {"$eq": "d1"}})
        );
        Ok(())
    }

    #[test]
    fn values_that_look_like_operators_stay_values() -> anyhow::Result<()> {
        let hostile = Filter::Eq {
            field: Field::Id,
            value: "{\"$gt\": \"\"}' OR 1=1 --".into(),
        };
        let mongo = to_mongo(&hostile, &fields()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(mongo["_id"]["$eq"], json!("{\"$gt\": \"\"}' OR 1=1 --"));
        let sql = to_sql(&hostile, &fields(), Placeholder::Question)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(sql.sql, "\"_id\" = ?");
        assert_eq!(sql.params, ["{\"$gt\": \"\"}' OR 1=1 --"]);
        Ok(())
    }

    #[test]
    fn sql_numbers_parameters_in_the_callers_style() -> anyhow::Result<()> {
        let fragment = |p| to_sql(&tree(), &fields(), p).map_err(|e| anyhow::anyhow!("{e:?}"));
        let plain = fragment(Placeholder::Question)?;
        assert_eq!(
            plain.sql,
            r#"("_id" IN (?, ?) OR "created_by" = ? OR "ds"."team_id" IN (?))"#
        );
        assert_eq!(plain.params, ["d1", "d2", "usr_1", "team_1"]);
        assert_eq!(
            fragment(Placeholder::Dollar { first: 3 })?.sql,
            r#"("_id" IN ($3, $4) OR "created_by" = $5 OR "ds"."team_id" IN ($6))"#
        );
        assert_eq!(
            fragment(Placeholder::QuestionNumbered { first: 1 })?.sql,
            r#"("_id" IN (?1, ?2) OR "created_by" = ?3 OR "ds"."team_id" IN (?4))"#
        );
        assert_eq!(
            Placeholder::parse("$N", 2),
            Some(Placeholder::Dollar { first: 2 })
        );
        assert_eq!(Placeholder::parse(":name", 1), None);
        Ok(())
    }

    #[test]
    fn constant_filters_need_no_parameters() {
        let f = fields();
        for (filter, expected) in [
            (Filter::True, "1 = 1"),
            (Filter::False, "1 = 0"),
            (Filter::Or { args: vec![] }, "1 = 0"),
            (Filter::And { args: vec![] }, "1 = 1"),
            (
                Filter::In {
                    field: Field::Id,
                    values: vec![],
                },
                "1 = 0",
            ),
        ] {
            let sql = to_sql(&filter, &f, Placeholder::Question).expect("renders");
            assert_eq!((sql.sql.as_str(), sql.params.len()), (expected, 0));
        }
    }

    #[test]
    fn a_field_the_map_lacks_is_reported() {
        let org = Filter::Eq {
            field: Field::Org,
            value: "org_1".into(),
        };
        assert_eq!(
            to_sql(&org, &fields(), Placeholder::Question),
            Err(Unmapped { field: Field::Org })
        );
        assert_eq!(
            to_mongo(&org, &fields()),
            Err(Unmapped { field: Field::Org })
        );
    }
}
