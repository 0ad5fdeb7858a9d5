//! A subscription changed through Gatehouse (another plan, more or fewer
//! seats, an end at the period's end), one subscription an org at most,
//! and events that are cues, not the truth.

use anyhow::{Context, Result};
use gatehouse_tests::app::{expect, join, problem};
use serde_json::json;

use crate::support::{STRIPE_WEBHOOK_SECRET, forged_cancellation, start};

#[test]
fn entitlements_follow_a_change_of_plan_and_seats_made_through_gatehouse() -> Result<()> {
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
    // Nothing to change before a subscription.
    let early = b.change(&acme, &json!({"seats": 6}))?;
    assert_eq!(problem(early, 409)?.0, "conflict");
    b.subscribe(&acme, "pro", 6)?;
    b.sync()?;
    assert_eq!(b.check(&member, "audit", None)?["allowed"], false);
    assert_eq!(b.billing(&acme)?["seats"]["limit"], 6);

    // Team: its price replaces Pro's, and the 6 seats the org holds fit
    // in Team's 10 included, so the seat item goes. Stripe's answer is
    // taken at once.
    b.tick(30)?;
    let changed = expect(b.change(&acme, &json!({"plan": "team"}))?, 200)?;
    assert_eq!(
        (changed["plan"].as_str(), changed["seats"].as_i64()),
        (Some("team"), Some(10))
    );
    let state = b.billing(&acme)?;
    assert_eq!(
        (state["plan"].as_str(), state["seats"]["limit"].as_i64()),
        (Some("team"), Some(10))
    );
    assert_eq!(b.check(&member, "audit", None)?["allowed"], true);
    let update = b
        .stripe
        .requests()?
        .into_iter()
        .rev()
        .find(|r| {
            r["method"] == "POST"
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/v1/subscriptions/"))
        })
        .context("the subscription was changed")?;
    assert_eq!(update["params"]["proration_behavior"], "create_prorations");
    // Its event changes nothing more.
    b.sync()?;
    assert_eq!(b.billing(&acme)?["plan"], "team");

    // Seats beyond Team's included ones, then fewer than members hold.
    b.tick(30)?;
    expect(b.change(&acme, &json!({"seats": 14}))?, 200)?;
    assert_eq!(b.billing(&acme)?["seats"]["limit"], 14);
    assert_eq!(b.billing(&acme)?["seats"]["bought"], 4);
    let too_many = b.change(&acme, &json!({"seats": 101}))?;
    assert_eq!(problem(too_many, 422)?.2, "too_many_seats");
    // Back to Pro's 5 seats while 6 members hold one each: refused.
    for i in 0..4 {
        let email = format!("more{i}@acme.test");
        join(&b.host, &acme.admin, &acme.id, &email, "member", &[])?;
    }
    let too_few = b.change(&acme, &json!({"plan": "pro", "seats": 5}))?;
    assert_eq!(problem(too_few, 409)?.0, "conflict");
    assert_eq!(b.billing(&acme)?["plan"], "team");

    // Set to end at the period's end: visible, and still paid for.
    b.tick(30)?;
    expect(
        b.change(&acme, &json!({"cancel_at_period_end": true}))?,
        200,
    )?;
    let state = b.billing(&acme)?;
    assert!(state["cancel_at"].as_i64().is_some(), "{state}");
    assert_eq!(state["entitlements"]["access"], "paid");
    let bad = b.change(&acme, &json!({}))?;
    assert_eq!(problem(bad, 422)?.2, "nothing_to_change");
    let by_member = gatehouse_tests::app::call(
        &b.host,
        "POST",
        "/v1/billing/subscription",
        Some(&json!({"seats": 20})),
        Some(&member),
        &[],
    )?;
    assert_eq!(problem(by_member, 403)?.0, "forbidden");
    Ok(())
}

#[test]
fn an_org_pays_for_one_subscription_at_most() -> Result<()> {
    let b = start()?;
    let acme = b.org("acme")?;
    // Two checkouts: the first session is expired by the second, so only
    // the newest can be paid.
    let first = expect(b.checkout(&acme, "pro", 5)?, 201)?;
    let second = expect(b.checkout(&acme, "pro", 6)?, 201)?;
    let first_id = first["id"].as_str().context("id")?;
    assert!(b.stripe.complete_checkout(first_id, "active").is_err());
    b.stripe
        .complete_checkout(second["id"].as_str().context("id")?, "active")?;
    // Paid, its events not yet here: Stripe's word refuses a third.
    let third = b.checkout(&acme, "team", 10)?;
    assert_eq!(problem(third, 409)?.0, "conflict");
    Ok(())
}

#[test]
fn a_forged_event_through_the_billing_source_changes_nothing_stripe_does_not_hold() -> Result<()> {
    let mut b = start()?;
    let acme = b.org("acme")?;
    b.subscribe(&acme, "pro", 5)?;
    b.sync()?;
    let state = b.billing(&acme)?;
    // Whoever holds the source's signing secret (an admin of the
    // operator's org can set it) posts a cancellation Stripe never made.
    b.tick(60)?;
    let now = b.now()?;
    let event = forged_cancellation(&state, now, STRIPE_WEBHOOK_SECRET)?;
    b.post(&event)?;
    b.run_jobs()?;
    let after = b.billing(&acme)?;
    assert_eq!(after["status"], "active");
    assert_eq!(after["plan"], "pro");
    Ok(())
}
