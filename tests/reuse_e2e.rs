//! Instances serve many requests, several at once, as under `spin up`'s
//! defaults: requests of two tenants interleaved on shared instances never
//! see each other's principal or data. Key-value is Redis, as in
//! production: its reads are network round trips, during which an instance
//! takes on the next request.

use anyhow::{Context, Result, ensure};
use gatehouse_host::instances::InstanceReuse;
use gatehouse_tests::app::{app_config, call, expect, post, signed_in, user_id};
use gatehouse_tests::{RedisServer, TempDir, TestHost};
use serde_json::json;
use std::sync::Arc;

/// One tenant: an org, its admin's session, and a key of its own.
struct Tenant {
    org: String,
    session: String,
    user: String,
    key_name: String,
    key: String,
}

fn tenant(host: &TestHost, handle: &str) -> Result<Tenant> {
    let session = signed_in(host, &format!("admin@{handle}.example"))?;
    let org = expect(
        post(
            host,
            "/v1/orgs",
            &json!({"name": handle, "handle": handle}),
            Some(&session),
        )?,
        201,
    )?;
    let key_name = format!("{handle}-key");
    let created = expect(
        post(host, "/v1/keys", &json!({"name": key_name}), Some(&session))?,
        201,
    )?;
    Ok(Tenant {
        org: org["id"].as_str().context("org id")?.to_string(),
        user: user_id(host, &session)?,
        key: created["key"].as_str().context("key")?.to_string(),
        key_name,
        session,
    })
}

/// The caller's view through three components, each checked against
/// what this tenant, and only this tenant, holds.
fn check_view(host: &TestHost, me: &Tenant) -> Result<()> {
    let who = expect(
        call(host, "GET", "/v1/auth/whoami", None, Some(&me.session), &[])?,
        200,
    )?;
    ensure!(who.to_string().contains(&me.user), "whoami: {who}");
    let keys = expect(
        call(host, "GET", "/v1/keys", None, Some(&me.session), &[])?,
        200,
    )?;
    let names: Vec<&str> = keys["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    ensure!(
        names == [me.key_name.as_str()],
        "keys of {}: {names:?}",
        me.org
    );
    let verdict = expect(
        post(
            host,
            "/v1/keys/verify",
            &json!({"key": me.key}),
            Some(&me.session),
        )?,
        200,
    )?;
    ensure!(
        verdict["valid"] == json!(true) && verdict["org"] == json!(me.org),
        "verify for {}: {verdict}",
        me.org
    );
    Ok(())
}

#[test]
fn two_tenants_interleaved_on_shared_instances_see_only_their_own() -> Result<()> {
    let redis = RedisServer::start()?;
    let dir = TempDir::new("reuse-config")?;
    let runtime_config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &runtime_config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            redis.url
        ),
    )?;
    let mut config = app_config();
    config.runtime_config = Some(runtime_config);
    config.instances = InstanceReuse::default();
    let host = Arc::new(TestHost::start(config)?);
    let tenants = Arc::new([tenant(&host, "acme")?, tenant(&host, "globex")?]);

    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let (host, tenants) = (host.clone(), tenants.clone());
            std::thread::spawn(move || -> Result<()> {
                for round in 0..12 {
                    check_view(&host, &tenants[(worker + round) % 2])?;
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
    }

    // The check above means something only if instances were in fact
    // shared: reused across requests, and serving several at once.
    for component in ["identity", "keys"] {
        let stats = host
            .runtime
            .instance_stats(component)
            .context("component")?;
        ensure!(
            stats.instances * 4 <= 96,
            "{component}: {} instances for 96 requests: not reused",
            stats.instances
        );
        ensure!(
            stats.most_at_once >= 2,
            "{component}: no instance ever served two requests at once ({stats:?})"
        );
    }
    Ok(())
}
