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
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert!(reply.header("x-request-id").is_some_and(|id| !id.is_empty()));
    let health = reply.json()?;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["checks"]["database"]["status"], "ok");
    assert_eq!(health["checks"]["migrations"]["status"], "ok");
    assert_eq!(health["checks"]["migrations"]["applied"], health["checks"]["migrations"]["expected"]);
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
    let reply = get(&host.url("/v1/health/live"), &[("x-request-id", "req-abc.123")])?;
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
        assert!(doc["paths"][path]["get"].is_object(), "{path} not documented");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let etag = reply.header("etag").expect("etag").to_string();
    let again = get(&host.url("/v1/openapi.json"), &[("if-none-match", &etag)])?;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    Ok(())
}

/// Every documented path answers (not with the fallback's 404), so the
/// document cannot drift from what is routed.
#[test]
fn every_documented_path_is_served() -> Result<()> {
    let host = start(true)?;
    let doc = get(&host.url("/v1/openapi.json"), &[])?.json()?;
    let paths = doc["paths"].as_object().expect("paths");
    for (path, ops) in paths {
        if ops.get("get").is_none() || path.contains('{') {
            continue;
        }
        let reply = get(&host.url(path), &[])?;
        assert_ne!(reply.status, 404, "{path} is documented but not served");
    }
    Ok(())
}

#[test]
fn unknown_route_is_a_404_problem_document() -> Result<()> {
    let host = start(false)?;
    let reply = get(&host.url("/v1/does-not-exist"), &[])?;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    let problem = reply.json()?;
    assert_eq!(problem["code"], "not_found");
    assert_eq!(problem["status"], 404);
    assert_eq!(problem["instance"].as_str(), reply.header("x-request-id"));
    Ok(())
}

#[test]
fn wrong_method_is_a_405_problem_with_allow() -> Result<()> {
    let host = start(false)?;
    let reply = send("POST", &host.url("/v1/health"), &[("content-type", "application/json")], b"{not json")?;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.json()?["code"], "method_not_allowed");
    assert!(reply.header("allow").is_some_and(|a| a.contains("GET")));
    Ok(())
}
