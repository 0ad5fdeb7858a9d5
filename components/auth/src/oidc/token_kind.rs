//! Access tokens told from ID tokens. An ID token's audience is the
//! client id, so a provider whose bearer audiences include its client id
//! (Entra access tokens for an app's own API carry it) cannot tell the two
//! apart by audience: an ID token, which any sign-in to that client hands
//! out, would then authenticate as its subject. What tells them apart:
//! - the JOSE header `typ` `at+jwt` (RFC 9068, section 2.1) marks an access
//!   token where the provider sets it;
//! - `nonce`, `at_hash` and `c_hash` are ID token claims (OpenID Connect
//!   Core, section 2) no access token carries;
//! - `auth_time` is an ID token claim too, but RFC 9068 lets access tokens
//!   carry it (Okta's do): it marks an ID token only on a token that names
//!   no scope (`scope`, `scp`), which ID tokens never do;
//! - an untyped token whose audience is the client id itself must grant
//!   something (`scope`, `scp` or `roles`), as an access token for the
//!   app's own API does, or it is taken for an ID token.
//!
//! A provider may require `typ: at+jwt` of every bearer token
//! (`require_at_jwt_typ`), the strictest rule, when it types its tokens.

use base64::Engine as _;
use serde_json::{Map, Value};

/// What a token is, by its header and claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Typed `at+jwt`.
    Access,
    /// Carries ID token claims and is not typed `at+jwt`.
    Id,
    /// Neither typed nor marked: an access token of a provider that does
    /// not type them (Auth0, Okta, Entra).
    Untyped,
}

/// The `typ` of a token's JOSE header, if it has one.
pub fn header_type(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(map) => map.get("typ")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// Whether a `typ` names a JWT access token: `at+jwt`, or its full media
/// type `application/at+jwt` (RFC 7515 lets `typ` drop `application/`),
/// in any case.
pub fn is_access_token_type(typ: &str) -> bool {
    let typ = typ.to_ascii_lowercase();
    typ == "at+jwt" || typ == "application/at+jwt"
}

/// The kind of a token with header `typ` and `claims`.
pub fn kind(typ: Option<&str>, claims: &Map<String, Value>) -> TokenKind {
    if typ.is_some_and(is_access_token_type) {
        return TokenKind::Access;
    }
    let has = |name: &str| claims.contains_key(name);
    let id_only = ["nonce", "at_hash", "c_hash"].iter().any(|c| has(c));
    let sign_in_time = has("auth_time") && !has("scope") && !has("scp");
    if id_only || sign_in_time {
        TokenKind::Id
    } else {
        TokenKind::Untyped
    }
}

/// The kind of a token for a provider whose client id is `client_id`: as
/// [`kind`], except that an untyped token addressed to the client itself
/// (its `aud` names the client id, as every ID token's does) that grants
/// nothing (no `scope`, `scp` or `roles`: an access token for an app's own
/// API carries one) is taken for an ID token, since nothing else tells the
/// two apart.
pub fn kind_for_client(
    typ: Option<&str>,
    claims: &Map<String, Value>,
    client_id: &str,
) -> TokenKind {
    let found = kind(typ, claims);
    let to_client = match claims.get("aud") {
        Some(Value::String(aud)) => aud == client_id,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    let grants = ["scope", "scp", "roles"]
        .iter()
        .any(|c| claims.contains_key(*c));
    if found == TokenKind::Untyped && to_client && !grants {
        TokenKind::Id
    } else {
        found
    }
}

/// Why a provider does not take a token of some kind as a bearer
/// credential, or `None` when it does.
pub fn refusal(kind: TokenKind, require_at_jwt_typ: bool) -> Option<&'static str> {
    match kind {
        TokenKind::Access => None,
        TokenKind::Id => Some("an ID token is not a bearer credential: send an access token"),
        TokenKind::Untyped if require_at_jwt_typ => {
            Some("this provider's bearer tokens must be access tokens typed at+jwt")
        }
        TokenKind::Untyped => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn token_with_header(header: Value) -> String {
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        format!("{}.{}.sig", b64(&header), b64(&json!({"sub": "x"})))
    }

    #[test]
    fn the_header_type_is_read_without_verifying() {
        let typed = token_with_header(json!({"alg": "RS256", "typ": "at+jwt", "kid": "k"}));
        assert_eq!(header_type(&typed).as_deref(), Some("at+jwt"));
        let untyped = token_with_header(json!({"alg": "RS256", "kid": "k"}));
        assert_eq!(header_type(&untyped), None);
        assert_eq!(header_type("!!.e30.x"), None);
        assert!(is_access_token_type("AT+JWT"));
        assert!(is_access_token_type("application/at+jwt"));
        assert!(!is_access_token_type("JWT"));
    }

    #[test]
    fn id_tokens_are_told_by_their_claims_unless_typed_at_jwt() {
        // The test provider's ID token: no typ, a nonce.
        let id = claims(json!({"sub": "bob", "aud": "web", "nonce": "n", "iss": "i"}));
        assert_eq!(kind(None, &id), TokenKind::Id);
        assert_eq!(kind(Some("JWT"), &id), TokenKind::Id);
        for claim in ["at_hash", "c_hash"] {
            let mut map = claims(json!({"sub": "bob"}));
            map.insert(claim.into(), "h".into());
            assert_eq!(kind(None, &map), TokenKind::Id, "{claim}");
        }
        assert_eq!(
            kind(None, &claims(json!({"sub": "bob", "auth_time": 1}))),
            TokenKind::Id
        );
        // Okta's access tokens carry auth_time, and a scope.
        let okta = claims(json!({"sub": "bob", "auth_time": 1, "scp": ["openid"], "cid": "c"}));
        assert_eq!(kind(None, &okta), TokenKind::Untyped);
        let auth0 = claims(json!({"sub": "bob", "scope": "read", "azp": "c"}));
        assert_eq!(kind(Some("JWT"), &auth0), TokenKind::Untyped);
        assert_eq!(kind(Some("at+jwt"), &id), TokenKind::Access);
    }

    #[test]
    fn an_untyped_token_for_the_client_itself_must_grant_something() {
        // An ID token without nonce or auth_time: only its audience, the
        // client id, and the missing scope give it away.
        let bare_id = claims(json!({"sub": "bob", "aud": "app-1", "iss": "i"}));
        assert_eq!(kind(None, &bare_id), TokenKind::Untyped);
        assert_eq!(kind_for_client(None, &bare_id, "app-1"), TokenKind::Id);
        // Entra access tokens for the app's own API carry scp or roles.
        let delegated = claims(json!({"sub": "bob", "aud": ["app-1"], "scp": "read"}));
        assert_eq!(
            kind_for_client(None, &delegated, "app-1"),
            TokenKind::Untyped
        );
        let app = claims(json!({"sub": "svc", "aud": "app-1", "roles": ["Reader"]}));
        assert_eq!(kind_for_client(None, &app, "app-1"), TokenKind::Untyped);
        // A token for another audience is judged as before; a typed one too.
        let api = claims(json!({"sub": "bob", "aud": "https://api.example.com"}));
        assert_eq!(kind_for_client(None, &api, "app-1"), TokenKind::Untyped);
        assert_eq!(
            kind_for_client(Some("at+jwt"), &bare_id, "app-1"),
            TokenKind::Access
        );
    }

    #[test]
    fn a_provider_requiring_at_jwt_takes_only_typed_tokens() {
        assert_eq!(refusal(TokenKind::Access, true), None);
        assert_eq!(refusal(TokenKind::Access, false), None);
        assert_eq!(refusal(TokenKind::Untyped, false), None);
        assert!(refusal(TokenKind::Untyped, true).is_some());
        assert!(refusal(TokenKind::Id, false).is_some());
        assert!(refusal(TokenKind::Id, true).is_some());
    }
}
