//! Values other capabilities seal at rest, end to end: TOTP secrets and
//! signing keys (sealed with the deployment's data key), identity
//! provider client secrets and webhook source and endpoint secrets
//! (sealed with their org's data key). A master key rotation with
//! `$rewrap` leaves them all readable with the new key alone; values
//! sealed the old way (straight from the master key) still open and the
//! rewrap seals them again; a value moved into another org's row, or
//! another row, does not open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gatehouse_tests::app::{
    MASTER_KEY, Org, PASSWORD, app_config, call, column, database, expect, org, post, totp_code,
};
use gatehouse_tests::{HostConfig, Reply, TestHost, fake_http};
use identity_core::sealed::SealingKey;
use serde_json::{Value, json};
use webhooks_core::SigningSecret;

const OPERATOR: &str = "operator-token-for-sealing-tests";
const NEW_MASTER: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const CLIENT_SECRET: &str = "client-secret-of-gatehouse-at-corp";
const ENDPOINT_URL: &str = "https://hooks.example.com/gatehouse";

fn app(master: &str, previous: Option<&str>) -> HostConfig {
    let mut config = app_config();
    config.env.retain(|(k, _)| k != "SPIN_VARIABLE_MASTER_KEY");
    for (name, value) in [
        ("MASTER_KEY", master),
        ("OPERATOR_TOKEN", OPERATOR),
        ("OIDC_OUTBOUND_HOSTS", "http://127.0.0.1:*"),
        ("OIDC_ALLOW_PRIVATE_ISSUERS", "true"),
    ] {
        config
            .env
            .push((format!("SPIN_VARIABLE_{name}"), value.into()));
    }
    if let Some(previous) = previous {
        config
            .env
            .push(("SPIN_VARIABLE_PREVIOUS_MASTER_KEY".into(), previous.into()));
    }
    config
}

fn rewrap(host: &TestHost) -> Result<Value> {
    operator_post(host, "/v1/admin/secrets/$rewrap")
}

fn operator_post(host: &TestHost, path: &str) -> Result<Value> {
    let auth = format!("Bearer {OPERATOR}");
    let reply = gatehouse_tests::send(
        "POST",
        &host.url(path),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        b"{}",
    )?;
    expect(reply, 200)
}

/// An OpenID provider standing in on loopback: its discovery document,
/// and a token endpoint that records the `Authorization` header each code
/// exchange sends (and refuses the code).
struct Issuer {
    url: String,
    sent: Arc<Mutex<Vec<String>>>,
}

impl Issuer {
    fn start() -> Result<Issuer> {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&sent);
        let addr = fake_http::serve(move |req| {
            let base = format!("http://{}", req.header("host").unwrap_or_default());
            if req.path.starts_with("/token") {
                if let Ok(mut sent) = recorded.lock() {
                    sent.push(req.header("authorization").unwrap_or_default().to_string());
                }
                return (400, json!({"error": "invalid_grant"}));
            }
            (
                200,
                json!({
                    "issuer": base,
                    "authorization_endpoint": format!("{base}/authorize"),
                    "token_endpoint": format!("{base}/token"),
                    "jwks_uri": format!("{base}/jwks"),
                }),
            )
        })?;
        Ok(Issuer {
            url: format!("http://{addr}"),
            sent,
        })
    }

    /// A sign-in through `provider` up to the code exchange: the status
    /// the callback answers, and the client secret the exchange sent
    /// (none when it sent no request).
    fn sign_in(&self, host: &TestHost, provider: &str) -> Result<(u16, Option<String>)> {
        let before = self.sent.lock().map(|s| s.len()).unwrap_or_default();
        // The browser's first step, without following the redirect.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        let started = agent
            .get(host.url(&format!("/v1/oidc/{provider}/start")))
            .call()?;
        assert_eq!(started.status(), 302);
        let header = |name: &str| {
            started
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let location = header("location").context("location")?;
        let state = location
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("state="))
            .context("state")?
            .to_string();
        let cookie = header("set-cookie").context("state cookie")?;
        let cookie = cookie.split(';').next().unwrap_or_default().to_string();
        let callback = call(
            host,
            "GET",
            &format!("/v1/oidc/{provider}/callback?state={state}&code=the-code"),
            None,
            None,
            &[("cookie", &cookie)],
        )?;
        let sent = self.sent.lock().map(|s| s.clone()).unwrap_or_default();
        let secret = sent.get(before).map(|basic| {
            let pair = basic.strip_prefix("Basic ").unwrap_or_default();
            let pair = String::from_utf8(STANDARD.decode(pair).unwrap_or_default());
            let pair = pair.unwrap_or_default();
            pair.split_once(':')
                .map(|(_, secret)| secret.to_string())
                .unwrap_or_default()
        });
        Ok((callback.status, secret))
    }
}

/// What one org and its admin have sealed, and how to check each opens.
struct Sealed {
    org: Org,
    provider: String,
    source: Value,
    source_secret: String,
    endpoint: String,
    endpoint_secret: String,
    totp_secret: String,
}

fn provider(host: &TestHost, org: &Org, issuer: &Issuer, name: &str) -> Result<String> {
    let created = expect(
        post(
            host,
            "/v1/oidc/providers",
            &json!({"name": name, "issuer": issuer.url, "client_id": "gatehouse",
                    "client_secret": CLIENT_SECRET}),
            Some(&org.admin),
        )?,
        201,
    )?;
    Ok(created["id"].as_str().context("provider id")?.to_string())
}

fn endpoint(host: &TestHost, org: &Org) -> Result<(String, String)> {
    let made = expect(
        post(
            host,
            "/v1/webhooks/endpoints",
            &json!({"url": ENDPOINT_URL}),
            Some(&org.admin),
        )?,
        201,
    )?;
    let id = made["id"].as_str().context("endpoint id")?.to_string();
    let secret = endpoint_secret(host, org, &id)?;
    Ok((id, secret.context("a new endpoint's secret opens")?))
}

/// The endpoint's secret as its org's admin reads it; `None` when the
/// read fails with `internal` (it does not open).
fn endpoint_secret(host: &TestHost, org: &Org, id: &str) -> Result<Option<String>> {
    let path = format!("/v1/webhooks/endpoints/{id}/secret");
    let reply = call(host, "GET", &path, None, Some(&org.admin), &[])?;
    if reply.status == 500 {
        assert_eq!(reply.json()?["code"], "internal");
        return Ok(None);
    }
    let body = expect(reply, 200)?;
    Ok(Some(body["secret"].as_str().context("secret")?.to_string()))
}

/// A Standard Webhooks delivery to `source`, signed with `secret`: the
/// status the ingest answers.
fn ingest(host: &TestHost, source: &Value, secret: &str, id: &str) -> Result<u16> {
    let body = br#"{"type":"invoice.paid"}"#;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let key = SigningSecret::parse(secret).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let signature = webhooks_core::sign_v1(id, now, body, &key);
    let timestamp = now.to_string();
    // By this host's address: a restarted host listens on another port
    // than the one the ingest URL was made with.
    let source_id = source["id"].as_str().context("source id")?;
    let reply = gatehouse_tests::send(
        "POST",
        &host.url(&format!("/v1/hooks/{source_id}")),
        &[
            ("content-type", "application/json"),
            ("webhook-id", id),
            ("webhook-timestamp", &timestamp),
            ("webhook-signature", &signature),
        ],
        body,
    )?;
    Ok(reply.status)
}

/// A TOTP login of `email` completed with a code for `secret`.
fn totp_login(host: &TestHost, email: &str, secret: &str) -> Result<Reply> {
    database(host)?.execute("UPDATE mfa_totp SET last_used_step = NULL", [])?;
    let login = expect(
        post(
            host,
            "/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
            None,
        )?,
        202,
    )?;
    let challenge = login["challenge"].as_str().context("challenge")?;
    post(
        host,
        "/v1/auth/mfa",
        &json!({"challenge": challenge, "code": totp_code(secret, 0)?}),
        None,
    )
}

fn enrol_totp(host: &TestHost, token: &str) -> Result<String> {
    let enrolled = expect(
        post(host, "/v1/auth/mfa/totp", &json!({}), Some(token))?,
        201,
    )?;
    let secret = enrolled["secret"].as_str().context("secret")?.to_string();
    expect(
        post(
            host,
            "/v1/auth/mfa/totp/confirm",
            &json!({"code": totp_code(&secret, 0)?}),
            Some(token),
        )?,
        200,
    )?;
    Ok(secret)
}

/// The `kid` of a token `POST /v1/tokens` issues for `session`.
fn issued_kid(host: &TestHost, session: &str) -> Result<Reply> {
    post(host, "/v1/tokens", &json!({}), Some(session))
}

fn kid_of(reply: Reply) -> Result<String> {
    let issued = expect(reply, 200)?;
    let token = issued["access_token"].as_str().context("access_token")?;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(token.split('.').next().context("header")?)?,
    )?;
    Ok(header["kid"].as_str().context("kid")?.to_string())
}

fn seal_everything(host: &TestHost, issuer: &Issuer) -> Result<Sealed> {
    let acme = org(host, "ada@acme.test", "acme")?;
    let provider = provider(host, &acme, issuer, "corp")?;
    let source_secret = SigningSecret::from_random(&[9u8; 32])
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .to_whsec();
    let source = expect(
        post(
            host,
            "/v1/webhooks/sources",
            &json!({"provider": "standard", "secrets": [source_secret]}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let (endpoint, endpoint_secret) = endpoint(host, &acme)?;
    let totp_secret = enrol_totp(host, &acme.admin)?;
    Ok(Sealed {
        org: acme,
        provider,
        source,
        source_secret,
        endpoint,
        endpoint_secret,
        totp_secret,
    })
}

/// Every sealed value opens: the client secret reaches the provider, a
/// signed delivery is taken, the endpoint secret reads back, a TOTP code
/// completes a login, and a token is signed by `kid`.
fn everything_opens(
    host: &TestHost,
    issuer: &Issuer,
    sealed: &Sealed,
    kid: &str,
    round: &str,
) -> Result<()> {
    let (_, sent) = issuer.sign_in(host, &sealed.provider)?;
    assert_eq!(sent.as_deref(), Some(CLIENT_SECRET), "{round}");
    let delivery = format!("msg_{round}");
    assert_eq!(
        ingest(host, &sealed.source, &sealed.source_secret, &delivery)?,
        200,
        "{round}"
    );
    assert_eq!(
        endpoint_secret(host, &sealed.org, &sealed.endpoint)?.as_deref(),
        Some(sealed.endpoint_secret.as_str()),
        "{round}"
    );
    let session = expect(totp_login(host, "ada@acme.test", &sealed.totp_secret)?, 200)?;
    let session = session["token"].as_str().context("token")?;
    assert_eq!(kid_of(issued_kid(host, session)?)?, kid, "{round}");
    Ok(())
}

/// The sealed text of every value, by table and column.
fn stored(host: &TestHost) -> Result<HashMap<String, String>> {
    let db = database(host)?;
    let mut all = HashMap::new();
    for (table, column) in [
        ("mfa_totp", "secret_sealed"),
        ("signing_keys", "private_sealed"),
        ("oidc_providers", "client_secret"),
        ("webhook_sources", "config"),
        ("webhook_endpoints", "secret"),
    ] {
        let text: String =
            db.query_row(&format!("SELECT {column} FROM {table} LIMIT 1"), [], |r| {
                r.get(0)
            })?;
        all.insert(format!("{table}.{column}"), text);
    }
    Ok(all)
}

#[test]
fn values_sealed_before_a_master_key_rotation_open_after_the_rewrap_with_the_new_key_alone()
-> Result<()> {
    let issuer = Issuer::start()?;
    let host = TestHost::start(app(MASTER_KEY, None))?;
    let sealed = seal_everything(&host, &issuer)?;
    let kid = kid_of(issued_kid(&host, &sealed.org.admin)?)?;
    everything_opens(&host, &issuer, &sealed, &kid, "before")?;
    let first = stored(&host)?;
    for (column, text) in &first {
        assert!(
            text.starts_with("v2.1."),
            "{column} is sealed by a data key: {text}"
        );
    }
    // A new data key for acme: its job seals acme's values again with it,
    // and the old version goes once nothing is sealed with it.
    let rotated = call(
        &host,
        "POST",
        &format!("/v1/orgs/{}/secrets/$rotate-key", sealed.org.id),
        None,
        Some(&sealed.org.admin),
        &[],
    )?;
    assert_eq!(expect(rotated, 202)?["key_version"], 2);
    operator_post(&host, "/v1/admin/jobs/$run")?;
    let before = stored(&host)?;
    for (column, text) in &before {
        let org_owned = !column.starts_with("mfa_") && !column.starts_with("signing_");
        let version = if org_owned { "v2.2." } else { "v2.1." };
        assert!(text.starts_with(version), "{column}: {text}");
    }
    let versions: Vec<i64> = column(
        &host,
        "SELECT version FROM org_data_keys WHERE org_id = ?1",
        [&sealed.org.id],
    )?;
    assert_eq!(versions, vec![2]);
    everything_opens(&host, &issuer, &sealed, &kid, "rotated")?;

    let host = host.restart(app(NEW_MASTER, Some(MASTER_KEY)))?;
    everything_opens(&host, &issuer, &sealed, &kid, "during")?;
    let rewrapped = rewrap(&host)?;
    // acme's data key and the deployment's.
    assert_eq!(rewrapped["rewrapped"], 2, "{rewrapped}");
    assert_eq!(rewrapped["resealed"], 0, "{rewrapped}");
    assert_eq!(rewrap(&host)?["rewrapped"], 0);
    // The values themselves were not touched: only their data keys.
    let texts = stored(&host)?;
    assert_eq!(texts, before);

    let host = host.restart(app(NEW_MASTER, None))?;
    everything_opens(&host, &issuer, &sealed, &kid, "after")?;
    // Back on the old master key alone, no data key opens: the values
    // depend on them.
    let host = host.restart(app(MASTER_KEY, None))?;
    assert_eq!(endpoint_secret(&host, &sealed.org, &sealed.endpoint)?, None);
    assert_eq!(
        issued_kid(&host, &sealed.org.admin)?.status,
        500,
        "the signing key does not open"
    );
    Ok(())
}

/// `plain` sealed as the code before the envelope scheme sealed it:
/// under a key derived from the master key for `purpose`, bound to `row`.
fn old_way(master: &str, purpose: &str, plain: &[u8], row: &str) -> Result<String> {
    let key = SealingKey::derive(master, purpose).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(key.seal(plain, row))
}

#[test]
fn values_sealed_the_old_way_still_open_and_the_rewrap_seals_them_again() -> Result<()> {
    let issuer = Issuer::start()?;
    let host = TestHost::start(app(MASTER_KEY, None))?;
    // A signing key as the old code stored it, before any token.
    let signing = tokens_core::SigningKey::from_secret(tokens_core::Algorithm::EdDSA, &[5u8; 32])
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let jwk = signing.jwk();
    database(&host)?.execute(
        "INSERT INTO signing_keys (kid, alg, public_jwk, private_sealed, created_at, active_from)
         VALUES (?1, 'EdDSA', ?2, ?3, 0, 0)",
        rusqlite::params![
            jwk.kid,
            serde_json::to_string(&jwk)?,
            old_way(
                MASTER_KEY,
                "signing-keys",
                &signing.secret_bytes(),
                &jwk.kid
            )?,
        ],
    )?;
    let sealed = seal_everything(&host, &issuer)?;
    // The rest rewritten as the old code sealed them.
    let raw_totp = identity_core::totp::base32_decode(&sealed.totp_secret).context("base32")?;
    let db = database(&host)?;
    for (sql, text, row) in [
        (
            "UPDATE mfa_totp SET secret_sealed = ?1 WHERE user_id = ?2",
            old_way(MASTER_KEY, "totp", &raw_totp, &sealed.org.admin_id)?,
            &sealed.org.admin_id,
        ),
        (
            "UPDATE oidc_providers SET client_secret = ?1 WHERE provider_id = ?2",
            old_way(
                MASTER_KEY,
                "oidc-client-secret",
                CLIENT_SECRET.as_bytes(),
                &sealed.provider,
            )?,
            &sealed.provider,
        ),
        (
            "UPDATE webhook_endpoints SET secret = ?1 WHERE endpoint_id = ?2",
            old_way(
                MASTER_KEY,
                "webhook-endpoints",
                sealed.endpoint_secret.as_bytes(),
                &sealed.endpoint,
            )?,
            &sealed.endpoint,
        ),
    ] {
        assert_eq!(db.execute(sql, [&text, row])?, 1, "{sql}");
    }
    let old_texts = stored(&host)?;
    let old_columns = [
        "mfa_totp.secret_sealed",
        "signing_keys.private_sealed",
        "oidc_providers.client_secret",
        "webhook_endpoints.secret",
    ];
    for column in old_columns {
        assert!(old_texts[column].starts_with("v1."), "{column}");
    }
    everything_opens(&host, &issuer, &sealed, &jwk.kid, "old way")?;

    // A master key rotation: the old way's values open under the previous
    // key, and the rewrap seals them with their data keys.
    let host = host.restart(app(NEW_MASTER, Some(MASTER_KEY)))?;
    everything_opens(&host, &issuer, &sealed, &jwk.kid, "during")?;
    let rewrapped = rewrap(&host)?;
    assert_eq!(rewrapped["resealed"], 4, "{rewrapped}");
    assert_eq!(rewrap(&host)?["resealed"], 0);
    let texts = stored(&host)?;
    for column in old_columns {
        assert!(
            texts[column].starts_with("v2."),
            "{column}: {}",
            texts[column]
        );
    }
    let host = host.restart(app(NEW_MASTER, None))?;
    everything_opens(&host, &issuer, &sealed, &jwk.kid, "after")?;
    Ok(())
}

#[test]
fn a_sealed_value_moved_to_another_orgs_row_or_another_row_does_not_open() -> Result<()> {
    let issuer = Issuer::start()?;
    let host = TestHost::start(app(MASTER_KEY, None))?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let globex = org(&host, "gus@globex.test", "globex")?;
    let (acme_endpoint, _) = endpoint(&host, &acme)?;
    let (globex_endpoint, globex_secret) = endpoint(&host, &globex)?;
    let acme_provider = provider(&host, &acme, &issuer, "corp")?;
    let globex_provider = provider(&host, &globex, &issuer, "corp")?;
    assert_eq!(
        issuer.sign_in(&host, &globex_provider)?.1.as_deref(),
        Some(CLIENT_SECRET)
    );
    let db = database(&host)?;

    // A row moved to another org, sealed value and all: bound to its org.
    db.execute(
        "UPDATE webhook_endpoints SET org_id = ?1 WHERE endpoint_id = ?2",
        [&globex.id, &acme_endpoint],
    )?;
    assert_eq!(endpoint_secret(&host, &globex, &acme_endpoint)?, None);
    db.execute(
        "UPDATE oidc_providers SET org_id = ?1, name = 'moved' WHERE provider_id = ?2",
        [&globex.id, &acme_provider],
    )?;
    let (status, sent) = issuer.sign_in(&host, &acme_provider)?;
    assert_eq!((status, sent), (500, None), "no secret leaves");

    // A sealed value copied into another row of the same org: bound to its row.
    db.execute(
        "UPDATE webhook_endpoints SET secret = (SELECT secret FROM webhook_endpoints WHERE endpoint_id = ?1)
         WHERE endpoint_id = ?2",
        [&acme_endpoint, &globex_endpoint],
    )?;
    assert_eq!(endpoint_secret(&host, &globex, &globex_endpoint)?, None);
    // The untouched row still opens, back in place.
    db.execute(
        "UPDATE webhook_endpoints SET org_id = ?1 WHERE endpoint_id = ?2",
        [&acme.id, &acme_endpoint],
    )?;
    assert!(endpoint_secret(&host, &acme, &acme_endpoint)?.is_some());
    assert_ne!(
        endpoint_secret(&host, &acme, &acme_endpoint)?.as_deref(),
        Some(globex_secret.as_str())
    );
    Ok(())
}
