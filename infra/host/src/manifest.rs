//! `spin.toml` (manifest version 2): parsed and validated into an [`App`].
//!
//! Only what the host acts on is modelled; unknown keys that Spin itself
//! accepts (build settings, descriptions) are ignored, so a manifest that
//! `spin up` runs also loads here. Every error names the offending item.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::dependencies::{self, Dependency, DependencyName};
use crate::outbound::AllowedHost;
use crate::routes::Route;
use crate::variables::Template;

/// A loaded application: what to run and with which grants.
#[derive(Debug, Clone)]
pub struct App {
    /// `[application] name`.
    pub name: String,
    /// Directory holding the manifest; component sources are relative to it.
    pub base_dir: PathBuf,
    /// `[variables]`: application variables by name.
    pub variables: BTreeMap<String, VariableDecl>,
    /// `[[trigger.http]]` in manifest order.
    pub triggers: Vec<HttpTrigger>,
    /// `[component.<id>]` by id.
    pub components: BTreeMap<String, ComponentDecl>,
}

/// An application variable declaration.
#[derive(Debug, Clone, Default)]
pub struct VariableDecl {
    /// Value used when no provider supplies one.
    pub default: Option<String>,
    /// Loading fails when no value can be found.
    pub required: bool,
    /// The value is never logged.
    pub secret: bool,
}

/// One HTTP trigger: a route bound to a component.
#[derive(Debug, Clone)]
pub struct HttpTrigger {
    /// Parsed route; `None` for private (internal-only) components.
    pub route: Option<Route>,
    /// Component id.
    pub component: String,
    /// The trigger's id: as written, or as Spin names it
    /// (`<component>-http-trigger`).
    pub id: String,
    /// `dependencies.middleware`: outermost (first to see the request) first.
    pub middleware: Vec<Dependency>,
}

/// A component's declaration.
#[derive(Debug, Clone)]
pub struct ComponentDecl {
    /// Absolute path of the `.wasm` file.
    pub source: PathBuf,
    /// `allowed_outbound_hosts`: patterns, and templates rendered at load.
    pub allowed_outbound_hosts: Vec<AllowedHost>,
    /// Granted key-value store labels.
    pub key_value_stores: Vec<String>,
    /// Granted SQLite database labels.
    pub sqlite_databases: Vec<String>,
    /// `[component.<id>.variables]`: name -> template over app variables.
    pub variables: BTreeMap<String, Template>,
    /// `[component.<id>.dependencies]`: imports satisfied by other components.
    pub dependencies: Vec<(DependencyName, Dependency)>,
    /// The resource and permission keys it declares, in Spin's order (a
    /// component serving as a dependency may declare none).
    pub declared: Vec<&'static str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    id: Option<String>,
    route: RawRoute,
    component: String,
    dependencies: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    dependencies: Option<toml::Table>,
    dependencies_inherit_configuration: Option<bool>,
    // Not acted on by this host, but a dependency may not declare them.
    ai_models: Option<toml::Value>,
    allowed_http_hosts: Option<toml::Value>,
    environment: Option<toml::Value>,
    files: Option<toml::Value>,
}

impl App {
    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> Result<App> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir
        };
        Self::parse(&text, &base_dir)
            .with_context(|| format!("invalid manifest {}", path.display()))
    }

    /// Parses manifest text; `base_dir` resolves relative component sources.
    pub fn parse(text: &str, base_dir: &Path) -> Result<App> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            // toml's Display spans several lines; the load error must be one.
            anyhow::anyhow!("{}", e.message().trim())
        })?;
        match raw.spin_manifest_version {
            toml::Value::Integer(2) => {}
            ref other => bail!("spin_manifest_version must be 2, found {other}"),
        }
        let mut variables = BTreeMap::new();
        for (name, v) in raw.variables {
            check_variable_name(&name)?;
            if v.required && v.default.is_some() {
                bail!("variable `{name}` cannot be both required and have a default");
            }
            variables.insert(
                name,
                VariableDecl {
                    default: v.default,
                    required: v.required,
                    secret: v.secret,
                },
            );
        }
        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            let decl = parse_component(&id, c, base_dir, &variables)?;
            components.insert(id, decl);
        }
        let mut triggers = Vec::new();
        let mut seen_routes = BTreeMap::new();
        let mut trigger_ids = std::collections::BTreeSet::new();
        for t in &raw.trigger.http {
            if let Some(id) = &t.id {
                trigger_ids.insert(id.clone());
            }
        }
        for t in raw.trigger.http {
            if !components.contains_key(&t.component) {
                bail!(
                    "trigger route for component `{}` names a component that is not defined",
                    t.component
                );
            }
            let route = match t.route {
                RawRoute::Path(p) => {
                    let route = Route::parse(&p)
                        .with_context(|| format!("component `{}`: route `{p}`", t.component))?;
                    if let Some(other) = seen_routes.insert(p.clone(), t.component.clone()) {
                        bail!(
                            "route `{p}` is bound to both `{other}` and `{}`",
                            t.component
                        );
                    }
                    Some(route)
                }
                RawRoute::Private { private: true } => None,
                RawRoute::Private { private: false } => {
                    bail!(
                        "component `{}`: route must be a path or {{ private = true }}",
                        t.component
                    )
                }
            };
            let middleware = match t.dependencies {
                Some(table) => dependencies::parse_middleware(&t.component, table, base_dir)?,
                None => Vec::new(),
            };
            let id = match t.id {
                Some(id) => id,
                None => dependencies::spin_trigger_id(&t.component, &mut trigger_ids),
            };
            triggers.push(HttpTrigger {
                route,
                component: t.component,
                id,
                middleware,
            });
        }
        let app = App {
            name: raw.application.name,
            base_dir: base_dir.to_path_buf(),
            variables,
            triggers,
            components,
        };
        dependencies::check_references(&app)?;
        Ok(app)
    }

    /// Every store label granted to any component.
    pub fn key_value_labels(&self) -> impl Iterator<Item = &str> {
        self.components
            .values()
            .flat_map(|c| c.key_value_stores.iter().map(String::as_str))
    }

    /// Every database label granted to any component.
    pub fn sqlite_labels(&self) -> impl Iterator<Item = &str> {
        self.components
            .values()
            .flat_map(|c| c.sqlite_databases.iter().map(String::as_str))
    }
}

fn parse_component(
    id: &str,
    c: RawComponent,
    base_dir: &Path,
    variables: &BTreeMap<String, VariableDecl>,
) -> Result<ComponentDecl> {
    check_component_id(id)?;
    let source = match c.source {
        toml::Value::String(s) => base_dir.join(s),
        _ => bail!("component `{id}`: only a local file `source` is supported by this host"),
    };
    let mut allowed_outbound_hosts = Vec::new();
    for text in &c.allowed_outbound_hosts {
        let entry = AllowedHost::parse(text)
            .with_context(|| format!("component `{id}`: allowed_outbound_hosts entry `{text}`"))?;
        if let Some(reference) = entry
            .references()
            .into_iter()
            .find(|r| !variables.contains_key(*r))
        {
            bail!(
                "component `{id}`: allowed_outbound_hosts entry `{text}` refers to undefined application variable `{reference}`"
            );
        }
        allowed_outbound_hosts.push(entry);
    }
    let mut templates = BTreeMap::new();
    for (name, text) in c.variables {
        check_variable_name(&name).with_context(|| format!("component `{id}`"))?;
        let template = Template::parse(&text)
            .with_context(|| format!("component `{id}`: variable `{name}`"))?;
        for reference in template.references() {
            if !variables.contains_key(reference) {
                bail!(
                    "component `{id}`: variable `{name}` refers to undefined application variable `{reference}`"
                );
            }
        }
        templates.insert(name, template);
    }
    let dependencies = match c.dependencies {
        Some(table) => dependencies::parse_component_dependencies(
            id,
            table,
            c.dependencies_inherit_configuration,
            base_dir,
        )?,
        None => Vec::new(),
    };
    let present = |v: &Option<toml::Value>| match v {
        None => false,
        Some(toml::Value::Array(a)) => !a.is_empty(),
        Some(toml::Value::Table(t)) => !t.is_empty(),
        Some(_) => true,
    };
    let declared = [
        ("ai_models", present(&c.ai_models)),
        ("allowed_http_hosts", present(&c.allowed_http_hosts)),
        ("allowed_outbound_hosts", !allowed_outbound_hosts.is_empty()),
        ("dependencies", !dependencies.is_empty()),
        ("environment", present(&c.environment)),
        ("files", present(&c.files)),
        ("key_value_stores", !c.key_value_stores.is_empty()),
        ("sqlite_databases", !c.sqlite_databases.is_empty()),
        ("variables", !templates.is_empty()),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect();
    Ok(ComponentDecl {
        source,
        allowed_outbound_hosts,
        key_value_stores: c.key_value_stores,
        sqlite_databases: c.sqlite_databases,
        variables: templates,
        dependencies,
        declared,
    })
}

fn check_component_id(id: &str) -> Result<()> {
    let ok = id.split('-').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }) && id.as_bytes().first().is_some_and(u8::is_ascii_lowercase);
    if !ok {
        bail!("component id `{id}` must be lower-kebab-case (a-z, 0-9, '-')");
    }
    Ok(())
}

/// Spin variable names: lowercase letters, digits and underscores, starting with a letter.
pub fn check_variable_name(name: &str) -> Result<()> {
    let ok = name.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        bail!(
            "variable name `{name}` must be lowercase letters, digits and '_', starting with a letter"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
greeting = { default = "hi" }
token = { required = true, secret = true }
[[trigger.http]]
route = "/a/..."
component = "a"
[[trigger.http]]
route = { private = true }
component = "b"
[component.a]
source = "a.wasm"
allowed_outbound_hosts = ["http://b.spin.internal"]
key_value_stores = ["default"]
[component.a.variables]
message = "{{ greeting }}, world"
[component.b]
source = "b.wasm"
"#;

    #[test]
    fn parses_routes_components_and_variables() -> Result<()> {
        let app = App::parse(MINIMAL, Path::new("/app"))?;
        assert_eq!(app.name, "t");
        assert_eq!(app.triggers.len(), 2);
        assert!(app.triggers[1].route.is_none());
        assert_eq!(app.components["a"].source, Path::new("/app/a.wasm"));
        assert!(app.variables["token"].required && app.variables["token"].secret);
        Ok(())
    }

    #[test]
    fn rejects_a_trigger_for_an_undefined_component() {
        let text = MINIMAL.replace("component = \"b\"", "component = \"c\"");
        let err = App::parse(&text, Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("`c`"), "{err}");
    }

    #[test]
    fn rejects_a_reference_to_an_undefined_variable() {
        let text = MINIMAL.replace("{{ greeting }}", "{{ nope }}");
        let err = App::parse(&text, Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("`nope`"), "{err}");
    }

    #[test]
    fn outbound_host_templates_must_name_declared_variables() -> Result<()> {
        let text = MINIMAL.replace(
            "allowed_outbound_hosts = [\"http://b.spin.internal\"]",
            "allowed_outbound_hosts = [\"{{ greeting }}\", \"https://{{ nope }}\"]",
        );
        let err = App::parse(&text, Path::new(".")).unwrap_err().to_string();
        assert!(
            err.contains("component `a`") && err.contains("`nope`"),
            "{err}"
        );
        let text = MINIMAL.replace("http://b.spin.internal", "{{ greeting }}");
        let app = App::parse(&text, Path::new("."))?;
        assert_eq!(
            app.components["a"].allowed_outbound_hosts[0].references(),
            vec!["greeting"]
        );
        Ok(())
    }

    #[test]
    fn rejects_wrong_manifest_version() {
        let text = MINIMAL.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(App::parse(&text, Path::new(".")).is_err());
    }

    #[test]
    fn rejects_duplicate_routes() {
        let text = MINIMAL.replace("route = { private = true }", "route = \"/a/...\"");
        let err = App::parse(&text, Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("bound to both"), "{err}");
    }

    #[test]
    fn reports_toml_syntax_errors_on_one_line() {
        let err = App::parse("spin_manifest_version = = 2", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\n'), "{err}");
    }
}
