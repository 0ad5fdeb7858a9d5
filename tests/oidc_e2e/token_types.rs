//! An ID token is never a bearer credential, even where a provider lists
//! its client id among the bearer audiences (as Entra access tokens for an
//! app's own API need): an access token is told from an ID token by its
//! `typ` (`at+jwt`, RFC 9068) and by the claims only ID tokens carry.

use anyhow::{Context, Result};
use gatehouse_tests::app::{expect, signed_in, user_id};
use gatehouse_tests::free_port;
use serde_json::json;

use super::support::{
    API, IdentityProvider, SERVICE_SECRET, WEB_SECRET, browse, create_provider, new_org,
    patch_provider, start_app, warning_codes, whoami,
};

#[test]
fn an_id_token_is_refused_as_a_bearer_credential_while_the_access_token_is_taken() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    new_org(&host, &ada, "acme")?;
    let port = free_port()?;
    let created = expect(
        create_provider(
            &host,
            &ada,
            &json!({"name": "corp", "issuer": format!("http://127.0.0.1:{port}"),
                    "client_id": "gatehouse-web", "client_secret": WEB_SECRET,
                    "audiences": [API, "gatehouse-web"]}),
        )?,
        201,
    )?;
    let provider_id = created["id"].as_str().context("id")?;
    let redirect = created["redirect_uri"].as_str().context("redirect_uri")?;
    let idp = IdentityProvider::start(
        port,
        &json!([
            {"client_id": "gatehouse-web", "client_secret": WEB_SECRET, "redirect_uris": [redirect],
             "grant_types": ["authorization_code"], "response_types": ["code"]},
            {"client_id": "reporting", "client_secret": SERVICE_SECRET, "redirect_uris": [],
             "response_types": [], "grant_types": ["client_credentials"]}
        ]),
        &json!({"bob": {"email": "bob@corp.test", "name": "Bob"}}),
    )?;
    // Bob signs in through Gatehouse once: his subject is linked.
    let start = host.url(&format!("/v1/oidc/{provider_id}/start"));
    let first = browse(&start, "bob", None)?;
    assert_eq!(first.status, 200, "{}", first.body);
    let bob = user_id(&host, first.body["token"].as_str().context("token")?)?;

    // Any holder of the client gets Bob's ID token (its audience is the
    // client id) along with an access token for the API.
    let tokens = idp.code_flow_tokens("gatehouse-web", WEB_SECRET, redirect, "bob")?;
    let id_token = tokens["id_token"].as_str().context("id_token")?;
    let access_token = tokens["access_token"].as_str().context("access_token")?;
    let refused = whoami(&host, id_token, None)?;
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert!(refused.text().contains("ID token"), "{}", refused.text());
    let member = expect(whoami(&host, access_token, None)?, 200)?;
    assert_eq!(member["subject"]["id"], json!(bob));

    // The client id among the audiences is worth a warning, on every read.
    assert!(
        warning_codes(&created).contains(&"client_id_in_audiences".to_string()),
        "{created}"
    );
    assert_eq!(created["require_at_jwt_typ"], false);
    let shown = expect(
        gatehouse_tests::app::call(
            &host,
            "GET",
            "/v1/oidc/providers/corp",
            None,
            Some(&ada),
            &[],
        )?,
        200,
    )?;
    assert_eq!(warning_codes(&shown), vec!["client_id_in_audiences"]);

    // Requiring at+jwt takes the provider's typed access tokens (user and
    // client-credentials alike), still no ID token, and ends the warning.
    let strict = expect(
        patch_provider(&host, &ada, "corp", &json!({"require_at_jwt_typ": true}))?,
        200,
    )?;
    assert_eq!(strict["require_at_jwt_typ"], true);
    assert_eq!(strict["warnings"], json!([]));
    assert_eq!(whoami(&host, access_token, None)?.status, 200);
    assert_eq!(whoami(&host, id_token, None)?.status, 401);
    let reporting = idp.client_token("reporting", SERVICE_SECRET)?;
    assert_eq!(whoami(&host, &reporting, None)?.status, 200);
    Ok(())
}
