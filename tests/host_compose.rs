//! The local host composes components as Spin 4.1 does: HTTP middleware on
//! a trigger chained in front of its component (first listed = outermost),
//! `[component.<id>.dependencies]` plugged into the component's imports, and
//! every misconfiguration a load error in Spin's words. Each test writes its
//! own spin.toml around the fixture components in tests/components
//! (`mw-gate`, `mw-tag`, `greeter`, `greeted`).

use anyhow::{Context, Result, bail, ensure};
use gatehouse_host::instances::{InstanceReuse, Spread};
use gatehouse_tests::{HostConfig, TempDir, TestHost, get, wasm};
use std::path::PathBuf;
use std::time::Duration;

/// The dependency every app here gives `greeted`: `greeter`, inheriting the
/// variables it reads.
const GREET_DEPENDENCY: &str = r#""gatehouse:fixture/greet@0.1.0" = { component = "greeter", inherit_configuration = ["variables"] }"#;

/// A spin.toml serving `greeted` on `/...` with `middleware` (the TOML
/// array's items) and `dependencies` (lines of its dependencies table).
fn manifest(middleware: &str, dependencies: &str) -> Result<String> {
    let path =
        |name: &str| -> Result<String> { Ok(wasm(name)?.to_string_lossy().replace('\\', "/")) };
    Ok(format!(
        r#"spin_manifest_version = 2
[application]
name = "compose"
[variables]
greeting = {{ default = "hello" }}
[[trigger.http]]
route = "/..."
component = "greeted"
dependencies.middleware = [{middleware}]
[component.greeted]
source = "{greeted}"
allowed_outbound_hosts = []
[component.greeted.variables]
greeting = "{{{{ greeting }}}}"
[component.greeted.dependencies]
{dependencies}
[component.greeter]
source = "{greeter}"
[component.gate]
source = "{gate}"
[component.tag]
source = "{tag}"
"#,
        greeted = path("greeted")?,
        greeter = path("greeter")?,
        gate = path("mw_gate")?,
        tag = path("mw_tag")?,
    ))
}

/// An app's directory, holding its spin.toml.
fn app(text: &str) -> Result<TempDir> {
    let dir = TempDir::new("compose")?;
    std::fs::write(dir.path().join("spin.toml"), text)?;
    Ok(dir)
}

fn config(dir: &TempDir) -> HostConfig {
    let mut config = HostConfig::new(dir.path().join("spin.toml"));
    config.env = vec![("SPIN_VARIABLE_GREETING".into(), "hej".into())];
    config
}

fn start(text: &str) -> Result<(TestHost, TempDir)> {
    let dir = app(text)?;
    Ok((TestHost::start(config(&dir))?, dir))
}

/// The one-line load error of an app, as `spin up`'s `error:` line shows it.
fn load_error(text: &str) -> Result<String> {
    let dir = app(text)?;
    match TestHost::start(config(&dir)) {
        Ok(_) => bail!("the app loaded:\n{text}"),
        Err(e) => Ok(format!("{e:#}")),
    }
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected `{needle}` in: {haystack}"
    );
}

const CHAIN: &str = r#"{ component = "gate" }, { component = "tag" }"#;

#[test]
fn middleware_runs_outermost_first_around_the_handler() -> Result<()> {
    let (host, _dir) = start(&manifest(CHAIN, GREET_DEPENDENCY)?)?;
    let reply = get(&host.url("/hello"), &[("x-key", "k")])?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "trail=gate,tag");
    assert_eq!(reply.header("x-trail"), Some("handler,tag,gate"));

    let (host, _dir) = start(&manifest(
        r#"{ component = "tag" }, { path = "PATH" }"#
            .replace("PATH", &wasm("mw_gate")?.to_string_lossy())
            .as_str(),
        GREET_DEPENDENCY,
    )?)?;
    let reply = get(&host.url("/hello"), &[("x-key", "k")])?;
    assert_eq!(reply.text(), "trail=tag,gate");
    assert_eq!(reply.header("x-trail"), Some("handler,gate,tag"));
    Ok(())
}

#[test]
fn a_middleware_answers_without_calling_what_is_behind_it() -> Result<()> {
    let (host, _dir) = start(&manifest(CHAIN, GREET_DEPENDENCY)?)?;
    let reply = get(&host.url("/hello"), &[])?;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.text(), "missing x-key");
    // Neither `tag` nor the handler saw the request.
    assert_eq!(reply.header("x-trail"), Some("gate"));
    Ok(())
}

#[test]
fn a_dependency_serves_the_import_with_the_handlers_variables() -> Result<()> {
    let (host, _dir) = start(&manifest("", GREET_DEPENDENCY)?)?;
    let reply = get(&host.url("/greet?name=ada"), &[])?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "hej, ada");
    Ok(())
}

#[test]
fn components_serving_only_as_middleware_or_dependencies_are_not_handlers() -> Result<()> {
    // `greeter` exports no handler and `gate` imports one: as handlers of
    // their own they could not load at all.
    let (host, _dir) = start(&manifest(CHAIN, GREET_DEPENDENCY)?)?;
    for id in ["greeter", "gate", "tag"] {
        assert!(
            host.runtime.instance_stats(id).is_none(),
            "`{id}` was loaded"
        );
    }
    assert!(host.runtime.instance_stats("greeted").is_some());
    Ok(())
}

#[test]
fn a_composed_instance_is_reused_like_any_other() -> Result<()> {
    let dir = app(&manifest(CHAIN, GREET_DEPENDENCY)?)?;
    let mut reusing = config(&dir);
    reusing.instances = InstanceReuse {
        max_reuse: Spread::fixed(4),
        max_concurrent: Spread::fixed(1),
        idle_timeout: Spread::fixed(Duration::from_secs(30)),
    };
    let host = TestHost::start(reusing)?;
    for _ in 0..8 {
        let reply = get(&host.url("/greet?name=ada"), &[("x-key", "k")])?;
        ensure!(reply.text() == "hej, ada", "{}", reply.text());
    }
    let made = host
        .runtime
        .instance_stats("greeted")
        .context("stats")?
        .instances;
    ensure!((2..8).contains(&made), "{made} instances for 8 requests");

    let mut fresh = config(&dir);
    fresh.instances = InstanceReuse::OFF;
    let host = TestHost::start(fresh)?;
    for _ in 0..3 {
        let reply = get(&host.url("/greet?name=ada"), &[("x-key", "k")])?;
        ensure!(reply.text() == "hej, ada", "{}", reply.text());
    }
    let made = host
        .runtime
        .instance_stats("greeted")
        .context("stats")?
        .instances;
    assert_eq!(made, 3);
    Ok(())
}

/// The composition is compiled once: a second load finds it in the cache
/// (the same file, not rewritten).
#[test]
fn the_compiled_composition_is_cached_across_loads() -> Result<()> {
    let dir = app(&manifest(CHAIN, GREET_DEPENDENCY)?)?;
    let cache = TempDir::new("compose-cache")?;
    std::fs::create_dir_all(dir.path().join(".spin"))?;
    let load = || -> Result<Vec<(PathBuf, std::time::SystemTime)>> {
        let opts = gatehouse_host::LoadOptions {
            manifest: dir.path().join("spin.toml"),
            runtime_config: None,
            state_dir: dir.path().join(".spin"),
            cache_dir: cache.path().to_path_buf(),
            env: Vec::new(),
            instances: InstanceReuse::default(),
            request_timeout: None,
            controllable_clock: false,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(gatehouse_host::Runtime::load(&opts, &|_| None))?;
        let mut files = Vec::new();
        for entry in std::fs::read_dir(cache.path())? {
            let entry = entry?;
            files.push((entry.path(), entry.metadata()?.modified()?));
        }
        files.sort();
        Ok(files)
    };
    let first = load()?;
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0]
            .0
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("greeted-")),
        "{first:?}"
    );
    assert_eq!(load()?, first);
    Ok(())
}

#[test]
fn a_dependency_matching_no_import_is_a_load_error() -> Result<()> {
    let err = load_error(&manifest(
        "",
        r#""gatehouse:fixture/greet@0.2.0" = { component = "greeter", inherit_configuration = true }"#,
    )?)?;
    assert_contains(
        &err,
        "failed to resolve dependencies for component \"greeted\": dependency 'gatehouse:fixture/greet@0.2.0' doesn't match any imports of component 'greeted'",
    );
    Ok(())
}

#[test]
fn a_dependency_without_the_export_is_a_load_error() -> Result<()> {
    let err = load_error(&manifest(
        "",
        r#""gatehouse:fixture/greet@0.1.0" = { component = "greeter", export = "gatehouse:fixture/hail@0.1.0", inherit_configuration = true }"#,
    )?)?;
    assert_contains(
        &err,
        "dependency 'gatehouse:fixture/greet@0.1.0' doesn't export 'gatehouse:fixture/hail@0.1.0' to satisfy import 'gatehouse:fixture/greet@0.1.0'",
    );
    let err = load_error(&manifest(
        "",
        r#""gatehouse:fixture/greet@0.1.0" = { component = "tag", export = "wasi:http/handler@0.3.0" }"#,
    )?)?;
    assert_contains(
        &err,
        "dependency 'gatehouse:fixture/greet@0.1.0' exports 'wasi:http/handler@0.3.0' which is not compatible with import 'gatehouse:fixture/greet@0.1.0'",
    );
    Ok(())
}

#[test]
fn an_import_no_dependency_satisfies_is_a_load_error() -> Result<()> {
    let err = load_error(&manifest("", "")?)?;
    assert_contains(
        &err,
        "component imports instance `gatehouse:fixture/greet@0.1.0`, but a matching implementation was not found in the linker",
    );
    Ok(())
}

#[test]
fn a_middleware_without_the_handler_interface_is_a_load_error() -> Result<()> {
    // `greeter` neither imports nor exports `wasi:http/handler@0.3.0`.
    let err = load_error(&manifest(
        r#"{ component = "greeter", inherit_configuration = true }"#,
        GREET_DEPENDENCY,
    )?)?;
    assert_contains(
        &err,
        "argument name `wasi:http/handler@0.3.0` is not an import of package `middleware0`",
    );
    Ok(())
}

#[test]
fn middleware_in_front_of_a_component_without_a_handler_is_a_load_error() -> Result<()> {
    let text = manifest(r#"{ component = "tag" }"#, GREET_DEPENDENCY)?.replace(
        "route = \"/...\"\ncomponent = \"greeted\"",
        "route = \"/...\"\ncomponent = \"greeter\"",
    );
    assert_contains(
        &load_error(&text)?,
        "trigger `greeter-http-trigger`: cannot compose its middleware: instance does not have an export named `wasi:http/handler@0.3.0`",
    );
    Ok(())
}

#[test]
fn a_dependency_with_its_own_configuration_is_a_load_error() -> Result<()> {
    let text = manifest("", GREET_DEPENDENCY)?.replace(
        "[component.gate]",
        "key_value_stores = [\"default\"]\n[component.greeter.variables]\ngreeting = \"yo\"\n[component.gate]",
    );
    let err = load_error(&text)?;
    assert_contains(
        &err,
        "Dependencies may not have their own resources or permissions. Component greeter cannot be used as a dependency of greeted because it specifies: key_value_stores, variables",
    );
    let text = manifest(CHAIN, GREET_DEPENDENCY)?.replace(
        "[component.tag]",
        "allowed_outbound_hosts = [\"https://example.com\"]\n[component.tag]",
    );
    assert_contains(
        &load_error(&text)?,
        "Component gate cannot be used as a dependency of greeted-http-trigger because it specifies: allowed_outbound_hosts",
    );
    Ok(())
}

#[test]
fn a_dependency_reaching_for_configuration_it_does_not_inherit_is_a_load_error() -> Result<()> {
    for inherit in [
        "",
        ", inherit_configuration = false",
        r#", inherit_configuration = ["key_value_stores"]"#,
    ] {
        let err = load_error(&manifest(
            "",
            &format!(r#""gatehouse:fixture/greet@0.1.0" = {{ component = "greeter"{inherit} }}"#),
        )?)?;
        assert_contains(
            &err,
            "dependency 'gatehouse:fixture/greet@0.1.0' of component 'greeted' imports `spin:variables/variables@3.0.0`, which needs `inherit_configuration` to include \"variables\"",
        );
    }
    Ok(())
}

#[test]
fn unknown_and_unsupported_dependency_sources_are_load_errors() -> Result<()> {
    let err = load_error(&manifest(r#"{ component = "nope" }"#, GREET_DEPENDENCY)?)?;
    assert_contains(&err, "dependency ID nope does not exist");
    let err = load_error(&manifest(
        r#"{ url = "https://example.com/guard.wasm", digest = "sha256:00" }"#,
        GREET_DEPENDENCY,
    )?)?;
    assert_contains(
        &err,
        "middleware 0: `url` dependencies are not supported by this host",
    );
    let err = load_error(&manifest(
        "",
        r#""gatehouse:fixture/greet@0.1.0" = { registry = "example.com", package = "gatehouse:fixture", version = "0.1.0" }"#,
    )?)?;
    assert_contains(
        &err,
        "registry dependencies (`package`/`version`) are not supported by this host",
    );
    let err = load_error(&manifest(CHAIN, GREET_DEPENDENCY)?.replace(
        "dependencies.middleware",
        "dependencies.cron = []\ndependencies.middleware",
    ))?;
    assert_contains(
        &err,
        "the HTTP trigger's only allowed trigger dependency is `middleware`",
    );
    Ok(())
}
