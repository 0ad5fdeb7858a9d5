//! Key-value backends behind `spin:key-value`: a SQLite file with Spin's own
//! table layout, or a Redis server.

use anyhow::{Context, Result};
use redis::AsyncCommands;
use std::path::Path;
use std::sync::Arc;

use crate::runtime_config::KvConfig;
use crate::sqlite_pool::Pool;

/// A store the guest can open by label.
#[derive(Clone)]
pub enum KvBackend {
    /// Rows of `spin_key_value` for one label in a SQLite file.
    Sqlite {
        /// The label, stored in the `store` column.
        label: String,
        /// Connections to the file.
        pool: Arc<Pool>,
    },
    /// A Redis server; keys are stored as given.
    Redis(redis::aio::ConnectionManager),
}

const KV_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL,
    key   TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (store, key)
)";

impl KvBackend {
    /// Opens (and for SQLite, creates) the backend for `label`.
    pub async fn open(label: &str, config: &KvConfig, pools: &mut PoolCache) -> Result<KvBackend> {
        match config {
            KvConfig::Sqlite(path) => {
                let pool = pools.get(path)?;
                pool.with(|conn| conn.execute_batch(KV_SCHEMA)).await?;
                Ok(KvBackend::Sqlite {
                    label: label.to_string(),
                    pool,
                })
            }
            KvConfig::Redis(url) => {
                let client = redis::Client::open(url.as_str())
                    .with_context(|| format!("key-value store `{label}`: invalid redis url"))?;
                // Bounded retries: a wrong URL must fail the load promptly,
                // while a running server that restarts is reconnected to.
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_number_of_retries(3)
                    .set_max_delay(1000)
                    .set_connection_timeout(std::time::Duration::from_secs(2))
                    .set_response_timeout(std::time::Duration::from_secs(5));
                let manager = redis::aio::ConnectionManager::new_with_config(client, config)
                    .await
                    .with_context(|| {
                        format!("key-value store `{label}`: cannot connect to redis")
                    })?;
                Ok(KvBackend::Redis(manager))
            }
        }
    }

    /// The value under `key`, if any.
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>> {
        match self {
            KvBackend::Sqlite { label, pool } => {
                let label = label.clone();
                pool.read(move |c| {
                    let mut stmt = c.prepare_cached(
                        "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                    )?;
                    let mut rows = stmt.query((label, key))?;
                    rows.next()?.map(|r| r.get::<_, Vec<u8>>(0)).transpose()
                })
                .await
            }
            KvBackend::Redis(conn) => Ok(conn.clone().get(key).await?),
        }
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<()> {
        match self {
            KvBackend::Sqlite { label, pool } => {
                let label = label.clone();
                pool.with(move |c| {
                    c.prepare_cached(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute((label, key, value))
                    .map(drop)
                })
                .await
            }
            KvBackend::Redis(conn) => Ok(conn.clone().set(key, value).await?),
        }
    }

    /// Removes `key`; absent keys are not an error.
    pub async fn delete(&self, key: String) -> Result<()> {
        match self {
            KvBackend::Sqlite { label, pool } => {
                let label = label.clone();
                pool.with(move |c| {
                    c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                        .execute((label, key))
                        .map(drop)
                })
                .await
            }
            KvBackend::Redis(conn) => Ok(conn.clone().del(key).await?),
        }
    }

    /// Whether `key` has a value.
    pub async fn exists(&self, key: String) -> Result<bool> {
        match self {
            KvBackend::Sqlite { label, pool } => {
                let label = label.clone();
                pool.read(move |c| {
                    c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                        .exists((label, key))
                })
                .await
            }
            KvBackend::Redis(conn) => Ok(conn.clone().exists(key).await?),
        }
    }

    /// Every key in the store.
    pub async fn keys(&self) -> Result<Vec<String>> {
        match self {
            KvBackend::Sqlite { label, pool } => {
                let label = label.clone();
                pool.with(move |c| {
                    let mut stmt = c.prepare_cached(
                        "SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key",
                    )?;
                    stmt.query_map([label], |r| r.get::<_, String>(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .await
            }
            KvBackend::Redis(conn) => {
                let mut conn = conn.clone();
                let mut keys: Vec<String> = Vec::new();
                let mut iter: redis::AsyncIter<String> = conn.scan().await?;
                while let Some(key) = futures::StreamExt::next(&mut iter).await {
                    keys.push(key?);
                }
                Ok(keys)
            }
        }
    }
}

/// One pool per SQLite file, so labels sharing a file share connections.
#[derive(Default)]
pub struct PoolCache {
    pools: Vec<(std::path::PathBuf, Arc<Pool>)>,
}

impl PoolCache {
    /// The pool for `path`, created on first use.
    pub fn get(&mut self, path: &Path) -> Result<Arc<Pool>> {
        if let Some((_, pool)) = self.pools.iter().find(|(p, _)| p == path) {
            return Ok(pool.clone());
        }
        let pool = Arc::new(Pool::new(path)?);
        self.pools.push((path.to_path_buf(), pool.clone()));
        Ok(pool)
    }
}
