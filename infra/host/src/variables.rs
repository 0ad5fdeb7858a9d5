//! Application variables: declarations from `spin.toml`, values from
//! `SPIN_VARIABLE_<NAME>` environment variables or the declared default, and
//! component variables as `{{ name }}` templates over them.

use anyhow::{Result, bail};
use std::collections::{BTreeMap, HashMap};

use crate::manifest::{App, VariableDecl};

/// A component variable: literal text with `{{ app_variable }}` holes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

impl Template {
    /// Parses `text`; `{{` must be closed and contain a valid variable name.
    pub fn parse(text: &str) -> Result<Template> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                bail!("unclosed '{{{{' in `{text}`");
            };
            let name = after[..end].trim();
            crate::manifest::check_variable_name(name)?;
            parts.push(Part::Var(name.to_string()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// Names of the application variables the template uses.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    fn render(&self, values: &HashMap<String, String>) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(name) => out.push_str(values.get(name)?),
            }
        }
        Some(out)
    }
}

/// Resolved application variables.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    values: HashMap<String, String>,
    secret: Vec<String>,
}

impl Variables {
    /// Resolves every declared variable from `env` (`SPIN_VARIABLE_<UPPER>`)
    /// or its default; a `required` one with no value fails, naming it.
    pub fn resolve(app: &App, env: &dyn Fn(&str) -> Option<String>) -> Result<Variables> {
        let mut values = HashMap::new();
        let mut secret = Vec::new();
        for (name, decl) in &app.variables {
            let VariableDecl {
                default,
                required,
                secret: is_secret,
            } = decl;
            let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
            match env(&env_name).or_else(|| default.clone()) {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None if *required => {
                    bail!("required variable `{name}` has no value: set {env_name}")
                }
                None => {}
            }
            if *is_secret {
                secret.push(name.clone());
            }
        }
        Ok(Variables { values, secret })
    }

    /// Every application variable with its resolved value.
    pub fn app_values(&self) -> HashMap<String, String> {
        self.values.clone()
    }

    /// The variables a component may read: its templates rendered.
    /// A template over an unset, optional variable leaves that name undefined.
    pub fn for_component(&self, templates: &BTreeMap<String, Template>) -> HashMap<String, String> {
        templates
            .iter()
            .filter_map(|(name, t)| t.render(&self.values).map(|v| (name.clone(), v)))
            .collect()
    }

    /// Whether a variable's value must never be shown.
    pub fn is_secret(&self, name: &str) -> bool {
        self.secret.iter().any(|s| s == name)
    }

    /// Renders a template over application variables where a value is
    /// required (an `allowed_outbound_hosts` entry): an unset variable is an
    /// error naming it.
    pub fn render(&self, template: &Template) -> Result<String> {
        if let Some(name) = template
            .references()
            .find(|name| !self.values.contains_key(*name))
        {
            bail!("variable `{name}` has no value");
        }
        Ok(template.render(&self.values).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn app() -> App {
        App::parse(
            r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
greeting = { default = "hi" }
token = { required = true, secret = true }
optional = {}
[component.a]
source = "a.wasm"
[component.a.variables]
message = "{{ greeting }}, {{token}}!"
maybe = "{{ optional }}"
"#,
            Path::new("."),
        )
        .unwrap()
    }

    #[test]
    fn environment_overrides_default_and_templates_render() -> Result<()> {
        let env = |k: &str| match k {
            "SPIN_VARIABLE_TOKEN" => Some("s3cret".to_string()),
            "SPIN_VARIABLE_GREETING" => Some("hello".to_string()),
            _ => None,
        };
        let vars = Variables::resolve(&app(), &env)?;
        let comp = vars.for_component(&app().components["a"].variables);
        assert_eq!(comp["message"], "hello, s3cret!");
        assert!(!comp.contains_key("maybe"));
        assert!(vars.is_secret("token"));
        Ok(())
    }

    #[test]
    fn missing_required_variable_names_it() {
        let err = Variables::resolve(&app(), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`token`") && err.contains("SPIN_VARIABLE_TOKEN"),
            "{err}"
        );
    }

    #[test]
    fn render_fills_holes_and_names_an_unset_variable() -> Result<()> {
        let env = |k: &str| (k == "SPIN_VARIABLE_TOKEN").then(|| "s3cret".to_string());
        let vars = Variables::resolve(&app(), &env)?;
        let host = Template::parse("https://{{ greeting }}.example.com")?;
        assert_eq!(vars.render(&host)?, "https://hi.example.com");
        let err = vars
            .render(&Template::parse("{{ optional }}")?)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`optional`"), "{err}");
        Ok(())
    }

    #[test]
    fn rejects_unclosed_and_invalid_templates() {
        assert!(Template::parse("{{ a").is_err());
        assert!(Template::parse("{{ A }}").is_err());
        assert_eq!(Template::parse("plain").unwrap().references().count(), 0);
    }
}
