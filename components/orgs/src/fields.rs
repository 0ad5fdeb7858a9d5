//! Field checks for request bodies, collected so a client sees every
//! wrong field at once.

use gatehouse_http::FieldError;
use serde::{Deserialize, Deserializer};

/// Every failing field of one request body.
#[derive(Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// Records a failing field.
    pub fn push(&mut self, pointer: &str, code: &str, message: &str) {
        self.0.push(FieldError::new(pointer, code, message));
    }

    /// `value` must have `min..=max` characters and no control or
    /// bidirectional-override characters.
    pub fn length(&mut self, pointer: &str, value: &str, min: usize, max: usize) {
        self.text(
            pointer,
            value,
            (min, max),
            identity_core::text::plain(value),
            "control or bidirectional-override characters",
        );
    }

    /// A description: `min..=max` characters, line breaks allowed, no
    /// other control characters.
    pub fn prose(&mut self, pointer: &str, value: &str, min: usize, max: usize) {
        self.text(
            pointer,
            value,
            (min, max),
            identity_core::text::prose(value),
            "control characters other than line breaks and tabs",
        );
    }

    fn text(
        &mut self,
        pointer: &str,
        value: &str,
        (min, max): (usize, usize),
        clean: bool,
        refused: &str,
    ) {
        let n = value.chars().count();
        let name = pointer.rsplit('/').next().unwrap_or(pointer);
        if !(min..=max).contains(&n) {
            self.push(
                pointer,
                "invalid_length",
                &format!("{name} must have {min} to {max} characters"),
            );
        } else if !clean {
            self.push(
                pointer,
                "invalid_characters",
                &format!("{name} must not contain {refused}"),
            );
        }
    }

    /// An optional `value`, when given, must have 1 to `max` characters.
    pub fn optional_length(&mut self, pointer: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            self.length(pointer, v.trim(), 1, max);
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

/// For `Option<Option<T>>` fields of a PATCH body: absent stays `None`
/// (with `#[serde(default)]`), `null` becomes `Some(None)` (clear it), a
/// value becomes `Some(Some(value))`.
pub fn patch_field<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
