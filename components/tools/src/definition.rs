//! A whole tool definition checked as it will be stored: name,
//! description, schema, configuration against both, permission, and the
//! writer's right to the secrets it names.

use gatehouse_auth::oidc::OutboundPolicy;
use gatehouse_http::principal::Principal;
use gatehouse_http::{ErrorCode, FieldError, Problem};
use serde_json::Value;

use crate::access;
use crate::config::{self, Config};
use crate::model::{self, Kind};
use crate::schema;

/// What a write leaves a tool with, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// Its description.
    pub description: String,
    /// Its input schema.
    pub input_schema: Value,
    /// Its kind.
    pub kind: Kind,
    /// Its configuration.
    pub config: Config,
    /// Its extra permission.
    pub permission: Option<String>,
}

/// The name's errors: pointer `/name`.
pub fn check_name(name: &str) -> Vec<FieldError> {
    // `__` joins a mounted MCP server's name to its tools' names: a tool
    // of one's own holding it could take a mounted tool's name.
    if model::valid_name(name) && !name.contains("__") {
        Vec::new()
    } else {
        vec![FieldError::new(
            "/name",
            "invalid_name",
            "a tool name is 1 to 64 of A-Z, a-z, 0-9, _ and -, without __ (which joins a mounted server's name to its tools')",
        )]
    }
}

impl Definition {
    /// Checks every field; every failing one.
    pub fn check(
        description: String,
        input_schema: Value,
        kind: Kind,
        config: &Value,
        permission: Option<String>,
        policy: &OutboundPolicy,
    ) -> Result<Definition, Vec<FieldError>> {
        let mut errors = Vec::new();
        if description.chars().count() > model::DESCRIPTION_MAX {
            errors.push(FieldError::new(
                "/description",
                "too_long",
                "a description is at most 1024 characters",
            ));
        }
        if let Some(p) = &permission
            && !access_core::names::valid_permission(p)
        {
            errors.push(FieldError::new(
                "/permission",
                "invalid_permission",
                "a permission is simple names (a-z, 0-9, _, ., -) joined by :, at most 100 characters",
            ));
        }
        let schema_errors = schema::check_schema(&input_schema);
        let schema_ok = schema_errors.is_empty();
        errors.extend(schema_errors);
        // The configuration is checked against a valid schema only: its
        // placeholders name the schema's properties.
        let checked = if schema_ok {
            Config::check(kind, config, &input_schema, policy)
        } else {
            Config::parse(kind, config)
        };
        let config = match checked {
            Ok(config) => Some(config),
            Err(e) => {
                errors.extend(e);
                None
            }
        };
        match config {
            Some(config) if errors.is_empty() => Ok(Definition {
                description,
                input_schema,
                kind,
                config,
                permission,
            }),
            _ => Err(errors),
        }
    }

    /// 403 unless `writer` may name every secret the configuration names.
    pub fn may_be_written_by(&self, writer: &Principal) -> Result<(), Problem> {
        for reference in self.config.secrets() {
            let allowed = config::reference_scope(&reference)
                .is_some_and(|scope| access::may_reference(writer, &scope));
            if !allowed {
                return Err(Problem::new(ErrorCode::Forbidden).detail(format!(
                    "naming the secret {reference} in a tool takes the right to read it ({})",
                    access::SECRETS_READ
                )));
            }
        }
        Ok(())
    }
}

/// Field errors as the 422 answer.
pub fn problem(errors: Vec<FieldError>) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the tool definition has invalid fields")
        .errors(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_http::principal::{Credential, OrgRole, Subject};
    use serde_json::json;

    fn policy() -> OutboundPolicy {
        OutboundPolicy::new("*://*:*", "true")
    }

    #[test]
    fn every_bad_field_is_listed_at_once() {
        let errors = Definition::check(
            "x".repeat(1025),
            json!({"type": "array"}),
            Kind::Static,
            &json!({"result": "{{a}}"}),
            Some("Not A Permission".into()),
            &policy(),
        )
        .err()
        .unwrap_or_default();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        for p in ["/description", "/permission", "/input_schema/type"] {
            assert!(pointers.contains(&p), "{p} in {pointers:?}");
        }
        assert_eq!(check_name("a b")[0].code, "invalid_name");
        assert!(check_name("get_weather").is_empty());
    }

    #[test]
    fn a_writer_names_only_secrets_it_may_read() -> anyhow::Result<()> {
        let definition = Definition::check(
            String::new(),
            json!({"type": "object"}),
            Kind::Http,
            &json!({"method": "GET", "url": "https://api.example.com/",
                    "headers": [{"name": "Authorization", "secret": "org/API_TOKEN"}]}),
            None,
            &policy(),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut writer = Principal {
            subject: Subject::User { id: "u1".into() },
            org_id: Some("o1".into()),
            org_role: Some(OrgRole::Admin),
            team_ids: vec![],
            roles: vec![],
            permissions: vec![],
            acting_as: None,
            credential: Credential::Session,
        };
        assert_eq!(
            definition.may_be_written_by(&writer).map_err(|p| p.status),
            Err(403)
        );
        writer.permissions.push("secrets:read".into());
        assert!(definition.may_be_written_by(&writer).is_ok());
        Ok(())
    }
}
