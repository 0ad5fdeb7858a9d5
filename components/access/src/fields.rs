//! Field checks for request bodies, collected so a client sees every wrong
//! field at once, and the path segments routes take.

use access_core::names::{decode_segment, valid_name, valid_resource_id, valid_role_name};
use access_core::roles::{PermissionError, normalize};
use gatehouse_http::{ErrorCode, FieldError, Problem};

/// Every failing field of one request body.
#[derive(Default)]
pub struct Fields(Vec<FieldError>);

const NAME_RULE: &str = "must be 1 to 64 of a-z 0-9 _ . - starting with a letter or digit";

impl Fields {
    /// Records a failing field.
    pub fn push(&mut self, pointer: &str, code: &str, message: &str) {
        self.0.push(FieldError::new(pointer, code, message));
    }

    /// `value` must have `min..=max` characters.
    pub fn length(&mut self, pointer: &str, value: &str, min: usize, max: usize) {
        let n = value.chars().count();
        if !(min..=max).contains(&n) {
            let name = pointer.rsplit('/').next().unwrap_or(pointer);
            self.push(
                pointer,
                "invalid_length",
                &format!("{name} must have {min} to {max} characters"),
            );
        }
    }

    /// A role name: `name` or `group:name`.
    pub fn role_name(&mut self, pointer: &str, name: &str) {
        if !valid_role_name(name) {
            self.push(
                pointer,
                "invalid_format",
                "a role name is a name or group:name, each part 1 to 64 of a-z 0-9 _ . - starting with a letter or digit",
            );
        }
    }

    /// A simple name (service, collection, policy, action).
    pub fn name(&mut self, pointer: &str, name: &str) {
        if !valid_name(name) {
            self.push(pointer, "invalid_format", NAME_RULE);
        }
    }

    /// A resource id.
    pub fn resource_id(&mut self, pointer: &str, id: &str) {
        if !valid_resource_id(id) {
            self.push(
                pointer,
                "invalid_format",
                "a resource id has 1 to 200 characters, no control characters and no /",
            );
        }
    }

    /// A permission list; the normalized list when it is valid.
    pub fn permissions(&mut self, pointer: &str, permissions: &[String]) -> Vec<String> {
        match normalize(permissions) {
            Ok(set) => set,
            Err(PermissionError::Invalid(i)) => {
                self.push(
                    &format!("{pointer}/{i}"),
                    "invalid_format",
                    "a permission is up to 100 characters of names joined by : (read, add-user, authz:check)",
                );
                Vec::new()
            }
            Err(PermissionError::TooMany) => {
                self.push(pointer, "too_many", "a role has at most 100 permissions");
                Vec::new()
            }
        }
    }

    /// `Ok` when nothing failed.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

/// A role name from the path; 404 when it cannot name a role.
pub fn role_segment(segment: &str) -> Result<String, Problem> {
    decode_segment(segment)
        .filter(|n| valid_role_name(n))
        .ok_or_else(no_role)
}

/// 404 for a role that is not the org's.
pub fn no_role() -> Problem {
    Problem::not_found().detail("no such role")
}

/// A service, collection and resource id from the path, checked; 422
/// naming the parameter when one is malformed.
pub fn resource_segments(
    service: &str,
    collection: &str,
    id: Option<&str>,
) -> Result<(String, String, Option<String>), Problem> {
    let decode = |s: &str| decode_segment(s).unwrap_or_default();
    let (service, collection) = (decode(service), decode(collection));
    let id = id.map(decode);
    let mut fields = Fields::default();
    fields.name("/service", &service);
    fields.name("/collection", &collection);
    if let Some(id) = &id {
        fields.resource_id("/id", id);
    }
    fields.finish().map_err(|errors| {
        Problem::new(ErrorCode::ValidationFailed)
            .detail("the path names an invalid service, collection or resource id")
            .errors(errors)
    })?;
    Ok((service, collection, id))
}
