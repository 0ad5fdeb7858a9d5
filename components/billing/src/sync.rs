//! Stripe's events, handed over by the webhooks component's handler jobs
//! (`webhook_handlers` names this route, `http://billing.spin.internal/
//! stripe/events`, for the source `billing_webhook_source`): each
//! delivery is signed as Standard Webhooks with `webhook_handler_secret`
//! and carries the Stripe event as received and verified at ingest.
//!
//! An event is a notification, not the truth: the subscription (or the
//! customer's entitlements) it names is read from Stripe's API and taken
//! as it is now ([`crate::take`]), so an event late, twice, out of order,
//! or forged by whoever controls the source's secret changes nothing
//! Stripe does not hold. A `2xx` tells the job it is done; Stripe not
//! answering is a `503`, and the job tries again.

use gatehouse_billing::subscription::id_of;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::json::read_body;
use gatehouse_http::{ErrorCode, Problem, Response, response};
use serde_json::{Value, json};
use spin_sdk::http::Request;
use webhooks_core::HeaderFn;

use crate::take;

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
    if !gatehouse_billing::delivery::from_handler_jobs(&secret, &headers, &bytes, unix_now()) {
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
    let object = &event["data"]["object"];
    let subscription = match kind {
        k if k.starts_with("customer.subscription.") => object.get("id").and_then(Value::as_str),
        "checkout.session.completed" => object.get("subscription").and_then(id_of),
        "invoice.paid" | "invoice.payment_failed" | "invoice.payment_succeeded" => {
            invoice_subscription(object)
        }
        "entitlements.active_entitlement_summary.updated" => {
            return match object.get("customer").and_then(id_of) {
                Some(customer) => take::features(customer).await,
                None => Ok("ignored"),
            };
        }
        _ => None,
    };
    match subscription {
        Some(id) => take::subscription(id).await,
        None => Ok("ignored"),
    }
}

/// The subscription an invoice is for, in either of Stripe's shapes.
fn invoice_subscription(invoice: &Value) -> Option<&str> {
    invoice.get("subscription").and_then(id_of).or_else(|| {
        invoice
            .pointer("/parent/subscription_details/subscription")
            .and_then(id_of)
    })
}
