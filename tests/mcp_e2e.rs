//! The MCP endpoint end to end: the official Python and TypeScript SDKs
//! list and call an org's tools through Gatehouse with an API key; what a
//! caller is shown follows what it may run; named servers serve only
//! their tools and only to their org; the challenge of a `401` leads to
//! the resource metadata; both protocol revisions (2026-07-28 without a
//! handshake, 2025-11-25 with one) and their errors as the specs name
//! them; each `tools/call` leaves the record a `$call` leaves.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use gatehouse_tests::app::{
    Org, call, database, expect, grant, org, post, problem, python, role_key, start_app_with,
    start_app_with_local_tools,
};
use gatehouse_tests::fake_http::{self, RawRequest};
use gatehouse_tests::{Reply, TestHost, get, root, send};
use serde_json::{Value, json};

const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";

/// An org with four tools: `greet` (static text), `weather` (a static
/// object), `billing_report` (takes `billing:tools` too) and `flaky` (an
/// HTTP tool whose endpoint answers 503).
struct Acme {
    host: TestHost,
    org: Org,
}

fn acme() -> Result<Acme> {
    let host = start_app_with_local_tools()?;
    let org = org(&host, "ada@acme.test", "acme")?;
    let down = fake_http::serve(|_| (503, json!({"error": "maintenance"})))?;
    for tool in [
        json!({"name": "greet", "description": "Greets someone by name.", "kind": "static",
               "input_schema": {"type": "object", "properties": {"name": {"type": "string", "minLength": 1}},
                                "required": ["name"], "additionalProperties": false},
               "config": {"result": "Hello {{name}}!"}}),
        json!({"name": "weather", "description": "The weather in a city.", "kind": "static",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
               "config": {"result": {"city": "{{city}}", "celsius": 21}}}),
        json!({"name": "billing_report", "description": "The month's invoices.", "kind": "static",
               "permission": "billing:tools", "config": {"result": {"invoices": 3}}}),
        json!({"name": "flaky", "description": "Calls a service that is down.", "kind": "http",
               "config": {"method": "GET", "url": format!("http://{down}/status")}}),
    ] {
        expect(post(&host, "/v1/tools", &tool, Some(&org.admin))?, 201)?;
    }
    Ok(Acme { host, org })
}

/// One JSON-RPC message to `path`, with `headers`.
fn rpc(
    host: &TestHost,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut all: Vec<(&str, &str)> = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    all.extend_from_slice(headers);
    if let Some(auth) = auth.as_deref() {
        all.push(("authorization", auth));
    }
    send("POST", &host.url(path), &all, body)
}

/// A 2026-07-28 request: the version in `_meta` and its header, the
/// method (and a call's tool) mirrored in headers.
fn modern(
    host: &TestHost,
    path: &str,
    token: &str,
    method: &str,
    mut params: Value,
) -> Result<Reply> {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-http", "version": "1"}
    });
    let name = params["name"].as_str().unwrap_or_default().to_string();
    let mut headers = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
    if method == "tools/call" {
        headers.push(("mcp-name", &name));
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    rpc(
        host,
        path,
        Some(token),
        &headers,
        body.to_string().as_bytes(),
    )
}

/// A 2025-11-25 request after the handshake: the version in its header.
fn legacy(host: &TestHost, path: &str, token: &str, method: &str, params: Value) -> Result<Reply> {
    let body = json!({"jsonrpc": "2.0", "id": "r1", "method": method, "params": params});
    rpc(
        host,
        path,
        Some(token),
        &[("mcp-protocol-version", LEGACY)],
        body.to_string().as_bytes(),
    )
}

/// The JSON body of a `status` answer, which must be JSON.
fn answered(reply: Reply, status: u16) -> Result<Value> {
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{}",
        reply.text()
    );
    assert!(
        reply.header("mcp-session-id").is_none(),
        "no session is kept"
    );
    expect(reply, status)
}

/// The deployment's public base URL: the test host sets it to its own.
fn base(host: &TestHost) -> String {
    host.url("").trim_end_matches('/').to_string()
}

fn names(result: &Value) -> Vec<String> {
    result["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn listed(host: &TestHost, path: &str, token: &str) -> Result<Vec<String>> {
    let reply = legacy(host, path, token, "tools/list", json!({}))?;
    Ok(names(&answered(reply, 200)?["result"]))
}

/// Runs tests/mcp-clients/ts_client.mjs with `input`.
fn typescript_client(input: &Value) -> Result<Value> {
    let dir = root().join("tests/mcp-clients");
    if !dir.join("node_modules/@modelcontextprotocol/sdk").exists() {
        bail!("run `npm ci` in tests/mcp-clients (scripts/test does)");
    }
    let mut child = Command::new("node")
        .arg("ts_client.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("node runs tests/mcp-clients/ts_client.mjs")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "the TypeScript SDK client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn python_client(input: &Value) -> Result<Value> {
    python(include_str!("mcp-clients/python_client.py"), input)
}

/// The calls both SDK tests make, and what each must see.
fn sdk_calls() -> Value {
    json!([
        {"name": "greet", "arguments": {"name": "Ada"}},
        {"name": "weather", "arguments": {"city": "Paris"}},
        {"name": "flaky", "arguments": {}},
        {"name": "greet", "arguments": {"name": ""}},
        {"name": "billing_report", "arguments": {}},
    ])
}

#[test]
fn the_official_python_sdk_lists_and_calls_tools_through_gatehouse_with_an_api_key() -> Result<()> {
    let acme = acme()?;
    let agent = role_key(&acme.host, &acme.org, "agent", &["tools:run"])?;
    for (mode, version) in [("auto", MODERN), ("legacy", LEGACY)] {
        let seen = python_client(&json!({
            "url": acme.host.url("/v1/mcp"), "token": agent, "mode": mode, "calls": sdk_calls()
        }))?;
        // `auto` probes server/discover and stays on the stateless revision;
        // `legacy` runs the handshake.
        assert_eq!(seen["protocol_version"], version, "{mode}: {seen}");
        assert_eq!(
            seen["tools"],
            json!(["flaky", "greet", "weather"]),
            "{mode}"
        );
        assert_eq!(seen["descriptions"]["greet"], "Greets someone by name.");
        assert_eq!(seen["schemas"]["greet"]["required"], json!(["name"]));
        let calls = &seen["calls"];
        assert_eq!(calls[0]["text"], json!(["Hello Ada!"]), "{mode}: {calls}");
        assert_eq!(calls[0]["is_error"], false);
        assert_eq!(
            calls[1]["structured"],
            json!({"city": "Paris", "celsius": 21})
        );
        assert_eq!(calls[2]["is_error"], true, "{mode}: {calls}");
        let why = calls[2]["text"][0].as_str().unwrap_or_default();
        assert!(why.contains("503"), "{why}");
        assert_eq!(calls[3]["error"]["code"], -32602, "{mode}: {calls}");
        assert_eq!(
            calls[3]["error"]["data"]["errors"][0]["pointer"],
            "/arguments/name"
        );
        // A tool it may not run is no tool at all.
        assert_eq!(calls[4]["error"]["code"], -32602);
        assert_eq!(calls[4]["error"]["message"], "Unknown tool: billing_report");
    }
    Ok(())
}

#[test]
fn the_official_typescript_sdk_lists_and_calls_tools_through_gatehouse_with_an_api_key()
-> Result<()> {
    let acme = acme()?;
    let agent = role_key(&acme.host, &acme.org, "agent", &["tools:run"])?;
    let seen = typescript_client(&json!({
        "url": acme.host.url("/v1/mcp"), "token": agent, "calls": sdk_calls()
    }))?;
    assert_eq!(seen["protocolVersion"], LEGACY, "{seen}");
    assert_eq!(seen["sessionId"], Value::Null, "no session is issued");
    assert_eq!(seen["serverInfo"]["name"], "gatehouse");
    assert!(seen["capabilities"]["tools"].is_object());
    assert_eq!(seen["tools"], json!(["flaky", "greet", "weather"]));
    assert_eq!(seen["schemas"]["weather"]["required"], json!(["city"]));
    let calls = &seen["calls"];
    assert_eq!(calls[0]["text"], json!(["Hello Ada!"]), "{calls}");
    assert_eq!(calls[0]["isError"], false);
    assert_eq!(
        calls[1]["structured"],
        json!({"city": "Paris", "celsius": 21})
    );
    assert_eq!(calls[2]["isError"], true, "{calls}");
    assert_eq!(calls[3]["error"]["code"], -32602, "{calls}");
    assert_eq!(calls[4]["error"]["code"], -32602);
    Ok(())
}

#[test]
fn callers_with_different_roles_are_shown_the_tools_each_may_run() -> Result<()> {
    let acme = acme()?;
    let (host, org) = (&acme.host, &acme.org);
    let runner = role_key(host, org, "runner", &["tools:run"])?;
    let billing = role_key(host, org, "biller", &["tools:run", "billing:tools"])?;
    let writer = role_key(host, org, "author", &["tools:write"])?;
    assert_eq!(
        listed(host, "/v1/mcp", &runner)?,
        ["flaky", "greet", "weather"]
    );
    assert_eq!(
        listed(host, "/v1/mcp", &billing)?,
        ["billing_report", "flaky", "greet", "weather"]
    );
    // Writing tools shows them on GET /v1/tools, but runs none.
    assert!(listed(host, "/v1/mcp", &writer)?.is_empty());
    let called = modern(
        host,
        "/v1/mcp",
        &billing,
        "tools/call",
        json!({"name": "billing_report", "arguments": {}}),
    )?;
    let result = answered(called, 200)?["result"].clone();
    assert_eq!(result["structuredContent"], json!({"invoices": 3}));
    assert_eq!(result["isError"], false);
    assert_eq!(result["resultType"], "complete");

    // A disabled tool is not offered.
    let off = call(
        host,
        "PATCH",
        "/v1/tools/greet",
        Some(&json!({"enabled": false})),
        Some(&org.admin),
        &[],
    )?;
    expect(off, 200)?;
    assert_eq!(listed(host, "/v1/mcp", &runner)?, ["flaky", "weather"]);
    Ok(())
}

#[test]
fn a_named_server_serves_only_its_tools_and_only_to_its_org() -> Result<()> {
    let acme = acme()?;
    let (host, org) = (&acme.host, &acme.org);
    let server = expect(
        post(
            host,
            "/v1/mcp-servers",
            &json!({"name": "support", "description": "Tools for the support desk.",
                    "tools": ["greet", "billing_report"]}),
            Some(&org.admin),
        )?,
        201,
    )?;
    assert!(
        server["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("mcps_")),
        "{server}"
    );
    assert_eq!(server["endpoint"], format!("{}/v1/mcp/support", base(host)));
    let runner = role_key(host, org, "runner", &["tools:run"])?;
    let billing = role_key(host, org, "biller", &["tools:run", "billing:tools"])?;
    assert_eq!(listed(host, "/v1/mcp/support", &runner)?, ["greet"]);
    assert_eq!(
        listed(host, "/v1/mcp/support", &billing)?,
        ["billing_report", "greet"]
    );
    // A tool of the org that the server does not serve is unknown there.
    let outside = legacy(
        host,
        "/v1/mcp/support",
        &runner,
        "tools/call",
        json!({"name": "weather", "arguments": {"city": "Oslo"}}),
    )?;
    let error = answered(outside, 200)?["error"].clone();
    assert_eq!(
        (error["code"].as_i64(), error["message"].as_str()),
        (Some(-32602), Some("Unknown tool: weather"))
    );
    let discovered = modern(
        host,
        "/v1/mcp/support",
        &runner,
        "server/discover",
        json!({}),
    )?;
    let discovered = answered(discovered, 200)?["result"].clone();
    assert_eq!(discovered["instructions"], "Tools for the support desk.");
    assert_eq!(
        discovered["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "gatehouse/support"
    );

    // Another org's server, and one nobody made, are not found before any
    // JSON-RPC is read.
    let globex = gatehouse_tests::app::org(host, "gil@globex.test", "globex")?;
    let theirs = role_key(host, &globex, "runner", &["tools:run"])?;
    for (path, token) in [
        ("/v1/mcp/support", theirs.as_str()),
        ("/v1/mcp/nothing-here", runner.as_str()),
    ] {
        let reply = rpc(
            host,
            path,
            Some(token),
            &[("mcp-protocol-version", LEGACY)],
            b"{",
        )?;
        assert_eq!(problem(reply, 404)?.0, "not_found", "{path}");
    }
    let read = call(
        host,
        "GET",
        "/v1/mcp-servers/support",
        None,
        Some(&theirs),
        &[],
    )?;
    assert_eq!(problem(read, 404)?.0, "not_found");
    Ok(())
}

#[test]
fn a_request_without_credentials_is_challenged_with_the_metadata_it_can_fetch() -> Result<()> {
    let acme = acme()?;
    let host = &acme.host;
    let base = base(host);
    for path in ["/v1/mcp", "/v1/mcp/support"] {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}});
        for token in [None, Some("gk_not_a_key")] {
            let reply = rpc(host, path, token, &[], body.to_string().as_bytes())?;
            let challenge = reply
                .header("www-authenticate")
                .context("a challenge")?
                .to_string();
            assert_eq!(problem(reply, 401)?.0, "unauthenticated");
            assert!(challenge.starts_with("Bearer "), "{challenge}");
            let metadata_url = challenge
                .split("resource_metadata=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .context("resource_metadata in the challenge")?;
            assert_eq!(
                metadata_url,
                format!("{base}/.well-known/oauth-protected-resource{path}")
            );
            let doc = expect(get(metadata_url, &[])?, 200)?;
            assert_eq!(doc["resource"], format!("{base}{path}"));
            assert_eq!(doc["authorization_servers"], json!([base]));
            assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
            assert!(doc["resource_name"].is_string());
        }
    }
    // The tokens component still serves the rest of /.well-known, and
    // names the same issuer.
    let openid = expect(
        get(&host.url("/.well-known/openid-configuration"), &[])?,
        200,
    )?;
    assert_eq!(openid["issuer"], base);
    Ok(())
}

#[test]
fn an_unsupported_protocol_version_gets_the_error_the_spec_names() -> Result<()> {
    let acme = acme()?;
    let (host, org) = (&acme.host, &acme.org);
    let agent = role_key(host, org, "agent", &["tools:run"])?;
    let unsupported = |reply: Reply, requested: &str| -> Result<()> {
        let body = answered(reply, 400)?;
        assert_eq!(body["error"]["code"], -32022, "{body}");
        assert_eq!(
            body["error"]["data"],
            json!({"supported": [MODERN, LEGACY], "requested": requested})
        );
        Ok(())
    };
    // The stateless way: the version in _meta and its header.
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {
        "_meta": {"io.modelcontextprotocol/protocolVersion": "1900-01-01",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    let reply = rpc(
        host,
        "/v1/mcp",
        Some(&agent),
        &[
            ("mcp-protocol-version", "1900-01-01"),
            ("mcp-method", "tools/list"),
        ],
        body.to_string().as_bytes(),
    )?;
    unsupported(reply, "1900-01-01")?;
    // The handshake way: the header after initialize.
    let reply = rpc(
        host,
        "/v1/mcp",
        Some(&agent),
        &[("mcp-protocol-version", "2024-10-07")],
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    )?;
    unsupported(reply, "2024-10-07")?;
    // initialize negotiates: a version not served is answered with one
    // that is.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "old", "version": "1"}}});
    let reply = rpc(
        host,
        "/v1/mcp",
        Some(&agent),
        &[],
        init.to_string().as_bytes(),
    )?;
    let result = answered(reply, 200)?["result"].clone();
    assert_eq!(result["protocolVersion"], LEGACY);
    Ok(())
}

#[test]
fn a_2026_07_28_request_is_served_without_initialize_when_its_headers_match_its_body() -> Result<()>
{
    let acme = acme()?;
    let (host, org) = (&acme.host, &acme.org);
    let agent = role_key(host, org, "agent", &["tools:run"])?;
    let discovered = answered(
        modern(host, "/v1/mcp", &agent, "server/discover", json!({}))?,
        200,
    )?;
    let result = &discovered["result"];
    assert_eq!(result["supportedVersions"], json!([MODERN, LEGACY]));
    assert!(result["capabilities"]["tools"].is_object());
    assert_eq!(result["resultType"], "complete");
    assert!(result["ttlMs"].is_u64() && result["cacheScope"] == "private");

    let list = answered(
        modern(host, "/v1/mcp", &agent, "tools/list", json!({}))?,
        200,
    )?;
    assert_eq!(names(&list["result"]), ["flaky", "greet", "weather"]);
    assert_eq!(list["result"]["cacheScope"], "private");
    let greet = answered(
        modern(
            host,
            "/v1/mcp",
            &agent,
            "tools/call",
            json!({"name": "greet", "arguments": {"name": "Grace"}}),
        )?,
        200,
    )?;
    assert_eq!(
        greet["result"]["content"],
        json!([{"type": "text", "text": "Hello Grace!"}])
    );

    // Headers that differ from the body, or are missing, are refused.
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "greet", "arguments": {"name": "Eve"},
        "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    for headers in [
        vec![
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", "weather"),
        ],
        vec![
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
        ],
        vec![
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/list"),
            ("mcp-name", "greet"),
        ],
        vec![("mcp-method", "tools/call"), ("mcp-name", "greet")],
    ] {
        let reply = rpc(
            host,
            "/v1/mcp",
            Some(&agent),
            &headers,
            body.to_string().as_bytes(),
        )?;
        let error = answered(reply, 400)?["error"].clone();
        assert_eq!(error["code"], -32020, "{headers:?}: {error}");
    }
    // The name may be sent base64-encoded.
    let encoded = rpc(
        host,
        "/v1/mcp",
        Some(&agent),
        &[
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?Z3JlZXQ=?="),
        ],
        body.to_string().as_bytes(),
    )?;
    assert_eq!(
        answered(encoded, 200)?["result"]["content"][0]["text"],
        "Hello Eve!"
    );
    // What the stateless revision removed is an unknown method, answered
    // 404; the handshake revision still has it.
    let ping = answered(modern(host, "/v1/mcp", &agent, "ping", json!({}))?, 404)?;
    assert_eq!(ping["error"]["code"], -32601);
    let ping = answered(legacy(host, "/v1/mcp", &agent, "ping", json!({}))?, 200)?;
    assert_eq!(ping["result"], json!({}));
    // No stream, no session: GET and DELETE are not served.
    for method in ["GET", "DELETE"] {
        let reply = call(host, method, "/v1/mcp", None, Some(&agent), &[])?;
        assert_eq!(reply.status, 405, "{method}");
    }
    Ok(())
}

#[test]
fn malformed_messages_and_unknown_methods_get_the_json_rpc_codes() -> Result<()> {
    let acme = acme()?;
    let (host, org) = (&acme.host, &acme.org);
    let agent = role_key(host, org, "agent", &["tools:run"])?;
    let version = [("mcp-protocol-version", LEGACY)];
    let code = |body: &[u8], status: u16| -> Result<(i64, Value)> {
        let reply = rpc(host, "/v1/mcp", Some(&agent), &version, body)?;
        let error = answered(reply, status)?;
        Ok((
            error["error"]["code"].as_i64().unwrap_or_default(),
            error["id"].clone(),
        ))
    };
    assert_eq!(code(b"{\"jsonrpc\":", 400)?, (-32700, Value::Null));
    // Batches left MCP in 2025-06-18.
    let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#;
    assert_eq!(code(batch, 400)?, (-32600, Value::Null));
    assert_eq!(
        code(br#"{"jsonrpc":"2.0","id":4,"params":{}}"#, 400)?,
        (-32600, json!(4))
    );
    assert_eq!(
        code(
            br#"{"jsonrpc":"2.0","id":5,"method":"resources/list"}"#,
            200
        )?,
        (-32601, json!(5))
    );
    // Notifications are accepted without a body.
    for note in [
        &br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#[..],
        br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#,
    ] {
        let reply = rpc(host, "/v1/mcp", Some(&agent), &version, note)?;
        assert_eq!(
            (reply.status, reply.body.len()),
            (202, 0),
            "{}",
            reply.text()
        );
    }
    Ok(())
}

#[test]
fn a_browser_origin_other_than_the_deployments_is_refused() -> Result<()> {
    let acme = acme()?;
    let (host, org) = (&acme.host, &acme.org);
    let agent = role_key(host, org, "agent", &["tools:run"])?;
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let with = |origin: &str| {
        rpc(
            host,
            "/v1/mcp",
            Some(&agent),
            &[("mcp-protocol-version", LEGACY), ("origin", origin)],
            body,
        )
    };
    assert_eq!(
        problem(with("https://attacker.example")?, 403)?.0,
        "forbidden"
    );
    assert_eq!(problem(with("null")?, 403)?.0, "forbidden");
    let own = answered(with(&base(host))?, 200)?;
    assert_eq!(names(&own["result"]).len(), 3);
    Ok(())
}

#[test]
fn mcp_server_writes_are_checked_and_refusals_are_problem_documents() -> Result<()> {
    let acme = acme()?;
    let (host, org) = (&acme.host, &acme.org);
    let bad = post(
        host,
        "/v1/mcp-servers",
        &json!({"name": "no spaces", "tools": ["greet", "ghost", "greet"]}),
        Some(&org.admin),
    )?;
    let body = expect(bad, 422)?;
    assert_eq!(body["code"], "validation_failed");
    let found: Vec<(String, String)> = body["errors"]
        .as_array()
        .context("errors")?
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap_or_default().to_string(),
                e["code"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected = [
        ("/name", "invalid_name"),
        ("/tools/1", "unknown_tool"),
        ("/tools/2", "duplicate"),
    ];
    assert_eq!(found, expected.map(|(p, c)| (p.to_string(), c.to_string())));
    let wrong_type = post(
        host,
        "/v1/mcp-servers",
        &json!({"name": "ops", "tools": "greet"}),
        Some(&org.admin),
    )?;
    assert_eq!(problem(wrong_type, 422)?.1, "/tools");

    let made = json!({"name": "ops", "tools": ["greet", "billing_report"]});
    expect(post(host, "/v1/mcp-servers", &made, Some(&org.admin))?, 201)?;
    let again = post(host, "/v1/mcp-servers", &made, Some(&org.admin))?;
    assert_eq!(problem(again, 409)?.0, "conflict");

    // Runners read servers, showing the tools they may see; only writers
    // change them.
    let (runner, runner_id) =
        gatehouse_tests::app::join(host, &org.admin, &org.id, "rex@acme.test", "member", &[])?;
    grant(host, org, &runner_id, "runner", &["tools:run"])?;
    let read = expect(
        call(host, "GET", "/v1/mcp-servers/ops", None, Some(&runner), &[])?,
        200,
    )?;
    assert_eq!(read["tools"], json!(["greet"]));
    let page = expect(
        call(host, "GET", "/v1/mcp-servers", None, Some(&runner), &[])?,
        200,
    )?;
    assert_eq!(page["items"][0]["name"], "ops");
    let refused = call(
        host,
        "PATCH",
        "/v1/mcp-servers/ops",
        Some(&json!({"tools": []})),
        Some(&runner),
        &[],
    )?;
    assert_eq!(problem(refused, 403)?.0, "forbidden");

    let changed = expect(
        call(
            host,
            "PATCH",
            "/v1/mcp-servers/ops",
            Some(&json!({"description": "Operations.", "tools": ["weather"]})),
            Some(&org.admin),
            &[],
        )?,
        200,
    )?;
    assert_eq!(
        (changed["description"].as_str(), changed["tools"].clone()),
        (Some("Operations."), json!(["weather"]))
    );
    let unknown_field = call(
        host,
        "PATCH",
        "/v1/mcp-servers/ops",
        Some(&json!({"name": "renamed"})),
        Some(&org.admin),
        &[],
    )?;
    assert_eq!(problem(unknown_field, 422)?.0, "validation_failed");
    let gone = call(
        host,
        "DELETE",
        "/v1/mcp-servers/ops",
        None,
        Some(&org.admin),
        &[],
    )?;
    assert_eq!(gone.status, 204);
    let missing = call(
        host,
        "DELETE",
        "/v1/mcp-servers/ops",
        None,
        Some(&org.admin),
        &[],
    )?;
    assert_eq!(problem(missing, 404)?.0, "not_found");
    Ok(())
}

#[test]
fn each_tools_call_leaves_the_record_a_call_route_leaves() -> Result<()> {
    let acme = acme()?;
    let (host, org) = (&acme.host, &acme.org);
    let agent = role_key(host, org, "agent", &["tools:run"])?;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "greet", "arguments": {"name": "Ada"}}});
    let reply = rpc(
        host,
        "/v1/mcp",
        Some(&agent),
        &[
            ("mcp-protocol-version", LEGACY),
            ("x-request-id", "mcp-call-1"),
        ],
        body.to_string().as_bytes(),
    )?;
    answered(reply, 200)?;
    let invalid = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                         "params": {"name": "greet", "arguments": {}}});
    let reply = rpc(
        host,
        "/v1/mcp",
        Some(&agent),
        &[
            ("mcp-protocol-version", LEGACY),
            ("x-request-id", "mcp-call-2"),
        ],
        invalid.to_string().as_bytes(),
    )?;
    answered(reply, 200)?;
    // Listing is a read: no record.
    let reply = rpc(
        host,
        "/v1/mcp",
        Some(&agent),
        &[
            ("mcp-protocol-version", LEGACY),
            ("x-request-id", "mcp-list-1"),
        ],
        br#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
    )?;
    answered(reply, 200)?;

    let db = database(host)?;
    let record = |request_id: &str| -> Result<Option<Vec<Value>>> {
        let mut statement = db.prepare(
            "SELECT action, resource_type, resource_id, outcome, actor_type, credential,
                    method, path, org_id, changed_fields, digest
             FROM audit_events WHERE request_id = ?1",
        )?;
        let mut rows = statement.query([request_id])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        let text = |i: usize| -> Result<Value> {
            Ok(row
                .get::<_, Option<String>>(i)?
                .map_or(Value::Null, Value::String))
        };
        Ok(Some(vec![
            text(0)?,
            text(1)?,
            text(2)?,
            json!(row.get::<_, Option<i64>>(3)?),
            text(4)?,
            text(5)?,
            text(6)?,
            text(7)?,
            text(8)?,
            text(9)?,
            json!(row.get::<_, Option<String>>(10)?.is_some()),
        ]))
    };
    let done = record("mcp-call-1")?.context("the call's record")?;
    assert_eq!(
        done,
        vec![
            json!("tool.call"),
            json!("tool"),
            json!("greet"),
            json!(200),
            json!("api_key"),
            json!("api_key"),
            json!("POST"),
            json!("/v1/mcp"),
            json!(org.id),
            json!("[\"arguments\"]"),
            json!(true),
        ]
    );
    let refused = record("mcp-call-2")?.context("the refused call's record")?;
    assert_eq!(
        (&refused[0], &refused[3]),
        (&json!("tool.call"), &json!(422))
    );
    assert!(record("mcp-list-1")?.is_none());
    Ok(())
}

/// A remote MCP server (tests/mcp-clients/remote_server.py, the Python
/// SDK's server) on a free port, stopped when dropped.
struct RemoteServer {
    child: std::process::Child,
    url: String,
}

impl RemoteServer {
    fn start(token: &str) -> Result<RemoteServer> {
        let interpreter = std::env::var_os("GATEHOUSE_PYTHON")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| gatehouse_tests::target_dir().join("py/bin/python"));
        let port = gatehouse_tests::free_port()?;
        let child = Command::new(&interpreter)
            .arg(root().join("tests/mcp-clients/remote_server.py"))
            .args([port.to_string(), token.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("{} runs the remote MCP server", interpreter.display()))?;
        let server = RemoteServer {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                bail!("the remote MCP server did not start");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Ok(server)
    }
}

impl Drop for RemoteServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_mounted_remote_mcp_server_is_listed_and_called_through_gatehouse() -> Result<()> {
    const TOKEN: &str = "remote-mcp-token-5e1f";
    let remote = RemoteServer::start(TOKEN)?;
    let acme = acme()?;
    let (host, org) = (&acme.host, &acme.org);
    expect(
        call(
            host,
            "PUT",
            &format!("/v1/orgs/{}/secrets/REMOTE_MCP", org.id),
            Some(&json!({"value": format!("Bearer {TOKEN}")})),
            Some(&org.admin),
            &[],
        )?,
        201,
    )?;
    let mount = json!({"name": "remote", "description": "A remote weather service.",
        "remote": {"url": remote.url, "timeout_ms": 10000,
                   "headers": [{"name": "Authorization", "secret": "org/REMOTE_MCP"}]}});
    // Naming a secret takes the right to read it, as for HTTP tools.
    let refused = post(host, "/v1/mcp-servers", &mount, Some(&org.admin))?;
    assert_eq!(problem(refused, 403)?.0, "forbidden");
    grant(host, org, &org.admin_id, "mounter", &["secrets:read"])?;
    // A URL the deployment does not allow is refused as for HTTP tools.
    let mut elsewhere = mount.clone();
    elsewhere["remote"]["url"] = json!("http://169.254.169.254/mcp");
    let (code, pointer, _) = problem(
        post(host, "/v1/mcp-servers", &elsewhere, Some(&org.admin))?,
        422,
    )?;
    assert_eq!(
        (code.as_str(), pointer.as_str()),
        ("validation_failed", "/remote/url")
    );
    let made = expect(
        post(host, "/v1/mcp-servers", &mount, Some(&org.admin))?,
        201,
    )?;
    assert_eq!(made["remote"]["headers"][0]["secret"], "org/REMOTE_MCP");
    assert_eq!(made["remote_tools"], Value::Null);

    let refreshed = post(
        host,
        "/v1/mcp-servers/remote/$refresh",
        &json!({}),
        Some(&org.admin),
    )?;
    assert!(!refreshed.text().contains(TOKEN));
    let refreshed = expect(refreshed, 200)?;
    let kept: Vec<&str> = refreshed["remote_tools"]
        .as_array()
        .context("remote_tools")?
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(kept, ["remote__fail", "remote__forecast"]);
    assert_eq!(refreshed["remote_tools"][1]["remote_name"], "forecast");
    assert!(refreshed["refreshed_at"].is_i64());

    let agent = role_key(host, org, "agent", &["tools:run"])?;
    let calls = json!([
        {"name": "remote__forecast", "arguments": {"city": "Oslo", "days": 2}},
        {"name": "remote__fail", "arguments": {"reason": "boom"}},
        {"name": "remote__forecast", "arguments": {}},
    ]);
    let seen = python_client(&json!({
        "url": host.url("/v1/mcp"), "token": agent, "mode": "auto", "calls": calls
    }))?;
    assert_eq!(
        seen["tools"],
        json!([
            "flaky",
            "greet",
            "remote__fail",
            "remote__forecast",
            "weather"
        ]),
        "{seen}"
    );
    assert_eq!(
        seen["descriptions"]["remote__forecast"],
        "The forecast for a city."
    );
    let answers = &seen["calls"];
    assert_eq!(answers[0]["is_error"], false, "{answers}");
    let forecast = answers[0]["text"][0].as_str().unwrap_or_default();
    assert!(
        forecast.contains("Oslo") && forecast.contains("clear"),
        "{forecast}"
    );
    assert_eq!(answers[1]["is_error"], true, "{answers}");
    assert_eq!(answers[2]["error"]["code"], -32602, "{answers}");
    assert!(!seen.to_string().contains(TOKEN));

    // The mount's own endpoint serves only its tools, to the handshake
    // revision's clients too.
    let own = python_client(&json!({
        "url": host.url("/v1/mcp/remote"), "token": agent, "mode": "legacy",
        "calls": [{"name": "remote__forecast", "arguments": {"city": "Rome"}}]
    }))?;
    assert_eq!(
        own["tools"],
        json!(["remote__fail", "remote__forecast"]),
        "{own}"
    );
    let rome = own["calls"][0]["text"][0].as_str().unwrap_or_default();
    assert!(rome.contains("Rome"), "{own}");

    // The TypeScript SDK calls it through Gatehouse too.
    let ts = typescript_client(&json!({
        "url": host.url("/v1/mcp"), "token": agent,
        "calls": [{"name": "remote__forecast", "arguments": {"city": "Lima"}}]
    }))?;
    assert_eq!(ts["calls"][0]["isError"], false, "{ts}");
    let lima = ts["calls"][0]["text"][0].as_str().unwrap_or_default();
    assert!(lima.contains("Lima"), "{ts}");

    // A mount's permission is taken besides tools:run.
    let gated = call(
        host,
        "PATCH",
        "/v1/mcp-servers/remote",
        Some(&json!({"permission": "weather:tools"})),
        Some(&org.admin),
        &[],
    )?;
    expect(gated, 200)?;
    assert_eq!(
        listed(host, "/v1/mcp", &agent)?,
        ["flaky", "greet", "weather"]
    );

    // Each forwarded call leaves the record of a tool call: the Python
    // and the TypeScript client's on /v1/mcp.
    let db = database(host)?;
    let recorded: i64 = db.query_row(
        "SELECT count(*) FROM audit_events WHERE action = 'tool.call' AND resource_id = 'remote__forecast'
           AND path = '/v1/mcp' AND outcome = 200",
        [],
        |row| row.get(0),
    )?;
    assert_eq!(recorded, 2);

    // A remote that refuses the credential cannot be listed: 502, and
    // the tools listed before are kept.
    expect(
        call(
            host,
            "PUT",
            &format!("/v1/orgs/{}/secrets/REMOTE_MCP", org.id),
            Some(&json!({"value": "Bearer wrong"})),
            Some(&org.admin),
            &[],
        )?,
        200,
    )?;
    let failed = post(
        host,
        "/v1/mcp-servers/remote/$refresh",
        &json!({}),
        Some(&org.admin),
    )?;
    assert_eq!(problem(failed, 502)?.0, "upstream_failed");
    let still = expect(
        call(
            host,
            "GET",
            "/v1/mcp-servers/remote",
            None,
            Some(&org.admin),
            &[],
        )?,
        200,
    )?;
    assert_eq!(still["remote_tools"].as_array().map(Vec::len), Some(2));
    Ok(())
}

/// A remote of the handshake revision only: it refuses a 2026-07-28
/// request as such servers do (a 400 that is no JSON-RPC error of that
/// revision), and answers `initialize`, then `tools/list` and
/// `tools/call` carrying the version it negotiated. Every request is
/// logged.
fn legacy_remote() -> Result<(String, Arc<Mutex<Vec<RawRequest>>>)> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let addr = fake_http::serve(move |req| {
        if let Ok(mut seen) = seen.lock() {
            seen.push(req.clone());
        }
        let body = req.json();
        let id = body["id"].clone();
        if req.header("mcp-protocol-version") == Some(MODERN) {
            return (400, json!({"error": "Bad Request: Missing session ID"}));
        }
        let method = body["method"].as_str().unwrap_or_default();
        let negotiated = req.header("mcp-protocol-version") == Some("2025-06-18");
        let result = match method {
            "initialize" => json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                                   "serverInfo": {"name": "old-remote", "version": "0.1"}}),
            "notifications/initialized" => return (202, json!({})),
            "tools/list" if negotiated => json!({"tools": [
                {"name": "echo", "description": "Says it back.",
                 "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}]}),
            "tools/call" if negotiated => json!({"content": [{"type": "text",
                "text": format!("echo: {}", body["params"]["arguments"]["text"].as_str().unwrap_or_default())}]}),
            _ => {
                return (
                    400,
                    json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32600, "message": "not initialized"}}),
                );
            }
        };
        (200, json!({"jsonrpc": "2.0", "id": id, "result": result}))
    })?;
    Ok((format!("http://{addr}/mcp"), log))
}

#[test]
fn a_remote_of_the_handshake_revision_is_mounted_through_initialize() -> Result<()> {
    let (url, log) = legacy_remote()?;
    let acme = acme()?;
    let (host, org) = (&acme.host, &acme.org);
    let mount = json!({"name": "old", "remote": {"url": url, "headers": [{"name": "X-Tenant", "value": "acme"}]}});
    expect(
        post(host, "/v1/mcp-servers", &mount, Some(&org.admin))?,
        201,
    )?;
    let refreshed = expect(
        post(
            host,
            "/v1/mcp-servers/old/$refresh",
            &json!({}),
            Some(&org.admin),
        )?,
        200,
    )?;
    assert_eq!(
        refreshed["remote_tools"][0]["name"], "old__echo",
        "{refreshed}"
    );
    let agent = role_key(host, org, "agent", &["tools:run"])?;
    let called = modern(
        host,
        "/v1/mcp/old",
        &agent,
        "tools/call",
        json!({"name": "old__echo", "arguments": {"text": "hi"}}),
    )?;
    let result = answered(called, 200)?["result"].clone();
    assert_eq!(result["content"][0]["text"], "echo: hi", "{result}");
    assert_eq!(result["isError"], false);
    // Each exchange: the modern attempt refused, then the handshake, the
    // request with the negotiated version, and the plain header sent.
    let methods: Vec<String> = log
        .lock()
        .map_err(|_| anyhow::anyhow!("log"))?
        .iter()
        .map(|r| {
            let version = r.header("mcp-protocol-version").unwrap_or("-").to_string();
            assert_eq!(r.header("x-tenant"), Some("acme"));
            format!(
                "{} {version}",
                r.json()["method"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let exchange = [
        format!("tools/list {MODERN}"),
        "initialize -".into(),
        "notifications/initialized 2025-06-18".into(),
        "tools/list 2025-06-18".into(),
        format!("tools/call {MODERN}"),
        "initialize -".into(),
        "notifications/initialized 2025-06-18".into(),
        "tools/call 2025-06-18".into(),
    ];
    assert_eq!(methods, exchange);
    Ok(())
}

#[test]
fn an_mcp_call_counts_on_the_tool_meter_and_a_used_up_quota_is_a_tool_error() -> Result<()> {
    let host = start_app_with(vec![
        (
            "SPIN_VARIABLE_LLM_OUTBOUND_HOSTS".into(),
            "http://127.0.0.1:*".into(),
        ),
        (
            "SPIN_VARIABLE_LLM_ALLOW_PRIVATE_HOSTS".into(),
            "true".into(),
        ),
    ])?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    grant(
        &host,
        &acme,
        &acme.admin_id,
        "runner",
        &["tools:run", "secrets:read"],
    )?;
    let secret = call(
        &host,
        "PUT",
        &format!("/v1/orgs/{}/secrets/OPENAI_API_KEY", acme.id),
        Some(&json!({"value": "sk-unused"})),
        Some(&acme.admin),
        &[],
    )?;
    expect(secret, 201)?;
    let meter = json!({"key": "tool-calls", "event_type": "tool.call", "aggregation": "count"});
    expect(post(&host, "/v1/meters", &meter, Some(&acme.admin))?, 201)?;
    let settings = json!({"base_url": "http://127.0.0.1:9/v1", "model": "gpt-4o-mini",
                          "api_key_secret": "org/OPENAI_API_KEY", "tool_meter": "tool-calls"});
    let put = call(
        &host,
        "PUT",
        "/v1/tool-settings",
        Some(&settings),
        Some(&acme.admin),
        &[],
    )?;
    expect(put, 200)?;
    let greet = json!({"name": "greet", "kind": "static",
                       "input_schema": {"type": "object", "properties": {"name": {"type": "string"}}},
                       "config": {"result": "Hello {{name}}!"}});
    expect(post(&host, "/v1/tools", &greet, Some(&acme.admin))?, 201)?;
    let quota = json!({"entity": "org", "meter": "tool-calls", "limit": 1, "period": "day"});
    expect(post(&host, "/v1/quotas", &quota, Some(&acme.admin))?, 201)?;

    let greet_ada = |request_id: &str| {
        rpc(
            &host,
            "/v1/mcp",
            Some(&acme.admin),
            &[("mcp-protocol-version", LEGACY), ("x-request-id", request_id)],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet","arguments":{"name":"Ada"}}}"#,
        )
    };
    let first = answered(greet_ada("metered-1")?, 200)?;
    assert_eq!(
        first["result"]["content"][0]["text"], "Hello Ada!",
        "{first}"
    );
    let second = answered(greet_ada("metered-2")?, 200)?;
    assert_eq!(second["result"]["isError"], true, "{second}");
    let why = second["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("quota"), "{why}");
    let db = database(&host)?;
    let outcome: i64 = db.query_row(
        "SELECT outcome FROM audit_events WHERE request_id = 'metered-2' AND action = 'tool.call'",
        [],
        |row| row.get(0),
    )?;
    assert_eq!(outcome, 429);
    Ok(())
}

#[test]
fn a_server_guarded_by_a_permission_is_not_found_by_callers_without_it() -> Result<()> {
    let acme = acme()?;
    let (host, org) = (&acme.host, &acme.org);
    let guarded = json!({"name": "ops", "tools": ["greet"], "permission": "ops:tools"});
    expect(
        post(host, "/v1/mcp-servers", &guarded, Some(&org.admin))?,
        201,
    )?;
    let runner = role_key(host, org, "runner", &["tools:run"])?;
    let operator = role_key(host, org, "operator", &["tools:run", "ops:tools"])?;
    // Neither the listing, the server, nor its endpoint shows it to the
    // runner; the operator uses it.
    let servers = expect(
        call(host, "GET", "/v1/mcp-servers", None, Some(&runner), &[])?,
        200,
    )?;
    assert_eq!(servers["items"], json!([]), "{servers}");
    let read = call(host, "GET", "/v1/mcp-servers/ops", None, Some(&runner), &[])?;
    assert_eq!(problem(read, 404)?.0, "not_found");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                      "params": {"protocolVersion": LEGACY, "capabilities": {},
                                 "clientInfo": {"name": "t", "version": "1"}}});
    let refused = rpc(
        host,
        "/v1/mcp/ops",
        Some(&runner),
        &[],
        init.to_string().as_bytes(),
    )?;
    assert_eq!(problem(refused, 404)?.0, "not_found");
    assert_eq!(listed(host, "/v1/mcp/ops", &operator)?, ["greet"]);
    let shown = expect(
        call(host, "GET", "/v1/mcp-servers", None, Some(&operator), &[])?,
        200,
    )?;
    assert_eq!(shown["items"][0]["name"], "ops");
    Ok(())
}

#[test]
fn names_that_would_make_a_mounted_tools_name_ambiguous_are_refused() -> Result<()> {
    let acme = acme()?;
    let (host, org) = (&acme.host, &acme.org);
    // `__` joins a mount's name to its tools': a tool of one's own may not
    // hold it, nor may a server's name end in `_`.
    let tool = json!({"name": "weather__forecast", "description": "x", "kind": "static",
                      "config": {"result": "sunny"}});
    let (code, pointer, field) = problem(post(host, "/v1/tools", &tool, Some(&org.admin))?, 422)?;
    assert_eq!(
        (code.as_str(), pointer.as_str(), field.as_str()),
        ("validation_failed", "/name", "invalid_name")
    );
    for name in ["ops_", "a__b"] {
        let server = json!({"name": name, "tools": ["greet"]});
        let (_, pointer, field) = problem(
            post(host, "/v1/mcp-servers", &server, Some(&org.admin))?,
            422,
        )?;
        assert_eq!(
            (pointer.as_str(), field.as_str()),
            ("/name", "invalid_name"),
            "{name}"
        );
    }
    Ok(())
}

#[test]
fn mcp_server_routes_refuse_missing_and_invalid_credentials() -> Result<()> {
    let acme = acme()?;
    let host = &acme.host;
    let body = json!({"name": "ops", "tools": ["greet"]});
    for (method, path) in [
        ("GET", "/v1/mcp-servers"),
        ("POST", "/v1/mcp-servers"),
        ("GET", "/v1/mcp-servers/ops"),
        ("PATCH", "/v1/mcp-servers/ops"),
        ("DELETE", "/v1/mcp-servers/ops"),
        ("POST", "/v1/mcp-servers/ops/$refresh"),
    ] {
        let sent = matches!(method, "POST" | "PATCH").then_some(&body);
        for token in [None, Some("gk_not_a_key")] {
            let reply = call(host, method, path, sent, token, &[])?;
            assert_eq!(problem(reply, 401)?.0, "unauthenticated", "{method} {path}");
        }
    }
    Ok(())
}
