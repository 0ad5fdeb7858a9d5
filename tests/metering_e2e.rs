//! Metering through the built `metering` component: meters, usage events
//! with their permanent duplicate check, quotas for a member, a team and
//! the org, the atomic consume under concurrency and with an
//! Idempotency-Key, the tenant boundary, validation codes and credentials.

use anyhow::{Context, Result};
use gatehouse_tests::TestHost;
use gatehouse_tests::app::{
    Org, call, concurrently, database as db, expect, join, org, post, problem, start_app, team,
};
use serde_json::{Value, json};

fn meter(host: &TestHost, org: &Org, body: Value) -> Result<Value> {
    expect(post(host, "/v1/meters", &body, Some(&org.admin))?, 201)
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

fn consume(host: &TestHost, token: &str, user: &str, meter: &str, amount: i64) -> Result<Value> {
    expect(
        post(
            host,
            "/v1/quotas/consume",
            &json!({"subject": format!("user:{user}"), "meter": meter, "amount": amount}),
            Some(token),
        )?,
        200,
    )
}

fn used(host: &TestHost, quota_id: &str) -> Result<i64> {
    Ok(db(host)?.query_row(
        "SELECT COALESCE(SUM(used), 0) FROM quota_counters WHERE quota_id = ?1",
        [quota_id],
        |row| row.get(0),
    )?)
}

fn event(id: &str, subject: &str) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "billing-test", "type": "llm.call",
           "subject": subject, "time": "2026-11-29T12:00:00Z", "data": {"tokens": 7}})
}

#[test]
fn a_resent_batch_is_all_duplicates_and_changes_no_count() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let eng = team(&host, &acme, "eng", None)?;
    let batch = json!([
        event("e1", &format!("user:{}", acme.admin_id)),
        event("e2", &format!("team:{eng}")),
        event("e3", &format!("org:{}", acme.id)),
    ]);
    let first = expect(
        post(&host, "/v1/usage/events", &batch, Some(&acme.admin))?,
        200,
    )?;
    assert_eq!(first, json!({"accepted": 3, "duplicates": 0, "errors": []}));
    let again = expect(
        post(&host, "/v1/usage/events", &batch, Some(&acme.admin))?,
        200,
    )?;
    assert_eq!(again, json!({"accepted": 0, "duplicates": 3, "errors": []}));
    // A new event and its own repeat in one batch: the repeat is a duplicate.
    let user = format!("user:{}", acme.admin_id);
    let repeat = json!([event("e4", &user), event("e4", &user)]);
    let mixed = expect(
        post(&host, "/v1/usage/events", &repeat, Some(&acme.admin))?,
        200,
    )?;
    assert_eq!(mixed, json!({"accepted": 1, "duplicates": 1, "errors": []}));
    let stored: i64 = db(&host)?.query_row(
        "SELECT COUNT(*) FROM usage_events WHERE org_id = ?1",
        [&acme.id],
        |row| row.get(0),
    )?;
    assert_eq!(stored, 4);
    Ok(())
}

#[test]
fn sixty_four_concurrent_consumes_against_a_limit_of_twenty_grant_exactly_twenty() -> Result<()> {
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
        20,
    )?;
    let answers = concurrently(64, || {
        consume(&host, &acme.admin, &acme.admin_id, "calls", 1)
    })?;
    let granted = answers.iter().filter(|a| a["allowed"] == true).count();
    assert_eq!(granted, 20);
    let refused: Vec<&Value> = answers.iter().filter(|a| a["allowed"] == false).collect();
    assert_eq!(refused.len(), 44);
    assert!(
        refused
            .iter()
            .all(|a| a["blocking"]["id"] == limit.as_str())
    );
    let mut left: Vec<i64> = answers
        .iter()
        .filter(|a| a["allowed"] == true)
        .filter_map(|a| a["remaining"].as_i64())
        .collect();
    left.sort_unstable();
    assert_eq!(left, (0..20).collect::<Vec<i64>>());
    assert_eq!(used(&host, &limit)?, 20);
    let recorded: i64 = db(&host)?.query_row(
        "SELECT COUNT(*) FROM usage_events WHERE org_id = ?1 AND source = 'gatehouse:quotas/consume' AND event_type = 'agent.run'",
        [&acme.id],
        |row| row.get(0),
    )?;
    assert_eq!(recorded, 20, "usage records what the quota counted");
    Ok(())
}

#[test]
fn a_team_quota_and_an_org_quota_both_apply_and_the_tighter_one_blocks() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let eng = team(&host, &acme, "eng", None)?;
    let (bob, bob_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[&eng],
    )?;
    let (_, carol_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "carol@example.com",
        "member",
        &[],
    )?;
    meter(
        &host,
        &acme,
        json!({"key": "tokens", "event_type": "llm.call", "aggregation": "sum", "value_path": "usage.tokens"}),
    )?;
    let team_quota = quota(&host, &acme, &format!("team:{eng}"), "tokens", 10)?;
    let org_quota = quota(&host, &acme, "org", "tokens", 100)?;
    // A member without the admin's rights may not consume for anyone.
    let refused = post(
        &host,
        "/v1/quotas/consume",
        &json!({"subject": format!("user:{bob_id}"), "meter": "tokens"}),
        Some(&bob),
    )?;
    assert_eq!(problem(refused, 403)?.0, "forbidden");

    let checked = expect(
        post(
            &host,
            "/v1/quotas/check",
            &json!({"subject": format!("user:{bob_id}"), "meter": "tokens", "amount": 4}),
            Some(&acme.admin),
        )?,
        200,
    )?;
    assert_eq!(
        (
            &checked["allowed"],
            &checked["remaining"],
            &checked["blocking"]
        ),
        (&json!(true), &json!(6), &Value::Null)
    );
    assert!(checked["reset_at"].as_i64().is_some(), "{checked}");
    assert_eq!(used(&host, &team_quota)?, 0, "a check counts nothing");

    let granted = consume(&host, &acme.admin, &bob_id, "tokens", 8)?;
    assert_eq!(
        (&granted["allowed"], &granted["remaining"]),
        (&json!(true), &json!(2))
    );
    let blocked = consume(&host, &acme.admin, &bob_id, "tokens", 5)?;
    assert_eq!(blocked["allowed"], false);
    assert_eq!(
        blocked["blocking"],
        json!({"id": team_quota, "entity": format!("team:{eng}"), "meter": "tokens",
               "currency": null, "limit": 10, "used": 8})
    );
    assert_eq!(blocked["remaining"], 2);
    // Carol is in no team: only the org's quota applies to her.
    let carol = consume(&host, &acme.admin, &carol_id, "tokens", 50)?;
    assert_eq!(
        (&carol["allowed"], &carol["remaining"]),
        (&json!(true), &json!(42))
    );
    assert_eq!(
        (used(&host, &team_quota)?, used(&host, &org_quota)?),
        (8, 58)
    );
    // Now the org's quota is the tighter one for Bob.
    let over = consume(&host, &acme.admin, &bob_id, "tokens", 2)?;
    assert_eq!(over["allowed"], true);
    let org_blocks = consume(&host, &acme.admin, &carol_id, "tokens", 41)?;
    assert_eq!(org_blocks["blocking"]["id"], org_quota.as_str());
    assert_eq!(
        (used(&host, &team_quota)?, used(&host, &org_quota)?),
        (10, 60)
    );
    let recorded: String = db(&host)?.query_row(
        "SELECT data FROM usage_events WHERE org_id = ?1 AND subject_id = ?2 ORDER BY received_at LIMIT 1",
        [&acme.id, &carol_id],
        |row| row.get(0),
    )?;
    assert_eq!(
        serde_json::from_str::<Value>(&recorded)?,
        json!({"usage": {"tokens": 50}})
    );
    Ok(())
}

#[test]
fn a_consume_retried_with_its_idempotency_key_counts_once() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    meter(
        &host,
        &acme,
        json!({"key": "calls", "event_type": "agent.run", "aggregation": "count"}),
    )?;
    let limit = quota(&host, &acme, "org", "calls", 5)?;
    let body = json!({"subject": format!("user:{}", acme.admin_id), "meter": "calls"});
    let send = |key: &str, body: &Value| {
        call(
            &host,
            "POST",
            "/v1/quotas/consume",
            Some(body),
            Some(&acme.admin),
            &[("idempotency-key", key)],
        )
    };
    let first = send("run-1", &body)?;
    assert_eq!(first.header("idempotent-replayed"), None);
    let first = expect(first, 200)?;
    assert_eq!(first["remaining"], 4);
    let retry = send("run-1", &body)?;
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(expect(retry, 200)?, first);
    assert_eq!(used(&host, &limit)?, 1);
    let other = expect(send("run-2", &body)?, 200)?;
    assert_eq!(other["remaining"], 3);
    let changed = json!({"subject": format!("user:{}", acme.admin_id), "meter": "calls", "amount": 1, "extra": 1});
    assert_eq!(
        problem(send("run-1", &changed)?, 422)?.0,
        "idempotency_key_reused"
    );
    assert_eq!(used(&host, &limit)?, 2);
    Ok(())
}

#[test]
fn another_orgs_admin_finds_none_of_this_orgs_meters_or_quotas_and_cannot_meter_its_members()
-> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let globex = org(&host, "gus@example.com", "globex")?;
    let eng = team(&host, &acme, "eng", None)?;
    meter(
        &host,
        &acme,
        json!({"key": "calls", "event_type": "agent.run", "aggregation": "count"}),
    )?;
    meter(
        &host,
        &globex,
        json!({"key": "calls", "event_type": "agent.run", "aggregation": "count"}),
    )?;
    let acme_quota = quota(&host, &acme, "org", "calls", 5)?;
    let as_globex =
        |method: &str, path: &str| call(&host, method, path, None, Some(&globex.admin), &[]);
    assert_eq!(
        problem(as_globex("GET", &format!("/v1/quotas/{acme_quota}"))?, 404)?.0,
        "not_found"
    );
    assert_eq!(
        problem(
            as_globex("DELETE", &format!("/v1/quotas/{acme_quota}"))?,
            404
        )?
        .0,
        "not_found"
    );
    let listed = expect(as_globex("GET", "/v1/quotas")?, 200)?;
    assert_eq!(listed["items"], json!([]));
    // Globex deletes its own `calls`; Acme's stays, with its quota.
    expect(as_globex("DELETE", "/v1/meters/calls")?, 204)?;
    assert_eq!(
        problem(as_globex("GET", "/v1/meters/calls")?, 404)?.0,
        "not_found"
    );
    let acme_meter = call(
        &host,
        "GET",
        "/v1/meters/calls",
        None,
        Some(&acme.admin),
        &[],
    )?;
    assert_eq!(expect(acme_meter, 200)?["key"], "calls");
    expect(
        call(
            &host,
            "GET",
            &format!("/v1/quotas/{acme_quota}"),
            None,
            Some(&acme.admin),
            &[],
        )?,
        200,
    )?;

    let batch = json!([
        event("x1", &format!("user:{}", acme.admin_id)),
        event("x2", &format!("team:{eng}")),
        event("x3", &format!("org:{}", acme.id)),
        event("x4", &format!("user:{}", globex.admin_id)),
    ]);
    let sent = expect(
        post(&host, "/v1/usage/events", &batch, Some(&globex.admin))?,
        200,
    )?;
    assert_eq!(
        (&sent["accepted"], &sent["duplicates"]),
        (&json!(1), &json!(0))
    );
    let refused: Vec<(i64, &str)> = sent["errors"]
        .as_array()
        .context("errors")?
        .iter()
        .map(|e| {
            (
                e["index"].as_i64().unwrap_or(-1),
                e["code"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        vec![
            (0, "unknown_subject"),
            (1, "unknown_subject"),
            (2, "unknown_subject")
        ]
    );

    meter(
        &host,
        &globex,
        json!({"key": "calls", "event_type": "agent.run", "aggregation": "count"}),
    )?;
    let foreign = post(
        &host,
        "/v1/quotas/consume",
        &json!({"subject": format!("user:{}", acme.admin_id), "meter": "calls"}),
        Some(&globex.admin),
    )?;
    assert_eq!(
        problem(foreign, 422)?,
        (
            "validation_failed".into(),
            "/subject".into(),
            "unknown_subject".into()
        )
    );
    let foreign_quota = post(
        &host,
        "/v1/quotas",
        &json!({"entity": format!("user:{}", acme.admin_id), "meter": "calls", "limit": 1, "period": "day"}),
        Some(&globex.admin),
    )?;
    assert_eq!(problem(foreign_quota, 422)?.2, "unknown_entity");
    assert_eq!(used(&host, &acme_quota)?, 0);
    Ok(())
}

#[test]
fn validation_errors_are_problem_documents_with_stable_codes() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let admin = Some(acme.admin.as_str());
    let bad_aggregation = post(
        &host,
        "/v1/meters",
        &json!({"key": "m", "event_type": "t", "aggregation": "median"}),
        admin,
    )?;
    assert_eq!(
        problem(bad_aggregation, 422)?,
        (
            "validation_failed".into(),
            "/aggregation".into(),
            "invalid".into()
        )
    );
    let no_path = post(
        &host,
        "/v1/meters",
        &json!({"key": "m", "event_type": "t", "aggregation": "sum"}),
        admin,
    )?;
    assert_eq!(problem(no_path, 422)?.1, "/value_path");
    meter(
        &host,
        &acme,
        json!({"key": "peak", "event_type": "t", "aggregation": "max", "value_path": "n"}),
    )?;
    let taken = post(
        &host,
        "/v1/meters",
        &json!({"key": "peak", "event_type": "t", "aggregation": "count"}),
        admin,
    )?;
    assert_eq!(problem(taken, 409)?.0, "conflict");

    let too_many: Vec<Value> = (0..1001)
        .map(|i| event(&format!("e{i}"), &format!("org:{}", acme.id)))
        .collect();
    let batch = post(&host, "/v1/usage/events", &json!(too_many), admin)?;
    assert_eq!(problem(batch, 422)?.2, "too_many_events");
    let not_a_batch = post(&host, "/v1/usage/events", &json!({"events": []}), admin)?;
    assert_eq!(problem(not_a_batch, 422)?.0, "validation_failed");
    let mixed =
        json!([event("ok", &format!("org:{}", acme.id)), event("bad", "robot:r2"), {"id": "x"}]);
    let sent = expect(post(&host, "/v1/usage/events", &mixed, admin)?, 200)?;
    assert_eq!(sent["accepted"], 1);
    assert_eq!(
        (&sent["errors"][0]["index"], &sent["errors"][0]["code"]),
        (&json!(1), &json!("invalid_subject"))
    );
    assert_eq!(
        (&sent["errors"][1]["index"], &sent["errors"][1]["code"]),
        (&json!(2), &json!("invalid_event"))
    );

    let subject = format!("user:{}", acme.admin_id);
    let bad_subject = post(
        &host,
        "/v1/quotas/check",
        &json!({"subject": format!("team:{}", acme.id), "meter": "peak"}),
        admin,
    )?;
    assert_eq!(problem(bad_subject, 422)?.2, "invalid_subject");
    let missing_meter = post(
        &host,
        "/v1/quotas/consume",
        &json!({"subject": subject, "meter": "nothing"}),
        admin,
    )?;
    assert_eq!(
        problem(missing_meter, 422)?,
        (
            "validation_failed".into(),
            "/meter".into(),
            "unknown_meter".into()
        )
    );
    let quota_on_missing = post(
        &host,
        "/v1/quotas",
        &json!({"entity": "org", "meter": "nothing", "limit": 1, "period": "day"}),
        admin,
    )?;
    assert_eq!(problem(quota_on_missing, 422)?.2, "unknown_meter");
    let quota_on_max = post(
        &host,
        "/v1/quotas",
        &json!({"entity": "org", "meter": "peak", "limit": 1, "period": "day"}),
        admin,
    )?;
    assert_eq!(problem(quota_on_max, 422)?.2, "not_additive");
    let bad_period = post(
        &host,
        "/v1/quotas",
        &json!({"entity": "org", "meter": "peak", "limit": 1, "period": "fortnight"}),
        admin,
    )?;
    assert_eq!(problem(bad_period, 422)?.1, "/period");
    let zero = post(
        &host,
        "/v1/quotas/check",
        &json!({"subject": subject, "meter": "peak", "amount": 0}),
        admin,
    )?;
    assert_eq!(problem(zero, 422)?.1, "/amount");
    Ok(())
}

#[test]
fn missing_or_invalid_credentials_are_refused_with_401() -> Result<()> {
    let host = start_app()?;
    let routes = [
        ("POST", "/v1/meters"),
        ("GET", "/v1/meters"),
        ("GET", "/v1/meters/calls"),
        ("DELETE", "/v1/meters/calls"),
        ("POST", "/v1/usage/events"),
        ("POST", "/v1/quotas"),
        ("GET", "/v1/quotas"),
        ("GET", "/v1/quotas/quo_1"),
        ("DELETE", "/v1/quotas/quo_1"),
        ("POST", "/v1/quotas/check"),
        ("POST", "/v1/quotas/consume"),
    ];
    for (method, path) in routes {
        let body = (method == "POST").then(|| json!({}));
        for token in [None, Some("ghs_not-a-session")] {
            let reply = call(&host, method, path, body.as_ref(), token, &[])?;
            assert_eq!(problem(reply, 401)?.0, "unauthenticated", "{method} {path}");
        }
    }
    Ok(())
}
