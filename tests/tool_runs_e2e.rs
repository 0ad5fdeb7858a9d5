//! Tool runs end to end, against the local OpenAI stand-in
//! (`tests/openai-api`): each stage (raw, call, static); the step limit;
//! tool failures, malformed and invalid arguments and tools the caller
//! may not run fed back to the model as tool messages; the API key read
//! from an org secret, sent as the Bearer and shown nowhere; a provider's
//! error failing the run; settings checked; who may run, read and list;
//! another org's runs and completions not found.

use anyhow::{Context, Result};
use gatehouse_tests::app::{
    Org, call, expect, grant, join, org, post, problem, start_app_with_local_tools,
};
use gatehouse_tests::openai_api::{OpenAiApi, Turn};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

const KEY: &str = "sk-test-tool-runs-5f0c2a9d81e44b7c";
const MODEL: &str = "gpt-4o-mini";
const SECRET: &str = "org/OPENAI_API_KEY";

fn get(host: &TestHost, token: &str, path: &str) -> Result<Reply> {
    call(host, "GET", path, None, Some(token), &[])
}

fn put(host: &TestHost, token: &str, path: &str, body: &Value) -> Result<Reply> {
    call(host, "PUT", path, Some(body), Some(token), &[])
}

fn settings(api: &OpenAiApi, max_steps: u32) -> Value {
    json!({"base_url": api.base_url, "model": MODEL, "api_key_secret": SECRET, "max_steps": max_steps})
}

/// The org's API key secret set to `key`.
fn set_key(host: &TestHost, org: &Org, key: &str) -> Result<()> {
    let reply = put(
        host,
        &org.admin,
        &format!("/v1/orgs/{}/secrets/OPENAI_API_KEY", org.id),
        &json!({"value": key}),
    )?;
    assert!(matches!(reply.status, 200 | 201), "{}", reply.text());
    Ok(())
}

/// An org whose admin runs tools and reads secrets, with the key set,
/// settings pointing at `api`, and the tools `greet` (static) and
/// `unreachable` (HTTP, to a closed port).
fn ready(host: &TestHost, api: &OpenAiApi, email: &str, handle: &str) -> Result<Org> {
    let acme = org(host, email, handle)?;
    grant(
        host,
        &acme,
        &acme.admin_id,
        "runner",
        &["tools:run", "secrets:read"],
    )?;
    set_key(host, &acme, &api.api_key)?;
    expect(
        put(host, &acme.admin, "/v1/tool-settings", &settings(api, 4))?,
        200,
    )?;
    for tool in [greeter(), unreachable()] {
        expect(post(host, "/v1/tools", &tool, Some(&acme.admin))?, 201)?;
    }
    Ok(acme)
}

fn greeter() -> Value {
    json!({
        "name": "greet",
        "description": "Greets someone by name.",
        "kind": "static",
        "input_schema": {
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1}},
            "required": ["name"],
            "additionalProperties": false
        },
        "config": {"result": {"text": "Hello {{name}}!"}}
    })
}

fn unreachable() -> Value {
    json!({
        "name": "unreachable",
        "description": "Calls a service that is down.",
        "kind": "http",
        "config": {"method": "GET", "url": "http://127.0.0.1:9/x", "timeout_ms": 2000}
    })
}

fn question() -> Value {
    json!([
        {"role": "system", "content": "You greet people."},
        {"role": "user", "content": "Greet Ada."}
    ])
}

fn run(host: &TestHost, token: &str, body: &Value) -> Result<Reply> {
    post(host, "/v1/tool-runs", body, Some(token))
}

fn created_run(host: &TestHost, token: &str, body: &Value) -> Result<Value> {
    let reply = run(host, token, body)?;
    assert!(
        !reply.text().contains(KEY),
        "the key is in {}",
        reply.text()
    );
    expect(reply, 201)
}

/// The steps' `(kind, tool, is_error)`.
fn steps(run: &Value) -> Vec<(String, Option<String>, bool)> {
    run["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    (
                        s["kind"].as_str().unwrap_or_default().to_string(),
                        s["tool"].as_str().map(str::to_string),
                        s["is_error"].as_bool().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn step(kind: &str, tool: Option<&str>, is_error: bool) -> (String, Option<String>, bool) {
    (kind.to_string(), tool.map(str::to_string), is_error)
}

/// The content of the last message of chat request `i`.
fn last_message(sent: &[Value], i: usize) -> Result<Value> {
    let messages = sent.get(i).context("request")?["messages"]
        .as_array()
        .context("messages")?;
    Ok(messages.last().context("a message")?.clone())
}

#[test]
fn a_raw_run_answers_the_providers_completion_with_the_key_from_the_org_secret() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "ada@acme.test", "acme")?;
    api.script(MODEL, &[Turn::answer("Hello, Ada!").usage(21, 7)])?;
    let made = created_run(
        &host,
        &acme.admin,
        &json!({"stage": "raw", "messages": question()}),
    )?;
    assert_eq!(
        (made["status"].as_str(), made["stop_reason"].as_str()),
        (Some("completed"), Some("stop"))
    );
    assert_eq!(made["output"]["object"], "chat.completion");
    assert_eq!(
        made["output"]["choices"][0]["message"]["content"],
        "Hello, Ada!"
    );
    assert_eq!(
        (
            made["prompt_tokens"].as_i64(),
            made["completion_tokens"].as_i64()
        ),
        (Some(21), Some(7))
    );
    assert_eq!(steps(&made), vec![step("completion", None, false)]);
    let id = made["id"].as_str().context("id")?;
    assert!(id.starts_with("run_"), "{id}");

    let requests = api.requests()?;
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0]["headers"]["authorization"],
        format!("Bearer {KEY}")
    );
    assert!(
        requests[0]["body"].get("tools").is_none(),
        "a raw run offers no tools"
    );
    assert_eq!(requests[0]["body"]["messages"], question());

    // The run, its completion and the settings name the key's secret and
    // never hold its value.
    let completion_id = made["steps"][0]["completion_id"]
        .as_str()
        .context("completion")?;
    for path in [
        format!("/v1/tool-runs/{id}"),
        format!("/v1/completions/{completion_id}"),
        "/v1/tool-settings".to_string(),
        "/v1/tool-runs".to_string(),
    ] {
        let reply = get(&host, &acme.admin, &path)?;
        assert!(!reply.text().contains(KEY), "{path}: {}", reply.text());
        expect(reply, 200)?;
    }
    let completion = expect(
        get(
            &host,
            &acme.admin,
            &format!("/v1/completions/{completion_id}"),
        )?,
        200,
    )?;
    assert_eq!(
        (completion["run_id"].as_str(), completion["status"].as_i64()),
        (Some(id), Some(200))
    );
    assert_eq!(completion["request"], requests[0]["body"]);
    let shown = expect(get(&host, &acme.admin, "/v1/tool-settings")?, 200)?;
    assert_eq!(shown["api_key_secret"], SECRET);
    Ok(())
}

#[test]
fn a_call_run_runs_the_tools_the_model_asks_for_until_its_final_answer() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "ada@acme.test", "acme")?;
    api.script(
        MODEL,
        &[
            Turn::tool_calls(&[("greet", json!({"name": "Ada"}))]).usage(30, 10),
            Turn::answer("I greeted Ada.").usage(50, 5),
        ],
    )?;
    let made = created_run(
        &host,
        &acme.admin,
        &json!({"stage": "call", "messages": question()}),
    )?;
    assert_eq!(made["status"], "completed", "{made}");
    assert_eq!(made["output"]["content"], "I greeted Ada.");
    assert_eq!(made["output"]["role"], "assistant");
    assert_eq!(
        steps(&made),
        vec![
            step("completion", None, false),
            step("tool_call", Some("greet"), false),
            step("completion", None, false),
        ]
    );
    assert_eq!(made["steps"][1]["result"], json!({"text": "Hello Ada!"}));
    assert_eq!(made["steps"][1]["arguments"], json!({"name": "Ada"}));
    assert_eq!(
        (
            made["prompt_tokens"].as_i64(),
            made["completion_tokens"].as_i64()
        ),
        (Some(80), Some(15))
    );

    let sent = api.chat_requests()?;
    let offered: Vec<&str> = sent[0]["tools"]
        .as_array()
        .context("tools")?
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(offered, vec!["greet", "unreachable"]);
    assert_eq!(
        sent[0]["tools"][0]["function"]["parameters"],
        greeter()["input_schema"]
    );
    let answered = last_message(&sent, 1)?;
    assert_eq!(answered["role"], "tool");
    assert_eq!(
        answered["content"],
        json!({"text": "Hello Ada!"}).to_string()
    );

    // Offering only the tools named.
    api.script(MODEL, &[Turn::answer("Nothing to do.")])?;
    let only = json!({"stage": "call", "messages": question(), "tools": ["greet"]});
    expect(run(&host, &acme.admin, &only)?, 201)?;
    let sent = api.chat_requests()?;
    let last = sent.last().context("request")?;
    assert_eq!(last["tools"].as_array().map(Vec::len), Some(1));
    Ok(())
}

#[test]
fn a_run_that_keeps_calling_tools_stops_at_its_step_limit() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "ada@acme.test", "acme")?;
    let again = Turn::tool_calls(&[("greet", json!({"name": "Ada"}))]);
    api.script(MODEL, &[again.clone(), again.clone(), again])?;
    let made = created_run(
        &host,
        &acme.admin,
        &json!({"stage": "call", "messages": question(), "max_steps": 2}),
    )?;
    assert_eq!(
        (made["status"].as_str(), made["stop_reason"].as_str()),
        (Some("stopped"), Some("max_steps"))
    );
    assert_eq!(made["output"], Value::Null);
    assert_eq!(api.chat_requests()?.len(), 2);
    assert_eq!(made["step_count"], 4);

    // No more than the settings allow.
    let over = json!({"stage": "call", "messages": question(), "max_steps": 5});
    let (code, pointer, _) = problem(run(&host, &acme.admin, &over)?, 422)?;
    assert_eq!(
        (code.as_str(), pointer.as_str()),
        ("validation_failed", "/max_steps")
    );
    Ok(())
}

#[test]
fn tool_failures_and_bad_arguments_are_fed_back_to_the_model() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "ada@acme.test", "acme")?;
    api.script(
        MODEL,
        &[
            Turn::tool_calls(&[("unreachable", json!({}))]),
            Turn::raw_tool_call("greet", "{\"name\": "),
            Turn::tool_calls(&[("greet", json!({"name": ""}))]),
            Turn::answer("I could not greet anyone."),
        ],
    )?;
    let made = created_run(
        &host,
        &acme.admin,
        &json!({"stage": "call", "messages": question(), "max_steps": 4}),
    )?;
    assert_eq!(made["status"], "completed", "{made}");
    let tool_steps: Vec<_> = steps(&made)
        .into_iter()
        .filter(|s| s.0 == "tool_call")
        .collect();
    assert_eq!(
        tool_steps,
        vec![
            step("tool_call", Some("unreachable"), true),
            step("tool_call", Some("greet"), true),
            step("tool_call", Some("greet"), true),
        ]
    );
    // What the model read back: each error in a tool message.
    let sent = api.chat_requests()?;
    let expected = [
        "the endpoint could not be reached",
        "the arguments are not valid JSON",
        "the arguments do not match the tool's input schema",
    ];
    for (i, words) in expected.iter().enumerate() {
        let message = last_message(&sent, i + 1)?;
        assert_eq!(message["role"], "tool");
        let content = message["content"].as_str().context("content")?;
        let error: Value = serde_json::from_str(content)?;
        assert!(error.get("error").is_some(), "{content}");
        assert!(content.contains(words), "{words} in {content}");
    }
    assert!(
        last_message(&sent, 3)?["content"]
            .as_str()
            .unwrap_or_default()
            .contains("/arguments/name")
    );
    // The malformed arguments are kept as the model wrote them.
    assert_eq!(made["steps"][3]["arguments"], "{\"name\": ");
    Ok(())
}

#[test]
fn a_tool_the_caller_may_not_run_is_not_offered_and_its_call_is_refused() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "ada@acme.test", "acme")?;
    let mut payroll = greeter();
    payroll["name"] = json!("payroll");
    payroll["permission"] = json!("billing:tools");
    expect(post(&host, "/v1/tools", &payroll, Some(&acme.admin))?, 201)?;
    let (member, member_id) = join(&host, &acme.admin, &acme.id, "bo@acme.test", "member", &[])?;
    grant(&host, &acme, &member_id, "tool-user", &["tools:run"])?;

    api.script(
        MODEL,
        &[
            Turn::tool_calls(&[("payroll", json!({"name": "Bo"}))]),
            Turn::answer("I may not."),
        ],
    )?;
    let made = created_run(
        &host,
        &member,
        &json!({"stage": "call", "messages": question()}),
    )?;
    assert_eq!(made["status"], "completed");
    assert_eq!(steps(&made)[1], step("tool_call", Some("payroll"), true));
    let sent = api.chat_requests()?;
    let offered: Vec<&str> = sent[0]["tools"]
        .as_array()
        .context("tools")?
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(!offered.contains(&"payroll"), "{offered:?}");
    let refusal = last_message(&sent, 1)?;
    assert!(
        refusal["content"]
            .as_str()
            .unwrap_or_default()
            .contains("the tool payroll is not available to this run"),
        "{refusal}"
    );
    // Nor may the member name it.
    let named = json!({"stage": "call", "messages": question(), "tools": ["payroll"]});
    let (_, pointer, code) = problem(run(&host, &member, &named)?, 422)?;
    assert_eq!(
        (pointer.as_str(), code.as_str()),
        ("/tools/0", "unknown_tool")
    );
    Ok(())
}

#[test]
fn a_static_run_starts_from_its_static_tools_answers() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "ada@acme.test", "acme")?;
    api.script(MODEL, &[Turn::answer("Bo has been greeted.")])?;
    let body = json!({
        "stage": "static",
        "messages": question(),
        "static_calls": [{"tool": "greet", "arguments": {"name": "Bo"}}]
    });
    let made = created_run(&host, &acme.admin, &body)?;
    assert_eq!(made["status"], "completed", "{made}");
    assert_eq!(
        steps(&made),
        vec![
            step("tool_call", Some("greet"), false),
            step("completion", None, false)
        ]
    );
    let sent = api.chat_requests()?;
    let messages = sent[0]["messages"].as_array().context("messages")?;
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(messages[2]["tool_calls"][0]["function"]["name"], "greet");
    let call_id = messages[2]["tool_calls"][0]["id"].clone();
    assert_eq!(messages[3]["tool_call_id"], call_id);
    assert_eq!(
        messages[3]["content"],
        json!({"text": "Hello Bo!"}).to_string()
    );

    // Only static tools, with arguments their schema takes.
    for (calls, pointer) in [
        (json!([{"tool": "unreachable"}]), "/static_calls/0/tool"),
        (
            json!([{"tool": "greet", "arguments": {}}]),
            "/static_calls/0/arguments/name",
        ),
    ] {
        let body = json!({"stage": "static", "messages": question(), "static_calls": calls});
        let (_, found, _) = problem(run(&host, &acme.admin, &body)?, 422)?;
        assert_eq!(found, pointer);
    }
    assert_eq!(
        api.chat_requests()?.len(),
        1,
        "nothing sent for refused runs"
    );
    Ok(())
}

#[test]
fn a_providers_error_fails_the_run_and_is_recorded() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "ada@acme.test", "acme")?;
    api.script(MODEL, &[Turn::error(500)])?;
    let made = created_run(
        &host,
        &acme.admin,
        &json!({"stage": "call", "messages": question()}),
    )?;
    assert_eq!(
        (made["status"].as_str(), made["stop_reason"].as_str()),
        (Some("failed"), Some("provider_error"))
    );
    assert_eq!(steps(&made), vec![step("completion", None, true)]);
    let completion_id = made["steps"][0]["completion_id"]
        .as_str()
        .context("completion")?;
    let completion = expect(
        get(
            &host,
            &acme.admin,
            &format!("/v1/completions/{completion_id}"),
        )?,
        200,
    )?;
    assert_eq!(completion["status"], 500);
    assert_eq!(completion["response"]["error"]["type"], "server_error");

    // A key the provider does not take: unauthorized, and the wrong key
    // is not shown either.
    set_key(&host, &acme, "sk-wrong-key-0000")?;
    api.script(MODEL, &[Turn::answer("Not for a wrong key.")])?;
    let made = created_run(
        &host,
        &acme.admin,
        &json!({"stage": "raw", "messages": question()}),
    )?;
    assert_eq!(made["stop_reason"], "provider_unauthorized");
    let read = get(
        &host,
        &acme.admin,
        &format!("/v1/tool-runs/{}", made["id"].as_str().unwrap_or_default()),
    )?;
    assert!(!read.text().contains("sk-wrong-key-0000"));
    Ok(())
}

#[test]
fn settings_are_checked_and_a_run_needs_them_and_its_key() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    grant(&host, &acme, &acme.admin_id, "runner", &["tools:run"])?;
    let body = json!({"stage": "raw", "messages": question()});
    let (code, _, _) = problem(run(&host, &acme.admin, &body)?, 409)?;
    assert_eq!(code, "conflict");
    assert_eq!(
        problem(get(&host, &acme.admin, "/v1/tool-settings")?, 404)?.0,
        "not_found"
    );

    let bad = json!({
        "base_url": "http://169.254.169.254/v1",
        "model": "",
        "api_key_secret": "user/someone/KEY",
        "max_steps": 33,
        "timeout_ms": 0
    });
    let reply = put(&host, &acme.admin, "/v1/tool-settings", &bad)?;
    let errors = expect(reply, 422)?["errors"].clone();
    let pointers: Vec<&str> = errors
        .as_array()
        .context("errors")?
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert_eq!(
        pointers,
        vec![
            "/base_url",
            "/model",
            "/api_key_secret",
            "/max_steps",
            "/timeout_ms"
        ]
    );
    // Naming the key's secret takes the right to read it.
    let (code, _, _) = problem(
        put(&host, &acme.admin, "/v1/tool-settings", &settings(&api, 4))?,
        403,
    )?;
    assert_eq!(code, "forbidden");
    grant(&host, &acme, &acme.admin_id, "reader", &["secrets:read"])?;
    expect(
        put(&host, &acme.admin, "/v1/tool-settings", &settings(&api, 4))?,
        200,
    )?;
    // The secret is not set yet: nothing is sent.
    let (code, _, _) = problem(run(&host, &acme.admin, &body)?, 409)?;
    assert_eq!(code, "conflict");
    assert!(api.requests()?.is_empty());

    // A member with tools:run reads the settings, without it not; neither
    // writes them.
    let (runner, runner_id) = join(&host, &acme.admin, &acme.id, "bo@acme.test", "member", &[])?;
    grant(&host, &acme, &runner_id, "tool-user", &["tools:run"])?;
    let (plain, _) = join(&host, &acme.admin, &acme.id, "cy@acme.test", "member", &[])?;
    expect(get(&host, &runner, "/v1/tool-settings")?, 200)?;
    assert_eq!(
        problem(get(&host, &plain, "/v1/tool-settings")?, 403)?.0,
        "forbidden"
    );
    let (code, _, _) = problem(
        put(&host, &runner, "/v1/tool-settings", &settings(&api, 4))?,
        403,
    )?;
    assert_eq!(code, "forbidden");
    Ok(())
}

#[test]
fn runs_take_credentials_and_tools_run() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "ada@acme.test", "acme")?;
    let body = json!({"stage": "raw", "messages": question()});
    let anonymous = call(&host, "POST", "/v1/tool-runs", Some(&body), None, &[])?;
    assert_eq!(problem(anonymous, 401)?.0, "unauthenticated");
    let anonymous = call(&host, "GET", "/v1/tool-runs", None, None, &[])?;
    assert_eq!(problem(anonymous, 401)?.0, "unauthenticated");
    let (plain, _) = join(&host, &acme.admin, &acme.id, "cy@acme.test", "member", &[])?;
    assert_eq!(problem(run(&host, &plain, &body)?, 403)?.0, "forbidden");
    assert!(api.requests()?.is_empty());
    Ok(())
}

#[test]
fn another_orgs_runs_and_completions_are_not_found() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "ada@acme.test", "acme")?;
    let globex = ready(&host, &api, "gil@globex.test", "globex")?;
    api.script(MODEL, &[Turn::answer("Hi.")])?;
    let made = created_run(
        &host,
        &acme.admin,
        &json!({"stage": "raw", "messages": question()}),
    )?;
    let run_path = format!("/v1/tool-runs/{}", made["id"].as_str().context("id")?);
    let completion_path = format!(
        "/v1/completions/{}",
        made["steps"][0]["completion_id"]
            .as_str()
            .context("completion")?
    );
    for path in [&run_path, &completion_path] {
        expect(get(&host, &acme.admin, path)?, 200)?;
        assert_eq!(
            problem(get(&host, &globex.admin, path)?, 404)?.0,
            "not_found"
        );
    }
    let theirs = expect(get(&host, &globex.admin, "/v1/tool-runs")?, 200)?;
    assert_eq!(theirs["items"], json!([]));
    Ok(())
}

#[test]
fn a_member_lists_their_own_runs_and_an_admin_all_of_the_orgs() -> Result<()> {
    let host = start_app_with_local_tools()?;
    let api = OpenAiApi::start(KEY)?;
    let acme = ready(&host, &api, "ada@acme.test", "acme")?;
    let (member, member_id) = join(&host, &acme.admin, &acme.id, "bo@acme.test", "member", &[])?;
    grant(&host, &acme, &member_id, "tool-user", &["tools:run"])?;
    api.script(
        MODEL,
        &[
            Turn::answer("One."),
            Turn::answer("Two."),
            Turn::answer("Three."),
        ],
    )?;
    let body = json!({"stage": "raw", "messages": question()});
    let admins = created_run(&host, &acme.admin, &body)?;
    let first = created_run(&host, &member, &body)?;
    let second = created_run(&host, &member, &body)?;
    let ids = |listing: &Value| -> Vec<String> {
        listing["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let id = |run: &Value| run["id"].as_str().unwrap_or_default().to_string();

    let mine = expect(get(&host, &member, "/v1/tool-runs")?, 200)?;
    assert_eq!(ids(&mine), vec![id(&second), id(&first)]);
    assert!(
        mine["items"][0].get("steps").is_none(),
        "a listing leaves steps out"
    );
    let all = expect(get(&host, &acme.admin, "/v1/tool-runs")?, 200)?;
    assert_eq!(ids(&all), vec![id(&second), id(&first), id(&admins)]);
    let page = expect(get(&host, &acme.admin, "/v1/tool-runs?limit=2")?, 200)?;
    let cursor = page["next_cursor"].as_str().context("cursor")?;
    let rest = expect(
        get(
            &host,
            &acme.admin,
            &format!("/v1/tool-runs?limit=2&cursor={cursor}"),
        )?,
        200,
    )?;
    assert_eq!(ids(&rest), vec![id(&admins)]);

    // A member does not see the admin's run nor its completion; the admin
    // sees the member's.
    let admins_completion = format!(
        "/v1/completions/{}",
        admins["steps"][0]["completion_id"]
            .as_str()
            .unwrap_or_default()
    );
    assert_eq!(
        problem(
            get(&host, &member, &format!("/v1/tool-runs/{}", id(&admins)))?,
            404
        )?
        .0,
        "not_found"
    );
    assert_eq!(
        problem(get(&host, &member, &admins_completion)?, 404)?.0,
        "not_found"
    );
    expect(
        get(&host, &acme.admin, &format!("/v1/tool-runs/{}", id(&first)))?,
        200,
    )?;
    Ok(())
}
