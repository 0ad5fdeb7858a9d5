//! Stripe's events, handed over by the webhooks component's handler jobs
//! (`webhook_handlers` names this route, `http://billing.spin.internal/
//! stripe/events`, for the source `billing_webhook_source`): each
//! delivery is signed as Standard Webhooks with `webhook_handler_secret`
//! and carries the Stripe event as received and verified at ingest.
//!
//! Events arrive late, twice and out of order. A subscription in an event
//! is taken only when the event is newer than the one the org's row was
//! last taken from; one of the same second is in doubt, and so are the
//! events that name a subscription without carrying it (a completed
//! checkout, a paid or failed invoice): then the subscription is fetched
//! from Stripe's API, which is current by definition. Any order of the
//! same events ends in the same state. A `2xx` tells the job it is done;
//! Stripe not answering a fetch is a `503`, and the job tries again.

use gatehouse_auth::db;
use gatehouse_billing::plan_quotas;
use gatehouse_billing::subscription::{self, Subscription, id_of};
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json::read_body;
use gatehouse_http::{ErrorCode, Problem, Response, response};
use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;
use webhooks_core::{HeaderFn, Provider, VerifyConfig, verify};

use gatehouse_billing::stripe::{Failure, Stripe};

/// The most of a delivery read (the webhooks component stores at most
/// 1 MiB of a payload, sent here as JSON and as base64).
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// `POST /stripe/events` (reached as `http://billing.spin.internal`).
pub async fn receive(req: Request, request_id: &str) -> Result<Response, Problem> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body, BODY_LIMIT).await?;
    let secret = spin_sdk::variables::get("webhook_handler_secret")
        .await
        .unwrap_or_default();
    let headers = HeaderFn(|name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    if secret.trim().is_empty()
        || verify(
            Provider::Standard,
            &VerifyConfig::with_secrets([secret.trim()]),
            &headers,
            &bytes,
            unix_now(),
        )
        .is_err()
    {
        return Err(Problem::new(ErrorCode::WebhookVerificationFailed)
            .detail("a delivery to a handler must be signed with webhook_handler_secret"));
    }
    let envelope: Value = serde_json::from_slice(&bytes).map_err(|_| {
        Problem::new(ErrorCode::InvalidJson).detail("the delivery is not a JSON handler message")
    })?;
    trusted(&envelope).await?;
    let event = &envelope["payload"];
    let outcome = apply(event).await?;
    Ok(response::json(
        200,
        &json!({"event": event["id"], "type": event["type"], "outcome": outcome}),
        request_id,
    ))
}

/// Refuses a delivery that is not a Stripe event from the deployment's
/// own Stripe source: any org may make a Stripe source, and an event from
/// one it controls must not change what anybody pays for.
async fn trusted(envelope: &Value) -> Result<(), Problem> {
    let source = spin_sdk::variables::get("billing_webhook_source")
        .await
        .unwrap_or_default();
    let source = source.trim();
    if envelope["provider"] != "stripe" || source.is_empty() || envelope["source_id"] != source {
        eprintln!(
            "billing: refused an event from source {} ({}): billing_webhook_source is {source:?}",
            envelope["source_id"], envelope["provider"]
        );
        return Err(Problem::new(ErrorCode::Forbidden)
            .detail("only the Stripe source named by billing_webhook_source changes billing"));
    }
    Ok(())
}

/// What became of an event, for the job's record.
async fn apply(event: &Value) -> Result<&'static str, Problem> {
    let kind = event["type"].as_str().unwrap_or_default();
    let created = event["created"].as_i64().unwrap_or(0);
    let object = &event["data"]["object"];
    match kind {
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted"
        | "customer.subscription.paused"
        | "customer.subscription.resumed"
        | "customer.subscription.pending_update_applied"
        | "customer.subscription.pending_update_expired" => {
            take_subscription(object.clone(), created).await
        }
        "checkout.session.completed" => match object.get("subscription").and_then(id_of) {
            Some(id) => fetch_subscription(id, created).await,
            None => Ok("ignored"),
        },
        "invoice.paid" | "invoice.payment_failed" | "invoice.payment_succeeded" => {
            match invoice_subscription(object) {
                Some(id) => fetch_subscription(&id, created).await,
                None => Ok("ignored"),
            }
        }
        "entitlements.active_entitlement_summary.updated" => take_features(object, created).await,
        _ => Ok("ignored"),
    }
}

/// The subscription an invoice is for, in either of Stripe's shapes.
fn invoice_subscription(invoice: &Value) -> Option<String> {
    invoice
        .get("subscription")
        .and_then(id_of)
        .or_else(|| {
            invoice
                .pointer("/parent/subscription_details/subscription")
                .and_then(id_of)
        })
        .map(str::to_string)
}

/// Where the org's row stands: the org, its subscription, status and the
/// time it was last taken at.
struct Stored {
    org_id: String,
    subscription_id: Option<String>,
    status: Option<String>,
    synced_at: Option<i64>,
}

async fn stored(conn: &Connection, customer: &str) -> Result<Option<Stored>, Problem> {
    let rows = db::query(
        conn,
        "SELECT org_id, subscription_id, status, subscription_synced_at FROM org_billing WHERE stripe_customer_id = ?",
        vec![db::text(customer)],
    )
    .await?;
    Ok(rows.first().map(|row| Stored {
        org_id: db::get_text(row, 0),
        subscription_id: db::get_opt_text(row, 1),
        status: db::get_opt_text(row, 2),
        synced_at: db::get_int(row, 3),
    }))
}

/// A subscription carried by an event created at `created`.
async fn take_subscription(object: Value, created: i64) -> Result<&'static str, Problem> {
    let settings = gatehouse_billing::settings().await?;
    let Ok(sub) = subscription::read(&object, &settings.plans) else {
        return Ok("ignored");
    };
    let conn = db::open().await?;
    let Some(row) = stored(&conn, &sub.customer).await? else {
        eprintln!("billing: an event for customer {} of no org", sub.customer);
        return Ok("unknown_customer");
    };
    match row.synced_at {
        Some(at) if at > created => Ok("stale"),
        // Two events of the same second: which is newer is unknown.
        Some(at) if at == created => fetch_subscription(&sub.id, created).await,
        _ => write(&conn, &row, &sub, created, false).await,
    }
}

/// The subscription `id` as Stripe has it now, taken for an event created
/// at `created`.
async fn fetch_subscription(id: &str, created: i64) -> Result<&'static str, Problem> {
    let stripe = Stripe::open().await?;
    let object = match stripe.get(&format!("/v1/subscriptions/{id}")).await {
        Ok(object) => object,
        Err(f @ Failure::Refused { .. }) if f.is_missing() => {
            eprintln!("billing: Stripe has no subscription {id}");
            return Ok("ignored");
        }
        Err(f) => return Err(f.problem("read a subscription")),
    };
    let settings = gatehouse_billing::settings().await?;
    let Ok(sub) = subscription::read(&object, &settings.plans) else {
        return Ok("ignored");
    };
    let conn = db::open().await?;
    let Some(row) = stored(&conn, &sub.customer).await? else {
        eprintln!(
            "billing: subscription {id} of customer {} of no org",
            sub.customer
        );
        return Ok("unknown_customer");
    };
    write(&conn, &row, &sub, created, true).await
}

fn live(status: Option<&str>) -> bool {
    matches!(status, Some("active" | "trialing" | "past_due"))
}

/// Writes `sub` to the org's row, if it is still newer than what the row
/// holds (the statement checks again: another event may have been taken
/// meanwhile). `current`: fetched from Stripe now, so newer than any
/// event up to `created`.
async fn write(
    conn: &Connection,
    row: &Stored,
    sub: &Subscription,
    created: i64,
    current: bool,
) -> Result<&'static str, Problem> {
    // A late event of an org's former subscription leaves its live one be.
    let other = row
        .subscription_id
        .as_deref()
        .is_some_and(|id| id != sub.id);
    if other && live(row.status.as_deref()) && !live(Some(&sub.status)) {
        return Ok("other_subscription");
    }
    let (start, end) = match sub.period {
        Some((start, end)) => (db::int(start), db::int(end)),
        None => (spin_sdk::sqlite::Value::Null, spin_sdk::sqlite::Value::Null),
    };
    // The row, the plan's quotas that follow it and the job that ends a
    // grace period change together.
    let taking = async {
        let changed = db::exec(
            conn,
            "UPDATE org_billing SET subscription_id = ?2, plan_key = ?3, price = ?4, status = ?5, seats_bought = ?6,
                 period_start = ?7, period_end = ?8, cancel_at_period_end = ?9,
                 past_due_since = CASE WHEN ?5 <> 'past_due' THEN NULL
                                       WHEN status = 'past_due' AND subscription_id = ?2 THEN COALESCE(past_due_since, ?10)
                                       ELSE ?10 END,
                 subscription_synced_at = MAX(COALESCE(subscription_synced_at, ?10), ?10),
                 updated_at = ?11
             WHERE org_id = ?1 AND (?12 OR subscription_synced_at IS NULL OR subscription_synced_at < ?10)",
            vec![
                db::text(&row.org_id),
                db::text(&sub.id),
                db::opt_text(sub.plan_key.clone()),
                db::opt_text(sub.price.clone()),
                db::text(&sub.status),
                db::int(sub.seats_bought),
                start,
                end,
                db::int(i64::from(sub.cancel_at_period_end)),
                db::int(created),
                db::int(unix_now()),
                db::int(i64::from(current)),
            ],
        )
        .await?;
        if changed == 0 {
            return Ok("stale");
        }
        plan_quotas::sync(conn, &row.org_id, unix_now()).await?;
        // A plan with metered usage starts (or restarts) the org's chain of
        // usage reports to Stripe.
        let plan = sub.plan_key.as_deref();
        gatehouse_billing::usage_report::start(conn, &row.org_id, plan, unix_now()).await?;
        if sub.status == "past_due" {
            grace_end(conn, &row.org_id).await?;
        }
        Ok("applied")
    };
    db::transaction(conn, taking).await
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

/// Stripe's active entitlements for a customer, from an event created at
/// `created`: taken when newer than the ones stored.
async fn take_features(summary: &Value, created: i64) -> Result<&'static str, Problem> {
    let Some(customer) = summary.get("customer").and_then(id_of) else {
        return Ok("ignored");
    };
    let features: Vec<&str> = summary
        .pointer("/entitlements/data")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|e| e.get("lookup_key").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let text = serde_json::to_string(&features).map_err(|_| Problem::internal())?;
    let conn = db::open().await?;
    let changed = db::exec(
        &conn,
        "UPDATE org_billing SET stripe_features = ?2, features_synced_at = ?3, updated_at = ?4
         WHERE stripe_customer_id = ?1 AND (features_synced_at IS NULL OR features_synced_at <= ?3)",
        vec![
            db::text(customer),
            db::text(text),
            db::int(created),
            db::int(unix_now()),
        ],
    )
    .await?;
    Ok(if changed == 1 { "applied" } else { "stale" })
}
