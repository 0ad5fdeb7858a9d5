//! The local Stripe API server (`tests/stripe-api`) speaks Stripe's wire
//! format: form-encoded requests in bracket notation, Stripe's objects and
//! error shapes, idempotency keys, and events whose signatures stripe-node's
//! own `constructEvent` accepts. The billing tests rely on each of these.

use anyhow::{Context, Result, bail};
use gatehouse_tests::stripe_api::{StripeApi, StripeEvent};
use gatehouse_tests::{get, root, send};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

const KEY: &str = "sk_test_gatehouse_billing_0123456789";
const WHSEC: &str = "whsec_gatehouse_billing_test_secret";
/// The server's clock in these tests (unix seconds).
const T: i64 = 1_800_000_000;

fn start() -> Result<StripeApi> {
    let prices = json!([
        {"id": "price_pro_monthly", "lookup_key": "pro_monthly", "unit_amount": 2000, "currency": "usd",
         "recurring": {"interval": "month", "usage_type": "licensed"}, "product": "prod_pro"},
        {"id": "price_team_monthly", "lookup_key": "team_monthly", "unit_amount": 5000, "currency": "usd",
         "recurring": {"interval": "month", "usage_type": "licensed"}, "product": "prod_team"},
        {"id": "price_api_calls", "lookup_key": "api_calls", "unit_amount": 1, "currency": "usd",
         "recurring": {"interval": "month", "usage_type": "metered"}, "product": "prod_calls"}
    ]);
    let api = StripeApi::start(KEY, WHSEC, &prices)?;
    api.set_clock(T)?;
    Ok(api)
}

fn ok(api: &StripeApi, method: &str, path: &str, form: &[(&str, &str)]) -> Result<Value> {
    let reply = api.call(method, path, form, None)?;
    if reply.status != 200 {
        bail!("{method} {path}: {} {}", reply.status, reply.text());
    }
    reply.json()
}

/// The `error` object of a Stripe error answer with `status`.
fn error(reply: gatehouse_tests::Reply, status: u16) -> Result<Value> {
    if reply.status != status {
        bail!("expected {status}, got {} {}", reply.status, reply.text());
    }
    Ok(reply.json()?["error"].clone())
}

fn customer(api: &StripeApi) -> Result<String> {
    let c = ok(
        api,
        "POST",
        "/v1/customers",
        &[("email", "owner@acme.test")],
    )?;
    Ok(c["id"].as_str().context("customer id")?.to_string())
}

/// A subscription-mode checkout session for `customer`: 3 seats of
/// `pro_monthly` and metered `api_calls`.
fn checkout(api: &StripeApi, customer: &str) -> Result<Value> {
    ok(
        api,
        "POST",
        "/v1/checkout/sessions",
        &[
            ("mode", "subscription"),
            ("customer", customer),
            ("client_reference_id", "org_acme"),
            ("line_items[0][price]", "price_pro_monthly"),
            ("line_items[0][quantity]", "3"),
            ("line_items[1][price]", "price_api_calls"),
            ("subscription_data[metadata][org]", "org_acme"),
            ("metadata[org]", "org_acme"),
            ("success_url", "https://app.acme.test/billing?done=1"),
            ("cancel_url", "https://app.acme.test/billing"),
        ],
    )
}

/// What stripe-node's `webhooks.constructEvent` makes of each event, with
/// `secret`, at the server's clock: the event id, or the error's type.
fn construct_events(events: &[StripeEvent], secret: &str) -> Result<Vec<Value>> {
    const SCRIPT: &str = r#"
import Stripe from 'stripe';
let input = '';
for await (const chunk of process.stdin) input += chunk;
const { secret, receivedAt, events } = JSON.parse(input);
const out = events.map(({ payload, signature }) => {
  try {
    return { id: Stripe.webhooks.constructEvent(payload, signature, secret, 300, undefined, receivedAt).id };
  } catch (e) {
    return { error: e.type };
  }
});
process.stdout.write(JSON.stringify(out));
"#;
    let input = json!({
        "secret": secret,
        "receivedAt": T,
        "events": events.iter().map(|e| json!({"payload": e.payload, "signature": e.signature})).collect::<Vec<_>>(),
    });
    let mut child = Command::new("node")
        .args(["--input-type=module", "-e", SCRIPT])
        .current_dir(root().join("tests/stripe-api"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("constructEvent: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn kinds(events: &[StripeEvent]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

#[test]
fn a_form_encoded_create_answers_stripes_object_and_an_unknown_id_answers_stripes_404() -> Result<()>
{
    let api = start()?;
    let created = ok(
        &api,
        "POST",
        "/v1/customers",
        &[
            ("email", "owner+billing@acme.test"),
            ("name", "Acme & Co"),
            ("metadata[org]", "org_acme"),
        ],
    )?;
    let id = created["id"].as_str().context("id")?;
    assert!(id.starts_with("cus_"), "{id}");
    assert_eq!(created["object"], "customer");
    assert_eq!(created["email"], "owner+billing@acme.test");
    assert_eq!(created["name"], "Acme & Co");
    assert_eq!(created["metadata"], json!({"org": "org_acme"}));
    assert_eq!(created["livemode"], false);
    assert_eq!(created["created"], T);
    assert_eq!(
        ok(&api, "GET", &format!("/v1/customers/{id}"), &[])?,
        created
    );

    let missing = error(api.call("GET", "/v1/customers/cus_nobody", &[], None)?, 404)?;
    assert_eq!(
        missing,
        json!({
            "code": "resource_missing",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
            "message": "No such customer: 'cus_nobody'",
            "param": "id",
            "type": "invalid_request_error",
        })
    );

    let prices = ok(
        &api,
        "GET",
        "/v1/prices",
        &[
            ("lookup_keys[]", "pro_monthly"),
            ("lookup_keys[]", "api_calls"),
            ("active", "true"),
        ],
    )?;
    assert_eq!(prices["object"], "list");
    assert_eq!(prices["url"], "/v1/prices");
    assert_eq!(prices["has_more"], false);
    let mut keys: Vec<&str> = prices["data"]
        .as_array()
        .context("data")?
        .iter()
        .filter_map(|p| p["lookup_key"].as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["api_calls", "pro_monthly"]);

    // What the server recorded is what was sent, decoded.
    let requests = api.requests()?;
    assert_eq!(requests[0]["params"]["metadata"]["org"], "org_acme");
    assert_eq!(
        requests.last().context("a request")?["params"]["lookup_keys"],
        json!(["pro_monthly", "api_calls"])
    );
    Ok(())
}

#[test]
fn a_missing_or_wrong_key_gets_stripes_401_and_basic_auth_with_the_key_passes() -> Result<()> {
    let api = start()?;
    let url = api.url("/v1/customers/cus_nobody");
    let wrong = error(
        get(
            &url,
            &[("authorization", "Bearer sk_test_someone_else_0000")],
        )?,
        401,
    )?;
    assert_eq!(wrong["type"], "invalid_request_error");
    assert!(wrong["message"].as_str().is_some_and(|m| !m.is_empty()));
    let none = error(get(&url, &[])?, 401)?;
    assert_eq!(none["type"], "invalid_request_error");

    // HTTP Basic with the key as the user is Stripe's other scheme: past
    // authentication, the unknown customer is a 404.
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:"))
    );
    assert_eq!(get(&url, &[("authorization", basic.as_str())])?.status, 404);
    Ok(())
}

#[test]
fn an_idempotency_key_repeat_answers_the_same_object_and_a_changed_request_is_refused() -> Result<()>
{
    let api = start()?;
    let form = [("email", "owner@acme.test"), ("metadata[org]", "org_acme")];
    let first = api.call(
        "POST",
        "/v1/customers",
        &form,
        Some("create-customer-org_acme"),
    )?;
    let again = api.call(
        "POST",
        "/v1/customers",
        &form,
        Some("create-customer-org_acme"),
    )?;
    assert_eq!((first.status, again.status), (200, 200));
    assert_eq!(first.body, again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));

    let changed = [("email", "other@acme.test"), ("metadata[org]", "org_acme")];
    let refused = error(
        api.call(
            "POST",
            "/v1/customers",
            &changed,
            Some("create-customer-org_acme"),
        )?,
        400,
    )?;
    assert_eq!(refused["type"], "idempotency_error");
    // A key is bound to the endpoint it was first used on.
    let elsewhere = error(
        api.call(
            "POST",
            "/v1/billing_portal/sessions",
            &[("customer", "cus_x")],
            Some("create-customer-org_acme"),
        )?,
        400,
    )?;
    assert_eq!(elsewhere["type"], "idempotency_error");

    // One customer was made: the replay did nothing.
    let made: Vec<Value> = api
        .requests()?
        .into_iter()
        .filter(|r| r["path"] == "/v1/customers" && r["status"] == 200)
        .map(|r| r["replayed"].clone())
        .collect();
    assert_eq!(made, [json!(false), json!(true)]);
    Ok(())
}

#[test]
fn bad_checkout_and_portal_parameters_get_stripes_400s() -> Result<()> {
    let api = start()?;
    let cus = customer(&api)?;
    let unknown_price = error(
        api.call(
            "POST",
            "/v1/checkout/sessions",
            &[
                ("mode", "subscription"),
                ("customer", &cus),
                ("line_items[0][price]", "price_nope"),
                ("line_items[0][quantity]", "1"),
            ],
            None,
        )?,
        400,
    )?;
    assert_eq!(unknown_price["code"], "resource_missing");
    assert_eq!(unknown_price["param"], "line_items[0][price]");
    assert_eq!(unknown_price["type"], "invalid_request_error");

    let no_quantity = error(
        api.call(
            "POST",
            "/v1/checkout/sessions",
            &[
                ("mode", "subscription"),
                ("line_items[0][price]", "price_pro_monthly"),
            ],
            None,
        )?,
        400,
    )?;
    assert_eq!(no_quantity["code"], "parameter_missing");
    assert_eq!(no_quantity["param"], "line_items[0][quantity]");

    let unknown_param = error(
        api.call(
            "POST",
            "/v1/checkout/sessions",
            &[("mode", "subscription"), ("line_item[0][price]", "x")],
            None,
        )?,
        400,
    )?;
    assert_eq!(unknown_param["code"], "parameter_unknown");

    let no_customer = error(
        api.call(
            "POST",
            "/v1/billing_portal/sessions",
            &[("return_url", "https://app.acme.test/billing")],
            None,
        )?,
        400,
    )?;
    assert_eq!(no_customer["code"], "parameter_missing");
    assert_eq!(no_customer["param"], "customer");

    let portal = ok(
        &api,
        "POST",
        "/v1/billing_portal/sessions",
        &[
            ("customer", &cus),
            ("return_url", "https://app.acme.test/billing"),
        ],
    )?;
    assert_eq!(portal["object"], "billing_portal.session");
    assert!(
        portal["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&api.base_url))
    );
    Ok(())
}

#[test]
fn a_paid_checkout_emits_stripes_events_in_order_and_stripe_node_verifies_them() -> Result<()> {
    let api = start()?;
    let cus = customer(&api)?;
    let session = checkout(&api, &cus)?;
    let cs = session["id"].as_str().context("session id")?;
    assert!(cs.starts_with("cs_test_"), "{cs}");
    assert_eq!(session["object"], "checkout.session");
    assert_eq!(session["status"], "open");
    assert_eq!(session["payment_status"], "unpaid");
    assert_eq!(session["subscription"], Value::Null);
    assert_eq!(session["client_reference_id"], "org_acme");
    assert_eq!(session["url"], api.url(&format!("/pay/{cs}")));
    assert_eq!(
        send("GET", session["url"].as_str().context("url")?, &[], b"")?.status,
        200
    );

    let sub_id = api.complete_checkout(cs, "active")?;
    let events = api.events()?;
    assert_eq!(
        kinds(&events),
        [
            "customer.subscription.created",
            "checkout.session.completed",
            "invoice.paid"
        ]
    );
    let completed = events[1].json()?;
    assert_eq!(completed["object"], "event");
    assert_eq!(completed["api_version"], "2026-10-28.endive");
    assert_eq!(completed["created"], T);
    assert_eq!(completed["livemode"], false);
    assert_eq!(completed["data"]["object"]["status"], "complete");
    assert_eq!(completed["data"]["object"]["payment_status"], "paid");
    assert_eq!(completed["data"]["object"]["subscription"], sub_id.as_str());
    let invoice = events[2].json()?;
    assert_eq!(
        invoice["data"]["object"]["parent"]["subscription_details"]["subscription"],
        sub_id.as_str()
    );
    assert_eq!(invoice["data"]["object"]["amount_paid"], 6000);

    let verified = construct_events(&events, WHSEC)?;
    let ids: Vec<Value> = events.iter().map(|e| json!({"id": e.id})).collect();
    assert_eq!(verified, ids);
    let forged = construct_events(&events[..1], "whsec_someone_else")?;
    assert_eq!(
        forged,
        [json!({"error": "StripeSignatureVerificationError"})]
    );

    let sub = ok(&api, "GET", &format!("/v1/subscriptions/{sub_id}"), &[])?;
    assert_eq!(sub["object"], "subscription");
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["customer"], cus.as_str());
    assert_eq!(sub["metadata"], json!({"org": "org_acme"}));
    assert_eq!(sub["cancel_at_period_end"], false);
    let items = sub["items"]["data"].as_array().context("items")?;
    assert_eq!(items[0]["price"]["lookup_key"], "pro_monthly");
    assert_eq!(items[0]["quantity"], 3);
    assert_eq!(items[0]["current_period_start"], T);
    assert!(items[0]["current_period_end"].as_i64() > Some(T));
    assert_eq!(items[1]["price"]["recurring"]["usage_type"], "metered");
    Ok(())
}

#[test]
fn subscription_changes_emit_updated_with_previous_attributes_and_deleted_at_the_end() -> Result<()>
{
    let api = start()?;
    let cus = customer(&api)?;
    let session = checkout(&api, &cus)?;
    let sub = api.complete_checkout(session["id"].as_str().context("id")?, "active")?;
    let before = api.events()?.len();

    api.update_subscription(
        &sub,
        &json!({"quantity": {"pro_monthly": 5}, "cancel_at_period_end": true}),
    )?;
    api.payment_failed(&sub)?;
    api.set_entitlements(&cus, &["sso", "audit_log"])?;
    api.update_subscription(&sub, &json!({"status": "canceled"}))?;
    let events = api.events()?;
    let events = &events[before..];
    assert_eq!(
        kinds(events),
        [
            "customer.subscription.updated",
            "invoice.payment_failed",
            "customer.subscription.updated",
            "entitlements.active_entitlement_summary.updated",
            "customer.subscription.deleted",
        ]
    );

    let updated = events[0].json()?;
    let previous = &updated["data"]["previous_attributes"];
    assert_eq!(previous["cancel_at_period_end"], false);
    assert_eq!(previous["items"]["data"][0]["quantity"], 3);
    assert_eq!(updated["data"]["object"]["items"]["data"][0]["quantity"], 5);
    assert!(updated["data"]["object"]["cancel_at"].is_i64());

    let failed = events[1].json()?;
    assert_eq!(failed["data"]["object"]["status"], "open");
    assert_eq!(failed["data"]["object"]["attempt_count"], 1);
    let past_due = events[2].json()?;
    assert_eq!(past_due["data"]["object"]["status"], "past_due");
    assert_eq!(past_due["data"]["previous_attributes"]["status"], "active");

    let summary = events[3].json()?;
    let summary = &summary["data"]["object"];
    assert_eq!(summary["object"], "entitlements.active_entitlement_summary");
    assert_eq!(summary["customer"], cus.as_str());
    let held: Vec<&str> = summary["entitlements"]["data"]
        .as_array()
        .context("entitlements")?
        .iter()
        .filter_map(|e| e["lookup_key"].as_str())
        .collect();
    assert_eq!(held, ["sso", "audit_log"]);

    let deleted = events[4].json()?;
    assert_eq!(deleted["data"]["object"]["status"], "canceled");
    assert!(deleted["data"]["object"]["ended_at"].is_i64());
    Ok(())
}

#[test]
fn a_meter_event_identifier_seen_before_is_refused_and_recorded_once() -> Result<()> {
    let api = start()?;
    let cus = customer(&api)?;
    let form = [
        ("event_name", "api_calls"),
        ("payload[stripe_customer_id]", cus.as_str()),
        ("payload[value]", "7"),
        ("identifier", "org_acme:2027-01-15T08"),
    ];
    let first = ok(&api, "POST", "/v1/billing/meter_events", &form)?;
    assert_eq!(first["object"], "billing.meter_event");
    assert_eq!(first["payload"]["value"], "7");
    assert_eq!(first["timestamp"], T);

    let again = api.call("POST", "/v1/billing/meter_events", &form, None)?;
    assert_eq!(again.header("stripe-should-retry"), Some("false"));
    let refused = error(again, 400)?;
    assert_eq!(refused["type"], "invalid_request_error");
    assert_eq!(
        refused["message"],
        "An event already exists with identifier org_acme:2027-01-15T08."
    );

    let recorded = api.meter_events()?;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["identifier"], "org_acme:2027-01-15T08");
    assert_eq!(recorded[0]["error_code"], Value::Null);
    Ok(())
}
