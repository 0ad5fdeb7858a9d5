//! Which migrations a database still needs, checked against what it has.

use crate::Migration;

/// A row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The migration's version.
    pub version: u32,
    /// Its name when applied.
    pub name: String,
    /// Its checksum when applied.
    pub checksum: String,
}

/// Why the database and this build disagree; nothing may be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// A migration changed after it was applied.
    Changed(String),
    /// The database has a migration this build does not know: the code is
    /// older than the database.
    Unknown(String),
}

impl Mismatch {
    /// What an operator needs to know.
    pub fn describe(&self) -> String {
        match self {
            Mismatch::Changed(name) => format!(
                "migration {name} changed after it was applied; restore it and add a new migration instead"
            ),
            Mismatch::Unknown(name) => format!(
                "the database has migration {name} applied, which this build does not know: the code is older than the database"
            ),
        }
    }
}

/// The migrations of `known` not in `applied`, in order; a mismatch when
/// an applied one changed or is unknown.
pub fn pending<'a>(
    known: &'a [Migration],
    applied: &[Applied],
) -> Result<Vec<&'a Migration>, Mismatch> {
    for row in applied {
        match known.iter().find(|m| m.version == row.version) {
            Some(m) if m.checksum == row.checksum => {}
            Some(m) => return Err(Mismatch::Changed(m.name.to_string())),
            None => return Err(Mismatch::Unknown(row.name.clone())),
        }
    }
    Ok(known
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [Migration; 2] = [
        Migration {
            version: 1,
            name: "0001_a",
            sql: "CREATE TABLE a (x)",
            checksum: "aa",
        },
        Migration {
            version: 2,
            name: "0002_b",
            sql: "CREATE TABLE b (x)",
            checksum: "bb",
        },
    ];

    fn applied(version: u32, name: &str, checksum: &str) -> Applied {
        Applied {
            version,
            name: name.into(),
            checksum: checksum.into(),
        }
    }

    #[test]
    fn pending_migrations_are_those_not_applied_in_order() {
        let names = |p: Vec<&Migration>| p.iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(
            pending(&KNOWN, &[]).map(names),
            Ok(vec!["0001_a", "0002_b"])
        );
        assert_eq!(
            pending(&KNOWN, &[applied(1, "0001_a", "aa")]).map(names),
            Ok(vec!["0002_b"])
        );
    }

    #[test]
    fn a_changed_or_unknown_applied_migration_stops_everything() {
        assert_eq!(
            pending(&KNOWN, &[applied(1, "0001_a", "zz")]),
            Err(Mismatch::Changed("0001_a".into()))
        );
        let newer = pending(&KNOWN, &[applied(9, "0009_future", "99")]);
        assert_eq!(newer, Err(Mismatch::Unknown("0009_future".into())));
        assert!(
            newer
                .unwrap_err()
                .describe()
                .contains("older than the database")
        );
    }
}
