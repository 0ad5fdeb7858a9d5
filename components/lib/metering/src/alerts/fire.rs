//! Firing alerts, inside the caller's write transaction: the rows that
//! decide an alert fires once, its org event, and a mail to each admin.

use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use spin_sdk::sqlite::Connection;

use super::notice::{
    SPEND_MAIL, SPEND_UNUSUAL, THRESHOLD_MAIL, THRESHOLD_REACHED, spend_data, spend_mail,
    threshold_data, threshold_mail,
};
use super::spend::{self, unusual};
use super::{Crossing, Threshold};
use crate::org_events;
use crate::period::Calendar;
use crate::stats_query::spans_table;

/// Who hears of an org's alerts: its name, and its admins' addresses.
struct Audience {
    org_name: String,
    emails: Vec<String>,
}

/// The org's admins that can be mailed: active, with a verified address.
async fn audience(tenant: &Tenant<'_>) -> Result<Audience, Problem> {
    let org = tenant
        .query("SELECT name FROM orgs WHERE org_id = ?1", vec![])
        .await?;
    let rows = tenant
        .query(
            "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.org_id = ?1 AND m.role = 'admin' AND u.status = 'active'
               AND u.email_verified_at IS NOT NULL
             ORDER BY u.email",
            vec![],
        )
        .await?;
    Ok(Audience {
        org_name: org.first().map(|r| db::get_text(r, 0)).unwrap_or_default(),
        emails: rows.iter().map(|r| db::get_text(r, 0)).collect(),
    })
}

/// Queues one mail per admin, each with its `mail.send` job, on the
/// caller's connection: they exist exactly when the alert does. The job
/// runner sends them; nothing leaves during the transaction.
async fn mail(
    conn: &Connection,
    audience: &Audience,
    kind: &str,
    (subject, body): &(String, String),
    now: i64,
) -> Result<(), Problem> {
    for to in &audience.emails {
        gatehouse_mail::enqueue(conn, to, kind, subject, body, now).await?;
    }
    Ok(())
}

/// Fires each of `thresholds` that has not fired in the crossing's
/// period: records its `quota_alerts` row, a `quota.threshold_reached`
/// org event and a mail to each admin. A threshold whose row exists (an
/// earlier or a concurrent consume fired it) does nothing. Runs inside
/// the caller's write transaction, on its connection.
pub async fn fire(
    tenant: &Tenant<'_>,
    conn: &Connection,
    crossing: &Crossing<'_>,
    thresholds: &[&Threshold],
    now: i64,
) -> Result<(), Problem> {
    let mut audience = None;
    for threshold in thresholds {
        let event_id = crate::org_events::new_event_id();
        let inserted = tenant
            .exec(
                "INSERT INTO quota_alerts (org_id, quota_id, period_start, threshold, used, limit_units, event_id, fired_at)
                 VALUES (?1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![
                    db::text(crossing.quota_id),
                    db::int(crossing.period_start),
                    db::text(threshold.key()),
                    db::int(crossing.used),
                    db::int(crossing.limit),
                    db::text(&event_id),
                    db::int(now),
                ],
            )
            .await?;
        if inserted == 0 {
            continue;
        }
        let data = threshold_data(crossing, threshold);
        org_events::record(tenant, conn, &event_id, THRESHOLD_REACHED, &data, now).await?;
        if audience.is_none() {
            audience = Some(self::audience(tenant).await?);
        }
        if let Some(audience) = &audience {
            let text = threshold_mail(&audience.org_name, crossing, threshold);
            mail(conn, audience, THRESHOLD_MAIL, &text, now).await?;
            // Each admin sees it in the app too (the mail above is the
            // kind's email: notifications send none of their own).
            let notice = serde_json::json!({
                "message": text.0,
                "quota_id": crossing.quota_id,
                "event_id": event_id,
            });
            let org = tenant.org_id();
            gatehouse_notify::notify_admins(conn, org, "quota.threshold", notice, Some(&event_id))
                .await?;
        }
    }
    Ok(())
}

/// Checks today's spend of the org in `currency` against the days before
/// (the rule is [`spend`]'s) and, the first time it is unusual that day,
/// records a `spend_flags` row, a `spend.unusual` org event and a mail to
/// each admin. Days are the org's, by `calendar`. Runs inside the caller's
/// write transaction, after its spend is recorded, on its connection.
pub async fn check_unusual_spend(
    tenant: &Tenant<'_>,
    conn: &Connection,
    currency: &str,
    now: i64,
    calendar: &Calendar,
) -> Result<(), Problem> {
    let (today, trailing) = spend::days(calendar, now);
    let flagged = tenant
        .query(
            "SELECT 1 FROM spend_flags WHERE org_id = ?1 AND currency = ?2 AND day_start = ?3",
            vec![db::text(currency), db::int(today.0)],
        )
        .await?;
    if !flagged.is_empty() {
        return Ok(());
    }
    let mut days = vec![today];
    days.extend(&trailing);
    let first = trailing.last().map_or(today.0, |day| day.0);
    // The org's own spend: its rollup rows for the org entity (whose id
    // is the org's).
    let rows = tenant
        .query(
            &format!(
                "WITH {} SELECT s.start, SUM(r.amount / 1000000000), SUM(r.amount % 1000000000) FROM spans s
                 JOIN expenditure_rollup r ON r.occurred_at >= s.start AND r.occurred_at < s.stop
                 WHERE r.org_id = ?1 AND r.entity_type = 'org' AND r.entity_id = ?1 AND r.currency = ?2
                   AND r.occurred_at >= ?3 AND r.occurred_at < ?4
                 GROUP BY s.start",
                spans_table(&days)
            ),
            vec![db::text(currency), db::int(first), db::int(today.1)],
        )
        .await?;
    // Whole units and billionths are summed apart (each sum stays far
    // from overflowing) and joined here, saturating.
    let total = |start: i64| {
        rows.iter()
            .find(|r| db::get_int(r, 0) == Some(start))
            .map(|r| {
                let units = i128::from(db::get_int(r, 1).unwrap_or(0));
                let nanos = i128::from(db::get_int(r, 2).unwrap_or(0));
                let sum = units * 1_000_000_000 + nanos;
                i64::try_from(sum).unwrap_or(if sum < 0 { i64::MIN } else { i64::MAX })
            })
            .unwrap_or(0)
    };
    let history: Vec<i64> = trailing.iter().map(|day| total(day.0)).collect();
    let Some(found) = unusual(total(today.0), &history) else {
        return Ok(());
    };
    let event_id = crate::org_events::new_event_id();
    let inserted = tenant
        .exec(
            "INSERT INTO spend_flags (org_id, currency, day_start, amount, trailing_mean, event_id, flagged_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                db::text(currency),
                db::int(today.0),
                db::int(found.today),
                db::int(found.trailing_mean),
                db::text(&event_id),
                db::int(now),
            ],
        )
        .await?;
    if inserted == 0 {
        return Ok(());
    }
    let data = spend_data(currency, today, &found);
    org_events::record(tenant, conn, &event_id, SPEND_UNUSUAL, &data, now).await?;
    let audience = audience(tenant).await?;
    let text = spend_mail(&audience.org_name, currency, today, &found);
    mail(conn, &audience, SPEND_MAIL, &text, now).await
}
