//! The event catalog: every type of org event Gatehouse emits, what it
//! means, and the JSON Schema (draft 2020-12) of its `data`. An org's
//! endpoints subscribe to these types; the OpenAPI document publishes each
//! as a webhook (`webhooks`, with the schema under `components.schemas`
//! by [`EventType::schema_name`]), and a test keeps the two the same.
//!
//! The catalog is data (`catalog.json`), so the document and the code read
//! the same text. A new type is one more entry there and a constant here;
//! billing's subscription events will join this way.
//!
//! ```
//! use gatehouse_webhook_delivery::catalog;
//!
//! let created = catalog::find(catalog::KEY_CREATED).unwrap();
//! assert_eq!(created.schema_name, "KeyCreatedData");
//! assert!(catalog::takes(Some(&["key.*".to_string()]), "key.revoked"));
//! assert!(!catalog::takes(Some(&["member.added".to_string()]), "key.revoked"));
//! assert!(catalog::takes(None, "spend.unusual"));
//! ```

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

/// A quota's count reached one of its alert thresholds (metering).
pub const QUOTA_THRESHOLD_REACHED: &str = "quota.threshold_reached";
/// An org's spend in a currency today is unusual (metering).
pub const SPEND_UNUSUAL: &str = "spend.unusual";
/// An API key was created or imported (keys).
pub const KEY_CREATED: &str = "key.created";
/// An API key was revoked (keys).
pub const KEY_REVOKED: &str = "key.revoked";
/// A user became a member of an org (orgs).
pub const MEMBER_ADDED: &str = "member.added";
/// A membership ended: the member left or an admin removed them (orgs).
pub const MEMBER_REMOVED: &str = "member.removed";

/// The longest event type, and the longest entry of an endpoint's filter.
pub const MAX_TYPE_LEN: usize = 128;

const CATALOG: &str = include_str!("catalog.json");

/// One type of event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventType {
    /// Its name, dotted (`key.created`): the envelope's `type`.
    #[serde(rename = "type")]
    pub name: String,
    /// What happened, for people.
    pub description: String,
    /// The name of its data's schema in the OpenAPI document's
    /// `components.schemas`.
    pub schema_name: String,
    /// The JSON Schema (draft 2020-12) of its `data`.
    pub schema: Value,
}

/// Every type, in the catalog's order. The catalog is compiled in and a
/// test reads it, so it always parses; were it not to, the list would be
/// empty rather than a panic in a request.
pub fn all() -> &'static [EventType] {
    static TYPES: OnceLock<Vec<EventType>> = OnceLock::new();
    TYPES.get_or_init(|| serde_json::from_str(CATALOG).unwrap_or_default())
}

/// The type named `name`, if the catalog has it.
pub fn find(name: &str) -> Option<&'static EventType> {
    all().iter().find(|t| t.name == name)
}

/// Whether the filter entry `pattern` takes `event_type`: the type itself,
/// or `prefix.*` for every type under `prefix.` (`key.*` takes
/// `key.created` and `key.revoked`).
pub fn matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(prefix) => event_type
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.')),
        None => pattern == event_type,
    }
}

/// Whether an endpoint whose filter is `filter` takes `event_type`; no
/// filter (NULL) takes every type.
pub fn takes(filter: Option<&[String]>, event_type: &str) -> bool {
    filter.is_none_or(|patterns| patterns.iter().any(|p| matches(p, event_type)))
}

/// Whether `pattern` can be an entry of an endpoint's filter: a type of
/// the catalog, or `prefix.*` taking at least one of them.
pub fn known_pattern(pattern: &str) -> bool {
    pattern.len() <= MAX_TYPE_LEN && all().iter().any(|t| matches(pattern, &t.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_parses_with_every_named_type_once() {
        let names: Vec<&str> = all().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                QUOTA_THRESHOLD_REACHED,
                SPEND_UNUSUAL,
                KEY_CREATED,
                KEY_REVOKED,
                MEMBER_ADDED,
                MEMBER_REMOVED
            ]
        );
        let mut schema_names: Vec<&str> = all().iter().map(|t| t.schema_name.as_str()).collect();
        schema_names.sort();
        schema_names.dedup();
        assert_eq!(schema_names.len(), all().len());
    }

    #[test]
    fn every_type_is_dotted_lower_case_with_an_object_schema_and_a_description() {
        for t in all() {
            assert!(
                t.name.len() <= MAX_TYPE_LEN
                    && t.name.contains('.')
                    && t.name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'),
                "{}",
                t.name
            );
            assert!(t.description.len() > 20, "{}", t.name);
            assert_eq!(t.schema["type"], "object", "{}", t.name);
            assert!(t.schema["required"].is_array(), "{}", t.name);
            assert!(t.schema_name.ends_with("Data"), "{}", t.name);
        }
    }

    #[test]
    fn patterns_take_a_type_or_everything_under_a_prefix() {
        assert!(matches("key.created", "key.created"));
        assert!(!matches("key.created", "key.revoked"));
        assert!(matches("key.*", "key.revoked"));
        assert!(matches("quota.*", "quota.threshold_reached"));
        // A prefix stops at a dot: `key.*` is not `keys.created`.
        assert!(!matches("key.*", "keys.created"));
        assert!(!matches("key.*", "key."));
        assert!(!matches("key.*", "key"));
        assert!(!matches("*", "key.created"));
    }

    #[test]
    fn no_filter_takes_everything_and_an_empty_one_nothing() {
        assert!(takes(None, KEY_REVOKED));
        assert!(!takes(Some(&[]), KEY_REVOKED));
        let members = ["member.*".to_string(), KEY_CREATED.to_string()];
        assert!(takes(Some(&members), MEMBER_REMOVED));
        assert!(takes(Some(&members), KEY_CREATED));
        assert!(!takes(Some(&members), KEY_REVOKED));
    }

    /// The OpenAPI document publishes each type as a webhook whose body is
    /// the envelope around the type's schema, and no type the catalog lacks.
    #[test]
    fn the_openapi_document_publishes_every_type_with_the_same_schema()
    -> Result<(), Box<dyn std::error::Error>> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../docs/openapi.json");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let webhooks = doc["webhooks"].as_object().ok_or("no webhooks object")?;
        let published: Vec<&str> = webhooks.keys().map(String::as_str).collect();
        let mut catalog: Vec<&str> = all().iter().map(|t| t.name.as_str()).collect();
        // serde_json's objects keep their keys sorted.
        catalog.sort();
        assert_eq!(published, catalog);
        for t in all() {
            let post = &webhooks[&t.name]["post"];
            let body = &post["requestBody"]["content"]["application/json"]["schema"];
            assert_eq!(
                body["required"],
                serde_json::json!(["type", "timestamp", "data"])
            );
            assert_eq!(body["properties"]["type"]["const"], t.name.as_str());
            assert_eq!(body["properties"]["timestamp"]["format"], "date-time");
            let reference = format!("#/components/schemas/{}", t.schema_name);
            assert_eq!(body["properties"]["data"]["$ref"], reference.as_str());
            assert_eq!(
                doc["components"]["schemas"][&t.schema_name], t.schema,
                "{}",
                t.name
            );
            let headers: Vec<&str> = post["parameters"]
                .as_array()
                .ok_or("no parameters")?
                .iter()
                .filter_map(|p| p["$ref"].as_str())
                .filter_map(|r| r.strip_prefix("#/components/parameters/"))
                .filter_map(|name| doc["components"]["parameters"][name]["name"].as_str())
                .collect();
            assert_eq!(
                headers,
                ["webhook-id", "webhook-timestamp", "webhook-signature"]
            );
        }
        Ok(())
    }

    #[test]
    fn filter_entries_must_name_something_the_catalog_has() {
        for known in ["key.created", "key.*", "member.*", "spend.unusual"] {
            assert!(known_pattern(known), "{known}");
        }
        for unknown in [
            "key.deleted",
            "keys.*",
            "*",
            "",
            "billing.*",
            "key.created.*",
        ] {
            assert!(!known_pattern(unknown), "{unknown}");
        }
    }
}
