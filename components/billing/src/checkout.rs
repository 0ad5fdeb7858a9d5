//! `POST /v1/billing/checkout` and `POST /v1/billing/portal` (org
//! admins): a Stripe Checkout Session that subscribes the org to a plan
//! with a number of seats, and a Customer Portal session where its admins
//! change or cancel what they pay for. Both answer the URL to send the
//! admin's browser to; what they change reaches Gatehouse as Stripe's
//! events ([`crate::sync`]).

use gatehouse_auth::caller::OrgCaller;
use gatehouse_billing::plans::Plan;
use gatehouse_billing::standing::{self, live};
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;

use crate::customer::{self, ORG_METADATA};
use gatehouse_billing::stripe::{Failure, Stripe};

/// `POST /v1/billing/checkout`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkout {
    /// The plan's key.
    plan: String,
    /// The seats wanted, included ones counted; default: the included ones.
    seats: Option<i64>,
    /// Where Stripe sends the browser after paying.
    success_url: String,
    /// Where Stripe sends the browser when the admin turns back.
    cancel_url: String,
}

impl Validate for Checkout {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (pointer, url) in [
            ("/success_url", &self.success_url),
            ("/cancel_url", &self.cancel_url),
        ] {
            if !web_url(url) {
                errors.push(FieldError::new(
                    pointer,
                    "invalid_url",
                    "an absolute http or https URL of at most 2048 characters",
                ));
            }
        }
        check_seats(self.seats, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A price's lookup key and its quantity (none for a metered price).
pub(crate) type LineItem = (String, Option<i64>);

/// `POST /v1/billing/portal`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Portal {
    /// Where the portal's back link leads.
    return_url: String,
}

impl Validate for Portal {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        if web_url(&self.return_url) {
            Ok(())
        } else {
            Err(vec![FieldError::new(
                "/return_url",
                "invalid_url",
                "an absolute http or https URL of at most 2048 characters",
            )])
        }
    }
}

fn web_url(url: &str) -> bool {
    url.len() <= 2048
        && (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub(crate) fn invalid(pointer: &str, code: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the request body has invalid fields")
        .errors(vec![FieldError::new(pointer, code, message)])
}

/// A `seats` field, when given, is from 1 to 100,000.
pub(crate) fn check_seats(seats: Option<i64>, errors: &mut Vec<FieldError>) {
    if seats.is_some_and(|s| !(1..=100_000).contains(&s)) {
        errors.push(FieldError::new(
            "/seats",
            "out_of_range",
            "seats is from 1 to 100000",
        ));
    }
}

/// The line items of `plan` with `seats` in all: the plan's price once,
/// its seat price for each seat beyond the included ones, and each of its
/// metered prices without a quantity (Stripe bills those by the usage
/// reported to their meters, and refuses a quantity on them).
pub(crate) fn line_items(plan: &Plan, seats: Option<i64>) -> Result<(i64, Vec<LineItem>), Problem> {
    let Some(price) = plan.price.clone() else {
        return Err(invalid(
            "/plan",
            "not_for_sale",
            "this plan is not bought: it is what organizations have without a subscription",
        ));
    };
    let mut items = vec![(price, Some(1))];
    let wanted = match &plan.seats {
        None => seats.unwrap_or(0),
        Some(plan_seats) => {
            let wanted = seats
                .unwrap_or(plan_seats.included)
                .max(plan_seats.included);
            if plan_seats.max.is_some_and(|max| wanted > max) {
                return Err(invalid(
                    "/seats",
                    "too_many_seats",
                    "the plan has fewer seats than that at most",
                ));
            }
            let extra = wanted - plan_seats.included;
            if extra > 0 {
                let Some(seat_price) = plan_seats.price.clone() else {
                    return Err(invalid(
                        "/seats",
                        "seats_not_for_sale",
                        "the plan sells no seats beyond those it includes",
                    ));
                };
                items.push((seat_price, Some(extra)));
            }
            wanted
        }
    };
    items.extend(
        plan.metered
            .iter()
            .filter_map(|m| m.price.clone())
            .map(|price| (price, None)),
    );
    Ok((wanted, items))
}

/// The ids of the active prices with `lookup_keys`, in their order.
pub(crate) async fn price_ids(
    stripe: &Stripe,
    lookup_keys: &[&str],
) -> Result<Vec<String>, Problem> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("active", "true");
    for key in lookup_keys {
        query.append_pair("lookup_keys[]", key);
    }
    let list = stripe
        .get(&format!("/v1/prices?{}", query.finish()))
        .await
        .map_err(|f| f.problem("look up the plan's prices"))?;
    let found = list["data"].as_array().cloned().unwrap_or_default();
    lookup_keys
        .iter()
        .map(|key| {
            found
                .iter()
                .find(|p| p["lookup_key"] == *key)
                .and_then(|p| p["id"].as_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    eprintln!("billing: Stripe has no active price with lookup key {key:?}");
                    Problem::new(ErrorCode::UpstreamFailed).detail(format!(
                        "Stripe has no active price with the plan's lookup key {key:?}"
                    ))
                })
        })
        .collect()
}

/// `POST /v1/billing/checkout`.
pub async fn checkout(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("billing")?;
    let retry_key = idempotency_key(&req)?;
    let body: Checkout = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let settings = gatehouse_billing::settings().await?;
    let plan = settings
        .plans
        .get(&body.plan)
        .ok_or_else(|| invalid("/plan", "unknown_plan", "there is no plan with this key"))?;
    let (seats, items) = line_items(plan, body.seats)?;
    let tenant = caller.tenant()?;
    let subscribed = gatehouse_billing::load(&tenant)
        .await?
        .and_then(|state| state.status)
        .is_some_and(|s| live(&s));
    if subscribed {
        return Err(has_subscription());
    }
    let stripe = Stripe::open().await?;
    let customer = customer::ensure(&tenant, &stripe).await?;
    // Stripe's word, not only the row's (its events may not have come
    // yet): a subscription that can still charge or come back is one.
    let open = customer::subscriptions(&stripe, &customer)
        .await?
        .iter()
        .any(|s| s["status"].as_str().is_some_and(standing::open));
    if open {
        return Err(has_subscription());
    }
    let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    let ids = price_ids(&stripe, &keys).await?;
    let org = tenant.org_id().to_string();
    let mut params = vec![
        ("mode".to_string(), "subscription".to_string()),
        ("customer".into(), customer),
        ("client_reference_id".into(), org.clone()),
        ("success_url".into(), body.success_url),
        ("cancel_url".into(), body.cancel_url),
        (format!("metadata[{ORG_METADATA}]"), org.clone()),
        (
            format!("subscription_data[metadata][{ORG_METADATA}]"),
            org.clone(),
        ),
    ];
    for (i, (id, (_, quantity))) in ids.iter().zip(&items).enumerate() {
        params.push((format!("line_items[{i}][price]"), id.clone()));
        if let Some(quantity) = quantity {
            params.push((format!("line_items[{i}][quantity]"), quantity.to_string()));
        }
    }
    // A retry with the same Idempotency-Key gets the same session; without
    // one, every call is a new session.
    let key = match retry_key {
        Some(key) => gatehouse_billing::stripe::caller_key("checkout", &org, &key),
        None => gatehouse_auth::db::new_id("gatehouse-checkout-"),
    };
    let session = stripe
        .post("/v1/checkout/sessions", &params, &key)
        .await
        .map_err(|f| {
            if f.is_idempotency_conflict() {
                return gatehouse_billing::stripe::key_reused();
            }
            refused_url(&f, &["success_url", "cancel_url"])
                .unwrap_or_else(|| f.problem("open a checkout session"))
        })?;
    let session_id = session["id"].as_str().unwrap_or_default();
    expire_previous(&tenant, &stripe, session_id).await?;
    tenant
        .run(
            "UPDATE org_billing SET checkout_session_id = ?2 WHERE org_id = ?1",
            vec![gatehouse_auth::db::text(
                session["id"].as_str().unwrap_or_default(),
            )],
        )
        .await?;
    let answer = json!({
        "id": session["id"],
        "url": session["url"],
        "plan": plan.key,
        "seats": seats,
        "expires_at": session.get("expires_at").cloned().unwrap_or(Value::Null),
    });
    Ok(response::json(201, &answer, request_id))
}

/// A URL of the caller's that Stripe refused (it parses URLs its own
/// way): the caller's field, as a validation problem.
fn refused_url(failure: &Failure, fields: &[&str]) -> Option<Problem> {
    let param = failure.refused_param()?;
    fields.contains(&param).then(|| {
        invalid(
            &format!("/{param}"),
            "invalid_url",
            "Stripe does not take this URL",
        )
    })
}

pub(crate) fn has_subscription() -> Problem {
    Problem::new(ErrorCode::Conflict).detail(
        "the organization has a subscription: change its plan or seats with POST /v1/billing/subscription",
    )
}

/// Expires the org's previous Checkout Session, so that only the newest
/// one (`newest`) can be paid: two paid sessions would be two
/// subscriptions. A retry that got the same session back expires nothing.
async fn expire_previous(
    tenant: &gatehouse_auth::tenant::Tenant<'_>,
    stripe: &Stripe,
    newest: &str,
) -> Result<(), Problem> {
    let rows = tenant
        .query(
            "SELECT checkout_session_id FROM org_billing WHERE org_id = ?1",
            vec![],
        )
        .await?;
    let Some(previous) = rows
        .first()
        .and_then(|row| gatehouse_auth::db::get_opt_text(row, 0))
    else {
        return Ok(());
    };
    if previous == newest {
        return Ok(());
    }
    match stripe
        .post(
            &format!("/v1/checkout/sessions/{previous}/expire"),
            &[],
            &format!("gatehouse-expire-{previous}"),
        )
        .await
    {
        // A session completed or expired already is no longer open.
        Ok(_) | Err(Failure::Refused { .. }) => Ok(()),
        Err(f) => Err(f.problem("expire the previous checkout session")),
    }
}

/// `POST /v1/billing/portal`.
pub async fn portal(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("billing")?;
    let body: Portal = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let tenant = caller.tenant()?;
    let stripe = Stripe::open().await?;
    let customer = customer::ensure(&tenant, &stripe).await?;
    let session = stripe
        .post(
            "/v1/billing_portal/sessions",
            &[
                ("customer".into(), customer),
                ("return_url".into(), body.return_url),
            ],
            &gatehouse_auth::db::new_id("gatehouse-portal-"),
        )
        .await
        .map_err(|f| {
            refused_url(&f, &["return_url"])
                .unwrap_or_else(|| f.problem("open a customer portal session"))
        })?;
    Ok(response::json(
        201,
        &json!({"id": session["id"], "url": session["url"]}),
        request_id,
    ))
}

/// The request's `Idempotency-Key`, checked as every route checks it.
pub(crate) fn idempotency_key(req: &Request) -> Result<Option<String>, Problem> {
    req.headers()
        .get("idempotency-key")
        .map(|value| gatehouse_http::idempotency::parse_key(value.to_str().unwrap_or_default()))
        .transpose()
}
