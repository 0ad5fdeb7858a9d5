//! API keys: what a presented key is worth, decided the same way for the
//! keys component's verify route and for `authenticate`.
//!
//! A key is a recognisable prefix, `_`, and 256 random bits in base64url;
//! only its SHA-256 digest is stored. Verification looks the digest up in
//! a key-value cache first. Each key has a *version* in the store that any
//! change to the key (revoke, rotate, update, role grants) replaces; an
//! entry answers only while its version is current and its owner's session
//! version is too (the owner's membership, roles and account bound what a
//! key may do), and is refreshed from the database after
//! [`REFRESH_SECONDS`]. The
//! write/read order is the session cache's: writers change the database,
//! then the version; readers on a miss read the database, then the
//! version, then the database again. A revoked or rotated key therefore
//! fails on the very next verify.
//!
//! Rate limits and remaining-use budgets are never answered from the
//! cache: each verify of such a key counts in SQLite with one conditional
//! statement, so concurrent verifies can never take a budget below zero.

use serde::{Deserialize, Serialize};

use crate::access::Grants;

/// How long a cached verification is trusted before the database is asked again.
pub const REFRESH_SECONDS: i64 = 30;

/// The verdict on a presented key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// The key may be used.
    Valid,
    /// No such key (or one the caller may not know of).
    NotFound,
    /// Revoked.
    Revoked,
    /// Past its expiry, or an old secret past its rotation grace period.
    Expired,
    /// Before its `not_before`.
    NotYetValid,
    /// No uses left.
    UsageExceeded,
    /// Too many requests in the current window.
    RateLimited,
}

/// A key's stored state, as verification needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// `key_…`.
    pub key_id: String,
    /// The key's name in its org.
    pub name: String,
    /// The org it belongs to.
    pub org_id: String,
    /// The member who created it.
    pub owner_user_id: String,
    /// Whether it holds its owner's permissions instead of its own roles.
    pub inherits: bool,
    /// Unix seconds; `None`: never.
    pub expires_at: Option<i64>,
    /// Unix seconds; `None`: from creation.
    pub not_before: Option<i64>,
    /// Requests per window, if limited.
    pub ratelimit_limit: Option<i64>,
    /// The window in seconds, if limited.
    pub ratelimit_window: Option<i64>,
    /// Whether uses are budgeted (the count itself is never cached).
    pub budgeted: bool,
    /// Free-form JSON object.
    pub metadata: Option<serde_json::Value>,
    /// When revoked, if it was.
    pub revoked_at: Option<i64>,
    /// When the presented secret stops working (rotation grace), if it does.
    pub secret_expires_at: Option<i64>,
    /// Whether the owner is still an active member of the key's org; a
    /// key whose owner left, or whose account was deactivated, stops.
    #[serde(default)]
    pub owner_active: bool,
}

impl KeyRecord {
    /// The verdict before counting uses and requests.
    pub fn standing(&self, now: i64) -> Code {
        if self.revoked_at.is_some() || !self.owner_active {
            Code::Revoked
        } else if self.expires_at.is_some_and(|t| t <= now)
            || self.secret_expires_at.is_some_and(|t| t <= now)
        {
            Code::Expired
        } else if self.not_before.is_some_and(|t| t > now) {
            Code::NotYetValid
        } else {
            Code::Valid
        }
    }

    /// The fixed window `now` falls in, if the key is rate limited.
    pub fn window(&self, now: i64) -> Option<Window> {
        let (limit, seconds) = (self.ratelimit_limit?, self.ratelimit_window?);
        let seconds = seconds.max(1);
        let start = now - now.rem_euclid(seconds);
        Some(Window {
            limit,
            start,
            reset: start + seconds,
        })
    }
}

/// One rate-limit window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Requests allowed in it.
    pub limit: i64,
    /// Its first second.
    pub start: i64,
    /// When the next one starts.
    pub reset: i64,
}

/// Rate-limit state after a verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Requests per window.
    pub limit: i64,
    /// Left in this window.
    pub remaining: i64,
    /// Unix seconds when the window resets.
    pub reset: i64,
}

/// The outcome of verifying a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The verdict.
    pub code: Code,
    /// The key, when one was found.
    pub key: Option<KeyRecord>,
    /// Its roles and permissions, when found.
    pub grants: Grants,
    /// Uses left after this one, for budgeted keys.
    pub remaining: Option<i64>,
    /// Rate-limit state, for limited keys.
    pub ratelimit: Option<RateLimit>,
}

impl Verification {
    /// The verdict on a key that does not exist (or may not be known of).
    pub fn not_found() -> Verification {
        Verification {
            code: Code::NotFound,
            key: None,
            grants: Grants::default(),
            remaining: None,
            ratelimit: None,
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) use store::version_key;
#[cfg(target_arch = "wasm32")]
pub use store::{invalidate, verify, verify_in_org};

#[cfg(target_arch = "wasm32")]
mod store {
    use super::{Code, KeyRecord, REFRESH_SECONDS, RateLimit, Verification};
    use crate::access::{Grants, SubjectType, grants_of};
    use crate::db::{self, Lazy};
    use crate::session;
    use gatehouse_http::Problem;
    use serde::{Deserialize, Serialize};
    use spin_sdk::key_value::Store;
    use spin_sdk::sqlite::{Connection, RowResult};

    #[derive(Serialize, Deserialize)]
    struct Entry {
        key: KeyRecord,
        grants: Grants,
        version: String,
        /// The owner's session version: membership, role and account
        /// changes replace it, and with it every cached key of the owner.
        owner_version: String,
        refresh_after: i64,
    }

    fn entry_key(digest: &str) -> String {
        format!("apikey:verify:{digest}")
    }

    /// The key of an API key's version counter, replaced on every change
    /// to the key.
    pub(crate) fn version_key(key_id: &str) -> String {
        format!("apikey:version:{key_id}")
    }

    async fn version(store: &Store, key_id: &str) -> Option<String> {
        session::read_version(store, &version_key(key_id)).await
    }

    /// The owner's version, read on the store already open.
    async fn owner_version(store: &Store, owner_user_id: &str) -> Option<String> {
        session::read_version(store, &session::user_version_key(owner_user_id)).await
    }

    /// Makes every cached verification of the key stale. Call after the
    /// database change; fails (503) when the store cannot be written, so
    /// the caller retries instead of trusting a change caches missed.
    pub async fn invalidate(key_id: &str) -> Result<(), Problem> {
        session::bump_version(
            None,
            &version_key(key_id),
            &format!("verifications of {key_id}"),
        )
        .await
    }

    const KEY_COLUMNS: &str =
        "k.key_id, k.name, k.org_id, k.owner_user_id, k.inherits, k.expires_at, k.not_before,
        k.ratelimit_limit, k.ratelimit_window, k.remaining, k.metadata, k.revoked_at, s.expires_at";

    fn record_from(row: &RowResult) -> KeyRecord {
        KeyRecord {
            key_id: db::get_text(row, 0),
            name: db::get_text(row, 1),
            org_id: db::get_text(row, 2),
            owner_user_id: db::get_text(row, 3),
            inherits: db::get_int(row, 4) == Some(1),
            expires_at: db::get_int(row, 5),
            not_before: db::get_int(row, 6),
            ratelimit_limit: db::get_int(row, 7),
            ratelimit_window: db::get_int(row, 8),
            budgeted: db::get_int(row, 9).is_some(),
            metadata: db::get_json(row, 10),
            revoked_at: db::get_int(row, 11),
            secret_expires_at: db::get_int(row, 12),
            owner_active: false,
        }
    }

    async fn load(conn: &Connection, digest: &str) -> Result<Option<(KeyRecord, Grants)>, Problem> {
        // Found by the digest alone: the key is the credential that names its org.
        let rows = db::query(
            conn,
            &format!(
                "SELECT {KEY_COLUMNS} FROM api_key_secrets s JOIN api_keys k ON k.key_id = s.key_id WHERE s.digest = ?"
            ),
            vec![db::text(digest)],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let mut key = record_from(row);
        let owner = db::query(
            conn,
            "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = ? AND m.user_id = ? AND u.status = 'active'",
            vec![db::text(&key.org_id), db::text(&key.owner_user_id)],
        )
        .await?;
        key.owner_active = !owner.is_empty();
        if !key.owner_active {
            return Ok(Some((key, Grants::default())));
        }
        let owner_grants =
            grants_of(conn, &key.org_id, SubjectType::User, &key.owner_user_id).await?;
        if key.inherits {
            return Ok(Some((key, owner_grants)));
        }
        // A key never holds more than its owner: unless the owner manages
        // every key (an org admin or a keys:manage holder), only the key's
        // roles its owner still holds count.
        let owner_manages = owner.first().is_some_and(|r| db::get_text(r, 0) == "admin")
            || owner_grants.permissions.iter().any(|p| p == "keys:manage");
        let rows = db::query(
            conn,
            "SELECT r.name, r.permissions FROM role_grants g JOIN roles r ON r.role_id = g.role_id
             WHERE g.org_id = ?1 AND g.subject_type = 'api_key' AND g.subject_id = ?2
               AND (?3 = 1 OR EXISTS (SELECT 1 FROM role_grants o WHERE o.role_id = g.role_id
                                     AND o.subject_type = 'user' AND o.subject_id = ?4))",
            vec![
                db::text(&key.org_id),
                db::text(&key.key_id),
                db::int(i64::from(owner_manages)),
                db::text(&key.owner_user_id),
            ],
        )
        .await?;
        let grants = Grants::from_roles(rows.iter().map(|r| {
            let permissions: Vec<String> =
                serde_json::from_str(&db::get_text(r, 1)).unwrap_or_default();
            (db::get_text(r, 0), permissions)
        }));
        Ok(Some((key, grants)))
    }

    async fn cached(store: &Store, digest: &str, now: i64) -> Option<(KeyRecord, Grants)> {
        let bytes = store.get(entry_key(digest)).await.ok()??;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        if now >= entry.refresh_after || version(store, &entry.key.key_id).await? != entry.version {
            return None;
        }
        if owner_version(store, &entry.key.owner_user_id).await? != entry.owner_version {
            return None;
        }
        Some((entry.key, entry.grants))
    }

    async fn resolve(
        conn: &Lazy,
        digest: &str,
        now: i64,
    ) -> Result<Option<(KeyRecord, Grants)>, Problem> {
        let store = Store::open_default().await.ok();
        if let Some(store) = &store
            && let Some(hit) = cached(store, digest, now).await
        {
            return Ok(Some(hit));
        }
        let db = conn.get().await?;
        let Some(store) = store else {
            return load(db, digest).await;
        };
        // Which key and owner the digest names (for their versions)...
        let rows = db::query(
            db,
            "SELECT k.key_id, k.owner_user_id FROM api_key_secrets s JOIN api_keys k ON k.key_id = s.key_id WHERE s.digest = ?",
            vec![db::text(digest)],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        // ...their versions, then the full read: see the module docs for why.
        let current = version(&store, &db::get_text(row, 0)).await;
        let owner = owner_version(&store, &db::get_text(row, 1)).await;
        let fresh = load(db, digest).await?;
        // Either version unknown: answer from the database, cache nothing.
        if let (Some(version), Some(owner), Some((key, grants))) = (current, owner, &fresh) {
            let entry = Entry {
                key: key.clone(),
                grants: grants.clone(),
                version,
                owner_version: owner,
                refresh_after: now + REFRESH_SECONDS,
            };
            if let Ok(bytes) = serde_json::to_vec(&entry) {
                let _ = store.set(entry_key(digest), &bytes).await;
            }
        }
        Ok(fresh)
    }

    /// Counts a request in the key's current window: the state after it,
    /// and whether it fit (`None` when the key is not rate limited).
    async fn count_request(
        conn: &Lazy,
        key: &KeyRecord,
        now: i64,
    ) -> Result<Option<(RateLimit, bool)>, Problem> {
        let Some(window) = key.window(now) else {
            return Ok(None);
        };
        let conn = conn.get().await?;
        // One statement counts and checks; a full window returns no row.
        let rows = db::query(
            conn,
            "INSERT INTO api_key_windows (key_id, window_start, count) VALUES (?, ?, 1)
             ON CONFLICT (key_id, window_start) DO UPDATE SET count = count + 1 WHERE count < ?
             RETURNING count",
            vec![
                db::text(&key.key_id),
                db::int(window.start),
                db::int(window.limit),
            ],
        )
        .await?;
        let used = rows.first().and_then(|r| db::get_int(r, 0));
        if used == Some(1) {
            // A new window: the key's older ones are done with.
            db::exec(
                conn,
                "DELETE FROM api_key_windows WHERE key_id = ? AND window_start < ?",
                vec![db::text(&key.key_id), db::int(window.start)],
            )
            .await?;
        }
        let state = RateLimit {
            limit: window.limit,
            remaining: used.map_or(0, |n| (window.limit - n).max(0)),
            reset: window.reset,
        };
        Ok(Some((state, used.is_some())))
    }

    /// Verifies a presented key at `now`, counting one use and one request
    /// against its budget and rate limit when it is otherwise valid.
    pub async fn verify(conn: &Lazy, secret: &str, now: i64) -> Result<Verification, Problem> {
        check(conn, secret, None, now).await
    }

    /// [`verify`] for a caller of `org_id`: a key of another org is
    /// `not_found`, and nothing of it is counted.
    pub async fn verify_in_org(
        conn: &Lazy,
        secret: &str,
        org_id: &str,
        now: i64,
    ) -> Result<Verification, Problem> {
        check(conn, secret, Some(org_id), now).await
    }

    async fn check(
        conn: &Lazy,
        secret: &str,
        org_id: Option<&str>,
        now: i64,
    ) -> Result<Verification, Problem> {
        let digest = identity_core::token::digest(secret);
        let Some((key, grants)) = resolve(conn, &digest, now).await? else {
            return Ok(Verification::not_found());
        };
        if org_id.is_some_and(|org| org != key.org_id) {
            return Ok(Verification::not_found());
        }
        let mut verification = Verification {
            code: key.standing(now),
            key: Some(key),
            grants,
            remaining: None,
            ratelimit: None,
        };
        let Some(key) = verification.key.as_ref() else {
            return Ok(verification);
        };
        if verification.code != Code::Valid {
            return Ok(verification);
        }
        if let Some((state, fits)) = count_request(conn, key, now).await? {
            verification.ratelimit = Some(state);
            if !fits {
                verification.code = Code::RateLimited;
                return Ok(verification);
            }
        }
        if key.budgeted {
            // One statement decides: concurrent verifies cannot take it below zero.
            let rows = db::query(
                conn.get().await?,
                "UPDATE api_keys SET remaining = remaining - 1 WHERE key_id = ? AND remaining > 0 RETURNING remaining",
                vec![db::text(&key.key_id)],
            )
            .await?;
            match rows.first().and_then(|r| db::get_int(r, 0)) {
                Some(left) => verification.remaining = Some(left),
                None => {
                    verification.code = Code::UsageExceeded;
                    verification.remaining = Some(0);
                }
            }
        }
        Ok(verification)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyRecord {
        KeyRecord {
            key_id: "key_1".into(),
            name: "ci".into(),
            org_id: "org_1".into(),
            owner_user_id: "usr_1".into(),
            inherits: false,
            expires_at: None,
            not_before: None,
            ratelimit_limit: None,
            ratelimit_window: None,
            budgeted: false,
            metadata: None,
            revoked_at: None,
            secret_expires_at: None,
            owner_active: true,
        }
    }

    #[test]
    fn each_state_has_its_own_code_and_revocation_wins() {
        assert_eq!(key().standing(100), Code::Valid);
        let expired = KeyRecord {
            expires_at: Some(100),
            ..key()
        };
        assert_eq!(expired.standing(100), Code::Expired);
        assert_eq!(expired.standing(99), Code::Valid);
        let rotated = KeyRecord {
            secret_expires_at: Some(50),
            ..key()
        };
        assert_eq!(
            rotated.standing(50),
            Code::Expired,
            "the old secret after its grace period"
        );
        assert_eq!(
            rotated.standing(49),
            Code::Valid,
            "the old secret during its grace period"
        );
        let early = KeyRecord {
            not_before: Some(200),
            ..key()
        };
        assert_eq!(early.standing(199), Code::NotYetValid);
        assert_eq!(early.standing(200), Code::Valid);
        let revoked = KeyRecord {
            revoked_at: Some(1),
            expires_at: Some(0),
            ..key()
        };
        assert_eq!(revoked.standing(100), Code::Revoked);
    }

    #[test]
    fn windows_are_fixed_and_aligned() {
        assert_eq!(key().window(100), None);
        let limited = KeyRecord {
            ratelimit_limit: Some(10),
            ratelimit_window: Some(60),
            ..key()
        };
        assert_eq!(
            limited.window(125),
            Some(Window {
                limit: 10,
                start: 120,
                reset: 180
            })
        );
        assert_eq!(limited.window(179).map(|w| w.start), Some(120));
        assert_eq!(limited.window(180).map(|w| w.start), Some(180));
    }
}
