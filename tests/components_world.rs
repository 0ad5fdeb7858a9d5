//! The built components are plain Spin 4 components: each one spin.toml
//! names exists, exports `wasi:http/handler@0.3.0`, and imports only what
//! the `gatehouse:platform/component` world allows (Spin 4.1's HTTP world,
//! narrowed); and the WIT the host binds is the WIT the SDK was built from.

use anyhow::{Context, Result, bail};
use gatehouse_tests::root;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model_async(true);
    Ok(Engine::new(&config)?)
}

/// `ns:pkg/iface@x.y.z` names the world imports, elaborated by wit-parser.
fn world_imports() -> Result<BTreeSet<String>> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(root().join("wit"))?;
    let world = resolve.select_world(&[pkg], Some("component"))?;
    let mut names = BTreeSet::new();
    for key in resolve.worlds[world].imports.keys() {
        if let wit_parser::WorldKey::Interface(id) = key {
            names.insert(resolve.id_of(*id).context("unnamed interface")?);
        }
    }
    Ok(names)
}

/// Component-model semver: same interface, same major, and for 0.x the
/// same minor version.
fn compatible(import: &str, allowed: &str) -> bool {
    let split = |s: &str| -> Option<(String, Vec<u64>)> {
        let (name, version) = s.split_once('@')?;
        Some((
            name.to_string(),
            version
                .split('.')
                .map(|p| p.parse().unwrap_or(u64::MAX))
                .collect(),
        ))
    };
    match (split(import), split(allowed)) {
        (Some((a, va)), Some((b, vb))) if a == b && va.len() == 3 && vb.len() == 3 => {
            va[0] == vb[0]
                && if va[0] == 0 {
                    va[1] == vb[1] && va[2] <= vb[2]
                } else {
                    (va[1], va[2]) <= (vb[1], vb[2])
                }
        }
        _ => import == allowed,
    }
}

/// Imports of `component` that the world does not allow.
fn disallowed_imports(
    engine: &Engine,
    component: &Component,
    allowed: &BTreeSet<String>,
) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| !allowed.iter().any(|a| compatible(name, a)))
        .collect()
}

fn app_components() -> Result<Vec<(String, PathBuf)>> {
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("spin.toml"))?)?;
    let components = manifest
        .get("component")
        .and_then(|c| c.as_table())
        .context("no components in spin.toml")?;
    components
        .iter()
        .map(|(id, c)| {
            let source = c
                .get("source")
                .and_then(|s| s.as_str())
                .context("component without source")?;
            Ok((id.clone(), root().join(source)))
        })
        .collect()
}

#[test]
fn every_app_component_exports_the_handler_and_imports_only_the_world() -> Result<()> {
    let engine = engine()?;
    let allowed = world_imports()?;
    let components = app_components()?;
    assert!(!components.is_empty());
    for (id, path) in components {
        let bytes = std::fs::read(&path)
            .with_context(|| format!("`{id}`: {} missing: run scripts/build", path.display()))?;
        let component = Component::new(&engine, &bytes)?;
        let exports: Vec<String> = component
            .component_type()
            .exports(&engine)
            .map(|(n, _)| n.to_string())
            .collect();
        assert!(
            exports.iter().any(|e| e == "wasi:http/handler@0.3.0"),
            "`{id}` exports {exports:?}"
        );
        let extra = disallowed_imports(&engine, &component, &allowed);
        assert!(
            extra.is_empty(),
            "`{id}` imports outside the gatehouse world: {extra:?}"
        );
    }
    Ok(())
}

/// Each test component's world: what it must export, and what it may
/// import beyond the `gatehouse:platform/component` world. A new crate
/// under tests/components must add its line.
const TEST_COMPONENTS: &[(&str, &[&str], &[&str])] = &[
    ("bare", &["wasi:http/handler@0.3.0"], &[]),
    ("probe", &["wasi:http/handler@0.3.0"], &[]),
    ("principal-echo", &["wasi:http/handler@0.3.0"], &[]),
    // Middleware: the next handler is an import (`wasi:http/middleware`).
    (
        "mw-gate",
        &["wasi:http/handler@0.3.0"],
        &["wasi:http/handler@0.3.0"],
    ),
    (
        "mw-tag",
        &["wasi:http/handler@0.3.0"],
        &["wasi:http/handler@0.3.0"],
    ),
    (
        "relay",
        &["wasi:http/handler@0.3.0"],
        &["wasi:http/handler@0.3.0"],
    ),
    // A library component: no handler of its own.
    ("greeter", &["gatehouse:fixture/greet@0.1.0"], &[]),
    (
        "greeted",
        &["wasi:http/handler@0.3.0"],
        &["gatehouse:fixture/greet@0.1.0"],
    ),
    // Protected by importing gatehouse:client.
    (
        "client-notes",
        &["wasi:http/handler@0.3.0"],
        GATEHOUSE_CLIENT,
    ),
];

/// The interfaces of the `gatehouse:client` package (wit/client).
const GATEHOUSE_CLIENT: &[&str] = &[
    "gatehouse:client/types@0.1.0",
    "gatehouse:client/verify@0.1.0",
    "gatehouse:client/authz@0.1.0",
    "gatehouse:client/quota@0.1.0",
];

/// `name`'s .wasm exports exactly `exports` and imports nothing beyond
/// `world` and `extra`, each of `extra` included.
fn keeps_to_its_world(
    engine: &Engine,
    world: &BTreeSet<String>,
    name: &str,
    exports: &[&str],
    extra: &[&str],
) -> Result<()> {
    let path = gatehouse_tests::wasm(&name.replace('-', "_"))?;
    let component = Component::new(engine, std::fs::read(&path)?)?;
    let exported: BTreeSet<String> = component
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_string())
        .collect();
    let wanted: BTreeSet<String> = exports.iter().map(|e| e.to_string()).collect();
    assert_eq!(exported, wanted, "`{name}` exports");
    let mut allowed = world.clone();
    allowed.extend(extra.iter().map(|e| e.to_string()));
    let outside = disallowed_imports(engine, &component, &allowed);
    assert!(
        outside.is_empty(),
        "`{name}` imports outside its world: {outside:?}"
    );
    for import in extra {
        assert!(
            component
                .component_type()
                .imports(engine)
                .any(|(n, _)| n == *import),
            "`{name}` does not import {import}"
        );
    }
    Ok(())
}

/// Test components built from Python by componentize-py (scripts/test):
/// `exports` is its pre-initialisation hook, beside the handler.
const PYTHON_COMPONENTS: &[(&str, &[&str], &[&str])] =
    &[("guarded-py", &["exports", "wasi:http/handler@0.3.0"], &[])];

#[test]
fn every_python_test_component_keeps_to_its_listed_world() -> Result<()> {
    let engine = engine()?;
    let world = world_imports()?;
    for (name, exports, extra) in PYTHON_COMPONENTS {
        keeps_to_its_world(&engine, &world, name, exports, extra)?;
    }
    Ok(())
}

#[test]
fn every_test_component_keeps_to_its_listed_world() -> Result<()> {
    let engine = engine()?;
    let world = world_imports()?;
    let mut dirs = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("tests/components"))? {
        dirs.insert(entry?.file_name().to_string_lossy().to_string());
    }
    let listed: BTreeSet<String> = TEST_COMPONENTS
        .iter()
        .map(|(n, _, _)| n.to_string())
        .collect();
    assert_eq!(dirs, listed, "tests/components and TEST_COMPONENTS differ");
    for (name, exports, extra) in TEST_COMPONENTS {
        keeps_to_its_world(&engine, &world, name, exports, extra)?;
    }
    Ok(())
}

#[test]
fn a_component_reaching_beyond_the_world_is_caught() -> Result<()> {
    let engine = engine()?;
    let allowed = world_imports()?;
    let component = Component::new(
        &engine,
        r#"(component (import "spin:mqtt/mqtt@3.0.0" (instance)) (import "wasi:io/poll@0.2.6" (instance)))"#,
    )?;
    assert_eq!(
        disallowed_imports(&engine, &component, &allowed),
        vec!["spin:mqtt/mqtt@3.0.0".to_string()]
    );
    Ok(())
}

#[test]
fn semver_rules_follow_the_component_model() {
    assert!(compatible("wasi:io/poll@0.2.6", "wasi:io/poll@0.2.12"));
    assert!(!compatible("wasi:io/poll@0.3.0", "wasi:io/poll@0.2.12"));
    assert!(!compatible("wasi:io/poll@0.2.13", "wasi:io/poll@0.2.12"));
    assert!(compatible(
        "spin:sqlite/sqlite@3.0.0",
        "spin:sqlite/sqlite@3.1.0"
    ));
    assert!(!compatible(
        "spin:sqlite/sqlite@3.1.0",
        "spin:sqlite/sqlite@3.0.0"
    ));
}

/// Components under components/ that Gatehouse ships for other apps'
/// spin.toml, not its own: HTTP middleware, whose next handler is an import.
const MIDDLEWARE_COMPONENTS: &[&str] = &["guard"];

#[test]
fn every_middleware_component_keeps_to_the_world_and_imports_the_next_handler() -> Result<()> {
    let engine = engine()?;
    let mut allowed = world_imports()?;
    allowed.insert("wasi:http/handler@0.3.0".to_string());
    for name in MIDDLEWARE_COMPONENTS {
        let path = gatehouse_tests::wasm(&name.replace('-', "_"))?;
        let component = Component::new(&engine, std::fs::read(&path)?)?;
        let ty = component.component_type();
        let exported: Vec<String> = ty.exports(&engine).map(|(n, _)| n.to_string()).collect();
        assert_eq!(exported, ["wasi:http/handler@0.3.0"], "`{name}` exports");
        assert!(
            ty.imports(&engine)
                .any(|(n, _)| n == "wasi:http/handler@0.3.0"),
            "`{name}` does not import the next handler"
        );
        let outside = disallowed_imports(&engine, &component, &allowed);
        assert!(
            outside.is_empty(),
            "`{name}` imports outside its world: {outside:?}"
        );
    }
    Ok(())
}

/// Library components Gatehouse ships for other apps' spin.toml
/// (`[component.x.dependencies]`): what each exports.
const LIBRARY_COMPONENTS: &[(&str, &[&str])] = &[("client-component", GATEHOUSE_CLIENT)];

#[test]
fn every_library_component_exports_its_package_and_keeps_to_the_world() -> Result<()> {
    let engine = engine()?;
    let allowed = world_imports()?;
    for (name, exports) in LIBRARY_COMPONENTS {
        let path = gatehouse_tests::wasm(&name.replace('-', "_"))?;
        let component = Component::new(&engine, std::fs::read(&path)?)?;
        let exported: BTreeSet<String> = component
            .component_type()
            .exports(&engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let wanted: BTreeSet<String> = exports.iter().map(|e| e.to_string()).collect();
        assert_eq!(exported, wanted, "`{name}` exports");
        let outside = disallowed_imports(&engine, &component, &allowed);
        assert!(
            outside.is_empty(),
            "`{name}` imports outside its world: {outside:?}"
        );
    }
    Ok(())
}

/// Guest crates under components/ are exactly the components spin.toml
/// names, the middleware and the library components.
#[test]
fn component_crates_and_spin_toml_agree() -> Result<()> {
    let mut crates = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("components"))? {
        let dir = entry?.path();
        // `components/lib/` holds the library crates components link.
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let cargo: toml::Table = toml::from_str(&manifest)?;
        let is_cdylib = cargo
            .get("lib")
            .and_then(|l| l.get("crate-type"))
            .and_then(|t| t.as_array())
            .is_some_and(|t| t.iter().any(|v| v.as_str() == Some("cdylib")));
        if is_cdylib {
            crates.insert(
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string(),
            );
        }
    }
    let mut named: BTreeSet<String> = app_components()?.into_iter().map(|(id, _)| id).collect();
    named.extend(MIDDLEWARE_COMPONENTS.iter().map(|m| m.to_string()));
    named.extend(LIBRARY_COMPONENTS.iter().map(|(l, _)| l.to_string()));
    assert_eq!(crates, named);
    for (id, path) in app_components()? {
        assert_eq!(
            path,
            root().join(format!(
                "target/wasm32-wasip2/release/{}.wasm",
                id.replace('-', "_")
            ))
        );
    }
    Ok(())
}

/// The spin-sdk crate's source as cargo unpacked it: the version pinned in
/// the workspace, under `$CARGO_HOME/registry/src/<index>/`.
fn spin_sdk_dir() -> Result<PathBuf> {
    let workspace: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml"))?)?;
    let version = workspace["workspace"]["dependencies"]["spin-sdk"]["version"]
        .as_str()
        .context("spin-sdk version in [workspace.dependencies]")?
        .trim_start_matches('=')
        .to_string();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("no CARGO_HOME or HOME")?;
    for index in std::fs::read_dir(cargo_home.join("registry/src"))? {
        let candidate = index?.path().join(format!("spin-sdk-{version}"));
        if candidate.join("wit").is_dir() {
            return Ok(candidate);
        }
    }
    bail!(
        "spin-sdk {version} sources not found under {}",
        cargo_home.display()
    )
}

fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(files_under(&path)?);
        } else {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

#[test]
fn vendored_wit_matches_the_spin_sdk_crate() -> Result<()> {
    let sdk = spin_sdk_dir()?.join("wit");
    let ours = root().join("wit/deps");
    for file in files_under(&sdk.join("deps"))? {
        let rel = file.strip_prefix(sdk.join("deps"))?;
        let vendored = std::fs::read(ours.join(rel))
            .with_context(|| format!("wit/deps/{} is missing", rel.display()))?;
        if vendored != std::fs::read(&file)? {
            bail!("wit/deps/{} differs from spin-sdk's copy", rel.display());
        }
    }
    assert_eq!(
        std::fs::read(ours.join("spin-sdk.wit"))?,
        std::fs::read(sdk.join("sdk.wit"))?
    );
    Ok(())
}
