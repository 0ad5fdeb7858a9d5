//! Thin helpers over Spin's SQLite: run a statement, read typed columns.
//! Database error text never leaves this module: callers get a 500 problem.

use gatehouse_http::Problem;
use spin_sdk::sqlite::{Connection, RowResult, Value};

/// Opens the `default` database.
pub async fn open() -> Result<Connection, Problem> {
    Connection::open_default()
        .await
        .map_err(|e| internal("open", &format!("{e:?}")))
}

fn internal(what: &str, detail: &str) -> Problem {
    eprintln!("database {what} failed: {detail}");
    Problem::internal()
}

/// Runs a statement and returns its rows.
pub async fn query(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
) -> Result<Vec<RowResult>, Problem> {
    let rows = conn
        .execute(sql, params)
        .await
        .map_err(|e| internal("statement", &format!("{e:?}")))?;
    rows.collect()
        .await
        .map_err(|e| internal("read", &format!("{e:?}")))
}

/// Runs a statement and returns its rows, or the store's own error for
/// the caller to read (a trigger's `RAISE` message, say): a statement the
/// code expects to fail now and then, not a 500.
pub async fn query_or_error(
    conn: &Connection,
    sql: &str,
    params: Vec<Value>,
) -> Result<Vec<RowResult>, spin_sdk::sqlite::Error> {
    conn.execute(sql, params).await?.collect().await
}

/// Runs a statement for its effect alone: one call to the store, where
/// [`exec`] makes a second for the count.
pub async fn run(conn: &Connection, sql: &str, params: Vec<Value>) -> Result<(), Problem> {
    query(conn, sql, params).await.map(|_| ())
}

/// Runs a statement for its effect; returns the number of changed rows.
pub async fn exec(conn: &Connection, sql: &str, params: Vec<Value>) -> Result<u64, Problem> {
    query(conn, sql, params).await?;
    Ok(conn.changes().await)
}

/// Runs `work` in a write transaction on `conn` (`IMMEDIATE`: it holds
/// the write lock from its first statement), kept when `work` succeeds and
/// rolled back when it fails: a change and the rows that go with it (its
/// event, its job) exist together or not at all.
pub async fn transaction<T>(
    conn: &Connection,
    work: impl std::future::Future<Output = Result<T, Problem>>,
) -> Result<T, Problem> {
    run(conn, "BEGIN IMMEDIATE", vec![]).await?;
    let outcome = match work.await {
        Ok(done) => run(conn, "COMMIT", vec![]).await.map(|()| done),
        Err(problem) => Err(problem),
    };
    // The first problem is the one to answer with; a rollback that fails
    // too is logged (by `run`) and otherwise set aside. A failed COMMIT
    // leaves the transaction open, so it is rolled back as well.
    if outcome.is_err() {
        let _ = run(conn, "ROLLBACK", vec![]).await;
    }
    outcome
}

/// Text parameter.
pub fn text(v: impl Into<String>) -> Value {
    Value::Text(v.into())
}

/// Integer parameter.
pub fn int(v: i64) -> Value {
    Value::Integer(v)
}

/// Optional text parameter (NULL when absent).
pub fn opt_text(v: Option<String>) -> Value {
    v.map(Value::Text).unwrap_or(Value::Null)
}

/// Column `i` as text.
pub fn get_text(row: &RowResult, i: usize) -> String {
    match row.values.get(i) {
        Some(Value::Text(t)) => t.clone(),
        _ => String::new(),
    }
}

/// Column `i` as an integer, `None` for NULL.
pub fn get_int(row: &RowResult, i: usize) -> Option<i64> {
    match row.values.get(i) {
        Some(Value::Integer(n)) => Some(*n),
        _ => None,
    }
}

/// A new id: `prefix` and 128 random bits in hex.
pub fn new_id(prefix: &str) -> String {
    let bytes = identity_core::random::bytes::<16>();
    format!("{prefix}{}", hex::encode(bytes))
}

/// A new id that sorts by time: `prefix`, the nanoseconds since the epoch
/// (16 hex digits) and 64 random bits (16 more). Rows keyed by such ids
/// (and index entries that start with one) append to the end of their
/// B-tree instead of landing on a random page, so a busy table's inserts
/// dirty a page or two instead of one each.
pub fn new_sorted_id(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let random = identity_core::random::bytes::<8>();
    format!("{prefix}{nanos:016x}{}", hex::encode(random))
}

/// Column `i` as text, `None` for NULL.
pub fn get_opt_text(row: &RowResult, i: usize) -> Option<String> {
    match row.values.get(i) {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    }
}

/// Column `i` holding a JSON document, `None` for NULL or unreadable JSON.
pub fn get_json(row: &RowResult, i: usize) -> Option<serde_json::Value> {
    get_opt_text(row, i).and_then(|t| serde_json::from_str(&t).ok())
}

/// The `default` database, opened on first use: hot paths that a cache
/// usually answers never open it.
#[derive(Default)]
pub struct Lazy {
    conn: std::cell::OnceCell<Connection>,
}

impl Lazy {
    /// Nothing opened yet.
    pub fn new() -> Lazy {
        Lazy::default()
    }

    /// The connection, opened now if it was not before.
    pub async fn get(&self) -> Result<&Connection, Problem> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn);
        }
        let conn = open().await?;
        Ok(self.conn.get_or_init(|| conn))
    }
}
