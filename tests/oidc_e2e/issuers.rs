//! Which issuers a deployment takes and calls. Any new user can make an
//! org and configure a provider, and anyone can start a sign-in: an issuer
//! on the server's own network must neither be saved nor called unless
//! the operator allows private issuers, and the outbound rule
//! (`oidc_outbound_hosts`) is checked when a provider is saved rather
//! than failing every request afterwards.

use anyhow::{Context, Result};
use gatehouse_tests::app::{expect, signed_in};
use gatehouse_tests::free_port;
use serde_json::json;

use super::support::{
    API, IdentityProvider, StandIn, create_provider, new_org, patch_provider, refused_issuer,
    start_app, start_app_with, warning_codes, whoami,
};

/// Issuers on the server's own network, in the spellings that reach it.
const PRIVATE_ISSUERS: [&str; 9] = [
    "https://127.0.0.1",
    "http://10.0.0.1",
    "http://[::1]",
    "http://2130706433",
    "https://0x7f.1",
    "https://[::ffff:127.0.0.1]",
    "http://localhost:8080",
    "https://192.168.1.20",
    "https://100.64.0.1",
];

/// Cloud metadata services: refused whatever the operator allows.
const METADATA_ISSUERS: [&str; 4] = [
    "http://169.254.169.254",
    "https://169.254.169.254",
    "https://[fd00:ec2::254]",
    "https://metadata.google.internal",
];

#[test]
fn issuers_on_private_or_metadata_addresses_are_refused_at_create_and_patch() -> Result<()> {
    // The outbound rule takes anything: the addresses alone refuse these.
    let host = start_app_with(Some("*://*:*"), None)?;
    let ada = signed_in(&host, "ada@example.com")?;
    new_org(&host, &ada, "acme")?;
    let saved = expect(
        create_provider(
            &host,
            &ada,
            &json!({"name": "corp", "issuer": "https://idp.acme.test", "client_id": "web"}),
        )?,
        201,
    )?;
    assert_eq!(saved["issuer"], "https://idp.acme.test");
    for (i, issuer) in PRIVATE_ISSUERS.iter().chain(&METADATA_ISSUERS).enumerate() {
        let body = json!({"name": format!("p{i}"), "issuer": issuer, "client_id": "web"});
        let detail = refused_issuer(create_provider(&host, &ada, &body)?)?;
        assert!(
            detail.contains("does not call the issuer"),
            "{issuer}: {detail}"
        );
        let patch = json!({"issuer": issuer});
        refused_issuer(patch_provider(&host, &ada, "corp", &patch)?)?;
    }
    let private = refused_issuer(create_provider(
        &host,
        &ada,
        &json!({"name": "lo", "issuer": "https://127.0.0.1", "client_id": "web"}),
    )?)?;
    assert!(private.contains("oidc_allow_private_issuers"), "{private}");
    // Nothing was saved or changed.
    let list = expect(
        gatehouse_tests::app::call(&host, "GET", "/v1/oidc/providers", None, Some(&ada), &[])?,
        200,
    )?;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["issuer"], "https://idp.acme.test");
    Ok(())
}

#[test]
fn private_issuers_are_taken_when_the_operator_allows_them_but_metadata_never() -> Result<()> {
    let host = start_app_with(Some("*://*:*"), Some("true"))?;
    let ada = signed_in(&host, "ada@example.com")?;
    new_org(&host, &ada, "acme")?;
    for (i, issuer) in PRIVATE_ISSUERS.iter().enumerate() {
        let body = json!({"name": format!("p{i}"), "issuer": issuer, "client_id": "web"});
        let saved = expect(create_provider(&host, &ada, &body)?, 201)?;
        assert_eq!(saved["issuer"], *issuer);
    }
    expect(
        patch_provider(&host, &ada, "p0", &json!({"issuer": "http://10.0.0.2"}))?,
        200,
    )?;
    for (i, issuer) in METADATA_ISSUERS.iter().enumerate() {
        let body = json!({"name": format!("m{i}"), "issuer": issuer, "client_id": "web"});
        let detail = refused_issuer(create_provider(&host, &ada, &body)?)?;
        assert!(detail.contains("metadata"), "{issuer}: {detail}");
        refused_issuer(patch_provider(
            &host,
            &ada,
            "p0",
            &json!({"issuer": issuer}),
        )?)?;
    }
    Ok(())
}

#[test]
fn an_issuer_outside_the_outbound_rule_is_refused_when_saved_naming_the_rule() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    new_org(&host, &ada, "acme")?;
    let port = free_port()?;
    // `localhost` is not `127.0.0.1` to the rule `http://127.0.0.1:*`, so
    // every call to this issuer would be denied: refused now, saying so.
    let localhost = format!("http://localhost:{port}");
    let detail = refused_issuer(create_provider(
        &host,
        &ada,
        &json!({"name": "corp", "issuer": localhost, "client_id": "web", "audiences": [API]}),
    )?)?;
    assert!(
        detail.contains("oidc_outbound_hosts = `http://127.0.0.1:*`"),
        "{detail}"
    );
    // The issuer the rule takes is saved; its provider is not running yet,
    // which is a warning, not a refusal.
    let issuer = format!("http://127.0.0.1:{port}");
    let saved = expect(
        create_provider(
            &host,
            &ada,
            &json!({"name": "corp", "issuer": issuer, "client_id": "web", "audiences": [API]}),
        )?,
        201,
    )?;
    assert_eq!(warning_codes(&saved), vec!["discovery_unreachable"]);
    let clients = json!([{"client_id": "reporting", "client_secret": super::support::SERVICE_SECRET,
                          "redirect_uris": [], "response_types": [], "grant_types": ["client_credentials"]}]);
    let idp = IdentityProvider::start(port, &clients, &json!({}))?;
    let running = expect(
        patch_provider(&host, &ada, "corp", &json!({"scopes": "openid email"}))?,
        200,
    )?;
    assert_eq!(running["warnings"], json!([]));
    refused_issuer(patch_provider(
        &host,
        &ada,
        "corp",
        &json!({"issuer": localhost}),
    )?)?;
    let token = idp.client_token("reporting", super::support::SERVICE_SECRET)?;
    assert_eq!(whoami(&host, &token, None)?.status, 200);

    // A deployment whose operator set no rule reaches no provider, and
    // says which setting that is.
    let unset = start_app_with(None, None)?;
    let eve = signed_in(&unset, "eve@example.com")?;
    new_org(&unset, &eve, "globex")?;
    let detail = refused_issuer(create_provider(
        &unset,
        &eve,
        &json!({"name": "corp", "issuer": "https://idp.globex.test", "client_id": "web"}),
    )?)?;
    assert!(
        detail.contains("until the operator sets oidc_outbound_hosts"),
        "{detail}"
    );
    Ok(())
}

#[test]
fn a_discovery_document_pointing_at_a_metadata_address_is_a_warning_and_never_followed()
-> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    new_org(&host, &ada, "acme")?;
    let server = StandIn::start(|port| {
        let issuer = format!("http://127.0.0.1:{port}");
        json!({"issuer": issuer, "authorization_endpoint": format!("{issuer}/auth"),
               "token_endpoint": format!("{issuer}/token"),
               "jwks_uri": "http://169.254.169.254/latest/meta-data/keys"})
    })?;
    let issuer = format!("http://127.0.0.1:{}", server.port);
    let saved = expect(
        create_provider(
            &host,
            &ada,
            &json!({"name": "corp", "issuer": issuer, "client_id": "web", "audiences": [API]}),
        )?,
        201,
    )?;
    assert_eq!(warning_codes(&saved), vec!["discovery_invalid"]);
    assert!(
        saved["warnings"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("jwks_uri")),
        "{saved}"
    );
    let id = saved["id"].as_str().context("id")?;
    let start = gatehouse_tests::app::call(
        &host,
        "GET",
        &format!("/v1/oidc/{id}/start"),
        None,
        None,
        &[],
    )?;
    assert_eq!(start.status, 503, "{}", start.text());
    Ok(())
}

/// A provider row as one saved before these checks would be.
fn insert_provider(host: &gatehouse_tests::TestHost, org_id: &str, issuer: &str) -> Result<String> {
    let db = rusqlite::Connection::open(
        host.state
            .path()
            .join(gatehouse_host::runtime_config::DEFAULT_DB_FILE),
    )?;
    let provider_id = "idp_0123456789abcdef0123456789abcdef".to_string();
    db.execute(
        "INSERT INTO oidc_providers (org_id, provider_id, name, issuer, client_id, scopes, audiences, created_at, updated_at)
         VALUES (?1, ?2, 'legacy', ?3, 'web', 'openid', ?4, 0, 0)",
        (org_id, &provider_id, issuer, json!([API]).to_string()),
    )?;
    Ok(provider_id)
}

#[test]
fn a_provider_saved_before_the_checks_is_not_called_by_sign_in_or_bearer_tokens() -> Result<()> {
    // The outbound rule would let the call through: only the address
    // check stands between an unauthenticated request and the loopback
    // port, which counts every connection it is sent.
    let host = start_app_with(Some("*://*:*"), None)?;
    let ada = signed_in(&host, "ada@example.com")?;
    let org = new_org(&host, &ada, "acme")?;
    let target = StandIn::start(|_| json!({}))?;
    let issuer = format!("http://127.0.0.1:{}", target.port);
    let provider_id = insert_provider(&host, &org, &issuer)?;

    let start = gatehouse_tests::app::call(
        &host,
        "GET",
        &format!("/v1/oidc/{provider_id}/start"),
        None,
        None,
        &[],
    )?;
    assert_eq!(start.status, 503, "{}", start.text());
    // A bearer token naming the issuer makes Gatehouse look for its keys.
    use base64::Engine as _;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let token = format!(
        "{}.{}.c2ln",
        b64(json!({"alg": "RS256", "kid": "k", "typ": "at+jwt"})),
        b64(json!({"iss": issuer, "aud": API, "sub": "x", "exp": 4_000_000_000_i64}))
    );
    let bearer = whoami(&host, &token, None)?;
    assert_eq!(bearer.status, 503, "{}", bearer.text());
    assert_eq!(target.connections(), 0, "the loopback port was reached");

    // Its admins are told why.
    let shown = expect(
        gatehouse_tests::app::call(
            &host,
            "GET",
            "/v1/oidc/providers/legacy",
            None,
            Some(&ada),
            &[],
        )?,
        200,
    )?;
    assert_eq!(warning_codes(&shown), vec!["issuer_not_allowed"]);
    Ok(())
}
