//! Versioned SQL migrations (`infra/migrations/NNNN_name.sql`) applied to a
//! database in order, each in its own transaction, recorded with a checksum.
//! A migration that changed after it was applied stops everything: the
//! database no longer matches what the code expects.

use anyhow::{Context, Result, bail};
use rusqlite::Connection;
use sha2::{Digest, Sha256};
use std::path::Path;

/// One migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The number before the first `_`.
    pub version: u32,
    /// The file stem, e.g. `0001_platform`.
    pub name: String,
    /// The SQL text.
    pub sql: String,
    /// SHA-256 of the SQL text, hex.
    pub checksum: String,
}

/// What a run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Migrations already applied before this run.
    pub already: usize,
    /// Names applied by this run, in order.
    pub applied: Vec<String>,
}

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

/// Reads every `NNNN_name.sql` in `dir`, sorted by version.
pub fn load_dir(dir: &Path) -> Result<Vec<Migration>> {
    let mut migrations = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read migrations directory {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let version = name
            .split_once('_')
            .and_then(|(v, _)| v.parse::<u32>().ok())
            .with_context(|| {
                format!(
                    "migration file {} must be named NNNN_name.sql",
                    path.display()
                )
            })?;
        let sql = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        migrations.push(Migration {
            version,
            name,
            sql,
            checksum,
        });
    }
    migrations.sort_by_key(|m| m.version);
    for pair in migrations.windows(2) {
        if pair[0].version == pair[1].version {
            bail!(
                "migrations {} and {} share version {}",
                pair[0].name,
                pair[1].name,
                pair[0].version
            );
        }
    }
    Ok(migrations)
}

/// Applies the pending migrations to `conn`.
pub fn apply(conn: &mut Connection, migrations: &[Migration]) -> Result<Report> {
    conn.execute_batch(LEDGER)?;
    let applied: Vec<(u32, String, String)> = conn
        .prepare("SELECT version, name, checksum FROM schema_migrations ORDER BY version")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (version, name, checksum) in &applied {
        match migrations.iter().find(|m| m.version == *version) {
            Some(m) if m.checksum == *checksum => {}
            Some(m) => bail!(
                "migration {}.sql changed after it was applied (recorded checksum {checksum}, file has {}); restore it and add a new migration instead",
                m.name,
                m.checksum
            ),
            None => bail!(
                "the database has migration {name} applied, which no longer exists; this code is older than the database"
            ),
        }
    }
    let mut report = Report {
        already: applied.len(),
        applied: Vec::new(),
    };
    for m in migrations
        .iter()
        .filter(|m| !applied.iter().any(|(v, _, _)| *v == m.version))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(&m.sql)
            .with_context(|| format!("migration {} failed", m.name))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            (m.version, &m.name, &m.checksum),
        )?;
        tx.commit()?;
        report.applied.push(m.name.clone());
    }
    Ok(report)
}

/// Applies the migrations in `dir` to the SQLite file at `db`.
pub fn apply_file(db: &Path, dir: &Path) -> Result<Report> {
    let migrations = load_dir(dir)?;
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut conn =
        Connection::open(db).with_context(|| format!("cannot open database {}", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    apply(&mut conn, &migrations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(version: u32, name: &str, sql: &str) -> Migration {
        Migration {
            version,
            name: name.into(),
            sql: sql.into(),
            checksum: hex::encode(Sha256::digest(sql.as_bytes())),
        }
    }

    #[test]
    fn applies_pending_migrations_once() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        let first = vec![migration(1, "0001_a", "CREATE TABLE a (x INTEGER);")];
        assert_eq!(apply(&mut conn, &first)?.applied, vec!["0001_a"]);
        let both = vec![
            first[0].clone(),
            migration(2, "0002_b", "CREATE TABLE b (y INTEGER);"),
        ];
        let report = apply(&mut conn, &both)?;
        assert_eq!(
            (report.already, report.applied),
            (1, vec!["0002_b".to_string()])
        );
        assert_eq!(apply(&mut conn, &both)?.applied.len(), 0);
        Ok(())
    }

    #[test]
    fn refuses_a_changed_migration() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        apply(
            &mut conn,
            &[migration(1, "0001_a", "CREATE TABLE a (x INTEGER);")],
        )?;
        let err = apply(
            &mut conn,
            &[migration(1, "0001_a", "CREATE TABLE a (x TEXT);")],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("changed after it was applied"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn a_failing_migration_leaves_nothing_behind() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        let bad = migration(
            1,
            "0001_bad",
            "CREATE TABLE ok (x INTEGER); THIS IS NOT SQL;",
        );
        assert!(apply(&mut conn, &[bad]).is_err());
        let tables: i64 = conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'ok'",
            [],
            |r| r.get(0),
        )?;
        let recorded: i64 =
            conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))?;
        assert_eq!((tables, recorded), (0, 0));
        Ok(())
    }
}
