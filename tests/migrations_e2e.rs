//! The app migrates itself through `spin:sqlite`: the operator route
//! applies the embedded migrations to a fresh database, once each, under
//! a lock, so any Spin host (not only the local one) can be brought up to
//! date without a separate step.

use std::thread;

use anyhow::{Context, Result};
use gatehouse_tests::app::{database, expect, signed_in};
use gatehouse_tests::{HostConfig, Reply, TestHost, get, root, send};
use serde_json::Value;

const OPERATOR: &str = "operator-secret-for-tests";

/// The app on an empty database: nothing applied at start.
fn fresh() -> Result<TestHost> {
    let mut config = HostConfig::new(root().join("spin.toml"));
    config.env = vec![
        ("SPIN_VARIABLE_OPERATOR_TOKEN".into(), OPERATOR.into()),
        ("SPIN_VARIABLE_DEV_OUTBOX".into(), "enabled".into()),
    ];
    TestHost::start(config)
}

fn migrations(host: &TestHost, method: &str, token: Option<&str>) -> Result<Reply> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    send(method, &host.url("/v1/admin/migrations"), &headers, b"")
}

fn files() -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("infra/migrations"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
        .filter_map(|e| {
            e.path()
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

fn names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_operator_route_migrates_a_fresh_database_once() -> Result<()> {
    let host = fresh()?;
    assert_eq!(get(&host.url("/v1/health"), &[])?.status, 503);
    // Only the operator.
    for token in [None, Some("wrong"), Some("")] {
        let reply = migrations(&host, "POST", token)?;
        assert_eq!(reply.status, 401, "{token:?}: {}", reply.text());
        assert_eq!(reply.json()?["code"], "unauthenticated");
    }
    let status = expect(migrations(&host, "GET", Some(OPERATOR))?, 200)?;
    assert_eq!(names(&status["pending"]), files()?);
    assert_eq!(names(&status["applied"]), Vec::<String>::new());

    let run = expect(migrations(&host, "POST", Some(OPERATOR))?, 200)?;
    assert_eq!(names(&run["applied_now"]), files()?);
    assert_eq!(names(&run["applied"]), files()?);
    assert_eq!(names(&run["pending"]), Vec::<String>::new());
    let health = expect(get(&host.url("/v1/health"), &[])?, 200)?;
    assert_eq!(health["checks"]["migrations"]["status"], "ok");
    // The schema is real: the app works on it.
    signed_in(&host, "ada@example.com")?;

    let again = expect(migrations(&host, "POST", Some(OPERATOR))?, 200)?;
    assert_eq!(names(&again["applied_now"]), Vec::<String>::new());
    Ok(())
}

#[test]
fn concurrent_runs_never_apply_a_migration_twice() -> Result<()> {
    let host = fresh()?;
    let url = host.url("/v1/admin/migrations");
    let auth = format!("Bearer {OPERATOR}");
    let runs: Vec<thread::JoinHandle<Result<Reply>>> = (0..4)
        .map(|_| {
            let (url, auth) = (url.clone(), auth.clone());
            thread::spawn(move || send("POST", &url, &[("authorization", &auth)], b""))
        })
        .collect();
    let mut applied = Vec::new();
    for run in runs {
        let reply = run
            .join()
            .map_err(|_| anyhow::anyhow!("thread panicked"))??;
        match reply.status {
            200 => applied.extend(names(&reply.json()?["applied_now"])),
            409 => assert!(reply.header("retry-after").is_some(), "{}", reply.text()),
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    applied.sort();
    assert_eq!(applied, files()?, "each migration applied exactly once");
    let db = database(&host)?;
    let recorded: i64 = db.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))?;
    assert_eq!(usize::try_from(recorded)?, files()?.len());
    let locks: i64 = db.query_row("SELECT COUNT(*) FROM schema_migration_lock", [], |r| {
        r.get(0)
    })?;
    assert_eq!(locks, 0, "the lock is released");
    Ok(())
}

#[test]
fn a_database_the_host_migrated_is_current_for_the_route_and_a_changed_one_is_refused() -> Result<()>
{
    let mut config = HostConfig::new(root().join("spin.toml"));
    config.migrations = Some(root().join("infra/migrations"));
    config.env = vec![("SPIN_VARIABLE_OPERATOR_TOKEN".into(), OPERATOR.into())];
    let host = TestHost::start(config)?;
    let run = expect(migrations(&host, "POST", Some(OPERATOR))?, 200)?;
    assert_eq!(names(&run["applied_now"]), Vec::<String>::new());
    let db = database(&host)?;
    db.execute(
        "UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1",
        [],
    )?;
    let refused = migrations(&host, "POST", Some(OPERATOR))?;
    assert_eq!(refused.status, 409, "{}", refused.text());
    let detail = refused.json()?["detail"]
        .as_str()
        .context("detail")?
        .to_string();
    assert!(
        detail.contains("0001_platform") && detail.contains("changed"),
        "{detail}"
    );
    Ok(())
}

/// Deleting an org deletes its rows table by table (deployments may run
/// SQLite without foreign keys, where nothing cascades): every table with
/// an `org_id` column is in that list, so a table added later cannot keep
/// a deleted org's data.
#[test]
fn deleting_an_org_clears_every_table_that_holds_an_org_id() -> Result<()> {
    let dir = gatehouse_tests::TempDir::new("org-tables")?;
    let db = dir.path().join("gatehouse.db");
    gatehouse_host::migrate::apply_file(&db, &root().join("infra/migrations"))?;
    let conn = rusqlite::Connection::open(&db)?;
    let mut tables = conn.prepare(
        "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c
         WHERE m.type = 'table' AND c.name = 'org_id' ORDER BY m.name",
    )?;
    let with_org: Vec<String> = tables
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    assert!(with_org.len() > 30, "{with_org:?}");
    let source = std::fs::read_to_string(root().join("components/orgs/src/orgs.rs"))?;
    let rows = source
        .split("const ORG_ROWS")
        .nth(1)
        .and_then(|rest| rest.split("];").next())
        .context("ORG_ROWS in orgs.rs")?;
    let deleted: Vec<&str> = rows
        .split("DELETE FROM ")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next())
        .collect();
    let missing: Vec<&String> = with_org
        .iter()
        .filter(|t| !deleted.contains(&t.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "org deletion leaves rows in {missing:?}"
    );
    Ok(())
}
