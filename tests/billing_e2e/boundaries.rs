//! What billing refuses: callers without credentials or rights, another
//! org's billing, bad bodies, and Stripe events that do not come from the
//! deployment's own Stripe source.

use anyhow::{Context, Result};
use gatehouse_tests::app::{call, expect, join, post, problem};
use gatehouse_tests::get;
use serde_json::{Value, json};

use crate::support::{STRIPE_WEBHOOK_SECRET, forged_cancellation, start, start_with};

#[test]
fn plans_are_public_and_say_what_each_grants() -> Result<()> {
    let b = start()?;
    let plans = expect(get(&b.host.url("/v1/plans"), &[])?, 200)?;
    let items = plans["items"].as_array().context("items")?;
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["key"], "free");
    assert_eq!(items[0]["default"], true);
    assert_eq!(
        items[1]["seats"],
        json!({"included": 5, "price": "pro_seat", "max": 50})
    );
    Ok(())
}

#[test]
fn billing_routes_refuse_missing_credentials_members_and_other_orgs() -> Result<()> {
    let b = start()?;
    let acme = b.org("acme")?;
    let globex = b.org("globex")?;
    let (member, _) = join(
        &b.host,
        &acme.admin,
        &acme.id,
        "dev@acme.test",
        "member",
        &[],
    )?;
    let path = format!("/v1/orgs/{}/billing", acme.id);
    let none = call(&b.host, "GET", &path, None, None, &[])?;
    assert_eq!(problem(none, 401)?.0, "unauthenticated");
    let other = call(&b.host, "GET", &path, None, Some(&globex.admin), &[])?;
    assert_eq!(problem(other, 404)?.0, "not_found");
    let not_admin = call(&b.host, "GET", &path, None, Some(&member), &[])?;
    assert_eq!(problem(not_admin, 403)?.0, "forbidden");
    let body = json!({"plan": "pro", "success_url": "https://a.example/x", "cancel_url": "https://a.example/y"});
    let by_member = post(&b.host, "/v1/billing/checkout", &body, Some(&member))?;
    assert_eq!(problem(by_member, 403)?.0, "forbidden");
    let anonymous = post(&b.host, "/v1/billing/checkout", &body, None)?;
    assert_eq!(problem(anonymous, 401)?.0, "unauthenticated");
    let reply = call(&b.host, "GET", "/v1/entitlements", None, None, &[])?;
    assert_eq!(problem(reply, 401)?.0, "unauthenticated");
    let check = post(
        &b.host,
        "/v1/entitlements/check",
        &json!({"feature": "sso"}),
        None,
    )?;
    assert_eq!(problem(check, 401)?.0, "unauthenticated");
    // Each org sees its own.
    assert_eq!(b.entitlements(&globex.admin)?["org_id"], globex.id.as_str());
    Ok(())
}

#[test]
fn bad_checkouts_and_checks_are_validation_problems() -> Result<()> {
    let b = start()?;
    let acme = b.org("acme")?;
    let cases = [
        (
            json!({"plan": "gold", "success_url": "https://a.example", "cancel_url": "https://a.example"}),
            "/plan",
            "unknown_plan",
        ),
        (
            json!({"plan": "free", "success_url": "https://a.example", "cancel_url": "https://a.example"}),
            "/plan",
            "not_for_sale",
        ),
        (
            json!({"plan": "pro", "seats": 51, "success_url": "https://a.example", "cancel_url": "https://a.example"}),
            "/seats",
            "too_many_seats",
        ),
        (
            json!({"plan": "pro", "success_url": "javascript:alert(1)", "cancel_url": "https://a.example"}),
            "/success_url",
            "invalid_url",
        ),
    ];
    for (body, pointer, code) in cases {
        let reply = post(&b.host, "/v1/billing/checkout", &body, Some(&acme.admin))?;
        assert_eq!(
            problem(reply, 422)?,
            ("validation_failed".into(), pointer.into(), code.into()),
            "{body}"
        );
    }
    let unknown = post(
        &b.host,
        "/v1/billing/checkout",
        &json!({"plan": "pro", "success_url": "https://a.example", "cancel_url": "https://a.example", "coupon": "x"}),
        Some(&acme.admin),
    )?;
    assert_eq!(problem(unknown, 422)?.2, "unknown_field");
    let negative = post(
        &b.host,
        "/v1/entitlements/check",
        &json!({"feature": "projects", "quantity": -1}),
        Some(&acme.admin),
    )?;
    assert_eq!(problem(negative, 422)?.1, "/quantity");
    // Nothing reached Stripe.
    let made: Vec<Value> = b.stripe.requests()?;
    assert!(
        made.iter().all(|r| r["path"] != "/v1/checkout/sessions"),
        "{made:?}"
    );
    Ok(())
}

#[test]
fn the_event_handler_takes_only_deliveries_signed_by_the_handler_jobs() -> Result<()> {
    let b = start()?;
    // Reached from outside, the path is nobody's route.
    let outside = gatehouse_tests::send(
        "POST",
        &b.host.url("/stripe/events"),
        &[("content-type", "application/json")],
        b"{}",
    )?;
    assert_eq!(outside.status, 404);
    Ok(())
}

#[test]
fn events_of_another_orgs_stripe_source_change_no_billing() -> Result<()> {
    // A deployment whose handler entry takes every org's Stripe sources:
    // billing itself still trusts only billing_webhook_source.
    let mut b = start_with(Some(json!(["*"])))?;
    let acme = b.org("acme")?;
    b.subscribe(&acme, "pro", 5)?;
    b.sync()?;
    assert_eq!(b.billing(&acme)?["status"], "active");
    // An attacker's org makes its own Stripe source and posts a forged
    // cancellation of acme's subscription, signed with its own secret.
    let evil = b.org("evil")?;
    let source = expect(
        post(
            &b.host,
            "/v1/webhooks/sources",
            &json!({"provider": "stripe", "secrets": [STRIPE_WEBHOOK_SECRET]}),
            Some(&evil.admin),
        )?,
        201,
    )?;
    let state = b.billing(&acme)?;
    b.tick(60)?;
    let now = b.now()?;
    let forged = forged_cancellation(&state, now, STRIPE_WEBHOOK_SECRET)?;
    let url = source["ingest_url"].as_str().context("ingest_url")?;
    let accepted = gatehouse_tests::send(
        "POST",
        url,
        &[
            ("content-type", "application/json"),
            ("stripe-signature", &forged.signature),
        ],
        forged.payload.as_bytes(),
    )?;
    expect(accepted, 200)?;
    b.run_jobs()?;
    assert_eq!(b.billing(&acme)?["status"], "active");
    Ok(())
}

#[test]
fn a_checkout_retried_with_its_idempotency_key_is_the_same_session_and_another_body_is_refused()
-> Result<()> {
    let b = start()?;
    let acme = b.org("acme")?;
    // Any key a client may send, up to 255 characters, fits.
    let key = "k".repeat(255);
    let checkout = |seats: i64| {
        call(
            &b.host,
            "POST",
            "/v1/billing/checkout",
            Some(&json!({"plan": "pro", "seats": seats,
                         "success_url": "https://a.example/done", "cancel_url": "https://a.example/"})),
            Some(&acme.admin),
            &[("idempotency-key", key.as_str())],
        )
    };
    let first = expect(checkout(6)?, 201)?;
    let again = expect(checkout(6)?, 201)?;
    assert_eq!(first["id"], again["id"]);
    let other = checkout(7)?;
    assert_eq!(problem(other, 422)?.0, "idempotency_key_reused");
    // The retry left its session open: it can still be paid.
    b.stripe
        .complete_checkout(first["id"].as_str().context("id")?, "active")?;
    Ok(())
}
