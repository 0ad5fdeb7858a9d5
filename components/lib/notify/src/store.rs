//! Recording a notification with its job, and reading the preferences
//! that decide its channels. Database error text goes to the log only.

use gatehouse_auth::db;
use gatehouse_http::Problem;
use gatehouse_jobs::NewJob;
use serde_json::{Value, json};
use spin_sdk::sqlite::{Connection, RowResult};

use crate::DELIVER_JOB;
use crate::kinds::kind;
use crate::prefs::Layers;

/// Notifies `user_id` of `kind` with `data` (a JSON object of plain
/// fields; `message` is shown as text), about `org_id` or about their
/// account (`None`). Records the notification and queues its delivery job
/// on `conn`, together or not at all; nothing is sent before the job runs.
pub async fn notify(
    conn: &Connection,
    org_id: Option<&str>,
    user_id: &str,
    kind: &str,
    data: Value,
) -> Result<(), Problem> {
    notify_once(conn, org_id, user_id, kind, data, None)
        .await
        .map(|_| ())
}

/// [`notify`] after a change already made and kept: a notification that
/// cannot be queued is logged, and never turns the change's answer into
/// a failure (a user who just turned on MFA must still see their recovery
/// codes).
pub async fn notify_after(
    conn: &Connection,
    org_id: Option<&str>,
    user_id: &str,
    kind: &str,
    data: Value,
) {
    if notify(conn, org_id, user_id, kind, data).await.is_err() {
        eprintln!("notify: the `{kind}` notification of {user_id} could not be queued");
    }
}

/// [`notify`], once per user, kind and `dedupe` key when one is given
/// (an API key's expiry, a subscription's failed payment): false when that
/// notification exists already.
pub async fn notify_once(
    conn: &Connection,
    org_id: Option<&str>,
    user_id: &str,
    kind_name: &str,
    data: Value,
    dedupe: Option<&str>,
) -> Result<bool, Problem> {
    if kind(kind_name).is_none() {
        eprintln!("notify: `{kind_name}` is not a notification kind");
        return Err(Problem::internal());
    }
    let id = db::new_sorted_id("ntf_");
    let now = gatehouse_http::idempotency::unix_now();
    let data = if data.is_object() { data } else { json!({}) };
    db::run(conn, "SAVEPOINT notify", vec![]).await?;
    let written = write(conn, &id, org_id, user_id, kind_name, &data, dedupe, now).await;
    let end = if written.is_ok() {
        "RELEASE notify"
    } else {
        "ROLLBACK TO notify"
    };
    let ended = db::run(conn, end, vec![]).await;
    if written.is_err() {
        // A savepoint rolled back to stays open until released.
        let _ = db::run(conn, "RELEASE notify", vec![]).await;
    }
    let written = written?;
    ended?;
    Ok(written)
}

#[allow(clippy::too_many_arguments)]
async fn write(
    conn: &Connection,
    id: &str,
    org_id: Option<&str>,
    user_id: &str,
    kind: &str,
    data: &Value,
    dedupe: Option<&str>,
    now: i64,
) -> Result<bool, Problem> {
    let inserted = db::query(
        conn,
        "INSERT INTO notifications (notification_id, user_id, org_id, kind, data, dedupe_key, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING notification_id",
        vec![
            db::text(id),
            db::text(user_id),
            db::opt_text(org_id.map(str::to_string)),
            db::text(kind),
            db::text(data.to_string()),
            db::opt_text(dedupe.map(str::to_string)),
            db::int(now),
        ],
    )
    .await?;
    if inserted.is_empty() {
        return Ok(false);
    }
    let job = NewJob {
        kind: DELIVER_JOB,
        payload: json!({ "notification_id": id }),
        idempotency_key: id,
        run_at: now,
        max_attempts: gatehouse_jobs::policy().await.max_attempts,
    };
    gatehouse_jobs::enqueue(conn, &job, now)
        .await
        .map_err(|_| Problem::internal())?;
    Ok(true)
}

/// [`notify_once`] for each admin of `org_id`.
pub async fn notify_admins(
    conn: &Connection,
    org_id: &str,
    kind: &str,
    data: Value,
    dedupe: Option<&str>,
) -> Result<(), Problem> {
    let admins = db::query(
        conn,
        "SELECT user_id FROM memberships WHERE org_id = ? AND role = 'admin' ORDER BY user_id",
        vec![db::text(org_id)],
    )
    .await?;
    for row in &admins {
        let admin = db::get_text(row, 0);
        notify_once(conn, Some(org_id), &admin, kind, data.clone(), dedupe).await?;
    }
    Ok(())
}

fn settings(rows: &[RowResult]) -> Value {
    rows.first()
        .and_then(|r| db::get_json(r, 0))
        .unwrap_or_else(|| json!({}))
}

/// The preferences documents that decide `user_id`'s notifications about
/// `org_id` (or about their account, with no org layers).
pub async fn layers(
    conn: &Connection,
    org_id: Option<&str>,
    user_id: &str,
) -> Result<Layers, Problem> {
    // A user's own settings follow them into every org (org_id NULL).
    let user = db::query(
        conn,
        "SELECT settings FROM preferences WHERE scope = 'user' AND scope_id = ? AND org_id IS NULL",
        vec![db::text(user_id)],
    )
    .await?;
    let mut layers = Layers {
        user: settings(&user),
        ..Layers::default()
    };
    let Some(org_id) = org_id else {
        return Ok(layers);
    };
    // An org's defaults are its members': one that invites a person does
    // not choose how that person is told.
    let org = db::query(
        conn,
        "SELECT settings FROM preferences WHERE org_id = ?1 AND scope = 'org' AND scope_id = ?1
           AND EXISTS (SELECT 1 FROM memberships WHERE org_id = ?1 AND user_id = ?2)",
        vec![db::text(org_id), db::text(user_id)],
    )
    .await?;
    layers.org = settings(&org);
    // Each team the user is in and its ancestors, with how far up each
    // is; the depth bound keeps a damaged tree from looping.
    let teams = db::query(
        conn,
        "WITH RECURSIVE up(team_id, parent_team_id, d) AS (
             SELECT t.team_id, t.parent_team_id, 0 FROM team_members m JOIN teams t ON t.team_id = m.team_id
             WHERE m.org_id = ?1 AND m.user_id = ?2 AND t.org_id = ?1
             UNION ALL
             SELECT t.team_id, t.parent_team_id, up.d + 1 FROM teams t JOIN up ON t.team_id = up.parent_team_id
             WHERE t.org_id = ?1 AND up.d < 32)
         SELECT up.d, p.settings FROM up JOIN preferences p
           ON p.scope = 'team' AND p.scope_id = up.team_id AND p.org_id = ?1",
        vec![db::text(org_id), db::text(user_id)],
    )
    .await?;
    layers.teams = teams
        .iter()
        .filter_map(|r| {
            let d = u32::try_from(db::get_int(r, 0)?).ok()?;
            Some((d, db::get_json(r, 1)?))
        })
        .collect();
    Ok(layers)
}
