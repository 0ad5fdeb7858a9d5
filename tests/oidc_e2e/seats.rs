//! A first single sign-on joins the provider's org, so it takes a seat of
//! the org's plan like an accepted invitation: refused (`402
//! seat_limit_reached`) when every seat is held, and nothing is joined.

use anyhow::{Context, Result};
use gatehouse_tests::app::{call, expect, signed_in};
use gatehouse_tests::free_port;
use serde_json::json;

use crate::support::{IdentityProvider, WEB_SECRET, browse, new_org, start_app_env};

#[test]
fn a_first_sign_in_is_refused_when_the_orgs_seats_are_all_held() -> Result<()> {
    // The default plan has two seats: the admin's and one more.
    let plans = json!([{"key": "free", "name": "Free", "default": true, "seats": {"included": 2}}]);
    let host = start_app_env(
        Some("http://127.0.0.1:*"),
        Some("true"),
        &[("BILLING_PLANS", &plans.to_string())],
    )?;
    let ada = signed_in(&host, "ada@example.com")?;
    let acme = new_org(&host, &ada, "acme")?;
    let acme_header = [("x-org", acme.as_str())];
    let port = free_port()?;
    let created = expect(
        call(
            &host,
            "POST",
            "/v1/oidc/providers",
            Some(&json!({
                "name": "corp", "issuer": format!("http://127.0.0.1:{port}"),
                "client_id": "gatehouse-web", "client_secret": WEB_SECRET,
                "scopes": "openid email profile",
            })),
            Some(&ada),
            &acme_header,
        )?,
        201,
    )?;
    let redirect = created["redirect_uri"].as_str().context("redirect_uri")?;
    let provider_id = created["id"].as_str().context("id")?;
    let _idp = IdentityProvider::start(
        port,
        &json!([{"client_id": "gatehouse-web", "client_secret": WEB_SECRET, "redirect_uris": [redirect],
                 "grant_types": ["authorization_code"], "response_types": ["code"],
                 "token_endpoint_auth_method": "client_secret_basic"}]),
        &json!({
            "bob": {"email": "bob@corp.test", "email_verified": true, "name": "Bob"},
            "cy": {"email": "cy@corp.test", "email_verified": true, "name": "Cy"}
        }),
    )?;
    let start = host.url(&format!("/v1/oidc/{provider_id}/start"));
    let bob = browse(&start, "bob", None)?;
    assert_eq!(bob.status, 200, "{}", bob.body);
    let cy = browse(&start, "cy", None)?;
    assert_eq!(cy.status, 402, "{}", cy.body);
    assert_eq!(cy.body["code"], "seat_limit_reached");
    let members = expect(
        call(
            &host,
            "GET",
            &format!("/v1/orgs/{acme}/members"),
            None,
            Some(&ada),
            &[],
        )?,
        200,
    )?;
    assert_eq!(members["items"].as_array().context("items")?.len(), 2);
    // Bob, a member already, signs in again: he takes no new seat.
    assert_eq!(browse(&start, "bob", None)?.status, 200);
    Ok(())
}
