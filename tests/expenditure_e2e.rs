//! Expenditure through the built `metering` component: records written
//! directly and summed exactly by currency, groups by item, calendar day
//! of the org's time zone and entity, roll-ups to a member's teams (and
//! the teams above them) and the org, idempotent re-sends, the month's
//! forecast, who may read whose spend, the tenant boundary, validation
//! codes, credentials, and meter prices.

use anyhow::{Context, Result};
use gatehouse_tests::app::{
    Org, app_config, call, column, database as db, expect, join, org, post, problem, start_app,
    team,
};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

fn write(host: &TestHost, token: &str, body: Value) -> Result<Reply> {
    post(host, "/v1/expenditure", &body, Some(token))
}

fn written(host: &TestHost, org: &Org, body: Value) -> Result<Value> {
    expect(write(host, &org.admin, body)?, 200)
}

fn spend(host: &TestHost, token: &str, query: &str) -> Result<Reply> {
    call(
        host,
        "GET",
        &format!("/v1/expenditure?{query}"),
        None,
        Some(token),
        &[],
    )
}

fn read(host: &TestHost, org: &Org, query: &str) -> Result<Value> {
    expect(spend(host, &org.admin, query)?, 200)
}

/// A record at a fixed time of March 2025.
fn at(entity: &str, amount: &str, time: &str) -> Value {
    json!({"entity": entity, "amount": amount, "currency": "USD", "timestamp": time})
}

const MARCH: &str = "from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z";

#[test]
fn a_tenth_and_two_tenths_make_exactly_three_tenths_and_big_sums_stay_exact() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let me = format!("user:{}", acme.admin_id);
    // A hundred records of the largest amount one takes (100 million)
    // sum past what i64 billionths hold.
    let mut records = vec![
        at(&me, "0.1", "2025-03-03T10:00:00Z"),
        at(&me, "0.2", "2025-03-03T11:00:00Z"),
        json!({"entity": "org", "amount": "-0.000000001", "currency": "EUR", "timestamp": "2025-03-06T00:00:00Z"}),
    ];
    for hour in 0..100 {
        records.push(json!({"entity": "org", "amount": "100000000", "currency": "EUR",
                            "timestamp": format!("2025-03-04T{:02}:{:02}:00Z", hour / 60, hour % 60)}));
    }
    let sent = written(&host, &acme, Value::Array(records))?;
    assert_eq!(
        (&sent["accepted"], &sent["duplicates"]),
        (&json!(103), &json!(0))
    );
    let ids = sent["records"].as_array().context("records")?;
    assert!(
        ids.iter()
            .all(|r| r["id"].as_str().is_some_and(|id| id.starts_with("exp_")))
    );
    let month = read(&host, &acme, MARCH)?;
    // Past i64 billionths, the total is still exact.
    assert_eq!(
        month["totals"],
        json!({"USD": "0.30", "EUR": "9999999999.999999999"})
    );
    assert_eq!(month["entity"], format!("org:{}", acme.id));
    let mine = read(&host, &acme, &format!("{MARCH}&entity={me}&currency=USD"))?;
    assert_eq!(mine["totals"], json!({"USD": "0.30"}));
    let stored: i64 = db(&host)?.query_row(
        "SELECT SUM(amount) FROM expenditure_records WHERE org_id = ?1 AND currency = 'USD'",
        [&acme.id],
        |row| row.get(0),
    )?;
    assert_eq!(stored, 300_000_000, "billionths, never a float");
    Ok(())
}

#[test]
fn spend_groups_by_item_by_day_of_the_orgs_time_zone_and_by_entity() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let (_, bob_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[],
    )?;
    db(&host)?.execute(
        "UPDATE orgs SET time_zone = 'Asia/Tokyo' WHERE org_id = ?1",
        [&acme.id],
    )?;
    let ada = format!("user:{}", acme.admin_id);
    let bob = format!("user:{bob_id}");
    let item = |entity: &str, amount: &str, time: &str, id: &str| {
        json!({"entity": entity, "amount": amount, "currency": "USD", "timestamp": time,
               "item_type": "model", "item_id": id})
    };
    written(
        &host,
        &acme,
        json!([
            item(&ada, "1.25", "2025-03-01T01:00:00Z", "small"),
            // 20:00 UTC on the 1st is the 2nd in Tokyo.
            item(&bob, "2.50", "2025-03-01T20:00:00Z", "large"),
            item(&bob, "0.25", "2025-03-02T02:00:00Z", "small"),
            at(&ada, "4", "2025-03-03T03:00:00Z"),
        ]),
    )?;
    let range = "from=2025-02-28T15:00:00Z&to=2025-03-03T15:00:00Z";
    let items = read(&host, &acme, &format!("{range}&group_by=item"))?;
    assert_eq!(items["group_by"], json!(["item"]));
    assert_eq!(
        items["groups"],
        json!([
            {"item_type": null, "item_id": null, "totals": {"USD": "4.00"}},
            {"item_type": "model", "item_id": "large", "totals": {"USD": "2.50"}},
            {"item_type": "model", "item_id": "small", "totals": {"USD": "1.50"}},
        ])
    );
    let days = read(&host, &acme, &format!("{range}&group_by=day"))?;
    assert_eq!(days["time_zone"], "Asia/Tokyo");
    assert_eq!(
        days["groups"],
        json!([
            {"start": "2025-02-28T15:00:00Z", "end": "2025-03-01T15:00:00Z", "totals": {"USD": "1.25"}},
            {"start": "2025-03-01T15:00:00Z", "end": "2025-03-02T15:00:00Z", "totals": {"USD": "2.75"}},
            {"start": "2025-03-02T15:00:00Z", "end": "2025-03-03T15:00:00Z", "totals": {"USD": "4.00"}},
        ])
    );
    let by_entity = read(&host, &acme, &format!("{range}&group_by=entity,day"))?;
    let groups = by_entity["groups"].as_array().context("groups")?;
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[1]["entity"], bob);
    assert_eq!(groups[1]["totals"], json!({"USD": "2.75"}));
    let weeks = read(&host, &acme, &format!("{range}&group_by=week"))?;
    // Monday 2025-03-03 starts a week in Tokyo at 15:00 UTC the day before.
    assert_eq!(
        weeks["groups"],
        json!([
            {"start": "2025-02-28T15:00:00Z", "end": "2025-03-02T15:00:00Z", "totals": {"USD": "4.00"}},
            {"start": "2025-03-02T15:00:00Z", "end": "2025-03-03T15:00:00Z", "totals": {"USD": "4.00"}},
        ])
    );
    assert_eq!(
        problem(spend(&host, &acme.admin, "group_by=day,month")?, 400)?,
        (
            "invalid_query".into(),
            "/group_by".into(),
            "one_time_unit".into()
        )
    );
    Ok(())
}

#[test]
fn a_members_spend_counts_for_their_team_the_teams_above_it_and_the_org() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let research = team(&host, &acme, "research", None)?;
    let vision = team(&host, &acme, "vision", Some(&research))?;
    let other = team(&host, &acme, "sales", None)?;
    let (_, bob_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[&vision],
    )?;
    let sent = written(
        &host,
        &acme,
        json!([
            {"entity": format!("user:{bob_id}"), "amount": "1.50", "currency": "USD"},
            {"entity": format!("team:{vision}"), "amount": "0.25", "currency": "USD"},
            {"entity": "org", "amount": "2", "currency": "USD"},
        ]),
    )?;
    let bobs_record = sent["records"][0]["id"].as_str().context("id")?.to_string();
    let total = |entity: &str| -> Result<Value> {
        Ok(read(&host, &acme, &format!("entity={entity}"))?["totals"].clone())
    };
    assert_eq!(total(&format!("user:{bob_id}"))?, json!({"USD": "1.50"}));
    assert_eq!(total(&format!("team:{vision}"))?, json!({"USD": "1.75"}));
    assert_eq!(total(&format!("team:{research}"))?, json!({"USD": "1.75"}));
    assert_eq!(total(&format!("team:{other}"))?, json!({}));
    assert_eq!(total("org")?, json!({"USD": "3.75"}));
    let mut counted: Vec<String> = column(
        &host,
        "SELECT entity_type || ':' || entity_id FROM expenditure_rollup WHERE record_id = ?1",
        [&bobs_record],
    )?;
    counted.sort();
    let mut expected = vec![
        format!("org:{}", acme.id),
        format!("team:{research}"),
        format!("team:{vision}"),
        format!("user:{bob_id}"),
    ];
    expected.sort();
    assert_eq!(counted, expected);
    // The parent team's spend by whose record it is.
    let split = read(
        &host,
        &acme,
        &format!("entity=team:{research}&group_by=entity"),
    )?;
    assert_eq!(
        split["groups"],
        json!([
            {"entity": format!("team:{vision}"), "totals": {"USD": "0.25"}},
            {"entity": format!("user:{bob_id}"), "totals": {"USD": "1.50"}},
        ])
    );
    Ok(())
}

#[test]
fn a_record_sent_again_with_its_id_is_a_duplicate_and_counts_once() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let record = json!({"id": "invoice-7", "entity": "org", "amount": "12.30", "currency": "USD"});
    let first = written(&host, &acme, json!([record, record]))?;
    assert_eq!(
        (&first["accepted"], &first["duplicates"]),
        (&json!(1), &json!(1))
    );
    let id = first["records"][0]["id"].clone();
    assert_eq!(first["records"][1], json!({"id": id, "duplicate": true}));
    let again = written(&host, &acme, record.clone())?;
    assert_eq!(
        again,
        json!({"accepted": 0, "duplicates": 1, "records": [{"id": id, "duplicate": true}]})
    );
    assert_eq!(read(&host, &acme, "")?["totals"], json!({"USD": "12.30"}));
    // Another org's writer's ids are its own.
    let globex = org(&host, "gus@example.com", "globex")?;
    let theirs = written(&host, &globex, record)?;
    assert_eq!(theirs["accepted"], 1);
    Ok(())
}

#[test]
fn a_full_batch_of_a_thousand_records_is_written_with_every_roll_up() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let research = team(&host, &acme, "research", None)?;
    let vision = team(&host, &acme, "vision", Some(&research))?;
    let (_, bob_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[&vision],
    )?;
    let batch: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"id": format!("r{i}"), "entity": format!("user:{bob_id}"),
                   "amount": format!("0.00{i:03}"), "currency": "USD",
                   "item_type": "model", "item_id": format!("m{}", i % 7)})
        })
        .collect();
    let sent = written(&host, &acme, json!(batch))?;
    assert_eq!(
        (&sent["accepted"], &sent["duplicates"]),
        (&json!(1000), &json!(0))
    );
    // 0.00000 + 0.00001 + … + 0.00999 = 499,500 hundred-thousandths.
    let research_total = read(&host, &acme, &format!("entity=team:{research}"))?;
    assert_eq!(research_total["totals"], json!({"USD": "4.995"}));
    let rows: i64 = db(&host)?.query_row(
        "SELECT COUNT(*) FROM expenditure_rollup WHERE org_id = ?1",
        [&acme.id],
        |row| row.get(0),
    )?;
    assert_eq!(rows, 4000, "member, team, parent team and org for each");
    let items = read(&host, &acme, "group_by=item")?;
    assert_eq!(items["groups"].as_array().map(Vec::len), Some(7));
    Ok(())
}

#[test]
fn the_current_month_comes_with_a_forecast_that_states_its_method() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    written(
        &host,
        &acme,
        json!([{"entity": "org", "amount": "3.00", "currency": "USD"}]),
    )?;
    let month = read(&host, &acme, "")?;
    let forecast = &month["forecast"];
    assert!(
        forecast["method"]
            .as_str()
            .is_some_and(|m| m.contains("mean daily spend of the last 7 full days")),
        "{forecast}"
    );
    let usd = &forecast["currencies"]["USD"];
    assert_eq!(usd["so_far"], "3.00");
    let figure =
        |key: &str| -> Result<f64> { Ok(usd[key].as_str().context("figure")?.parse::<f64>()?) };
    assert!(figure("low")? <= figure("projected")? && figure("projected")? <= figure("high")?);
    assert!(figure("low")? >= 3.0);
    let days = read(&host, &acme, "forecast_days=3")?;
    assert!(
        days["forecast"]["method"]
            .as_str()
            .is_some_and(|m| m.contains("last 3 full days"))
    );
    // A past range has no forecast unless asked for one.
    assert!(read(&host, &acme, MARCH)?.get("forecast").is_none());
    assert!(read(&host, &acme, &format!("{MARCH}&forecast=month"))?["forecast"].is_object());
    assert!(
        read(&host, &acme, "forecast=none")?
            .get("forecast")
            .is_none()
    );
    Ok(())
}

#[test]
fn the_forecast_projects_the_mean_of_the_last_full_days_to_the_months_end() -> Result<()> {
    let mut config = app_config();
    config.controllable_clock = true;
    let host = TestHost::start(config)?;
    // Noon on 17 November 2026: 13.5 days are left of the month.
    host.set_clock(1_794_916_800)?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let usd = |amount: &str, time: &str| json!({"entity": "org", "amount": amount, "currency": "USD", "timestamp": time});
    let eur = |amount: &str, time: &str| json!({"entity": "org", "amount": amount, "currency": "EUR", "timestamp": time});
    let mut records = vec![
        usd("100", "2026-11-05T09:00:00Z"),
        usd("10", "2026-11-17T08:00:00Z"),
    ];
    // The last seven full days: 1, 2, … 7.
    records.extend(
        (10..17).map(|day| usd(&(day - 9).to_string(), &format!("2026-11-{day}T23:59:59Z"))),
    );
    // Spend in euros began two days ago.
    records.extend([
        eur("2", "2026-11-15T10:00:00Z"),
        eur("4", "2026-11-16T10:00:00Z"),
    ]);
    written(&host, &acme, json!(records))?;
    let month = read(&host, &acme, "")?;
    assert_eq!(month["from"], "2026-11-01T00:00:00Z");
    let forecast = &month["forecast"];
    assert_eq!(forecast["month_end"], "2026-12-01T00:00:00Z");
    assert_eq!(
        forecast["currencies"]["USD"],
        json!({"so_far": "138.00", "projected": "192.00", "low": "151.50", "high": "232.50",
               "daily_mean": "4.00", "days": 7})
    );
    assert_eq!(
        forecast["currencies"]["EUR"],
        json!({"so_far": "6.00", "projected": "46.50", "low": "33.00", "high": "60.00",
               "daily_mean": "3.00", "days": 2})
    );
    let shorter = read(&host, &acme, "forecast_days=3&currency=USD")?;
    assert_eq!(
        shorter["forecast"]["currencies"]["USD"]["projected"],
        "219.00"
    );
    assert!(shorter["forecast"]["currencies"].get("EUR").is_none());
    Ok(())
}

#[test]
fn bad_records_are_refused_whole_as_problem_documents_naming_each_field() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let admin = acme.admin.as_str();
    let record = |amount: Value, currency: &str, entity: &str| json!({"entity": entity, "amount": amount, "currency": currency});
    for (body, pointer, code) in [
        (
            record(json!("1e3"), "USD", "org"),
            "/amount",
            "invalid_decimal",
        ),
        (record(json!(0.1), "USD", "org"), "/amount", "invalid_type"),
        (
            record(json!("0.0000000001"), "USD", "org"),
            "/amount",
            "too_precise",
        ),
        (
            record(json!("1"), "usd", "org"),
            "/currency",
            "invalid_currency",
        ),
        (
            record(json!("1"), "USD", "user:usr_nobody"),
            "/entity",
            "unknown_entity",
        ),
        (
            record(json!("1"), "USD", "key:k1"),
            "/entity",
            "invalid_entity",
        ),
        (
            json!({"amount": "1", "currency": "USD"}),
            "/entity",
            "required",
        ),
        (json!(7), "", "invalid_type"),
        (
            record(json!("100000000.000000001"), "USD", "org"),
            "/amount",
            "out_of_range",
        ),
        (
            json!({"entity": "org", "amount": "1", "currency": "USD", "timestamp": "2100-01-01T00:00:00Z"}),
            "/timestamp",
            "in_the_future",
        ),
    ] {
        assert_eq!(
            problem(write(&host, admin, body)?, 422)?,
            ("validation_failed".into(), pointer.into(), code.into()),
            "{pointer} {code}"
        );
    }
    // One bad record of a batch: nothing of it is written.
    let batch = json!([
        record(json!("1"), "USD", "org"),
        record(json!("x"), "USD", "org")
    ]);
    assert_eq!(problem(write(&host, admin, batch)?, 422)?.1, "/1/amount");
    let too_many = json!(vec![record(json!("1"), "USD", "org"); 1001]);
    assert_eq!(
        problem(write(&host, admin, too_many)?, 422)?.2,
        "too_many_records"
    );
    assert_eq!(read(&host, &acme, "")?["totals"], json!({}));
    assert_eq!(
        problem(spend(&host, admin, "currency=dollars")?, 400)?.1,
        "/currency"
    );
    assert_eq!(
        problem(spend(&host, admin, "entity=user:usr_nobody")?, 400)?.2,
        "unknown_entity"
    );
    Ok(())
}

#[test]
fn a_member_reads_their_own_spend_and_nobody_elses() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let (bob, bob_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[],
    )?;
    let (_, carol_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "carol@example.com",
        "member",
        &[],
    )?;
    written(
        &host,
        &acme,
        json!([
            {"entity": format!("user:{bob_id}"), "amount": "1", "currency": "USD"},
            {"entity": format!("user:{carol_id}"), "amount": "2", "currency": "USD"},
        ]),
    )?;
    let own = expect(spend(&host, &bob, &format!("entity=user:{bob_id}"))?, 200)?;
    assert_eq!(own["totals"], json!({"USD": "1.00"}));
    for query in [
        format!("entity=user:{carol_id}"),
        String::new(),
        "entity=org".into(),
    ] {
        assert_eq!(
            problem(spend(&host, &bob, &query)?, 403)?.0,
            "forbidden",
            "{query}"
        );
    }
    // Nor is a stranger's id answered differently from a colleague's.
    assert_eq!(
        problem(spend(&host, &bob, "entity=user:usr_nobody")?, 403)?.0,
        "forbidden"
    );
    let own_record = json!({"entity": format!("user:{bob_id}"), "amount": "1", "currency": "USD"});
    assert_eq!(
        problem(write(&host, &bob, own_record)?, 403)?.0,
        "forbidden"
    );
    Ok(())
}

#[test]
fn another_orgs_admin_sees_none_of_this_orgs_spend_and_cannot_write_it() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let globex = org(&host, "gus@example.com", "globex")?;
    let eng = team(&host, &acme, "eng", None)?;
    written(
        &host,
        &acme,
        json!([
            {"entity": format!("user:{}", acme.admin_id), "amount": "5", "currency": "USD"},
            {"entity": format!("team:{eng}"), "amount": "5", "currency": "USD"},
        ]),
    )?;
    assert_eq!(read(&host, &globex, "")?["totals"], json!({}));
    for entity in [
        format!("user:{}", acme.admin_id),
        format!("team:{eng}"),
        format!("org:{}", acme.id),
    ] {
        let reply = spend(&host, &globex.admin, &format!("entity={entity}"))?;
        assert_eq!(problem(reply, 400)?.2, "unknown_entity", "{entity}");
        let record = json!({"entity": entity, "amount": "1", "currency": "USD"});
        assert_eq!(
            problem(write(&host, &globex.admin, record)?, 422)?.2,
            "unknown_entity"
        );
    }
    assert_eq!(read(&host, &acme, "")?["totals"], json!({"USD": "10.00"}));
    Ok(())
}

#[test]
fn missing_or_invalid_credentials_are_refused_with_401() -> Result<()> {
    let host = start_app()?;
    for (method, path) in [
        ("POST", "/v1/expenditure"),
        ("GET", "/v1/expenditure"),
        ("PATCH", "/v1/meters/calls"),
    ] {
        let body = (method != "GET").then(|| json!({}));
        for token in [None, Some("ghs_not-a-session")] {
            let reply = call(&host, method, path, body.as_ref(), token, &[])?;
            assert_eq!(problem(reply, 401)?.0, "unauthenticated", "{method} {path}");
        }
    }
    Ok(())
}

#[test]
fn a_meter_takes_a_checked_price_that_a_patch_sets_and_clears() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let admin = Some(acme.admin.as_str());
    let created = expect(
        post(
            &host,
            "/v1/meters",
            &json!({"key": "tokens", "event_type": "llm.call", "aggregation": "sum",
                    "value_path": "tokens", "price": {"currency": "USD", "unit_price": "0.0000020"}}),
            admin,
        )?,
        201,
    )?;
    assert_eq!(
        created["price"],
        json!({"currency": "USD", "unit_price": "0.000002"})
    );
    let meter = |price: Value| json!({"key": "calls", "event_type": "agent.run", "aggregation": "count", "price": price});
    for (price, pointer, code) in [
        (
            json!({"currency": "USD", "unit_price": 0.5}),
            "/price/unit_price",
            "invalid",
        ),
        (
            json!({"currency": "dollars", "unit_price": "1"}),
            "/price/currency",
            "invalid_currency",
        ),
        (json!({"currency": "USD"}), "/price", "unit_price_or_tiers"),
        (
            json!({"currency": "USD", "tiers": [{"up_to": 10, "unit_price": "0"}, {"up_to": 5, "unit_price": "1"}, {"unit_price": "1"}]}),
            "/price/tiers/1/up_to",
            "not_increasing",
        ),
        (
            json!({"currency": "USD", "tiers": [{"up_to": 10, "unit_price": "0"}]}),
            "/price/tiers/0/up_to",
            "last_tier_bounded",
        ),
    ] {
        let reply = post(&host, "/v1/meters", &meter(price), admin)?;
        assert_eq!(
            problem(reply, 422)?,
            ("validation_failed".into(), pointer.into(), code.into()),
            "{pointer}"
        );
    }
    let tiers = json!({"currency": "EUR", "tiers": [
        {"up_to": 1000, "unit_price": "0"},
        {"up_to": null, "unit_price": "0.001", "flat_fee": "5"}
    ]});
    let patch = |body: Value| call(&host, "PATCH", "/v1/meters/tokens", Some(&body), admin, &[]);
    let priced = expect(patch(json!({"price": tiers}))?, 200)?;
    assert_eq!(
        priced["price"]["tiers"][1],
        json!({"up_to": null, "unit_price": "0.001", "flat_fee": "5.00"})
    );
    let shown = expect(
        call(&host, "GET", "/v1/meters/tokens", None, admin, &[])?,
        200,
    )?;
    assert_eq!(shown["price"], priced["price"]);
    let cleared = expect(patch(json!({"price": null}))?, 200)?;
    assert_eq!(cleared["price"], Value::Null);
    assert_eq!(problem(patch(json!({}))?, 422)?.1, "/price");
    assert_eq!(
        problem(
            patch(json!({"price": {"currency": "EUR", "unit_price": "-1"}}))?,
            422
        )?
        .2,
        "negative"
    );
    let missing = call(
        &host,
        "PATCH",
        "/v1/meters/nothing",
        Some(&json!({"price": null})),
        admin,
        &[],
    )?;
    assert_eq!(problem(missing, 404)?.0, "not_found");
    let globex = org(&host, "gus@example.com", "globex")?;
    let foreign = call(
        &host,
        "PATCH",
        "/v1/meters/tokens",
        Some(&json!({"price": null})),
        Some(&globex.admin),
        &[],
    )?;
    assert_eq!(problem(foreign, 404)?.0, "not_found");
    Ok(())
}

#[test]
fn consuming_a_tiered_meter_records_its_spend_tier_by_tier() -> Result<()> {
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
    expect(
        post(
            &host,
            "/v1/meters",
            &json!({"key": "tokens", "event_type": "llm.call", "aggregation": "sum",
                    "value_path": "tokens", "price": {"currency": "USD", "tiers": [
                        {"up_to": 100, "unit_price": "0"},
                        {"unit_price": "0.01", "flat_fee": "1"}]}}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let consume = |amount: i64| -> Result<Value> {
        expect(
            post(
                &host,
                "/v1/quotas/consume",
                &json!({"subject": format!("user:{bob_id}"), "meter": "tokens", "amount": amount}),
                Some(&acme.admin),
            )?,
            200,
        )
    };
    // 90 free units; then 10 free and 20 at 0.01 with the tier's fee.
    consume(90)?;
    consume(30)?;
    let amounts: Vec<i64> = column(
        &host,
        "SELECT amount FROM expenditure_records WHERE org_id = ?1 AND source = 'consume' ORDER BY units",
        [&acme.id],
    )?;
    assert_eq!(amounts, vec![1_200_000_000, 0]);
    let team_spend = read(&host, &acme, &format!("entity=team:{eng}"))?;
    assert_eq!(team_spend["totals"], json!({"USD": "1.20"}));
    let units: i64 = db(&host)?.query_row(
        "SELECT units FROM meter_month_units WHERE org_id = ?1 AND meter_key = 'tokens'",
        [&acme.id],
        |row| row.get(0),
    )?;
    assert_eq!(units, 120);
    Ok(())
}
