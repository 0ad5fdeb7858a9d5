//! What one delivery sends: the body, made from the org event as it was
//! recorded, and the Standard Webhooks headers. Pure.
//!
//! ```
//! use gatehouse_webhook_delivery::message::{body, rfc3339};
//!
//! let sent = body("key.created", 1_800_000_000, r#"{"key":{"id":"key_1"}}"#).unwrap();
//! assert_eq!(
//!     String::from_utf8(sent).unwrap(),
//!     r#"{"type":"key.created","timestamp":"2027-01-15T08:00:00Z","data":{"key":{"id":"key_1"}}}"#
//! );
//! assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
//! ```

use serde_json::Value;
use webhooks_core::{Signer, SigningKey, SigningSecret, signature_header};

const DAY: i64 = 86_400;

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
        quoted(&rfc3339(created_at)),
        data.trim()
    );
    Some(text.into_bytes())
}

/// Unix seconds as an RFC 3339 date-time in UTC (`2027-01-15T08:00:00Z`).
pub fn rfc3339(seconds: i64) -> String {
    let (year, month, day) = civil(seconds.div_euclid(DAY));
    let of_day = seconds.rem_euclid(DAY);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01: counted in
/// 400-year eras (146 097 days each) of years that start on 1 March, so
/// the leap day ends its year.
fn civil(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days from 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    fn dates_are_right_across_leap_years_and_centuries() {
        for (seconds, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_868_799, "2000-02-29T23:59:59Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (1_800_000_000, "2027-01-15T08:00:00Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(seconds), text, "{seconds}");
        }
    }

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
