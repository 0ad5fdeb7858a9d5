//! A tool's input schema: checked to be a JSON Schema of an object when
//! the tool is written, and the arguments of each call checked against it
//! before anything runs. References outside the schema are never fetched
//! (the validator is built without resolvers): a schema naming one is
//! refused.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use gatehouse_http::FieldError;
use serde_json::Value;

/// The largest input schema, serialized.
pub const SCHEMA_MAX: usize = 32 * 1024;
/// The most argument errors listed in one answer.
pub const ERRORS_MAX: usize = 20;

/// Every reason `schema` is no tool input schema, pointers under
/// `/input_schema`.
pub fn check_schema(schema: &Value) -> Vec<FieldError> {
    let field = |code: &str, message: String| FieldError::new("/input_schema", code, message);
    let Some(object) = schema.as_object() else {
        return vec![field(
            "invalid_schema",
            "the input schema is a JSON object".into(),
        )];
    };
    if schema.to_string().len() > SCHEMA_MAX {
        return vec![field(
            "too_long",
            "an input schema is at most 32 KiB of JSON".into(),
        )];
    }
    let mut errors = Vec::new();
    if object.get("type") != Some(&Value::String("object".into())) {
        errors.push(FieldError::new(
            "/input_schema/type",
            "invalid_schema",
            "a tool's arguments are an object: the schema says \"type\": \"object\"",
        ));
    }
    if let Err(e) = jsonschema::validator_for(schema) {
        errors.push(field(
            "invalid_schema",
            format!("not a valid JSON Schema: {e}"),
        ));
    }
    errors
}

/// The most compiled schemas an instance keeps.
const COMPILED_MAX: usize = 256;

thread_local! {
    /// Compiled validators by their schema's JSON text: building one
    /// (the schema checked against its meta-schema, then compiled) costs
    /// far more than a call's check, and an instance serves many calls of
    /// the same tools. Keyed by the whole text, so a changed schema is
    /// another entry; emptied when full.
    static COMPILED: RefCell<HashMap<String, Rc<jsonschema::Validator>>> =
        RefCell::new(HashMap::new());
}

/// The validator of `schema`, compiled once an instance.
fn validator(schema: &Value) -> Result<Rc<jsonschema::Validator>, String> {
    let key = schema.to_string();
    if let Some(found) = COMPILED.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(found);
    }
    let compiled = Rc::new(jsonschema::validator_for(schema).map_err(|e| e.to_string())?);
    COMPILED.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= COMPILED_MAX {
            cache.clear();
        }
        cache.insert(key, Rc::clone(&compiled));
    });
    Ok(compiled)
}

/// Every way `arguments` fails `schema` (a checked one), pointers under
/// `/arguments`; at most [`ERRORS_MAX`].
pub fn check_arguments(schema: &Value, arguments: &Value) -> Result<(), Vec<FieldError>> {
    let validator = validator(schema).map_err(|e| {
        vec![FieldError::new(
            "/input_schema",
            "invalid_schema",
            format!("the tool's input schema is not valid: {e}"),
        )]
    })?;
    let errors: Vec<FieldError> = validator
        .iter_errors(arguments)
        .take(ERRORS_MAX)
        .map(|e| field_error(&e))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// One failure as a field error: where (the argument's pointer), which
/// keyword failed (its code), and the validator's words.
fn field_error(e: &jsonschema::ValidationError<'_>) -> FieldError {
    let mut pointer = format!("/arguments{}", e.instance_path());
    // A missing property is reported at its parent; point at it.
    if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind()
        && let Some(name) = property.as_str()
    {
        pointer.push('/');
        pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
    }
    FieldError::new(pointer, e.kind().keyword(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn weather() -> Value {
        json!({
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 1},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "units": {"enum": ["metric", "imperial"]}
            },
            "required": ["city"],
            "additionalProperties": false
        })
    }

    #[test]
    fn schemas_must_describe_objects_and_be_valid() {
        assert!(check_schema(&weather()).is_empty());
        let not_object = check_schema(&json!({"type": "string"}));
        assert_eq!(not_object[0].pointer, "/input_schema/type");
        assert_eq!(check_schema(&json!([1]))[0].code, "invalid_schema");
        let broken = check_schema(&json!({"type": "object", "properties": {"a": {"type": 12}}}));
        assert!(
            broken.iter().any(|e| e.pointer == "/input_schema"),
            "{broken:?}"
        );
        let remote = check_schema(
            &json!({"type": "object", "properties": {"a": {"$ref": "https://schemas.example.com/a.json"}}}),
        );
        assert!(!remote.is_empty(), "a remote reference is refused");
    }

    #[test]
    fn arguments_get_one_error_per_failure_with_its_pointer() {
        assert!(check_arguments(&weather(), &json!({"city": "Paris", "days": 3})).is_ok());
        let errors = check_arguments(&weather(), &json!({"days": 9, "units": "kelvin", "x": 1}))
            .err()
            .unwrap_or_default();
        let found: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.pointer.as_str(), e.code.as_str()))
            .collect();
        for expected in [
            ("/arguments/city", "required"),
            ("/arguments/days", "maximum"),
            ("/arguments/units", "enum"),
            ("/arguments", "additionalProperties"),
        ] {
            assert!(found.contains(&expected), "{expected:?} in {found:?}");
        }
        let wrong_type = check_arguments(&weather(), &json!([]))
            .err()
            .unwrap_or_default();
        assert_eq!(wrong_type[0].code, "type");
    }
}
