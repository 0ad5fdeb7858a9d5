//! The app's SQL migrations, embedded at build time from
//! `infra/migrations/`, and the pure logic of applying them through Spin's
//! SQLite interface, which runs one statement per call: splitting a file
//! into statements, and the plan of which migrations are pending.
//!
//! The ledger is the one the local host's `migrate` writes
//! (`schema_migrations`: version, name, checksum, applied time), so a
//! database migrated by either is current for both.

#![deny(missing_docs)]

pub mod plan;
pub mod split;

/// One migration file, embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The number before the first `_`.
    pub version: u32,
    /// The file stem, e.g. `0001_platform`.
    pub name: &'static str,
    /// The SQL text.
    pub sql: &'static str,
    /// SHA-256 of the SQL text, lower-case hex.
    pub checksum: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The ledger of applied migrations (the local host's is the same).
pub const LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

/// The one-row lock a migration run holds, so two runs (two instances
/// asked at once) never both apply a migration. A lock older than
/// [`LOCK_STALE_SECONDS`] is taken over: its holder died.
pub const LOCK_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migration_lock (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT    NOT NULL,
    acquired_at INTEGER NOT NULL
)";

/// After this, a migration lock is considered abandoned.
pub const LOCK_STALE_SECONDS: i64 = 300;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded_in_order_with_its_checksum() {
        assert!(EMBEDDED.len() >= 12);
        assert!(EMBEDDED.windows(2).all(|w| w[0].version < w[1].version));
        let first = EMBEDDED[0];
        assert_eq!((first.version, first.name), (1, "0001_platform"));
        assert!(
            EMBEDDED
                .iter()
                .all(|m| m.checksum.len() == 64 && !m.sql.is_empty())
        );
    }

    #[test]
    fn every_embedded_migration_splits_into_statements_sqlite_accepts_one_by_one() {
        for m in EMBEDDED {
            let statements = split::statements(m.sql);
            assert!(!statements.is_empty(), "{}", m.name);
            for s in &statements {
                assert!(!s.trim().is_empty(), "{}: empty statement", m.name);
                assert!(!s.trim_end().ends_with(';'), "{}: {s}", m.name);
            }
        }
    }
}
