//! Tools end to end: definitions written by admins and holders of
//! `tools:write`, seen and run by holders of `tools:run` (and of a tool's
//! own permission); arguments checked before anything runs; static tools
//! filled from the arguments; HTTP tools calling a loopback server with a
//! secret header that no answer shows; failures as `is_error`; another
//! org's tools not found; URLs the deployment does not allow refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use gatehouse_tests::app::{
    call, expect, grant, join, org, post, problem, start_app, start_app_with,
};
use gatehouse_tests::fake_http::{self, RawRequest};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

/// The app with HTTP tools allowed on loopback, as a deployment that runs
/// its tools' services beside Gatehouse would set it.
fn start() -> Result<TestHost> {
    start_app_with(vec![
        (
            "SPIN_VARIABLE_TOOL_OUTBOUND_HOSTS".into(),
            "http://127.0.0.1:*".into(),
        ),
        (
            "SPIN_VARIABLE_TOOL_ALLOW_PRIVATE_HOSTS".into(),
            "true".into(),
        ),
    ])
}

fn get(host: &TestHost, token: &str, path: &str) -> Result<Reply> {
    call(host, "GET", path, None, Some(token), &[])
}

fn patch(host: &TestHost, token: &str, path: &str, body: &Value) -> Result<Reply> {
    call(host, "PATCH", path, Some(body), Some(token), &[])
}

fn run(host: &TestHost, token: &str, name: &str, arguments: &Value) -> Result<Reply> {
    post(
        host,
        &format!("/v1/tools/{name}/$call"),
        &json!({"arguments": arguments}),
        Some(token),
    )
}

fn names(listing: &Value) -> Vec<String> {
    listing["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn greeter() -> Value {
    json!({
        "name": "greet",
        "description": "Greets someone by name.",
        "kind": "static",
        "input_schema": {
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1}, "times": {"type": "integer"}},
            "required": ["name"],
            "additionalProperties": false
        },
        "config": {"result": {"text": "Hello {{name}}!", "times": "{{times}}", "fixed": [1, true, null]}}
    })
}

#[test]
fn an_admin_makes_lists_changes_and_deletes_a_static_tool_that_fills_its_arguments() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let made = expect(
        post(&host, "/v1/tools", &greeter(), Some(&acme.admin))?,
        201,
    )?;
    let id = made["id"].as_str().context("id")?;
    assert!(id.starts_with("tool_") && id.len() == 37, "{id}");
    assert_eq!(
        (made["kind"].as_str(), made["enabled"].as_bool()),
        (Some("static"), Some(true))
    );
    assert_eq!(made["permission"], Value::Null);
    let again = post(&host, "/v1/tools", &greeter(), Some(&acme.admin))?;
    assert_eq!(problem(again, 409)?.0, "conflict");

    let listed = expect(get(&host, &acme.admin, "/v1/tools")?, 200)?;
    assert_eq!(names(&listed), vec!["greet"]);
    assert_eq!(listed["next_cursor"], Value::Null);
    let read = expect(get(&host, &acme.admin, "/v1/tools/greet")?, 200)?;
    assert_eq!(read, made);

    // An admin's role alone runs nothing: tools:run is granted.
    assert_eq!(
        problem(
            run(&host, &acme.admin, "greet", &json!({"name": "Ada"}))?,
            403
        )?
        .0,
        "forbidden"
    );
    grant(&host, &acme, &acme.admin_id, "tool-runner", &["tools:run"])?;
    let answer = expect(
        run(
            &host,
            &acme.admin,
            "greet",
            &json!({"name": "Ada", "times": 2}),
        )?,
        200,
    )?;
    assert_eq!(
        answer["result"],
        json!({"text": "Hello Ada!", "times": "2", "fixed": [1, true, null]})
    );
    assert_eq!(answer["is_error"], false);
    assert!(answer["latency_ms"].as_u64().is_some());
    // An argument holding a placeholder is not filled again.
    let literal = expect(
        run(
            &host,
            &acme.admin,
            "greet",
            &json!({"name": "{{times}}", "times": 1}),
        )?,
        200,
    )?;
    assert_eq!(literal["result"]["text"], "Hello {{times}}!");

    // A change keeps what it does not name; a disabled tool is not run.
    let changed = expect(
        patch(
            &host,
            &acme.admin,
            "/v1/tools/greet",
            &json!({"description": "Says hello.", "enabled": false}),
        )?,
        200,
    )?;
    assert_eq!(
        (
            changed["description"].as_str(),
            changed["enabled"].as_bool()
        ),
        (Some("Says hello."), Some(false))
    );
    assert_eq!(changed["config"], made["config"]);
    assert_eq!(
        problem(
            run(&host, &acme.admin, "greet", &json!({"name": "Ada"}))?,
            409
        )?
        .0,
        "conflict"
    );
    let bad_patch = patch(
        &host,
        &acme.admin,
        "/v1/tools/greet",
        &json!({"config": {"result": "{{nobody}}"}}),
    )?;
    assert_eq!(problem(bad_patch, 422)?.1, "/config/result");
    let renamed = patch(
        &host,
        &acme.admin,
        "/v1/tools/greet",
        &json!({"name": "other"}),
    )?;
    assert_eq!(problem(renamed, 422)?.0, "validation_failed");

    // Every change and call is in the org's audit trail.
    for action in ["tool.create", "tool.update", "tool.call"] {
        let trail = expect(
            get(
                &host,
                &acme.admin,
                &format!("/v1/orgs/{}/audit-events?action={action}", acme.id),
            )?,
            200,
        )?;
        assert!(
            !trail["items"].as_array().context("items")?.is_empty(),
            "{action}"
        );
    }

    let deleted = call(
        &host,
        "DELETE",
        "/v1/tools/greet",
        None,
        Some(&acme.admin),
        &[],
    )?;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert_eq!(
        problem(get(&host, &acme.admin, "/v1/tools/greet")?, 404)?.0,
        "not_found"
    );

    // No credentials: 401 everywhere.
    for (method, path) in [
        ("GET", "/v1/tools"),
        ("POST", "/v1/tools/greet/$call"),
        ("DELETE", "/v1/tools/greet"),
    ] {
        let body = (method == "POST").then(|| json!({}));
        let reply = call(&host, method, path, body.as_ref(), None, &[])?;
        assert_eq!(problem(reply, 401)?.0, "unauthenticated", "{method} {path}");
    }
    Ok(())
}

#[test]
fn invalid_tool_definitions_are_refused_with_a_pointer_to_each_field() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let mut bad_name = greeter();
    bad_name["name"] = json!("has space");
    let (code, pointer, field) =
        problem(post(&host, "/v1/tools", &bad_name, Some(&acme.admin))?, 422)?;
    assert_eq!(
        (code.as_str(), pointer.as_str(), field.as_str()),
        ("validation_failed", "/name", "invalid_name")
    );

    let mut not_object = greeter();
    not_object["input_schema"] = json!({"type": "string"});
    let (_, pointer, _) = problem(
        post(&host, "/v1/tools", &not_object, Some(&acme.admin))?,
        422,
    )?;
    assert_eq!(pointer, "/input_schema/type");

    let mut broken = greeter();
    broken["input_schema"] = json!({"type": "object", "properties": {"name": {"type": "text"}}});
    let (_, pointer, field) = problem(post(&host, "/v1/tools", &broken, Some(&acme.admin))?, 422)?;
    assert_eq!(
        (pointer.as_str(), field.as_str()),
        ("/input_schema", "invalid_schema")
    );

    let mut unknown = greeter();
    unknown["config"] = json!({"result": "{{age}}"});
    let (_, pointer, field) = problem(post(&host, "/v1/tools", &unknown, Some(&acme.admin))?, 422)?;
    assert_eq!(
        (pointer.as_str(), field.as_str()),
        ("/config/result", "unknown_argument")
    );

    let http = |url: &str| {
        json!({"name": "web", "kind": "http", "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}},
               "config": {"method": "GET", "url": url}})
    };
    for (url, expected) in [
        ("http://{id}.example.com/", "placeholder_in_host"),
        ("http://127.0.0.1:9/items/{id}", "unknown_argument"),
        ("http://169.254.169.254/latest/meta-data", "url_not_allowed"),
        ("ftp://127.0.0.1/x", "url_not_allowed"),
    ] {
        let (_, pointer, field) = problem(
            post(&host, "/v1/tools", &http(url), Some(&acme.admin))?,
            422,
        )?;
        assert_eq!(
            (pointer.as_str(), field.as_str()),
            ("/config/url", expected),
            "{url}"
        );
    }
    let mut slow = http("http://127.0.0.1:9/x");
    slow["config"]["timeout_ms"] = json!(30001);
    let (_, pointer, _) = problem(post(&host, "/v1/tools", &slow, Some(&acme.admin))?, 422)?;
    assert_eq!(pointer, "/config/timeout_ms");
    let mut wrong_kind = http("http://127.0.0.1:9/x");
    wrong_kind["kind"] = json!("python");
    assert_eq!(
        problem(
            post(&host, "/v1/tools", &wrong_kind, Some(&acme.admin))?,
            422
        )?
        .1,
        "/kind"
    );
    let listed = expect(get(&host, &acme.admin, "/v1/tools")?, 200)?;
    assert!(names(&listed).is_empty(), "{listed}");
    Ok(())
}

#[test]
fn private_and_unconfigured_hosts_are_refused_unless_the_operator_allows_them() -> Result<()> {
    let tool = json!({"name": "local", "kind": "http", "config": {"method": "GET", "url": "http://127.0.0.1:9/x"}});
    // The outbound rule takes loopback, but private hosts are not allowed.
    let closed = start_app_with(vec![(
        "SPIN_VARIABLE_TOOL_OUTBOUND_HOSTS".into(),
        "http://127.0.0.1:*".into(),
    )])?;
    let acme = org(&closed, "ada@acme.test", "acme")?;
    let (_, pointer, field) = problem(post(&closed, "/v1/tools", &tool, Some(&acme.admin))?, 422)?;
    assert_eq!(
        (pointer.as_str(), field.as_str()),
        ("/config/url", "url_not_allowed")
    );
    drop(closed);
    // By default HTTP tools reach nothing, public hosts included.
    let default = start_app()?;
    let acme = org(&default, "ada@acme.test", "acme")?;
    let public = json!({"name": "public", "kind": "http", "config": {"method": "GET", "url": "https://api.example.com/x"}});
    for body in [&tool, &public] {
        let (_, pointer, field) =
            problem(post(&default, "/v1/tools", body, Some(&acme.admin))?, 422)?;
        assert_eq!(
            (pointer.as_str(), field.as_str()),
            ("/config/url", "url_not_allowed")
        );
    }
    Ok(())
}

#[test]
fn members_see_and_run_only_the_tools_their_permissions_allow() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let (bob, bob_id) = join(&host, &acme.admin, &acme.id, "bob@acme.test", "member", &[])?;
    expect(
        post(&host, "/v1/tools", &greeter(), Some(&acme.admin))?,
        201,
    )?;
    let mut refunds = greeter();
    refunds["name"] = json!("refunds");
    refunds["permission"] = json!("billing:refund");
    expect(post(&host, "/v1/tools", &refunds, Some(&acme.admin))?, 201)?;

    // Without tools:run: no tools, no call, no write.
    assert!(names(&expect(get(&host, &bob, "/v1/tools")?, 200)?).is_empty());
    assert_eq!(
        problem(get(&host, &bob, "/v1/tools/greet")?, 404)?.0,
        "not_found"
    );
    assert_eq!(
        problem(run(&host, &bob, "greet", &json!({"name": "Bob"}))?, 403)?.0,
        "forbidden"
    );
    let mut mine = greeter();
    mine["name"] = json!("mine");
    assert_eq!(
        problem(post(&host, "/v1/tools", &mine, Some(&bob))?, 403)?.0,
        "forbidden"
    );
    let patched = patch(&host, &bob, "/v1/tools/greet", &json!({"enabled": false}))?;
    assert_eq!(problem(patched, 403)?.0, "forbidden");

    // With tools:run: the tools without a permission of their own.
    grant(&host, &acme, &bob_id, "tool-runner", &["tools:run"])?;
    assert_eq!(
        names(&expect(get(&host, &bob, "/v1/tools")?, 200)?),
        vec!["greet"]
    );
    expect(run(&host, &bob, "greet", &json!({"name": "Bob"}))?, 200)?;
    assert_eq!(
        problem(get(&host, &bob, "/v1/tools/refunds")?, 404)?.0,
        "not_found"
    );
    assert_eq!(
        problem(run(&host, &bob, "refunds", &json!({"name": "Bob"}))?, 404)?.0,
        "not_found"
    );
    // The admin sees every tool.
    assert_eq!(
        names(&expect(get(&host, &acme.admin, "/v1/tools")?, 200)?),
        vec!["greet", "refunds"]
    );

    // With the tool's permission too: that tool as well, page by page.
    grant(&host, &acme, &bob_id, "refunder", &["billing:refund"])?;
    let first = expect(get(&host, &bob, "/v1/tools?limit=1")?, 200)?;
    assert_eq!(names(&first), vec!["greet"]);
    let cursor = first["next_cursor"].as_str().context("next_cursor")?;
    let second = expect(
        get(&host, &bob, &format!("/v1/tools?limit=1&cursor={cursor}"))?,
        200,
    )?;
    assert_eq!(names(&second), vec!["refunds"]);
    let refunded = expect(run(&host, &bob, "refunds", &json!({"name": "Bob"}))?, 200)?;
    assert_eq!(refunded["result"]["text"], "Hello Bob!");

    // tools:write writes without being an admin.
    let (carol, carol_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "carol@acme.test",
        "member",
        &[],
    )?;
    grant(&host, &acme, &carol_id, "tool-writer", &["tools:write"])?;
    expect(post(&host, "/v1/tools", &mine, Some(&carol))?, 201)?;

    // Another org's tools are not found, whatever the other admin holds.
    let globex = org(&host, "gus@globex.test", "globex")?;
    grant(
        &host,
        &globex,
        &globex.admin_id,
        "tool-runner",
        &["tools:run", "billing:refund"],
    )?;
    assert!(names(&expect(get(&host, &globex.admin, "/v1/tools")?, 200)?).is_empty());
    assert_eq!(
        problem(get(&host, &globex.admin, "/v1/tools/greet")?, 404)?.0,
        "not_found"
    );
    assert_eq!(
        problem(
            run(&host, &globex.admin, "greet", &json!({"name": "Gus"}))?,
            404
        )?
        .0,
        "not_found"
    );
    let across = patch(
        &host,
        &globex.admin,
        "/v1/tools/greet",
        &json!({"enabled": false}),
    )?;
    assert_eq!(problem(across, 404)?.0, "not_found");
    let across = call(
        &host,
        "DELETE",
        "/v1/tools/refunds",
        None,
        Some(&globex.admin),
        &[],
    )?;
    assert_eq!(problem(across, 404)?.0, "not_found");
    assert_eq!(
        names(&expect(get(&host, &acme.admin, "/v1/tools")?, 200)?),
        vec!["greet", "mine", "refunds"]
    );
    Ok(())
}

/// What the stand-in API received, in order.
type Received = Arc<Mutex<Vec<RawRequest>>>;

/// A loopback API: `/slow` answers after 3 s, `/fail` answers 500, any
/// other path echoes what it received (path, headers, body).
fn api() -> Result<(String, Received)> {
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let addr = fake_http::serve(move |req| {
        if let Ok(mut log) = log.lock() {
            log.push(req.clone());
        }
        if req.path.starts_with("/slow") {
            std::thread::sleep(Duration::from_secs(3));
        }
        if req.path.starts_with("/fail") {
            let quoted = req.header("authorization").unwrap_or_default();
            return (
                500,
                json!({"error": "the forecast service is down", "auth": quoted}),
            );
        }
        (
            200,
            json!({"path": req.path, "method": req.method, "headers": req.headers, "body": req.json()}),
        )
    })?;
    Ok((format!("http://{addr}"), received))
}

fn http_tool(name: &str, method: &str, url: &str, headers: Value) -> Value {
    json!({
        "name": name,
        "kind": "http",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string", "minLength": 1}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city"],
            "additionalProperties": false
        },
        "config": {"method": method, "url": url, "headers": headers, "timeout_ms": 1000}
    })
}

#[test]
fn an_http_tool_sends_its_secret_header_and_no_answer_shows_the_secret() -> Result<()> {
    const SECRET: &str = "Bearer sk-weather-8d1f2c";
    let host = start()?;
    let (base, received) = api()?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    expect(
        call(
            &host,
            "PUT",
            &format!("/v1/orgs/{}/secrets/WEATHER_KEY", acme.id),
            Some(&json!({"value": SECRET})),
            Some(&acme.admin),
            &[],
        )?,
        201,
    )?;
    let headers = json!([
        {"name": "Authorization", "secret": "org/WEATHER_KEY"},
        {"name": "X-Client", "value": "gatehouse-tests"}
    ]);
    let weather = http_tool(
        "weather",
        "GET",
        &format!("{base}/weather/{{city}}"),
        headers.clone(),
    );
    // Naming a secret takes the right to read it, which an admin's role
    // alone does not give.
    let refused = post(&host, "/v1/tools", &weather, Some(&acme.admin))?;
    assert_eq!(problem(refused, 403)?.0, "forbidden");
    grant(
        &host,
        &acme,
        &acme.admin_id,
        "tool-admin",
        &["tools:run", "secrets:read"],
    )?;
    let made = post(&host, "/v1/tools", &weather, Some(&acme.admin))?;
    assert!(!made.text().contains("sk-weather"));
    let made = expect(made, 201)?;
    assert_eq!(made["config"]["headers"], headers);
    assert_eq!(
        (
            made["config"]["timeout_ms"].as_u64(),
            made["config"]["body"].as_str()
        ),
        (Some(1000), Some("none"))
    );

    // The call: the argument URL-encoded into the path, the secret in the
    // header the API received, and nowhere in Gatehouse's answer.
    let reply = run(
        &host,
        &acme.admin,
        "weather",
        &json!({"city": "São Paulo/../x"}),
    )?;
    assert!(!reply.text().contains("sk-weather"), "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let answer = expect(reply, 200)?;
    assert_eq!(answer["is_error"], false, "{answer}");
    assert_eq!(
        answer["result"]["path"],
        "/weather/S%C3%A3o%20Paulo%2F%2E%2E%2Fx"
    );
    assert_eq!(answer["result"]["headers"]["authorization"], "[redacted]");
    assert_eq!(answer["result"]["headers"]["x-client"], "gatehouse-tests");
    let sent = received.lock().map_err(|_| anyhow::anyhow!("log"))?.clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].header("authorization"), Some(SECRET));
    assert_eq!(sent[0].method, "GET");
    for path in ["/v1/tools", "/v1/tools/weather"] {
        let shown = get(&host, &acme.admin, path)?;
        assert!(
            shown.status == 200 && !shown.text().contains("sk-weather"),
            "{}",
            shown.text()
        );
    }

    // Arguments that fail the schema: 422 with a pointer to each, and no
    // request sent.
    let invalid = run(
        &host,
        &acme.admin,
        "weather",
        &json!({"city": 5, "days": 0, "extra": true}),
    )?;
    let body = expect(invalid, 422)?;
    let pointers: Vec<(&str, &str)> = body["errors"]
        .as_array()
        .context("errors")?
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap_or_default(),
                e["code"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    for expected in [
        ("/arguments/city", "type"),
        ("/arguments/days", "minimum"),
        ("/arguments", "additionalProperties"),
    ] {
        assert!(pointers.contains(&expected), "{expected:?} in {pointers:?}");
    }
    let missing = run(&host, &acme.admin, "weather", &json!({}))?;
    assert_eq!(problem(missing, 422)?.1, "/arguments/city");
    assert_eq!(
        received.lock().map_err(|_| anyhow::anyhow!("log"))?.len(),
        1
    );

    // A POST tool sends the arguments as JSON.
    expect(
        post(
            &host,
            "/v1/tools",
            &http_tool("report", "POST", &format!("{base}/report"), json!([])),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let posted = expect(
        run(
            &host,
            &acme.admin,
            "report",
            &json!({"city": "Oslo", "days": 2}),
        )?,
        200,
    )?;
    assert_eq!(posted["result"]["body"], json!({"city": "Oslo", "days": 2}));
    assert_eq!(
        posted["result"]["headers"]["content-type"],
        "application/json"
    );

    // Failures are answers with is_error, never errors of the request; a
    // failing answer quoting the secret does not show it either.
    expect(
        post(
            &host,
            "/v1/tools",
            &http_tool("failing", "GET", &format!("{base}/fail"), headers.clone()),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let failed = expect(
        run(&host, &acme.admin, "failing", &json!({"city": "Oslo"}))?,
        200,
    )?;
    assert_eq!(failed["is_error"], true);
    let message = failed["result"].as_str().context("message")?;
    assert!(
        message.contains("500") && message.contains("down"),
        "{message}"
    );
    assert!(!message.contains("sk-weather"), "{message}");
    expect(
        post(
            &host,
            "/v1/tools",
            &http_tool("slow", "GET", &format!("{base}/slow"), json!([])),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let slow = expect(
        run(&host, &acme.admin, "slow", &json!({"city": "Oslo"}))?,
        200,
    )?;
    assert_eq!(slow["is_error"], true, "{slow}");
    assert!(
        slow["result"]
            .as_str()
            .is_some_and(|m| m.contains("1000 ms")),
        "{slow}"
    );
    let unset = http_tool(
        "unset",
        "GET",
        &format!("{base}/x"),
        json!([{"name": "X-Key", "secret": "org/NOT_SET"}]),
    );
    expect(post(&host, "/v1/tools", &unset, Some(&acme.admin))?, 201)?;
    let unset = expect(
        run(&host, &acme.admin, "unset", &json!({"city": "Oslo"}))?,
        200,
    )?;
    assert_eq!(
        (unset["is_error"].as_bool(), unset["result"].as_str()),
        (Some(true), Some("the secret org/NOT_SET is not set"))
    );
    Ok(())
}
