//! A tool as stored and answered, and the bodies that write one.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The longest name: OpenAI's function names are 1 to 64 of
/// `A-Z a-z 0-9 _ -`, and a tool's name is the function name an LLM sees.
pub const NAME_MAX: usize = 64;
/// The longest description, in characters.
pub const DESCRIPTION_MAX: usize = 1024;

/// Whether `name` is a tool name: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// What a tool does when called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One HTTP request to a configured URL.
    Http,
    /// A fixed JSON answer, the arguments filled into its strings.
    Static,
}

impl Kind {
    /// As stored and answered.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Static => "static",
        }
    }

    /// The stored spelling read back.
    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "http" => Some(Kind::Http),
            "static" => Some(Kind::Static),
            _ => None,
        }
    }
}

/// A tool, as the API answers it. `config` is the checked configuration
/// as stored: secret headers name their secret, never hold a value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    /// `tool_<32 hex>`.
    pub id: String,
    /// Unique in its org.
    pub name: String,
    /// What it does, for people and LLMs.
    pub description: String,
    /// `http` or `static`.
    pub kind: Kind,
    /// The JSON Schema its arguments satisfy.
    pub input_schema: Value,
    /// The kind's configuration.
    pub config: Value,
    /// A permission a caller holds besides `tools:run` to see and run it.
    pub permission: Option<String>,
    /// Whether it may be called.
    pub enabled: bool,
    /// Who made it.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// The schema of a tool that takes no arguments.
pub fn empty_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

fn enabled_by_default() -> bool {
    true
}

/// `POST /v1/tools`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTool {
    /// The tool's name.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// `http` or `static`.
    pub kind: Kind,
    /// Its arguments' schema; none takes no arguments.
    #[serde(default = "empty_schema")]
    pub input_schema: Value,
    /// The kind's configuration.
    pub config: Value,
    /// A permission callers need besides `tools:run`.
    #[serde(default)]
    pub permission: Option<String>,
    /// Whether it may be called (yes unless said).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

/// `PATCH /v1/tools/{name}`: the fields given change; `permission: null`
/// removes the extra permission. A tool's name and kind stay what they
/// were made (callers know it by name; a kind's configuration is its own).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchTool {
    /// A new description.
    pub description: Option<String>,
    /// A new argument schema.
    pub input_schema: Option<Value>,
    /// A new configuration.
    pub config: Option<Value>,
    /// A new extra permission, or `null` for none.
    #[serde(default, deserialize_with = "present")]
    pub permission: Option<Option<String>>,
    /// Enabled or not.
    pub enabled: Option<bool>,
}

/// A field that may be given as `null`: `Some(None)`, told apart from a
/// field not given (`None`).
fn present<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// `POST /v1/tools/{name}/$call`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallTool {
    /// The arguments, checked against the tool's schema; none is `{}`.
    #[serde(default = "no_arguments")]
    pub arguments: Value,
}

fn no_arguments() -> Value {
    json!({})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_function_calling_rules() {
        for ok in ["get_weather", "a", "A-1_b", &"x".repeat(64)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "has space", "dot.name", "ü", &"x".repeat(65), "a/b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_patch_tells_a_null_permission_from_none_given() -> anyhow::Result<()> {
        let cleared: PatchTool = serde_json::from_value(json!({"permission": null}))?;
        assert_eq!(cleared.permission, Some(None));
        let untouched: PatchTool = serde_json::from_value(json!({"enabled": false}))?;
        assert_eq!(untouched.permission, None);
        assert!(serde_json::from_value::<PatchTool>(json!({"name": "x"})).is_err());
        Ok(())
    }

    #[test]
    fn kinds_round_trip_their_stored_spelling() {
        for kind in [Kind::Http, Kind::Static] {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("python"), None);
    }
}
