//! Tool runs against the org's quotas, end to end with the OpenAI
//! stand-in (`tests/openai-api`): a tool-call quota reached mid-run stops
//! the run before the call and names the quota; a completion's tokens are
//! counted whole after it ran, so the next completion is refused; tokens
//! and tool calls are spent from the meters' prices for the member, their
//! team and the org, per model and per tool; the settings name meters of
//! the org's own, of the right kind; a run retried with its
//! `Idempotency-Key` runs once.

use anyhow::{Context, Result};
use gatehouse_tests::app::{
    Org, call, expect, grant, join, org, post, problem, start_app_with_local_tools, team,
};
use gatehouse_tests::openai_api::{OpenAiApi, Turn};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

const KEY: &str = "sk-test-run-quotas-0b8e61c4d27f4a95";
const MODEL: &str = "gpt-4o-mini";

fn get(host: &TestHost, token: &str, path: &str) -> Result<Reply> {
    call(host, "GET", path, None, Some(token), &[])
}

fn put(host: &TestHost, token: &str, path: &str, body: &Value) -> Result<Reply> {
    call(host, "PUT", path, Some(body), Some(token), &[])
}

/// Tokens at 0.000002 USD each (sum of `tokens`), tool calls at 0.01 USD
/// each (count).
fn meters(host: &TestHost, acme: &Org) -> Result<()> {
    for meter in [
        json!({"key": "llm-tokens", "event_type": "llm.tokens", "aggregation": "sum",
               "value_path": "tokens", "price": {"currency": "USD", "unit_price": "0.000002"}}),
        json!({"key": "tool-calls", "event_type": "tool.call", "aggregation": "count",
               "price": {"currency": "USD", "unit_price": "0.01"}}),
    ] {
        expect(post(host, "/v1/meters", &meter, Some(&acme.admin))?, 201)?;
    }
    Ok(())
}

fn settings(api: &OpenAiApi, metering: Value) -> Value {
    let mut body = json!({"base_url": api.base_url, "model": MODEL,
                          "api_key_secret": "org/OPENAI_API_KEY", "max_steps": 4});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), metering.as_object()) {
        body.extend(extra.clone());
    }
    body
}

/// An org with the key, the meters, the `greet` static tool, and tool
/// settings carrying `metering`.
fn ready(host: &TestHost, api: &OpenAiApi, handle: &str, metering: Value) -> Result<Org> {
    let acme = org(host, &format!("ada@{handle}.test"), handle)?;
    grant(
        host,
        &acme,
        &acme.admin_id,
        "runner",
        &["tools:run", "secrets:read"],
    )?;
    let reply = put(
        host,
        &acme.admin,
        &format!("/v1/orgs/{}/secrets/OPENAI_API_KEY", acme.id),
        &json!({"value": api.api_key}),
    )?;
    assert!(matches!(reply.status, 200 | 201), "{}", reply.text());
    meters(host, &acme)?;
    expect(
        put(
            host,
            &acme.admin,
            "/v1/tool-settings",
            &settings(api, metering),
        )?,
        200,
    )?;
    let greet = json!({
        "name": "greet", "description": "Greets someone.", "kind": "static",
        "input_schema": {"type": "object", "properties": {"name": {"type": "string"}}},
        "config": {"result": {"text": "Hello {{name}}!"}}
    });
    expect(post(host, "/v1/tools", &greet, Some(&acme.admin))?, 201)?;
    Ok(acme)
}

fn question() -> Value {
    json!([{"role": "user", "content": "Greet Ada, then Bob."}])
}

fn greet(name: &str) -> Turn {
    Turn::tool_calls(&[("greet", json!({"name": name}))])
}

fn quota(host: &TestHost, acme: &Org, body: Value) -> Result<String> {
    let made = expect(post(host, "/v1/quotas", &body, Some(&acme.admin))?, 201)?;
    Ok(made["id"].as_str().context("quota id")?.to_string())
}

fn run(host: &TestHost, token: &str) -> Result<Value> {
    let body = json!({"stage": "call", "messages": question()});
    expect(post(host, "/v1/tool-runs", &body, Some(token))?, 201)
}

fn kinds(run: &Value) -> Vec<(String, Option<String>)> {
    run["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    (
                        s["kind"].as_str().unwrap_or_default().to_string(),
                        s["tool"].as_str().map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn step(kind: &str, tool: Option<&str>) -> (String, Option<String>) {
    (kind.to_string(), tool.map(str::to_string))
}

#[test]
fn a_tool_call_quota_reached_mid_run_stops_it_before_the_call_and_names_the_quota() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(
        &host,
        &api,
        "acme",
        json!({"token_meter": "llm-tokens", "tool_meter": "tool-calls"}),
    )?;
    let me = format!("user:{}", acme.admin_id);
    let one_call = quota(
        &host,
        &acme,
        json!({"entity": me, "meter": "tool-calls", "limit": 1, "period": "day"}),
    )?;
    api.script(
        MODEL,
        &[
            greet("Ada").usage(30, 10),
            greet("Bob").usage(40, 10),
            Turn::answer("Done."),
        ],
    )?;
    let made = run(&host, &acme.admin)?;
    assert_eq!(
        (made["status"].as_str(), made["stop_reason"].as_str()),
        (Some("stopped"), Some("quota_exceeded")),
        "{made}"
    );
    let refusal = &made["quota_refusal"];
    assert_eq!(
        refusal["charge"],
        json!({"kind": "tool_call", "tool": "greet"})
    );
    assert_eq!(refusal["meter"], "tool-calls");
    assert_eq!(refusal["blocking"]["id"], one_call.as_str());
    assert_eq!(refusal["blocking"]["entity"], me.as_str());
    assert_eq!(
        (
            refusal["blocking"]["limit"].as_i64(),
            refusal["blocking"]["used"].as_i64()
        ),
        (Some(1), Some(1))
    );
    // Greeting Bob never ran: two completions, one call.
    assert_eq!(
        kinds(&made),
        vec![
            step("completion", None),
            step("tool_call", Some("greet")),
            step("completion", None),
        ]
    );
    assert_eq!(api.chat_requests()?.len(), 2);
    // The refusal is kept with the run.
    let id = made["id"].as_str().context("run id")?;
    let read = expect(
        get(&host, &acme.admin, &format!("/v1/tool-runs/{id}"))?,
        200,
    )?;
    assert_eq!(read["quota_refusal"], made["quota_refusal"]);
    // Metering agrees: one call used of one.
    let check = expect(
        post(
            &host,
            "/v1/quotas/check",
            &json!({"subject": me, "meter": "tool-calls"}),
            Some(&acme.admin),
        )?,
        200,
    )?;
    assert_eq!(check["allowed"], false, "{check}");
    Ok(())
}

#[test]
fn a_completions_tokens_count_whole_after_it_ran_so_the_next_one_is_refused() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(
        &host,
        &api,
        "acme",
        json!({"token_meter": "llm-tokens", "reserve_tokens": 100}),
    )?;
    let me = format!("user:{}", acme.admin_id);
    let tokens = quota(
        &host,
        &acme,
        json!({"entity": me, "meter": "llm-tokens", "limit": 150, "period": "day"}),
    )?;
    // 100 held of 150; the answer used 120, all counted.
    api.script(
        MODEL,
        &[
            greet("Ada").usage(100, 20),
            Turn::answer("Done.").usage(1, 1),
        ],
    )?;
    let made = run(&host, &acme.admin)?;
    assert_eq!(made["stop_reason"], "quota_exceeded", "{made}");
    assert_eq!(
        made["quota_refusal"]["charge"],
        json!({"kind": "completion", "model": MODEL})
    );
    assert_eq!(made["quota_refusal"]["blocking"]["id"], tokens.as_str());
    assert_eq!(made["quota_refusal"]["blocking"]["used"], 120);
    // The tool is not metered here: it ran; the second completion did not.
    assert_eq!(
        kinds(&made),
        vec![step("completion", None), step("tool_call", Some("greet"))]
    );
    assert_eq!(made["steps"][1]["cost"], Value::Null);
    assert_eq!(api.chat_requests()?.len(), 1);
    // 30 of 150 left: the next 30 tokens fit, 31 do not.
    for (amount, allowed) in [(30, true), (31, false)] {
        let check = expect(
            post(
                &host,
                "/v1/quotas/check",
                &json!({"subject": me, "meter": "llm-tokens", "amount": amount}),
                Some(&acme.admin),
            )?,
            200,
        )?;
        assert_eq!(check["allowed"], allowed, "{amount}: {check}");
    }
    Ok(())
}

#[test]
fn tokens_and_tool_calls_are_spent_for_the_member_their_team_and_the_org_by_model_and_tool()
-> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(
        &host,
        &api,
        "acme",
        json!({"token_meter": "llm-tokens", "tool_meter": "tool-calls"}),
    )?;
    let research = team(&host, &acme, "research", None)?;
    let (bob, bob_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@acme.test",
        "member",
        &[&research],
    )?;
    grant(&host, &acme, &bob_id, "tool-runner", &["tools:run"])?;
    api.script(
        MODEL,
        &[
            greet("Ada").usage(30, 10),
            Turn::answer("I greeted Ada.").usage(50, 5),
        ],
    )?;
    let made = run(&host, &bob)?;
    assert_eq!(made["status"], "completed", "{made}");
    // 40 tokens, a call, 55 tokens.
    let costs: Vec<(Value, Value)> = made["steps"]
        .as_array()
        .context("steps")?
        .iter()
        .map(|s| (s["cost"].clone(), s["currency"].clone()))
        .collect();
    assert_eq!(
        costs,
        vec![
            (json!("0.00008"), json!("USD")),
            (json!("0.01"), json!("USD")),
            (json!("0.00011"), json!("USD")),
        ]
    );
    let expected = json!([
        {"item_type": "model", "item_id": MODEL, "totals": {"USD": "0.00019"}},
        {"item_type": "tool", "item_id": "greet", "totals": {"USD": "0.01"}},
    ]);
    for entity in [
        format!("user:{bob_id}"),
        format!("team:{research}"),
        "org".to_string(),
    ] {
        let spent = expect(
            get(
                &host,
                &acme.admin,
                &format!("/v1/expenditure?entity={entity}&group_by=item"),
            )?,
            200,
        )?;
        assert_eq!(spent["groups"], expected, "{entity}: {spent}");
    }
    // Nothing of it is the admin's.
    let admins = expect(
        get(
            &host,
            &acme.admin,
            &format!("/v1/expenditure?entity=user:{}", acme.admin_id),
        )?,
        200,
    )?;
    assert_eq!(admins["totals"], json!({}), "{admins}");
    Ok(())
}

#[test]
fn settings_name_meters_of_the_orgs_own_that_sum_tokens_and_count_calls() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "acme", json!({}))?;
    let globex = ready(&host, &api, "globex", json!({}))?;
    expect(
        post(
            &host,
            "/v1/meters",
            &json!({"key": "globex-only", "event_type": "x", "aggregation": "sum", "value_path": "n"}),
            Some(&globex.admin),
        )?,
        201,
    )?;
    let cases = [
        (
            json!({"token_meter": "tool-calls"}),
            "/token_meter",
            "wrong_aggregation",
        ),
        (
            json!({"tool_meter": "llm-tokens"}),
            "/tool_meter",
            "wrong_aggregation",
        ),
        (
            json!({"token_meter": "globex-only"}),
            "/token_meter",
            "unknown_meter",
        ),
        (
            json!({"tool_meter": "nope"}),
            "/tool_meter",
            "unknown_meter",
        ),
        (json!({"token_meter": "Tokens!"}), "/token_meter", "invalid"),
        (
            json!({"reserve_tokens": 0}),
            "/reserve_tokens",
            "out_of_range",
        ),
        (
            json!({"reserve_tokens": "many"}),
            "/reserve_tokens",
            "invalid",
        ),
    ];
    for (metering, pointer, code) in cases {
        let body = settings(&api, metering.clone());
        let reply = put(&host, &acme.admin, "/v1/tool-settings", &body)?;
        let (problem_code, at, field_code) = problem(reply, 422)?;
        assert_eq!(
            (problem_code.as_str(), at.as_str(), field_code.as_str()),
            ("validation_failed", pointer, code),
            "{metering}"
        );
    }
    let good = settings(
        &api,
        json!({"token_meter": "llm-tokens", "tool_meter": "tool-calls", "reserve_tokens": 2000}),
    );
    let stored = expect(put(&host, &acme.admin, "/v1/tool-settings", &good)?, 200)?;
    assert_eq!(
        (
            stored["token_meter"].as_str(),
            stored["tool_meter"].as_str(),
            stored["reserve_tokens"].as_i64()
        ),
        (Some("llm-tokens"), Some("tool-calls"), Some(2000))
    );
    Ok(())
}

#[test]
fn a_run_retried_with_its_idempotency_key_runs_once() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "acme", json!({"tool_meter": "tool-calls"}))?;
    api.script(
        MODEL,
        &[greet("Ada"), Turn::answer("Done."), Turn::answer("Again.")],
    )?;
    let body = json!({"stage": "call", "messages": question()});
    let key = [("idempotency-key", "run-7f3a")];
    let first = call(
        &host,
        "POST",
        "/v1/tool-runs",
        Some(&body),
        Some(&acme.admin),
        &key,
    )?;
    let again = call(
        &host,
        "POST",
        "/v1/tool-runs",
        Some(&body),
        Some(&acme.admin),
        &key,
    )?;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let (first, again) = (expect(first, 201)?, expect(again, 201)?);
    assert_eq!(first["id"], again["id"]);
    assert_eq!(api.chat_requests()?.len(), 2, "the retry sent nothing");
    let listed = expect(get(&host, &acme.admin, "/v1/tool-runs")?, 200)?;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    // One call counted.
    let used = expect(
        get(
            &host,
            &acme.admin,
            &format!("/v1/expenditure?entity=user:{}", acme.admin_id),
        )?,
        200,
    )?;
    assert_eq!(used["totals"], json!({"USD": "0.01"}), "{used}");
    // The key with another body is refused.
    let other = json!({"stage": "raw", "messages": question()});
    let (code, _, _) = problem(
        call(
            &host,
            "POST",
            "/v1/tool-runs",
            Some(&other),
            Some(&acme.admin),
            &key,
        )?,
        422,
    )?;
    assert_eq!(code, "idempotency_key_reused");
    Ok(())
}

#[test]
fn a_run_made_with_an_api_key_counts_for_the_keys_owner() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "acme", json!({"tool_meter": "tool-calls"}))?;
    let owner = format!("user:{}", acme.admin_id);
    quota(
        &host,
        &acme,
        json!({"entity": owner, "meter": "tool-calls", "limit": 1, "period": "day"}),
    )?;
    let key = expect(
        post(
            &host,
            "/v1/keys",
            &json!({"name": "agent", "roles": ["runner"]}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let key = key["key"].as_str().context("key")?;
    api.script(MODEL, &[greet("Ada"), greet("Bob"), Turn::answer("Done.")])?;
    let made = run(&host, key)?;
    assert_eq!(made["stop_reason"], "quota_exceeded", "{made}");
    assert_eq!(made["quota_refusal"]["blocking"]["entity"], owner.as_str());
    // The owner's own session is refused the next call too.
    api.script(MODEL, &[greet("Cy"), Turn::answer("Done.")])?;
    let after = run(&host, &acme.admin)?;
    assert_eq!(after["stop_reason"], "quota_exceeded", "{after}");
    assert_eq!(api.chat_requests()?.len(), 3);
    Ok(())
}

#[test]
fn a_direct_tool_call_counts_on_the_tool_meter_and_a_used_up_quota_answers_429() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "acme", json!({"tool_meter": "tool-calls"}))?;
    let me = format!("user:{}", acme.admin_id);
    let one_call = quota(
        &host,
        &acme,
        json!({"entity": "org", "meter": "tool-calls", "limit": 1, "period": "day"}),
    )?;
    let body = json!({"arguments": {"name": "Ada"}});
    let called = expect(
        post(&host, "/v1/tools/greet/$call", &body, Some(&acme.admin))?,
        200,
    )?;
    assert_eq!(called["result"], json!({"text": "Hello Ada!"}));
    let refused = post(&host, "/v1/tools/greet/$call", &body, Some(&acme.admin))?;
    let wait: i64 = refused
        .header("retry-after")
        .context("retry-after")?
        .parse()?;
    assert!((1..=86_400).contains(&wait), "{wait}");
    let reply_text = refused.text();
    let (code, _, _) = problem(refused, 429)?;
    assert_eq!(code, "quota_exceeded");
    assert!(reply_text.contains(&one_call), "{reply_text}");
    // One call counted and spent, as the tool's.
    let spent = expect(
        get(
            &host,
            &acme.admin,
            &format!("/v1/expenditure?entity={me}&group_by=item"),
        )?,
        200,
    )?;
    assert_eq!(
        spent["groups"],
        json!([{"item_type": "tool", "item_id": "greet", "totals": {"USD": "0.01"}}])
    );
    // Arguments refused before the call hold nothing: still 422, not 429.
    let bad = json!({"arguments": {"name": 7}});
    let (code, _, _) = problem(
        post(&host, "/v1/tools/greet/$call", &bad, Some(&acme.admin))?,
        422,
    )?;
    assert_eq!(code, "validation_failed");
    Ok(())
}

#[test]
fn a_completion_cut_off_by_the_timeout_counts_the_tokens_held_for_it() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(
        &host,
        &api,
        "acme",
        json!({"token_meter": "llm-tokens", "reserve_tokens": 100, "timeout_ms": 300}),
    )?;
    let me = format!("user:{}", acme.admin_id);
    quota(
        &host,
        &acme,
        json!({"entity": me, "meter": "llm-tokens", "limit": 150, "period": "day"}),
    )?;
    // The provider may have run the whole completion (and billed it):
    // the 100 tokens held are counted.
    api.script(
        MODEL,
        &[Turn::answer("A long answer.").delayed(std::time::Duration::from_millis(1500))],
    )?;
    let cut = run(&host, &acme.admin)?;
    assert_eq!(cut["stop_reason"], "provider_timeout", "{cut}");
    let after = run(&host, &acme.admin)?;
    assert_eq!(after["stop_reason"], "quota_exceeded", "{after}");
    assert_eq!(after["quota_refusal"]["blocking"]["used"], 100);
    Ok(())
}
