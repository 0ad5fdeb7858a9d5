//! Problems the identity routes share.

use gatehouse_http::{ErrorCode, FieldError, Problem};
use identity_core::password::Weakness;

/// A mailed token that is malformed, unknown, expired or spent: one answer
/// for all, so none of those states can be told apart.
pub fn invalid_token() -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the token is invalid, expired or already used")
        .errors(vec![FieldError::new(
            "/token",
            "invalid_token",
            "the token is invalid, expired or already used",
        )])
}

/// The password policy's findings as field errors on `/password`.
pub fn password_errors(weaknesses: Vec<Weakness>) -> Vec<FieldError> {
    weaknesses
        .into_iter()
        .map(|w| FieldError::new("/password", w.code(), w.message()))
        .collect()
}

/// 422 listing `errors`.
pub fn invalid_fields(errors: Vec<FieldError>) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the request body has invalid fields")
        .errors(errors)
}
