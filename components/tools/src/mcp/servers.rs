//! A named MCP server of an org (`/v1/mcp/{name}`): a chosen set of the
//! org's tools, served alone to agents that should see only those, or a
//! mounted remote MCP server ([`super::mount`]). The definitions and their
//! checks; the table is migration 0037.

use gatehouse_http::{ErrorCode, FieldError, Problem};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::mount::RemoteTool;

use crate::model::{self, DESCRIPTION_MAX};

/// The most tools one server composes.
pub const TOOLS_MAX: usize = 100;

/// A server, as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct McpServer {
    /// `mcps_<32 hex>`.
    pub id: String,
    /// Unique in its org; the last segment of its endpoint.
    pub name: String,
    /// What it is for; its `instructions` to agents.
    pub description: String,
    /// The names of the tools it serves, in the order given. A tool
    /// deleted since is left out of its listing.
    pub tools: Vec<String>,
    /// A mount's remote: `url`, `headers` (secret headers name their
    /// secret), `timeout_ms`; `null` for a set of the org's tools.
    pub remote: Option<Value>,
    /// A permission the server's tools take besides `tools:run` on its
    /// own endpoint (and a mount's on `/v1/mcp` too); readers who may not
    /// see it do not find the server.
    pub permission: Option<String>,
    /// A mount's tools as last listed (`POST …/$refresh`), offered as
    /// `<name>__<tool>`; `null` before the first listing.
    pub remote_tools: Option<Vec<RemoteTool>>,
    /// When they were listed, unix seconds.
    pub refreshed_at: Option<i64>,
    /// Its MCP endpoint.
    pub endpoint: String,
    /// Who made it.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// `POST /v1/mcp-servers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateServer {
    /// Its name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The tools it serves (none for a mount).
    #[serde(default)]
    pub tools: Vec<String>,
    /// The remote MCP server it mounts.
    #[serde(default)]
    pub remote: Option<Value>,
    /// A permission a mount's tools take besides `tools:run`.
    #[serde(default)]
    pub permission: Option<String>,
}

/// `PATCH /v1/mcp-servers/{name}`: the fields given change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchServer {
    /// A new description.
    pub description: Option<String>,
    /// A new set of tools.
    pub tools: Option<Vec<String>>,
    /// A new remote, for a mount.
    pub remote: Option<Value>,
    /// A new permission, or `null` for none.
    #[serde(default, deserialize_with = "present")]
    pub permission: Option<Option<String>>,
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

/// Every failing field of a server's name (when given), description and
/// tools; `known` says whether the org has a tool of a name.
pub fn check(
    name: Option<&str>,
    description: &str,
    tools: &[String],
    known: impl Fn(&str) -> bool,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(name) = name
        && (!model::valid_name(name) || name.contains("__") || name.ends_with('_'))
    {
        errors.push(FieldError::new(
            "/name",
            "invalid_name",
            "a server name is 1 to 64 of A-Z, a-z, 0-9, _ and -, without __ and not ending in _ (__ joins a mount's name to its tools')",
        ));
    }
    if description.chars().count() > DESCRIPTION_MAX {
        errors.push(FieldError::new(
            "/description",
            "too_long",
            "a description is at most 1024 characters",
        ));
    }
    if tools.len() > TOOLS_MAX {
        errors.push(FieldError::new(
            "/tools",
            "too_long",
            format!("a server serves at most {TOOLS_MAX} tools"),
        ));
        return errors;
    }
    for (i, tool) in tools.iter().enumerate() {
        let pointer = format!("/tools/{i}");
        if tools[..i].contains(tool) {
            errors.push(FieldError::new(
                pointer,
                "duplicate",
                "a tool is named once",
            ));
        } else if !model::valid_name(tool) || !known(tool) {
            errors.push(FieldError::new(
                pointer,
                "unknown_tool",
                "the organization has no tool of this name",
            ));
        }
    }
    errors
}

/// Field errors as the 422 answer.
pub fn problem(errors: Vec<FieldError>) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the MCP server has invalid fields")
        .errors(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_descriptions_and_tools_are_checked_together() {
        let tools = vec!["greet".to_string(), "nope".into(), "greet".into()];
        let errors = check(Some("a b"), &"x".repeat(1025), &tools, |t| t == "greet");
        let found: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.pointer.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                ("/name", "invalid_name"),
                ("/description", "too_long"),
                ("/tools/1", "unknown_tool"),
                ("/tools/2", "duplicate"),
            ]
        );
        assert!(check(Some("ops"), "", &["greet".into()], |_| true).is_empty());
        let many: Vec<String> = (0..=TOOLS_MAX).map(|i| format!("t{i}")).collect();
        assert_eq!(check(None, "", &many, |_| true)[0].pointer, "/tools");
    }
}
