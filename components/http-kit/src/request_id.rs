//! Request ids: taken from the client's `x-request-id` when it is a sane
//! token (so ids can be correlated across services), generated otherwise.

/// The header carrying the id both ways.
pub const HEADER: &str = "x-request-id";

/// The client's id if acceptable, else a new one.
pub fn from_header(value: Option<&str>) -> String {
    match value {
        Some(v) if is_acceptable(v) => v.to_string(),
        _ => generate(),
    }
}

/// The id for a request with these headers.
pub fn from_headers(headers: &http::HeaderMap) -> String {
    from_header(headers.get(HEADER).and_then(|v| v.to_str().ok()))
}

fn is_acceptable(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// 128 random bits as 32 lowercase hex characters.
pub fn generate() -> String {
    let mut bytes = [0u8; 16];
    // The OS source cannot fail on supported targets; if it ever did, a
    // time-derived id still keeps requests apart in logs.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_well_formed_client_id() {
        assert_eq!(from_header(Some("req-1.a:b_c")), "req-1.a:b_c");
    }

    #[test]
    fn replaces_missing_or_hostile_ids() {
        for bad in [
            None,
            Some(""),
            Some("has space"),
            Some("<script>"),
            Some(&"x".repeat(129)[..]),
        ] {
            let id = from_header(bad);
            assert_eq!(id.len(), 32);
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn reads_the_id_from_request_headers() {
        let mut headers = http::HeaderMap::new();
        headers.insert(HEADER, http::HeaderValue::from_static("abc"));
        assert_eq!(from_headers(&headers), "abc");
        assert_eq!(from_headers(&http::HeaderMap::new()).len(), 32);
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(generate(), generate());
    }
}
