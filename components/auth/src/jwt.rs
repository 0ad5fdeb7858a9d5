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
    use crate::{authority, db};
    use gatehouse_http::principal::{OrgRole, Principal, Subject};
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
            return crate::service_token::authenticate(conn, token, &kid, &claimed, org, now).await;
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
        let principal = principal_from_claims(&claims).ok_or_else(refused)?;
        standing_now(conn, principal, &claims, now).await
    }

    /// A user's token held against the user's standing now: refused once
    /// the account is inactive, the token's generation is past, or the
    /// user left the token's org; else narrowed to what the user still
    /// holds. A token issued while an admin acted as the user also needs
    /// that admin to still be an admin who may impersonate.
    async fn standing_now(
        conn: &Connection,
        token: Principal,
        claims: &serde_json::Map<String, serde_json::Value>,
        now: i64,
    ) -> Result<Principal, Problem> {
        let id = match &token.subject {
            Subject::User { id } => id,
            Subject::ApiKey { id, .. } => {
                let id = id.clone();
                return key_standing_now(conn, token, &id, now).await;
            }
            _ => return Ok(token),
        };
        let generation = claims
            .get(authority::GENERATION_CLAIM)
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        let standing = authority::standing(conn, id, now)
            .await?
            .ok_or_else(refused)?;
        let principal =
            authority::current_principal(&token, generation, &standing).map_err(|why| {
                eprintln!("auth: JWT refused: the user's standing changed ({why:?})");
                refused()
            })?;
        if let (Some(acting), Some(org_id)) = (&principal.acting_as, &principal.org_id) {
            let admin = authority::standing(conn, &acting.impersonator_user_id, now).await?;
            let still_admin = admin.as_ref().is_some_and(|a| {
                a.status == "active"
                    && a.memberships.iter().any(|m| {
                        &m.org_id == org_id
                            && m.role == OrgRole::Admin
                            && m.grants
                                .permissions
                                .iter()
                                .any(|p| p == crate::impersonation::IMPERSONATE_PERMISSION)
                    })
            });
            if !still_admin {
                eprintln!("auth: JWT refused: the impersonating admin may no longer act");
                return Err(refused());
            }
        }
        Ok(principal)
    }

    /// A key's token stands while the key does (not revoked, not
    /// expired) and its owner is still an active member of its org.
    async fn key_standing_now(
        conn: &Connection,
        token: Principal,
        key_id: &str,
        now: i64,
    ) -> Result<Principal, Problem> {
        let key = authority::key_standing(conn, key_id, now).await?;
        let owner = match &key {
            Some(key) => authority::standing(conn, &key.owner_user_id, now).await?,
            None => None,
        };
        let stands = key.as_ref().is_some_and(|key| {
            authority::key_token_stands(key, token.org_id.as_deref(), owner.as_ref(), now)
        });
        if !stands {
            eprintln!("auth: JWT refused: the key was revoked or expired, or its owner left");
            return Err(refused());
        }
        Ok(token)
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
