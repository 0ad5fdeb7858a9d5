//! A subscription's whole life as Stripe's events tell it: checkout,
//! active, seats raised, a failed payment and its grace, paid again,
//! canceled; and the entitlements at each step.

use anyhow::{Context, Result};
use gatehouse_tests::app::join;
use serde_json::json;

use crate::support::{Billing, start};

const DAY: i64 = 86_400;

/// The plan, access and `sso` verdict the org's admin sees.
fn gate(b: &Billing, token: &str) -> Result<(String, String, bool)> {
    let e = b.entitlements(token)?;
    let sso = b.check(token, "sso", None)?;
    Ok((
        e["plan"].as_str().context("plan")?.to_string(),
        e["access"].as_str().context("access")?.to_string(),
        sso["allowed"].as_bool().context("allowed")?,
    ))
}

fn gated(plan: &str, access: &str, sso: bool) -> (String, String, bool) {
    (plan.to_string(), access.to_string(), sso)
}

#[test]
fn a_subscription_lives_from_checkout_through_a_failed_payment_to_its_cancellation() -> Result<()> {
    let mut b = start()?;
    let acme = b.org("acme")?;
    let (member, _) = join(
        &b.host,
        &acme.admin,
        &acme.id,
        "dev@acme.test",
        "member",
        &[],
    )?;
    assert_eq!(gate(&b, &member)?, gated("free", "default", false));

    // Checkout: a customer for the org, a session for Pro with 7 seats
    // (5 included, 2 bought).
    let sub = b.subscribe(&acme, "pro", 7)?;
    let requests = b.stripe.requests()?;
    let customer = requests
        .iter()
        .find(|r| r["path"] == "/v1/customers")
        .context("a customer was made")?;
    assert_eq!(
        customer["params"]["metadata"]["gatehouse_org_id"],
        acme.id.as_str()
    );
    assert!(
        customer["idempotency_key"]
            .as_str()
            .is_some_and(|k| k.contains(&acme.id))
    );
    let session = requests
        .iter()
        .find(|r| r["path"] == "/v1/checkout/sessions")
        .context("a checkout session")?;
    assert_eq!(session["params"]["mode"], "subscription");
    assert_eq!(session["params"]["client_reference_id"], acme.id.as_str());
    assert_eq!(
        session["params"]["line_items"],
        json!([{"price": "price_pro_monthly", "quantity": "1"}, {"price": "price_pro_seat", "quantity": "2"}])
    );
    // Nothing changes before Stripe's events arrive.
    assert_eq!(b.billing(&acme)?["status"], serde_json::Value::Null);

    b.sync()?;
    let state = b.billing(&acme)?;
    assert_eq!(
        (state["plan"].as_str(), state["status"].as_str()),
        (Some("pro"), Some("active"))
    );
    assert_eq!(state["subscription_id"], sub.as_str());
    assert_eq!(state["seats"]["bought"], 2);
    assert_eq!(state["seats"]["limit"], 7);
    assert_eq!(state["seats"]["used"], 2);
    assert_eq!(gate(&b, &member)?, gated("pro", "paid", true));
    let projects = b.check(&member, "projects", Some(51))?;
    assert_eq!(
        (projects["allowed"].as_bool(), projects["limit"].as_i64()),
        (Some(false), Some(50))
    );

    // Seats raised in the portal: 4 bought.
    b.tick(60)?;
    b.stripe
        .update_subscription(&sub, &json!({"quantity": {"pro_seat": 4}}))?;
    b.sync()?;
    assert_eq!(b.billing(&acme)?["seats"]["limit"], 9);
    let seats = b.check(&acme.admin, "seats", Some(7))?;
    assert_eq!(
        (seats["allowed"].as_bool(), seats["used"].as_i64()),
        (Some(true), Some(2))
    );
    assert_eq!(b.check(&acme.admin, "seats", Some(8))?["allowed"], false);

    // A payment fails: the plan stays for the grace period (7 days).
    b.tick(DAY)?;
    let failed_at = b.now()?;
    b.stripe.payment_failed(&sub)?;
    b.sync()?;
    let state = b.billing(&acme)?;
    assert_eq!(state["status"], "past_due");
    let grace_ends = state["entitlements"]["grace_ends_at"]
        .as_i64()
        .context("grace end")?;
    assert!(
        (failed_at..failed_at + 5).contains(&(grace_ends - 7 * DAY)),
        "{state}"
    );
    assert_eq!(gate(&b, &member)?, gated("pro", "grace", true));

    // The grace runs out with nothing written: the free plan's grants.
    b.tick(8 * DAY)?;
    assert_eq!(gate(&b, &member)?, gated("free", "default", false));
    assert_eq!(b.billing(&acme)?["seats"]["limit"], 6);

    // Paid after all: Pro again.
    b.tick(60)?;
    b.stripe.payment_succeeded(&sub)?;
    b.sync()?;
    assert_eq!(b.billing(&acme)?["status"], "active");
    assert_eq!(gate(&b, &member)?, gated("pro", "paid", true));

    // A second checkout while subscribed is refused: the portal changes it.
    let again = b.checkout(&acme, "pro", 5)?;
    assert_eq!(
        (
            again.status,
            again.json()?["code"].as_str().map(str::to_string)
        ),
        (409, Some("conflict".into()))
    );
    let portal = gatehouse_tests::app::call(
        &b.host,
        "POST",
        "/v1/billing/portal",
        Some(&json!({"return_url": "https://app.example/settings"})),
        Some(&acme.admin),
        &[],
    )?;
    let portal = gatehouse_tests::app::expect(portal, 201)?;
    assert!(
        portal["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http")),
        "{portal}"
    );
    // One customer for the org, whatever the number of sessions.
    let customers = b
        .stripe
        .requests()?
        .iter()
        .filter(|r| r["path"] == "/v1/customers")
        .count();
    assert_eq!(customers, 1);

    // The org cannot be deleted while Stripe charges for it.
    let deleted = gatehouse_tests::app::call(
        &b.host,
        "DELETE",
        &format!("/v1/orgs/{}", acme.id),
        None,
        Some(&acme.admin),
        &[],
    )?;
    assert_eq!(deleted.status, 409);

    // Canceled: the free plan; nothing the org made is gone.
    b.tick(60)?;
    b.stripe
        .update_subscription(&sub, &json!({"status": "canceled"}))?;
    b.sync()?;
    let state = b.billing(&acme)?;
    assert_eq!(state["status"], "canceled");
    assert_eq!(gate(&b, &member)?, gated("free", "default", false));
    assert_eq!(state["seats"]["used"], 2);
    Ok(())
}

#[test]
fn stripes_entitlements_add_features_while_the_plan_is_paid_for() -> Result<()> {
    let mut b = start()?;
    let acme = b.org("acme")?;
    b.subscribe(&acme, "pro", 5)?;
    b.sync()?;
    let customer = b.billing(&acme)?["stripe_customer_id"]
        .as_str()
        .context("customer")?
        .to_string();
    b.tick(10)?;
    b.stripe.set_entitlements(&customer, &["audit-export"])?;
    b.sync()?;
    assert_eq!(b.check(&acme.admin, "audit-export", None)?["allowed"], true);
    assert!(
        b.entitlements(&acme.admin)?["features"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("audit-export")))
    );
    b.tick(10)?;
    b.stripe.set_entitlements(&customer, &[])?;
    b.sync()?;
    let verdict = b.check(&acme.admin, "audit-export", None)?;
    assert_eq!(
        (verdict["allowed"].as_bool(), verdict["reason"].as_str()),
        (Some(false), Some("not_in_plan"))
    );
    Ok(())
}
