//! Host side of `spin:key-value@3.0.0`, `spin:sqlite@3.1.0` and
//! `spin:variables@3.0.0`, bound from the same WIT the guests' SDK was
//! generated from (`wit/deps`).
//!
//! Grants are checked on every call: a label the runtime does not know is
//! `no-such-store`/`no-such-database`; a known label the component was not
//! granted in `spin.toml` is `access-denied`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wasmtime::component::{Accessor, FutureReader, HasData, Resource, ResourceTable, StreamReader};

use crate::kv::KvBackend;
use crate::sqlite_pool::{Pool, WriteTurn};

mod generated {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "gatehouse:platform/spin-host",
        imports: { default: trappable },
        with: {
            "spin:key-value/key-value.store": super::KvHandle,
            "spin:sqlite/sqlite.connection": super::DbHandle,
        },
    });
}

use generated::spin::key_value::key_value as kv;
use generated::spin::sqlite::sqlite as sql;
use generated::spin::variables::variables as vars;

/// An open key-value store, as the guest holds it.
pub struct KvHandle(KvBackend);

/// An open database connection, as the guest holds it: a pooled connection
/// for reads outside a transaction and, from a write until the transaction
/// it is in ends, the file's writer connection with the write turn. Both
/// see every committed write (WAL), so the guest sees one connection.
pub struct DbHandle {
    pool: Arc<Pool>,
    conn: Arc<Mutex<Option<rusqlite::Connection>>>,
    /// The write turn (and writer connection) held while in a transaction.
    turn: TurnSlot,
    /// `last_insert_rowid()` and `changes()` as the handle's last write
    /// left them: the writer connection moves on to other handles.
    last: Arc<Mutex<LastWrite>>,
}

/// Where a connection keeps its write turn.
type TurnSlot = Arc<Mutex<Option<WriteTurn>>>;

/// What a connection reports about its last write.
#[derive(Clone, Copy, Default)]
struct LastWrite {
    rowid: i64,
    changes: u64,
}

impl Drop for DbHandle {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.lock().unwrap_or_else(|p| p.into_inner()).take() {
            self.pool.release(conn);
        }
    }
}

/// What one component instance may reach, shared by all its requests.
pub struct Grants {
    /// Every key-value label the runtime knows, with its backend.
    pub kv_stores: Arc<HashMap<String, KvBackend>>,
    /// Every database label the runtime knows, with its pool.
    pub databases: Arc<HashMap<String, Arc<Pool>>>,
    /// Labels granted to this component.
    pub kv_granted: Vec<String>,
    /// Databases granted to this component.
    pub db_granted: Vec<String>,
    /// This component's variables, rendered.
    pub variables: HashMap<String, String>,
}

/// The per-request view the Spin interfaces work on.
pub struct SpinView<'a> {
    /// Grants of the running component.
    pub grants: &'a Grants,
    /// The store's resource table.
    pub table: &'a mut ResourceTable,
}

/// Marker type binding the Spin interfaces to [`SpinView`].
pub struct SpinApis;

impl HasData for SpinApis {
    type Data<'a> = SpinView<'a>;
}

/// Adds the three Spin interfaces to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    view: fn(&mut T) -> SpinView<'_>,
) -> wasmtime::Result<()> {
    kv::add_to_linker::<T, SpinApis>(linker, view)?;
    sql::add_to_linker::<T, SpinApis>(linker, view)?;
    vars::add_to_linker::<T, SpinApis>(linker, view)?;
    Ok(())
}

fn kv_other(e: anyhow::Error) -> kv::Error {
    kv::Error::Other(format!("{e:#}"))
}

fn kv_backend<T>(
    store: &Accessor<T, SpinApis>,
    h: &Resource<KvHandle>,
) -> wasmtime::Result<KvBackend> {
    store.with(|mut access| Ok(access.get().table.get(h)?.0.clone()))
}

impl kv::Host for SpinView<'_> {}

impl kv::HostStore for SpinView<'_> {
    fn drop(&mut self, rep: Resource<KvHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl<T: Send> kv::HostStoreWithStore<T> for SpinApis {
    async fn open(
        store: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<KvHandle>, kv::Error>> {
        store.with(|mut access| {
            let view = access.get();
            let Some(backend) = view.grants.kv_stores.get(&label) else {
                return Ok(Err(kv::Error::NoSuchStore));
            };
            if !view.grants.kv_granted.contains(&label) {
                return Ok(Err(kv::Error::AccessDenied));
            }
            let backend = backend.clone();
            Ok(Ok(view.table.push(KvHandle(backend))?))
        })
    }

    async fn get(
        store: &Accessor<T, Self>,
        h: Resource<KvHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, kv::Error>> {
        let backend = kv_backend(store, &h)?;
        Ok(backend.get(key).await.map_err(kv_other))
    }

    async fn set(
        store: &Accessor<T, Self>,
        h: Resource<KvHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), kv::Error>> {
        let backend = kv_backend(store, &h)?;
        Ok(backend.set(key, value).await.map_err(kv_other))
    }

    async fn delete(
        store: &Accessor<T, Self>,
        h: Resource<KvHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), kv::Error>> {
        let backend = kv_backend(store, &h)?;
        Ok(backend.delete(key).await.map_err(kv_other))
    }

    async fn exists(
        store: &Accessor<T, Self>,
        h: Resource<KvHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, kv::Error>> {
        let backend = kv_backend(store, &h)?;
        Ok(backend.exists(key).await.map_err(kv_other))
    }

    async fn get_keys(
        store: &Accessor<T, Self>,
        h: Resource<KvHandle>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), kv::Error>>)> {
        let backend = kv_backend(store, &h)?;
        let (keys, result) = match backend.keys().await {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(kv_other(e))),
        };
        store.with(|mut access| {
            let stream = StreamReader::new(&mut access, keys)?;
            let future =
                FutureReader::new(&mut access, async move { Ok::<_, wasmtime::Error>(result) })?;
            Ok((stream, future))
        })
    }
}

fn sql_io(e: impl std::fmt::Display) -> sql::Error {
    sql::Error::Io(e.to_string())
}

fn open_db(
    view: &mut SpinView<'_>,
    database: &str,
) -> wasmtime::Result<Result<Resource<DbHandle>, sql::Error>> {
    let Some(pool) = view.grants.databases.get(database) else {
        return Ok(Err(sql::Error::NoSuchDatabase));
    };
    if !view.grants.db_granted.iter().any(|d| d == database) {
        return Ok(Err(sql::Error::AccessDenied));
    }
    let conn = match pool.acquire() {
        Ok(conn) => conn,
        Err(e) => return Ok(Err(sql_io(format!("{e:#}")))),
    };
    let handle = DbHandle {
        pool: pool.clone(),
        conn: Arc::new(Mutex::new(Some(conn))),
        turn: Arc::new(Mutex::new(None)),
        last: Arc::new(Mutex::new(LastWrite::default())),
    };
    Ok(Ok(view.table.push(handle)?))
}

/// Runs one statement, returning its columns and every row.
fn run_statement(
    conn: &rusqlite::Connection,
    statement: &str,
    params: Vec<sql::Value>,
) -> Result<(Vec<String>, Vec<sql::RowResult>, bool), sql::Error> {
    let mut stmt = conn.prepare_cached(statement).map_err(sql_io)?;
    let readonly = stmt.readonly();
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let params: Vec<rusqlite::types::Value> = params.into_iter().map(to_sqlite).collect();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .map_err(sql_io)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_io)? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(from_sqlite))
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_io)?;
        out.push(sql::RowResult { values });
    }
    Ok((columns, out, readonly))
}

fn to_sqlite(v: sql::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        sql::Value::Integer(i) => V::Integer(i),
        sql::Value::Real(f) => V::Real(f),
        sql::Value::Text(s) => V::Text(s),
        sql::Value::Blob(b) => V::Blob(b),
        sql::Value::Null => V::Null,
    }
}

fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> sql::Value {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Integer(i) => sql::Value::Integer(i),
        V::Real(f) => sql::Value::Real(f),
        V::Text(t) => sql::Value::Text(String::from_utf8_lossy(t).into_owned()),
        V::Blob(b) => sql::Value::Blob(b.to_vec()),
        V::Null => sql::Value::Null,
    }
}

fn with_conn<R>(
    conn: &Mutex<Option<rusqlite::Connection>>,
    f: impl FnOnce(&rusqlite::Connection) -> R,
) -> Option<R> {
    conn.lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(f)
}

impl sql::Host for SpinView<'_> {}

impl sql::HostConnection for SpinView<'_> {
    fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<DbHandle>, sql::Error>> {
        open_db(self, &database)
    }

    fn execute(
        &mut self,
        h: Resource<DbHandle>,
        statement: String,
        parameters: Vec<sql::Value>,
    ) -> wasmtime::Result<Result<sql::QueryResult, sql::Error>> {
        let handle = self.table.get(&h)?;
        let run = statement_runner(statement, parameters);
        // A blocking call cannot wait its turn: it writes in the transaction
        // the handle holds the turn for, else on its pooled connection.
        let (ran, on_writer_conn) = {
            let mut slot = handle.turn.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_mut() {
                Some(turn) => (Some(on_writer(turn, run)), true),
                None => (with_conn(&handle.conn, run), false),
            }
        };
        Ok(
            settle(&handle.turn, &handle.last, ran, on_writer_conn, None)
                .map(|(columns, rows)| sql::QueryResult { columns, rows }),
        )
    }

    fn last_insert_rowid(&mut self, h: Resource<DbHandle>) -> wasmtime::Result<i64> {
        Ok(last_write(&self.table.get(&h)?.last).rowid)
    }

    fn changes(&mut self, h: Resource<DbHandle>) -> wasmtime::Result<u64> {
        Ok(last_write(&self.table.get(&h)?.last).changes)
    }

    fn drop(&mut self, rep: Resource<DbHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

/// A handle's parts, cloned out of the resource table so that no borrow
/// of the store is held across an await.
#[derive(Clone)]
struct HandleParts {
    pool: Arc<Pool>,
    conn: Arc<Mutex<Option<rusqlite::Connection>>>,
    turn: TurnSlot,
    last: Arc<Mutex<LastWrite>>,
}

fn db_parts<T>(
    store: &Accessor<T, SpinApis>,
    h: &Resource<DbHandle>,
) -> wasmtime::Result<HandleParts> {
    store.with(|mut access| {
        let handle = access.get().table.get(h)?;
        Ok(HandleParts {
            pool: handle.pool.clone(),
            conn: handle.conn.clone(),
            turn: handle.turn.clone(),
            last: handle.last.clone(),
        })
    })
}

fn last_write(last: &Mutex<LastWrite>) -> LastWrite {
    *last.lock().unwrap_or_else(|p| p.into_inner())
}

/// What running a statement on a connection gives: its outcome, whether
/// the connection is outside a transaction after it, and what it changed.
type Ran = (
    Result<(Vec<String>, Vec<sql::RowResult>), sql::Error>,
    bool,
    Option<Written>,
);

/// What a statement that writes leaves for `changes()` and
/// `last_insert_rowid()`: its own counts, never those another handle's
/// statement left on a shared connection.
#[derive(Clone, Copy)]
struct Written {
    /// The row it inserted, if it inserted one.
    rowid: Option<i64>,
    changes: u64,
}

fn statement_runner(
    statement: String,
    parameters: Vec<sql::Value>,
) -> impl FnOnce(&rusqlite::Connection) -> Ran + Send + 'static {
    move |c: &rusqlite::Connection| {
        let (total, rowid) = (c.total_changes(), c.last_insert_rowid());
        let outcome = run_statement(c, &statement, parameters);
        let readonly = outcome.as_ref().map_or(true, |(_, _, readonly)| *readonly);
        let written = if c.total_changes() != total {
            let inserted = c.last_insert_rowid();
            Some(Written {
                rowid: (inserted != rowid).then_some(inserted),
                changes: c.changes(),
            })
        } else if !readonly {
            // A write that changed nothing (an ignored insert, an update
            // that matched no row) counts none.
            Some(Written {
                rowid: None,
                changes: 0,
            })
        } else {
            None
        };
        let outcome = outcome.map(|(columns, rows, _)| (columns, rows));
        (outcome, c.is_autocommit(), written)
    }
}

/// Runs `run` on the writer connection of a held turn.
fn on_writer(turn: &mut WriteTurn, run: impl FnOnce(&rusqlite::Connection) -> Ran) -> Ran {
    match turn.conn() {
        Ok(c) => run(c),
        Err(e) => (Err(sql_io(format!("{e:#}"))), true, None),
    }
}

/// Settles a statement that ran: what it wrote is the handle's count from
/// now on. A statement that ran on the writer connection (`on_writer`)
/// passes the turn on when the transaction it was held for has ended
/// (`taken`: one this statement took, kept while a transaction stays
/// open); one that ran on the pooled connection leaves the turn alone.
fn settle(
    turn: &TurnSlot,
    last: &Mutex<LastWrite>,
    ran: Option<Ran>,
    on_writer: bool,
    taken: Option<WriteTurn>,
) -> Result<(Vec<String>, Vec<sql::RowResult>), sql::Error> {
    let (outcome, autocommit, written) =
        ran.unwrap_or((Err(sql::Error::InvalidConnection), true, None));
    if let Some(written) = written {
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        last.changes = written.changes;
        if let Some(rowid) = written.rowid {
            last.rowid = rowid;
        }
    }
    if on_writer {
        let mut slot = turn.lock().unwrap_or_else(|p| p.into_inner());
        if autocommit {
            *slot = None;
        } else if taken.is_some() {
            *slot = taken;
        }
    }
    outcome
}

/// How long a statement waits for its write turn before it goes on without
/// one (SQLite's own busy timeout, 5 s, then applies).
const WRITE_TURN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether `statement` may write or open a transaction: it then runs in
/// its connection's write turn. Reads run without one.
fn needs_write_turn(statement: &str) -> bool {
    let first = statement
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    !matches!(first.as_str(), "SELECT" | "PRAGMA" | "EXPLAIN" | "VALUES")
}

/// Runs `f` against the handle's connection on a blocking thread.
async fn blocking<R: Send + 'static>(
    conn: Arc<Mutex<Option<rusqlite::Connection>>>,
    f: impl FnOnce(&rusqlite::Connection) -> R + Send + 'static,
) -> Option<R> {
    tokio::task::spawn_blocking(move || with_conn(&conn, f))
        .await
        .ok()
        .flatten()
}

impl<T: Send> sql::HostConnectionWithStore<T> for SpinApis {
    async fn open_async(
        store: &Accessor<T, Self>,
        database: String,
    ) -> wasmtime::Result<Result<Resource<DbHandle>, sql::Error>> {
        store.with(|mut access| open_db(&mut access.get(), &database))
    }

    async fn execute_async(
        store: &Accessor<T, Self>,
        h: Resource<DbHandle>,
        statement: String,
        parameters: Vec<sql::Value>,
    ) -> wasmtime::Result<
        Result<
            (
                Vec<String>,
                StreamReader<sql::RowResult>,
                FutureReader<Result<(), sql::Error>>,
            ),
            sql::Error,
        >,
    > {
        let parts = db_parts(store, &h)?;
        let writes = needs_write_turn(&statement);
        let held = parts
            .turn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        // A transaction that began on the pooled connection (its write turn
        // timed out) stays there to its end.
        let pooled_in_transaction =
            !held && with_conn(&parts.conn, |c| !c.is_autocommit()).unwrap_or(false);
        let mut taken = if !held && !pooled_in_transaction && writes {
            parts.pool.write_turn(WRITE_TURN_WAIT).await
        } else {
            None
        };
        let run = statement_runner(statement, parameters);
        // With the write turn (or for a read, which never waits for a
        // writer in WAL mode) the statement cannot wait on a lock: it runs
        // here, sparing the hand-off to a blocking thread and back, which
        // a transaction of a dozen statements would otherwise pay a dozen
        // times while every other writer waits for it.
        let on_writer_conn = taken.is_some() || held;
        let ran = if let Some(turn) = taken.as_mut() {
            Some(on_writer(turn, run))
        } else if held {
            let mut slot = parts.turn.lock().unwrap_or_else(|p| p.into_inner());
            slot.as_mut().map(|turn| on_writer(turn, run))
        } else if !writes {
            with_conn(&parts.conn, run)
        } else {
            blocking(parts.conn.clone(), run).await
        };
        let (columns, rows) = match settle(&parts.turn, &parts.last, ran, on_writer_conn, taken) {
            Ok(ok) => ok,
            Err(e) => return Ok(Err(e)),
        };
        store.with(|mut access| {
            let stream = StreamReader::new(&mut access, rows)?;
            let done = FutureReader::new(&mut access, async { Ok::<_, wasmtime::Error>(Ok(())) })?;
            Ok(Ok((columns, stream, done)))
        })
    }

    // Both answer what the handle's last write left (see `LastWrite`).
    async fn last_insert_rowid_async(
        store: &Accessor<T, Self>,
        h: Resource<DbHandle>,
    ) -> wasmtime::Result<i64> {
        Ok(last_write(&db_parts(store, &h)?.last).rowid)
    }

    async fn changes_async(
        store: &Accessor<T, Self>,
        h: Resource<DbHandle>,
    ) -> wasmtime::Result<u64> {
        Ok(last_write(&db_parts(store, &h)?.last).changes)
    }
}

impl vars::Host for SpinView<'_> {}

impl<T: Send> vars::HostWithStore<T> for SpinApis {
    async fn get(
        store: &Accessor<T, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, vars::Error>> {
        if crate::manifest::check_variable_name(&name).is_err() {
            return Ok(Err(vars::Error::InvalidName(name)));
        }
        store.with(|mut access| {
            Ok(match access.get().grants.variables.get(&name) {
                Some(v) => Ok(v.clone()),
                None => Err(vars::Error::Undefined(name)),
            })
        })
    }
}
