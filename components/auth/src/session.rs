//! Sessions: opaque bearer tokens (`ghs_` + 256 random bits) whose SHA-256
//! digest is stored, looked up through a key-value cache that never
//! outlives a revocation.
//!
//! Each user has a *version* in the store, replaced with a fresh random
//! value whenever any of the user's sessions is revoked, the user changes,
//! or one of the user's memberships changes. A cached session is used only
//! while its recorded version is still the user's current one. Writers
//! change the database first and the version second; readers on a miss read
//! the session, then the version, then the session again before caching
//! it. Whatever order a change and a lookup interleave in, either the
//! lookup sees the change in the database or the change's new version makes
//! the cached entry dead. Entries are also refreshed from the database
//! after [`REFRESH_SECONDS`], which is when the idle deadline slides.

use serde::{Deserialize, Serialize};

use crate::membership::Membership;

/// Prefix of session tokens.
pub const SESSION_PREFIX: &str = "ghs_";

/// How long a cached session is trusted before the database is asked again.
pub const REFRESH_SECONDS: i64 = 60;

/// The account as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// `usr_…`.
    pub id: String,
    /// The address as typed at sign-up.
    pub email: String,
    /// The name shown to others.
    pub display_name: String,
    /// `pending`, `active` or `inactive`.
    pub status: String,
    /// Whether the address was verified.
    pub email_verified: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// A live session, its user and the user's memberships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAuth {
    /// The session's id (`ses_…`), safe to show.
    pub session_id: String,
    /// The signed-in user.
    pub user: User,
    /// Every org the user belongs to.
    pub memberships: Vec<Membership>,
}

/// A cached, live session.
#[derive(Serialize, Deserialize)]
pub struct Entry {
    /// The session's id.
    pub session_id: String,
    /// The user as of caching.
    pub user: User,
    /// The user's memberships as of caching.
    pub memberships: Vec<Membership>,
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

    /// What the entry says about the session.
    pub fn into_auth(self) -> SessionAuth {
        SessionAuth {
            session_id: self.session_id,
            user: self.user,
            memberships: self.memberships,
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub use store::{
    Cache, bump_version, idle_ttl, lookup, memberships, read_version, user_from, user_version_key,
};

#[cfg(target_arch = "wasm32")]
mod store {
    use super::{Entry, REFRESH_SECONDS, SESSION_PREFIX, SessionAuth, User};
    use crate::db;
    use crate::membership::Membership;
    use gatehouse_http::principal::OrgRole;
    use gatehouse_http::{ErrorCode, Problem, idempotency::unix_now};
    use identity_core::token;
    use spin_sdk::key_value::Store;
    use spin_sdk::sqlite::{Connection, RowResult};

    /// The cache; every failure of the store degrades to a miss.
    pub struct Cache {
        store: Option<Store>,
    }

    fn entry_key(digest: &str) -> String {
        format!("identity:session:{digest}")
    }

    /// The key of a user's version counter: bumped on every change that
    /// cached sessions and API key verifications of the user must not
    /// outlive.
    pub fn user_version_key(user_id: &str) -> String {
        format!("identity:user-version:{user_id}")
    }

    /// A version counter ("0" before any change); `None` when the store
    /// cannot say, which means: do not cache.
    pub async fn read_version(store: &Store, key: &str) -> Option<String> {
        match store.get(key).await {
            Ok(Some(v)) => String::from_utf8(v).ok(),
            Ok(None) => Some("0".to_string()),
            Err(_) => None,
        }
    }

    /// Sets a version counter to a fresh value, making every cache entry
    /// stamped with the old one stale. Fails (503) when the store cannot be
    /// written, so the caller retries rather than trusting a change the
    /// cache may not have seen; `what` names the entries for the log.
    pub async fn bump_version(store: Option<&Store>, key: &str, what: &str) -> Result<(), Problem> {
        let fresh = hex::encode(identity_core::random::bytes::<16>());
        let unavailable = || {
            eprintln!("auth: could not invalidate cached {what}");
            Problem::new(ErrorCode::Unavailable).detail(
                "the change is saved but could not take effect everywhere yet; retry the request",
            )
        };
        let store = match store {
            Some(store) => store,
            None => &Store::open_default().await.map_err(|_| unavailable())?,
        };
        store
            .set(key, fresh.as_bytes())
            .await
            .map_err(|_| unavailable())
    }

    impl Cache {
        /// Opens the `default` store.
        pub async fn open() -> Cache {
            Cache {
                store: Store::open_default().await.ok(),
            }
        }

        /// The user's current version ("0" before any change); `None` when
        /// the store cannot say, which means: do not cache.
        pub async fn version(&self, user_id: &str) -> Option<String> {
            read_version(self.store.as_ref()?, &user_version_key(user_id)).await
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
        /// change. If the store cannot be written the request fails (503),
        /// so the caller retries rather than trusting a change the cache may
        /// not have seen.
        pub async fn invalidate_user(&self, user_id: &str) -> Result<(), Problem> {
            bump_version(
                self.store.as_ref(),
                &user_version_key(user_id),
                &format!("sessions of {user_id}"),
            )
            .await
        }
    }

    /// Seconds a session survives without use (Spin variable
    /// `session_idle_ttl_seconds`, 14 days by default).
    pub async fn idle_ttl() -> i64 {
        spin_sdk::variables::get("session_idle_ttl_seconds")
            .await
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(14 * 24 * 3600)
    }

    fn unauthenticated(detail: &str) -> Problem {
        Problem::new(ErrorCode::Unauthenticated)
            .detail(detail.to_string())
            .header("www-authenticate", "Bearer")
    }

    /// A user from the columns `id, email, display_name, status,
    /// email_verified_at, created_at` at the start of `row`.
    pub fn user_from(row: &RowResult) -> User {
        User {
            id: db::get_text(row, 0),
            email: db::get_text(row, 1),
            display_name: db::get_text(row, 2),
            status: db::get_text(row, 3),
            email_verified: db::get_int(row, 4).is_some(),
            created_at: db::get_int(row, 5).unwrap_or_default(),
        }
    }

    /// Every org the user belongs to, with the user's role, teams and granted
    /// roles in it.
    pub async fn memberships(conn: &Connection, user_id: &str) -> Result<Vec<Membership>, Problem> {
        // The user's own rows across orgs: this is what decides which
        // tenants the user may enter, so it cannot itself be tenant-scoped.
        let rows = db::query(
            conn,
            "SELECT m.org_id, o.handle, m.role,
                    (SELECT json_group_array(tm.team_id) FROM team_members tm WHERE tm.org_id = m.org_id AND tm.user_id = m.user_id)
             FROM memberships m JOIN orgs o ON o.org_id = m.org_id
             WHERE m.user_id = ? ORDER BY m.created_at, m.org_id",
            vec![db::text(user_id)],
        )
        .await?;
        let mut grants = crate::access::user_grants_by_org(conn, user_id).await?;
        Ok(rows
            .iter()
            .map(|row| Membership {
                grants: grants.remove(&db::get_text(row, 0)).unwrap_or_default(),
                org_id: db::get_text(row, 0),
                org_handle: db::get_text(row, 1),
                role: if db::get_text(row, 2) == "admin" {
                    OrgRole::Admin
                } else {
                    OrgRole::Member
                },
                team_ids: serde_json::from_str(&db::get_text(row, 3)).unwrap_or_default(),
            })
            .collect())
    }

    struct Found {
        auth: SessionAuth,
        absolute_expires_at: i64,
    }

    async fn live_session(
        conn: &Connection,
        digest: &str,
        now: i64,
    ) -> Result<Option<Found>, Problem> {
        let rows = db::query(
            conn,
            "SELECT u.id, u.email, u.display_name, u.status, u.email_verified_at, u.created_at, s.id, s.absolute_expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_digest = ? AND s.revoked_at IS NULL AND s.idle_expires_at > ? AND s.absolute_expires_at > ? AND u.status = 'active'",
            vec![db::text(digest), db::int(now), db::int(now)],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let user = user_from(row);
        let memberships = memberships(conn, &user.id).await?;
        Ok(Some(Found {
            auth: SessionAuth {
                session_id: db::get_text(row, 6),
                user,
                memberships,
            },
            absolute_expires_at: db::get_int(row, 7).unwrap_or(now),
        }))
    }

    /// Resolves a session token to a live session: from the cache while it
    /// may answer, else from the database (sliding the idle deadline) and
    /// then cached.
    pub async fn lookup(secret: &str) -> Result<SessionAuth, Problem> {
        if !token::well_formed(secret, SESSION_PREFIX) {
            return Err(unauthenticated("the session token is invalid or expired"));
        }
        let digest = token::digest(secret);
        let now = unix_now();
        let cache = Cache::open().await;
        if let Some(entry) = cache.get(&digest).await
            && let Some(current) = cache.version(&entry.user.id).await
            && entry.usable(now, &current)
        {
            return Ok(entry.into_auth());
        }
        let conn = db::open().await?;
        let Some(found) = live_session(&conn, &digest, now).await? else {
            return Err(unauthenticated("the session token is invalid or expired"));
        };
        let idle = (now + idle_ttl().await).min(found.absolute_expires_at);
        db::exec(
            &conn,
            "UPDATE sessions SET last_seen_at = ?, idle_expires_at = ? WHERE id = ?",
            vec![
                db::int(now),
                db::int(idle),
                db::text(&found.auth.session_id),
            ],
        )
        .await?;
        // Version, then the database again: see the module docs for why.
        if let Some(version) = cache.version(&found.auth.user.id).await
            && let Some(fresh) = live_session(&conn, &digest, now).await?
        {
            let entry = Entry {
                session_id: fresh.auth.session_id,
                user: fresh.auth.user,
                memberships: fresh.auth.memberships,
                version,
                idle_expires_at: idle,
                absolute_expires_at: fresh.absolute_expires_at,
                refresh_after: now + REFRESH_SECONDS,
            };
            cache.put(&digest, &entry).await;
            return Ok(entry.into_auth());
        }
        Ok(found.auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            session_id: "ses_1".into(),
            user: User {
                id: "usr_1".into(),
                email: "a@example.com".into(),
                display_name: "A".into(),
                status: "active".into(),
                email_verified: true,
                created_at: 1,
            },
            memberships: vec![],
            version: "v1".into(),
            idle_expires_at: 200,
            absolute_expires_at: 300,
            refresh_after: 160,
        }
    }

    #[test]
    fn an_entry_answers_only_for_its_version_and_before_its_deadlines() {
        let e = entry();
        assert!(e.usable(100, "v1"));
        assert!(!e.usable(100, "v2"), "a new version kills the entry");
        assert!(!e.usable(160, "v1"), "refresh from the database");
        let e = Entry {
            refresh_after: 1000,
            ..entry()
        };
        assert!(!e.usable(200, "v1"), "idle deadline");
        let e = Entry {
            refresh_after: 1000,
            idle_expires_at: 1000,
            ..entry()
        };
        assert!(!e.usable(300, "v1"), "absolute deadline");
    }

    #[test]
    fn entries_round_trip_through_json() -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(&entry())?;
        let back: Entry = serde_json::from_slice(&bytes)?;
        assert_eq!(back.into_auth(), entry().into_auth());
        Ok(())
    }
}
