//! The quotas a plan sets: an org quota on the meter the plan names, made
//! when the org makes the meter, following the org's plan through
//! upgrades and the end of a grace period; an admin's override may hold
//! it lower (never higher), and the quota itself is not the admin's to
//! edit. A meter the plans limit must count or sum.

use anyhow::{Context, Result};
use gatehouse_tests::app::{Org, call, expect, post, problem};
use serde_json::{Value, json};

use crate::support::{Billing, start};

const DAY: i64 = 86_400;

fn consume(b: &Billing, org: &Org, amount: i64) -> Result<Value> {
    expect(
        post(
            &b.host,
            "/v1/quotas/consume",
            &json!({"subject": format!("user:{}", org.admin_id), "meter": "tokens", "amount": amount}),
            Some(&org.admin),
        )?,
        200,
    )
}

/// The org's quotas the plan set.
fn plan_quotas(b: &Billing, org: &Org) -> Result<Vec<Value>> {
    let page = expect(
        call(&b.host, "GET", "/v1/quotas", None, Some(&org.admin), &[])?,
        200,
    )?;
    Ok(page["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|q| q["managed_by"] == "plan")
        .cloned()
        .collect())
}

#[test]
fn a_plans_quota_follows_the_plan_and_an_admins_override_wins() -> Result<()> {
    let mut b = start()?;
    let acme = b.org("acme")?;
    assert!(plan_quotas(&b, &acme)?.is_empty());
    // The org makes the meter its plan limits: the free plan's quota.
    expect(
        post(
            &b.host,
            "/v1/meters",
            &json!({"key": "tokens", "event_type": "llm.call", "aggregation": "sum", "value_path": "tokens"}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let quotas = plan_quotas(&b, &acme)?;
    assert_eq!(quotas.len(), 1, "{quotas:?}");
    // A plan's quota could not count a `max` meter: another org may not
    // make one under that key.
    let globex = b.org("globex")?;
    let peak = post(
        &b.host,
        "/v1/meters",
        &json!({"key": "tokens", "event_type": "llm.call", "aggregation": "max", "value_path": "tokens"}),
        Some(&globex.admin),
    )?;
    assert_eq!(problem(peak, 422)?.2, "plan_limited_meter");
    let quota = quotas[0].clone();
    let id = quota["id"].as_str().context("id")?.to_string();
    assert_eq!(
        (quota["limit"].as_i64(), quota["period"].as_str()),
        (Some(100), Some("month"))
    );
    assert_eq!(consume(&b, &acme, 90)?["allowed"], true);
    let refused = consume(&b, &acme, 20)?;
    assert_eq!(refused["allowed"], false);
    assert_eq!(refused["blocking"]["id"], id.as_str());

    // Not the admin's to edit or delete; an override is.
    let path = format!("/v1/quotas/{id}");
    let patched = call(
        &b.host,
        "PATCH",
        &path,
        Some(&json!({"limit": 5000})),
        Some(&acme.admin),
        &[],
    )?;
    assert_eq!(problem(patched, 409)?.0, "conflict");
    let deleted = call(&b.host, "DELETE", &path, None, Some(&acme.admin), &[])?;
    assert_eq!(problem(deleted, 409)?.0, "conflict");

    // Pro: the same quota, its limit raised; what was counted still counts.
    b.subscribe(&acme, "pro", 5)?;
    b.sync()?;
    let quotas = plan_quotas(&b, &acme)?;
    assert_eq!(
        (quotas.len(), quotas[0]["id"].as_str()),
        (1, Some(id.as_str()))
    );
    assert_eq!(quotas[0]["limit"], 1000);
    let allowed = consume(&b, &acme, 20)?;
    assert_eq!(
        (allowed["allowed"].as_bool(), allowed["remaining"].as_i64()),
        (Some(true), Some(890))
    );

    // The org pays for its plan's limit: its admins may not raise it...
    let raised = post(
        &b.host,
        &format!("{path}/overrides"),
        &json!({"limit": 5000, "ttl_seconds": 600}),
        Some(&acme.admin),
    )?;
    assert_eq!(problem(raised, 422)?.2, "exceeds_plan_limit");
    // ...but an override that holds it lower wins while it runs.
    expect(
        post(
            &b.host,
            &format!("{path}/overrides"),
            &json!({"limit": 111, "ttl_seconds": 600, "reason": "cap this month"}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    assert_eq!(consume(&b, &acme, 2)?["allowed"], false);
    b.tick(601)?;
    assert_eq!(consume(&b, &acme, 2)?["allowed"], true);

    // A failed payment keeps Pro's quota for the grace period; when it
    // runs out, the job due then brings back the free plan's.
    let sub = b.billing(&acme)?["subscription_id"]
        .as_str()
        .context("sub")?
        .to_string();
    b.tick(60)?;
    b.stripe.payment_failed(&sub)?;
    b.sync()?;
    assert_eq!(plan_quotas(&b, &acme)?[0]["limit"], 1000);
    b.tick(8 * DAY)?;
    b.run_jobs()?;
    let quotas = plan_quotas(&b, &acme)?;
    assert_eq!((quotas.len(), quotas[0]["limit"].as_i64()), (1, Some(100)));
    Ok(())
}

#[test]
fn a_change_of_the_deployments_plans_reaches_the_quotas_orgs_have_already() -> Result<()> {
    let b = start()?;
    let acme = b.org("acme")?;
    expect(
        post(
            &b.host,
            "/v1/meters",
            &json!({"key": "tokens", "event_type": "llm.call", "aggregation": "count"}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    assert_eq!(plan_quotas(&b, &acme)?[0]["limit"], 100);
    // The operator raises the free plan's quota and redeploys: the next
    // run of the jobs brings every concerned org in line.
    let mut plans = crate::support::plans();
    plans[0]["quotas"] =
        json!([{"meter": "tokens", "limit": 250, "period": "day", "enforcement": "soft"}]);
    let b = b.redeploy(&[("BILLING_PLANS", plans.to_string())])?;
    assert_eq!(plan_quotas(&b, &acme)?[0]["limit"], 100);
    b.run_jobs()?;
    let quota = plan_quotas(&b, &acme)?[0].clone();
    assert_eq!(
        (
            quota["limit"].as_i64(),
            quota["period"].as_str(),
            quota["enforcement"].as_str()
        ),
        (Some(250), Some("day"), Some("soft"))
    );
    // A plan that no longer limits the meter takes its quota away.
    plans[0]["quotas"] = json!([]);
    let b = b.redeploy(&[("BILLING_PLANS", plans.to_string())])?;
    b.run_jobs()?;
    assert!(plan_quotas(&b, &acme)?.is_empty());
    Ok(())
}
