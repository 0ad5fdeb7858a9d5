//! The local host behaves as Spin does: each test runs the probe component
//! (tests/components/probe) through the host over real TCP and checks one
//! point of Spin's semantics, including every denial path.

use anyhow::{Result, ensure};
use gatehouse_host::instances::{InstanceReuse, Spread};
use gatehouse_tests::{
    HostConfig, RedisServer, TempDir, TestHost, get, host_binary, root, send, static_server, wasm,
};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn probe_app() -> PathBuf {
    root().join("tests/conformance/probe-app")
}

fn start_probe_app(runtime_config: Option<PathBuf>) -> Result<TestHost> {
    start_probe_app_with(runtime_config, &[])
}

/// The probe app with more `SPIN_VARIABLE_*` values.
fn start_probe_app_with(runtime_config: Option<PathBuf>, env: &[(&str, &str)]) -> Result<TestHost> {
    wasm("probe")?;
    let mut config = HostConfig::new(probe_app().join("spin.toml"));
    config.migrations = Some(root().join("infra/migrations"));
    config.runtime_config =
        Some(runtime_config.unwrap_or_else(|| probe_app().join("runtime-config.toml")));
    config.env = vec![
        ("SPIN_VARIABLE_API_TOKEN".into(), "t0ken".into()),
        ("SPIN_VARIABLE_GREETING".into(), "hej".into()),
    ];
    config
        .env
        .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    TestHost::start(config)
}

fn json_get(host: &TestHost, path: &str) -> Result<Value> {
    let reply = get(&host.url(path), &[])?;
    ensure!(
        reply.status == 200,
        "{path}: status {} body {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// The WIT error a probe route reported, as text ("" when none).
fn wit_error(out: &Value) -> &str {
    out["error"].as_str().unwrap_or_default()
}

/// The JSON body an internal call answered the probe with.
fn inner_body(out: &Value) -> Result<Value> {
    Ok(serde_json::from_str(
        out["body"].as_str().unwrap_or_default(),
    )?)
}

fn header(echo: &Value, name: &str) -> String {
    echo["headers"][name]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn exact_route_wins_over_wildcards() -> Result<()> {
    let host = start_probe_app(None)?;
    let echo = json_get(&host, "/probe/items/42/echo")?;
    assert_eq!(header(&echo, "spin-matched-route"), "/probe/items/:id/echo");
    assert_eq!(header(&echo, "spin-path-match-id"), "42");
    Ok(())
}

#[test]
fn longest_wildcard_prefix_wins_and_catch_all_takes_the_rest() -> Result<()> {
    let host = start_probe_app(None)?;
    let echo = json_get(&host, "/probe/a/b/echo")?;
    assert_eq!(header(&echo, "spin-matched-route"), "/probe/...");
    assert_eq!(header(&echo, "spin-path-info"), "/a/b/echo");
    assert_eq!(header(&echo, "spin-component-route"), "/probe");
    let echo = json_get(&host, "/elsewhere/echo")?;
    assert_eq!(header(&echo, "spin-matched-route"), "/...");
    Ok(())
}

#[test]
fn spin_request_headers_describe_the_request() -> Result<()> {
    let host = start_probe_app(None)?;
    let echo = json_get(&host, "/probe/echo?x=1")?;
    assert_eq!(header(&echo, "spin-full-url"), host.url("/probe/echo?x=1"));
    assert_eq!(header(&echo, "spin-raw-component-route"), "/probe/...");
    assert_eq!(header(&echo, "spin-base-path"), "/");
    assert!(
        header(&echo, "spin-client-addr").starts_with("127.0.0.1:"),
        "{echo}"
    );
    Ok(())
}

#[test]
fn clients_cannot_spoof_spin_headers() -> Result<()> {
    let host = start_probe_app(None)?;
    let reply = get(
        &host.url("/probe/items/7/echo"),
        &[
            ("spin-client-addr", "10.0.0.1:1"),
            ("spin-path-match-id", "999"),
            ("spin-path-match-admin", "true"),
        ],
    )?;
    let echo = reply.json()?;
    assert!(
        header(&echo, "spin-client-addr").starts_with("127.0.0.1:"),
        "{echo}"
    );
    assert_eq!(header(&echo, "spin-path-match-id"), "7");
    assert!(
        echo["headers"].get("spin-path-match-admin").is_none(),
        "{echo}"
    );
    Ok(())
}

#[test]
fn request_body_reaches_the_guest() -> Result<()> {
    let host = start_probe_app(None)?;
    let body = vec![b'x'; 300_000];
    let reply = send("POST", &host.url("/probe/echo"), &[], &body)?;
    assert_eq!(reply.json()?["body_len"], 300_000);
    Ok(())
}

/// The probe app with its instances living as `reuse` says.
fn start_probe_app_reusing(reuse: InstanceReuse) -> Result<TestHost> {
    wasm("probe")?;
    let mut config = HostConfig::new(probe_app().join("spin.toml"));
    config.runtime_config = Some(probe_app().join("runtime-config.toml"));
    config.env = vec![("SPIN_VARIABLE_API_TOKEN".into(), "t0ken".into())];
    config.instances = reuse;
    TestHost::start(config)
}

#[test]
fn with_reuse_off_every_request_gets_a_fresh_instance() -> Result<()> {
    let host = start_probe_app_reusing(InstanceReuse::OFF)?;
    for _ in 0..3 {
        assert_eq!(json_get(&host, "/probe/counter")?["calls"], 1);
    }
    Ok(())
}

/// The probe counts its calls in a global: the count is how many requests
/// its instance has served.
#[test]
fn an_instance_serves_at_most_its_reuse_count_and_then_a_fresh_one_takes_over() -> Result<()> {
    let host = start_probe_app_reusing(InstanceReuse {
        max_reuse: Spread::fixed(3),
        max_concurrent: Spread::fixed(1),
        idle_timeout: Spread::fixed(Duration::from_secs(30)),
    })?;
    let mut seen = Vec::new();
    for _ in 0..9 {
        seen.push(
            json_get(&host, "/probe/counter")?["calls"]
                .as_u64()
                .unwrap_or(0),
        );
    }
    ensure!(seen.iter().all(|n| (1..=3).contains(n)), "{seen:?}");
    ensure!(
        seen.contains(&3),
        "no instance served three requests: {seen:?}"
    );
    Ok(())
}

#[test]
fn an_idle_instance_is_dropped_after_the_idle_timeout() -> Result<()> {
    let host = start_probe_app_reusing(InstanceReuse {
        max_reuse: Spread::fixed(100),
        max_concurrent: Spread::fixed(1),
        idle_timeout: Spread::fixed(Duration::from_millis(100)),
    })?;
    assert_eq!(json_get(&host, "/probe/counter")?["calls"], 1);
    std::thread::sleep(Duration::from_millis(600));
    // The trapped instance is gone: a fresh one answers.
    assert_eq!(json_get(&host, "/probe/counter")?["calls"], 1);
    Ok(())
}

#[test]
fn unmatched_path_is_a_404_problem_document() -> Result<()> {
    let manifest = TempDir::new("only-probe")?;
    std::fs::write(
        manifest.path().join("spin.toml"),
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/only\"\ncomponent = \"probe\"\n[component.probe]\nsource = {:?}\n",
            wasm("probe")?
        ),
    )?;
    let host = TestHost::start(HostConfig::new(manifest.path().join("spin.toml")))?;
    let reply = get(&host.url("/nothing/here"), &[])?;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.json()?["code"], "not_found");
    Ok(())
}

#[test]
fn a_trap_answers_500_and_the_host_keeps_serving() -> Result<()> {
    let host = start_probe_app(None)?;
    let reply = get(&host.url("/probe/trap"), &[])?;
    assert_eq!(reply.status, 500);
    let problem = reply.json()?;
    assert_eq!(problem["code"], "internal");
    assert!(
        !problem.to_string().contains("unreachable"),
        "trap text leaked: {problem}"
    );
    assert_eq!(json_get(&host, "/probe/counter")?["calls"], 1);
    Ok(())
}

#[test]
fn private_component_has_no_route_but_answers_internal_calls() -> Result<()> {
    let host = start_probe_app(None)?;
    // No public route reaches `hidden`: the catch-all answers instead.
    let echo = json_get(&host, "/hidden/echo")?;
    assert_eq!(header(&echo, "spin-matched-route"), "/...");
    let out = json_get(
        &host,
        "/probe/outbound?url=http://hidden.spin.internal/x/echo",
    )?;
    assert_eq!(out["status"], 200, "{out}");
    let inner = inner_body(&out)?;
    assert_eq!(header(&inner, "spin-path-info"), "/x/echo");
    Ok(())
}

#[test]
fn outbound_request_to_a_host_not_allowed_is_denied() -> Result<()> {
    let host = start_probe_app(None)?;
    let out = json_get(&host, "/probe/outbound?url=http://example.com/")?;
    assert!(wit_error(&out).contains("HttpRequestDenied"), "{out}");
    // `fallback` allows no hosts at all, not even internal ones.
    let out = json_get(
        &host,
        "/elsewhere/outbound?url=http://hidden.spin.internal/echo",
    )?;
    assert!(wit_error(&out).contains("HttpRequestDenied"), "{out}");
    Ok(())
}

#[test]
fn outbound_request_to_an_allowed_host_goes_through() -> Result<()> {
    let host = start_probe_app(None)?;
    let addr = static_server("from upstream")?;
    let out = json_get(
        &host,
        &format!("/probe/outbound?url=http://{addr}/anything"),
    )?;
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["body"], "from upstream");
    Ok(())
}

#[test]
fn a_templated_outbound_host_is_rendered_from_app_variables() -> Result<()> {
    let upstream = static_server("from upstream")?;
    let elsewhere = static_server("from elsewhere")?;
    let host = start_probe_app_with(
        None,
        &[("SPIN_VARIABLE_UPSTREAM", &format!("http://{upstream}"))],
    )?;
    let out = json_get(
        &host,
        &format!("/templated/outbound?url=http://{upstream}/anything"),
    )?;
    assert_eq!(out["body"], "from upstream", "{out}");
    // Only the rendered host: another port on the same address is denied.
    let out = json_get(
        &host,
        &format!("/templated/outbound?url=http://{elsewhere}/"),
    )?;
    assert!(wit_error(&out).contains("HttpRequestDenied"), "{out}");
    drop(host);
    // With the default value, the upstream is not granted.
    let host = start_probe_app(None)?;
    let out = json_get(
        &host,
        &format!("/templated/outbound?url=http://{upstream}/"),
    )?;
    assert!(wit_error(&out).contains("HttpRequestDenied"), "{out}");
    Ok(())
}

#[test]
fn key_value_round_trip_in_spins_file_layout() -> Result<()> {
    let host = start_probe_app(None)?;
    assert_eq!(
        json_get(&host, "/probe/kv?op=set&key=k1&value=v1")?["value"],
        Value::Null
    );
    assert_eq!(json_get(&host, "/probe/kv?op=get&key=k1")?["value"], "v1");
    assert_eq!(
        json_get(&host, "/probe/kv?op=exists&key=k1")?["value"],
        true
    );
    assert_eq!(
        json_get(&host, "/probe/kv?op=keys")?["value"],
        serde_json::json!(["k1"])
    );
    // The default store is Spin's file with Spin's table.
    let db = rusqlite::Connection::open(host.state.path().join("sqlite_key_value.db"))?;
    let value: Vec<u8> = db.query_row(
        "SELECT value FROM spin_key_value WHERE store = 'default' AND key = 'k1'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(value, b"v1");
    assert_eq!(
        json_get(&host, "/probe/kv?op=delete&key=k1")?["value"],
        Value::Null
    );
    assert_eq!(
        json_get(&host, "/probe/kv?op=get&key=k1")?["value"],
        Value::Null
    );
    // Another label is another namespace.
    assert_eq!(
        json_get(&host, "/probe/kv?label=cache&op=get&key=k1")?["value"],
        Value::Null
    );
    Ok(())
}

#[test]
fn key_value_unknown_label_is_no_such_store_and_ungranted_is_access_denied() -> Result<()> {
    let host = start_probe_app(None)?;
    let out = json_get(&host, "/probe/kv?label=nope")?;
    assert!(wit_error(&out).contains("NoSuchStore"), "{out}");
    // `hidden` is granted `default` only; `cache` exists in the runtime config.
    let out = json_get(
        &host,
        "/probe/outbound?url=http://hidden.spin.internal/kv?label=cache",
    )?;
    let inner = inner_body(&out)?;
    assert!(wit_error(&inner).contains("AccessDenied"), "{inner}");
    Ok(())
}

#[test]
fn sqlite_statements_run_on_the_default_database() -> Result<()> {
    let host = start_probe_app(None)?;
    let out = send(
        "POST",
        &host.url("/probe/sql"),
        &[],
        b"CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB);\nINSERT INTO t (name, score, data) VALUES ('a', 1.5, x'0102'), ('b', NULL, NULL);\nSELECT id, name, score, data FROM t ORDER BY id",
    )?
    .json()?;
    assert_eq!(
        out["rows"],
        serde_json::json!([[1, "a", 1.5, 2], [2, "b", null, null]]),
        "{out}"
    );
    let db = rusqlite::Connection::open(host.state.path().join("sqlite_db.db"))?;
    let n: i64 = db.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?;
    assert_eq!(n, 2);
    Ok(())
}

#[test]
fn a_transaction_reads_its_own_writes_and_counts_stay_with_their_connection() -> Result<()> {
    let host = start_probe_app(None)?;
    let sql = |body: &str| -> Result<serde_json::Value> {
        send("POST", &host.url("/probe/sql"), &[], body.as_bytes())?.json()
    };
    // A read inside a transaction sees the transaction's uncommitted rows;
    // a read after a write leaves the write's changed-row count.
    let out = sql(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);\nBEGIN;\nINSERT INTO t (name) VALUES ('a'), ('b'), ('c');\nSELECT COUNT(*) FROM t;\nCOMMIT;\nSELECT COUNT(*) FROM t",
    )?;
    assert_eq!(out["rows"], serde_json::json!([[3], [3]]), "{out}");
    assert_eq!(out["changes"], 3, "{out}");
    // A rolled-back transaction leaves nothing behind for the next reader.
    let out =
        sql("BEGIN;\nDELETE FROM t;\nSELECT COUNT(*) FROM t;\nROLLBACK;\nSELECT COUNT(*) FROM t")?;
    assert_eq!(out["rows"], serde_json::json!([[0], [3]]), "{out}");
    // Another request's connection starts with no write of its own, as a
    // connection Spin opens does.
    let out = sql("SELECT COUNT(*) FROM t")?;
    assert_eq!(out["rows"], serde_json::json!([[3]]), "{out}");
    assert_eq!(out["changes"], 0, "{out}");
    // A write that changes nothing counts none, whatever the connection it
    // ran on wrote before for someone else.
    let out =
        sql("UPDATE t SET name = 'z';\nINSERT OR IGNORE INTO t (id, name) VALUES (1, 'again')")?;
    assert_eq!(out["changes"], 0, "{out}");
    Ok(())
}

#[test]
fn sqlite_errors_and_denials_reach_the_guest_as_wit_errors() -> Result<()> {
    let host = start_probe_app(None)?;
    let out = send("POST", &host.url("/probe/sql?db=other"), &[], b"SELECT 1")?.json()?;
    assert!(wit_error(&out).contains("NoSuchDatabase"), "{out}");
    let out = send("POST", &host.url("/probe/sql"), &[], b"SELECT nonsense")?.json()?;
    assert!(wit_error(&out).contains("Io"), "{out}");
    // `hidden` has no database grant.
    let out = json_get(&host, "/probe/outbound?url=http://hidden.spin.internal/sql")?;
    let inner = inner_body(&out)?;
    assert!(wit_error(&inner).contains("AccessDenied"), "{inner}");
    Ok(())
}

#[test]
fn variables_come_from_templates_environment_and_defaults() -> Result<()> {
    let host = start_probe_app(None)?;
    assert_eq!(
        json_get(&host, "/probe/var?name=message")?["value"],
        "hej, world"
    );
    assert_eq!(json_get(&host, "/probe/var?name=token")?["value"], "t0ken");
    let out = json_get(&host, "/probe/var?name=maybe")?;
    assert!(wit_error(&out).contains("Undefined"), "{out}");
    let out = json_get(&host, "/probe/var?name=greeting")?;
    assert!(
        wit_error(&out).contains("Undefined"),
        "app variables are not component variables: {out}"
    );
    let out = json_get(&host, "/probe/var?name=Not-Valid")?;
    assert!(wit_error(&out).contains("InvalidName"), "{out}");
    Ok(())
}

#[test]
fn redis_backend_is_selected_by_the_runtime_config() -> Result<()> {
    let redis = RedisServer::start()?;
    let dir = TempDir::new("redis-config")?;
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n\n[key_value_store.cache]\ntype = \"spin\"\npath = \"cache.db\"\n",
            redis.url
        ),
    )?;
    let host = start_probe_app(Some(config))?;
    json_get(&host, "/probe/kv?op=set&key=session:1&value=alive")?;
    let mut conn = redis.connection()?;
    let stored: String = redis::cmd("GET").arg("session:1").query(&mut conn)?;
    assert_eq!(stored, "alive");
    redis::cmd("SET")
        .arg("written:by-redis")
        .arg("yes")
        .query::<()>(&mut conn)?;
    assert_eq!(
        json_get(&host, "/probe/kv?op=get&key=written:by-redis")?["value"],
        "yes"
    );
    assert_eq!(
        json_get(&host, "/probe/kv?op=exists&key=session:1")?["value"],
        true
    );
    let mut keys: Vec<String> =
        serde_json::from_value(json_get(&host, "/probe/kv?op=keys")?["value"].clone())?;
    keys.sort();
    assert_eq!(keys, vec!["session:1", "written:by-redis"]);
    json_get(&host, "/probe/kv?op=delete&key=session:1")?;
    let exists: bool = redis::cmd("EXISTS").arg("session:1").query(&mut conn)?;
    assert!(!exists);
    // Nothing went to the SQLite file.
    assert!(!host.state.path().join("sqlite_key_value.db").exists());
    Ok(())
}

#[test]
fn redis_backend_that_cannot_be_reached_stops_the_load() -> Result<()> {
    let dir = TempDir::new("redis-down")?;
    let config = dir.path().join("runtime-config.toml");
    let port = gatehouse_tests::free_port()?;
    std::fs::write(
        &config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n[key_value_store.cache]\ntype = \"spin\"\n"
        ),
    )?;
    let err = start_probe_app(Some(config))
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(
        err.contains("key-value store `default`: cannot connect to redis"),
        "{err}"
    );
    Ok(())
}

#[test]
fn compiled_components_are_cached_on_disk() -> Result<()> {
    let _host = start_probe_app(None)?;
    let cached = std::fs::read_dir(gatehouse_tests::cache_dir())?
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name().to_string_lossy().starts_with("probe-")
                && e.file_name().to_string_lossy().ends_with(".cwasm")
        });
    assert!(cached, "no probe-*.cwasm in the cache directory");
    Ok(())
}

/// Each folder under tests/conformance/load-errors holds a spin.toml the
/// host must refuse at load, and the text its one-line error must contain.
#[test]
fn misconfiguration_stops_the_host_at_load_with_one_clear_line() -> Result<()> {
    wasm("probe")?;
    let cases = root().join("tests/conformance/load-errors");
    let mut seen = 0;
    for case in std::fs::read_dir(&cases)? {
        let case = case?.path();
        let expected = std::fs::read_to_string(case.join("expected-error.txt"))?;
        let state = TempDir::new("load-error")?;
        let out = Command::new(host_binary()?)
            .args(["up", "--listen", "127.0.0.1:0", "--migrations", "none"])
            .arg("--manifest")
            .arg(case.join("spin.toml"))
            .arg("--state-dir")
            .arg(state.path())
            .arg("--cache-dir")
            .arg(gatehouse_tests::cache_dir())
            .env_remove("SPIN_VARIABLE_SIGNING_KEY")
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{name}: not one line: {stderr}"
        );
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
        assert!(
            stderr.contains(expected.trim()),
            "{name}: expected `{}` in {stderr}",
            expected.trim()
        );
        seen += 1;
    }
    assert!(seen >= 8, "only {seen} load-error cases found");
    Ok(())
}

#[test]
fn sigterm_drains_and_stops_the_host() -> Result<()> {
    wasm("probe")?;
    let state = TempDir::new("sigterm")?;
    let port = gatehouse_tests::free_port()?;
    let child = Command::new(host_binary()?)
        .args([
            "up",
            "--migrations",
            "none",
            "--quiet",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--manifest")
        .arg(probe_app().join("spin.toml"))
        .arg("--runtime-config-file")
        .arg(probe_app().join("runtime-config.toml"))
        .arg("--state-dir")
        .arg(state.path())
        .arg("--cache-dir")
        .arg(gatehouse_tests::cache_dir())
        .env("SPIN_VARIABLE_API_TOKEN", "x")
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}/probe/counter");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while get(&url, &[]).map(|r| r.status).unwrap_or(0) != 200 {
        assert!(std::time::Instant::now() < deadline, "host did not come up");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    Ok(())
}

/// A component written against `wasi:http@0.3.0` alone (no Spin SDK) is
/// served too: the host speaks the standard, not one SDK's dialect.
#[test]
fn a_plain_wasi_http_component_is_served() -> Result<()> {
    wasm("bare")?;
    let host = TestHost::start(HostConfig::new(
        root().join("tests/conformance/bare-app/spin.toml"),
    ))?;
    let reply = get(&host.url("/anything"), &[])?;
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"ok"[..]));
    Ok(())
}

type BodyCase<'a> = (&'a [(&'a str, &'a str)], &'a [u8], u16, &'a str);

/// The shared crate's JSON handling, compiled into a component: every bad
/// body gets a problem document with a stable code, never a 500.
#[test]
fn malformed_bodies_get_problem_documents() -> Result<()> {
    let host = start_probe_app(None)?;
    let url = host.url("/probe/json");
    let json = [("content-type", "application/json")];
    // (headers, body, expected status, expected code)
    let cases: [BodyCase; 5] = [
        (&json, b"{\"name\": ", 400, "invalid_json"),
        (
            &[("content-type", "text/plain")],
            b"{}",
            415,
            "unsupported_media_type",
        ),
        (
            &json,
            br#"{"name": "a very long name that goes on and on and on past the limit"}"#,
            413,
            "payload_too_large",
        ),
        (&json, br#"{"nom": "x"}"#, 422, "validation_failed"),
        (&json, br#"{"name": ""}"#, 422, "validation_failed"),
    ];
    for (headers, body, status, code) in cases {
        let reply = send("POST", &url, headers, body)?;
        assert_eq!(
            reply.status,
            status,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.json()?["code"], code);
    }
    let reply = send("POST", &url, &json, br#"{"name": ""}"#)?.json()?;
    assert_eq!(reply["errors"][0]["pointer"], "/name");
    let ok = send("POST", &url, &json, br#"{"name": "ada"}"#)?;
    assert_eq!(
        (ok.status, ok.json()?["hello"].clone()),
        (200, Value::from("ada"))
    );
    Ok(())
}

/// The shared crate's SQLite idempotency store, compiled into a component
/// and run against the migrated database.
#[test]
fn idempotency_keys_claim_replay_and_refuse_reuse() -> Result<()> {
    let host = start_probe_app(None)?;
    let op = |op: &str, scope: &str, fp: &str, now: i64| -> Result<Value> {
        Ok(json_get(
            &host,
            &format!("/probe/idem?op={op}&scope={scope}&key=k1&fp={fp}&now={now}"),
        )?["value"]
            .clone())
    };
    assert_eq!(op("claim", "orgA", "f1", 100)?, "fresh");
    assert_eq!(op("claim", "orgA", "f1", 101)?, "in_progress");
    assert_eq!(op("complete", "orgA", "f1", 102)?, "completed");
    assert_eq!(
        op("claim", "orgA", "f1", 103)?,
        serde_json::json!({"replay": 201, "body": "{\"id\":7}"})
    );
    assert_eq!(op("claim", "orgA", "f2", 104)?, "mismatch");
    // Another tenant's scope never sees orgA's record.
    assert_eq!(op("claim", "orgB", "f1", 105)?, "fresh");
    // A server error releases the key for a retry.
    assert_eq!(op("fail", "orgB", "f1", 106)?, "released");
    assert_eq!(op("claim", "orgB", "f1", 107)?, "fresh");
    // Records expire after a day.
    assert_eq!(op("claim", "orgA", "f2", 100 + 24 * 3600)?, "fresh");
    Ok(())
}

#[test]
fn concurrent_claims_of_one_key_have_exactly_one_winner() -> Result<()> {
    let host = start_probe_app(None)?;
    let url = host.url("/probe/idem?op=claim&scope=race&key=k&fp=f&now=1");
    let results: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| get(&url, &[]).and_then(|r| r.json())))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .ok()
                    .and_then(|r| r.ok())
                    .map(|v| v["value"].to_string())
                    .unwrap_or_default()
            })
            .collect()
    });
    assert_eq!(
        results.iter().filter(|r| *r == "\"fresh\"").count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| *r == "\"in_progress\"").count(),
        7,
        "{results:?}"
    );
    Ok(())
}

/// The command line follows `spin up`: its flags, the connection limits
/// and the instance settings are all documented in `--help`.
#[test]
fn help_lists_spin_up_flags_and_the_host_limits() -> Result<()> {
    let out = Command::new(host_binary()?).arg("--help").output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "--help failed: {stdout}");
    for flag in [
        "--listen",
        "--runtime-config-file",
        "-f, --from",
        "--state-dir",
        "-e, --env <KEY=VALUE>",
        "--max-instance-reuse-count",
        "--max-instance-concurrent-reuse-count",
        "--idle-instance-timeout",
        "--request-timeout",
        "--header-read-timeout",
        "--idle-timeout",
        "--body-timeout",
        "--max-connections",
        "migrate",
    ] {
        ensure!(
            stdout.contains(flag),
            "--help does not list {flag}:\n{stdout}"
        );
    }
    Ok(())
}

/// A misspelt flag must stop the host, not be ignored or swallow the next
/// argument as its value.
#[test]
fn an_unknown_flag_stops_the_host_naming_the_flag() -> Result<()> {
    for args in [
        &["up", "--listen", "127.0.0.1:0", "--max-instance-reuse", "4"][..],
        &["--listn", "127.0.0.1:0"][..],
        &["migrate", "--from", "spin.toml", "--databse", "default"][..],
    ] {
        let out = Command::new(host_binary()?).args(args).output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let flag = args
            .iter()
            .find(|a| a.starts_with("--") && !["--listen", "--from"].contains(a))
            .copied()
            .unwrap_or_default();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        ensure!(
            stderr.starts_with("error: ") && stderr.contains(&format!("'{flag}'")),
            "{args:?}: {stderr}"
        );
    }
    Ok(())
}

/// Each instance setting takes a value or a range `a..b`, as Spin's do; an
/// empty range or a zero count is refused at start, naming the flag.
#[test]
fn instance_flags_take_a_value_or_a_range_and_refuse_nonsense() -> Result<()> {
    for (flag, value) in [
        ("--max-instance-reuse-count", "0"),
        ("--max-instance-reuse-count", "9..3"),
        ("--max-instance-concurrent-reuse-count", "many"),
        ("--idle-instance-timeout", "2s..1s"),
        ("--request-timeout", "0s"),
        ("--request-timeout", "5 parsecs"),
    ] {
        let out = Command::new(host_binary()?)
            .args(["up", "--listen", "127.0.0.1:0", "--migrations", "none"])
            .args([flag, value])
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag} {value}: {stderr}");
        ensure!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
    use gatehouse_host::instances::{parse_count_spread, parse_duration_spread};
    assert_eq!(parse_count_spread("16").ok(), Some(Spread::fixed(16)));
    let range = parse_count_spread("4..8").map_err(anyhow::Error::msg)?;
    assert_eq!((range.low, range.high), (4, 8));
    for _ in 0..100 {
        let n = range.draw();
        ensure!((4..=8).contains(&n), "{n} outside 4..8");
    }
    let idle = parse_duration_spread("500ms..2s").map_err(anyhow::Error::msg)?;
    assert_eq!(
        (idle.low, idle.high),
        (Duration::from_millis(500), Duration::from_secs(2))
    );
    Ok(())
}

/// A guest that computes forever is stopped at `--request-timeout`: its
/// client gets a problem document instead of a connection that never
/// answers, and the host goes on serving everyone else.
#[test]
fn a_guest_past_the_request_timeout_is_stopped_and_the_host_serves_on() -> Result<()> {
    wasm("probe")?;
    let mut config = HostConfig::new(probe_app().join("spin.toml"));
    config.runtime_config = Some(probe_app().join("runtime-config.toml"));
    config.env = vec![("SPIN_VARIABLE_API_TOKEN".into(), "t0ken".into())];
    config.request_timeout = Some(std::time::Duration::from_millis(300));
    let host = TestHost::start(config)?;
    let stuck: Vec<_> = (0..2)
        .map(|_| {
            let url = host.url("/probe/spin");
            std::thread::spawn(move || get(&url, &[]))
        })
        .collect();
    for request in stuck {
        let reply = request
            .join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
        assert_eq!(
            reply.status,
            503,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.json()?["code"], "unavailable");
    }
    assert_eq!(json_get(&host, "/probe/counter")?["calls"], 1);
    Ok(())
}

/// A time far from the real one, so no test can pass by reading the real
/// clock (2033-05-18T03:33:20Z).
const FIXED_TIME: i64 = 2_000_000_000;

#[test]
fn with_a_controllable_clock_components_read_the_time_the_test_sets() -> Result<()> {
    use gatehouse_tests::app::{app_config, call, expect, org};
    let mut config = app_config();
    config.controllable_clock = true;
    let host = TestHost::start(config)?;
    host.set_clock(FIXED_TIME)?;
    let reading = json_get(&host, "/.host/clock")?;
    let now = reading["now"].as_i64().unwrap_or_default();
    assert!((FIXED_TIME..FIXED_TIME + 60).contains(&now), "{reading}");

    let org = org(&host, "clock@example.com", "clock-org")?;
    let created = expect(
        call(
            &host,
            "GET",
            &format!("/v1/orgs/{}", org.id),
            None,
            Some(&org.admin),
            &[],
        )?,
        200,
    )?;
    let created_at = created["created_at"].as_i64().unwrap_or_default();
    assert!(
        (FIXED_TIME..FIXED_TIME + 60).contains(&created_at),
        "{created}"
    );

    // Instances already serving follow a later move.
    host.advance_clock(86_400)?;
    let renamed = expect(
        call(
            &host,
            "PATCH",
            &format!("/v1/orgs/{}", org.id),
            Some(&serde_json::json!({"name": "Clock, a day later"})),
            Some(&org.admin),
            &[],
        )?,
        200,
    )?;
    let updated_at = renamed["updated_at"].as_i64().unwrap_or_default();
    assert!(
        (created_at + 86_400..created_at + 86_400 + 60).contains(&updated_at),
        "{renamed}"
    );
    Ok(())
}

#[test]
fn the_clock_path_refuses_bad_bodies_and_other_methods() -> Result<()> {
    wasm("probe")?;
    let mut config = HostConfig::new(probe_app().join("spin.toml"));
    config.runtime_config = Some(probe_app().join("runtime-config.toml"));
    config.env = vec![("SPIN_VARIABLE_API_TOKEN".into(), "t0ken".into())];
    config.controllable_clock = true;
    let host = TestHost::start(config)?;
    let url = host.url("/.host/clock");
    let json = [("content-type", "application/json")];
    for body in [
        &b"not json"[..],
        br#"{}"#,
        br#"{"now": 1, "advance_seconds": 1}"#,
        br#"{"now": "tomorrow"}"#,
        br#"{"now": 1, "zone": "UTC"}"#,
        br#"{"now": -1}"#,
        br#"{"advance_seconds": -9223372036854775808}"#,
    ] {
        let reply = send("PUT", &url, &json, body)?;
        assert_eq!(reply.status, 400, "{}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.json()?["code"], "invalid_json");
    }
    // None of them moved the clock.
    assert_eq!(json_get(&host, "/.host/clock")?["offset_seconds"], 0);
    let reply = send("POST", &url, &json, br#"{"now": 1}"#)?;
    assert_eq!(reply.status, 405, "{}", reply.text());
    assert_eq!(reply.json()?["code"], "method_not_allowed");
    Ok(())
}

#[test]
fn without_the_flag_the_clock_path_belongs_to_the_app() -> Result<()> {
    let host = start_probe_app(None)?;
    let reply = send(
        "PUT",
        &host.url("/.host/clock"),
        &[("content-type", "application/json")],
        br#"{"now": 2000000000}"#,
    )?;
    // The probe's catch-all component answered, not the host.
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echo = reply.json()?;
    assert_eq!(echo["method"], "PUT", "{echo}");
    assert_eq!(header(&echo, "spin-matched-route"), "/...");
    assert!(host.set_clock(FIXED_TIME).is_err());
    Ok(())
}
