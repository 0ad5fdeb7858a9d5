//! A small pool of SQLite connections to one file.
//!
//! SQLite calls block, so they run on tokio's blocking threads. WAL mode lets
//! readers proceed while one writer commits; a busy timeout makes concurrent
//! writers wait instead of failing.

use anyhow::{Context, Result};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A held [`Pool::write_turn`], with the file's writer connection; the turn
/// passes on when it is dropped.
pub struct WriteTurn {
    writer: tokio::sync::OwnedMutexGuard<Option<Connection>>,
    path: PathBuf,
}

impl WriteTurn {
    /// The writer connection, opened on first use (or again after one was
    /// given up).
    pub fn conn(&mut self) -> Result<&Connection> {
        if self.writer.is_none() {
            *self.writer = Some(open(&self.path)?);
        }
        self.writer
            .as_ref()
            .context("the writer connection is not open")
    }
}

impl Drop for WriteTurn {
    /// A transaction its holder left open is rolled back, so the next turn
    /// starts clean; a connection that cannot roll back is given up.
    fn drop(&mut self) {
        let open_transaction = self.writer.as_ref().is_some_and(|c| !c.is_autocommit());
        if open_transaction
            && self
                .writer
                .as_ref()
                .is_some_and(|c| c.execute_batch("ROLLBACK").is_err())
        {
            *self.writer = None;
        }
    }
}

/// Idle connections kept per file.
const MAX_IDLE: usize = 16;

/// Connections to one SQLite file.
pub struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// The connection every write turn writes with. One connection for
    /// all writes keeps its page cache valid from one transaction to the
    /// next: a connection whose cache another connection's commit made
    /// stale drops it, and reads every page again (and, memory-mapped,
    /// maps the file again) at its next transaction.
    writer: std::sync::Arc<tokio::sync::Mutex<Option<Connection>>>,
    /// The file's checkpointer (see [`Checkpointer`]), held to be stopped with the pool.
    _checkpointer: Checkpointer,
}

/// How often the checkpointer copies the write-ahead log into the file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The log's length, in frames (a page each), at which the checkpointer
/// copies the rest of it under the write turn (see [`Checkpointer`]):
/// about 32 MiB of 4 KiB pages.
const CHECKPOINT_IN_TURN_AT: i64 = 8_000;

/// Frames landed during a pass that the checkpointer is content to leave
/// for its pass under the write turn; with more, it passes again first.
const LEFT_FOR_THE_TURN: i64 = 1_000;

/// Passes the checkpointer runs again, at most, before it takes the turn
/// anyway.
const PASSES_BEFORE_THE_TURN: usize = 2;

/// The log's length, in pages, at which a commit checkpoints by itself,
/// should the checkpointer fall behind (see [`Checkpointer`]).
const CHECKPOINT_IN_COMMIT_AT: u32 = 20_000;

/// What a log left longer than that is cut back to when it starts again.
const LOG_KEPT_BYTES: u32 = 64 << 20;

/// A thread that copies the write-ahead log's committed pages into the
/// database file every [`CHECKPOINT_EVERY`], with a connection of its own.
///
/// SQLite's own automatic checkpoint runs in the commit that takes the log
/// past 1,000 pages, fsyncs included. That commit's statement holds the
/// host's write turn until it ends, and runs on one of the host's few
/// async worker threads: every other writer waits for the disk, and so
/// does everything else queued on that worker. A passive checkpoint takes
/// no write lock, so commits go on while this thread runs one.
///
/// The log starts again from its beginning only when a writer begins after
/// a checkpoint that copied every page, which a checkpoint running beside
/// steady commits never quite does (what a pass reports copied is only
/// what the log held when it began). So once the log reaches
/// [`CHECKPOINT_IN_TURN_AT`] frames and a writer has added to it since the
/// last pass, this thread passes again while much lands during each
/// ([`LEFT_FOR_THE_TURN`]), then takes the write turn and runs one more:
/// no commit of the turn's writers lands meanwhile, and the next writer
/// starts the log again. Writers wait for that turn as for any other,
/// without holding a worker thread.
///
/// Writers that do not take the turn (the key-value store's, a statement
/// whose wait for the turn timed out) can still outrun a checkpoint, as
/// they could SQLite's own. Commits still checkpoint by themselves at
/// [`CHECKPOINT_IN_COMMIT_AT`] pages, as SQLite's would at 1,000.
struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The write turn once the checkpointer holds it: the writers' lock on the
/// pool's writer connection, which it leaves unused (its own connection
/// runs the pass).
type Turn = tokio::sync::OwnedMutexGuard<Option<Connection>>;

impl Checkpointer {
    fn start(
        conn: Connection,
        writer: std::sync::Arc<tokio::sync::Mutex<Option<Connection>>>,
    ) -> Result<Checkpointer> {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                // Only for waiting on the turn, with a time limit; without
                // it, the thread never takes the turn.
                let waiting = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .inspect_err(|e| eprintln!("sqlite checkpointer: no timer: {e}"))
                    .ok();
                let running = || !stopped.load(std::sync::atomic::Ordering::Relaxed);
                // The log's length, in frames, as a passive checkpoint
                // found it when it began (what lands during a pass is
                // left for the next); `None` when another checkpoint was
                // running, which reports no length.
                let pass = || {
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(0)? == 0).then_some(r.get::<_, i64>(1)?))
                    })
                };
                // Waits for the turn in slices of `CHECKPOINT_EVERY`, so
                // that it sees a stop: a pool dropped while a transaction
                // holds the turn must not wait for that transaction.
                let turn = || -> Option<Turn> {
                    let waiting = waiting.as_ref()?;
                    // One request for the turn, kept across the slices, so
                    // that it keeps its place in the writers' queue.
                    let mut request = std::pin::pin!(writer.clone().lock_owned());
                    while running() {
                        // The timer is made inside the runtime it runs on.
                        let slice = async {
                            tokio::time::timeout(CHECKPOINT_EVERY, request.as_mut()).await
                        };
                        if let Ok(turn) = waiting.block_on(slice) {
                            return Some(turn);
                        }
                    }
                    None
                };
                // The log's length at the last pass. A log that has not
                // grown since had no writer: its next writer starts it
                // again, or a reader's old snapshot holds it, and the turn
                // would help neither.
                let mut last: i64 = 0;
                let mut checkpoint = || -> rusqlite::Result<()> {
                    let Some(mut log) = pass()? else {
                        return Ok(());
                    };
                    let grown = log != last;
                    last = log;
                    if log < CHECKPOINT_IN_TURN_AT || !grown {
                        return Ok(());
                    }
                    // While much landed during a pass, pass again: the
                    // pass in the turn copies what landed during the last.
                    for _ in 0..PASSES_BEFORE_THE_TURN {
                        if !running() {
                            return Ok(());
                        }
                        let before = log;
                        let Some(now) = pass()? else {
                            return Ok(());
                        };
                        log = now;
                        last = log;
                        if log < CHECKPOINT_IN_TURN_AT || log == before {
                            // Started again meanwhile, or nothing landed
                            // during the last pass: nothing for the turn.
                            return Ok(());
                        }
                        if log - before <= LEFT_FOR_THE_TURN {
                            break;
                        }
                    }
                    if let Some(_turn) = turn()
                        && let Some(now) = pass()?
                    {
                        last = now;
                    }
                    Ok(())
                };
                // A failure is reported once until a checkpoint succeeds again.
                let mut failing = false;
                loop {
                    std::thread::park_timeout(CHECKPOINT_EVERY);
                    if !running() {
                        break;
                    }
                    match checkpoint() {
                        Ok(()) => failing = false,
                        Err(e) if !failing => {
                            eprintln!("sqlite checkpoint failed: {e}");
                            failing = true;
                        }
                        Err(_) => {}
                    }
                }
            })
            .context("cannot start the SQLite checkpoint thread")?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    /// Stops the thread and waits for it, so that its connection is closed
    /// with the pool's: the last one closed folds the log into the file.
    /// The wait is at most the pass the thread is in, or the slice of its
    /// wait for the turn and, should it get the turn then, one more pass;
    /// then the closing of its connection and of the writer's, whose last
    /// reference the thread holds once the pool's own is dropped.
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Pool {
    /// Creates the file's directory and checks that it opens.
    pub fn new(path: &Path) -> Result<Pool> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        let writer = std::sync::Arc::new(tokio::sync::Mutex::new(Some(open(path)?)));
        let pool = Pool {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            _checkpointer: Checkpointer::start(open(path)?, writer.clone())?,
            writer,
        };
        let conn = open(path)?;
        pool.release(conn);
        Ok(pool)
    }

    /// The file this pool serves.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes an idle connection or opens a new one.
    pub fn acquire(&self) -> Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => open(&self.path),
        }
    }

    /// Returns a connection; an unfinished transaction is rolled back first so
    /// that the next user starts clean.
    pub fn release(&self, conn: Connection) {
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// The right to write to this file, taken in turn (first come, first
    /// served) by the guests' connections of this host, with the writer
    /// connection to write with. SQLite admits one writer at a time and
    /// makes the others retry after sleeps of up to 100 ms; queueing them
    /// here instead hands the lock straight to the next writer. `None`
    /// after `wait`: the caller goes on without it and SQLite's busy
    /// timeout decides, as it would have anyway.
    pub async fn write_turn(&self, wait: std::time::Duration) -> Option<WriteTurn> {
        tokio::time::timeout(wait, self.writer.clone().lock_owned())
            .await
            .ok()
            .map(|writer| WriteTurn {
                writer,
                path: self.path.clone(),
            })
    }

    /// Runs the read `f` on this thread when an idle connection is at hand,
    /// else as [`Pool::with`] does. A point read of a key in WAL mode takes
    /// microseconds and never waits for a writer, while the hop to a
    /// blocking thread and back costs two context switches: the most of a
    /// cached key-value read.
    pub async fn read<T, F>(self: &std::sync::Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => {
                let result = f(&conn);
                self.release(conn);
                Ok(result?)
            }
            None => self.with(f).await,
        }
    }

    /// Runs `f` with a pooled connection on a blocking thread.
    pub async fn with<T, F>(self: &std::sync::Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.acquire()?;
            let result = f(&conn);
            pool.release(conn);
            Ok(result?)
        })
        .await
        .context("SQLite task panicked")?
    }
}

/// Opens a connection to `path` as every connection here is set up.
fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("cannot open SQLite file {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Prepared statements are kept per connection and keyed by their text;
    // the writer connection runs every component's writes.
    conn.set_prepared_statement_cache_capacity(256);
    conn.execute_batch(
        // Memory-mapped reads: after another connection's commit, a
        // connection's page cache is stale and its pages would be read
        // again with a system call and a copy each; mapped, they are
        // read in place. Checkpoints: see `Checkpointer`.
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         PRAGMA mmap_size = 268435456;",
    )?;
    conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_IN_COMMIT_AT)?;
    conn.pragma_update(None, "journal_size_limit", LOG_KEPT_BYTES)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary one.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gatehouse-pool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_checkpointer_copies_the_log_into_the_file() -> Result<()> {
        let dir = scratch("checkpoint");
        let path = dir.join("db.sqlite");
        let pool = Pool::new(&path)?;
        let conn = pool.acquire()?;
        // About 8 MiB in one commit: short of the length at which a commit
        // checkpoints by itself. In WAL mode the file itself grows only
        // when a checkpoint copies pages into it.
        conn.execute_batch(
            "CREATE TABLE blobs (b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO blobs SELECT randomblob(4000) FROM n;",
        )?;
        pool.release(conn);
        let copied = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) > 8_000_000;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !copied(&path) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(copied(&path), "the log was never copied into the file");
        drop(pool);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn steady_commits_in_turn_beside_the_checkpointer_see_the_log_start_again() -> Result<()> {
        let dir = scratch("bounded");
        let path = dir.join("db.sqlite");
        let pool = Pool::new(&path)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let turn = || {
            runtime
                .block_on(pool.write_turn(std::time::Duration::from_secs(30)))
                .context("no write turn")
        };
        {
            let mut first = turn()?;
            let writer = first.conn()?;
            // Only the checkpointer may start the log again here.
            writer.pragma_update(None, "wal_autocheckpoint", 0)?;
            writer.execute_batch("CREATE TABLE rows (b BLOB);")?;
        }
        // The log's header counts the times it started again (its
        // checkpoint sequence number, bytes 12 to 15, big-endian).
        let restarts = || -> Result<u32> {
            let mut header = [0u8; 16];
            std::io::Read::read_exact(
                &mut std::fs::File::open(dir.join("db.sqlite-wal"))?,
                &mut header,
            )?;
            Ok(u32::from_be_bytes([
                header[12], header[13], header[14], header[15],
            ]))
        };
        // Small commits one after another, each in its own write turn as
        // the host's are, a little apart as a busy host's are: a log that
        // the checkpointer's passes never quite finish copying, until it
        // copies the rest in the turn. At most 100,000 (400 MiB of log,
        // should it never start again).
        let mut seen = 0;
        for commit in 1..=100_000 {
            let mut held = turn()?;
            held.conn()?
                .execute("INSERT INTO rows (b) VALUES (randomblob(100))", [])?;
            drop(held);
            std::thread::sleep(std::time::Duration::from_micros(50));
            if commit % 1_000 == 0 {
                seen = restarts()?;
                if seen >= 3 {
                    break;
                }
            }
        }
        assert!(seen >= 3, "the log started again {seen} times");
        drop(pool);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
