//! A provider's published metadata: its discovery document, checked
//! against the issuer it was fetched for and the deployment's outbound
//! policy, and its JWK Set as cached between fetches.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::policy::OutboundPolicy;
use super::{JWKS_REFETCH_FLOOR_SECONDS, METADATA_MAX_AGE_SECONDS};

/// The endpoints of a provider's discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// Must equal the configured issuer exactly.
    pub issuer: String,
    /// Where users are sent to sign in.
    pub authorization_endpoint: String,
    /// Where codes are exchanged.
    pub token_endpoint: String,
    /// The provider's JWK Set.
    pub jwks_uri: String,
    /// The user-info endpoint, if any.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
}

/// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery
/// 1.0, section 4).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Reads a discovery document, refusing one that names another issuer
/// (section 4.3), lacks an endpoint, or names endpoints the policy does
/// not let Gatehouse call.
pub fn parse_discovery(
    body: &[u8],
    expected_issuer: &str,
    policy: &OutboundPolicy,
) -> Result<Discovery, String> {
    let doc: Discovery = serde_json::from_slice(body)
        .map_err(|e| format!("the discovery document is not usable: {e}"))?;
    if doc.issuer != expected_issuer {
        return Err(format!(
            "the discovery document names issuer {} instead of {expected_issuer}",
            doc.issuer
        ));
    }
    check_endpoints(&doc, policy)?;
    Ok(doc)
}

/// Whether the document's endpoints may be used: each keeps the issuer's
/// scheme (an https issuer never sends the client secret or fetches keys
/// in clear), and those Gatehouse calls itself (token, JWK Set) pass the
/// same checks as the issuer, so a document cannot point the server at an
/// address its issuer could not be. Run on cached documents too: the
/// operator's settings may have changed since they were fetched.
pub fn check_endpoints(doc: &Discovery, policy: &OutboundPolicy) -> Result<(), String> {
    let scheme = if doc.issuer.starts_with("https://") {
        "https://"
    } else {
        "http://"
    };
    for (name, url) in [
        ("authorization_endpoint", &doc.authorization_endpoint),
        ("token_endpoint", &doc.token_endpoint),
        ("jwks_uri", &doc.jwks_uri),
    ] {
        if !url.starts_with(scheme) {
            return Err(format!(
                "the discovery document's {name} {url} does not use the issuer's scheme"
            ));
        }
    }
    for (name, url) in [
        ("token_endpoint", &doc.token_endpoint),
        ("jwks_uri", &doc.jwks_uri),
    ] {
        policy
            .check(url)
            .map_err(|why| format!("the discovery document's {name} {url} is refused: {why}"))?;
    }
    Ok(())
}

/// The unverified claims of a JWT (to pick the issuer's keys).
pub fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A cached JWK Set, when it was fetched, and when a fetch was last tried.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedKeys {
    /// The usable keys.
    pub keys: Vec<tokens_core::Jwk>,
    /// Unix seconds.
    pub fetched_at: i64,
    /// Unix seconds; a failed fetch counts too, so a provider that is down
    /// is not asked again before the floor has passed.
    #[serde(default)]
    pub attempted_at: i64,
}

impl CachedKeys {
    /// Whether the set must be fetched again for a token naming `kid`:
    /// when it is too old, or lacks `kid` — and, either way, no fetch was
    /// tried within the floor.
    pub fn needs_refetch(&self, kid: &str, now: i64) -> bool {
        let age = now - self.fetched_at;
        let wanted = age >= METADATA_MAX_AGE_SECONDS || !self.keys.iter().any(|k| k.kid == kid);
        wanted && now - self.attempted_at.max(self.fetched_at) >= JWKS_REFETCH_FLOOR_SECONDS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_public() -> OutboundPolicy {
        OutboundPolicy::new("https://*:443", "false")
    }

    #[test]
    fn discovery_must_name_the_configured_issuer() {
        let doc = serde_json::json!({
            "issuer": "https://idp.test", "authorization_endpoint": "https://idp.test/auth",
            "token_endpoint": "https://idp.test/token", "jwks_uri": "https://idp.test/jwks"
        });
        let bytes = doc.to_string().into_bytes();
        let policy = any_public();
        assert_eq!(
            parse_discovery(&bytes, "https://idp.test", &policy).map(|d| d.jwks_uri),
            Ok("https://idp.test/jwks".to_string())
        );
        assert!(parse_discovery(&bytes, "https://evil.test", &policy).is_err());
        let downgraded = doc
            .to_string()
            .replace("https://idp.test/token", "http://idp.test/token");
        assert!(parse_discovery(downgraded.as_bytes(), "https://idp.test", &policy).is_err());
        assert!(parse_discovery(b"{}", "https://idp.test", &policy).is_err());
        assert_eq!(
            discovery_url("https://idp.test/"),
            "https://idp.test/.well-known/openid-configuration"
        );
    }

    #[test]
    fn discovery_cannot_point_the_server_where_its_issuer_could_not_be() {
        let doc = |jwks: &str| {
            serde_json::json!({
                "issuer": "https://idp.test", "authorization_endpoint": "https://idp.test/auth",
                "token_endpoint": "https://idp.test/token", "jwks_uri": jwks
            })
            .to_string()
        };
        let policy = any_public();
        for jwks in [
            "https://169.254.169.254/latest/meta-data",
            "https://127.0.0.1/jwks",
            "https://10.0.0.5/jwks",
            "https://2130706433/jwks",
            "https://idp.test:8443/jwks",
        ] {
            let refused = parse_discovery(doc(jwks).as_bytes(), "https://idp.test", &policy);
            assert!(
                refused.as_ref().is_err_and(|why| why.contains("jwks_uri")),
                "{jwks}: {refused:?}"
            );
        }
        // Narrowed to the provider's hosts, keys elsewhere are refused.
        let narrow = OutboundPolicy::new("https://idp.test:443", "false");
        assert!(
            parse_discovery(
                doc("https://keys.elsewhere.test/jwks").as_bytes(),
                "https://idp.test",
                &narrow
            )
            .is_err()
        );
        let fine: Discovery =
            serde_json::from_str(&doc("https://idp.test/jwks")).unwrap_or_else(|_| unreachable!());
        assert_eq!(check_endpoints(&fine, &narrow), Ok(()));
        // A cached document is held to the settings of the moment.
        let closed = OutboundPolicy::new("https://oidc-not-configured.invalid:443", "false");
        assert!(check_endpoints(&fine, &closed).is_err());
    }

    #[test]
    fn key_sets_are_refetched_for_unknown_kids_no_more_than_the_floor_allows() {
        let key = tokens_core::SigningKey::from_secret(tokens_core::Algorithm::EdDSA, &[1; 32])
            .map(|k| k.jwk())
            .unwrap_or_else(|_| unreachable!());
        let set = CachedKeys {
            keys: vec![key.clone()],
            fetched_at: 1000,
            attempted_at: 1000,
        };
        assert!(!set.needs_refetch(&key.kid, 1001));
        assert!(!set.needs_refetch("new-kid", 1000 + JWKS_REFETCH_FLOOR_SECONDS - 1));
        assert!(set.needs_refetch("new-kid", 1000 + JWKS_REFETCH_FLOOR_SECONDS));
        assert!(set.needs_refetch(&key.kid, 1000 + METADATA_MAX_AGE_SECONDS));
        // A failed fetch holds the next one off for the floor too.
        let failed = CachedKeys {
            keys: Vec::new(),
            fetched_at: 0,
            attempted_at: 5000,
        };
        assert!(!failed.needs_refetch("kid", 5000 + JWKS_REFETCH_FLOOR_SECONDS - 1));
        assert!(failed.needs_refetch("kid", 5000 + JWKS_REFETCH_FLOOR_SECONDS));
        assert!(unverified_claims("a.eyJpc3MiOiJ4In0.c").is_some_and(|c| c["iss"] == "x"));
        assert!(unverified_claims("a.!!.c").is_none());
    }
}
