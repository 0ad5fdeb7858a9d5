//! Stats, alerts and org events through the built `metering` component:
//! usage per additive meter in buckets of the org's calendar for a
//! member, a team (with its sub-teams and members) and the org; spend per
//! currency; a member's quotas where they stand; the alert listings; who
//! may read what, the tenant boundary, and query validation as problem
//! documents.

use anyhow::{Context, Result};
use gatehouse_tests::app::{
    Org, call, expect, join, mail, org, post, problem, signed_in, start_app, team, user_id,
};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

fn get(host: &TestHost, path: &str, token: &str) -> Result<Reply> {
    call(host, "GET", path, None, Some(token), &[])
}

/// An org in `zone` whose admin signs in as `email`.
fn org_in(host: &TestHost, email: &str, handle: &str, zone: &str) -> Result<Org> {
    let admin = signed_in(host, email)?;
    let created = expect(
        post(
            host,
            "/v1/orgs",
            &json!({"name": handle, "handle": handle, "time_zone": zone}),
            Some(&admin),
        )?,
        201,
    )?;
    assert_eq!(created["time_zone"], zone, "{created}");
    Ok(Org {
        id: created["id"].as_str().context("id")?.to_string(),
        admin_id: user_id(host, &admin)?,
        admin,
    })
}

fn meter(host: &TestHost, org: &Org, body: Value) -> Result<()> {
    expect(post(host, "/v1/meters", &body, Some(&org.admin))?, 201).map(|_| ())
}

/// `calls` counts `llm.call` events, `tokens` sums their `usage.tokens`,
/// `peak` takes the largest (not additive: not in stats).
fn meters(host: &TestHost, org: &Org) -> Result<()> {
    meter(
        host,
        org,
        json!({"key": "calls", "event_type": "llm.call", "aggregation": "count"}),
    )?;
    meter(
        host,
        org,
        json!({"key": "tokens", "event_type": "llm.call", "aggregation": "sum", "value_path": "usage.tokens"}),
    )?;
    meter(
        host,
        org,
        json!({"key": "peak", "event_type": "llm.call", "aggregation": "max", "value_path": "usage.tokens"}),
    )
}

fn event(id: &str, subject: &str, time: &str, tokens: i64) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "stats-test", "type": "llm.call",
           "subject": subject, "time": time, "data": {"usage": {"tokens": tokens}}})
}

fn send_events(host: &TestHost, org: &Org, events: Value) -> Result<()> {
    let count = events.as_array().map_or(0, Vec::len);
    let sent = expect(
        post(host, "/v1/usage/events", &events, Some(&org.admin))?,
        200,
    )?;
    assert_eq!(sent["accepted"], count, "{sent}");
    Ok(())
}

fn stats(host: &TestHost, token: &str, query: &str) -> Result<Reply> {
    get(host, &format!("/v1/metering/stats?{query}"), token)
}

/// `[start, usage]` of each bucket.
fn usage(answer: &Value) -> Vec<Value> {
    answer["buckets"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|b| json!([b["start"], b["usage"]]))
                .collect()
        })
        .unwrap_or_default()
}

/// Berlin's 1 and 2 November 2026 (its midnights are 23:00 UTC).
const TWO_BERLIN_DAYS: &str = "from=2026-10-31T23:00:00Z&to=2026-11-02T23:00:00Z&window=day";

#[test]
fn stats_sum_each_additive_meter_per_day_of_the_orgs_zone_for_a_member_a_team_and_the_org()
-> Result<()> {
    let host = start_app()?;
    let acme = org_in(&host, "ada@example.com", "acme", "Europe/Berlin")?;
    meters(&host, &acme)?;
    let eng = team(&host, &acme, "eng", None)?;
    let api = team(&host, &acme, "api", Some(&eng))?;
    let ops = team(&host, &acme, "ops", None)?;
    let (_, bob) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[&api],
    )?;
    let (_, cat) = join(
        &host,
        &acme.admin,
        &acme.id,
        "cat@example.com",
        "member",
        &[&ops],
    )?;
    let (ada, bob, cat) = (
        format!("user:{}", acme.admin_id),
        format!("user:{bob}"),
        format!("user:{cat}"),
    );
    send_events(
        &host,
        &acme,
        json!([
            // Berlin's 1 November.
            event("e1", &ada, "2026-10-31T23:30:00Z", 5),
            event("e2", &bob, "2026-11-01T12:00:00Z", 7),
            event("e3", &format!("org:{}", acme.id), "2026-11-01T10:00:00Z", 3),
            // A call without tokens counts as a call and adds no tokens.
            {"specversion": "1.0", "id": "e4", "source": "stats-test", "type": "llm.call",
             "subject": bob, "time": "2026-11-01T13:00:00Z", "data": {"model": "small"}},
            // Berlin's 2 November, from its first second.
            event("e5", &bob, "2026-11-01T23:00:00Z", 10),
            event("e6", &format!("team:{api}"), "2026-11-02T10:00:00Z", 100),
            event("e7", &format!("team:{eng}"), "2026-11-02T11:00:00Z", 20),
            event("e8", &cat, "2026-11-02T10:00:00Z", 1000),
            // Berlin's 31 October, before `from`; and a type no meter counts.
            event("e9", &bob, "2026-10-31T22:59:59Z", 50_000),
            {"specversion": "1.0", "id": "e10", "source": "stats-test", "type": "tool.call",
             "subject": bob, "time": "2026-11-01T12:00:00Z", "data": {"usage": {"tokens": 9}}},
        ]),
    )?;
    let day = |calls: i64, tokens: i64| json!({"calls": calls, "tokens": tokens});

    let whole = expect(
        stats(&host, &acme.admin, &format!("entity=org&{TWO_BERLIN_DAYS}"))?,
        200,
    )?;
    assert_eq!(
        (&whole["entity"], &whole["window"], &whole["time_zone"]),
        (
            &json!(format!("org:{}", acme.id)),
            &json!("day"),
            &json!("Europe/Berlin")
        )
    );
    assert_eq!(
        usage(&whole),
        [
            json!(["2026-10-31T23:00:00Z", day(4, 15)]),
            json!(["2026-11-01T23:00:00Z", day(4, 1130)]),
        ]
    );
    assert_eq!(whole["buckets"][0]["end"], "2026-11-01T23:00:00Z");
    assert_eq!(whole["quotas"], json!([]));

    // A member: only events sent for them.
    let member = expect(
        stats(
            &host,
            &acme.admin,
            &format!("entity={bob}&{TWO_BERLIN_DAYS}"),
        )?,
        200,
    )?;
    assert_eq!(
        usage(&member),
        [
            json!(["2026-10-31T23:00:00Z", day(2, 7)]),
            json!(["2026-11-01T23:00:00Z", day(1, 10)]),
        ]
    );

    // A team: its own events, its sub-team's, and its members' (bob is in
    // api, below eng); cat in ops and the org's own events are not.
    let team_eng = expect(
        stats(
            &host,
            &acme.admin,
            &format!("entity=team:{eng}&{TWO_BERLIN_DAYS}"),
        )?,
        200,
    )?;
    assert_eq!(
        usage(&team_eng),
        [
            json!(["2026-10-31T23:00:00Z", day(2, 7)]),
            json!(["2026-11-01T23:00:00Z", day(3, 130)]),
        ]
    );
    let team_api = expect(
        stats(
            &host,
            &acme.admin,
            &format!("entity=team:{api}&{TWO_BERLIN_DAYS}"),
        )?,
        200,
    )?;
    assert_eq!(
        usage(&team_api),
        [
            json!(["2026-10-31T23:00:00Z", day(2, 7)]),
            json!(["2026-11-01T23:00:00Z", day(2, 110)]),
        ]
    );

    // One month of Berlin, cut to from and to; a week from Monday.
    let month = expect(
        stats(
            &host,
            &acme.admin,
            "entity=org&from=2026-10-31T23:00:00Z&to=2026-11-30T23:00:00Z&window=month",
        )?,
        200,
    )?;
    assert_eq!(
        usage(&month),
        [json!(["2026-10-31T23:00:00Z", day(8, 1145)])]
    );
    let weeks = expect(
        stats(
            &host,
            &acme.admin,
            "entity=org&from=2026-10-31T23:00:00Z&to=2026-11-08T23:00:00Z&window=week",
        )?,
        200,
    )?;
    // Sunday 1 November ends Berlin's week; Monday 2 November starts one.
    assert_eq!(
        usage(&weeks),
        [
            json!(["2026-10-31T23:00:00Z", day(4, 15)]),
            json!(["2026-11-01T23:00:00Z", day(4, 1130)]),
        ]
    );
    assert_eq!(weeks["buckets"][1]["end"], "2026-11-08T23:00:00Z");
    Ok(())
}

#[test]
fn stats_show_spend_per_currency_as_the_rollup_counts_it() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let eng = team(&host, &acme, "eng", None)?;
    let (_, bob) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[&eng],
    )?;
    let spent = post(
        &host,
        "/v1/expenditure",
        &json!([
            {"entity": format!("user:{bob}"), "amount": "1.25", "currency": "USD", "timestamp": "2026-11-01T10:00:00Z"},
            {"entity": format!("user:{bob}"), "amount": "0.50", "currency": "EUR", "timestamp": "2026-11-02T10:00:00Z"},
            {"entity": format!("user:{}", acme.admin_id), "amount": "2", "currency": "USD", "timestamp": "2026-11-02T10:00:00Z"},
            // Outside the range: neither counted nor a currency listed.
            {"entity": format!("user:{bob}"), "amount": "9", "currency": "GBP", "timestamp": "2026-11-05T10:00:00Z"},
        ]),
        Some(&acme.admin),
    )?;
    assert!(spent.status < 300, "{}", spent.text());
    let range = "from=2026-11-01T00:00:00Z&to=2026-11-03T00:00:00Z&window=day";
    let spend = |answer: &Value| -> Vec<Value> {
        answer["buckets"]
            .as_array()
            .map(|all| all.iter().map(|b| b["spend"].clone()).collect())
            .unwrap_or_default()
    };
    let whole = expect(
        stats(&host, &acme.admin, &format!("entity=org&{range}"))?,
        200,
    )?;
    assert_eq!(
        spend(&whole),
        [
            json!({"EUR": "0.00", "USD": "1.25"}),
            json!({"EUR": "0.50", "USD": "2.00"}),
        ]
    );
    let team_eng = expect(
        stats(&host, &acme.admin, &format!("entity=team:{eng}&{range}"))?,
        200,
    )?;
    assert_eq!(
        spend(&team_eng),
        [
            json!({"EUR": "0.00", "USD": "1.25"}),
            json!({"EUR": "0.50", "USD": "0.00"}),
        ]
    );
    let ada = expect(
        stats(
            &host,
            &acme.admin,
            &format!("entity=user:{}&{range}", acme.admin_id),
        )?,
        200,
    )?;
    assert_eq!(
        spend(&ada),
        [json!({"USD": "0.00"}), json!({"USD": "2.00"})]
    );
    Ok(())
}

/// Every month from 2020 to 2099: wide enough to hold now, whenever the
/// test runs.
const ALL_MONTHS: &str = "from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&window=month";

#[test]
fn stats_show_a_members_quotas_where_they_stand_and_fired_alerts_are_listed() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    meters(&host, &acme)?;
    let ada = format!("user:{}", acme.admin_id);
    let quota = |body: Value| -> Result<String> {
        let quota = expect(post(&host, "/v1/quotas", &body, Some(&acme.admin))?, 201)?;
        Ok(quota["id"].as_str().context("quota id")?.to_string())
    };
    // A lifetime quota, so nothing here depends on when the test runs.
    let lifetime = quota(
        json!({"entity": ada, "meter": "calls", "limit": 10, "period": "lifetime",
                               "thresholds": [{"percent": 80}, {"percent": 100}]}),
    )?;
    let daily = quota(json!({"entity": ada, "meter": "calls", "limit": 1000, "period": "day"}))?;
    let consume = |times: usize| -> Result<()> {
        for _ in 0..times {
            let decision = expect(
                post(
                    &host,
                    "/v1/quotas/consume",
                    &json!({"subject": ada, "meter": "calls"}),
                    Some(&acme.admin),
                )?,
                200,
            )?;
            assert_eq!(decision["allowed"], true, "{decision}");
        }
        Ok(())
    };
    consume(3)?;
    let mine = expect(
        stats(&host, &acme.admin, &format!("entity={ada}&{ALL_MONTHS}"))?,
        200,
    )?;
    let quotas = mine["quotas"].as_array().context("quotas")?;
    let of = |id: &str| {
        quotas
            .iter()
            .find(|q| q["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(quotas.len(), 2, "{mine}");
    assert_eq!(
        of(&lifetime),
        json!({
            "id": lifetime, "meter": "calls", "currency": null, "item_type": null, "item_id": null,
            "period": "lifetime", "window_seconds": null, "enforcement": "hard",
            "limit": 10, "used": 3, "held": 0, "remaining": 7, "percent": 30.0,
            "period_start": 0, "reset_at": null,
        })
    );
    // A day of the org's zone (UTC): from its midnight to the next.
    let day = of(&daily);
    let (start, reset) = (
        day["period_start"].as_i64().context("period_start")?,
        day["reset_at"].as_i64().context("reset_at")?,
    );
    assert_eq!((start % 86_400, reset - start), (0, 86_400), "{day}");
    assert_eq!(
        day["used"].as_i64().unwrap_or_default() + day["remaining"].as_i64().unwrap_or_default(),
        1000,
        "{day}"
    );
    // Consumes record usage events too.
    let calls: i64 = mine["buckets"]
        .as_array()
        .context("buckets")?
        .iter()
        .filter_map(|b| b["usage"]["calls"].as_i64())
        .sum();
    assert_eq!(calls, 3);
    // The org has no quota of its own.
    let whole = expect(
        stats(&host, &acme.admin, &format!("entity=org&{ALL_MONTHS}"))?,
        200,
    )?;
    assert_eq!(whole["quotas"], json!([]));

    // 8 of 10 reach 80 %: one alert, one event, one mail to the admin.
    consume(5)?;
    let alerts = expect(get(&host, "/v1/metering/alerts", &acme.admin)?, 200)?;
    let items = alerts["items"].as_array().context("items")?;
    assert_eq!(items.len(), 1, "{alerts}");
    assert_eq!(
        (
            &items[0]["type"],
            &items[0]["quota_id"],
            &items[0]["entity"],
            &items[0]["threshold"],
            &items[0]["used"],
            &items[0]["limit"],
            &items[0]["period_start"],
        ),
        (
            &json!("quota.threshold_reached"),
            &json!(lifetime),
            &json!(ada),
            &json!({"percent": 80}),
            &json!(8),
            &json!(10),
            &json!(0),
        )
    );
    let events = expect(
        get(
            &host,
            "/v1/org-events?type=quota.threshold_reached",
            &acme.admin,
        )?,
        200,
    )?;
    assert_eq!(
        events["items"].as_array().map(Vec::len),
        Some(1),
        "{events}"
    );
    assert_eq!(events["items"][0]["id"], items[0]["event_id"]);
    assert_eq!(
        events["items"][0]["data"]["threshold"],
        json!({"percent": 80})
    );
    let sent = mail(&host, "ada@example.com", "quota_alert")?;
    assert!(
        sent["subject"].as_str().unwrap_or_default().contains("80%"),
        "{sent}"
    );

    // 10 of 10 reach 100 %; newest first, one page at a time.
    consume(2)?;
    let first = expect(get(&host, "/v1/metering/alerts?limit=1", &acme.admin)?, 200)?;
    assert_eq!(first["items"][0]["threshold"], json!({"percent": 100}));
    let cursor = first["next_cursor"].as_str().context("next_cursor")?;
    let second = expect(
        get(
            &host,
            &format!("/v1/metering/alerts?limit=1&cursor={cursor}"),
            &acme.admin,
        )?,
        200,
    )?;
    assert_eq!(second["items"][0]["threshold"], json!({"percent": 80}));
    assert_eq!(second["next_cursor"], Value::Null);
    let none = expect(
        get(&host, "/v1/org-events?type=spend.unusual", &acme.admin)?,
        200,
    )?;
    assert_eq!(none["items"], json!([]));
    Ok(())
}

#[test]
fn bad_stats_queries_are_invalid_query_problems_naming_the_parameter() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let day = "from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z";
    for (query, pointer, code) in [
        (
            format!("entity=org&{day}&window=hour"),
            "/window",
            "invalid",
        ),
        (format!("entity=org&{day}"), "/window", "required"),
        (
            format!("entity=key:key_1&{day}&window=day"),
            "/entity",
            "invalid",
        ),
        (
            format!("entity=robot&{day}&window=day"),
            "/entity",
            "invalid",
        ),
        (
            format!("entity=org:org_other&{day}&window=day"),
            "/entity",
            "invalid",
        ),
        (format!("{day}&window=day"), "/entity", "required"),
        (
            "entity=org&from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z&window=day".into(),
            "/to",
            "not_after_from",
        ),
        (
            "entity=org&from=yesterday&to=2026-11-01T00:00:00Z&window=day".into(),
            "/from",
            "invalid",
        ),
        (
            "entity=org&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&window=day".into(),
            "/window",
            "too_many_buckets",
        ),
        (
            format!("entity=team:team_nope&{day}&window=day"),
            "/entity",
            "unknown_entity",
        ),
        (
            format!("entity=user:usr_nope&{day}&window=day"),
            "/entity",
            "unknown_entity",
        ),
    ] {
        assert_eq!(
            problem(stats(&host, &acme.admin, &query)?, 400)?,
            ("invalid_query".into(), pointer.into(), code.into()),
            "{query}"
        );
    }
    let (code, pointer, _) = problem(
        get(&host, "/v1/org-events?type=Not%20a%20type", &acme.admin)?,
        400,
    )?;
    assert_eq!(
        (code.as_str(), pointer.as_str()),
        ("invalid_query", "/type")
    );
    let (code, pointer, _) = problem(get(&host, "/v1/metering/alerts?limit=0", &acme.admin)?, 400)?;
    assert_eq!(
        (code.as_str(), pointer.as_str()),
        ("invalid_query", "/limit")
    );
    Ok(())
}

#[test]
fn a_member_reads_only_their_own_stats_and_no_alerts_and_strangers_nothing() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    meters(&host, &acme)?;
    let eng = team(&host, &acme, "eng", None)?;
    let (bob_token, bob) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[&eng],
    )?;
    let (cat_token, cat) = join(
        &host,
        &acme.admin,
        &acme.id,
        "cat@example.com",
        "member",
        &[],
    )?;
    let day = "from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&window=day";
    send_events(
        &host,
        &acme,
        json!([event(
            "e1",
            &format!("user:{bob}"),
            "2026-11-01T10:00:00Z",
            5
        )]),
    )?;

    // Without credentials: 401 problems.
    for path in [
        format!("/v1/metering/stats?entity=org&{day}"),
        "/v1/metering/alerts".to_string(),
        "/v1/org-events".to_string(),
    ] {
        let reply = call(&host, "GET", &path, None, None, &[])?;
        assert_eq!(problem(reply, 401)?.0, "unauthenticated", "{path}");
    }

    // A member: their own stats, nobody else's, no alerts or events.
    let own = expect(
        stats(&host, &bob_token, &format!("entity=user:{bob}&{day}"))?,
        200,
    )?;
    assert_eq!(own["buckets"][0]["usage"], json!({"calls": 1, "tokens": 5}));
    for entity in [
        format!("user:{cat}"),
        format!("user:{}", acme.admin_id),
        format!("team:{eng}"),
        "org".to_string(),
    ] {
        let reply = stats(&host, &bob_token, &format!("entity={entity}&{day}"))?;
        assert_eq!(problem(reply, 403)?.0, "forbidden", "{entity}");
    }
    for path in ["/v1/metering/alerts", "/v1/org-events"] {
        assert_eq!(problem(get(&host, path, &bob_token)?, 403)?.0, "forbidden");
    }
    // With usage:read (through a role), Cat reads anyone's, as for usage.
    let reader = expect(
        post(
            &host,
            "/v1/roles",
            &json!({"name": "usage-reader", "permissions": ["usage:read"]}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let granted = call(
        &host,
        "PUT",
        &format!(
            "/v1/roles/{}/members/{cat}",
            reader["name"].as_str().unwrap_or_default()
        ),
        None,
        Some(&acme.admin),
        &[],
    )?;
    assert!(granted.status < 300, "{}", granted.text());
    let theirs = expect(
        stats(&host, &cat_token, &format!("entity=user:{bob}&{day}"))?,
        200,
    )?;
    assert_eq!(
        theirs["buckets"][0]["usage"],
        json!({"calls": 1, "tokens": 5})
    );

    // An admin sees empty listings before anything fired (the org's other
    // events, its members joining, are listed too).
    for path in [
        "/v1/metering/alerts",
        "/v1/org-events?type=quota.threshold_reached",
        "/v1/org-events?type=spend.unusual",
    ] {
        let empty = expect(get(&host, path, &acme.admin)?, 200)?;
        assert_eq!(empty, json!({"items": [], "next_cursor": null}), "{path}");
    }

    // Another org's admin: acme's members and teams are unknown there, and
    // its own org has none of acme's usage.
    let globex = org(&host, "gus@example.com", "globex")?;
    for entity in [format!("user:{bob}"), format!("team:{eng}")] {
        let reply = stats(&host, &globex.admin, &format!("entity={entity}&{day}"))?;
        assert_eq!(
            problem(reply, 400)?,
            (
                "invalid_query".into(),
                "/entity".into(),
                "unknown_entity".into()
            ),
            "{entity}"
        );
    }
    let theirs = expect(
        stats(&host, &globex.admin, &format!("entity=org&{day}"))?,
        200,
    )?;
    assert_eq!(theirs["buckets"][0]["usage"], json!({}));
    assert_eq!(
        theirs["entity"],
        json!(format!("org:{}", globex.id)),
        "{theirs}"
    );
    let reply = stats(
        &host,
        &globex.admin,
        &format!("entity=org:{}&{day}", acme.id),
    )?;
    assert_eq!(problem(reply, 400)?.1, "/entity");
    Ok(())
}

/// Unix seconds as an RFC 3339 date-time in UTC.
fn rfc3339(seconds: i64) -> String {
    // Days since 1970-01-01 to a civil date, years counted from March.
    let z = seconds.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

#[test]
fn a_day_of_unusual_spend_is_flagged_once_after_a_week_of_usual_spend() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    meter(
        &host,
        &acme,
        json!({"key": "gpu", "event_type": "gpu.hour", "aggregation": "count",
               "price": {"currency": "USD", "unit_price": "100"}}),
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let today = i64::try_from(now)? / 86_400 * 86_400;
    // Noon of the `days_ago`th day before today: 10 USD of the org's.
    let usual = |days_ago: i64| -> Result<()> {
        let spent = post(
            &host,
            "/v1/expenditure",
            &json!({"entity": "org", "amount": "10", "currency": "USD",
                    "timestamp": rfc3339(today - days_ago * 86_400 + 43_200)}),
            Some(&acme.admin),
        )?;
        assert!(spent.status < 300, "{}", spent.text());
        Ok(())
    };
    let consume = || -> Result<()> {
        let decision = expect(
            post(
                &host,
                "/v1/quotas/consume",
                &json!({"subject": format!("user:{}", acme.admin_id), "meter": "gpu"}),
                Some(&acme.admin),
            )?,
            200,
        )?;
        assert_eq!(decision["allowed"], true, "{decision}");
        Ok(())
    };
    let flags = || -> Result<Vec<Value>> {
        let alerts = expect(get(&host, "/v1/metering/alerts", &acme.admin)?, 200)?;
        Ok(alerts["items"].as_array().cloned().unwrap_or_default())
    };
    // Six days with spend, and one more 15 days ago (outside the 14): no
    // usual to compare with yet.
    for days_ago in [1, 2, 4, 6, 9, 14, 15] {
        usual(days_ago)?;
    }
    consume()?;
    assert_eq!(flags()?, Vec::<Value>::new());

    // A seventh day, written directly: today's 100 USD against a mean of
    // 70 / 14 = 5 is flagged by that write; the next consume flags nothing
    // more the same day.
    usual(13)?;
    consume()?;
    let found = flags()?;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (
            &found[0]["type"],
            &found[0]["currency"],
            &found[0]["day_start"],
            &found[0]["amount"],
            &found[0]["trailing_daily_mean"],
        ),
        (
            &json!("spend.unusual"),
            &json!("USD"),
            &json!(today),
            &json!("100.00"),
            &json!("5.00"),
        )
    );
    let events = expect(
        get(&host, "/v1/org-events?type=spend.unusual", &acme.admin)?,
        200,
    )?;
    let data = &events["items"][0]["data"];
    assert_eq!(events["items"][0]["id"], found[0]["event_id"]);
    assert_eq!(
        (&data["today"], &data["days_with_spend"], &data["factor"]),
        (&json!("100.00"), &json!(7), &json!(3)),
        "{events}"
    );
    let sent = mail(&host, "ada@example.com", "spend_alert")?;
    assert!(
        sent["subject"].as_str().unwrap_or_default().contains("USD"),
        "{sent}"
    );

    // Once a day: more spend today flags nothing more.
    consume()?;
    assert_eq!(flags()?.len(), 1);
    Ok(())
}
