//! Taking what Stripe holds now into the org's billing row: a
//! subscription read from Stripe's API (for an event, or as Stripe
//! answered a change), and a customer's active entitlements.
//!
//! Each read is stamped with the time it began; a row is written only by
//! a read that began no earlier than the one it holds, so of two reads
//! racing (a retried handler job beside another) the older never lands
//! last. An org's live subscription (active, trialing, past due) is never
//! replaced by another one that is not live; when the row's subscription
//! ends, the customer's other live subscription, if Stripe has one, is
//! taken instead. The plan's quotas, the grace period's end and the usage
//! reports follow in the same transaction.

use gatehouse_auth::db;
use gatehouse_billing::plan_quotas;
use gatehouse_billing::standing::{LIVE_SQL as LIVE, live};
use gatehouse_billing::stripe::{Failure, Stripe};
use gatehouse_billing::subscription::{self, Subscription};
use gatehouse_http::Problem;
use gatehouse_http::idempotency::unix_now;
use serde_json::Value;
use spin_sdk::sqlite::{Connection, Value as Sql};

/// The subscription `id` as Stripe has it now, taken into its org's row.
pub async fn subscription(id: &str) -> Result<&'static str, Problem> {
    let stripe = Stripe::open().await?;
    let read_at = unix_now();
    let object = match stripe.get(&format!("/v1/subscriptions/{id}")).await {
        Ok(object) => object,
        Err(f @ Failure::Refused { .. }) if f.is_missing() => {
            eprintln!("billing: Stripe has no subscription {id}");
            return Ok("ignored");
        }
        Err(f) => return Err(f.problem("read a subscription")),
    };
    let outcome = current(&object, read_at).await?;
    if outcome == "ended" {
        return successor(&stripe, &object, read_at).await;
    }
    Ok(outcome)
}

/// A subscription object Stripe answered at `read_at` (a read, or the
/// answer to a change), taken into its org's row: `applied`, `stale`,
/// `ended` (applied, and it can no longer charge), `other_subscription`
/// or `unknown_customer`.
pub async fn current(object: &Value, read_at: i64) -> Result<&'static str, Problem> {
    let settings = gatehouse_billing::settings().await?;
    let Ok(sub) = subscription::read(object, &settings.plans) else {
        return Ok("ignored");
    };
    let conn = db::open().await?;
    let Some(org_id) = org_of(&conn, &sub.customer).await? else {
        eprintln!(
            "billing: subscription {} of customer {} of no org",
            sub.id, sub.customer
        );
        return Ok("unknown_customer");
    };
    let outcome = db::transaction(&conn, write(&conn, &org_id, &sub, read_at)).await?;
    Ok(match outcome {
        "applied" if !live(&sub.status) => "ended",
        other => other,
    })
}

/// After the row's subscription ended: the customer's live one, if any.
async fn successor(stripe: &Stripe, ended: &Value, read_at: i64) -> Result<&'static str, Problem> {
    let Some(customer) = ended.get("customer").and_then(subscription::id_of) else {
        return Ok("applied");
    };
    let listed = crate::customer::subscriptions(stripe, customer).await?;
    let next = listed
        .iter()
        .filter(|s| s["status"].as_str().is_some_and(live))
        .max_by_key(|s| s["created"].as_i64().unwrap_or(0));
    match next {
        Some(next) => current(next, read_at).await,
        None => Ok("applied"),
    }
}

async fn org_of(conn: &Connection, customer: &str) -> Result<Option<String>, Problem> {
    let rows = db::query(
        conn,
        "SELECT org_id FROM org_billing WHERE stripe_customer_id = ?",
        vec![db::text(customer)],
    )
    .await?;
    Ok(rows.first().map(|row| db::get_text(row, 0)))
}

/// Writes `sub`, read at `read_at`, to the org's row, inside the caller's
/// transaction, with what follows from it.
async fn write(
    conn: &Connection,
    org_id: &str,
    sub: &Subscription,
    read_at: i64,
) -> Result<&'static str, Problem> {
    let (start, end) = match sub.period {
        Some((start, end)) => (db::int(start), db::int(end)),
        None => (Sql::Null, Sql::Null),
    };
    let changed = db::exec(
        conn,
        &format!(
            "UPDATE org_billing SET subscription_id = ?2, plan_key = ?3, price = ?4, status = ?5, seats_bought = ?6,
                 period_start = ?7, period_end = ?8, cancel_at_period_end = ?9, cancel_at = ?10,
                 past_due_since = CASE WHEN ?5 <> 'past_due' THEN NULL
                                       WHEN status = 'past_due' AND subscription_id = ?2 THEN COALESCE(past_due_since, ?11)
                                       ELSE ?11 END,
                 subscription_synced_at = ?11, updated_at = ?12
             WHERE org_id = ?1 AND (subscription_synced_at IS NULL OR subscription_synced_at <= ?11)
               AND NOT (subscription_id IS NOT NULL AND subscription_id <> ?2 AND status IN {LIVE} AND ?5 NOT IN {LIVE})"
        ),
        vec![
            db::text(org_id),
            db::text(&sub.id),
            db::opt_text(sub.plan_key.clone()),
            db::opt_text(sub.price.clone()),
            db::text(&sub.status),
            db::int(sub.seats_bought),
            start,
            end,
            db::int(i64::from(sub.cancel_at_period_end)),
            sub.cancel_at.map_or(Sql::Null, db::int),
            db::int(read_at),
            db::int(unix_now()),
        ],
    )
    .await?;
    if changed == 0 {
        // Either a newer read is there, or the org's live subscription is
        // another one.
        return Ok(if newer_there(conn, org_id, read_at).await? {
            "stale"
        } else {
            "other_subscription"
        });
    }
    let now = unix_now();
    plan_quotas::sync(conn, org_id, now).await?;
    // A plan with metered usage starts (or restarts) the org's chain of
    // usage reports to Stripe.
    gatehouse_billing::usage_report::start(conn, org_id, sub.plan_key.as_deref(), now).await?;
    if sub.status == "past_due" {
        grace_end(conn, org_id).await?;
        payment_failed(conn, org_id, &sub.id).await?;
    }
    Ok("applied")
}

async fn newer_there(conn: &Connection, org_id: &str, read_at: i64) -> Result<bool, Problem> {
    let rows = db::query(
        conn,
        "SELECT 1 FROM org_billing WHERE org_id = ? AND subscription_synced_at > ?",
        vec![db::text(org_id), db::int(read_at)],
    )
    .await?;
    Ok(!rows.is_empty())
}

/// Queues the plan quota job due when the org's grace runs out, by the
/// `past_due_since` the row now holds.
async fn grace_end(conn: &Connection, org_id: &str) -> Result<(), Problem> {
    let rows = db::query(
        conn,
        "SELECT past_due_since FROM org_billing WHERE org_id = ?",
        vec![db::text(org_id)],
    )
    .await?;
    let Some(since) = rows.first().and_then(|r| db::get_int(r, 0)) else {
        return Ok(());
    };
    let grace = gatehouse_billing::settings().await?.grace_seconds;
    plan_quotas::queue(conn, org_id, since.saturating_add(grace)).await
}

/// Tells the org's admins that a payment failed: once each time the
/// subscription turns past_due (by the `past_due_since` the row holds), however
/// often Stripe's events say so.
async fn payment_failed(
    conn: &Connection,
    org_id: &str,
    subscription: &str,
) -> Result<(), Problem> {
    let rows = db::query(
        conn,
        "SELECT past_due_since FROM org_billing WHERE org_id = ?",
        vec![db::text(org_id)],
    )
    .await?;
    let Some(since) = rows.first().and_then(|r| db::get_int(r, 0)) else {
        return Ok(());
    };
    let data = serde_json::json!({
        "message": "The organization's subscription is past due: update its payment method before the grace period ends.",
        "subscription_id": subscription,
        "past_due_since": since,
    });
    let once = format!("{subscription}:{since}");
    gatehouse_notify::notify_admins(conn, org_id, "payment.failed", data, Some(&once)).await
}

/// The most active entitlements read (Stripe pages them 100 at a time).
const MOST_ENTITLEMENTS: usize = 1_000;

/// The customer's active entitlements as Stripe has them now, taken into
/// its org's row.
pub async fn features(customer: &str) -> Result<&'static str, Problem> {
    let stripe = Stripe::open().await?;
    let read_at = unix_now();
    let mut features: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query =
            format!("/v1/entitlements/active_entitlements?customer={customer}&limit=100");
        if let Some(last) = &after {
            query.push_str(&format!("&starting_after={last}"));
        }
        let page = match stripe.get(&query).await {
            Ok(page) => page,
            Err(f @ Failure::Refused { .. }) if f.is_missing() => return Ok("unknown_customer"),
            Err(f) => return Err(f.problem("read the customer's entitlements")),
        };
        let items = page["data"].as_array().cloned().unwrap_or_default();
        features.extend(
            items
                .iter()
                .filter_map(|e| e["lookup_key"].as_str().map(str::to_string)),
        );
        after = items
            .last()
            .and_then(|e| e["id"].as_str())
            .map(str::to_string);
        if page["has_more"] != true || after.is_none() || features.len() >= MOST_ENTITLEMENTS {
            break;
        }
    }
    let text = serde_json::to_string(&features).map_err(|_| Problem::internal())?;
    let conn = db::open().await?;
    let changed = db::exec(
        &conn,
        "UPDATE org_billing SET stripe_features = ?2, features_synced_at = ?3, updated_at = ?4
         WHERE stripe_customer_id = ?1 AND (features_synced_at IS NULL OR features_synced_at <= ?3)",
        vec![
            db::text(customer),
            db::text(text),
            db::int(read_at),
            db::int(unix_now()),
        ],
    )
    .await?;
    Ok(if changed == 1 { "applied" } else { "stale" })
}
