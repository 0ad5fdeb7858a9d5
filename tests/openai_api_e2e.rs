//! The local OpenAI API server (`tests/openai-api`) speaks OpenAI's
//! chat-completions wire format: its answers are OpenAI's objects, its
//! refusals OpenAI's error envelope with the same status, param and code,
//! and the official `openai` client runs its own tool-calling loop against
//! it. The tests of Gatehouse's tool-calling loops rely on each of these.

use anyhow::{Context, Result, bail};
use gatehouse_tests::openai_api::{OpenAiApi, Turn};
use gatehouse_tests::{Reply, get, root};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const KEY: &str = "sk-test-gatehouse-llm-0123456789abcdef";
const MODEL: &str = "gpt-4o-mini";

fn start() -> Result<OpenAiApi> {
    OpenAiApi::start(KEY)
}

fn ok(reply: Reply) -> Result<Value> {
    if reply.status != 200 {
        bail!("expected 200, got {} {}", reply.status, reply.text());
    }
    reply.json()
}

/// The `error` object of an answer with `status`.
fn error(reply: Reply, status: u16) -> Result<Value> {
    if reply.status != status {
        bail!("expected {status}, got {} {}", reply.status, reply.text());
    }
    let body = reply.json()?;
    let error = body["error"].clone();
    // OpenAI's envelope: exactly these four, null where they do not apply.
    let mut keys: Vec<&String> = error.as_object().context("error object")?.keys().collect();
    keys.sort();
    assert_eq!(keys, ["code", "message", "param", "type"], "{body}");
    Ok(error)
}

fn seat_count_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": "seat_count",
            "description": "The number of seats an organization has",
            "parameters": {
                "type": "object",
                "properties": { "org": { "type": "string" } },
                "required": ["org"]
            }
        }
    })
}

fn question() -> Value {
    json!([
        { "role": "system", "content": "You answer questions about Gatehouse organizations." },
        { "role": "user", "content": "How many seats do acme and globex have?" }
    ])
}

#[test]
fn a_final_answer_is_a_chat_completion_as_openai_sends_it() -> Result<()> {
    let api = start()?;
    api.script(MODEL, &[Turn::answer("Gatehouse is up.").usage(21, 7)])?;
    let body =
        json!({ "model": MODEL, "messages": question(), "temperature": 0.2, "max_tokens": 256 });
    let reply = api.complete(&body)?;
    let request_id = reply.header("x-request-id").unwrap_or_default().to_string();
    let answer = ok(reply)?;

    let id = answer["id"].as_str().context("id")?;
    assert!(id.starts_with("chatcmpl-"), "{id}");
    assert_eq!(answer["object"], "chat.completion");
    assert!(answer["created"].is_i64(), "{answer}");
    assert_eq!(answer["model"], MODEL);
    let fingerprint = answer["system_fingerprint"]
        .as_str()
        .context("fingerprint")?;
    assert!(fingerprint.starts_with("fp_"), "{fingerprint}");
    let choices = answer["choices"].as_array().context("choices")?;
    assert_eq!(choices.len(), 1);
    assert_eq!(choices[0]["index"], 0);
    assert_eq!(choices[0]["finish_reason"], "stop");
    let message = &choices[0]["message"];
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"], "Gatehouse is up.");
    assert!(message.get("tool_calls").is_none(), "{message}");
    assert_eq!(answer["usage"]["prompt_tokens"], 21);
    assert_eq!(answer["usage"]["completion_tokens"], 7);
    assert_eq!(answer["usage"]["total_tokens"], 28);
    assert!(request_id.starts_with("req_"), "{request_id}");

    // What the client sent is recorded whole, key and headers included.
    let sent = api.requests()?;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["body"], body);
    assert_eq!(sent[0]["headers"]["authorization"], format!("Bearer {KEY}"));
    assert_eq!(sent[0]["status"], 200);
    assert_eq!(sent[0]["turn"], 0);
    Ok(())
}

#[test]
fn a_tool_call_turn_then_the_tool_results_get_the_final_answer() -> Result<()> {
    let api = start()?;
    api.script(
        MODEL,
        &[
            Turn::tool_calls(&[
                ("seat_count", json!({ "org": "acme" })),
                ("seat_count", json!({ "org": "globex" })),
            ])
            .usage(120, 36),
            Turn::answer("Acme has 7 seats, Globex 3.").usage(181, 11),
        ],
    )?;
    let first = json!({ "model": MODEL, "messages": question(), "tools": [seat_count_tool()], "tool_choice": "auto" });
    let answer = ok(api.complete(&first)?)?;
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null(), "{choice}");
    let calls = choice["message"]["tool_calls"]
        .as_array()
        .context("tool_calls")?;
    assert_eq!(calls.len(), 2);
    let mut ids = Vec::new();
    for (call, org) in calls.iter().zip(["acme", "globex"]) {
        let id = call["id"].as_str().context("call id")?;
        assert!(id.starts_with("call_"), "{id}");
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "seat_count");
        // Arguments are JSON text, not an object, as OpenAI sends them.
        let arguments = call["function"]["arguments"]
            .as_str()
            .context("arguments text")?;
        let arguments: Value = serde_json::from_str(arguments)?;
        assert_eq!(arguments, json!({ "org": org }));
        ids.push(id.to_string());
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(answer["usage"]["total_tokens"], 156);

    let mut messages = question().as_array().context("messages")?.clone();
    messages.push(json!({ "role": "assistant", "content": null, "tool_calls": calls }));
    messages.push(json!({ "role": "tool", "tool_call_id": ids[0], "content": "{\"seats\":7}" }));
    messages.push(json!({ "role": "tool", "tool_call_id": ids[1], "content": "{\"seats\":3}" }));
    let second = json!({ "model": MODEL, "messages": messages, "tools": [seat_count_tool()] });
    let answer = ok(api.complete(&second)?)?;
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Acme has 7 seats, Globex 3."
    );
    assert_eq!(answer["usage"]["prompt_tokens"], 181);
    assert_eq!(answer["usage"]["completion_tokens"], 11);
    assert_eq!(answer["usage"]["total_tokens"], 192);

    // The tool results fed back are there for the test to check.
    let asked = api.chat_requests()?;
    assert_eq!(asked.len(), 2);
    let fed_back: Vec<(&str, &str)> = asked[1]["messages"]
        .as_array()
        .context("messages")?
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap_or_default(),
                m["content"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        fed_back,
        [
            (ids[0].as_str(), "{\"seats\":7}"),
            (ids[1].as_str(), "{\"seats\":3}")
        ]
    );
    Ok(())
}

#[test]
fn usage_the_script_leaves_out_is_counted_with_total_the_sum() -> Result<()> {
    let api = start()?;
    api.script(
        MODEL,
        &[
            Turn::raw_tool_call("seat_count", "{\"org\": \"acme\""),
            Turn::truncated("Acme has"),
        ],
    )?;
    let body = json!({ "model": MODEL, "messages": question(), "tools": [seat_count_tool()] });
    let answer = ok(api.complete(&body)?)?;
    // A model's malformed arguments reach the client verbatim.
    let call = &answer["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["arguments"], "{\"org\": \"acme\"");
    let answer = ok(api.complete(
        &json!({ "model": MODEL, "messages": question(), "max_completion_tokens": 2 }),
    )?)?;
    assert_eq!(answer["choices"][0]["finish_reason"], "length");
    let usage = &answer["usage"];
    let prompt = usage["prompt_tokens"].as_u64().context("prompt_tokens")?;
    let completion = usage["completion_tokens"]
        .as_u64()
        .context("completion_tokens")?;
    assert!(prompt > 0 && completion > 0, "{usage}");
    assert_eq!(usage["total_tokens"].as_u64(), Some(prompt + completion));
    Ok(())
}

#[test]
fn a_missing_or_wrong_api_key_is_refused_with_openais_401() -> Result<()> {
    let api = start()?;
    api.script(MODEL, &[Turn::answer("hello")])?;
    let body = json!({ "model": MODEL, "messages": question() });

    let missing = error(api.complete_with(None, &body)?, 401)?;
    assert_eq!(missing["type"], "invalid_request_error");
    assert!(missing["code"].is_null(), "{missing}");
    let text = missing["message"].as_str().context("message")?;
    assert!(text.starts_with("You didn't provide an API key."), "{text}");

    let wrong_key = "sk-test-someone-else-0123456789abcdef";
    let wrong = error(api.complete_with(Some(wrong_key), &body)?, 401)?;
    assert_eq!(wrong["type"], "invalid_request_error");
    assert_eq!(wrong["code"], "invalid_api_key");
    assert!(wrong["param"].is_null(), "{wrong}");
    let text = wrong["message"].as_str().context("message")?;
    // Quoted back masked, never whole.
    assert!(
        text.starts_with("Incorrect API key provided: sk-test-"),
        "{text}"
    );
    assert!(!text.contains(wrong_key), "{text}");

    let models = get(&api.url("/v1/models"), &[])?;
    error(models, 401)?;

    // A refused request takes no turn: the first one let in gets it.
    let answer = ok(api.complete(&body)?)?;
    assert_eq!(answer["choices"][0]["message"]["content"], "hello");
    Ok(())
}

#[test]
fn a_tool_message_that_answers_no_preceding_tool_call_is_refused_with_openais_400() -> Result<()> {
    let api = start()?;
    api.script(MODEL, &[Turn::answer("never sent")])?;
    let call = json!({ "id": "call_seats1", "type": "function",
                       "function": { "name": "seat_count", "arguments": "{\"org\":\"acme\"}" } });
    let user = json!({ "role": "user", "content": "seats?" });
    let calls = json!({ "role": "assistant", "content": null, "tool_calls": [call] });
    let result = |id: &str| json!({ "role": "tool", "tool_call_id": id, "content": "7" });

    // (messages, param, message start) as OpenAI answers each.
    let cases = [
        (
            json!([user, result("call_seats1")]),
            "messages.[1].role",
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
        ),
        (
            json!([user, calls, result("call_other")]),
            "messages.[2].tool_call_id",
            "Invalid parameter: 'tool_call_id' of 'call_other' not found in 'tool_calls' of previous message.",
        ),
        (
            json!([user, calls, user]),
            "messages.[1].role",
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: call_seats1",
        ),
        (
            json!([user, calls, { "role": "tool", "content": "7" }]),
            "messages.[2].tool_call_id",
            "Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.",
        ),
    ];
    for (messages, param, message) in cases {
        let body = json!({ "model": MODEL, "messages": messages, "tools": [seat_count_tool()] });
        let refused = error(api.complete(&body)?, 400)?;
        assert_eq!(refused["type"], "invalid_request_error", "{messages}");
        assert_eq!(refused["param"], param, "{messages}");
        assert!(refused["code"].is_null(), "{refused}");
        assert_eq!(refused["message"], message, "{messages}");
    }
    assert!(
        api.chat_requests()?.is_empty(),
        "a refused request took a turn"
    );
    Ok(())
}

#[test]
fn requests_openai_refuses_are_refused_with_its_param_and_code() -> Result<()> {
    let api = start()?;
    let valid = json!({ "model": MODEL, "messages": question(), "tools": [seat_count_tool()] });
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let arguments_as_object = json!([
        { "role": "user", "content": "seats?" },
        { "role": "assistant", "tool_calls": [{ "id": "call_1", "type": "function",
            "function": { "name": "seat_count", "arguments": { "org": "acme" } } }] },
        { "role": "tool", "tool_call_id": "call_1", "content": "7" }
    ]);
    let mut bad_name = seat_count_tool();
    bad_name["function"]["name"] = json!("seat count");
    // (body, status, param, code)
    let cases = [
        (
            with("messages", json!([])),
            400,
            json!("messages"),
            json!("empty_array"),
        ),
        (
            with("messages", json!([{ "role": "robot", "content": "hi" }])),
            400,
            json!("messages[0].role"),
            json!("invalid_value"),
        ),
        (
            with("messages", arguments_as_object),
            400,
            json!("messages[1].tool_calls[0].function.arguments"),
            json!("invalid_type"),
        ),
        (
            with("tools", json!([bad_name])),
            400,
            json!("tools[0].function.name"),
            json!("invalid_value"),
        ),
        (
            with("tool_choice", json!("sometimes")),
            400,
            json!("tool_choice"),
            json!("invalid_value"),
        ),
        (
            with("temperature", json!(3)),
            400,
            json!("temperature"),
            json!("decimal_above_max_value"),
        ),
        (
            with("max_tokens", json!("many")),
            400,
            json!("max_tokens"),
            json!("invalid_type"),
        ),
        (
            with("tool_results", json!([])),
            400,
            Value::Null,
            Value::Null,
        ),
        (
            with("model", json!("gpt-unscripted")),
            404,
            Value::Null,
            json!("model_not_found"),
        ),
    ];
    for (body, status, param, code) in cases {
        let refused = error(api.complete(&body)?, status)?;
        assert_eq!(refused["type"], "invalid_request_error", "{refused}");
        assert_eq!(refused["param"], param, "{refused}");
        assert_eq!(refused["code"], code, "{refused}");
    }
    let mut no_tools = valid.clone();
    no_tools.as_object_mut().context("body")?.remove("tools");
    no_tools["tool_choice"] = json!("auto");
    let refused = error(api.complete(&no_tools)?, 400)?;
    assert_eq!(refused["param"], "tool_choice");
    Ok(())
}

#[test]
fn a_scripted_429_carries_retry_after_and_the_retry_gets_the_next_turn() -> Result<()> {
    let api = start()?;
    api.script(
        MODEL,
        &[
            Turn::error(429).retry_after(3),
            Turn::answer("after the wait"),
            Turn::quota_exceeded(),
            Turn::error(500),
        ],
    )?;
    let body = json!({ "model": MODEL, "messages": question() });
    let reply = api.complete(&body)?;
    assert_eq!(reply.header("retry-after"), Some("3"));
    let limited = error(reply, 429)?;
    assert_eq!(limited["type"], "tokens");
    assert_eq!(limited["code"], "rate_limit_exceeded");
    let answer = ok(api.complete(&body)?)?;
    assert_eq!(answer["choices"][0]["message"]["content"], "after the wait");

    let quota = error(api.complete(&body)?, 429)?;
    assert_eq!(quota["type"], "insufficient_quota");
    assert_eq!(quota["code"], "insufficient_quota");
    let failed = error(api.complete(&body)?, 500)?;
    assert_eq!(failed["type"], "server_error");
    // Past its last turn the script says so rather than answering anything.
    let exhausted = error(api.complete(&body)?, 400)?;
    assert_eq!(exhausted["code"], "script_exhausted");
    let statuses: Vec<Value> = api
        .requests()?
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [json!(429), json!(200), json!(429), json!(500), json!(400)]
    );
    Ok(())
}

#[test]
fn a_delayed_turn_outlasts_a_client_timeout_and_a_dropped_turn_answers_nothing() -> Result<()> {
    let api = start()?;
    api.script(
        MODEL,
        &[
            Turn::answer("too late").delayed(Duration::from_secs(30)),
            Turn::dropped(),
            Turn::answer("back"),
        ],
    )?;
    let body = json!({ "model": MODEL, "messages": question() }).to_string();
    // A raw connection, so the test chooses how long it waits.
    let address = api.url("").trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )?;
    stream.set_read_timeout(Some(Duration::from_millis(300)))?;
    let mut buf = [0u8; 64];
    let read = stream.read(&mut buf);
    assert!(read.is_err(), "the delayed turn answered at once: {read:?}");
    drop(stream);

    let json_body: Value = serde_json::from_str(&body)?;
    assert!(
        api.complete(&json_body).is_err(),
        "a dropped turn gave an answer"
    );
    let answer = ok(api.complete(&json_body)?)?;
    assert_eq!(answer["choices"][0]["message"]["content"], "back");
    Ok(())
}

#[test]
fn the_models_list_names_the_scripted_models() -> Result<()> {
    let api = start()?;
    api.script(MODEL, &[])?;
    api.script("gpt-4o", &[])?;
    let auth = format!("Bearer {KEY}");
    let list = ok(get(&api.url("/v1/models"), &[("authorization", &auth)])?)?;
    assert_eq!(list["object"], "list");
    let mut ids: Vec<&str> = list["data"]
        .as_array()
        .context("data")?
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default())
        .collect();
    ids.sort();
    assert_eq!(ids, ["gpt-4o", MODEL]);
    let one = ok(get(
        &api.url("/v1/models/gpt-4o"),
        &[("authorization", &auth)],
    )?)?;
    assert_eq!(one["object"], "model");
    let unknown = get(&api.url("/v1/models/gpt-none"), &[("authorization", &auth)])?;
    assert_eq!(error(unknown, 404)?["code"], "model_not_found");
    Ok(())
}

#[test]
fn the_official_openai_client_runs_its_tool_loop_against_the_server() -> Result<()> {
    let dir = root().join("tests/openai-api");
    if !dir.join("node_modules/openai").exists() {
        bail!("run `npm ci` in tests/openai-api (scripts/test does)");
    }
    let api = start()?;
    api.script(
        MODEL,
        &[
            Turn::tool_calls(&[("seat_count", json!({ "org": "acme" }))]).usage(50, 10),
            Turn::error(429).retry_after(0),
            Turn::answer("Acme has 7 seats.").usage(70, 8),
        ],
    )?;
    let input = json!({ "baseURL": api.base_url, "apiKey": KEY, "model": MODEL });
    let mut child = Command::new("node")
        .arg("official_client.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("node runs tests/openai-api/official_client.mjs")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("official client: {}", String::from_utf8_lossy(&out.stderr));
    }
    let seen: Value = serde_json::from_slice(&out.stdout)?;

    // The client parsed the call, ran the function, retried the 429 and
    // summed the usage of the two completions.
    assert_eq!(seen["toolArgs"], json!([{ "org": "acme" }]));
    assert_eq!(seen["finalContent"], "Acme has 7 seats.");
    assert_eq!(seen["completions"], 2);
    assert_eq!(seen["usage"]["prompt_tokens"], 120);
    assert_eq!(seen["usage"]["completion_tokens"], 18);
    assert_eq!(seen["usage"]["total_tokens"], 138);
    // Its error classes read the envelope.
    assert_eq!(seen["wrongKey"]["class"], "AuthenticationError");
    assert_eq!(seen["wrongKey"]["code"], "invalid_api_key");
    assert_eq!(seen["orphanTool"]["class"], "BadRequestError");
    assert_eq!(seen["orphanTool"]["param"], "messages.[1].role");

    // What it sent back: the result of the call it was given, under its id.
    let asked = api.chat_requests()?;
    assert_eq!(asked.len(), 3);
    let last = asked[2]["messages"].as_array().context("messages")?;
    let tool = last.last().context("a message")?;
    assert_eq!(tool["role"], "tool");
    assert_eq!(tool["content"], "{\"seats\":7}");
    let assistant = &last[last.len() - 2];
    assert_eq!(assistant["tool_calls"][0]["id"], tool["tool_call_id"]);
    Ok(())
}
