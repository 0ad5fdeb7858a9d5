//! The daily scan for API keys that expire within
//! [`KEY_EXPIRY_NOTICE_SECONDS`](crate::KEY_EXPIRY_NOTICE_SECONDS): each
//! such key's owner is notified once (`key.expiring`, once per key and
//! expiry). The job runner calls [`scan_daily`] on every run; the first
//! run of a day claims the day and scans, so the scan costs one statement
//! on every other run and leaves no job of its own behind.

use gatehouse_auth::db;
use gatehouse_jobs::JobError;
use serde_json::json;
use spin_sdk::sqlite::Connection;

use crate::KEY_EXPIRY_NOTICE_SECONDS;

/// Keys one scan notifies of at most: a larger backlog is left for the
/// next day's (within the week's notice, they are still told in time).
const BATCH: i64 = 1000;

/// Scans when no run has today, in one transaction with what it
/// notifies: a scan that fails leaves the day unclaimed, for the next run.
/// Returns how many keys were told of.
pub async fn scan_daily(conn: &Connection, now: i64) -> Result<usize, JobError> {
    gatehouse_jobs::transaction(conn, async {
        let today = now.div_euclid(24 * 3600);
        let claimed = gatehouse_jobs::rows(
            conn,
            "INSERT INTO notification_scans (scan, day) VALUES ('key.expiring', ?1)
             ON CONFLICT (scan) DO UPDATE SET day = excluded.day WHERE day < excluded.day
             RETURNING day",
            vec![db::int(today)],
        )
        .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        scan(conn, now).await
    })
    .await
}

async fn scan(conn: &Connection, now: i64) -> Result<usize, JobError> {
    let keys = gatehouse_jobs::rows(
        conn,
        "SELECT k.key_id, k.org_id, k.owner_user_id, k.name, k.expires_at
         FROM api_keys k JOIN users u ON u.id = k.owner_user_id
         WHERE k.revoked_at IS NULL AND k.expires_at > ?1 AND k.expires_at <= ?2
           AND u.status <> 'inactive'
           AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.user_id = k.owner_user_id
               AND n.kind = 'key.expiring' AND n.dedupe_key = k.key_id || ':' || k.expires_at)
         ORDER BY k.expires_at LIMIT ?3",
        vec![
            db::int(now),
            db::int(now.saturating_add(KEY_EXPIRY_NOTICE_SECONDS)),
            db::int(BATCH),
        ],
    )
    .await?;
    for key in &keys {
        let key_id = db::get_text(key, 0);
        let expires_at = db::get_int(key, 4).unwrap_or_default();
        let data = json!({
            "message": "Rotate or replace it before it stops working.",
            "key_id": key_id,
            "name": db::get_text(key, 3),
            "expires_at": expires_at,
        });
        let once = format!("{key_id}:{expires_at}");
        crate::notify_once(
            conn,
            Some(&db::get_text(key, 1)),
            &db::get_text(key, 2),
            "key.expiring",
            data,
            Some(&once),
        )
        .await
        .map_err(|_| JobError::new("a database statement failed (see the log)"))?;
    }
    Ok(keys.len())
}
