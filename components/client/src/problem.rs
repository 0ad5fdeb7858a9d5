//! Gatehouse's refusals: RFC 9457 problem documents with a stable `code`.

use std::fmt;

use serde::Deserialize;

/// A non-2xx answer, read from its problem document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Problem {
    /// The HTTP status.
    #[serde(default)]
    pub status: u16,
    /// The stable code (`unauthenticated`, `forbidden`, `not_found`,
    /// `validation_failed`, …); empty when the answer was not a problem
    /// document (a proxy's error page).
    #[serde(default)]
    pub code: String,
    /// The short title.
    #[serde(default)]
    pub title: String,
    /// What happened, for people.
    #[serde(default)]
    pub detail: Option<String>,
    /// The request id, to find the request in Gatehouse's logs.
    #[serde(default)]
    pub instance: Option<String>,
    /// The fields at fault, for `validation_failed`.
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FieldError {
    /// A JSON pointer to the field (`/resource/id`).
    #[serde(default)]
    pub pointer: String,
    /// The stable code (`required`, `invalid_format`, …).
    #[serde(default)]
    pub code: String,
    /// What is wrong, for people.
    #[serde(default)]
    pub message: String,
}

impl Problem {
    /// The problem an answer with `status` and `body` carries; the status
    /// is the answer's whatever the body says.
    pub fn from_answer(status: u16, body: &[u8]) -> Problem {
        let problem = serde_json::from_slice::<Problem>(body).unwrap_or_default();
        Problem { status, ..problem }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gatehouse answered {}", self.status)?;
        if !self.code.is_empty() {
            write!(f, " {}", self.code)?;
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}
