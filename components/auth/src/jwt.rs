//! JWTs as credentials: Gatehouse's own, verified against the deployment's
//! published signing keys; those of an org's own identity providers (see
//! [`crate::oidc`]); and those registered services sign with their own
//! keys, verified against the org's registry. Each is checked
//! (algorithm allow-list, `kid` lookup, `iss`, `aud`, `exp`, `nbf`, with a
//! small leeway), then read as a [`Principal`]. A token carries what it was issued with, and lives only
//! minutes: that is the bargain of offline verification.

use gatehouse_http::principal::{ActingAs, Credential, OrgRole, Principal, Subject};
use serde_json::{Map, Value};

/// The audience of tokens meant for Gatehouse's own routes.
pub const AUDIENCE: &str = "gatehouse";
/// Seconds of clock skew tolerated.
pub const LEEWAY_SECONDS: i64 = 60;
/// The longest a registered service's own token may live.
pub const MAX_SERVICE_TOKEN_SECONDS: i64 = 3600;

/// Whether a bearer token has a JWT's shape (three dot-separated parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

fn strings(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    claims
        .get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The principal a verified token's claims describe; `None` when `sub`
/// names no user or key.
pub fn principal_from_claims(claims: &Map<String, Value>) -> Option<Principal> {
    let sub = claims.get("sub")?.as_str()?;
    let subject = if sub.starts_with("usr_") {
        Subject::User {
            id: sub.to_string(),
        }
    } else if sub.starts_with("key_") {
        Subject::ApiKey {
            id: sub.to_string(),
            owner_user_id: claims
                .get("owner")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    } else {
        return None;
    };
    let org_role = match claims.get("org_role").and_then(Value::as_str) {
        Some("admin") => Some(OrgRole::Admin),
        Some("member") => Some(OrgRole::Member),
        _ => None,
    };
    Some(Principal {
        subject,
        org_id: claims
            .get("org")
            .and_then(Value::as_str)
            .map(str::to_string),
        org_role,
        team_ids: strings(claims, "teams"),
        roles: strings(claims, "roles"),
        permissions: strings(claims, "permissions"),
        // RFC 8693: the admin who acted as `sub` when the token was issued.
        acting_as: claims
            .get("act")
            .and_then(|act| act.get("sub"))
            .and_then(Value::as_str)
            .map(|id| ActingAs {
                impersonator_user_id: id.to_string(),
            }),
        credential: Credential::Jwt,
    })
}

#[cfg(target_arch = "wasm32")]
pub use store::{authenticate, issuer, published_keys};

#[cfg(target_arch = "wasm32")]
mod store {
    use super::{AUDIENCE, LEEWAY_SECONDS, principal_from_claims};
    use crate::db;
    use gatehouse_http::principal::{Credential, Principal, Subject};
    use gatehouse_http::{ErrorCode, Problem, idempotency::unix_now};
    use spin_sdk::sqlite::Connection;
    use tokens_core::{Expectations, Jwk};

    /// The issuer: the deployment's public base URL.
    pub async fn issuer() -> String {
        spin_sdk::variables::get("public_base_url")
            .await
            .map(|v| v.trim_end_matches('/').to_string())
            .unwrap_or_else(|_| "http://127.0.0.1:3000".to_string())
    }

    /// The public keys in JWKS now.
    pub async fn published_keys(conn: &Connection, now: i64) -> Result<Vec<Jwk>, Problem> {
        let rows = db::query(
            conn,
            "SELECT public_jwk FROM signing_keys WHERE published_until IS NULL OR published_until > ? ORDER BY created_at DESC, rowid DESC",
            vec![db::int(now)],
        )
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(&db::get_text(r, 0)).ok())
            .collect())
    }

    /// The published key a token names by `kid`, if it is published now
    /// (the verify path reads that one row, not the whole set).
    async fn published_key(conn: &Connection, kid: &str, now: i64) -> Result<Vec<Jwk>, Problem> {
        let rows = db::query(
            conn,
            "SELECT public_jwk FROM signing_keys WHERE kid = ? AND (published_until IS NULL OR published_until > ?)",
            vec![db::text(kid), db::int(now)],
        )
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(&db::get_text(r, 0)).ok())
            .collect())
    }

    fn refused() -> Problem {
        Problem::new(ErrorCode::Unauthenticated)
            .detail("the credentials are invalid or expired")
            .header("www-authenticate", "Bearer error=\"invalid_token\"")
    }

    /// Verifies a JWT and reads its principal: one Gatehouse issued, one
    /// of an org's OpenID Connect providers, or one a registered service
    /// signed with a key of the registry. `org` is the org id `X-Org`
    /// names, if any (it picks among providers several orgs configured).
    pub async fn authenticate(
        conn: &Connection,
        token: &str,
        org: Option<&str>,
    ) -> Result<Principal, Problem> {
        let now = unix_now();
        let issuer = issuer().await;
        let kid = tokens_core::key_id(token).unwrap_or_default();
        // The unverified `iss` only picks where to look for the key.
        let claimed = crate::oidc::unverified_claims(token).unwrap_or_default();
        let iss = claimed.get("iss").and_then(serde_json::Value::as_str);
        if iss != Some(issuer.as_str()) {
            if let Some(principal) = crate::oidc::authenticate(conn, token, &claimed, org).await? {
                return Ok(principal);
            }
            return service_token(conn, token, &kid, now).await;
        }
        let keys = published_key(conn, &kid, now).await?;
        let expect = Expectations {
            issuer: &issuer,
            audiences: &[AUDIENCE],
            now,
            leeway: LEEWAY_SECONDS,
        };
        let claims = tokens_core::verify(token, &keys, &expect).map_err(|why| {
            eprintln!("auth: JWT refused: {why:?}");
            refused()
        })?;
        principal_from_claims(&claims).ok_or_else(refused)
    }

    /// A token a registered service signed: its `iss` is the service's
    /// name, its `aud` names Gatehouse, it lives at most
    /// [`MAX_SERVICE_TOKEN_SECONDS`](super::MAX_SERVICE_TOKEN_SECONDS), and
    /// its key is not revoked (checked on every request).
    async fn service_token(
        conn: &Connection,
        token: &str,
        kid: &str,
        now: i64,
    ) -> Result<Principal, Problem> {
        let rows = db::query(
            conn,
            "SELECT k.public_jwk, s.name, s.org_id, s.permissions FROM service_keys k JOIN services s ON s.service_id = k.service_id
             WHERE k.kid = ? AND k.revoked_at IS NULL",
            vec![db::text(kid)],
        )
        .await?;
        let row = rows.first().ok_or_else(|| {
            eprintln!("auth: JWT refused: UnknownKey");
            refused()
        })?;
        let jwk: Jwk =
            serde_json::from_str(&db::get_text(row, 0)).map_err(|_| Problem::internal())?;
        let name = db::get_text(row, 1);
        let expect = Expectations {
            issuer: &name,
            audiences: &[AUDIENCE],
            now,
            leeway: LEEWAY_SECONDS,
        };
        let claims =
            tokens_core::verify(token, std::slice::from_ref(&jwk), &expect).map_err(|why| {
                eprintln!("auth: service JWT refused: {why:?}");
                refused()
            })?;
        let exp = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(i64::MAX);
        if exp - now > super::MAX_SERVICE_TOKEN_SECONDS + LEEWAY_SECONDS {
            eprintln!("auth: service JWT refused: lives too long");
            return Err(refused());
        }
        Ok(Principal {
            subject: Subject::Service { name },
            org_id: Some(db::get_text(row, 2)),
            org_role: None,
            team_ids: Vec::new(),
            roles: Vec::new(),
            permissions: serde_json::from_str(&db::get_text(row, 3)).unwrap_or_default(),
            acting_as: None,
            credential: Credential::Jwt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_users_token_becomes_a_user_principal() {
        let p = principal_from_claims(&claims(serde_json::json!({
            "sub": "usr_1", "org": "org_1", "org_role": "admin", "teams": ["team_1"],
            "roles": ["reader"], "permissions": ["docs:read"]
        })));
        let p = p.unwrap_or_else(|| unreachable!());
        assert_eq!(p.subject, Subject::User { id: "usr_1".into() });
        assert_eq!(
            (p.org_id.as_deref(), p.org_role),
            (Some("org_1"), Some(OrgRole::Admin))
        );
        assert_eq!((p.team_ids.len(), p.credential), (1, Credential::Jwt));
        assert!(p.has_permission("docs:read"));
    }

    #[test]
    fn a_keys_token_keeps_its_owner_and_unknown_subjects_are_refused() {
        let p = principal_from_claims(&claims(
            serde_json::json!({"sub": "key_1", "owner": "usr_9"}),
        ));
        assert_eq!(
            p.map(|p| p.subject),
            Some(Subject::ApiKey {
                id: "key_1".into(),
                owner_user_id: Some("usr_9".into())
            })
        );
        assert!(principal_from_claims(&claims(serde_json::json!({"sub": "svc_x"}))).is_none());
        assert!(principal_from_claims(&claims(serde_json::json!({}))).is_none());
        assert!(looks_like_jwt("a.b.c") && !looks_like_jwt("gk_abc"));
    }
}
