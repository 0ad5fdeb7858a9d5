//! Liveness and readiness.
//!
//! Readiness answers 503 while the database is unreachable or a migration
//! known to this build is not applied, so an orchestrator keeps traffic
//! away from an instance whose schema is behind. Database errors are never
//! shown, only their effect.

use gatehouse_http::{Response, response};
use serde::Serialize;
use spin_sdk::sqlite::{Connection, Value};

#[derive(Serialize)]
struct Live {
    status: &'static str,
}

#[derive(Serialize)]
struct Ready {
    status: &'static str,
    version: &'static str,
    checks: Checks,
}

#[derive(Serialize)]
struct Checks {
    database: Check,
    migrations: MigrationCheck,
}

#[derive(Serialize)]
struct Check {
    status: &'static str,
}

#[derive(Serialize)]
struct MigrationCheck {
    status: &'static str,
    applied: usize,
    expected: usize,
    latest: Option<&'static str>,
}

/// `GET /v1/health/live`: the component runs; no I/O.
pub fn live(request_id: &str) -> Response {
    response::json(200, &Live { status: "ok" }, request_id)
}

/// `GET /v1/health`: database reachable and migrations current.
pub async fn ready(request_id: &str) -> Response {
    let (database, applied) = match Connection::open_default().await {
        Ok(conn) => (database_ok(&conn).await, applied_versions(&conn).await),
        Err(_) => (false, None),
    };
    let migrations = migration_check(applied.as_deref());
    let ok = database && migrations.status == "ok";
    let body = Ready {
        status: if ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        checks: Checks {
            database: Check {
                status: if database { "ok" } else { "error" },
            },
            migrations,
        },
    };
    response::json(if ok { 200 } else { 503 }, &body, request_id)
}

async fn database_ok(conn: &Connection) -> bool {
    match conn.execute("SELECT 1", []).await {
        Ok(rows) => rows.collect().await.is_ok_and(|r| r.len() == 1),
        Err(_) => false,
    }
}

/// Applied versions, or `None` when the ledger cannot be read. A database
/// that was never migrated has no ledger table: zero applied.
async fn applied_versions(conn: &Connection) -> Option<Vec<i64>> {
    let exists = conn
        .execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'", [])
        .await
        .ok()?
        .collect()
        .await
        .ok()?;
    if !matches!(
        exists.first().and_then(|r| r.values.first()),
        Some(Value::Integer(1))
    ) {
        return Some(Vec::new());
    }
    let rows = conn
        .execute("SELECT version FROM schema_migrations", [])
        .await
        .ok()?
        .collect()
        .await
        .ok()?;
    Some(
        rows.iter()
            .filter_map(|r| match r.values.first() {
                Some(Value::Integer(v)) => Some(*v),
                _ => None,
            })
            .collect(),
    )
}

fn migration_check(applied: Option<&[i64]>) -> MigrationCheck {
    let latest = schema::EMBEDDED.last().map(|m| m.name);
    let expected_count = schema::EMBEDDED.len();
    let Some(applied) = applied else {
        return MigrationCheck {
            status: "error",
            applied: 0,
            expected: expected_count,
            latest,
        };
    };
    let present = schema::EMBEDDED
        .iter()
        .filter(|m| applied.contains(&i64::from(m.version)))
        .count();
    MigrationCheck {
        status: if present == expected_count {
            "ok"
        } else {
            "pending"
        },
        applied: present,
        expected: expected_count,
        latest,
    }
}
