//! An org's own OpenID Connect provider, end to end, against a real
//! provider run locally: panva's `oidc-provider` from the npm registry
//! (`tests/oidc-provider`, installed by `.ci/run`). A browser (Python's
//! urllib with a cookie jar) goes through `/v1/oidc/{provider}/start`, the
//! provider's own sign-in and consent pages, and back to `/callback`;
//! client-credentials tokens the provider issues are sent to Gatehouse as
//! bearer tokens.
//!
//! `issuers` covers which issuers a deployment takes and calls;
//! `token_types` that an ID token is never a bearer credential; `seats`
//! that a first sign-in takes a seat of the org's plan.

#[path = "oidc_e2e/issuers.rs"]
mod issuers;
#[path = "oidc_e2e/seats.rs"]
mod seats;
#[path = "oidc_e2e/support.rs"]
mod support;
#[path = "oidc_e2e/token_types.rs"]
mod token_types;

use anyhow::{Context, Result};
use gatehouse_tests::app::{PASSWORD, call, expect, mailed_token, post, signed_in, totp_code};
use gatehouse_tests::free_port;
use serde_json::{Value, json};
use support::{
    API, IdentityProvider, SERVICE_SECRET, WEB_SECRET, browse, new_org, start_app, start_app_with,
    whoami,
};

#[test]
fn sign_in_with_an_orgs_provider_links_the_subject_and_maps_its_groups() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    let acme = new_org(&host, &ada, "acme")?;
    let acme_header = [("x-org", acme.as_str())];
    expect(
        call(
            &host,
            "POST",
            "/v1/roles",
            Some(&json!({"name": "engineer", "permissions": ["docs:read"]})),
            Some(&ada),
            &acme_header,
        )?,
        201,
    )?;

    let port = free_port()?;
    let issuer = format!("http://127.0.0.1:{port}");
    let created = expect(
        call(
            &host,
            "POST",
            "/v1/oidc/providers",
            Some(&json!({
                "name": "corp", "issuer": issuer, "client_id": "gatehouse-web",
                "client_secret": WEB_SECRET, "scopes": "openid email profile groups",
                "audiences": [API], "allowed_azp": ["reporting"],
                "role_claim": "groups", "role_map": {"eng": "engineer", "sales": "seller"}
            })),
            Some(&ada),
            &acme_header,
        )?,
        201,
    )?;
    assert_eq!(created["has_client_secret"], true);
    assert!(
        !created.to_string().contains(WEB_SECRET),
        "the secret is never shown"
    );
    let redirect = created["redirect_uri"].as_str().context("redirect_uri")?;
    let provider_id = created["id"].as_str().context("id")?;
    assert_eq!(
        redirect,
        host.url(&format!("/v1/oidc/{provider_id}/callback"))
    );

    let idp = IdentityProvider::start(
        port,
        &json!([
            {"client_id": "gatehouse-web", "client_secret": WEB_SECRET, "redirect_uris": [redirect],
             "grant_types": ["authorization_code"], "response_types": ["code"],
             "token_endpoint_auth_method": "client_secret_basic"},
            {"client_id": "reporting", "client_secret": SERVICE_SECRET, "redirect_uris": [],
             "response_types": [], "grant_types": ["client_credentials"]},
            {"client_id": "other-app", "client_secret": SERVICE_SECRET, "redirect_uris": [],
             "response_types": [], "grant_types": ["client_credentials"]}
        ]),
        &json!({
            "bob": {"email": "bob@corp.test", "email_verified": true, "name": "Bob", "groups": ["eng", "unmapped"]},
            "ada-at-corp": {"email": "ada@example.com", "email_verified": true, "name": "Ada"}
        }),
    )?;
    let start = host.url(&format!("/v1/oidc/{provider_id}/start"));

    // Bob has no Gatehouse account: signing in makes one, a member of acme
    // holding the role his group maps to.
    let first = browse(&start, "bob", None)?;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["user"]["email"], "bob@corp.test");
    // The provider's word does not verify an address beyond its org.
    assert_eq!(first.body["user"]["email_verified"], false);
    let bob = first.body["token"].as_str().context("token")?.to_string();
    let principal = expect(whoami(&host, &bob, None)?, 200)?;
    assert_eq!(principal["org_id"], json!(acme));
    assert_eq!(principal["org_role"], "member");
    assert_eq!(principal["roles"], json!(["engineer"]));
    assert_eq!(principal["permissions"], json!(["docs:read"]));
    let bob_id = principal["subject"]["id"].clone();

    // The same subject signs in to the same account.
    let again = browse(&start, "bob", None)?;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["user"]["id"], bob_id);
    // Each sign-in is in the deployment's audit trail, as its user.
    let sign_ins: i64 = gatehouse_tests::app::database(&host)?.query_row(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'auth.sso_login' AND actor_id = ?1
         AND org_id IS NULL AND outcome = 200",
        [bob_id.as_str().context("bob's id")?],
        |r| r.get(0),
    )?;
    assert_eq!(sign_ins, 2);
    // Joining told the org once (the second sign-in joined nothing).
    let events = expect(
        call(
            &host,
            "GET",
            "/v1/org-events?type=member.added",
            None,
            Some(&ada),
            &acme_header,
        )?,
        200,
    )?;
    let joined: Vec<_> = events["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|e| e["data"]["member"]["user_id"] == bob_id)
        .collect();
    assert_eq!(joined.len(), 1, "{events}");
    assert_eq!(joined[0]["data"]["via"], "sso");
    assert_eq!(joined[0]["data"]["member"]["email"], "bob@corp.test");

    // A callback replayed (same code, same state, the state's cookie) is
    // refused: the sign-in is spent. Without the cookie it is refused too.
    let query = again
        .callback
        .split_once('?')
        .map(|(_, q)| q)
        .context("query")?;
    let state = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("state="))
        .context("state")?;
    let cookie = format!("gatehouse_oidc_state={state}");
    let path = format!("/v1/oidc/{provider_id}/callback?{query}");
    let replay = call(&host, "GET", &path, None, None, &[("cookie", &cookie)])?;
    assert_eq!(replay.status, 401, "{}", replay.text());
    assert_eq!(call(&host, "GET", &path, None, None, &[])?.status, 401);

    // The provider's account with Ada's address does not take over her
    // account; signed in, Ada links it, and it then signs her in.
    let takeover = browse(&start, "ada-at-corp", None)?;
    assert_eq!(takeover.status, 409, "{}", takeover.body);
    let ada_id = expect(whoami(&host, &ada, None)?, 200)?["subject"]["id"].clone();
    let linked = browse(&start, "ada-at-corp", Some(&ada))?;
    assert_eq!(linked.status, 200, "{}", linked.body);
    assert_eq!(linked.body["user"]["id"], ada_id);
    let via_idp = browse(&start, "ada-at-corp", None)?;
    assert_eq!(via_idp.body["user"]["id"], ada_id, "{}", via_idp.body);
    // Ada stays acme's admin.
    let ada_again = via_idp.body["token"].as_str().context("token")?;
    assert_eq!(
        expect(whoami(&host, ada_again, None)?, 200)?["org_role"],
        "admin"
    );

    // Bearer tokens of the provider: the app `reporting` is allowed, as an
    // external subject of acme; `other-app` of the same issuer is not; a
    // token with a changed payload is not.
    let reporting = idp.client_token("reporting", SERVICE_SECRET)?;
    let external = expect(whoami(&host, &reporting, None)?, 200)?;
    assert_eq!(
        external["subject"],
        json!({"type": "external", "provider": "corp", "sub": "reporting"})
    );
    assert_eq!(external["org_id"], json!(acme));
    assert_eq!(external["credential"], "jwt");
    assert_eq!(
        expect(whoami(&host, &reporting, Some("acme"))?, 200)?["org_id"],
        json!(acme)
    );
    let other = idp.client_token("other-app", SERVICE_SECRET)?;
    assert_eq!(whoami(&host, &other, None)?.status, 401);
    let mut parts: Vec<String> = reporting.split('.').map(str::to_string).collect();
    parts[1] = parts[1].chars().rev().collect();
    assert_eq!(whoami(&host, &parts.join("."), None)?.status, 401);
    // An external subject may not use the member-only routes.
    let key = call(
        &host,
        "POST",
        "/v1/keys",
        Some(&json!({"name": "mine"})),
        Some(&reporting),
        &[],
    )?;
    assert_eq!(key.status, 403, "{}", key.text());

    // Another org trusting the same tenant loosely (any app) does not take
    // acme's token: the provider naming the app wins. Naming the same app
    // makes the token ambiguous until X-Org names one; each org sees its own.
    let eve = signed_in(&host, "eve@example.com")?;
    let globex = new_org(&host, &eve, "globex")?;
    expect(
        call(
            &host,
            "POST",
            "/v1/oidc/providers",
            Some(
                &json!({"name": "corp", "issuer": issuer, "client_id": "globex-web", "audiences": [API]}),
            ),
            Some(&eve),
            &[("x-org", globex.as_str())],
        )?,
        201,
    )?;
    assert_eq!(
        expect(whoami(&host, &reporting, None)?, 200)?["org_id"],
        json!(acme)
    );
    let named = json!({"allowed_azp": ["reporting"]});
    let globex_header = [("x-org", globex.as_str())];
    expect(
        call(
            &host,
            "PATCH",
            "/v1/oidc/providers/corp",
            Some(&named),
            Some(&eve),
            &globex_header,
        )?,
        200,
    )?;
    let ambiguous = whoami(&host, &reporting, None)?;
    assert_eq!(ambiguous.status, 401);
    assert!(ambiguous.text().contains("X-Org"), "{}", ambiguous.text());
    assert_eq!(
        expect(whoami(&host, &reporting, Some("globex"))?, 200)?["org_id"],
        json!(globex)
    );
    assert_eq!(
        expect(whoami(&host, &reporting, Some(&acme))?, 200)?["org_id"],
        json!(acme)
    );

    // Deleting the provider stops its sign-ins and its bearer tokens.
    expect(
        call(
            &host,
            "DELETE",
            "/v1/oidc/providers/corp",
            None,
            Some(&ada),
            &acme_header,
        )?,
        204,
    )?;
    // The token now stands only for globex: acme does not take it.
    assert_eq!(whoami(&host, &reporting, Some("acme"))?.status, 404);
    assert_eq!(
        expect(whoami(&host, &reporting, None)?, 200)?["org_id"],
        json!(globex)
    );
    assert_eq!(browse(&start, "bob", None)?.status, 404);
    Ok(())
}

#[test]
fn provider_routes_validate_and_stay_in_their_org() -> Result<()> {
    let host = start_app_with(Some("https://*:443"), None)?;
    let ada = signed_in(&host, "ada@example.com")?;
    let acme = new_org(&host, &ada, "acme")?;
    let acme_header = [("x-org", acme.as_str())];
    let create = |token: &str, body: Value| {
        call(
            &host,
            "POST",
            "/v1/oidc/providers",
            Some(&body),
            Some(token),
            &acme_header,
        )
    };

    // Validation: each bad field is named.
    let invalid = expect(
        create(
            &ada,
            json!({"name": "Bad Name", "issuer": "http://idp.example.com", "client_id": "", "scopes": "email", "role_map": {"x": ""}}),
        )?,
        422,
    )?;
    let pointers: Vec<&str> = invalid["errors"]
        .as_array()
        .context("errors")?
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    for field in ["/name", "/issuer", "/client_id", "/scopes", "/role_map"] {
        assert!(pointers.contains(&field), "{field} in {invalid}");
    }
    let missing = expect(create(&ada, json!({"name": "corp"}))?, 422)?;
    assert!(missing.to_string().contains("/issuer") && missing.to_string().contains("/client_id"));
    assert_eq!(
        create(&ada, json!({"name": "corp", "surprise": 1}))?.status,
        422
    );

    // Credentials: none, or a bad one, is 401; a member who is not an
    // admin reads but does not change.
    let body = json!({"name": "corp", "issuer": "https://corp.okta.test", "client_id": "0oa1", "client_secret": "okta-secret"});
    assert_eq!(
        call(&host, "POST", "/v1/oidc/providers", Some(&body), None, &[])?.status,
        401
    );
    assert_eq!(create("ghs_not-a-session", body.clone())?.status, 401);
    let made = expect(create(&ada, body.clone())?, 201)?;
    assert_eq!(made["scopes"], "openid email profile");
    assert_eq!(create(&ada, body.clone())?.status, 409);

    // PATCH changes only what it names; an empty secret makes a public client.
    let patched = expect(
        call(
            &host,
            "PATCH",
            "/v1/oidc/providers/corp",
            Some(&json!({"name": "okta", "client_secret": "", "allowed_azp": ["0oa1"]})),
            Some(&ada),
            &acme_header,
        )?,
        200,
    )?;
    assert_eq!(patched["name"], "okta");
    assert_eq!(patched["has_client_secret"], false);
    assert_eq!(patched["issuer"], "https://corp.okta.test");
    assert_eq!(patched["allowed_azp"], json!(["0oa1"]));
    assert_eq!(
        call(
            &host,
            "GET",
            "/v1/oidc/providers/corp",
            None,
            Some(&ada),
            &acme_header
        )?
        .status,
        404
    );

    // Another org's admin neither sees nor changes it, by name or by list.
    let eve = signed_in(&host, "eve@example.com")?;
    let globex = new_org(&host, &eve, "globex")?;
    let globex_header = [("x-org", globex.as_str())];
    let theirs = expect(
        call(
            &host,
            "GET",
            "/v1/oidc/providers",
            None,
            Some(&eve),
            &globex_header,
        )?,
        200,
    )?;
    assert_eq!(theirs["items"], json!([]));
    for method in ["GET", "DELETE"] {
        assert_eq!(
            call(
                &host,
                method,
                "/v1/oidc/providers/okta",
                None,
                Some(&eve),
                &globex_header
            )?
            .status,
            404
        );
    }
    assert_eq!(
        call(
            &host,
            "PATCH",
            "/v1/oidc/providers/okta",
            Some(&json!({"client_id": "mine"})),
            Some(&eve),
            &globex_header
        )?
        .status,
        404
    );
    // Naming acme in X-Org gets Eve nowhere either.
    assert_eq!(
        call(
            &host,
            "GET",
            "/v1/oidc/providers",
            None,
            Some(&eve),
            &acme_header
        )?
        .status,
        404
    );
    let ours = expect(
        call(
            &host,
            "GET",
            "/v1/oidc/providers",
            None,
            Some(&ada),
            &acme_header,
        )?,
        200,
    )?;
    assert_eq!(ours["items"].as_array().map(Vec::len), Some(1));

    // Sign-in routes: an unknown provider is 404; a callback without a
    // started sign-in is 401.
    let unknown = call(
        &host,
        "GET",
        "/v1/oidc/idp_00000000000000000000000000000000/start",
        None,
        None,
        &[],
    )?;
    assert_eq!(unknown.status, 404);
    let id = made["id"].as_str().context("id")?;
    let stray = call(
        &host,
        "GET",
        &format!("/v1/oidc/{id}/callback?code=x&state=y"),
        None,
        None,
        &[("cookie", "gatehouse_oidc_state=y")],
    )?;
    assert_eq!(stray.status, 401, "{}", stray.text());
    assert_eq!(
        call(
            &host,
            "POST",
            &format!("/v1/oidc/{id}/start"),
            None,
            None,
            &[]
        )?
        .status,
        405
    );
    Ok(())
}

#[test]
fn a_rotated_provider_key_is_fetched_once_the_floor_has_passed() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    new_org(&host, &ada, "acme")?;
    let port = free_port()?;
    expect(
        post(
            &host,
            "/v1/oidc/providers",
            &json!({"name": "corp", "issuer": format!("http://127.0.0.1:{port}"), "client_id": "web", "audiences": [API]}),
            Some(&ada),
        )?,
        201,
    )?;
    let clients = json!([{"client_id": "reporting", "client_secret": SERVICE_SECRET, "redirect_uris": [],
                          "response_types": [], "grant_types": ["client_credentials"]}]);
    let first = IdentityProvider::start(port, &clients, &json!({}))?;
    let old = first.client_token("reporting", SERVICE_SECRET)?;
    assert_eq!(whoami(&host, &old, None)?.status, 200);

    // The provider restarts with a new key (a new kid). Inside the floor
    // the cached set is not fetched again: the new token is refused, the
    // old one still verifies from the cache.
    drop(first);
    let second = IdentityProvider::start(port, &clients, &json!({}))?;
    let new = second.client_token("reporting", SERVICE_SECRET)?;
    assert_eq!(whoami(&host, &new, None)?.status, 401);
    assert_eq!(whoami(&host, &old, None)?.status, 200);

    // Once the floor has passed (the cached set is made older than it),
    // the unknown kid fetches the set again: the new key verifies and the
    // retired one no longer does.
    let kv = rusqlite::Connection::open(
        host.state
            .path()
            .join(gatehouse_host::runtime_config::DEFAULT_KV_FILE),
    )?;
    let aged = kv.execute(
        "UPDATE spin_key_value SET value = CAST(json_set(CAST(value AS TEXT),
             '$.fetched_at', json_extract(CAST(value AS TEXT), '$.fetched_at') - 61,
             '$.attempted_at', json_extract(CAST(value AS TEXT), '$.attempted_at') - 61) AS BLOB)
         WHERE key LIKE 'oidc:keys:%'",
        [],
    )?;
    assert_eq!(aged, 1);
    assert_eq!(whoami(&host, &new, None)?.status, 200);
    assert_eq!(whoami(&host, &old, None)?.status, 401);
    Ok(())
}

#[test]
fn a_provider_vouches_for_nothing_beyond_its_org() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    new_org(&host, &ada, "acme")?;
    let port = free_port()?;
    let created = expect(
        post(
            &host,
            "/v1/oidc/providers",
            &json!({"name": "corp", "issuer": format!("http://127.0.0.1:{port}"), "client_id": "gatehouse-web",
                    "client_secret": WEB_SECRET, "audiences": [API]}),
            Some(&ada),
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
        &json!({"bob": {"email": "bob@corp.test", "email_verified": true, "name": "Bob"}}),
    )?;
    let start = host.url(&format!("/v1/oidc/{provider_id}/start"));
    let bob_id = browse(&start, "bob", None)?.body["user"]["id"].clone();
    assert!(bob_id.is_string());

    // The address's owner proves it by reset: the provider's link goes, so
    // the provider no longer signs in to the account...
    post(
        &host,
        "/v1/auth/password/forgot",
        &json!({"email": "bob@corp.test"}),
        None,
    )?;
    let reset = mailed_token(&host, "bob@corp.test", "reset_password", "grt_")?;
    expect(
        post(
            &host,
            "/v1/auth/password/reset",
            &json!({"token": reset, "password": PASSWORD}),
            None,
        )?,
        200,
    )?;
    assert_eq!(browse(&start, "bob", None)?.status, 409);
    // ...until the owner, signed in, links it again.
    let login = post(
        &host,
        "/v1/auth/login",
        &json!({"email": "bob@corp.test", "password": PASSWORD}),
        None,
    )?;
    let bob = expect(login, 200)?["token"]
        .as_str()
        .context("token")?
        .to_string();
    assert_eq!(
        browse(&start, "bob", Some(&bob))?.body["user"]["id"],
        bob_id
    );
    assert_eq!(browse(&start, "bob", None)?.body["user"]["id"], bob_id);

    // With a second factor on, the provider's sign-in ends in its challenge.
    let enrolment = expect(
        post(&host, "/v1/auth/mfa/totp", &json!({}), Some(&bob))?,
        201,
    )?;
    let secret = enrolment["secret"].as_str().context("secret")?;
    expect(
        post(
            &host,
            "/v1/auth/mfa/totp/confirm",
            &json!({"code": totp_code(secret, 0)?}),
            Some(&bob),
        )?,
        200,
    )?;
    let challenged = browse(&start, "bob", None)?;
    assert_eq!(challenged.status, 202, "{}", challenged.body);
    assert_eq!(challenged.body["status"], "mfa_required");
    assert!(challenged.body.get("token").is_none());

    // Pointed at another client, the provider's links are dropped.
    let links = || -> Result<i64> {
        let db = rusqlite::Connection::open(
            host.state
                .path()
                .join(gatehouse_host::runtime_config::DEFAULT_DB_FILE),
        )?;
        Ok(db.query_row("SELECT count(*) FROM oidc_identities", [], |r| r.get(0))?)
    };
    assert_eq!(links()?, 1);
    let same = json!({"client_id": "gatehouse-web"});
    expect(
        call(
            &host,
            "PATCH",
            "/v1/oidc/providers/corp",
            Some(&same),
            Some(&ada),
            &[],
        )?,
        200,
    )?;
    assert_eq!(links()?, 1, "an unchanged client keeps them");
    let other = json!({"client_id": "another-app"});
    expect(
        call(
            &host,
            "PATCH",
            "/v1/oidc/providers/corp",
            Some(&other),
            Some(&ada),
            &[],
        )?,
        200,
    )?;
    assert_eq!(links()?, 0);

    // The provider's own subjects do not read the org's configuration, and
    // an unknown X-Org tells an unverified token nothing.
    let reporting = idp.client_token("reporting", SERVICE_SECRET)?;
    assert_eq!(
        expect(whoami(&host, &reporting, None)?, 200)?["subject"]["type"],
        "external"
    );
    for path in ["/v1/services", "/v1/oidc/providers"] {
        assert_eq!(
            call(&host, "GET", path, None, Some(&reporting), &[])?.status,
            403,
            "{path}"
        );
    }
    assert_eq!(whoami(&host, "a.b.c", Some("no-such-org"))?.status, 401);
    assert_eq!(whoami(&host, "a.b.c", Some("acme"))?.status, 401);
    assert_eq!(whoami(&host, &reporting, Some("no-such-org"))?.status, 404);
    Ok(())
}
