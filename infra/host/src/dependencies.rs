//! Spin 4.1's component dependencies in `spin.toml`: HTTP middleware on a
//! trigger (`dependencies.middleware = [...]`) and the WIT imports of a
//! component satisfied by other components (`[component.<id>.dependencies]`).
//!
//! Only local sources are supported (`{ component = "id" }` and
//! `{ path = "x.wasm" }`); a registry or URL source is refused by name
//! rather than ignored, so a manifest never loads without the middleware it
//! asks for.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where a dependency's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencySource {
    /// A `.wasm` file (absolute, resolved against the manifest's directory).
    Path(PathBuf),
    /// Another `[component.<id>]` of the app; its `source` is used.
    Component(String),
}

/// The configuration a dependency may use: the depending component's
/// grants and variables, as far as `inherit_configuration` allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inherit {
    /// `inherit_configuration = true`.
    All,
    /// A list of keys (`false` or absent is the empty list).
    Only(BTreeSet<String>),
}

impl Inherit {
    /// Whether configuration `key` (`variables`, `key_value_stores`, ...) is inherited.
    pub fn allows(&self, key: &str) -> bool {
        match self {
            Inherit::All => true,
            Inherit::Only(keys) => keys.contains(key),
        }
    }
}

/// One middleware entry or component dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// Where its component comes from.
    pub source: DependencySource,
    /// The dependency's export to plug in, when it differs from the import name.
    pub export: Option<String>,
    /// What it inherits from the component it serves.
    pub inherit: Inherit,
}

/// A `[component.<id>.dependencies]` key: `ns:pkg`, `ns:pkg@ver`,
/// `ns:pkg/iface` or `ns:pkg/iface@ver`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DependencyName {
    /// `ns:pkg`.
    pub package: String,
    /// The interface, when the key names one.
    pub interface: Option<String>,
    /// The version, when the key names one; it must equal the import's.
    pub version: Option<String>,
}

impl std::fmt::Display for DependencyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.package)?;
        if let Some(interface) = &self.interface {
            write!(f, "/{interface}")?;
        }
        if let Some(version) = &self.version {
            write!(f, "@{version}")?;
        }
        Ok(())
    }
}

impl DependencyName {
    /// Parses a dependency key; a plain kebab name (which Spin resolves
    /// through a registry `package`) is refused.
    pub fn parse(key: &str) -> Result<DependencyName> {
        let (name, version) = match key.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (key, None),
        };
        let (package, interface) = match name.split_once('/') {
            Some((package, interface)) => (package, Some(interface)),
            None => (name, None),
        };
        let Some((namespace, pkg)) = package.split_once(':') else {
            bail!(
                "dependency `{key}`: a plain name needs a registry package, which this host does not support; name the import as `ns:pkg/interface@version`"
            );
        };
        let kebab = |s: &str| {
            !s.is_empty()
                && s.split('-').all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
        };
        if !kebab(namespace) || !kebab(pkg) || !interface.is_none_or(kebab) {
            bail!("dependency `{key}` is not a valid `ns:pkg/interface@version` name");
        }
        if let Some(v) = version
            && (v.is_empty()
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-+".contains(&b)))
        {
            bail!("dependency `{key}` has an invalid version");
        }
        Ok(DependencyName {
            package: package.to_string(),
            interface: interface.map(str::to_string),
            version: version.map(str::to_string),
        })
    }

    /// Whether a component import named `import` is one this key satisfies:
    /// same package, the same interface when the key names one, and the
    /// same version, exactly, when the key names one.
    pub fn matches(&self, import: &str) -> bool {
        let (name, version) = match import.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (import, None),
        };
        let Some((package, interface)) = name.split_once('/') else {
            return false;
        };
        package == self.package
            && self.interface.as_deref().is_none_or(|i| i == interface)
            && self.version.as_deref().is_none_or(|v| Some(v) == version)
    }
}

/// A dependency as written in `spin.toml`, every source Spin knows, so an
/// unsupported one is refused by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDependency {
    component: Option<String>,
    path: Option<String>,
    url: Option<String>,
    digest: Option<String>,
    registry: Option<String>,
    package: Option<String>,
    version: Option<String>,
    export: Option<String>,
    inherit_configuration: Option<RawInherit>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawInherit {
    All(bool),
    Only(Vec<String>),
}

/// What a dependency is written for: middleware entries take no `export`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Middleware,
    Import,
}

/// Parses one dependency value; `what` names it in errors.
pub(crate) fn parse_dependency(
    what: &str,
    value: toml::Value,
    role: Role,
    base_dir: &Path,
) -> Result<(Dependency, bool)> {
    if let toml::Value::String(version) = &value {
        bail!(
            "{what}: registry dependencies (`\"{version}\"`) are not supported by this host; use `{{ path = \"...\" }}` or `{{ component = \"...\" }}`"
        );
    }
    let raw: RawDependency = value
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("{what}: {}", e.message().trim()))?;
    if raw.url.is_some() || raw.digest.is_some() {
        bail!("{what}: `url` dependencies are not supported by this host");
    }
    if raw.registry.is_some() || raw.package.is_some() || raw.version.is_some() {
        bail!("{what}: registry dependencies (`package`/`version`) are not supported by this host");
    }
    if role == Role::Middleware && raw.export.is_some() {
        bail!("{what}: middleware takes no `export`");
    }
    let source = match (raw.component, raw.path) {
        (Some(id), None) => DependencySource::Component(id),
        (None, Some(path)) => DependencySource::Path(base_dir.join(path)),
        _ => bail!("{what}: give exactly one of `component` or `path`"),
    };
    let explicit = raw.inherit_configuration.is_some();
    let inherit = match raw.inherit_configuration {
        Some(RawInherit::All(true)) => Inherit::All,
        Some(RawInherit::All(false)) | None => Inherit::Only(BTreeSet::new()),
        Some(RawInherit::Only(keys)) => Inherit::Only(keys.into_iter().collect()),
    };
    Ok((
        Dependency {
            source,
            export: raw.export,
            inherit,
        },
        explicit,
    ))
}

/// Parses a trigger's `dependencies` table: only `middleware` is allowed.
pub(crate) fn parse_middleware(
    component: &str,
    table: toml::Table,
    base_dir: &Path,
) -> Result<Vec<Dependency>> {
    let mut middleware = Vec::new();
    for (key, value) in table {
        if key != "middleware" {
            bail!("the HTTP trigger's only allowed trigger dependency is `middleware`");
        }
        let toml::Value::Array(entries) = value else {
            bail!(
                "trigger for component `{component}`: `dependencies.middleware` must be an array"
            );
        };
        for (index, entry) in entries.into_iter().enumerate() {
            let what = format!("trigger for component `{component}`: middleware {index}");
            middleware.push(parse_dependency(&what, entry, Role::Middleware, base_dir)?.0);
        }
    }
    Ok(middleware)
}

/// Parses `[component.<id>.dependencies]`, applying the component-level
/// `dependencies_inherit_configuration` where no entry sets its own.
pub(crate) fn parse_component_dependencies(
    id: &str,
    table: toml::Table,
    inherit_all: Option<bool>,
    base_dir: &Path,
) -> Result<Vec<(DependencyName, Dependency)>> {
    let mut out: Vec<(DependencyName, Dependency)> = Vec::new();
    let mut any_explicit = false;
    for (key, value) in table {
        let name = DependencyName::parse(&key).with_context(|| format!("component `{id}`"))?;
        let what = format!("component `{id}`: dependency `{key}`");
        let (mut dependency, explicit) = parse_dependency(&what, value, Role::Import, base_dir)?;
        if name.interface.is_none() && dependency.export.is_some() {
            bail!("{what}: a package-wide dependency cannot name an `export`");
        }
        any_explicit |= explicit;
        if inherit_all == Some(true) {
            dependency.inherit = Inherit::All;
        }
        out.push((name, dependency));
    }
    if any_explicit && inherit_all.is_some() {
        bail!(
            "Component `{id}` specifies both `dependencies_inherit_configuration` and per-dependency `inherit_configuration`. These are mutually exclusive; use one or the other."
        );
    }
    for (i, (a, _)) in out.iter().enumerate() {
        for (b, _) in &out[i + 1..] {
            let overlap = a.package == b.package
                && (a.interface.is_none() || b.interface.is_none() || a.interface == b.interface);
            if overlap {
                bail!("component `{id}`: dependencies `{a}` and `{b}` overlap");
            }
        }
    }
    Ok(out)
}

/// Checks every `{ component = "id" }` reference: the component exists and
/// declares no resources or permissions of its own (it runs with those of
/// the component it serves), as Spin's manifest normalization requires.
pub(crate) fn check_references(app: &crate::manifest::App) -> Result<()> {
    let check = |dependency: &Dependency, depender: &str| -> Result<()> {
        let DependencySource::Component(id) = &dependency.source else {
            return Ok(());
        };
        let Some(decl) = app.components.get(id) else {
            bail!("dependency ID {id} does not exist");
        };
        if !decl.declared.is_empty() {
            bail!(
                "Dependencies may not have their own resources or permissions. Component {id} cannot be used as a dependency of {depender} because it specifies: {}",
                decl.declared.join(", ")
            );
        }
        Ok(())
    };
    for trigger in &app.triggers {
        for middleware in &trigger.middleware {
            check(middleware, &trigger.id)?;
        }
        let shared = app
            .triggers
            .iter()
            .filter(|t| t.component == trigger.component)
            .count();
        if !trigger.middleware.is_empty() && shared > 1 {
            // Spin serves such a trigger from a copy of the component made
            // for it; this host does not make copies, and says so.
            bail!(
                "trigger `{}`: component `{}` is named by {shared} triggers and this one has middleware; this host composes middleware only into a component that a single trigger names",
                trigger.id,
                trigger.component
            );
        }
    }
    for (id, decl) in &app.components {
        for (_, dependency) in &decl.dependencies {
            check(dependency, id)?;
        }
    }
    Ok(())
}

/// The `.wasm` file of a dependency: its own path, or the source of the
/// component it names (checked to exist when the manifest was parsed).
pub fn source_of(app: &crate::manifest::App, dependency: &Dependency) -> Result<PathBuf> {
    match &dependency.source {
        DependencySource::Path(path) => Ok(path.clone()),
        DependencySource::Component(id) => app
            .components
            .get(id)
            .map(|c| c.source.clone())
            .with_context(|| format!("dependency ID {id} does not exist")),
    }
}

/// Spin's id for a trigger written without one: `<component>-http-trigger`,
/// or `http-trigger<n>` when that is taken.
pub(crate) fn spin_trigger_id(
    component: &str,
    taken: &mut std::collections::BTreeSet<String>,
) -> String {
    let candidate = format!("{component}-http-trigger");
    if taken.insert(candidate.clone()) {
        return candidate;
    }
    let mut counter = 1;
    loop {
        let id = format!("http-trigger{counter}");
        if taken.insert(id.clone()) {
            return id;
        }
        counter += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_names_match_imports_by_package_interface_and_exact_version() -> Result<()> {
        let exact = DependencyName::parse("gatehouse:fixture/greet@0.1.0")?;
        assert!(exact.matches("gatehouse:fixture/greet@0.1.0"));
        assert!(!exact.matches("gatehouse:fixture/greet@0.1.1"));
        assert!(!exact.matches("gatehouse:fixture/greet"));
        assert!(!exact.matches("gatehouse:fixture/other@0.1.0"));
        let package = DependencyName::parse("gatehouse:fixture")?;
        assert!(package.matches("gatehouse:fixture/greet@0.1.0"));
        assert!(package.matches("gatehouse:fixture/other"));
        assert!(!package.matches("gatehouse:client/verify@0.1.0"));
        Ok(())
    }

    #[test]
    fn plain_names_and_registry_sources_are_refused_by_name() {
        assert!(DependencyName::parse("greet").is_err());
        let err = parse_dependency(
            "d",
            toml::Value::String(">=0.1".into()),
            Role::Import,
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("registry"), "{err}");
        let url: toml::Value = toml::from_str::<toml::Table>(
            r#"v = { url = "https://x/y.wasm", digest = "sha256:0" }"#,
        )
        .map(|mut t| t.remove("v").unwrap_or(toml::Value::Boolean(false)))
        .unwrap_or(toml::Value::Boolean(false));
        let err = parse_dependency("d", url, Role::Middleware, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`url`"), "{err}");
    }

    #[test]
    fn middleware_keeps_its_order_and_triggers_get_spins_ids() -> Result<()> {
        let text = r#"
spin_manifest_version = 2
[application]
name = "t"
[[trigger.http]]
route = "/..."
component = "app"
dependencies.middleware = [{ component = "guard", inherit_configuration = ["variables"] }, { path = "log.wasm" }]
[[trigger.http]]
id = "app-http-trigger"
route = { private = true }
component = "other"
[component.app]
source = "app.wasm"
[component.other]
source = "other.wasm"
[component.guard]
source = "guard.wasm"
"#;
        let app = crate::manifest::App::parse(text, Path::new("/a"))?;
        assert_eq!(app.triggers[0].id, "http-trigger1");
        assert_eq!(app.triggers[1].id, "app-http-trigger");
        let middleware = &app.triggers[0].middleware;
        assert_eq!(
            middleware[0].source,
            DependencySource::Component("guard".into())
        );
        assert!(middleware[0].inherit.allows("variables"));
        assert!(!middleware[0].inherit.allows("key_value_stores"));
        assert_eq!(source_of(&app, &middleware[1])?, Path::new("/a/log.wasm"));
        Ok(())
    }

    #[test]
    fn both_inherit_settings_on_one_component_are_refused() -> Result<()> {
        let table: toml::Table = toml::from_str(
            r#""a:b/c@1.0.0" = { path = "c.wasm", inherit_configuration = ["variables"] }"#,
        )?;
        let err = parse_component_dependencies("app", table, Some(true), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("mutually exclusive"), "{err}");
        Ok(())
    }
}
