//! Whether a delivery to the Stripe events handler comes from this
//! deployment's handler jobs: signed as Standard Webhooks with the
//! `webhook_handler_secret` they sign with, within the usual tolerance.

use webhooks_core::{Headers, Provider, VerifyConfig, verify};

/// Whether `body` with `headers` is signed with `secret` at a time near
/// `now`. An empty secret verifies nothing.
pub fn from_handler_jobs<H: Headers + ?Sized>(
    secret: &str,
    headers: &H,
    body: &[u8],
    now: i64,
) -> bool {
    let secret = secret.trim();
    !secret.is_empty()
        && verify(
            Provider::Standard,
            &VerifyConfig::with_secrets([secret]),
            headers,
            body,
            now,
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use webhooks_core::{SigningSecret, sign_v1};

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OTHER: &str = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk=";

    fn signed(secret: &str, at: i64, body: &[u8]) -> Vec<(String, String)> {
        let key = SigningSecret::parse_for_signing(secret).unwrap();
        vec![
            ("webhook-id".into(), "whe_1".into()),
            ("webhook-timestamp".into(), at.to_string()),
            ("webhook-signature".into(), sign_v1("whe_1", at, body, &key)),
        ]
    }

    #[test]
    fn a_delivery_signed_with_the_handler_secret_is_taken() {
        let body = br#"{"provider":"stripe"}"#;
        assert!(from_handler_jobs(
            SECRET,
            &signed(SECRET, 1_000, body),
            body,
            1_010
        ));
    }

    #[test]
    fn unsigned_forged_stale_or_secretless_deliveries_are_refused() {
        let body = br#"{"provider":"stripe"}"#;
        let none: Vec<(String, String)> = Vec::new();
        assert!(!from_handler_jobs(SECRET, &none, body, 1_000));
        assert!(!from_handler_jobs(
            SECRET,
            &signed(OTHER, 1_000, body),
            body,
            1_000
        ));
        assert!(!from_handler_jobs(
            SECRET,
            &signed(SECRET, 1_000, body),
            b"{}",
            1_000
        ));
        assert!(!from_handler_jobs(
            SECRET,
            &signed(SECRET, 1_000, body),
            body,
            10_000
        ));
        assert!(!from_handler_jobs(
            "",
            &signed(SECRET, 1_000, body),
            body,
            1_000
        ));
    }
}
