//! Stripe's events arrive late, twice and out of order: whatever the
//! order, an org's billing ends where Stripe's subscription is.

use anyhow::{Context, Result};
use gatehouse_tests::app::{call, expect};
use serde_json::json;

use crate::support::{Billing, start, synced};

/// One life of a subscription for `org`, events left unposted: checkout,
/// seats raised twice, a failed payment, paid again, set to end at the
/// period's end. Each step a few seconds apart, the first three events in
/// one second (as Stripe sends a checkout's).
fn live_a_life(b: &Billing, org: &gatehouse_tests::app::Org) -> Result<String> {
    let sub = b.subscribe(org, "pro", 6)?;
    for step in [
        json!({"quantity": {"pro_seat": 2}}),
        json!({"quantity": {"pro_seat": 5}}),
    ] {
        b.tick(3)?;
        b.stripe.update_subscription(&sub, &step)?;
    }
    b.tick(3)?;
    b.stripe.payment_failed(&sub)?;
    b.tick(3)?;
    b.stripe.payment_succeeded(&sub)?;
    b.tick(3)?;
    b.stripe
        .update_subscription(&sub, &json!({"cancel_at_period_end": true}))?;
    Ok(sub)
}

#[test]
fn the_same_events_twice_and_in_reverse_order_end_in_the_same_state() -> Result<()> {
    let mut b = start()?;
    // In order, each handed on before the next arrives.
    let forward = b.org("forward")?;
    live_a_life(&b, &forward)?;
    b.sync()?;
    let expected = synced(&b.billing(&forward)?);
    assert_eq!(expected["seats"], 5, "{expected}");
    assert_eq!(expected["cancel_at_period_end"], true);
    assert_eq!(expected["status"], "active");

    // Backwards, each handed on alone.
    let backward = b.org("backward")?;
    live_a_life(&b, &backward)?;
    let mut events = b.unposted()?;
    events.reverse();
    assert!(events.len() >= 8, "{} events", events.len());
    for event in &events {
        b.post(event)?;
        b.run_jobs()?;
    }
    let mut reached = synced(&b.billing(&backward)?);
    reached["subscription_id"] = expected["subscription_id"].clone();
    assert_eq!(reached, expected);

    // Twice: Stripe's redeliveries are recognised at the source, and an
    // admin's replay of each, oldest first, hands them on again.
    let ops_events = events
        .iter()
        .map(|e| b.post(e))
        .collect::<Result<Vec<_>>>()?;
    assert!(
        ops_events.iter().all(|answer| answer["duplicate"] == true),
        "{ops_events:?}"
    );
    b.run_jobs()?;
    for answer in ops_events.iter().rev() {
        let id = answer["id"].as_str().context("event id")?;
        expect(
            call(
                &b.host,
                "POST",
                &format!("/v1/webhooks/events/{id}/$replay"),
                Some(&json!({})),
                Some(&b.ops.admin),
                &[],
            )?,
            202,
        )?;
    }
    b.run_jobs()?;
    let mut again = synced(&b.billing(&backward)?);
    again["subscription_id"] = expected["subscription_id"].clone();
    assert_eq!(again, expected);
    Ok(())
}
