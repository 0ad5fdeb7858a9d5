//! What an attacker tried against the built app, each case held shut:
//! a JWT outliving the authority it was issued with, old reset links,
//! sign-in throttling that locked the real user out, and loose input
//! (control characters, foreign charsets, malformed `X-Org`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result};
use gatehouse_tests::app::{
    MASTER_KEY, PASSWORD, call, database, expect, join, mailed_token, post, reset_password,
    retry_after, signed_in, start_app, user_id,
};
use gatehouse_tests::{HostConfig, Reply, TestHost, root, send};
use serde_json::{Value, json};

fn create_org(host: &TestHost, admin: &str, handle: &str) -> Result<String> {
    let created = expect(
        post(
            host,
            "/v1/orgs",
            &json!({"name": format!("{handle} Inc."), "handle": handle}),
            Some(admin),
        )?,
        201,
    )?;
    Ok(created["id"].as_str().context("id")?.to_string())
}

/// A JWT for the caller (`POST /v1/tokens`), acting in `org`.
fn jwt(host: &TestHost, credential: &str, org: Option<&str>) -> Result<String> {
    let headers: Vec<(&str, &str)> = org.map(|o| ("x-org", o)).into_iter().collect();
    let issued = expect(
        call(
            host,
            "POST",
            "/v1/tokens",
            Some(&json!({})),
            Some(credential),
            &headers,
        )?,
        200,
    )?;
    Ok(issued["access_token"]
        .as_str()
        .context("access_token")?
        .to_string())
}

fn status(reply: Reply) -> u16 {
    reply.status
}

#[test]
fn a_removed_admins_token_loses_every_power_on_the_next_request() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    let org = create_org(&host, &ada, "acme")?;
    let (bob, bob_id) = join(&host, &ada, &org, "bob@example.com", "admin", &[])?;
    let (_, carol_id) = join(&host, &ada, &org, "carol@example.com", "member", &[])?;
    let token = jwt(&host, &bob, Some(&org))?;
    // While Bob is an admin the token is one.
    expect(
        call(
            &host,
            "GET",
            &format!("/v1/orgs/{org}/members"),
            None,
            Some(&token),
            &[],
        )?,
        200,
    )?;
    expect(
        call(
            &host,
            "DELETE",
            &format!("/v1/orgs/{org}/members/{bob_id}"),
            None,
            Some(&ada),
            &[],
        )?,
        204,
    )?;
    let attempts = [
        (
            "POST",
            format!("/v1/orgs/{org}/invitations"),
            Some(json!({"email": "bob@example.com", "role": "admin"})),
        ),
        (
            "PATCH",
            format!("/v1/orgs/{org}/members/{carol_id}"),
            Some(json!({"role": "admin"})),
        ),
        (
            "POST",
            "/v1/keys".to_string(),
            Some(json!({"name": "backdoor"})),
        ),
        (
            "PATCH",
            format!("/v1/orgs/{org}"),
            Some(json!({"name": "Owned"})),
        ),
        ("GET", format!("/v1/orgs/{org}/members"), None),
        ("GET", "/v1/auth/whoami".to_string(), None),
        ("DELETE", format!("/v1/orgs/{org}"), None),
    ];
    for (method, path, body) in attempts {
        let reply = call(&host, method, &path, body.as_ref(), Some(&token), &[])?;
        assert_eq!(reply.status, 401, "{method} {path}: {}", reply.text());
        assert_eq!(reply.json()?["code"], "unauthenticated");
    }
    // Nothing the token tried happened.
    let members = expect(
        call(
            &host,
            "GET",
            &format!("/v1/orgs/{org}/members"),
            None,
            Some(&ada),
            &[],
        )?,
        200,
    )?;
    let roles: Vec<(&str, &str)> = members["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap_or(""),
                m["role"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        roles.contains(&("carol@example.com", "member")),
        "{roles:?}"
    );
    assert!(!roles.iter().any(|(email, _)| *email == "bob@example.com"));
    expect(
        call(
            &host,
            "GET",
            &format!("/v1/orgs/{org}"),
            None,
            Some(&ada),
            &[],
        )?,
        200,
    )?;
    Ok(())
}

#[test]
fn a_demoted_admins_token_answers_as_a_member() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    let org = create_org(&host, &ada, "acme")?;
    let (bob, bob_id) = join(&host, &ada, &org, "bob@example.com", "admin", &[])?;
    let token = jwt(&host, &bob, Some(&org))?;
    let whoami = |t: &str| call(&host, "GET", "/v1/auth/whoami", None, Some(t), &[]);
    let set_role = |role: &str| {
        let path = format!("/v1/orgs/{org}/members/{bob_id}");
        let body = json!({ "role": role });
        expect(
            call(&host, "PATCH", &path, Some(&body), Some(&ada), &[])?,
            200,
        )
    };
    assert_eq!(expect(whoami(&token)?, 200)?["org_role"], "admin");
    set_role("member")?;
    assert_eq!(expect(whoami(&token)?, 200)?["org_role"], "member");
    let invite = call(
        &host,
        "POST",
        &format!("/v1/orgs/{org}/invitations"),
        Some(&json!({"email": "eve@example.com", "role": "admin"})),
        Some(&token),
        &[],
    )?;
    assert_eq!(invite.status, 403, "{}", invite.text());
    let rename = call(
        &host,
        "PATCH",
        &format!("/v1/orgs/{org}"),
        Some(&json!({"name": "Owned"})),
        Some(&token),
        &[],
    )?;
    assert_eq!(rename.status, 403);
    // Promoted again, the token issued to an admin acts as one again; a
    // token issued to a member stays a member's after a promotion: a
    // token is never wider than it was issued.
    set_role("admin")?;
    assert_eq!(expect(whoami(&token)?, 200)?["org_role"], "admin");
    set_role("member")?;
    let member_token = jwt(&host, &bob, Some(&org))?;
    set_role("admin")?;
    assert_eq!(expect(whoami(&member_token)?, 200)?["org_role"], "member");
    Ok(())
}

#[test]
fn tokens_end_with_sign_out_everywhere_a_password_reset_and_deactivation() -> Result<()> {
    let host = start_app()?;
    let email = "ada@example.com";
    let session = signed_in(&host, email)?;
    let whoami = |t: &str| call(&host, "GET", "/v1/auth/whoami", None, Some(t), &[]);

    let before = jwt(&host, &session, None)?;
    expect(whoami(&before)?, 200)?;
    expect(
        call(&host, "DELETE", "/v1/sessions", None, Some(&session), &[])?,
        200,
    )?;
    assert_eq!(status(whoami(&before)?), 401, "signed out everywhere");
    let after = jwt(&host, &session, None)?;
    expect(whoami(&after)?, 200)?;

    reset_password(&host, email, "lemon-harbour-violin")?;
    assert_eq!(status(whoami(&after)?), 401, "a new password");

    let login = expect(
        post(
            &host,
            "/v1/auth/login",
            &json!({"email": email, "password": "lemon-harbour-violin"}),
            None,
        )?,
        200,
    )?;
    let session = login["token"].as_str().context("token")?.to_string();
    let last = jwt(&host, &session, None)?;
    expect(whoami(&last)?, 200)?;
    expect(
        call(
            &host,
            "DELETE",
            "/v1/me",
            Some(&json!({"password": "lemon-harbour-violin"})),
            Some(&session),
            &[],
        )?,
        204,
    )?;
    assert_eq!(status(whoami(&last)?), 401, "deactivated");
    Ok(())
}

#[test]
fn a_keys_token_ends_when_the_key_is_revoked() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    let org = create_org(&host, &ada, "acme")?;
    let created = expect(
        post(&host, "/v1/keys", &json!({"name": "ci"}), Some(&ada))?,
        201,
    )?;
    let key = created["key"].as_str().context("key")?;
    let token = jwt(&host, key, None)?;
    let whoami = |t: &str| call(&host, "GET", "/v1/auth/whoami", None, Some(t), &[]);
    assert_eq!(expect(whoami(&token)?, 200)?["org_id"], org.as_str());
    expect(
        call(&host, "DELETE", "/v1/keys/ci", None, Some(&ada), &[])?,
        204,
    )?;
    assert_eq!(status(whoami(&token)?), 401);
    Ok(())
}

#[test]
fn a_password_reset_spends_every_other_reset_link() -> Result<()> {
    let host = start_app()?;
    let email = "ada@example.com";
    signed_in(&host, email)?;
    let forgot = || {
        post(
            &host,
            "/v1/auth/password/forgot",
            &json!({"email": email}),
            None,
        )
    };
    expect(forgot()?, 202)?;
    let older = mailed_token(&host, email, "reset_password", "grt_")?;
    expect(forgot()?, 202)?;
    let newer = mailed_token(&host, email, "reset_password", "grt_")?;
    assert_ne!(older, newer, "the outbox lists the newest mail first");
    expect(
        post(
            &host,
            "/v1/auth/password/reset",
            &json!({"token": newer, "password": "lemon-harbour-violin"}),
            None,
        )?,
        200,
    )?;
    let replay = post(
        &host,
        "/v1/auth/password/reset",
        &json!({"token": older, "password": "attacker-chosen-words"}),
        None,
    )?;
    assert_eq!(replay.status, 422, "{}", replay.text());
    assert_eq!(replay.json()?["errors"][0]["code"], "invalid_token");
    let login = post(
        &host,
        "/v1/auth/login",
        &json!({"email": email, "password": "lemon-harbour-violin"}),
        None,
    )?;
    assert_eq!(
        login.status, 200,
        "the password set by the newer link holds"
    );
    Ok(())
}

/// The app behind a proxy that names the client in `X-Forwarded-For`.
fn start_behind_proxy() -> Result<TestHost> {
    let mut config = HostConfig::new(root().join("spin.toml"));
    config.migrations = Some(root().join("infra/migrations"));
    config.env = vec![
        ("SPIN_VARIABLE_DEV_OUTBOX".into(), "enabled".into()),
        ("SPIN_VARIABLE_MASTER_KEY".into(), MASTER_KEY.into()),
        (
            "SPIN_VARIABLE_CLIENT_ADDRESS_HEADER".into(),
            "x-forwarded-for".into(),
        ),
    ];
    TestHost::start(config)
}

fn login_from(
    host: &TestHost,
    email: &str,
    password: &str,
    from: &str,
    agent: &str,
) -> Result<Reply> {
    let body = json!({"email": email, "password": password}).to_string();
    send(
        "POST",
        &host.url("/v1/auth/login"),
        &[
            ("content-type", "application/json"),
            ("x-forwarded-for", &format!("6.6.6.6, {from}")),
            ("user-agent", agent),
        ],
        body.as_bytes(),
    )
}

#[test]
fn an_attack_on_one_account_slows_strangers_but_never_the_owners_known_device() -> Result<()> {
    let host = start_behind_proxy()?;
    let email = "ada@example.com";
    signed_in(&host, email)?;
    // Ada's laptop has signed in before.
    expect(
        login_from(&host, email, PASSWORD, "198.51.100.7", "laptop")?,
        200,
    )?;
    // An attacker spreads wrong passwords over many addresses, a few each.
    for n in 0..20 {
        let from = format!("203.0.113.{}", n / 4);
        let reply = login_from(&host, email, "wrong-password-here", &from, "bot")?;
        assert_eq!(reply.status, 401, "try {n}: {}", reply.text());
    }
    // A stranger now waits, even with the right password...
    let stranger = login_from(&host, email, PASSWORD, "192.0.2.50", "bot")?;
    assert_eq!(stranger.status, 429, "{}", stranger.text());
    assert_eq!(stranger.json()?["code"], "rate_limited");
    let wait = retry_after(&stranger)?;
    assert!((1..=900).contains(&wait), "{wait}");
    // ...while Ada's known laptop signs in at once.
    expect(
        login_from(&host, email, PASSWORD, "198.51.100.7", "laptop")?,
        200,
    )?;
    Ok(())
}

#[test]
fn failures_from_one_address_slow_only_that_address_with_growing_waits() -> Result<()> {
    let host = start_behind_proxy()?;
    let email = "ada@example.com";
    signed_in(&host, email)?;
    let from_bot = |password: &str| login_from(&host, email, password, "203.0.113.9", "bot");
    for _ in 0..5 {
        assert_eq!(status(from_bot("nope-nope-nope")?), 401);
    }
    let first = from_bot(PASSWORD)?;
    assert_eq!(first.status, 429);
    let first_wait = retry_after(&first)?;
    // Another address is not slowed by this one's failures.
    expect(
        login_from(&host, email, PASSWORD, "198.51.100.7", "phone")?,
        200,
    )?;
    // Once the wait has passed (moved back in the record), one more
    // failure makes the next wait longer.
    database(&host)?.execute("UPDATE login_attempts SET created_at = created_at - 60", [])?;
    assert_eq!(status(from_bot("nope-nope-nope")?), 401);
    let second = from_bot(PASSWORD)?;
    assert_eq!(second.status, 429);
    let second_wait = retry_after(&second)?;
    assert!(second_wait > first_wait, "{second_wait} after {first_wait}");
    Ok(())
}

#[test]
fn a_client_chosen_forwarded_header_is_ignored_without_a_configured_proxy() -> Result<()> {
    let host = start_app()?;
    let email = "ada@example.com";
    signed_in(&host, email)?;
    // Without `client_address_header`, every try comes from the peer, so
    // rotating X-Forwarded-For buys nothing.
    for n in 0..5 {
        let from = format!("203.0.113.{n}");
        assert_eq!(
            status(login_from(&host, email, "nope-nope-nope", &from, "bot")?),
            401
        );
    }
    let reply = login_from(&host, email, PASSWORD, "203.0.113.99", "bot")?;
    assert_eq!(reply.status, 429, "{}", reply.text());
    Ok(())
}

/// A raw request, for bytes a well-behaved client library will not send.
fn raw(host: &TestHost, request: &[u8]) -> Result<(u16, String)> {
    let address = host.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("status line")?;
    Ok((status, text))
}

#[test]
fn a_malformed_org_header_is_a_bad_request() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    create_org(&host, &ada, "acme")?;
    let mut request = format!(
        "GET /v1/auth/whoami HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer {ada}\r\nx-org: acm"
    )
    .into_bytes();
    request.extend_from_slice(b"\xe9\r\n\r\n");
    let (status, text) = raw(&host, &request)?;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("\"invalid_header\""), "{text}");
    // Well-formed, it works.
    let reply = call(
        &host,
        "GET",
        "/v1/auth/whoami",
        None,
        Some(&ada),
        &[("x-org", "acme")],
    )?;
    assert_eq!(expect(reply, 200)?["org_role"], "admin");
    Ok(())
}

#[test]
fn control_characters_in_emails_and_names_are_refused() -> Result<()> {
    let host = start_app()?;
    let register = |email: &str, name: &str| {
        post(
            &host,
            "/v1/auth/register",
            &json!({"email": email, "password": PASSWORD, "display_name": name}),
            None,
        )
    };
    let pointers = |reply: Reply| -> Result<Vec<Value>> {
        let body = expect(reply, 422)?;
        Ok(body["errors"]
            .as_array()
            .context("errors")?
            .iter()
            .map(|e| e["pointer"].clone())
            .collect())
    };
    assert_eq!(
        pointers(register("ada\u{0}@example.com", "Ada")?)?,
        vec![json!("/email")]
    );
    assert_eq!(
        pointers(register("ada@example.com", "Ada\u{0}")?)?,
        vec![json!("/display_name")]
    );
    assert_eq!(
        pointers(register("ada@example.com", "Ada\r\nBcc: x")?)?,
        vec![json!("/display_name")]
    );
    let outbox = gatehouse_tests::get(&host.url("/v1/dev/outbox"), &[])?.json()?;
    assert_eq!(
        outbox["items"].as_array().map(Vec::len),
        Some(0),
        "nothing mailed"
    );

    let ada = signed_in(&host, "ada@example.com")?;
    let org = post(
        &host,
        "/v1/orgs",
        &json!({"name": "Acme\u{202E}cni", "handle": "acme"}),
        Some(&ada),
    )?;
    assert_eq!(pointers(org)?, vec![json!("/name")]);
    let rename = call(
        &host,
        "PATCH",
        "/v1/me",
        Some(&json!({"display_name": "Ada\u{7}"})),
        Some(&ada),
        &[],
    )?;
    assert_eq!(pointers(rename)?, vec![json!("/display_name")]);
    let id = user_id(&host, &ada)?;
    assert!(id.starts_with("usr_"));
    Ok(())
}

#[test]
fn bodies_in_another_charset_are_unsupported_media() -> Result<()> {
    let host = start_app()?;
    let body: Vec<u8> = json!({"email": "ada@example.com", "password": PASSWORD})
        .to_string()
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    for content_type in [
        "application/json; charset=utf-16",
        "application/json; charset=UTF-16LE",
    ] {
        let reply = send(
            "POST",
            &host.url("/v1/auth/login"),
            &[("content-type", content_type)],
            &body,
        )?;
        assert_eq!(reply.status, 415, "{content_type}: {}", reply.text());
        assert_eq!(reply.json()?["code"], "unsupported_media_type");
    }
    Ok(())
}

#[test]
fn a_valid_jwt_reads_its_own_account_and_is_never_called_invalid() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    create_org(&host, &ada, "acme")?;
    let token = jwt(&host, &ada, None)?;
    let me = expect(call(&host, "GET", "/v1/me", None, Some(&token), &[])?, 200)?;
    assert_eq!(me["email"], "ada@example.com");
    // Routes that act for the person's session say what they need.
    for (method, path) in [
        ("GET", "/v1/sessions"),
        ("DELETE", "/v1/sessions"),
        ("POST", "/v1/auth/logout"),
    ] {
        let reply = call(&host, method, path, None, Some(&token), &[])?;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.text());
        assert_eq!(reply.json()?["code"], "session_required");
    }
    let created = expect(
        post(&host, "/v1/keys", &json!({"name": "ci"}), Some(&ada))?,
        201,
    )?;
    let key = created["key"].as_str().context("key")?;
    let reply = call(&host, "GET", "/v1/me", None, Some(key), &[])?;
    assert_eq!(
        (reply.status, reply.json()?["code"].clone()),
        (403, json!("session_required"))
    );
    // Garbage is still unauthenticated.
    for junk in ["a.b.c", "gk_nothing", "nonsense"] {
        let reply = call(&host, "GET", "/v1/me", None, Some(junk), &[])?;
        assert_eq!(reply.status, 401, "{junk}");
    }
    Ok(())
}
