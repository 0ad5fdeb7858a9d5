//! Sign-in through a provider: `/start` sends the browser to the
//! provider with PKCE (S256), `state` and `nonce`; `/callback` redeems the
//! code, verifies the ID token and answers a session as login does (or
//! its second-factor challenge).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gatehouse_auth::oidc::{self, Provider};
use gatehouse_http::{ErrorCode, Problem, Response, idempotency::unix_now, response};
use identity_core::{random, token};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;
use std::collections::BTreeMap;

use super::{Stored, accounts, by_id, client_secret_of, redirect_uri};
use crate::db;
use crate::outbox::Outbox;
use crate::sessions::{self, Device};

/// How long a sign-in may take between `/start` and `/callback`.
const LOGIN_TTL_SECONDS: i64 = 600;
/// The cookie binding a sign-in's `state` to the browser that started it.
const STATE_COOKIE: &str = "gatehouse_oidc_state";

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
    // Reached without authentication: the issuer (and the endpoints its
    // document names) pass the deployment's outbound policy before any
    // connection is opened, whatever was saved.
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

pub(super) fn sign_in_failed(detail: &str) -> Problem {
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
    conn: &Connection,
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
            let binding = client_secret_of(&p.org_id, &p.provider_id);
            let secret = gatehouse_secrets::sealing::open(conn, &binding, sealed)
                .await?
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

/// `GET /v1/oidc/{provider}/callback`: the provider sends the browser back
/// with a code; the answer is a Gatehouse session, as from a login.
pub async fn callback(
    req: Request,
    provider_id: &str,
    request_id: &str,
    outbox: &Outbox,
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
    let id_token = redeem(&conn, &stored, &doc, code, &login.verifier).await?;
    let claims = id_token_claims(p, &id_token, &login.nonce).await?;
    let user_id = accounts::user_for(&conn, p, &claims, login.link_user_id, now).await?;
    let user = sessions::load_user(&conn, &user_id).await?;
    if user.status != "active" {
        return Err(Problem::new(ErrorCode::Forbidden).detail("this account is inactive"));
    }
    accounts::join_and_sync_roles(&conn, p, (&user_id, &user.email), &claims, now).await?;
    // An account with a second factor completes it here too: the provider
    // stands for the password only.
    let mut res = if crate::mfa::enabled(&conn, &user_id).await? {
        crate::mfa::challenge(&conn, &user, &Device::of(&req).await, now, request_id).await?
    } else {
        let email = user.email.clone();
        let device = Device::of(&req).await;
        sessions::start_session(&conn, user, device, &email, now, request_id, outbox).await?
    };
    // A sign-in is an authentication event, though this route is a GET.
    let principal = gatehouse_auth::membership::user_principal(
        &user_id,
        None,
        gatehouse_http::principal::Credential::Session,
    );
    let entry = gatehouse_http::audit::Entry::by(
        &principal,
        None,
        "auth.sso_login",
        Some(provider_id.to_string()),
        Some(res.status().as_u16()),
    );
    gatehouse_http::audit::record(&req, &entry, Some(request_id)).await?;
    let base = crate::config::public_base_url().await;
    if let Ok(value) = http::HeaderValue::from_str(&state_cookie(&base, provider_id, "", 0)) {
        res.headers_mut().insert("set-cookie", value);
    }
    res.headers_mut()
        .insert("cache-control", http::HeaderValue::from_static("no-store"));
    Ok(res)
}
