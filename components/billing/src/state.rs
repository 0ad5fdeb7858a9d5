//! `GET /v1/orgs/{org}/billing` (the org's admins): the org's billing
//! state as kept from Stripe and what it grants now. Another org's is a
//! `404`, as if it did not exist.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_billing::standing::entitlements;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::{ErrorCode, Problem, Response, response};
use serde_json::json;
use spin_sdk::http::Request;

/// `GET /v1/orgs/{org}/billing`.
pub async fn get(req: Request, org: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    // The org by id or handle, as in every /v1/orgs/{org} route; another
    // org is not found, whether it exists or not.
    if !caller.acts_in(org).await? {
        return Err(Problem::new(ErrorCode::NotFound).detail("no such organization"));
    }
    caller.require_admin("billing")?;
    let rows = tenant
        .query(
            &format!(
                "SELECT (SELECT COUNT(*) FROM memberships WHERE org_id = ?1), b.*
                 FROM (SELECT 1) LEFT JOIN (
                     SELECT {}, stripe_customer_id, subscription_id, price, period_start, period_end,
                            cancel_at_period_end, subscription_synced_at, updated_at, cancel_at
                     FROM org_billing WHERE org_id = ?1) b",
                gatehouse_billing::STATE_COLUMNS
            ),
            vec![],
        )
        .await?;
    let row = rows.first().ok_or_else(Problem::internal)?;
    let used = db::get_int(row, 0).unwrap_or(0);
    let state = gatehouse_billing::state_of(row, 1);
    let settings = gatehouse_billing::settings().await?;
    let subscribed = state.status.is_some().then_some(&state);
    let now = unix_now();
    let granted = entitlements(&settings.plans, subscribed, now, settings.grace_seconds);
    let at = 6;
    let period = match (db::get_int(row, at + 3), db::get_int(row, at + 4)) {
        (Some(start), Some(end)) => json!({"start": start, "end": end}),
        _ => serde_json::Value::Null,
    };
    let body = json!({
        "org_id": tenant.org_id(),
        "plan": state.plan_key,
        "status": state.status,
        "price": db::get_opt_text(row, at + 2),
        "current_period": period,
        // Set to end at the period's end (classic billing mode), or at
        // `cancel_at` (either mode).
        "cancel_at_period_end": db::get_int(row, at + 5) == Some(1),
        "cancel_at": db::get_int(row, at + 8),
        "past_due_since": state.past_due_since,
        "seats": {
            "bought": state.seats_bought,
            "limit": granted.seat_limit,
            "used": used,
        },
        "stripe_customer_id": db::get_opt_text(row, at),
        "subscription_id": db::get_opt_text(row, at + 1),
        "entitlements": {
            "plan": granted.plan,
            "access": granted.access,
            "grace_ends_at": granted.grace_ends_at,
            "features": granted.features,
            "limits": granted.limits,
        },
        "synced_at": db::get_int(row, at + 6),
        "updated_at": db::get_int(row, at + 7),
    });
    Ok(response::json(200, &body, request_id))
}
