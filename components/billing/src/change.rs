//! `POST /v1/billing/subscription` (org admins): the org's subscription
//! changed in place, as Stripe's Customer Portal cannot change one that
//! has a seat price beside its plan's (or usage-based prices): another
//! plan, another number of seats, or set to end at the period's end (or
//! not). The items are changed through Stripe's API with prorations, and
//! Stripe's answer is taken at once; its event, when it comes, finds the
//! same.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_billing::plans::Plan;
use gatehouse_billing::stripe::Stripe;
use gatehouse_billing::subscription;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;

use crate::checkout::{LineItem, check_seats, idempotency_key, invalid, line_items, price_ids};
use crate::take;

/// `POST /v1/billing/subscription`'s body: what to change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Another plan's key.
    plan: Option<String>,
    /// The seats wanted, included ones counted.
    seats: Option<i64>,
    /// End at the period's end (or no longer).
    cancel_at_period_end: Option<bool>,
}

impl Validate for Change {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.plan.is_none() && self.seats.is_none() && self.cancel_at_period_end.is_none() {
            errors.push(FieldError::new(
                "",
                "nothing_to_change",
                "name a plan, seats or cancel_at_period_end",
            ));
        }
        check_seats(self.seats, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `POST /v1/billing/subscription`.
pub async fn change(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("billing")?;
    let retry_key = idempotency_key(&req)?;
    let body: Change = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let settings = gatehouse_billing::settings().await?;
    let tenant = caller.tenant()?;
    let rows = tenant
        .query(
            "SELECT subscription_id, status, (SELECT COUNT(*) FROM memberships WHERE org_id = ?1)
             FROM org_billing WHERE org_id = ?1",
            vec![],
        )
        .await?;
    let row = rows.first();
    let id = row.and_then(|r| db::get_opt_text(r, 0));
    let live = row
        .and_then(|r| db::get_opt_text(r, 1))
        .is_some_and(|s| gatehouse_billing::standing::live(&s));
    let (Some(id), true) = (id, live) else {
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("the organization has no subscription to change: start one with POST /v1/billing/checkout"));
    };
    let used = row.and_then(|r| db::get_int(r, 2)).unwrap_or(0);
    let stripe = Stripe::open().await?;
    let current = stripe
        .get(&format!("/v1/subscriptions/{id}"))
        .await
        .map_err(|f| f.problem("read the subscription"))?;
    let now_sub = subscription::read(&current, &settings.plans).map_err(|_| Problem::internal())?;
    let from = now_sub
        .plan_key
        .as_deref()
        .and_then(|k| settings.plans.get(k));
    let plan_key = body
        .plan
        .as_deref()
        .or(now_sub.plan_key.as_deref())
        .ok_or_else(|| {
            Problem::new(ErrorCode::Conflict)
                .detail("the subscription's price is none of this deployment's plans: name a plan")
        })?;
    let to = settings
        .plans
        .get(plan_key)
        .ok_or_else(|| invalid("/plan", "unknown_plan", "there is no plan with this key"))?;
    // Without seats named, a change of plan keeps the seats the org has.
    let held = from
        .and_then(|p| p.seats.as_ref())
        .map(|s| s.included + now_sub.seats_bought);
    let (seats, wanted) = line_items(to, body.seats.or(held))?;
    if to.seats.is_some() && seats < used {
        return Err(Problem::new(ErrorCode::Conflict).detail(format!(
            "{used} members hold seats: remove members before going down to {seats} seats"
        )));
    }
    let keys: Vec<&str> = wanted.iter().map(|(k, _)| k.as_str()).collect();
    let ids = price_ids(&stripe, &keys).await?;
    let mut params = items(&current, from, to, &wanted, &ids);
    params.push(("proration_behavior".into(), "create_prorations".into()));
    if let Some(cancel) = body.cancel_at_period_end {
        params.push(("cancel_at_period_end".into(), cancel.to_string()));
    }
    let org = tenant.org_id().to_string();
    let key = match retry_key {
        Some(key) => gatehouse_billing::stripe::caller_key("change", &org, &key),
        None => db::new_id("gatehouse-change-"),
    };
    let read_at = unix_now();
    let changed = stripe
        .post(&format!("/v1/subscriptions/{id}"), &params, &key)
        .await
        .map_err(|f| {
            if f.is_idempotency_conflict() {
                gatehouse_billing::stripe::key_reused()
            } else {
                f.problem("change the subscription")
            }
        })?;
    take::current(&changed, read_at).await?;
    let answer = json!({
        "subscription_id": id,
        "plan": to.key,
        "seats": to.seats.as_ref().map(|_| seats),
        "status": changed["status"],
        "cancel_at_period_end": changed["cancel_at_period_end"],
        "cancel_at": changed["cancel_at"],
    });
    Ok(response::json(200, &answer, request_id))
}

/// The `items[…]` parameters that turn the subscription's items into
/// `wanted` (lookup keys with quantities, their price ids in `ids`): the
/// plan's item takes the new plan's price; the seat item its new
/// quantity (removed at none); metered items the new plan no longer has
/// are removed; what the new plan adds is added. Items that are none of
/// the old plan's are left as they are.
fn items(
    current: &Value,
    from: Option<&Plan>,
    to: &Plan,
    wanted: &[LineItem],
    ids: &[String],
) -> Vec<(String, String)> {
    let existing: Vec<(&str, &str)> = current
        .pointer("/items/data")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    Some((
                        item["id"].as_str()?,
                        item.pointer("/price/lookup_key").and_then(Value::as_str)?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let old_plan = from.and_then(|p| p.price.as_deref());
    let old_seat = from
        .and_then(|p| p.seats.as_ref())
        .and_then(|s| s.price.as_deref());
    let new_seat = to.seats.as_ref().and_then(|s| s.price.as_deref());
    let price_of = |key: &str| {
        wanted
            .iter()
            .zip(ids)
            .find(|((k, _), _)| k == key)
            .map(|((_, quantity), id)| (id.clone(), *quantity))
    };
    let mut params = Vec::new();
    let mut covered: Vec<&str> = Vec::new();
    let mut n = 0;
    let mut push = |params: &mut Vec<(String, String)>, fields: Vec<(&str, String)>| {
        for (field, value) in fields {
            params.push((format!("items[{n}][{field}]"), value));
        }
        n += 1;
    };
    for (item, lookup) in existing {
        if Some(lookup) == old_plan {
            let new_plan = to.price.as_deref().unwrap_or_default();
            if let Some((price, _)) = price_of(new_plan) {
                covered.push(new_plan);
                push(
                    &mut params,
                    vec![("id", item.to_string()), ("price", price)],
                );
            }
        } else if Some(lookup) == old_seat {
            match new_seat.and_then(|seat| price_of(seat).map(|p| (seat, p))) {
                Some((seat, (price, quantity))) => {
                    covered.push(seat);
                    let quantity = quantity.unwrap_or(1).to_string();
                    push(
                        &mut params,
                        vec![
                            ("id", item.to_string()),
                            ("price", price),
                            ("quantity", quantity),
                        ],
                    );
                }
                None => push(
                    &mut params,
                    vec![("id", item.to_string()), ("deleted", "true".into())],
                ),
            }
        } else if from.is_some_and(|p| p.metered.iter().any(|m| m.price.as_deref() == Some(lookup)))
        {
            if price_of(lookup).is_some() {
                covered.push(lookup);
            } else {
                push(
                    &mut params,
                    vec![("id", item.to_string()), ("deleted", "true".into())],
                );
            }
        }
    }
    for ((key, quantity), id) in wanted.iter().zip(ids) {
        if covered.contains(&key.as_str()) {
            continue;
        }
        let mut fields = vec![("price", id.clone())];
        if let Some(quantity) = quantity {
            fields.push(("quantity", quantity.to_string()));
        }
        push(&mut params, fields);
    }
    params
}
