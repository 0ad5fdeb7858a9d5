//! Quotas in their second form, through the built `metering` component:
//! calendar periods in the org's time zone and rolling windows (moved by
//! the host's controllable clock, never by waiting), item-scoped quotas,
//! temporary overrides, uses by keys, team admins within the org's
//! quotas, spend quotas on priced meters, and alert thresholds.

use anyhow::{Context, Result};
use gatehouse_tests::app::{
    Org, app_config, call, column, concurrently, database as db, expect, join, org, post, problem,
    start_app, team,
};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

/// Wednesday 2026-12-02, 22:50 UTC: 23:50 in Berlin.
const BERLIN_2350: i64 = 1_796_251_800;

fn clocked() -> Result<TestHost> {
    let mut config = app_config();
    config.controllable_clock = true;
    let host = TestHost::start(config)?;
    host.set_clock(BERLIN_2350)?;
    Ok(host)
}

fn patch(host: &TestHost, path: &str, body: &Value, token: &str) -> Result<Reply> {
    call(host, "PATCH", path, Some(body), Some(token), &[])
}

fn get(host: &TestHost, path: &str, token: &str) -> Result<Reply> {
    call(host, "GET", path, None, Some(token), &[])
}

fn meter(host: &TestHost, org: &Org, body: Value) -> Result<Value> {
    expect(post(host, "/v1/meters", &body, Some(&org.admin))?, 201)
}

fn calls_meter(host: &TestHost, org: &Org) -> Result<Value> {
    meter(
        host,
        org,
        json!({"key": "calls", "event_type": "agent.run", "aggregation": "count"}),
    )
}

fn quota(host: &TestHost, token: &str, body: Value) -> Result<Value> {
    expect(post(host, "/v1/quotas", &body, Some(token))?, 201)
}

fn use_of(host: &TestHost, org: &Org, path: &str, body: Value) -> Result<Value> {
    expect(post(host, path, &body, Some(&org.admin))?, 200)
}

fn consume(host: &TestHost, org: &Org, body: Value) -> Result<Value> {
    use_of(host, org, "/v1/quotas/consume", body)
}

#[test]
fn a_day_quota_starts_again_at_the_orgs_midnight_and_a_week_quota_does_not() -> Result<()> {
    let host = clocked()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let zoned = expect(
        patch(
            &host,
            &format!("/v1/orgs/{}", acme.id),
            &json!({"time_zone": "Europe/Berlin"}),
            &acme.admin,
        )?,
        200,
    )?;
    assert_eq!(zoned["time_zone"], "Europe/Berlin");
    calls_meter(&host, &acme)?;
    let me = format!("user:{}", acme.admin_id);
    let day = quota(
        &host,
        &acme.admin,
        json!({"entity": me, "meter": "calls", "limit": 2, "period": "day"}),
    )?;
    let week = quota(
        &host,
        &acme.admin,
        json!({"entity": "org", "meter": "calls", "limit": 3, "period": "week"}),
    )?;
    let body = json!({"subject": me, "meter": "calls"});
    for _ in 0..2 {
        assert_eq!(consume(&host, &acme, body.clone())?["allowed"], true);
    }
    let refused = consume(&host, &acme, body.clone())?;
    assert_eq!(refused["allowed"], false);
    assert_eq!(refused["blocking"]["id"], day["id"]);
    // Midnight in Berlin is 23:00 UTC.
    assert_eq!(refused["reset_at"], BERLIN_2350 + 600);

    // Ten minutes later it is Thursday in Berlin (still Wednesday in UTC):
    // the day quota starts again; the week quota (from Monday) does not.
    host.advance_clock(15 * 60)?;
    let next_day = consume(&host, &acme, body.clone())?;
    assert_eq!(next_day["allowed"], true, "{next_day}");
    assert_eq!(next_day["remaining"], 0, "the week's third call");
    let week_blocks = consume(&host, &acme, body)?;
    assert_eq!(week_blocks["blocking"]["id"], week["id"]);
    // The week ends at Monday 2026-12-07 00:00 in Berlin.
    assert_eq!(week_blocks["reset_at"], 1_796_598_000);
    Ok(())
}

#[test]
fn a_rolling_window_frees_a_use_once_the_window_has_passed_it() -> Result<()> {
    let host = clocked()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    calls_meter(&host, &acme)?;
    let me = format!("user:{}", acme.admin_id);
    let rolling = quota(
        &host,
        &acme.admin,
        json!({"entity": me, "meter": "calls", "limit": 2, "period": "rolling", "window_seconds": 3600}),
    )?;
    assert_eq!(
        (&rolling["period"], &rolling["window_seconds"]),
        (&json!("rolling"), &json!(3600))
    );
    let body = json!({"subject": me, "meter": "calls"});
    consume(&host, &acme, body.clone())?;
    host.advance_clock(20 * 60)?;
    consume(&host, &acme, body.clone())?;
    let full = consume(&host, &acme, body.clone())?;
    assert_eq!(full["allowed"], false);
    // The first use leaves the window an hour after its minute's end.
    let first_bucket = BERLIN_2350 - BERLIN_2350 % 60;
    assert_eq!(full["reset_at"], first_bucket + 60 + 3600);
    host.advance_clock(35 * 60)?;
    assert_eq!(consume(&host, &acme, body.clone())?["allowed"], false);
    host.advance_clock(6 * 60)?;
    let freed = consume(&host, &acme, body)?;
    assert_eq!(freed["allowed"], true, "{freed}");
    assert_eq!(freed["remaining"], 0);
    // The use that left the window left the table too; the two that
    // count stay.
    let buckets: Vec<i64> = column(
        &host,
        "SELECT period_start FROM quota_counters WHERE quota_id = ?1 ORDER BY period_start",
        [rolling["id"].as_str().unwrap_or_default()],
    )?;
    assert_eq!(
        buckets,
        vec![first_bucket + 20 * 60, first_bucket + 61 * 60],
        "the first bucket was dropped"
    );
    Ok(())
}

#[test]
fn an_override_raises_a_limit_until_it_expires() -> Result<()> {
    let host = clocked()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    calls_meter(&host, &acme)?;
    let me = format!("user:{}", acme.admin_id);
    let limit = quota(
        &host,
        &acme.admin,
        json!({"entity": me, "meter": "calls", "limit": 1, "period": "month"}),
    )?;
    let id = limit["id"].as_str().context("quota id")?;
    let body = json!({"subject": me, "meter": "calls"});
    consume(&host, &acme, body.clone())?;
    assert_eq!(consume(&host, &acme, body.clone())?["allowed"], false);
    let path = format!("/v1/quotas/{id}/overrides");
    let raised = expect(
        post(
            &host,
            &path,
            &json!({"limit": 3, "ttl_seconds": 600, "reason": "launch day"}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    assert_eq!(
        (&raised["limit"], &raised["active"]),
        (&json!(3), &json!(true))
    );
    let during = consume(&host, &acme, body.clone())?;
    assert_eq!(
        (&during["allowed"], &during["remaining"]),
        (&json!(true), &json!(1))
    );
    host.advance_clock(601)?;
    let after = consume(&host, &acme, body.clone())?;
    assert_eq!(after["allowed"], false, "the quota's own limit is back");
    assert_eq!(after["blocking"]["limit"], 1);
    let listed = expect(get(&host, &path, &acme.admin)?, 200)?;
    assert_eq!(listed["items"][0]["active"], false);
    // Deleting an override ends it at once.
    let again = expect(
        post(
            &host,
            &path,
            &json!({"limit": 10, "ttl_seconds": 600}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    assert_eq!(consume(&host, &acme, body.clone())?["allowed"], true);
    let gone = call(
        &host,
        "DELETE",
        &format!("{path}/{}", again["id"].as_str().unwrap_or_default()),
        None,
        Some(&acme.admin),
        &[],
    )?;
    assert_eq!(gone.status, 204);
    assert_eq!(consume(&host, &acme, body)?["allowed"], false);
    // Neither an expiry in the past nor both ways of giving one.
    for bad in [
        json!({"limit": 3, "expires_at": "2020-01-01T00:00:00Z"}),
        json!({"limit": 3, "ttl_seconds": 60, "expires_at": "2030-01-01T00:00:00Z"}),
        json!({"limit": -1, "ttl_seconds": 60}),
    ] {
        let reply = post(&host, &path, &bad, Some(&acme.admin))?;
        assert_eq!(problem(reply, 422)?.0, "validation_failed", "{bad}");
    }
    Ok(())
}

#[test]
fn an_item_quota_limits_only_its_item_and_a_keys_use_counts_for_its_owner() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    calls_meter(&host, &acme)?;
    let me = format!("user:{}", acme.admin_id);
    let agent = quota(
        &host,
        &acme.admin,
        json!({"entity": me, "meter": "calls", "limit": 1, "period": "day",
               "item_type": "agent", "item_id": "triage"}),
    )?;
    let all = quota(
        &host,
        &acme.admin,
        json!({"entity": "org", "meter": "calls", "limit": 4, "period": "day"}),
    )?;
    let triage =
        json!({"subject": me, "meter": "calls", "item_type": "agent", "item_id": "triage"});
    assert_eq!(consume(&host, &acme, triage.clone())?["allowed"], true);
    let blocked = consume(&host, &acme, triage)?;
    assert_eq!(blocked["blocking"]["id"], agent["id"]);
    let other = json!({"subject": me, "meter": "calls", "item_type": "agent", "item_id": "writer"});
    assert_eq!(consume(&host, &acme, other)?["allowed"], true);
    let recorded: String = db(&host)?.query_row(
        "SELECT data FROM usage_events WHERE org_id = ?1 AND data LIKE '%writer%'",
        [&acme.id],
        |row| row.get(0),
    )?;
    assert_eq!(
        serde_json::from_str::<Value>(&recorded)?,
        json!({"item_type": "agent", "item_id": "writer"})
    );
    // A key's use counts for the key's owner (the admin here).
    let key = expect(
        post(
            &host,
            "/v1/keys",
            &json!({"name": "worker"}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let key_id = key["id"].as_str().context("key id")?;
    let by_key = consume(
        &host,
        &acme,
        json!({"subject": format!("key:{key_id}"), "meter": "calls"}),
    )?;
    assert_eq!(
        (&by_key["allowed"], &by_key["remaining"]),
        (&json!(true), &json!(1))
    );
    let owner: i64 = db(&host)?.query_row(
        "SELECT COUNT(*) FROM usage_events WHERE org_id = ?1 AND subject_type = 'user' AND subject_id = ?2",
        [&acme.id, &acme.admin_id],
        |row| row.get(0),
    )?;
    assert_eq!(owner, 3);
    let _ = all;
    // Another org's key is unknown here.
    let globex = org(&host, "gus@example.com", "globex")?;
    let theirs = expect(
        post(
            &host,
            "/v1/keys",
            &json!({"name": "theirs"}),
            Some(&globex.admin),
        )?,
        201,
    )?;
    let reply = post(
        &host,
        "/v1/quotas/consume",
        &json!({"subject": format!("key:{}", theirs["id"].as_str().unwrap_or_default()), "meter": "calls"}),
        Some(&acme.admin),
    )?;
    assert_eq!(
        problem(reply, 422)?,
        (
            "validation_failed".into(),
            "/subject".into(),
            "unknown_subject".into()
        )
    );
    Ok(())
}

#[test]
fn a_team_admin_sets_quotas_for_its_team_within_the_orgs() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let eng = team(&host, &acme, "eng", None)?;
    let backend = team(&host, &acme, "backend", Some(&eng))?;
    let sales = team(&host, &acme, "sales", None)?;
    let (lead, lead_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "lee@example.com",
        "member",
        &[&eng],
    )?;
    let (_, bob_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[&backend],
    )?;
    calls_meter(&host, &acme)?;
    quota(
        &host,
        &acme.admin,
        json!({"entity": "org", "meter": "calls", "limit": 100, "period": "day"}),
    )?;
    // Without the permission a member manages nothing.
    let body = json!({"entity": format!("team:{backend}"), "meter": "calls", "limit": 50, "period": "day"});
    assert_eq!(
        problem(post(&host, "/v1/quotas", &body, Some(&lead))?, 403)?.0,
        "forbidden"
    );
    let role = expect(
        post(
            &host,
            "/v1/roles",
            &json!({"name": "team-lead", "permissions": ["quotas:manage_team"]}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let granted = call(
        &host,
        "PUT",
        &format!(
            "/v1/roles/{}/members/{lead_id}",
            role["name"].as_str().unwrap_or_default()
        ),
        None,
        Some(&acme.admin),
        &[],
    )?;
    assert!(granted.status < 300, "{}", granted.text());
    let mine = quota(&host, &lead, body)?;
    quota(
        &host,
        &lead,
        json!({"entity": format!("user:{bob_id}"), "meter": "calls", "limit": 5, "period": "day"}),
    )?;
    let over = post(
        &host,
        "/v1/quotas",
        &json!({"entity": format!("team:{eng}"), "meter": "calls", "limit": 101, "period": "day"}),
        Some(&lead),
    )?;
    assert_eq!(
        problem(over, 422)?,
        (
            "validation_failed".into(),
            "/limit".into(),
            "exceeds_org_quota".into()
        )
    );
    let elsewhere = post(
        &host,
        "/v1/quotas",
        &json!({"entity": format!("team:{sales}"), "meter": "calls", "limit": 1, "period": "day"}),
        Some(&lead),
    )?;
    assert_eq!(problem(elsewhere, 403)?.0, "forbidden");
    let raise = patch(
        &host,
        &format!("/v1/quotas/{}", mine["id"].as_str().unwrap_or_default()),
        &json!({"limit": 500}),
        &lead,
    )?;
    assert_eq!(problem(raise, 422)?.2, "exceeds_org_quota");
    // The lead's own quotas are set above it.
    let own = post(
        &host,
        "/v1/quotas",
        &json!({"entity": format!("user:{lead_id}"), "meter": "calls", "limit": 1, "period": "day"}),
        Some(&lead),
    )?;
    assert_eq!(problem(own, 403)?.0, "forbidden");
    // A quota an org admin set on the lead's team is the org admins' to change.
    let set_above = quota(
        &host,
        &acme.admin,
        json!({"entity": format!("team:{eng}"), "meter": "calls", "limit": 10, "period": "day"}),
    )?;
    let path = format!(
        "/v1/quotas/{}",
        set_above["id"].as_str().unwrap_or_default()
    );
    for reply in [
        patch(&host, &path, &json!({"enforcement": "soft"}), &lead)?,
        post(
            &host,
            &format!("{path}/overrides"),
            &json!({"limit": 20, "ttl_seconds": 60}),
            Some(&lead),
        )?,
        call(&host, "DELETE", &path, None, Some(&lead), &[])?,
    ] {
        assert_eq!(problem(reply, 403)?.0, "forbidden");
    }
    // The lead sees the quotas of its teams and their members, not the org's.
    let listed = expect(get(&host, "/v1/quotas", &lead)?, 200)?;
    let items = listed["items"].as_array().context("items")?;
    assert_eq!(items.len(), 3, "{listed}");
    let org_quota = expect(get(&host, "/v1/quotas", &acme.admin)?, 200)?["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|q| q["entity"] == format!("org:{}", acme.id))
        .cloned()
        .context("the org's quota")?;
    let hidden = get(
        &host,
        &format!(
            "/v1/quotas/{}",
            org_quota["id"].as_str().unwrap_or_default()
        ),
        &lead,
    )?;
    assert_eq!(problem(hidden, 404)?.0, "not_found");
    Ok(())
}

#[test]
fn a_spend_quota_refuses_what_a_priced_meter_would_cost_past_it() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    meter(
        &host,
        &acme,
        json!({"key": "tokens", "event_type": "llm.call", "aggregation": "sum",
               "value_path": "tokens", "price": {"currency": "USD", "unit_price": "0.0001"}}),
    )?;
    let me = format!("user:{}", acme.admin_id);
    let budget = quota(
        &host,
        &acme.admin,
        json!({"entity": "org", "currency": "USD", "limit": "0.50", "period": "month"}),
    )?;
    assert_eq!(
        (&budget["limit"], &budget["currency"], &budget["meter"]),
        (&json!("0.50"), &json!("USD"), &Value::Null)
    );
    let first = consume(
        &host,
        &acme,
        json!({"subject": me, "meter": "tokens", "amount": 3000}),
    )?;
    assert_eq!(
        (&first["allowed"], &first["remaining"]),
        (&json!(true), &json!("0.20"))
    );
    // A check weighs the use's cost against the budget too, and counts
    // nothing.
    let checked = use_of(
        &host,
        &acme,
        "/v1/quotas/check",
        json!({"subject": me, "meter": "tokens", "amount": 2001}),
    )?;
    assert_eq!(
        (&checked["allowed"], &checked["blocking"]["currency"]),
        (&json!(false), &json!("USD"))
    );
    let fits = use_of(
        &host,
        &acme,
        "/v1/quotas/check",
        json!({"subject": me, "meter": "tokens", "amount": 2000}),
    )?;
    assert_eq!(
        (&fits["allowed"], &fits["remaining"]),
        (&json!(true), &json!("0.00"))
    );
    let refused = consume(
        &host,
        &acme,
        json!({"subject": me, "meter": "tokens", "amount": 2001}),
    )?;
    assert_eq!(refused["allowed"], false);
    assert_eq!(
        (
            &refused["blocking"]["currency"],
            &refused["blocking"]["used"]
        ),
        (&json!("USD"), &json!("0.30"))
    );
    let exact = consume(
        &host,
        &acme,
        json!({"subject": me, "meter": "tokens", "amount": 2000}),
    )?;
    assert_eq!(exact["remaining"], "0.00");
    let spent = expect(
        get(
            &host,
            "/v1/expenditure?entity=org&currency=USD",
            &acme.admin,
        )?,
        200,
    )?;
    assert!(spent.to_string().contains("\"0.50\""), "{spent}");
    // Limits of spend are decimal strings; of units, whole numbers.
    for (bad, pointer) in [
        (
            json!({"entity": "org", "currency": "USD", "limit": 0.5, "period": "day"}),
            "/limit",
        ),
        (
            json!({"entity": "org", "currency": "usd", "limit": "1", "period": "day"}),
            "/currency",
        ),
        (
            json!({"entity": "org", "meter": "tokens", "currency": "USD", "limit": 1, "period": "day"}),
            "/meter",
        ),
        (
            json!({"entity": "org", "meter": "tokens", "limit": "1", "period": "day"}),
            "/limit",
        ),
        (
            json!({"entity": "org", "meter": "tokens", "limit": 1, "period": "rolling"}),
            "/period",
        ),
        (
            json!({"entity": "org", "meter": "tokens", "limit": 1, "period": "day", "item_id": "x"}),
            "/item_id",
        ),
    ] {
        let reply = post(&host, "/v1/quotas", &bad, Some(&acme.admin))?;
        assert_eq!(problem(reply, 422)?.1, pointer, "{bad}");
    }
    Ok(())
}

#[test]
fn a_consume_read_before_a_change_to_what_it_rests_on_is_not_written_after_it() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    calls_meter(&host, &acme)?;
    let me = format!("user:{}", acme.admin_id);
    let limit = quota(
        &host,
        &acme.admin,
        json!({"entity": me, "meter": "calls", "limit": 5, "period": "lifetime"}),
    )?;
    let id = limit["id"].as_str().context("quota id")?.to_string();
    let epoch = |host: &TestHost| -> Result<i64> {
        Ok(db(host)?.query_row(
            "SELECT metering_epoch FROM orgs WHERE org_id = ?1",
            [&acme.id],
            |row| row.get(0),
        )?)
    };
    let read = epoch(&host)?;
    // Each change a consume's decision rests on moves the org's epoch.
    let mut seen = read;
    let mut moved = |host: &TestHost, what: &str| -> Result<()> {
        let now = epoch(host)?;
        assert!(now > seen, "{what} moved the epoch");
        seen = now;
        Ok(())
    };
    let path = format!("/v1/quotas/{id}/overrides");
    let raise = json!({"limit": 3, "ttl_seconds": 600, "reason": "launch"});
    expect(post(&host, &path, &raise, Some(&acme.admin))?, 201)?;
    moved(&host, "an override")?;
    let path = format!("/v1/quotas/{id}");
    expect(patch(&host, &path, &json!({"limit": 4}), &acme.admin)?, 200)?;
    moved(&host, "a quota's new limit")?;
    let eng = team(&host, &acme, "eng", None)?;
    join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[&eng],
    )?;
    moved(&host, "a new member of a team")?;
    let zone = json!({"time_zone": "Europe/Berlin"});
    let path = format!("/v1/orgs/{}", acme.id);
    expect(patch(&host, &path, &zone, &acme.admin)?, 200)?;
    moved(&host, "the org's time zone")?;
    // A rename changes nothing a decision rests on.
    let zoned = epoch(&host)?;
    let renamed = json!({"name": "Acme Inc", "time_zone": "Europe/Berlin"});
    expect(patch(&host, &path, &renamed, &acme.admin)?, 200)?;
    assert_eq!(epoch(&host)?, zoned, "a rename moves no epoch");

    // A consume's write carrying the epoch it read before them is refused
    // whole: no counter, no event.
    let write = |epoch: i64, event: &str| -> Result<usize> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        let entries = json!([{"q": id, "s": 0, "n": 1, "f": 0, "l": 5}]).to_string();
        Ok(db(&host)?.execute(
            "INSERT INTO quota_consumes (org_id, now, counters, ceiling, source, event_id, event_type, subject_type, subject_id, data, epoch)
             VALUES (?1, ?2, ?3, ?4, 'gatehouse:quotas/consume', ?5, 'agent.run', 'user', ?6, '{}', ?7)",
            rusqlite::params![acme.id, now, entries, 1_i64 << 50, event, acme.admin_id, epoch],
        )?)
    };
    let counted = |host: &TestHost| -> Result<(i64, i64)> {
        let conn = db(host)?;
        let used = conn.query_row(
            "SELECT COALESCE(SUM(used), 0) FROM quota_counters WHERE quota_id = ?1",
            [&id],
            |row| row.get(0),
        )?;
        let events = conn.query_row(
            "SELECT COUNT(*) FROM usage_events WHERE org_id = ?1",
            [&acme.id],
            |row| row.get(0),
        )?;
        Ok((used, events))
    };
    let stale = write(read, "evt_stale");
    let refusal = stale.err().context("a stale epoch must be refused")?;
    assert!(refusal.to_string().contains("quota_moved"), "{refusal}");
    assert_eq!(counted(&host)?, (0, 0));
    // With the epoch as it stands, the same write counts the use.
    write(epoch(&host)?, "evt_current")?;
    assert_eq!(counted(&host)?, (1, 1));
    // And through the route, the next use sees it.
    let body = json!({"subject": me, "meter": "calls"});
    let next = consume(&host, &acme, body)?;
    assert_eq!(
        (&next["allowed"], &next["remaining"]),
        (&json!(true), &json!(1)),
        "{next}"
    );
    Ok(())
}

#[test]
fn concurrent_consumes_fire_each_threshold_once_and_grant_exactly_the_limit() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    calls_meter(&host, &acme)?;
    let me = format!("user:{}", acme.admin_id);
    let watched = quota(
        &host,
        &acme.admin,
        json!({"entity": me, "meter": "calls", "limit": 20, "period": "month",
               "thresholds": [{"percent": 25}, {"units": 11}, {"percent": 100}]}),
    )?;
    let body = json!({"subject": me, "meter": "calls"});
    let answers = concurrently(48, || consume(&host, &acme, body.clone()))?;
    let mut left: Vec<i64> = answers
        .iter()
        .filter(|a| a["allowed"] == true)
        .filter_map(|a| a["remaining"].as_i64())
        .collect();
    left.sort_unstable();
    assert_eq!(
        left,
        (0..20).collect::<Vec<i64>>(),
        "each grant saw its own standing"
    );
    let conn = db(&host)?;
    let mut statement =
        conn.prepare("SELECT threshold, used FROM quota_alerts WHERE quota_id = ?1 ORDER BY used")?;
    let fired = statement
        .query_map([watched["id"].as_str().unwrap_or_default()], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(
        fired,
        vec![
            ("percent:25".to_string(), 5),
            ("units:11".to_string(), 11),
            ("percent:100".to_string(), 20)
        ],
        "each threshold fired once, by the use that reached it"
    );
    Ok(())
}

#[test]
fn an_alert_fires_once_at_eighty_and_once_at_a_hundred_percent() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    calls_meter(&host, &acme)?;
    let me = format!("user:{}", acme.admin_id);
    let watched = quota(
        &host,
        &acme.admin,
        json!({"entity": me, "meter": "calls", "limit": 10, "period": "month",
               "thresholds": [{"percent": 80}, {"percent": 100}]}),
    )?;
    let body = json!({"subject": me, "meter": "calls"});
    let fired = |host: &TestHost| -> Result<Vec<String>> {
        column(
            host,
            "SELECT threshold FROM quota_alerts WHERE quota_id = ?1 ORDER BY used",
            [watched["id"].as_str().unwrap_or_default()],
        )
    };
    for _ in 0..7 {
        consume(&host, &acme, body.clone())?;
    }
    assert!(fired(&host)?.is_empty());
    consume(&host, &acme, body.clone())?;
    assert_eq!(fired(&host)?, vec!["percent:80"]);
    consume(&host, &acme, body.clone())?;
    assert_eq!(fired(&host)?.len(), 1, "80% fires once");
    consume(&host, &acme, body.clone())?;
    assert_eq!(fired(&host)?, vec!["percent:80", "percent:100"]);
    // Refused uses count nothing and fire nothing.
    assert_eq!(consume(&host, &acme, body)?["allowed"], false);
    assert_eq!(fired(&host)?.len(), 2);
    let events: i64 = db(&host)?.query_row(
        "SELECT COUNT(*) FROM org_events WHERE org_id = ?1 AND event_type = 'quota.threshold_reached'",
        [&acme.id],
        |row| row.get(0),
    )?;
    assert_eq!(events, 2);
    let outbox = expect(call(&host, "GET", "/v1/dev/outbox", None, None, &[])?, 200)?;
    let mails = outbox["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|m| m["to"] == "ada@example.com" && m["kind"] == "quota_alert")
        .count();
    assert_eq!(mails, 2, "a mail to the admin per threshold: {outbox}");
    Ok(())
}

#[test]
fn another_orgs_admin_finds_none_of_this_orgs_quotas_or_overrides() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let globex = org(&host, "gus@example.com", "globex")?;
    calls_meter(&host, &acme)?;
    let limit = quota(
        &host,
        &acme.admin,
        json!({"entity": "org", "meter": "calls", "limit": 1, "period": "day"}),
    )?;
    let id = limit["id"].as_str().context("quota id")?;
    let overrides = format!("/v1/quotas/{id}/overrides");
    for reply in [
        get(&host, &overrides, &globex.admin)?,
        post(
            &host,
            &overrides,
            &json!({"limit": 9, "ttl_seconds": 60}),
            Some(&globex.admin),
        )?,
        patch(
            &host,
            &format!("/v1/quotas/{id}"),
            &json!({"limit": 9}),
            &globex.admin,
        )?,
    ] {
        assert_eq!(problem(reply, 404)?.0, "not_found");
    }
    let unauthenticated = call(&host, "GET", &overrides, None, None, &[])?;
    assert_eq!(problem(unauthenticated, 401)?.0, "unauthenticated");
    Ok(())
}

#[test]
fn spend_recorded_directly_counts_toward_a_teams_spend_quota_and_its_alerts() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let eng = team(&host, &acme, "eng", None)?;
    let (_, bob_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[&eng],
    )?;
    meter(
        &host,
        &acme,
        json!({"key": "tokens", "event_type": "llm.call", "aggregation": "sum",
               "value_path": "tokens", "price": {"currency": "EUR", "unit_price": "0.001"}}),
    )?;
    let budget = quota(
        &host,
        &acme.admin,
        json!({"entity": format!("team:{eng}"), "currency": "EUR", "limit": "1.00",
               "period": "month", "thresholds": [{"percent": 50}]}),
    )?;
    let written = expect(
        post(
            &host,
            "/v1/expenditure",
            &json!([
                {"entity": format!("user:{bob_id}"), "amount": "0.60", "currency": "EUR",
                 "item_type": "model", "item_id": "small"},
                {"entity": format!("user:{bob_id}"), "amount": "0.05", "currency": "USD"},
                {"entity": format!("user:{bob_id}"), "amount": "-0.20", "currency": "EUR"}
            ]),
            Some(&acme.admin),
        )?,
        200,
    )?;
    assert_eq!(written["accepted"], 3);
    let used: i64 = db(&host)?.query_row(
        "SELECT COALESCE(SUM(used), 0) FROM quota_counters WHERE quota_id = ?1",
        [budget["id"].as_str().unwrap_or_default()],
        |row| row.get(0),
    )?;
    assert_eq!(
        used, 600_000_000,
        "0.60 EUR; USD and the refund count nothing"
    );
    let fired: i64 = db(&host)?.query_row(
        "SELECT COUNT(*) FROM quota_alerts WHERE quota_id = ?1 AND threshold = 'percent:50'",
        [budget["id"].as_str().unwrap_or_default()],
        |row| row.get(0),
    )?;
    assert_eq!(fired, 1);
    // 500 tokens cost 0.50 EUR: past the team's budget.
    let refused = consume(
        &host,
        &acme,
        json!({"subject": format!("user:{bob_id}"), "meter": "tokens", "amount": 500}),
    )?;
    assert_eq!(refused["allowed"], false);
    assert_eq!(refused["blocking"]["id"], budget["id"]);
    assert_eq!(refused["remaining"], "0.40");
    let fits = consume(
        &host,
        &acme,
        json!({"subject": format!("user:{bob_id}"), "meter": "tokens", "amount": 400}),
    )?;
    assert_eq!(fits["remaining"], "0.00");
    Ok(())
}

#[test]
fn a_reservation_holds_across_midnight_until_it_expires() -> Result<()> {
    let host = clocked()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    calls_meter(&host, &acme)?;
    let me = format!("user:{}", acme.admin_id);
    quota(
        &host,
        &acme.admin,
        json!({"entity": me, "meter": "calls", "limit": 1, "period": "day"}),
    )?;
    // Ten minutes before midnight UTC (the org's zone); held for half an
    // hour, into the next day's period.
    host.advance_clock(1_796_256_000 - BERLIN_2350 - 600)?;
    let held = use_of(
        &host,
        &acme,
        "/v1/quotas/reserve",
        json!({"subject": me, "meter": "calls", "amount": 1, "ttl_seconds": 1800}),
    )?;
    assert_eq!(held["allowed"], true);
    host.advance_clock(20 * 60)?;
    let refused = consume(&host, &acme, json!({"subject": me, "meter": "calls"}))?;
    assert_eq!(
        refused["allowed"], false,
        "the hold still counts: {refused}"
    );
    host.advance_clock(11 * 60)?;
    let freed = consume(&host, &acme, json!({"subject": me, "meter": "calls"}))?;
    assert_eq!(freed["allowed"], true, "expired, it holds nothing: {freed}");
    Ok(())
}

#[test]
fn a_counter_stops_at_its_ceiling_instead_of_overflowing() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    meter(
        &host,
        &acme,
        json!({"key": "bytes", "event_type": "upload", "aggregation": "sum", "value_path": "bytes"}),
    )?;
    let me = format!("user:{}", acme.admin_id);
    let soft = quota(
        &host,
        &acme.admin,
        json!({"entity": me, "meter": "bytes", "limit": 1, "period": "lifetime", "enforcement": "soft"}),
    )?;
    let most = 1_000_000_000_000_000_i64;
    for _ in 0..101 {
        let answer = consume(
            &host,
            &acme,
            json!({"subject": me, "meter": "bytes", "amount": most}),
        )?;
        assert_eq!(answer["allowed"], true);
    }
    let (used, kind): (i64, String) = db(&host)?.query_row(
        "SELECT used, typeof(used) FROM quota_counters WHERE quota_id = ?1",
        [soft["id"].as_str().unwrap_or_default()],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    assert_eq!((used, kind.as_str()), (100 * most, "integer"));
    Ok(())
}

#[test]
fn an_admin_patches_a_quotas_limit_enforcement_and_thresholds() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    calls_meter(&host, &acme)?;
    let me = format!("user:{}", acme.admin_id);
    let limit = quota(
        &host,
        &acme.admin,
        json!({"entity": me, "meter": "calls", "limit": 1, "period": "day"}),
    )?;
    let path = format!("/v1/quotas/{}", limit["id"].as_str().unwrap_or_default());
    consume(&host, &acme, json!({"subject": me, "meter": "calls"}))?;
    assert_eq!(
        consume(&host, &acme, json!({"subject": me, "meter": "calls"}))?["allowed"],
        false
    );
    let changed = expect(
        patch(
            &host,
            &path,
            &json!({"limit": 3, "thresholds": [{"percent": 50}]}),
            &acme.admin,
        )?,
        200,
    )?;
    assert_eq!(
        (
            &changed["limit"],
            &changed["thresholds"],
            &changed["enforcement"]
        ),
        (&json!(3), &json!([{"percent": 50}]), &json!("hard"))
    );
    assert_eq!(expect(get(&host, &path, &acme.admin)?, 200)?, changed);
    let now = consume(&host, &acme, json!({"subject": me, "meter": "calls"}))?;
    assert_eq!(
        (&now["allowed"], &now["remaining"]),
        (&json!(true), &json!(1))
    );
    for bad in [
        json!({"limit": "3"}),
        json!({"limit": -1}),
        json!({"thresholds": [{"percent": 0}]}),
        json!({"enforcement": "maybe"}),
    ] {
        let reply = patch(&host, &path, &bad, &acme.admin)?;
        assert_eq!(problem(reply, 422)?.0, "validation_failed", "{bad}");
    }
    let anonymous = call(&host, "PATCH", &path, Some(&json!({"limit": 9})), None, &[])?;
    assert_eq!(problem(anonymous, 401)?.0, "unauthenticated");
    let unchanged = expect(get(&host, &path, &acme.admin)?, 200)?;
    assert_eq!(unchanged["limit"], 3);
    Ok(())
}
