//! The app migrates itself: `POST /v1/admin/migrations` (operator token)
//! applies the embedded migrations a database lacks, in order, each once,
//! through `spin:sqlite`, so `spin up`, SpinKube and libSQL need no
//! separate step. `GET` lists what is applied and pending.
//!
//! Two runs at once (two instances asked together) cannot both apply a
//! migration: a run holds the one-row lock in `schema_migration_lock`
//! while it works, and a second run answers `409` until it is released.
//! Each migration runs in its own transaction with its ledger row, so a
//! failing one leaves nothing behind.

use gatehouse_http::idempotency::unix_now;
use gatehouse_http::{ErrorCode, Problem, Response, response};
use schema::plan::{self, Applied};
use schema::{EMBEDDED, LEDGER, LOCK_STALE_SECONDS, LOCK_TABLE, Migration};
use serde::Serialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::{Connection, Value};

#[derive(Serialize)]
struct Status {
    applied: Vec<&'static str>,
    pending: Vec<&'static str>,
    /// Applied by this request (`POST` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    applied_now: Option<Vec<&'static str>>,
}

fn failed(what: &str, detail: &str) -> Problem {
    eprintln!("migrations: {what}: {detail}");
    Problem::internal()
}

async fn run(conn: &Connection, sql: &str, params: Vec<Value>) -> Result<Vec<Vec<Value>>, String> {
    let rows = conn
        .execute(sql, params)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let rows = rows.collect().await.map_err(|e| format!("{e:?}"))?;
    Ok(rows.into_iter().map(|r| r.values).collect())
}

async fn ledger(conn: &Connection) -> Result<Vec<Applied>, Problem> {
    run(conn, LEDGER, vec![])
        .await
        .map_err(|e| failed("ledger", &e))?;
    let rows = run(
        conn,
        "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
        vec![],
    )
    .await
    .map_err(|e| failed("ledger", &e))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match r.as_slice() {
            [Value::Integer(v), Value::Text(name), Value::Text(checksum)] => Some(Applied {
                version: u32::try_from(*v).ok()?,
                name: name.clone(),
                checksum: checksum.clone(),
            }),
            _ => None,
        })
        .collect())
}

fn mismatch(m: &plan::Mismatch) -> Problem {
    Problem::new(ErrorCode::Conflict).detail(m.describe())
}

fn status(applied: &[Applied], pending: &[&Migration], now: Option<Vec<&'static str>>) -> Status {
    Status {
        applied: EMBEDDED
            .iter()
            .filter(|m| applied.iter().any(|a| a.version == m.version))
            .map(|m| m.name)
            .collect(),
        pending: pending.iter().map(|m| m.name).collect(),
        applied_now: now,
    }
}

/// `GET /v1/admin/migrations` (operator): what is applied and pending.
pub async fn list(req: &Request, request_id: &str) -> Result<Response, Problem> {
    gatehouse_http::operator::require(req).await?;
    let conn = open().await?;
    let applied = ledger(&conn).await?;
    let pending = plan::pending(EMBEDDED, &applied).map_err(|m| mismatch(&m))?;
    Ok(response::json(
        200,
        &status(&applied, &pending, None),
        request_id,
    ))
}

async fn open() -> Result<Connection, Problem> {
    Connection::open_default()
        .await
        .map_err(|e| failed("open", &format!("{e:?}")))
}

/// `POST /v1/admin/migrations` (operator): applies what is pending.
pub async fn apply(req: &Request, request_id: &str) -> Result<Response, Problem> {
    gatehouse_http::operator::require(req).await?;
    let conn = open().await?;
    run(&conn, LOCK_TABLE, vec![])
        .await
        .map_err(|e| failed("lock table", &e))?;
    let holder = request_id.to_string();
    let now = unix_now();
    // Taken when free or abandoned; one statement, so two runs cannot both
    // take it.
    run(
        &conn,
        "INSERT INTO schema_migration_lock (id, holder, acquired_at) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at
         WHERE schema_migration_lock.acquired_at < ?3",
        vec![
            Value::Text(holder.clone()),
            Value::Integer(now),
            Value::Integer(now - LOCK_STALE_SECONDS),
        ],
    )
    .await
    .map_err(|e| failed("lock", &e))?;
    let held = run(
        &conn,
        "SELECT 1 FROM schema_migration_lock WHERE id = 1 AND holder = ?",
        vec![Value::Text(holder.clone())],
    )
    .await
    .map_err(|e| failed("lock", &e))?;
    if held.is_empty() {
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("another migration run holds the lock; retry shortly")
            .header("retry-after", "5"));
    }
    let outcome = apply_pending(&conn).await;
    let released = run(
        &conn,
        "DELETE FROM schema_migration_lock WHERE id = 1 AND holder = ?",
        vec![Value::Text(holder)],
    )
    .await;
    if let Err(e) = released {
        eprintln!("migrations: lock not released (taken over after {LOCK_STALE_SECONDS} s): {e}");
    }
    let (applied, now_applied) = outcome?;
    Ok(response::json(
        200,
        &status(&applied, &[], Some(now_applied)),
        request_id,
    ))
}

/// Applies every pending migration under the lock; the ledger afterwards
/// and the names applied now.
async fn apply_pending(conn: &Connection) -> Result<(Vec<Applied>, Vec<&'static str>), Problem> {
    let applied = ledger(conn).await?;
    let pending = plan::pending(EMBEDDED, &applied).map_err(|m| mismatch(&m))?;
    let mut done = Vec::new();
    for m in pending {
        if let Err(e) = apply_one(conn, m).await {
            let _ = run(conn, "ROLLBACK", vec![]).await;
            eprintln!("migrations: {} failed: {e}", m.name);
            return Err(Problem::internal().detail(format!(
                "migration {} failed and was rolled back; the server log says why",
                m.name
            )));
        }
        done.push(m.name);
    }
    Ok((ledger(conn).await?, done))
}

async fn apply_one(conn: &Connection, m: &Migration) -> Result<(), String> {
    run(conn, "BEGIN IMMEDIATE", vec![]).await?;
    for statement in schema::split::statements(m.sql) {
        run(conn, &statement, vec![]).await?;
    }
    run(
        conn,
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
        vec![
            Value::Integer(i64::from(m.version)),
            Value::Text(m.name.to_string()),
            Value::Text(m.checksum.to_string()),
        ],
    )
    .await?;
    run(conn, "COMMIT", vec![]).await?;
    Ok(())
}
