//! Session lookups cached in the key-value store, never outliving a
//! revocation.
//!
//! Each user has a *version* in the store, replaced with a fresh random
//! value whenever any of the user's sessions is revoked or the user
//! changes. A cached session is used only while its recorded version is
//! still the user's current one. Writers change the database first and the
//! version second; readers on a miss read the session, then the version,
//! then the session again before caching it. Whatever order a revocation
//! and a lookup interleave in, either the lookup sees the revocation in the
//! database or the revocation's new version makes the cached entry dead.
//! Entries are also refreshed from the database after [`REFRESH_SECONDS`],
//! which is when the idle deadline slides.

use gatehouse_http::{ErrorCode, Problem};
use serde::{Deserialize, Serialize};
use spin_sdk::key_value::Store;

use crate::sessions::User;

/// How long a cached session is trusted before the database is asked again.
pub const REFRESH_SECONDS: i64 = 60;

/// A cached, live session.
#[derive(Serialize, Deserialize)]
pub struct Entry {
    /// The session's id.
    pub session_id: String,
    /// The user as of caching.
    pub user: User,
    /// The user's version when cached.
    pub version: String,
    /// The session's idle deadline when cached.
    pub idle_expires_at: i64,
    /// The session's absolute deadline.
    pub absolute_expires_at: i64,
    /// After this, ask the database again.
    pub refresh_after: i64,
}

impl Entry {
    /// Whether the entry may answer at `now` for a user whose version is `current`.
    pub fn usable(&self, now: i64, current: &str) -> bool {
        self.version == current
            && now < self.refresh_after
            && now < self.idle_expires_at
            && now < self.absolute_expires_at
    }
}

/// The cache; every failure of the store degrades to a miss.
pub struct Cache {
    store: Option<Store>,
}

fn entry_key(digest: &str) -> String {
    format!("identity:session:{digest}")
}

fn version_key(user_id: &str) -> String {
    format!("identity:user-version:{user_id}")
}

impl Cache {
    /// Opens the `default` store.
    pub async fn open() -> Cache {
        Cache {
            store: Store::open_default().await.ok(),
        }
    }

    /// The user's current version ("0" before any change); `None` when the
    /// store cannot say, which means: do not cache.
    pub async fn version(&self, user_id: &str) -> Option<String> {
        let store = self.store.as_ref()?;
        match store.get(version_key(user_id)).await {
            Ok(Some(v)) => String::from_utf8(v).ok(),
            Ok(None) => Some("0".to_string()),
            Err(_) => None,
        }
    }

    /// The cached entry for a token digest, if any.
    pub async fn get(&self, digest: &str) -> Option<Entry> {
        let bytes = self.store.as_ref()?.get(entry_key(digest)).await.ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Caches an entry; a failure only costs the next lookup a miss.
    pub async fn put(&self, digest: &str, entry: &Entry) {
        if let (Some(store), Ok(bytes)) = (self.store.as_ref(), serde_json::to_vec(entry)) {
            let _ = store.set(entry_key(digest), &bytes).await;
        }
    }

    /// Kills every cached session of the user. Call after the database
    /// change. If the store cannot be written the request fails (503), so
    /// the caller retries rather than trusting a revocation the cache may
    /// not have seen.
    pub async fn invalidate_user(&self, user_id: &str) -> Result<(), Problem> {
        let fresh: String = identity_core::random::bytes::<16>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let unavailable = || {
            eprintln!("identity: could not invalidate cached sessions of {user_id}");
            Problem::new(ErrorCode::Unavailable).detail(
                "the change is saved but could not take effect everywhere yet; retry the request",
            )
        };
        let store = match &self.store {
            Some(store) => store,
            None => &Store::open_default().await.map_err(|_| unavailable())?,
        };
        store
            .set(version_key(user_id), fresh.as_bytes())
            .await
            .map_err(|_| unavailable())
    }
}
