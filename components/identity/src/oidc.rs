//! An org's own OpenID Connect providers: their configuration (org
//! admins change it, members read it; the client secret is sealed at rest
//! and never shown), and sign-in through them with the authorization code
//! flow, PKCE (S256), `state` bound to the browser by a cookie, and
//! `nonce` checked in the ID token.
//!
//! A provider subject is linked to one Gatehouse user: on first sign-in a
//! new account is made for it, unless its email belongs to an account
//! already, which must link itself (start the sign-in with its session).
//! Every sign-in makes the user a member of the provider's org and syncs
//! the roles the provider's claims map to (grants made by the provider are
//! taken back when the claims no longer map to them).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::oidc::{self, Provider};
use gatehouse_auth::session::Cache;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::json::{self, Validate};
use gatehouse_http::principal::OrgRole;
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, idempotency::unix_now, response};
use identity_core::sealed::SealingKey;
use identity_core::{random, token};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use spin_sdk::http::Request;
use spin_sdk::sqlite::{Connection, RowResult};
use std::collections::BTreeMap;

use crate::db;
use crate::sessions::{self, Device};

/// How long a sign-in may take between `/start` and `/callback`.
const LOGIN_TTL_SECONDS: i64 = 600;
/// The cookie binding a sign-in's `state` to the browser that started it.
const STATE_COOKIE: &str = "gatehouse_oidc_state";

fn no_provider() -> Problem {
    Problem::not_found().detail("no such identity provider")
}

async fn sealing_key() -> Result<SealingKey, Problem> {
    gatehouse_auth::sealing::sealing_key(
        "oidc-client-secret",
        "identity providers with a client secret need the master_key variable set",
    )
    .await
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// A provider as the API shows it.
#[derive(Serialize)]
struct View {
    id: String,
    name: String,
    issuer: String,
    client_id: String,
    has_client_secret: bool,
    scopes: String,
    audiences: Vec<String>,
    allowed_azp: Vec<String>,
    tenant_id: Option<String>,
    role_claim: String,
    role_map: BTreeMap<String, String>,
    /// Register this at the provider as the app's redirect URI.
    redirect_uri: String,
    /// Where a browser starts signing in.
    login_url: String,
    created_at: i64,
    updated_at: i64,
}

/// The shared provider columns, then what only this component reads.
fn columns() -> String {
    format!(
        "{}, client_secret, scopes, created_at, updated_at",
        oidc::PROVIDER_COLUMNS
    )
}

struct Stored {
    provider: Provider,
    client_secret: Option<String>,
    scopes: String,
    created_at: i64,
    updated_at: i64,
}

fn stored_from(row: &RowResult) -> Stored {
    Stored {
        provider: oidc::provider_from(row),
        client_secret: db::get_opt_text(row, 10),
        scopes: db::get_text(row, 11),
        created_at: db::get_int(row, 12).unwrap_or_default(),
        updated_at: db::get_int(row, 13).unwrap_or_default(),
    }
}

fn redirect_uri(base: &str, provider_id: &str) -> String {
    format!("{base}/v1/oidc/{provider_id}/callback")
}

async fn view(stored: Stored) -> View {
    let base = crate::config::public_base_url().await;
    let p = stored.provider;
    View {
        redirect_uri: redirect_uri(&base, &p.provider_id),
        login_url: format!("{base}/v1/oidc/{}/start", p.provider_id),
        id: p.provider_id,
        name: p.name,
        issuer: p.issuer,
        client_id: p.client_id,
        has_client_secret: stored.client_secret.is_some(),
        scopes: stored.scopes,
        audiences: p.audiences,
        allowed_azp: p.allowed_azp,
        tenant_id: p.tenant_id,
        role_claim: p.role_claim,
        role_map: p.role_map,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

async fn load(tenant: &Tenant<'_>, name: &str) -> Result<Stored, Problem> {
    let rows = tenant
        .query(
            &format!(
                "SELECT {} FROM oidc_providers WHERE org_id = ?1 AND name = ?",
                columns()
            ),
            vec![db::text(name)],
        )
        .await?;
    rows.first().map(stored_from).ok_or_else(no_provider)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// An issuer URL: https, or http on a loopback host (a provider run
/// beside Gatehouse); no query or fragment.
fn valid_issuer(issuer: &str) -> bool {
    let rest = if let Some(rest) = issuer.strip_prefix("https://") {
        rest
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return false;
        }
        rest
    } else {
        return false;
    };
    issuer.len() <= 300
        && !rest.is_empty()
        && !rest.starts_with('/')
        && !issuer.contains(['?', '#', ' '])
}

fn short_strings(list: &[String], max: usize) -> bool {
    list.len() <= max
        && list
            .iter()
            .all(|s| (1..=300).contains(&s.len()) && !s.chars().any(char::is_control))
}

/// The fields a create or a patch sets; `None` leaves a field as it is.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Fields {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    /// An empty string removes the secret (a public client).
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    scopes: Option<String>,
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default)]
    allowed_azp: Option<Vec<String>>,
    #[serde(default)]
    tenant_id: Option<Option<String>>,
    #[serde(default)]
    role_claim: Option<String>,
    #[serde(default)]
    role_map: Option<BTreeMap<String, String>>,
}

impl Validate for Fields {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut fail = |pointer: &str, code: &str, message: &str| {
            errors.push(FieldError::new(pointer, code, message));
        };
        if self.name.as_deref().is_some_and(|n| !valid_name(n)) {
            fail(
                "/name",
                "invalid_format",
                "name must be 1 to 64 of a-z, 0-9 and '-', starting with a letter",
            );
        }
        if self.issuer.as_deref().is_some_and(|i| !valid_issuer(i)) {
            fail(
                "/issuer",
                "invalid_format",
                "issuer must be an https URL (http only on a loopback host) without query or fragment",
            );
        }
        if self
            .client_id
            .as_deref()
            .is_some_and(|c| !(1..=300).contains(&c.len()) || c.chars().any(char::is_control))
        {
            fail(
                "/client_id",
                "invalid_length",
                "client_id must have 1 to 300 characters",
            );
        }
        if self
            .client_secret
            .as_deref()
            .is_some_and(|s| s.len() > 1000)
        {
            fail(
                "/client_secret",
                "invalid_length",
                "client_secret must have at most 1000 characters",
            );
        }
        if let Some(scopes) = &self.scopes
            && (scopes.len() > 500
                || !scopes.split(' ').any(|s| s == "openid")
                || !scopes.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        {
            fail(
                "/scopes",
                "invalid",
                "scopes must be space-separated and include openid",
            );
        }
        if self
            .audiences
            .as_deref()
            .is_some_and(|a| !short_strings(a, 20))
        {
            fail(
                "/audiences",
                "invalid",
                "at most 20 audiences of 1 to 300 characters",
            );
        }
        if self
            .allowed_azp
            .as_deref()
            .is_some_and(|a| !short_strings(a, 50))
        {
            fail(
                "/allowed_azp",
                "invalid",
                "at most 50 client ids of 1 to 300 characters",
            );
        }
        if let Some(Some(tid)) = &self.tenant_id
            && !(1..=100).contains(&tid.len())
        {
            fail(
                "/tenant_id",
                "invalid_length",
                "tenant_id must have 1 to 100 characters",
            );
        }
        if self
            .role_claim
            .as_deref()
            .is_some_and(|c| !(1..=200).contains(&c.len()))
        {
            fail(
                "/role_claim",
                "invalid_length",
                "role_claim must have 1 to 200 characters",
            );
        }
        if let Some(map) = &self.role_map
            && (map.len() > 100
                || map
                    .iter()
                    .any(|(k, v)| !(1..=200).contains(&k.len()) || !(1..=100).contains(&v.len())))
        {
            fail(
                "/role_map",
                "invalid",
                "at most 100 entries, each a claim value of 1 to 200 characters to a role name of 1 to 100",
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn json_text<T: Serialize>(value: &T) -> Result<String, Problem> {
    serde_json::to_string(value).map_err(|_| Problem::internal())
}

/// `POST /v1/oidc/providers`.
pub async fn create(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("identity providers")?;
    let tenant = caller.tenant()?;
    let body: Fields = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let mut missing = Vec::new();
    for (field, present) in [
        ("/name", body.name.is_some()),
        ("/issuer", body.issuer.is_some()),
        ("/client_id", body.client_id.is_some()),
    ] {
        if !present {
            missing.push(FieldError::new(field, "required", "this field is required"));
        }
    }
    if !missing.is_empty() {
        return Err(crate::problems::invalid_fields(missing));
    }
    let provider_id = db::new_id("idp_");
    let secret = match body.client_secret.as_deref().filter(|s| !s.is_empty()) {
        Some(secret) => Some(sealing_key().await?.seal(secret.as_bytes(), &provider_id)),
        None => None,
    };
    let now = unix_now();
    let name = body.name.unwrap_or_default();
    let inserted = tenant
        .exec(
            "INSERT INTO oidc_providers (org_id, provider_id, name, issuer, client_id, client_secret, scopes, audiences, allowed_azp, tenant_id, role_claim, role_map, created_at, updated_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                db::text(&provider_id),
                db::text(&name),
                db::text(body.issuer.unwrap_or_default()),
                db::text(body.client_id.unwrap_or_default()),
                db::opt_text(secret),
                db::text(body.scopes.unwrap_or_else(|| "openid email profile".into())),
                db::text(json_text(&body.audiences.unwrap_or_default())?),
                db::text(json_text(&body.allowed_azp.unwrap_or_default())?),
                db::opt_text(body.tenant_id.flatten()),
                db::text(body.role_claim.unwrap_or_else(|| "roles".into())),
                db::text(json_text(&body.role_map.unwrap_or_default())?),
                db::int(now),
                db::int(now),
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(
            Problem::new(ErrorCode::Conflict).detail("an identity provider with this name exists")
        );
    }
    let stored = load(&tenant, &name).await?;
    Ok(response::json(201, &view(stored).await, request_id))
}

/// `GET /v1/oidc/providers`.
pub async fn list(req: Request, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    let rows = tenant
        .query(
            &format!(
                "SELECT {} FROM oidc_providers WHERE org_id = ?1 ORDER BY name",
                columns()
            ),
            vec![],
        )
        .await?;
    let mut items = Vec::new();
    for row in &rows {
        items.push(view(stored_from(row)).await);
    }
    Ok(response::json(
        200,
        &serde_json::json!({ "items": items }),
        request_id,
    ))
}

/// `GET /v1/oidc/providers/{name}`.
pub async fn get(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    let tenant = caller.tenant()?;
    let stored = load(&tenant, name).await?;
    Ok(response::json(200, &view(stored).await, request_id))
}

/// `PATCH /v1/oidc/providers/{name}`.
pub async fn update(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("identity providers")?;
    let tenant = caller.tenant()?;
    let current = load(&tenant, name).await?;
    let body: Fields = json::read_json(req, json::DEFAULT_LIMIT).await?;
    let p = current.provider;
    let changes_identity = body.issuer.as_ref().is_some_and(|i| *i != p.issuer)
        || body.client_id.as_ref().is_some_and(|c| *c != p.client_id);
    let p_id = p.provider_id.clone();
    let secret = match body.client_secret.as_deref() {
        None => current.client_secret,
        Some("") => None,
        Some(secret) => Some(sealing_key().await?.seal(secret.as_bytes(), &p.provider_id)),
    };
    let new_name = body.name.unwrap_or(p.name);
    let changed = tenant
        .exec(
            "UPDATE oidc_providers SET name = ?2, issuer = ?3, client_id = ?4, client_secret = ?5, scopes = ?6, audiences = ?7, allowed_azp = ?8, tenant_id = ?9, role_claim = ?10, role_map = ?11, updated_at = ?12
             WHERE org_id = ?1 AND provider_id = ?13 AND NOT EXISTS (SELECT 1 FROM oidc_providers o WHERE o.org_id = ?1 AND o.name = ?2 AND o.provider_id <> ?13)",
            vec![
                db::text(&new_name),
                db::text(body.issuer.unwrap_or(p.issuer)),
                db::text(body.client_id.unwrap_or(p.client_id)),
                db::opt_text(secret),
                db::text(body.scopes.unwrap_or(current.scopes)),
                db::text(json_text(&body.audiences.unwrap_or(p.audiences))?),
                db::text(json_text(&body.allowed_azp.unwrap_or(p.allowed_azp))?),
                db::opt_text(body.tenant_id.unwrap_or(p.tenant_id)),
                db::text(body.role_claim.unwrap_or(p.role_claim)),
                db::text(json_text(&body.role_map.unwrap_or(p.role_map))?),
                db::int(unix_now()),
                db::text(&p.provider_id),
            ],
        )
        .await?;
    if changed == 0 {
        return Err(
            Problem::new(ErrorCode::Conflict).detail("an identity provider with this name exists")
        );
    }
    // Pointed at another issuer or client, the provider's subjects are
    // someone else's: the links made so far go.
    if changes_identity {
        tenant
            .exec(
                "DELETE FROM oidc_identities WHERE org_id = ?1 AND provider_id = ?",
                vec![db::text(&p_id)],
            )
            .await?;
    }
    let stored = load(&tenant, &new_name).await?;
    Ok(response::json(200, &view(stored).await, request_id))
}

/// `DELETE /v1/oidc/providers/{name}`: its links and sign-ins in flight
/// go with it; its bearer tokens stop at once. Roles it granted stay.
pub async fn delete(req: Request, name: &str, request_id: &str) -> Result<Response, Problem> {
    let caller = OrgCaller::of(&req).await?;
    caller.require_admin("identity providers")?;
    let tenant = caller.tenant()?;
    let stored = load(&tenant, name).await?;
    for sql in [
        "DELETE FROM oidc_logins WHERE org_id = ?1 AND provider_id = ?",
        "DELETE FROM oidc_identities WHERE org_id = ?1 AND provider_id = ?",
        "DELETE FROM oidc_providers WHERE org_id = ?1 AND provider_id = ?",
    ] {
        tenant
            .exec(sql, vec![db::text(&stored.provider.provider_id)])
            .await?;
    }
    Ok(response::no_content(request_id))
}

// ---------------------------------------------------------------------------
// Sign-in
// ---------------------------------------------------------------------------

/// A provider by id, across orgs: the sign-in routes are reached before
/// anyone is authenticated, and the id is all they are given.
async fn by_id(conn: &Connection, provider_id: &str) -> Result<Stored, Problem> {
    let rows = db::query(
        conn,
        &format!(
            "SELECT {} FROM oidc_providers WHERE provider_id = ?",
            columns()
        ),
        vec![db::text(provider_id)],
    )
    .await?;
    rows.first().map(stored_from).ok_or_else(no_provider)
}

fn random_text<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random::bytes::<N>())
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn query_params(req: &Request) -> BTreeMap<String, String> {
    form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn state_cookie(base: &str, provider_id: &str, value: &str, max_age: i64) -> String {
    let secure = if base.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{STATE_COOKIE}={value}; Path=/v1/oidc/{provider_id}/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    )
}

/// `GET /v1/oidc/{provider}/start`: sends the browser to the provider.
/// With a session token, the sign-in links the provider to that account.
pub async fn start(req: Request, provider_id: &str, request_id: &str) -> Result<Response, Problem> {
    let link_user = match gatehouse_auth::bearer_token(&req) {
        Some(_) => Some(gatehouse_auth::authenticate_session(&req).await?.user.id),
        None => None,
    };
    let conn = db::open().await?;
    let stored = by_id(&conn, provider_id).await?;
    let p = &stored.provider;
    let doc = oidc::discovery(&p.issuer).await?;
    let state = random_text::<32>();
    let nonce = random_text::<32>();
    let verifier = random_text::<48>();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let now = unix_now();
    db::exec(
        &conn,
        "DELETE FROM oidc_logins WHERE expires_at < ?",
        vec![db::int(now - LOGIN_TTL_SECONDS)],
    )
    .await?;
    db::exec(
        &conn,
        "INSERT INTO oidc_logins (state_digest, org_id, provider_id, nonce, code_verifier, link_user_id, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            db::text(token::digest(&state)),
            db::text(&p.org_id),
            db::text(&p.provider_id),
            db::text(&nonce),
            db::text(&verifier),
            db::opt_text(link_user),
            db::int(now),
            db::int(now + LOGIN_TTL_SECONDS),
        ],
    )
    .await?;
    let base = crate::config::public_base_url().await;
    let separator = if doc.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!(
        "{}{separator}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        doc.authorization_endpoint,
        encode(&p.client_id),
        encode(&redirect_uri(&base, &p.provider_id)),
        encode(&stored.scopes),
        encode(&state),
        encode(&nonce),
        encode(&challenge),
    );
    let mut res = response::json(
        302,
        &serde_json::json!({ "location": location }),
        request_id,
    );
    let headers = res.headers_mut();
    for (name, value) in [
        ("location", location.clone()),
        (
            "set-cookie",
            state_cookie(&base, &p.provider_id, &state, LOGIN_TTL_SECONDS),
        ),
        ("cache-control", "no-store".to_string()),
    ] {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    Ok(res)
}

fn sign_in_failed(detail: &str) -> Problem {
    Problem::new(ErrorCode::Unauthenticated).detail(detail.to_string())
}

struct Login {
    nonce: String,
    verifier: String,
    link_user_id: Option<String>,
}

/// Spends the sign-in `state` names, once, if it is this provider's and
/// still fresh.
async fn spend(
    conn: &Connection,
    provider_id: &str,
    state: &str,
    now: i64,
) -> Result<Login, Problem> {
    let rows = db::query(
        conn,
        "UPDATE oidc_logins SET used_at = ? WHERE state_digest = ? AND provider_id = ? AND used_at IS NULL AND expires_at > ?
         RETURNING nonce, code_verifier, link_user_id",
        vec![
            db::int(now),
            db::text(token::digest(state)),
            db::text(provider_id),
            db::int(now),
        ],
    )
    .await?;
    let row = rows.first().ok_or_else(|| {
        sign_in_failed("the sign-in is unknown, expired or already finished; start again")
    })?;
    Ok(Login {
        nonce: db::get_text(row, 0),
        verifier: db::get_text(row, 1),
        link_user_id: db::get_opt_text(row, 2),
    })
}

/// Exchanges the code at the token endpoint; the ID token.
async fn redeem(
    stored: &Stored,
    doc: &oidc::Discovery,
    code: &str,
    verifier: &str,
) -> Result<String, Problem> {
    let p = &stored.provider;
    let base = crate::config::public_base_url().await;
    let mut form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        encode(code),
        encode(&redirect_uri(&base, &p.provider_id)),
        encode(verifier)
    );
    let basic = match &stored.client_secret {
        Some(sealed) => {
            let secret = sealing_key()
                .await?
                .open(sealed, &p.provider_id)
                .ok_or_else(|| {
                    eprintln!(
                        "identity: the client secret of {} cannot be opened",
                        p.provider_id
                    );
                    Problem::internal()
                })?;
            // RFC 6749, section 2.3.1: form-encoded, then base64.
            let pair = format!(
                "{}:{}",
                encode(&p.client_id),
                encode(&String::from_utf8_lossy(&secret))
            );
            Some(STANDARD.encode(pair))
        }
        None => {
            form.push_str(&format!("&client_id={}", encode(&p.client_id)));
            None
        }
    };
    let (status, body) =
        oidc::post_form(&doc.token_endpoint, &form, basic.as_deref(), "token").await?;
    let reply: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status != 200 {
        eprintln!(
            "identity: the token endpoint of {} answered {status}: {reply}",
            p.provider_id
        );
        return Err(sign_in_failed(&format!(
            "the identity provider refused the sign-in ({})",
            reply["error"].as_str().unwrap_or("error")
        )));
    }
    reply["id_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| sign_in_failed("the identity provider returned no ID token"))
}

/// Verifies the ID token (OpenID Connect Core, section 3.1.3.7).
async fn id_token_claims(
    p: &Provider,
    id_token: &str,
    nonce: &str,
) -> Result<Map<String, Value>, Problem> {
    let kid = tokens_core::key_id(id_token).unwrap_or_default();
    let keys = oidc::keys(&p.issuer, &kid).await?;
    let expect = tokens_core::Expectations {
        issuer: &p.issuer,
        audiences: &[p.client_id.as_str()],
        now: unix_now(),
        leeway: gatehouse_auth::jwt::LEEWAY_SECONDS,
    };
    let claims = tokens_core::verify(id_token, &keys, &expect).map_err(|why| {
        eprintln!("identity: ID token of {} refused: {why:?}", p.provider_id);
        sign_in_failed("the identity provider's ID token does not verify")
    })?;
    let several_audiences = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1);
    let azp = claims.get("azp").and_then(Value::as_str);
    if claims.get("nonce").and_then(Value::as_str) != Some(nonce)
        || (several_audiences && azp != Some(p.client_id.as_str()))
        || azp.is_some_and(|a| a != p.client_id)
        || !p.tenant_ok(&claims)
    {
        return Err(sign_in_failed(
            "the identity provider's ID token is not for this sign-in",
        ));
    }
    Ok(claims)
}

/// The Gatehouse user the provider's subject is, linking or creating one.
async fn user_for(
    conn: &Connection,
    p: &Provider,
    claims: &Map<String, Value>,
    link_user_id: Option<String>,
    now: i64,
) -> Result<String, Problem> {
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(|| sign_in_failed("the ID token names no subject"))?;
    let email = claims.get("email").and_then(Value::as_str);
    let linked = db::query(
        conn,
        "SELECT user_id FROM oidc_identities WHERE provider_id = ? AND subject = ?",
        vec![db::text(&p.provider_id), db::text(sub)],
    )
    .await?;
    if let Some(row) = linked.first() {
        let user_id = db::get_text(row, 0);
        if link_user_id.as_ref().is_some_and(|u| *u != user_id) {
            return Err(Problem::new(ErrorCode::Conflict)
                .detail("this identity is linked to another account"));
        }
        db::exec(
            conn,
            "UPDATE oidc_identities SET last_login_at = ?, email = ? WHERE provider_id = ? AND subject = ?",
            vec![db::int(now), db::opt_text(email.map(str::to_string)), db::text(&p.provider_id), db::text(sub)],
        )
        .await?;
        return Ok(user_id);
    }
    let user_id = match link_user_id {
        Some(user_id) => user_id,
        None => create_user(conn, claims, now).await?,
    };
    let tenant = Tenant::joining(conn, &user_id, &p.org_id, OrgRole::Member);
    tenant
        .exec(
            "INSERT INTO oidc_identities (org_id, provider_id, subject, user_id, email, created_at, last_login_at)
             VALUES (?1, ?, ?, ?, ?, ?, ?)",
            vec![
                db::text(&p.provider_id),
                db::text(sub),
                db::text(&user_id),
                db::opt_text(email.map(str::to_string)),
                db::int(now),
                db::int(now),
            ],
        )
        .await?;
    Ok(user_id)
}

/// A new account for a provider subject: active, without a password (one
/// can be set by reset), and with its address unverified whatever the
/// provider says: a provider configured by one org vouches for nothing
/// beyond it. Proving the address by reset drops the link.
async fn create_user(
    conn: &Connection,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<String, Problem> {
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|e| identity_core::email::valid_email(e))
        .ok_or_else(|| {
            sign_in_failed(
                "the identity provider shared no email address (ask for the email scope)",
            )
        })?;
    let name = claims
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(email)
        .chars()
        .take(100)
        .collect::<String>();
    let user_id = db::new_id("usr_");
    let inserted = db::exec(
        conn,
        "INSERT INTO users (id, email, email_normalized, display_name, password_hash, status, email_verified_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, '!external', 'active', NULL, ?, ?) ON CONFLICT (email_normalized) DO NOTHING",
        vec![
            db::text(&user_id),
            db::text(email),
            db::text(identity_core::email::normalize_email(email)),
            db::text(name),
            db::int(now),
            db::int(now),
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(Problem::new(ErrorCode::Conflict).detail(
            "an account with this email address exists: sign in to it, then start this sign-in with its session to link the provider",
        ));
    }
    Ok(user_id)
}

/// Makes the user a member of the provider's org (if not yet) and brings
/// the roles the provider granted in line with the claims.
async fn join_and_sync_roles(
    conn: &Connection,
    p: &Provider,
    user_id: &str,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<(), Problem> {
    let tenant = Tenant::joining(conn, user_id, &p.org_id, OrgRole::Member);
    tenant
        .exec(
            "INSERT INTO memberships (org_id, user_id, role, created_at, updated_at) VALUES (?1, ?, 'member', ?, ?)
             ON CONFLICT (org_id, user_id) DO NOTHING",
            vec![db::text(user_id), db::int(now), db::int(now)],
        )
        .await?;
    let granted_by = format!("oidc:{}", p.provider_id);
    let roles = json_text(&p.mapped_roles(claims))?;
    tenant
        .exec(
            "DELETE FROM role_grants WHERE org_id = ?1 AND subject_type = 'user' AND subject_id = ? AND granted_by = ?
             AND role_id NOT IN (SELECT role_id FROM roles WHERE org_id = ?1 AND name IN (SELECT value FROM json_each(?)))",
            vec![db::text(user_id), db::text(&granted_by), db::text(&roles)],
        )
        .await?;
    let mapped = tenant
        .query(
            "SELECT role_id FROM roles WHERE org_id = ?1 AND name IN (SELECT value FROM json_each(?))",
            vec![db::text(&roles)],
        )
        .await?;
    for row in &mapped {
        tenant
            .exec(
                "INSERT INTO role_grants (org_id, role_id, subject_type, subject_id, granted_by, created_at)
                 VALUES (?1, ?, 'user', ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![
                    db::text(db::get_text(row, 0)),
                    db::text(user_id),
                    db::text(&granted_by),
                    db::int(now),
                ],
            )
            .await?;
    }
    Cache::open().await.invalidate_user(user_id).await
}

/// `GET /v1/oidc/{provider}/callback`: the provider sends the browser back
/// with a code; the answer is a Gatehouse session, as from a login.
pub async fn callback(
    req: Request,
    provider_id: &str,
    request_id: &str,
) -> Result<Response, Problem> {
    let params = query_params(&req);
    let conn = db::open().await?;
    let stored = by_id(&conn, provider_id).await?;
    let state = params
        .get("state")
        .ok_or_else(|| sign_in_failed("the callback has no state"))?;
    // Login CSRF: the state must come back to the browser that started.
    let from_browser = cookie(&req, STATE_COOKIE);
    if from_browser
        .as_deref()
        .is_none_or(|c| !token::digests_equal(&token::digest(c), &token::digest(state)))
    {
        return Err(sign_in_failed(
            "the sign-in was started in another browser; start again",
        ));
    }
    let now = unix_now();
    let login = spend(&conn, provider_id, state, now).await?;
    if let Some(error) = params.get("error") {
        return Err(sign_in_failed(&format!(
            "the identity provider refused the sign-in ({})",
            error.chars().take(100).collect::<String>()
        )));
    }
    let code = params
        .get("code")
        .ok_or_else(|| sign_in_failed("the callback has no code"))?;
    let p = &stored.provider;
    let doc = oidc::discovery(&p.issuer).await?;
    let id_token = redeem(&stored, &doc, code, &login.verifier).await?;
    let claims = id_token_claims(p, &id_token, &login.nonce).await?;
    let user_id = user_for(&conn, p, &claims, login.link_user_id, now).await?;
    let user = sessions::load_user(&conn, &user_id).await?;
    if user.status != "active" {
        return Err(Problem::new(ErrorCode::Forbidden).detail("this account is inactive"));
    }
    join_and_sync_roles(&conn, p, &user_id, &claims, now).await?;
    // An account with a second factor completes it here too: the provider
    // stands for the password only.
    let mut res = if crate::mfa::enabled(&conn, &user_id).await? {
        crate::mfa::challenge(&conn, &user, &Device::of(&req), now, request_id).await?
    } else {
        let email = user.email.clone();
        sessions::start_session(&conn, user, Device::of(&req), &email, now, request_id).await?
    };
    let base = crate::config::public_base_url().await;
    if let Ok(value) = http::HeaderValue::from_str(&state_cookie(&base, provider_id, "", 0)) {
        res.headers_mut().insert("set-cookie", value);
    }
    res.headers_mut()
        .insert("cache-control", http::HeaderValue::from_static("no-store"));
    Ok(res)
}
