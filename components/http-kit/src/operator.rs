//! Operator routes (migrations, signing-key rotation, jobs): the bearer
//! token must be the deployment's `operator_token` Spin variable; an empty
//! variable turns every operator route off.

use sha2::{Digest, Sha256};

use crate::{ErrorCode, Problem};

/// Whether `presented` is the operator token `expected`. Compared as
/// SHA-256 digests in constant time, so neither the token's length nor
/// where it first differs shows in the timing; an empty `expected` matches
/// nothing.
pub fn is_operator(presented: &str, expected: &str) -> bool {
    if expected.is_empty() {
        return false;
    }
    let (a, b) = (
        Sha256::digest(presented.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |diff, (x, y)| diff | (x ^ y))
        == 0
}

/// The answer to a request without the operator token.
pub fn refused() -> Problem {
    Problem::new(ErrorCode::Unauthenticated)
        .detail("this route takes the operator token")
        .header("www-authenticate", "Bearer")
}

#[cfg(target_arch = "wasm32")]
pub use store::require;

#[cfg(target_arch = "wasm32")]
mod store {
    use super::{is_operator, refused};
    use crate::Problem;

    /// 401 unless the request's bearer token is the operator token.
    pub async fn require<B>(req: &http::Request<B>) -> Result<(), Problem> {
        let expected = spin_sdk::variables::get("operator_token")
            .await
            .unwrap_or_default();
        let presented = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        if is_operator(presented, &expected) {
            crate::audit::note(req, crate::audit::Actor::Operator);
            Ok(())
        } else {
            Err(refused())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_token_is_the_operator_and_an_empty_one_is_nobody() {
        assert!(is_operator("s3cret-token", "s3cret-token"));
        assert!(!is_operator("s3cret-tokem", "s3cret-token"));
        assert!(!is_operator("", "s3cret-token"));
        assert!(!is_operator("", ""), "operator routes are off");
        assert_eq!(refused().status, 401);
    }
}
