//! Usage queries and quota reservations through the built `metering`
//! component: buckets by day for each aggregation, with and without a
//! group, days, weeks and months in the org's time zone (a day with a
//! clock change too), and who may read whose usage; reserve, commit and
//! release,
//! reservations that expire by themselves, concurrent reserves against a
//! hard limit, the tenant boundary, validation codes and credentials.

use anyhow::{Context, Result};
use gatehouse_tests::app::{
    Org, app_config, call, concurrently, database as db, expect, join, org, post, problem,
    start_app,
};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

fn meter(host: &TestHost, org: &Org, body: Value) -> Result<Value> {
    expect(post(host, "/v1/meters", &body, Some(&org.admin))?, 201)
}

/// A sum meter `tokens` over `usage.tokens`, grouped by `model`.
fn tokens_meter(host: &TestHost, org: &Org) -> Result<Value> {
    meter(
        host,
        org,
        json!({"key": "tokens", "event_type": "llm.call", "aggregation": "sum",
               "value_path": "usage.tokens", "group_by": ["model"]}),
    )
}

fn quota(host: &TestHost, org: &Org, entity: &str, meter: &str, limit: i64) -> Result<String> {
    let quota = expect(
        post(
            host,
            "/v1/quotas",
            &json!({"entity": entity, "meter": meter, "limit": limit, "period": "day"}),
            Some(&org.admin),
        )?,
        201,
    )?;
    Ok(quota["id"].as_str().context("quota id")?.to_string())
}

fn used(host: &TestHost, quota_id: &str) -> Result<i64> {
    Ok(db(host)?.query_row(
        "SELECT COALESCE(SUM(used), 0) FROM quota_counters WHERE quota_id = ?1",
        [quota_id],
        |row| row.get(0),
    )?)
}

fn usage(host: &TestHost, token: &str, query: &str) -> Result<Reply> {
    call(
        host,
        "GET",
        &format!("/v1/usage?{query}"),
        None,
        Some(token),
        &[],
    )
}

/// Sets the org's time zone, as its admin.
fn zone(host: &TestHost, org: &Org, name: &str) -> Result<()> {
    let patched = expect(
        call(
            host,
            "PATCH",
            &format!("/v1/orgs/{}", org.id),
            Some(&json!({"time_zone": name})),
            Some(&org.admin),
            &[],
        )?,
        200,
    )?;
    assert_eq!(patched["time_zone"], name);
    Ok(())
}

fn reserve(host: &TestHost, org: &Org, body: Value) -> Result<Value> {
    expect(
        post(host, "/v1/quotas/reserve", &body, Some(&org.admin))?,
        200,
    )
}

fn end(host: &TestHost, org: &Org, id: &str, how: &str, body: Value) -> Result<Reply> {
    post(
        host,
        &format!("/v1/quotas/reservations/{id}/{how}"),
        &body,
        Some(&org.admin),
    )
}

fn event(id: &str, subject: &str, time: &str, model: &str, tokens: i64) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "usage-test", "type": "llm.call",
           "subject": subject, "time": time, "data": {"model": model, "usage": {"tokens": tokens}}})
}

/// `(start, value)` of every bucket, or `(start, group, value)` with groups.
fn buckets(answer: &Value) -> Vec<Value> {
    answer["buckets"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|b| match b.get("group") {
                    Some(group) => json!([b["start"], group, b["value"]]),
                    None => json!([b["start"], b["value"]]),
                })
                .collect()
        })
        .unwrap_or_default()
}

const THREE_DAYS: &str = "from=2026-11-01T06:00:00Z&to=2026-11-04T00:00:00Z&window=day";

#[test]
fn usage_comes_in_daily_buckets_for_every_aggregation_and_by_group() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    tokens_meter(&host, &acme)?;
    meter(
        &host,
        &acme,
        json!({"key": "calls", "event_type": "llm.call", "aggregation": "count"}),
    )?;
    meter(
        &host,
        &acme,
        json!({"key": "models", "event_type": "llm.call", "aggregation": "unique_count", "value_path": "model"}),
    )?;
    meter(
        &host,
        &acme,
        json!({"key": "peak", "event_type": "llm.call", "aggregation": "max", "value_path": "usage.tokens"}),
    )?;
    meter(
        &host,
        &acme,
        json!({"key": "last-model", "event_type": "llm.call", "aggregation": "latest", "value_path": "model"}),
    )?;
    let ada = format!("user:{}", acme.admin_id);
    let whole_org = format!("org:{}", acme.id);
    let batch = json!([
        event("e1", &ada, "2026-11-01T08:00:00Z", "small", 5),
        event("e2", &ada, "2026-11-01T23:59:59Z", "large", 7),
        event("e3", &ada, "2026-11-02T00:00:00Z", "small", 10),
        event("e4", &whole_org, "2026-11-02T12:00:00+02:00", "small", 100),
        // Before `from`, after `to`, and of another type: none count.
        event("e5", &ada, "2026-11-01T05:59:59Z", "small", 1000),
        event("e6", &ada, "2026-11-04T00:00:00Z", "small", 1000),
        {"id": "e7", "source": "usage-test", "type": "tool.call", "subject": ada,
         "time": "2026-11-01T09:00:00Z", "data": {"usage": {"tokens": 1000}}},
    ]);
    let sent = expect(
        post(&host, "/v1/usage/events", &batch, Some(&acme.admin))?,
        200,
    )?;
    assert_eq!(sent["accepted"], 7, "{sent}");

    let mine = expect(
        usage(
            &host,
            &acme.admin,
            &format!("meter=tokens&subject={ada}&{THREE_DAYS}"),
        )?,
        200,
    )?;
    assert_eq!(
        (&mine["meter"], &mine["window"], &mine["subject"]),
        (&json!("tokens"), &json!("day"), &json!(ada))
    );
    assert_eq!(
        (&mine["from"], &mine["to"]),
        (
            &json!("2026-11-01T06:00:00Z"),
            &json!("2026-11-04T00:00:00Z")
        )
    );
    assert_eq!(
        buckets(&mine),
        vec![
            json!(["2026-11-01T06:00:00Z", 12]),
            json!(["2026-11-02T00:00:00Z", 10]),
            json!(["2026-11-03T00:00:00Z", 0]),
        ]
    );
    assert_eq!(mine["buckets"][0]["end"], "2026-11-02T00:00:00Z");

    let calls = expect(
        usage(&host, &acme.admin, &format!("meter=calls&{THREE_DAYS}"))?,
        200,
    )?;
    assert_eq!(calls["subject"], whole_org.as_str());
    assert_eq!(
        buckets(&calls),
        vec![
            json!(["2026-11-01T06:00:00Z", 2]),
            json!(["2026-11-02T00:00:00Z", 2]),
            json!(["2026-11-03T00:00:00Z", 0]),
        ]
    );
    let models = expect(
        usage(
            &host,
            &acme.admin,
            &format!("meter=models&subject=org&{THREE_DAYS}"),
        )?,
        200,
    )?;
    assert_eq!(
        buckets(&models),
        vec![
            json!(["2026-11-01T06:00:00Z", 2]),
            json!(["2026-11-02T00:00:00Z", 1]),
            json!(["2026-11-03T00:00:00Z", 0]),
        ]
    );

    // Empty windows of max and latest meters have no value.
    for (key, expected) in [
        ("peak", [json!(7), json!(100)]),
        ("last-model", [json!("large"), json!("small")]),
    ] {
        let answer = expect(
            usage(&host, &acme.admin, &format!("meter={key}&{THREE_DAYS}"))?,
            200,
        )?;
        assert_eq!(
            buckets(&answer),
            vec![
                json!(["2026-11-01T06:00:00Z", expected[0]]),
                json!(["2026-11-02T00:00:00Z", expected[1]]),
                json!(["2026-11-03T00:00:00Z", null]),
            ],
            "{key}"
        );
    }

    let grouped = expect(
        usage(
            &host,
            &acme.admin,
            &format!("meter=tokens&group_by=model&{THREE_DAYS}"),
        )?,
        200,
    )?;
    assert_eq!(grouped["group_by"], "model");
    assert_eq!(
        buckets(&grouped),
        vec![
            json!(["2026-11-01T06:00:00Z", "large", 7]),
            json!(["2026-11-01T06:00:00Z", "small", 5]),
            json!(["2026-11-02T00:00:00Z", "small", 110]),
        ]
    );
    let monthly = expect(
        usage(
            &host,
            &acme.admin,
            "meter=tokens&from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z&window=month",
        )?,
        200,
    )?;
    assert_eq!(
        buckets(&monthly),
        vec![
            json!(["2026-10-01T00:00:00Z", 0]),
            json!(["2026-11-01T00:00:00Z", 2122]),
        ]
    );
    Ok(())
}

#[test]
fn days_weeks_and_months_start_at_the_orgs_midnights_once_it_has_a_time_zone() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    tokens_meter(&host, &acme)?;
    let whole_org = format!("org:{}", acme.id);
    // Tokyo is 9 hours ahead of UTC, without daylight saving time: its
    // midnight is 15:00 UTC. The first event is Monday 00:30 there but
    // still Sunday in UTC; the last two share a UTC day, not a Tokyo one.
    let batch = json!([
        event("t1", &whole_org, "2026-11-29T15:30:00Z", "small", 100),
        event("t2", &whole_org, "2026-11-30T14:30:00Z", "small", 5),
        event("t3", &whole_org, "2026-11-30T15:30:00Z", "large", 7),
    ]);
    expect(
        post(&host, "/v1/usage/events", &batch, Some(&acme.admin))?,
        200,
    )?;
    let read = |query: &str| usage(&host, &acme.admin, &format!("meter=tokens&{query}"));
    let days = "from=2026-11-30T00:00:00Z&to=2026-12-02T00:00:00Z&window=day";
    let weeks = "from=2026-11-23T00:00:00Z&to=2026-12-07T00:00:00Z&window=week";

    let utc = expect(read(days)?, 200)?;
    assert_eq!(utc["time_zone"], "UTC");
    assert_eq!(
        buckets(&utc),
        vec![
            json!(["2026-11-30T00:00:00Z", 12]),
            json!(["2026-12-01T00:00:00Z", 0]),
        ]
    );
    let utc_weeks = expect(read(weeks)?, 200)?;
    assert_eq!(utc_weeks["window"], "week");
    assert_eq!(
        buckets(&utc_weeks),
        vec![
            json!(["2026-11-23T00:00:00Z", 100]),
            json!(["2026-11-30T00:00:00Z", 12]),
        ]
    );

    zone(&host, &acme, "Asia/Tokyo")?;
    let tokyo = expect(read(days)?, 200)?;
    assert_eq!(tokyo["time_zone"], "Asia/Tokyo");
    assert_eq!(
        buckets(&tokyo),
        vec![
            json!(["2026-11-30T00:00:00Z", 5]),
            json!(["2026-11-30T15:00:00Z", 7]),
            json!(["2026-12-01T15:00:00Z", 0]),
        ]
    );
    let ends: Vec<&Value> = tokyo["buckets"]
        .as_array()
        .context("buckets")?
        .iter()
        .map(|b| &b["end"])
        .collect();
    assert_eq!(
        ends,
        [
            "2026-11-30T15:00:00Z",
            "2026-12-01T15:00:00Z",
            "2026-12-02T00:00:00Z"
        ]
    );
    // Weeks run from Monday's midnight in Tokyo: Sunday 15:00 UTC.
    let tokyo_weeks = expect(read(weeks)?, 200)?;
    assert_eq!(
        buckets(&tokyo_weeks),
        vec![
            json!(["2026-11-23T00:00:00Z", 0]),
            json!(["2026-11-29T15:00:00Z", 112]),
            json!(["2026-12-06T15:00:00Z", 0]),
        ]
    );
    let grouped = expect(read(&format!("{days}&group_by=model"))?, 200)?;
    assert_eq!(
        buckets(&grouped),
        vec![
            json!(["2026-11-30T00:00:00Z", "small", 5]),
            json!(["2026-11-30T15:00:00Z", "large", 7]),
        ]
    );
    let months = expect(
        read("from=2026-11-01T00:00:00Z&to=2027-01-01T00:00:00Z&window=month")?,
        200,
    )?;
    assert_eq!(
        buckets(&months),
        vec![
            json!(["2026-11-01T00:00:00Z", 105]),
            json!(["2026-11-30T15:00:00Z", 7]),
            json!(["2026-12-31T15:00:00Z", 0]),
        ]
    );
    // Hours stay UTC's.
    let hours = expect(
        read("from=2026-11-30T14:00:00Z&to=2026-11-30T16:00:00Z&window=hour")?,
        200,
    )?;
    assert_eq!(
        buckets(&hours),
        vec![
            json!(["2026-11-30T14:00:00Z", 5]),
            json!(["2026-11-30T15:00:00Z", 7]),
        ]
    );
    Ok(())
}

#[test]
fn the_day_clocks_go_forward_in_new_york_is_a_bucket_of_23_hours() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    meter(
        &host,
        &acme,
        json!({"key": "calls", "event_type": "llm.call", "aggregation": "count"}),
    )?;
    zone(&host, &acme, "America/New_York")?;
    let whole_org = format!("org:{}", acme.id);
    // 2026-03-08 runs from 05:00 UTC (midnight EST) to 04:00 UTC the next
    // day (midnight EDT). The last event is 00:30 on the 9th in New York,
    // inside a day of 24 hours from the 8th's midnight.
    let batch = json!([
        event("n1", &whole_org, "2026-03-08T04:30:00Z", "small", 1),
        event("n2", &whole_org, "2026-03-08T05:30:00Z", "small", 1),
        event("n3", &whole_org, "2026-03-09T03:30:00Z", "small", 1),
        event("n4", &whole_org, "2026-03-09T04:30:00Z", "small", 1),
    ]);
    expect(
        post(&host, "/v1/usage/events", &batch, Some(&acme.admin))?,
        200,
    )?;
    let answer = expect(
        usage(
            &host,
            &acme.admin,
            "meter=calls&from=2026-03-07T05:00:00Z&to=2026-03-10T04:00:00Z&window=day",
        )?,
        200,
    )?;
    assert_eq!(answer["time_zone"], "America/New_York");
    assert_eq!(
        buckets(&answer),
        vec![
            json!(["2026-03-07T05:00:00Z", 1]),
            json!(["2026-03-08T05:00:00Z", 2]),
            json!(["2026-03-09T04:00:00Z", 1]),
        ]
    );
    let short = &answer["buckets"][1];
    assert_eq!(
        (&short["start"], &short["end"]),
        (
            &json!("2026-03-08T05:00:00Z"),
            &json!("2026-03-09T04:00:00Z")
        )
    );
    Ok(())
}

#[test]
fn a_member_reads_their_own_usage_and_only_an_admin_reads_others() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    tokens_meter(&host, &acme)?;
    let (bob, bob_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[],
    )?;
    let batch = json!([event(
        "b1",
        &format!("user:{bob_id}"),
        "2026-11-01T08:00:00Z",
        "small",
        3
    )]);
    expect(
        post(&host, "/v1/usage/events", &batch, Some(&acme.admin))?,
        200,
    )?;
    let own = expect(
        usage(
            &host,
            &bob,
            &format!("meter=tokens&subject=user:{bob_id}&{THREE_DAYS}"),
        )?,
        200,
    )?;
    assert_eq!(own["buckets"][0]["value"], 3);
    for subject in [format!("user:{}", acme.admin_id), "org".to_string()] {
        let other = usage(
            &host,
            &bob,
            &format!("meter=tokens&subject={subject}&{THREE_DAYS}"),
        )?;
        assert_eq!(problem(other, 403)?.0, "forbidden", "{subject}");
    }
    let whole = usage(&host, &bob, &format!("meter=tokens&{THREE_DAYS}"))?;
    assert_eq!(problem(whole, 403)?.0, "forbidden");
    let as_admin = expect(
        usage(
            &host,
            &acme.admin,
            &format!("meter=tokens&subject=user:{bob_id}&{THREE_DAYS}"),
        )?,
        200,
    )?;
    assert_eq!(as_admin["buckets"][0]["value"], 3);
    Ok(())
}

#[test]
fn a_commit_of_less_than_reserved_counts_only_the_actual_amount() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    tokens_meter(&host, &acme)?;
    let limit = quota(&host, &acme, "org", "tokens", 100)?;
    let ada = format!("user:{}", acme.admin_id);
    let held = reserve(
        &host,
        &acme,
        json!({"subject": ada, "meter": "tokens", "amount": 40}),
    )?;
    assert_eq!(
        (&held["allowed"], &held["remaining"], &held["blocking"]),
        (&json!(true), &json!(60), &Value::Null)
    );
    let id = held["reservation_id"].as_str().context("reservation id")?;
    assert!(id.starts_with("rsv_"), "{held}");
    assert!(held["expires_at"].as_i64().is_some(), "{held}");
    // The held units count: 61 more do not fit, neither by check nor consume.
    let check = |amount: i64| {
        expect(
            post(
                &host,
                "/v1/quotas/check",
                &json!({"subject": ada, "meter": "tokens", "amount": amount}),
                Some(&acme.admin),
            )?,
            200,
        )
    };
    let over = check(61)?;
    assert_eq!(
        (&over["allowed"], &over["blocking"]["used"]),
        (&json!(false), &json!(40))
    );
    let consumed = post(
        &host,
        "/v1/quotas/consume",
        &json!({"subject": ada, "meter": "tokens", "amount": 61}),
        Some(&acme.admin),
    )?;
    assert_eq!(expect(consumed, 200)?["allowed"], false);
    assert_eq!(used(&host, &limit)?, 0);

    let too_much = end(&host, &acme, id, "commit", json!({"amount": 41}))?;
    assert_eq!(problem(too_much, 422)?.2, "exceeds_reservation");
    let committed = expect(end(&host, &acme, id, "commit", json!({"amount": 25}))?, 200)?;
    assert_eq!(
        (
            &committed["state"],
            &committed["amount"],
            &committed["committed"]
        ),
        (&json!("committed"), &json!(40), &json!(25))
    );
    assert_eq!(used(&host, &limit)?, 25);
    assert_eq!(check(75)?["remaining"], 0);
    assert_eq!(check(76)?["allowed"], false);
    let recorded: String = db(&host)?.query_row(
        "SELECT data FROM usage_events WHERE org_id = ?1 AND source = 'gatehouse:quotas/consume'",
        [&acme.id],
        |row| row.get(0),
    )?;
    assert_eq!(
        serde_json::from_str::<Value>(&recorded)?,
        json!({"usage": {"tokens": 25}})
    );
    for (how, body) in [("commit", json!({"amount": 1})), ("release", json!({}))] {
        let again = end(&host, &acme, id, how, body)?;
        assert_eq!(
            problem(again, 409)?,
            (
                "conflict".into(),
                String::new(),
                "reservation_finished".into()
            ),
            "{how}"
        );
    }

    // A release frees the whole amount and counts nothing.
    let second = reserve(
        &host,
        &acme,
        json!({"subject": ada, "meter": "tokens", "amount": 75}),
    )?;
    assert_eq!(check(1)?["allowed"], false);
    let second_id = second["reservation_id"].as_str().context("second id")?;
    let released = expect(end(&host, &acme, second_id, "release", json!({}))?, 200)?;
    assert_eq!(
        (&released["state"], &released["committed"]),
        (&json!("released"), &Value::Null)
    );
    assert_eq!(check(75)?["allowed"], true);
    assert_eq!(used(&host, &limit)?, 25);
    Ok(())
}

#[test]
fn thirty_two_concurrent_reserves_of_one_against_a_limit_of_ten_hold_exactly_ten() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    meter(
        &host,
        &acme,
        json!({"key": "calls", "event_type": "agent.run", "aggregation": "count"}),
    )?;
    let limit = quota(
        &host,
        &acme,
        &format!("user:{}", acme.admin_id),
        "calls",
        10,
    )?;
    let body = json!({"subject": format!("user:{}", acme.admin_id), "meter": "calls", "amount": 1});
    let answers = concurrently(32, || reserve(&host, &acme, body.clone()))?;
    let granted: Vec<&Value> = answers.iter().filter(|a| a["allowed"] == true).collect();
    assert_eq!(granted.len(), 10);
    assert!(granted.iter().all(|a| a["reservation_id"].is_string()));
    let refused: Vec<&Value> = answers.iter().filter(|a| a["allowed"] == false).collect();
    assert_eq!(refused.len(), 22);
    assert!(
        refused
            .iter()
            .all(|a| a["reservation_id"].is_null() && a["blocking"]["id"] == limit.as_str())
    );
    let held: i64 = db(&host)?.query_row(
        "SELECT COALESCE(SUM(amount), 0) FROM quota_holds WHERE quota_id = ?1",
        [&limit],
        |row| row.get(0),
    )?;
    assert_eq!(held, 10);
    // Nothing is left for a consume either.
    let consumed = expect(
        post(&host, "/v1/quotas/consume", &body, Some(&acme.admin))?,
        200,
    )?;
    assert_eq!(consumed["allowed"], false);
    assert_eq!(used(&host, &limit)?, 0);
    Ok(())
}

#[test]
fn a_reservation_that_expires_frees_its_amount_and_can_no_longer_be_committed() -> Result<()> {
    let mut config = app_config();
    config.controllable_clock = true;
    let host = TestHost::start(config)?;
    let acme = org(&host, "ada@example.com", "acme")?;
    tokens_meter(&host, &acme)?;
    let limit = quota(&host, &acme, "org", "tokens", 10)?;
    let ada = format!("user:{}", acme.admin_id);
    let held = reserve(
        &host,
        &acme,
        json!({"subject": ada, "meter": "tokens", "amount": 10, "ttl_seconds": 60}),
    )?;
    let id = held["reservation_id"].as_str().context("reservation id")?;
    let refused = reserve(
        &host,
        &acme,
        json!({"subject": ada, "meter": "tokens", "amount": 1}),
    )?;
    assert_eq!(refused["allowed"], false);
    // The clock passes the minute's expiry; nothing else releases it.
    host.advance_clock(61)?;
    let consumed = expect(
        post(
            &host,
            "/v1/quotas/consume",
            &json!({"subject": ada, "meter": "tokens", "amount": 4}),
            Some(&acme.admin),
        )?,
        200,
    )?;
    assert_eq!(
        (&consumed["allowed"], &consumed["remaining"]),
        (&json!(true), &json!(6))
    );
    assert_eq!(used(&host, &limit)?, 4);
    let (state, holds): (String, i64) = db(&host)?.query_row(
        "SELECT state, (SELECT COUNT(*) FROM quota_holds h WHERE h.reservation_id = r.reservation_id)
         FROM quota_reservations r WHERE reservation_id = ?1",
        [id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    assert_eq!((state.as_str(), holds), ("expired", 0));
    for (how, body) in [("commit", json!({"amount": 3})), ("release", json!({}))] {
        assert_eq!(
            problem(end(&host, &acme, id, how, body)?, 409)?.2,
            "reservation_expired",
            "{how}"
        );
    }
    assert_eq!(used(&host, &limit)?, 4);
    Ok(())
}

#[test]
fn another_org_finds_neither_the_meters_usage_nor_the_reservations() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let globex = org(&host, "gus@example.com", "globex")?;
    tokens_meter(&host, &acme)?;
    let held = reserve(
        &host,
        &acme,
        json!({"subject": format!("user:{}", acme.admin_id), "meter": "tokens", "amount": 5}),
    )?;
    let id = held["reservation_id"].as_str().context("reservation id")?;

    let foreign_usage = usage(&host, &globex.admin, &format!("meter=tokens&{THREE_DAYS}"))?;
    assert_eq!(problem(foreign_usage, 404)?.0, "not_found");
    for (how, body) in [("commit", json!({"amount": 1})), ("release", json!({}))] {
        assert_eq!(
            problem(end(&host, &globex, id, how, body)?, 404)?.0,
            "not_found",
            "{how}"
        );
    }
    tokens_meter(&host, &globex)?;
    let foreign_subject = usage(
        &host,
        &globex.admin,
        &format!("meter=tokens&subject=user:{}&{THREE_DAYS}", acme.admin_id),
    )?;
    assert_eq!(problem(foreign_subject, 400)?.2, "unknown_subject");
    let foreign_reserve = post(
        &host,
        "/v1/quotas/reserve",
        &json!({"subject": format!("user:{}", acme.admin_id), "meter": "tokens", "amount": 1}),
        Some(&globex.admin),
    )?;
    assert_eq!(problem(foreign_reserve, 422)?.2, "unknown_subject");
    // Acme's reservation is untouched by all that.
    let committed = expect(end(&host, &acme, id, "commit", json!({"amount": 5}))?, 200)?;
    assert_eq!(committed["state"], "committed");
    Ok(())
}

#[test]
fn validation_errors_of_usage_and_reservations_are_problem_documents_with_stable_codes()
-> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    tokens_meter(&host, &acme)?;
    meter(
        &host,
        &acme,
        json!({"key": "calls", "event_type": "agent.run", "aggregation": "count"}),
    )?;
    let admin = &acme.admin;
    let cases = [
        (format!("from=x&{THREE_DAYS}"), "/meter", "required"),
        ("meter=tokens&window=day".into(), "/from", "required"),
        (
            format!("meter=tokens&{}", THREE_DAYS.replace("06:00:00Z", "6am")),
            "/from",
            "invalid",
        ),
        (
            "meter=tokens&from=2026-11-02T00:00:00Z&to=2026-11-02T00:00:00Z&window=day".into(),
            "/to",
            "not_after_from",
        ),
        (
            format!("meter=tokens&{}", THREE_DAYS.replace("day", "fortnight")),
            "/window",
            "invalid",
        ),
        (
            "meter=tokens&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z&window=hour".into(),
            "/window",
            "too_many_buckets",
        ),
        (
            format!("meter=tokens&group_by=region&{THREE_DAYS}"),
            "/group_by",
            "unknown_group_by",
        ),
        (
            format!("meter=tokens&subject=robot:r1&{THREE_DAYS}"),
            "/subject",
            "invalid",
        ),
    ];
    for (query, pointer, code) in cases {
        assert_eq!(
            problem(usage(&host, admin, &query)?, 400)?,
            ("invalid_query".into(), pointer.into(), code.into()),
            "{query}"
        );
    }
    let missing = usage(&host, admin, &format!("meter=nothing&{THREE_DAYS}"))?;
    assert_eq!(problem(missing, 404)?.0, "not_found");

    let ada = format!("user:{}", acme.admin_id);
    let bodies = [
        (
            json!({"subject": ada, "meter": "tokens", "amount": 1, "ttl_seconds": 0}),
            "/ttl_seconds",
            "invalid_range",
        ),
        (
            json!({"subject": ada, "meter": "tokens", "amount": 1, "ttl_seconds": 3601}),
            "/ttl_seconds",
            "invalid_range",
        ),
        (
            json!({"subject": ada, "meter": "tokens", "amount": 0}),
            "/amount",
            "invalid_range",
        ),
        (
            json!({"subject": ada, "meter": "calls", "amount": 2}),
            "/amount",
            "count_meter_amount",
        ),
        (
            json!({"subject": ada, "meter": "nothing", "amount": 1}),
            "/meter",
            "unknown_meter",
        ),
        (
            json!({"subject": "org", "meter": "tokens", "amount": 1}),
            "/subject",
            "invalid_subject",
        ),
    ];
    for (body, pointer, code) in bodies {
        let reply = post(&host, "/v1/quotas/reserve", &body, Some(admin))?;
        assert_eq!(
            problem(reply, 422)?,
            ("validation_failed".into(), pointer.into(), code.into()),
            "{body}"
        );
    }
    let held = reserve(
        &host,
        &acme,
        json!({"subject": ada, "meter": "tokens", "amount": 3}),
    )?;
    let id = held["reservation_id"].as_str().context("reservation id")?;
    assert_eq!(held["remaining"], Value::Null, "no quota applies");
    let negative = end(&host, &acme, id, "commit", json!({"amount": -1}))?;
    assert_eq!(problem(negative, 422)?.1, "/amount");
    let unknown = end(&host, &acme, "rsv_0", "commit", json!({"amount": 1}))?;
    assert_eq!(problem(unknown, 404)?.0, "not_found");
    Ok(())
}

#[test]
fn usage_and_reservation_routes_refuse_missing_or_invalid_credentials_with_401() -> Result<()> {
    let host = start_app()?;
    let routes = [
        ("GET", format!("/v1/usage?meter=tokens&{THREE_DAYS}")),
        ("POST", "/v1/quotas/reserve".to_string()),
        ("POST", "/v1/quotas/reservations/rsv_1/commit".to_string()),
        ("POST", "/v1/quotas/reservations/rsv_1/release".to_string()),
    ];
    for (method, path) in routes {
        let body = (method == "POST").then(|| json!({}));
        for token in [None, Some("ghs_not-a-session")] {
            let reply = call(&host, method, &path, body.as_ref(), token, &[])?;
            assert_eq!(problem(reply, 401)?.0, "unauthenticated", "{method} {path}");
        }
    }
    Ok(())
}
