//! What one delivery sends: the body, made from the org event as it was
//! recorded, and the Standard Webhooks headers. Pure.
//!
//! ```
//! use gatehouse_webhook_delivery::message::body;
//!
//! let sent = body("key.created", 1_800_000_000, r#"{"key":{"id":"key_1"}}"#).unwrap();
//! assert_eq!(
//!     String::from_utf8(sent).unwrap(),
//!     r#"{"type":"key.created","timestamp":"2027-01-15T08:00:00Z","data":{"key":{"id":"key_1"}}}"#
//! );
//! ```

use gatehouse_http::time::format_rfc3339;
use serde_json::Value;
use webhooks_core::{Signer, SigningKey, SigningSecret, signature_header};

/// The body of every attempt at an event, resends too: `type`,
/// `timestamp` (when the event happened, RFC 3339) and `data`, the event's
/// stored JSON text as it is, so the bytes never change from one attempt
/// to the next. None when `data` is not a JSON object.
pub fn body(event_type: &str, created_at: i64, data: &str) -> Option<Vec<u8>> {
    if !serde_json::from_str::<Value>(data).is_ok_and(|v| v.is_object()) {
        return None;
    }
    let quoted = |s: &str| Value::from(s).to_string();
    let text = format!(
        "{{\"type\":{},\"timestamp\":{},\"data\":{}}}",
        quoted(event_type),
        quoted(&format_rfc3339(created_at)),
        data.trim()
    );
    Some(text.into_bytes())
}

/// An endpoint's signing material, opened.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The current secret: every delivery carries its `v1`.
    pub secret: SigningSecret,
    /// The secret before the last rotation and when it stops signing.
    pub previous: Option<(SigningSecret, i64)>,
    /// The Ed25519 key of an endpoint that asked for `v1a`.
    pub signing_key: Option<SigningKey>,
}

impl Keys {
    /// Who signs a delivery at `now`: the current secret, the previous one
    /// while its time lasts, and the Ed25519 key when there is one.
    pub fn signers(&self, now: i64) -> Vec<Signer> {
        let mut signers = vec![Signer::Hmac(self.secret.clone())];
        if let Some((previous, until)) = &self.previous
            && *until > now
        {
            signers.push(Signer::Hmac(previous.clone()));
        }
        if let Some(key) = &self.signing_key {
            signers.push(Signer::Ed25519(key.clone()));
        }
        signers
    }
}

/// The headers of one attempt at `timestamp`: `webhook-id` (the event id,
/// the same on every attempt and resend, so receivers deduplicate),
/// `webhook-timestamp`, `webhook-signature` and the content type.
pub fn headers(
    event_id: &str,
    timestamp: i64,
    body: &[u8],
    keys: &Keys,
) -> [(&'static str, String); 4] {
    [
        ("content-type", "application/json".to_string()),
        ("webhook-id", event_id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            signature_header(event_id, timestamp, body, &keys.signers(timestamp)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_keeps_the_stored_data_bytes_as_they_are() -> Result<(), serde_json::Error> {
        // Key order and a number too large for an f64 survive as stored.
        let data = r#"{"z":1,"a":{"big":123456789012345678901234567890},"é":"☕"}"#;
        let sent = body("spend.unusual", 1_800_000_000, data).unwrap_or_default();
        let text = String::from_utf8_lossy(&sent).into_owned();
        assert!(text.ends_with(&format!(",\"data\":{data}}}")), "{text}");
        let parsed: Value = serde_json::from_slice(&sent)?;
        assert_eq!(parsed["type"], "spend.unusual");
        assert_eq!(parsed["timestamp"], "2027-01-15T08:00:00Z");
        assert_eq!(parsed["data"]["é"], "☕");
        assert_eq!(body("spend.unusual", 1_800_000_000, data), Some(sent));
        Ok(())
    }

    #[test]
    fn data_that_is_not_a_json_object_makes_no_body() {
        for data in ["", "[]", "12", "{\"a\":", "{} {}"] {
            assert_eq!(body("key.created", 0, data), None, "{data:?}");
        }
    }

    fn keys(previous_until: Option<i64>, ed25519: bool) -> Result<Keys, webhooks_core::KeyError> {
        Ok(Keys {
            secret: SigningSecret::from_random(&[1; 32])?,
            previous: match previous_until {
                Some(until) => Some((SigningSecret::from_random(&[2; 32])?, until)),
                None => None,
            },
            signing_key: ed25519.then(|| SigningKey::from_seed(&[3; 32])),
        })
    }

    fn versions(signature: &str) -> Vec<&str> {
        signature
            .split(' ')
            .filter_map(|s| s.split_once(',').map(|(v, _)| v))
            .collect()
    }

    #[test]
    fn the_previous_secret_signs_until_it_expires_and_v1a_when_asked()
    -> Result<(), webhooks_core::KeyError> {
        let body = br#"{"type":"key.created"}"#;
        let one = headers("evt_1", 1_000, body, &keys(None, false)?);
        assert_eq!(one[1], ("webhook-id", "evt_1".to_string()));
        assert_eq!(one[2], ("webhook-timestamp", "1000".to_string()));
        assert_eq!(versions(&one[3].1), ["v1"]);
        let rotating = keys(Some(1_001), true)?;
        let during = headers("evt_1", 1_000, body, &rotating);
        assert_eq!(versions(&during[3].1), ["v1", "v1", "v1a"]);
        // The current secret's signature is the same whatever else signs.
        assert!(during[3].1.starts_with(&one[3].1));
        let after = headers("evt_1", 1_001, body, &rotating);
        assert_eq!(versions(&after[3].1), ["v1", "v1a"]);
        Ok(())
    }
}
