//! The public keys a registered service signs its own tokens with.
//!
//! A key's id is its RFC 7638 thumbprint, so the same key has the same id
//! in every org: key ids are unique per org, and nothing here tells one
//! org whether another holds a key. Registering a key takes proof of
//! possession of its private half: the admin first gets a challenge for
//! the service and key (`POST …/keys/$challenge`), then registers the key
//! with a compact JWS that key signed over that challenge (see
//! [`gatehouse_auth::service_token::check_proof`]). Every bad proof gets
//! the same answer.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_auth::service_token::{PROOF_AUDIENCE, check_proof};
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use identity_core::token;
use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;
use tokens_core::Jwk;

use crate::services::{Service, load};

/// How long a challenge can be used after it is issued.
const CHALLENGE_SECONDS: i64 = 300;
/// Live challenges kept per service; issuing another drops the oldest.
const LIVE_CHALLENGES: i64 = 10;
/// The prefix of a challenge.
const CHALLENGE_PREFIX: &str = "gkc_";
/// The longest proof accepted, in characters.
const MAX_PROOF_LENGTH: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicJwk {
    kty: String,
    crv: String,
    x: String,
    #[serde(default)]
    y: Option<String>,
    // Accepted and ignored: the registry names keys by thumbprint.
    #[serde(default)]
    #[allow(dead_code)]
    kid: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    #[allow(dead_code)]
    key_use: Option<String>,
}

impl PublicJwk {
    fn checked(&self) -> Result<Jwk, Problem> {
        Jwk::from_public(&self.kty, &self.crv, &self.x, self.y.as_deref()).map_err(|_| {
            invalid(FieldError::new(
                "/jwk",
                "invalid_key",
                "jwk must be an Ed25519 (OKP) or P-256 (EC) public key",
            ))
        })
    }
}

fn invalid(error: FieldError) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the request body has invalid fields")
        .errors(vec![error])
}

/// One answer for every proof that fails, whatever the reason: a wrong
/// key or signature, a challenge that is unknown, expired, used, or
/// another org's or service's.
fn invalid_proof() -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the proof of possession of the key is not valid")
        .errors(vec![FieldError::new(
            "/proof",
            "invalid_proof",
            "proof must be a JWS signed by this key over a live challenge of this service and key (POST …/keys/$challenge); a challenge is used once",
        )])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeRequest {
    jwk: PublicJwk,
}

impl Validate for ChallengeRequest {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

/// What the proof signs: the claims, in the JWS header `alg` and `kid`.
#[derive(Serialize)]
struct ProofClaims {
    iss: String,
    aud: &'static str,
    challenge: String,
    exp: i64,
}

#[derive(Serialize)]
struct Challenge {
    challenge: String,
    kid: String,
    alg: String,
    expires_at: i64,
    claims: ProofClaims,
}

/// Drops expired challenges of the org and all but the newest few of the
/// service, so issuing them cannot grow the table without bound.
async fn prune(tenant: &Tenant<'_>, service: &Service, now: i64) -> Result<(), Problem> {
    tenant
        .exec(
            "DELETE FROM service_key_challenges WHERE org_id = ?1 AND expires_at <= ?",
            vec![db::int(now)],
        )
        .await?;
    tenant
        .exec(
            "DELETE FROM service_key_challenges WHERE org_id = ?1 AND service_id = ?2 AND digest NOT IN
             (SELECT digest FROM service_key_challenges WHERE org_id = ?1 AND service_id = ?2 ORDER BY created_at DESC, rowid DESC LIMIT ?3)",
            vec![db::text(&service.id), db::int(LIVE_CHALLENGES - 1)],
        )
        .await?;
    Ok(())
}

/// `POST /v1/services/{name}/keys/$challenge`: a single-use challenge,
/// valid for [`CHALLENGE_SECONDS`], for registering `jwk` to the service.
/// The answer names the key's `kid` and `alg` and the claims the proof
/// signs; only the challenge's digest is stored.
pub async fn challenge(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("services")?;
    let tenant = caller.tenant()?;
    let service = load(&tenant, name).await?;
    let body: ChallengeRequest = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let jwk = body.jwk.checked()?;
    let now = unix_now();
    prune(&tenant, &service, now).await?;
    let issued = token::issue(CHALLENGE_PREFIX);
    let expires_at = now + CHALLENGE_SECONDS;
    tenant
        .exec(
            "INSERT INTO service_key_challenges (org_id, digest, service_id, kid, created_at, expires_at) VALUES (?1, ?, ?, ?, ?, ?)",
            vec![
                db::text(&issued.digest),
                db::text(&service.id),
                db::text(&jwk.kid),
                db::int(now),
                db::int(expires_at),
            ],
        )
        .await?;
    let body = Challenge {
        claims: ProofClaims {
            iss: service.name.clone(),
            aud: PROOF_AUDIENCE,
            challenge: issued.secret.clone(),
            exp: expires_at,
        },
        challenge: issued.secret,
        kid: jwk.kid,
        alg: jwk.alg,
        expires_at,
    };
    Ok(response::json(201, &body, request_id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddKey {
    jwk: PublicJwk,
    proof: String,
}

impl Validate for AddKey {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        if (1..=MAX_PROOF_LENGTH).contains(&self.proof.len()) {
            Ok(())
        } else {
            Err(vec![FieldError::new(
                "/proof",
                "invalid_length",
                format!("proof must have 1 to {MAX_PROOF_LENGTH} characters"),
            )])
        }
    }
}

#[derive(Serialize)]
struct ServiceKey {
    kid: String,
    jwk: Jwk,
    created_at: i64,
    revoked_at: Option<i64>,
}

/// Uses up the challenge a verified proof names, if it is live and was
/// issued to this org for this service and key.
async fn take_challenge(
    tenant: &Tenant<'_>,
    service: &Service,
    kid: &str,
    challenge: &str,
    now: i64,
) -> Result<bool, Problem> {
    if !token::well_formed(challenge, CHALLENGE_PREFIX) {
        return Ok(false);
    }
    let taken = tenant
        .exec(
            "DELETE FROM service_key_challenges WHERE org_id = ?1 AND digest = ? AND service_id = ? AND kid = ? AND expires_at > ?",
            vec![
                db::text(token::digest(challenge)),
                db::text(&service.id),
                db::text(kid),
                db::int(now),
            ],
        )
        .await?;
    Ok(taken == 1)
}

/// `POST /v1/services/{name}/keys`: registers a public key (Ed25519 or
/// P-256) as a JWK, with `proof`: a compact JWS the key signed over a
/// challenge from `…/keys/$challenge`. Its `kid` is its RFC 7638
/// thumbprint, which the service puts in its tokens' headers.
pub async fn add_key(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("services")?;
    let tenant = caller.tenant()?;
    let service = load(&tenant, name).await?;
    let body: AddKey = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let jwk = body.jwk.checked()?;
    let now = unix_now();
    let challenge = check_proof(&body.proof, &jwk, &service.name, now).map_err(|why| {
        eprintln!("tokens: key proof refused: {why:?}");
        invalid_proof()
    })?;
    if !take_challenge(&tenant, &service, &jwk.kid, &challenge, now).await? {
        eprintln!("tokens: key proof refused: no such live challenge");
        return Err(invalid_proof());
    }
    let inserted = tenant
        .exec(
            "INSERT INTO service_keys (org_id, kid, service_id, public_jwk, created_at, proved_at) VALUES (?1, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                db::text(&jwk.kid),
                db::text(&service.id),
                db::text(serde_json::to_string(&jwk).map_err(|_| Problem::internal())?),
                db::int(now),
                db::int(now),
            ],
        )
        .await?;
    if inserted == 0 {
        // Only this org's own keys conflict: key ids are unique per org.
        return Err(Problem::new(ErrorCode::Conflict)
            .detail("this key is registered in this organization already"));
    }
    let body = ServiceKey {
        kid: jwk.kid.clone(),
        jwk,
        created_at: now,
        revoked_at: None,
    };
    Ok(response::json(201, &body, request_id))
}

/// `GET /v1/services/{name}/keys`.
pub async fn keys(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    let service = load(&tenant, name).await?;
    let rows = tenant
        .query(
            "SELECT kid, public_jwk, created_at, revoked_at FROM service_keys WHERE org_id = ?1 AND service_id = ? ORDER BY created_at, kid",
            vec![db::text(&service.id)],
        )
        .await?;
    let items: Vec<ServiceKey> = rows
        .iter()
        .filter_map(|r| {
            Some(ServiceKey {
                kid: db::get_text(r, 0),
                jwk: serde_json::from_str(&db::get_text(r, 1)).ok()?,
                created_at: db::get_int(r, 2).unwrap_or_default(),
                revoked_at: db::get_int(r, 3),
            })
        })
        .collect();
    Ok(response::json(
        200,
        &serde_json::json!({ "items": items }),
        request_id,
    ))
}

/// `DELETE /v1/services/{name}/keys/{kid}`: revokes the key in this org;
/// tokens it signed for this org fail their next verification.
pub async fn revoke_key(
    req: Request,
    name: &str,
    kid: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("services")?;
    let tenant = caller.tenant()?;
    let service = load(&tenant, name).await?;
    let revoked = tenant
        .exec(
            "UPDATE service_keys SET revoked_at = ?2 WHERE org_id = ?1 AND service_id = ?3 AND kid = ?4 AND revoked_at IS NULL",
            vec![db::int(unix_now()), db::text(&service.id), db::text(kid)],
        )
        .await?;
    if revoked == 0 {
        return Err(Problem::not_found().detail("no such live key"));
    }
    Ok(response::no_content(request_id))
}
