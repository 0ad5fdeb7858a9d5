//! Spin's runtime-config file: which backend serves each store label.
//!
//! The same file a Spin deployment passes with `--runtime-config-file`:
//!
//! ```toml
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//!
//! [sqlite_database.default]
//! type = "spin"
//! path = "data/gatehouse.db"
//! ```
//!
//! Without an entry, the `default` key-value store and the `default` database
//! live in the state directory under the file names `spin up` uses, so users
//! can switch between Spin and this host and keep their data. Relative paths
//! in the file are resolved against the file's own directory.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name Spin uses for the default key-value store.
pub const DEFAULT_KV_FILE: &str = "sqlite_key_value.db";
/// File name Spin uses for the default SQLite database.
pub const DEFAULT_DB_FILE: &str = "sqlite_db.db";

/// Where one key-value label is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvConfig {
    /// A SQLite file holding Spin's `spin_key_value` table.
    Sqlite(PathBuf),
    /// A Redis server.
    Redis(String),
}

/// Backends for every label the runtime knows.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Key-value labels.
    pub key_value: BTreeMap<String, KvConfig>,
    /// Database labels: SQLite file paths.
    pub sqlite: BTreeMap<String, PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    key_value_store: BTreeMap<String, RawStore>,
    #[serde(default)]
    sqlite_database: BTreeMap<String, RawStore>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    #[serde(rename = "type")]
    kind: String,
    path: Option<PathBuf>,
    url: Option<String>,
    /// libSQL's auth token: accepted so that a production file parses and
    /// fails with the message about libSQL, not about an unknown key.
    #[allow(dead_code)]
    token: Option<String>,
}

impl RuntimeConfig {
    /// The defaults: `default` labels in `state_dir`.
    pub fn defaults(state_dir: &Path) -> RuntimeConfig {
        let mut config = RuntimeConfig::default();
        config.key_value.insert(
            "default".into(),
            KvConfig::Sqlite(state_dir.join(DEFAULT_KV_FILE)),
        );
        config
            .sqlite
            .insert("default".into(), state_dir.join(DEFAULT_DB_FILE));
        config
    }

    /// Defaults overlaid with the entries of a runtime-config file.
    pub fn load(file: Option<&Path>, state_dir: &Path) -> Result<RuntimeConfig> {
        let mut config = Self::defaults(state_dir);
        let Some(file) = file else {
            return Ok(config);
        };
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read runtime config {}", file.display()))?;
        let dir = file.parent().unwrap_or(Path::new("."));
        config
            .overlay(&text, dir)
            .with_context(|| format!("invalid runtime config {}", file.display()))?;
        Ok(config)
    }

    fn overlay(&mut self, text: &str, dir: &Path) -> Result<()> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message().trim()))?;
        for (label, store) in raw.key_value_store {
            let backend = match (store.kind.as_str(), store.path, store.url) {
                ("redis", None, Some(url)) => KvConfig::Redis(url),
                ("redis", _, _) => {
                    bail!("key_value_store.{label}: type \"redis\" takes `url` only")
                }
                ("spin", path, None) => KvConfig::Sqlite(match path {
                    Some(p) => dir.join(p),
                    None => dir.join(DEFAULT_KV_FILE),
                }),
                ("spin", _, _) => bail!("key_value_store.{label}: type \"spin\" takes `path` only"),
                (other, _, _) => bail!(
                    "key_value_store.{label}: unsupported type \"{other}\" (this host supports \"spin\" and \"redis\")"
                ),
            };
            self.key_value.insert(label, backend);
        }
        for (label, store) in raw.sqlite_database {
            let path = match (store.kind.as_str(), store.path, store.url) {
                ("spin", Some(path), None) => dir.join(path),
                ("spin", _, _) => bail!("sqlite_database.{label}: type \"spin\" takes `path`"),
                (other, _, _) => bail!(
                    "sqlite_database.{label}: unsupported type \"{other}\" on this host (libsql is for Spin deployments)"
                ),
            };
            self.sqlite.insert(label, path);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_use_spin_file_names() {
        let c = RuntimeConfig::defaults(Path::new(".spin"));
        assert_eq!(
            c.key_value["default"],
            KvConfig::Sqlite(".spin/sqlite_key_value.db".into())
        );
        assert_eq!(c.sqlite["default"], PathBuf::from(".spin/sqlite_db.db"));
    }

    #[test]
    fn redis_replaces_the_default_store() -> Result<()> {
        let mut c = RuntimeConfig::defaults(Path::new(".spin"));
        c.overlay(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:1\"\n[sqlite_database.audit]\ntype = \"spin\"\npath = \"audit.db\"\n",
            Path::new("/cfg"),
        )?;
        assert_eq!(
            c.key_value["default"],
            KvConfig::Redis("redis://127.0.0.1:1".into())
        );
        assert_eq!(c.sqlite["audit"], PathBuf::from("/cfg/audit.db"));
        Ok(())
    }

    #[test]
    fn rejects_unknown_types_naming_the_label() {
        let mut c = RuntimeConfig::default();
        let err = c
            .overlay(
                "[key_value_store.cache]\ntype = \"memcached\"\n",
                Path::new("."),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("key_value_store.cache"), "{err}");
    }
}
