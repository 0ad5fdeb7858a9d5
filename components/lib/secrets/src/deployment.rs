//! The deployment's data keys (`deployment_data_keys`): versioned random
//! AES-256 keys, each sealed by the master key's derived key like an
//! org's, that seal values of users and of the deployment itself (TOTP
//! secrets, signing keys).
//!
//! Signing keys open on every token issue, so an instance remembers the
//! data keys it opened, by version and by which master keys it opened them
//! under. That is safe across the requests an instance serves at once: a
//! version's key never changes (a rewrap seals the same key again; a new
//! key takes a new version), a change of either master key misses the
//! memory, and a value that does not open with a remembered key is tried
//! again with the key as stored.

use std::cell::RefCell;
use std::collections::HashMap;

use gatehouse_auth::db;
use gatehouse_http::Problem;
use identity_core::sealed::SealingKey;
use spin_sdk::sqlite::Connection;

use crate::sealed::deployment_key_context;

/// The master key's derived keys: the current one's and the previous one's.
pub(crate) type Keks = (SealingKey, Option<SealingKey>);

/// Keys remembered at most; a full memory is cleared, not grown.
const MOST: usize = 64;

thread_local! {
    /// Opened data keys by version: the master keys' fingerprint and the key.
    static OPENED: RefCell<HashMap<i64, (String, [u8; 32])>> = RefCell::new(HashMap::new());
}

/// Which master keys are configured, as a digest: what a remembered key
/// was opened under.
pub(crate) async fn fingerprint() -> String {
    let current = spin_sdk::variables::get("master_key")
        .await
        .unwrap_or_default();
    let previous = crate::store::previous_master().await.unwrap_or_default();
    identity_core::token::digest(&format!("{}\n{}", current.trim(), previous.trim()))
}

fn remembered(version: i64, fingerprint: &str) -> Option<[u8; 32]> {
    OPENED.with(|opened| {
        opened
            .borrow()
            .get(&version)
            .filter(|(under, _)| under == fingerprint)
            .map(|(_, key)| *key)
    })
}

fn remember(version: i64, fingerprint: String, key: [u8; 32]) {
    OPENED.with(|opened| {
        let mut opened = opened.borrow_mut();
        if opened.len() >= MOST {
            opened.clear();
        }
        opened.insert(version, (fingerprint, key));
    });
}

/// Forgets data key `version` (a value did not open with it).
pub(crate) fn forget(version: i64) {
    OPENED.with(|opened| opened.borrow_mut().remove(&version));
}

/// A sealed deployment data key opened under either master key.
fn unwrap(kek: &Keks, version: i64, wrapped: &str) -> Option<[u8; 32]> {
    let context = deployment_key_context(version);
    let (current, previous) = kek;
    let bytes = current
        .open(wrapped, &context)
        .or_else(|| previous.as_ref().and_then(|p| p.open(wrapped, &context)))?;
    bytes.try_into().ok()
}

/// Data key `version`: remembered, or read and opened (`None` when there
/// is no such version). `detail` is the 503's without a master key.
pub(crate) async fn key(
    conn: &Connection,
    version: i64,
    detail: &str,
) -> Result<Option<SealingKey>, Problem> {
    let fingerprint = fingerprint().await;
    if let Some(key) = remembered(version, &fingerprint) {
        return Ok(Some(SealingKey::from_bytes(&key)));
    }
    let kek = crate::store::keks_for(detail).await?;
    let rows = db::query(
        conn,
        "SELECT wrapped FROM deployment_data_keys WHERE version = ?",
        vec![db::int(version)],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let key = unwrap(&kek, version, &db::get_text(row, 0)).ok_or_else(|| {
        eprintln!("secrets: deployment data key {version} opens under no master key");
        Problem::internal()
    })?;
    remember(version, fingerprint, key);
    Ok(Some(SealingKey::from_bytes(&key)))
}

/// The newest deployment data key, made now (version 1) if there is none.
pub(crate) async fn newest(
    conn: &Connection,
    detail: &str,
    now: i64,
) -> Result<(i64, SealingKey), Problem> {
    let kek = crate::store::keks_for(detail).await?;
    let newest = db::query(
        conn,
        "SELECT MAX(version) FROM deployment_data_keys",
        vec![],
    )
    .await?;
    let version = match newest.first().and_then(|row| db::get_int(row, 0)) {
        Some(version) => version,
        None => {
            let key = identity_core::random::bytes::<32>();
            let wrapped = kek.0.seal(&key, &deployment_key_context(1));
            // Two first writes at once: the first key made stays.
            db::run(
                conn,
                "INSERT INTO deployment_data_keys (version, wrapped, created_at) VALUES (1, ?, ?)
                 ON CONFLICT DO NOTHING",
                vec![db::text(wrapped), db::int(now)],
            )
            .await?;
            1
        }
    };
    let key = key(conn, version, detail)
        .await?
        .ok_or_else(Problem::internal)?;
    Ok((version, key))
}

/// Seals every deployment data key under the current master key (those
/// that open only under the previous one included): how many it rewrote.
pub(crate) async fn rewrap(conn: &Connection, kek: &Keks) -> Result<usize, Problem> {
    let rows = db::query(
        conn,
        "SELECT version, wrapped FROM deployment_data_keys",
        vec![],
    )
    .await?;
    let mut rewrapped = 0;
    for row in &rows {
        let (version, wrapped) = (db::get_int(row, 0).unwrap_or(1), db::get_text(row, 1));
        let context = deployment_key_context(version);
        if kek.0.open(&wrapped, &context).is_some() {
            continue;
        }
        let Some(key) = unwrap(kek, version, &wrapped) else {
            eprintln!("secrets: deployment data key {version} opens under neither master key");
            return Err(Problem::internal());
        };
        db::run(
            conn,
            "UPDATE deployment_data_keys SET wrapped = ? WHERE version = ? AND wrapped = ?",
            vec![
                db::text(kek.0.seal(&key, &context)),
                db::int(version),
                db::text(wrapped),
            ],
        )
        .await?;
        rewrapped += 1;
    }
    Ok(rewrapped)
}
