//! Load-time composition, as Spin 4.1 does it with wac-graph: a
//! component's `[component.<id>.dependencies]` are plugged into its imports
//! first, then its trigger's middleware is chained in front of it (first
//! listed = outermost), each middleware importing and exporting
//! `wasi:http/handler@0.3.0`. The result is one component, linked and run
//! with the grants and variables of the component the trigger names.
//!
//! A dependency or middleware may use those grants only as far as its
//! `inherit_configuration` allows. Spin plugs a deny adapter into the other
//! capability imports, so a call fails at run time; this host refuses such
//! a component at load instead, naming the import and the key to inherit.

use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashSet;
use wac_graph::types::{ItemKind, Package, SubtypeChecker};
use wac_graph::{CompositionGraph, EncodeOptions};

use crate::dependencies::{DependencyName, Inherit};

/// The interface every middleware imports (the next handler) and exports.
pub(crate) const HANDLER: &str = "wasi:http/handler@0.3.0";

/// The capability keys of `inherit_configuration` this host enforces, and
/// the import names (prefixes) each one covers.
///
/// `environment` (`wasi:cli/environment`) and `files`
/// (`wasi:filesystem/preopens`) are not enforced: Rust's standard library
/// imports both in every component, and this host gives components no
/// preopened files.
const CAPABILITIES: &[(&str, &[&str])] = &[
    (
        "allowed_outbound_hosts",
        &[
            "wasi:http/client@",
            "wasi:http/outgoing-handler@",
            "wasi:sockets/",
            "spin:redis/",
            "spin:mysql/",
            "spin:postgres/",
            "spin:mqtt/",
            "fermyon:spin/redis",
            "fermyon:spin/mysql",
            "fermyon:spin/postgres",
            "fermyon:spin/mqtt",
        ],
    ),
    (
        "key_value_stores",
        &[
            "spin:key-value/",
            "wasi:keyvalue/",
            "fermyon:spin/key-value",
        ],
    ),
    ("sqlite_databases", &["spin:sqlite/", "fermyon:spin/sqlite"]),
    (
        "variables",
        &["spin:variables/", "wasi:config/", "fermyon:spin/variables"],
    ),
    ("ai_models", &["fermyon:spin/llm"]),
];

/// A middleware or dependency component, read from its source.
pub(crate) struct Part {
    /// How errors name it (`middleware 0 of trigger ...`).
    pub label: String,
    /// Its component binary.
    pub bytes: Vec<u8>,
    /// What it may use of the serving component's configuration.
    pub inherit: Inherit,
}

/// A component dependency: the key it was declared under, the export to
/// plug in when it is not the import's own name, and the component.
pub(crate) struct Plug {
    pub name: DependencyName,
    pub export: Option<String>,
    pub part: Part,
}

/// Refuses a part whose imports reach a capability it does not inherit.
fn check_capabilities(graph: &CompositionGraph, package: &Package, part: &Part) -> Result<()> {
    for import in graph.types()[package.ty()].imports.keys() {
        for (key, prefixes) in CAPABILITIES {
            if prefixes.iter().any(|p| import.starts_with(p)) && !part.inherit.allows(key) {
                bail!(
                    "{} imports `{import}`, which needs `inherit_configuration` to include \"{key}\" (this host refuses at load what Spin denies at run time)",
                    part.label
                );
            }
        }
    }
    Ok(())
}

/// Plugs `plugs` into the imports of component `id` (the `primary`
/// bytes) and re-exports everything it exports.
pub(crate) fn with_dependencies(id: &str, primary: Vec<u8>, plugs: Vec<Plug>) -> Result<Vec<u8>> {
    let mut graph = CompositionGraph::new();
    let package = Package::from_bytes("root:component", None, primary, graph.types_mut())
        .context("parsing primary component")?;
    let world = package.ty();
    let primary = graph.register_package(package)?;
    let imports: Vec<(String, ItemKind)> = graph.types()[world]
        .imports
        .iter()
        .map(|(name, kind)| (name.clone(), *kind))
        .collect();
    let exports: Vec<String> = graph.types()[world].exports.keys().cloned().collect();
    let instance = graph.instantiate(primary);
    let mut cache = HashSet::new();
    for (index, plug) in plugs.into_iter().enumerate() {
        let name = plug.name.to_string();
        let matched: Vec<&(String, ItemKind)> = imports
            .iter()
            .filter(|(import, _)| plug.name.matches(import))
            .collect();
        if matched.is_empty() {
            bail!("dependency '{name}' doesn't match any imports of component '{id}'");
        }
        let package = Package::from_bytes(
            &format!("dependency{index}"),
            None,
            plug.part.bytes.clone(),
            graph.types_mut(),
        )
        .with_context(|| format!("parsing dependency '{name}'"))?;
        check_capabilities(&graph, &package, &plug.part)?;
        let dep_world = package.ty();
        let dependency = graph.register_package(package)?;
        let dep_instance = graph.instantiate(dependency);
        for (import, import_kind) in matched {
            let export = plug.export.clone().unwrap_or_else(|| import.clone());
            let Some(export_kind) = graph.types()[dep_world].exports.get(&export).copied() else {
                bail!("dependency '{name}' doesn't export '{export}' to satisfy import '{import}'");
            };
            SubtypeChecker::new(&mut cache)
                .is_subtype(export_kind, graph.types(), *import_kind, graph.types())
                .map_err(|_| {
                    anyhow!(
                        "dependency '{name}' exports '{export}' which is not compatible with import '{import}'"
                    )
                })?;
            let alias = graph.alias_instance_export(dep_instance, &export)?;
            graph.set_instantiation_argument(instance, import, alias)?;
        }
    }
    for name in exports {
        let alias = graph.alias_instance_export(instance, &name)?;
        graph.export(alias, &name)?;
    }
    Ok(graph.encode(EncodeOptions::default())?)
}

/// Chains `middleware` (outermost first) in front of `primary`: each one's
/// `wasi:http/handler@0.3.0` import is the next one's export, and the
/// outermost export is the composition's only export.
pub(crate) fn with_middleware(primary: Vec<u8>, middleware: Vec<Part>) -> Result<Vec<u8>> {
    let mut graph = CompositionGraph::new();
    let mut packages = Vec::new();
    for (index, part) in middleware.iter().enumerate() {
        let package = Package::from_bytes(
            &format!("middleware{index}"),
            None,
            part.bytes.clone(),
            graph.types_mut(),
        )
        .context("parsing middleware component")?;
        check_capabilities(&graph, &package, part)?;
        packages.push(graph.register_package(package)?);
    }
    let package = Package::from_bytes("primary", None, primary, graph.types_mut())
        .context("parsing primary component")?;
    let primary = graph.register_package(package)?;
    // Innermost first: the handler, then each middleware around it.
    let instance = graph.instantiate(primary);
    let mut next = graph.alias_instance_export(instance, HANDLER)?;
    for &package in packages.iter().rev() {
        let instance = graph.instantiate(package);
        graph.set_instantiation_argument(instance, HANDLER, next)?;
        next = graph.alias_instance_export(instance, HANDLER)?;
    }
    graph.export(next, HANDLER)?;
    Ok(graph.encode(EncodeOptions::default())?)
}

/// Reads a `.wasm` file, with the hint every missing component gets.
fn read_source(what: &str, source: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(source).map_err(|e| {
        anyhow!(
            "{what}: cannot read source {} ({e}); build it first (scripts/build)",
            source.display()
        )
    })
}

/// The component the trigger of `id` runs: its source as built, or, when
/// it has dependencies or middleware, the composition of them all.
pub(crate) fn component_bytes(app: &crate::manifest::App, id: &str) -> Result<Vec<u8>> {
    let decl = &app.components[id];
    let mut bytes = read_source(&format!("component `{id}`"), &decl.source)?;
    if !decl.dependencies.is_empty() {
        let mut plugs = Vec::new();
        for (name, dependency) in &decl.dependencies {
            let label = format!("dependency '{name}' of component '{id}'");
            let source = crate::dependencies::source_of(app, dependency)?;
            plugs.push(Plug {
                name: name.clone(),
                export: dependency.export.clone(),
                part: Part {
                    bytes: read_source(&label, &source)?,
                    label,
                    inherit: dependency.inherit.clone(),
                },
            });
        }
        bytes = with_dependencies(id, bytes, plugs)
            .with_context(|| format!("failed to resolve dependencies for component \"{id}\""))?;
    }
    let Some(trigger) = app
        .triggers
        .iter()
        .find(|t| t.component == id && !t.middleware.is_empty())
    else {
        return Ok(bytes);
    };
    let mut parts = Vec::new();
    for (index, dependency) in trigger.middleware.iter().enumerate() {
        let label = format!("middleware {index} of trigger `{}`", trigger.id);
        let source = crate::dependencies::source_of(app, dependency)?;
        parts.push(Part {
            bytes: read_source(&label, &source)?,
            label,
            inherit: dependency.inherit.clone(),
        });
    }
    with_middleware(bytes, parts)
        .with_context(|| format!("trigger `{}`: cannot compose its middleware", trigger.id))
}
