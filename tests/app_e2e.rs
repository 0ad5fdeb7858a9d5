//! The Gatehouse app itself, served from the real spin.toml by the local
//! host over real TCP: health, the OpenAPI document, and the problem
//! documents for what no route serves.

use anyhow::Result;
use gatehouse_tests::{HostConfig, TestHost, get, root, send};

fn start(migrated: bool) -> Result<TestHost> {
    let mut config = HostConfig::new(root().join("spin.toml"));
    if migrated {
        config.migrations = Some(root().join("infra/migrations"));
    }
    TestHost::start(config)
}

#[test]
fn health_reports_database_and_migrations_ok() -> Result<()> {
    let host = start(true)?;
    let reply = get(&host.url("/v1/health"), &[])?;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(
        reply
            .header("x-request-id")
            .is_some_and(|id| !id.is_empty())
    );
    let health = reply.json()?;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["checks"]["database"]["status"], "ok");
    assert_eq!(health["checks"]["migrations"]["status"], "ok");
    assert_eq!(
        health["checks"]["migrations"]["applied"],
        health["checks"]["migrations"]["expected"]
    );
    // The build knows every migration of this checkout (a stale list would
    // call a database current that lacks the newest ones).
    let files = std::fs::read_dir(root().join("infra/migrations"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
        .count();
    assert_eq!(health["checks"]["migrations"]["expected"], files);
    Ok(())
}

#[test]
fn health_is_degraded_while_migrations_are_pending() -> Result<()> {
    let host = start(false)?;
    let reply = get(&host.url("/v1/health"), &[])?;
    assert_eq!(reply.status, 503);
    let health = reply.json()?;
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["checks"]["database"]["status"], "ok");
    assert_ne!(health["checks"]["migrations"]["status"], "ok");
    Ok(())
}

#[test]
fn liveness_answers_without_io() -> Result<()> {
    let host = start(false)?;
    let reply = get(&host.url("/v1/health/live"), &[])?;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()?["status"], "ok");
    Ok(())
}

#[test]
fn request_id_from_the_client_is_echoed() -> Result<()> {
    let host = start(false)?;
    let reply = get(
        &host.url("/v1/health/live"),
        &[("x-request-id", "req-abc.123")],
    )?;
    assert_eq!(reply.header("x-request-id"), Some("req-abc.123"));
    Ok(())
}

#[test]
fn openapi_document_is_served_with_an_etag() -> Result<()> {
    let host = start(false)?;
    let reply = get(&host.url("/v1/openapi.json"), &[])?;
    assert_eq!(reply.status, 200);
    let doc = reply.json()?;
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/v1/health", "/v1/health/live", "/v1/openapi.json"] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} not documented"
        );
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let etag = reply.header("etag").expect("etag").to_string();
    let again = get(&host.url("/v1/openapi.json"), &[("if-none-match", &etag)])?;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    Ok(())
}

/// Every documented path answers (not with the fallback's 404), so the
/// document cannot drift from what is routed; and every answer carries its
/// `Content-Length`: Spin passes a component's framing through, and sends
/// a response without one chunked, in small writes that a client's
/// delayed ACK stalls by tens of milliseconds on a kept-alive connection.
#[test]
fn every_documented_path_is_served_with_a_length() -> Result<()> {
    // Development-only routes are documented too; switch them on.
    let mut config = HostConfig::new(root().join("spin.toml"));
    config.migrations = Some(root().join("infra/migrations"));
    config.env = vec![("SPIN_VARIABLE_DEV_OUTBOX".into(), "enabled".into())];
    let host = TestHost::start(config)?;
    let doc = get(&host.url("/v1/openapi.json"), &[])?.json()?;
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, ops) in paths {
        if path.contains('{') {
            continue;
        }
        for method in ["get", "post"]
            .into_iter()
            .filter(|m| ops.get(*m).is_some())
        {
            // An empty JSON object (for POST; a GET carries no body): every
            // documented operation must answer it itself (200, 4xx
            // problem...), never with the fallback 404 or 405 of a path
            // nobody routes.
            let reply = if method == "post" {
                send(
                    "POST",
                    &host.url(path),
                    &[("content-type", "application/json")],
                    b"{}",
                )?
            } else {
                get(&host.url(path), &[])?
            };
            assert!(
                !matches!(reply.status, 404 | 405),
                "{method} {path} is documented but answered {}",
                reply.status
            );
            if !matches!(reply.status, 204 | 304) {
                assert!(
                    reply.header("content-length").is_some()
                        && reply.header("transfer-encoding").is_none(),
                    "{method} {path} answered {} without a Content-Length: {:?}",
                    reply.status,
                    reply.headers
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 9, "only {checked} operations checked");
    Ok(())
}

#[test]
fn unknown_route_is_a_404_problem_document() -> Result<()> {
    let host = start(false)?;
    let reply = get(&host.url("/v1/does-not-exist"), &[])?;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let problem = reply.json()?;
    assert_eq!(problem["code"], "not_found");
    assert_eq!(problem["status"], 404);
    assert_eq!(problem["instance"].as_str(), reply.header("x-request-id"));
    Ok(())
}

#[test]
fn wrong_method_is_a_405_problem_with_allow() -> Result<()> {
    let host = start(false)?;
    let reply = send(
        "POST",
        &host.url("/v1/health"),
        &[("content-type", "application/json")],
        b"{not json",
    )?;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.json()?["code"], "method_not_allowed");
    assert!(reply.header("allow").is_some_and(|a| a.contains("GET")));
    Ok(())
}

/// What `scripts/up` runs, minus the build: the host binary on the real
/// spin.toml applies the migrations beside it, serves health, and logs one
/// line per request.
#[test]
fn host_binary_migrates_at_start_and_serves_the_app() -> Result<()> {
    let state = gatehouse_tests::TempDir::new("up")?;
    let port = gatehouse_tests::free_port()?;
    let child = std::process::Command::new(gatehouse_tests::host_binary()?)
        .args(["up", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--manifest")
        .arg(root().join("spin.toml"))
        .arg("--state-dir")
        .arg(state.path())
        .arg("--cache-dir")
        .arg(gatehouse_tests::cache_dir())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let health = loop {
        if let Ok(reply) = get(&format!("{base}/v1/health"), &[]) {
            break reply;
        }
        assert!(std::time::Instant::now() < deadline, "host did not come up");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let missing = get(&format!("{base}/nope"), &[]);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let out = child.wait_with_output()?;
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        health.status,
        200,
        "{}",
        String::from_utf8_lossy(&health.body)
    );
    assert_eq!(health.json()?["checks"]["migrations"]["status"], "ok");
    let missing = missing?;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        log.contains("migrations: 0 already applied") && log.contains("0001_platform"),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l
            .starts_with("GET /v1/health route=/... component=platform status=200 duration_ms=")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with("GET /nope route=/... component=platform status=404")),
        "{log}"
    );
    Ok(())
}

/// `scripts/migrate` applies once, then finds nothing to do, and refuses a
/// database whose applied migration changed.
#[test]
fn migrate_command_is_idempotent_and_refuses_changed_files() -> Result<()> {
    let state = gatehouse_tests::TempDir::new("migrate")?;
    let migrations = gatehouse_tests::TempDir::new("migrations")?;
    for entry in std::fs::read_dir(root().join("infra/migrations"))? {
        let path = entry?.path();
        std::fs::copy(
            &path,
            migrations.path().join(path.file_name().unwrap_or_default()),
        )?;
    }
    let run = || -> Result<std::process::Output> {
        Ok(std::process::Command::new(gatehouse_tests::host_binary()?)
            .arg("migrate")
            .arg("--manifest")
            .arg(root().join("spin.toml"))
            .arg("--state-dir")
            .arg(state.path())
            .arg("--migrations")
            .arg(migrations.path())
            .output()?)
    };
    let first = run()?;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stderr).contains("0 already applied"));
    let second = run()?;
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("0 applied now"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let first_file = std::fs::read_dir(migrations.path())?
        .next()
        .expect("a migration")?
        .path();
    let mut sql = std::fs::read_to_string(&first_file)?;
    sql.push_str("\n-- edited after release\n");
    std::fs::write(&first_file, sql)?;
    let third = run()?;
    assert_eq!(third.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&third.stderr).contains("changed after it was applied"));
    Ok(())
}

#[test]
fn a_body_the_component_never_reads_does_not_cut_off_the_response() -> Result<()> {
    // The OpenAPI document is large and its route never reads a body: the
    // host reads small bodies before the component runs, so closing the
    // connection never resets it with request bytes unread.
    let host = start(true)?;
    let body = vec![b'x'; 16 * 1024];
    let whole = get(&host.url("/v1/openapi.json"), &[])?.body.len();
    assert!(whole > 100_000, "{whole}");
    for _ in 0..25 {
        let res = send(
            "GET",
            &host.url("/v1/openapi.json"),
            &[("content-type", "text/plain")],
            &body,
        )?;
        assert_eq!((res.status, res.body.len()), (200, whole));
    }
    Ok(())
}
