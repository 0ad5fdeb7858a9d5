//! The deployment's signing keys: made on first need, sealed at rest
//! with the deployment's data key (`gatehouse_secrets::sealing`),
//! published in JWKS from creation, rotated by the operator.
//!
//! Rotation makes a new key that is published at once but signs only from
//! `active_from` (by default [`DEFAULT_PUBLISH_LEAD_SECONDS`] later), so
//! verifiers that cache JWKS learn it before any token needs it. The key it
//! replaces keeps signing until then, and stays published until every
//! token it can have signed has expired.

use gatehouse_auth::db;
use gatehouse_auth::jwt::{issuer, published_keys};
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{FieldError, Problem, Response, idempotency::unix_now, response};
use gatehouse_secrets::sealed::{Binding, Kind};
use gatehouse_secrets::sealing;
use serde::Deserialize;
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;
use tokens_core::{Algorithm, SigningKey};

/// How long a rotated-in key is published before it signs, by default.
pub const DEFAULT_PUBLISH_LEAD_SECONDS: i64 = 300;

/// The longest lifetime a token may have (variable `token_max_ttl_seconds`).
pub async fn max_ttl() -> i64 {
    spin_sdk::variables::get("token_max_ttl_seconds")
        .await
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &i64| *n > 0)
        .unwrap_or(900)
}

fn new_key(alg: Algorithm) -> SigningKey {
    loop {
        // A P-256 scalar at or above the group order is drawn again (odds 2^-32).
        if let Ok(key) = SigningKey::from_secret(alg, &identity_core::random::bytes::<32>()) {
            return key;
        }
    }
}

async fn insert(
    conn: &Connection,
    key: &SigningKey,
    active_from: i64,
    now: i64,
) -> Result<String, Problem> {
    let jwk = key.jwk();
    let binding = Binding::deployment(Kind::SigningKey, &jwk.kid);
    let sealed = sealing::seal(conn, &binding, &key.secret_bytes(), now).await?;
    db::exec(
        conn,
        "INSERT INTO signing_keys (kid, alg, public_jwk, private_sealed, created_at, active_from) VALUES (?, ?, ?, ?, ?, ?)",
        vec![
            db::text(&jwk.kid),
            db::text(jwk.alg.clone()),
            db::text(serde_json::to_string(&jwk).map_err(|_| Problem::internal())?),
            db::text(sealed),
            db::int(now),
            db::int(active_from),
        ],
    )
    .await?;
    Ok(jwk.kid)
}

/// The key that signs now: the newest one already active. The first
/// request that needs one makes an Ed25519 key.
pub async fn current(conn: &Connection, now: i64) -> Result<(String, SigningKey), Problem> {
    let rows = db::query(
        conn,
        "SELECT kid, alg, private_sealed FROM signing_keys WHERE active_from <= ? AND (published_until IS NULL OR published_until > ?)
         ORDER BY active_from DESC, rowid DESC LIMIT 1",
        vec![db::int(now), db::int(now)],
    )
    .await?;
    let Some(row) = rows.first() else {
        let key = new_key(Algorithm::EdDSA);
        let kid = insert(conn, &key, now, now).await?;
        return Ok((kid, key));
    };
    let kid = db::get_text(row, 0);
    let alg = Algorithm::parse(&db::get_text(row, 1)).ok_or_else(Problem::internal)?;
    let binding = Binding::deployment(Kind::SigningKey, &kid);
    let secret = sealing::open(conn, &binding, &db::get_text(row, 2))
        .await?
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            eprintln!("tokens: signing key {kid} does not open with its data key");
            Problem::internal()
        })?;
    let key = SigningKey::from_secret(alg, &secret).map_err(|_| Problem::internal())?;
    Ok((kid, key))
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(request_id: &str) -> Result<Response, Problem> {
    let conn = db::open().await?;
    let now = unix_now();
    let mut keys = published_keys(&conn, now).await?;
    if keys.is_empty() {
        current(&conn, now).await?;
        keys = published_keys(&conn, now).await?;
    }
    let body = serde_json::to_vec(&serde_json::json!({ "keys": keys }))
        .map_err(|_| Problem::internal())?;
    let mut res = response::cacheable("application/json", &body, None, request_id);
    // Short enough that a rotation's lead time covers it.
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=60"),
    );
    Ok(res)
}

/// `GET /.well-known/openid-configuration`.
pub async fn discovery(request_id: &str) -> Result<Response, Problem> {
    let issuer = issuer().await;
    let body = serde_json::json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/v1/tokens"),
        "id_token_signing_alg_values_supported": ["EdDSA", "ES256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "grant_types_supported": ["urn:ietf:params:oauth:grant-type:token-exchange"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "azp", "org", "org_role", "teams", "roles", "permissions", "owner"],
    });
    Ok(response::json(200, &body, request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    publish_lead_seconds: Option<i64>,
}

impl Validate for Rotate {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self
            .alg
            .as_deref()
            .is_some_and(|a| Algorithm::parse_signing(a).is_none())
        {
            errors.push(FieldError::new(
                "/alg",
                "invalid",
                "alg must be EdDSA or ES256",
            ));
        }
        if self
            .publish_lead_seconds
            .is_some_and(|s| !(0..=86_400).contains(&s))
        {
            errors.push(FieldError::new(
                "/publish_lead_seconds",
                "invalid_range",
                "publish_lead_seconds must be 0 to 86400",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `POST /v1/signing-keys/$rotate` (operator): a new key, published now,
/// signing after the lead time; the current key stays published until its
/// last possible token expires.
pub async fn rotate(req: Request, request_id: &str) -> Result<Response, Problem> {
    gatehouse_http::operator::require(&req).await?;
    let body: Rotate = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let conn = db::open().await?;
    let now = unix_now();
    let alg = body
        .alg
        .as_deref()
        .and_then(Algorithm::parse_signing)
        .unwrap_or(Algorithm::EdDSA);
    let active_from = now
        + body
            .publish_lead_seconds
            .unwrap_or(DEFAULT_PUBLISH_LEAD_SECONDS);
    // Keys that already signed keep being published until their last token expires.
    let retire_at = active_from + max_ttl().await + gatehouse_auth::jwt::LEEWAY_SECONDS;
    current(&conn, now).await?;
    db::exec(
        &conn,
        "UPDATE signing_keys SET published_until = ? WHERE published_until IS NULL",
        vec![db::int(retire_at)],
    )
    .await?;
    let kid = insert(&conn, &new_key(alg), active_from, now).await?;
    let body = serde_json::json!({"kid": kid, "alg": alg.as_str(), "active_from": active_from, "previous_published_until": retire_at});
    Ok(response::json(201, &body, request_id))
}
