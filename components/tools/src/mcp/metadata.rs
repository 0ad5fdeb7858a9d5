//! OAuth 2.0 Protected Resource Metadata (RFC 9728) for the MCP
//! endpoints, which the MCP authorization spec has a client find through
//! the `WWW-Authenticate` challenge of a `401`.
//!
//! The resource of `/v1/mcp` is `<public_base_url>/v1/mcp`; its document
//! is at `<public_base_url>/.well-known/oauth-protected-resource/v1/mcp`
//! (RFC 9728 puts the well-known segment before the resource's path; a
//! deployment served below a path prefix places the app's routes there,
//! so the document stays beside the app's own `/.well-known` routes). The
//! authorization server is the deployment itself: the issuer of its JWTs.

use serde_json::{Value, json};

/// The metadata document's path for the endpoint of `server` (the org's
/// whole tool set when `None`).
pub fn path(server: Option<&str>) -> String {
    match server {
        Some(server) => format!("/.well-known/oauth-protected-resource/v1/mcp/{server}"),
        None => "/.well-known/oauth-protected-resource/v1/mcp".into(),
    }
}

/// The resource identifier of the endpoint of `server`.
pub fn resource(base: &str, server: Option<&str>) -> String {
    match server {
        Some(server) => format!("{base}/v1/mcp/{server}"),
        None => format!("{base}/v1/mcp"),
    }
}

/// The document.
pub fn document(base: &str, server: Option<&str>) -> Value {
    let name = match server {
        Some(server) => format!("Gatehouse MCP server {server}"),
        None => "Gatehouse tools".into(),
    };
    json!({
        "resource": resource(base, server),
        "authorization_servers": [base],
        "bearer_methods_supported": ["header"],
        "resource_name": name,
    })
}

/// The `WWW-Authenticate` value of a `401` from the endpoint of `server`,
/// keeping what the credential check said (`error="invalid_token"`).
pub fn challenge(base: &str, server: Option<&str>, said: Option<&str>) -> String {
    let mut value = format!("Bearer resource_metadata=\"{base}{}\"", path(server));
    if let Some(rest) = said
        .and_then(|s| s.strip_prefix("Bearer"))
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        value.push_str(", ");
        value.push_str(rest);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_names_the_document_of_the_resource() {
        let base = "https://gh.example.com";
        assert_eq!(
            challenge(base, None, Some("Bearer")),
            "Bearer resource_metadata=\"https://gh.example.com/.well-known/oauth-protected-resource/v1/mcp\""
        );
        assert_eq!(
            challenge(base, Some("ops"), Some("Bearer error=\"invalid_token\"")),
            "Bearer resource_metadata=\"https://gh.example.com/.well-known/oauth-protected-resource/v1/mcp/ops\", error=\"invalid_token\""
        );
        let doc = document(base, Some("ops"));
        assert_eq!(doc["resource"], "https://gh.example.com/v1/mcp/ops");
        assert_eq!(doc["authorization_servers"], json!([base]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
}
