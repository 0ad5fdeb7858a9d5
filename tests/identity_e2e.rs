//! Accounts and sessions through the built `identity` component: the
//! register → verify → login → me → logout journey, every validation and
//! credential failure, and responses that do not reveal which emails exist.

use anyhow::{Context, Result};
use gatehouse_tests::{HostConfig, Reply, TestHost, get, root, send};
use serde_json::{Value, json};

fn start() -> Result<TestHost> {
    let mut config = HostConfig::new(root().join("spin.toml"));
    config.migrations = Some(root().join("infra/migrations"));
    config.env = vec![("SPIN_VARIABLE_DEV_OUTBOX".into(), "enabled".into())];
    TestHost::start(config)
}

fn post(host: &TestHost, path: &str, body: &Value, token: Option<&str>) -> Result<Reply> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = auth.as_deref() {
        headers.push(("authorization", auth));
    }
    send(
        "POST",
        &host.url(path),
        &headers,
        body.to_string().as_bytes(),
    )
}

fn me(host: &TestHost, token: &str) -> Result<Reply> {
    get(
        &host.url("/v1/me"),
        &[("authorization", &format!("Bearer {token}"))],
    )
}

/// The newest mail of `kind` to `to`, from the development outbox.
fn mail(host: &TestHost, to: &str, kind: &str) -> Result<Value> {
    let outbox = get(&host.url("/v1/dev/outbox"), &[])?.json()?;
    outbox["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|m| m["to"] == to && m["kind"] == kind)
        .cloned()
        .with_context(|| format!("no {kind} mail to {to}: {outbox}"))
}

fn verification_token(host: &TestHost, to: &str) -> Result<String> {
    let body = mail(host, to, "verify_email")?["body"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let start = body.find("gvt_").context("token in mail")?;
    Ok(body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect())
}

const PASSWORD: &str = "violet-tractor-umbrella";

fn register(host: &TestHost, email: &str) -> Result<Reply> {
    post(
        host,
        "/v1/auth/register",
        &json!({"email": email, "password": PASSWORD, "display_name": "Ada"}),
        None,
    )
}

/// Registers, verifies and logs in; returns the session token.
fn signed_in(host: &TestHost, email: &str) -> Result<String> {
    register(host, email)?;
    let token = verification_token(host, email)?;
    assert_eq!(
        post(
            host,
            "/v1/auth/verify-email",
            &json!({"token": token}),
            None
        )?
        .status,
        200
    );
    let login = post(
        host,
        "/v1/auth/login",
        &json!({"email": email, "password": PASSWORD}),
        None,
    )?;
    assert_eq!(
        login.status,
        200,
        "{}",
        String::from_utf8_lossy(&login.body)
    );
    Ok(login.json()?["token"]
        .as_str()
        .context("token")?
        .to_string())
}

#[test]
fn register_verify_login_me_logout_journey() -> Result<()> {
    let host = start()?;
    let reply = register(&host, "Ada@Example.com")?;
    assert_eq!(reply.status, 202);
    // Not verified yet: the right password gets a clear 403, nothing more.
    let early = post(
        &host,
        "/v1/auth/login",
        &json!({"email": "ada@example.com", "password": PASSWORD}),
        None,
    )?;
    assert_eq!(
        (early.status, early.json()?["code"].clone()),
        (403, json!("forbidden"))
    );

    let token = verification_token(&host, "Ada@Example.com")?;
    let verified = post(
        &host,
        "/v1/auth/verify-email",
        &json!({"token": token}),
        None,
    )?;
    assert_eq!(verified.status, 200);
    let again = post(
        &host,
        "/v1/auth/verify-email",
        &json!({"token": token}),
        None,
    )?;
    assert_eq!(again.status, 422, "a verification token works once");

    let login = post(
        &host,
        "/v1/auth/login",
        &json!({"email": " ADA@example.com ", "password": PASSWORD}),
        None,
    )?;
    assert_eq!(login.status, 200);
    let session = login.json()?;
    let token = session["token"].as_str().context("token")?.to_string();
    assert!(token.starts_with("ghs_") && token.len() == 47, "{token}");
    assert_eq!(session["user"]["email_verified"], true);
    assert!(
        session["session"]["idle_expires_at"].as_i64()
            <= session["session"]["absolute_expires_at"].as_i64()
    );

    let me_reply = me(&host, &token)?;
    assert_eq!(me_reply.status, 200);
    let user = me_reply.json()?;
    assert_eq!(
        (
            user["email"].clone(),
            user["display_name"].clone(),
            user["status"].clone()
        ),
        (json!("Ada@Example.com"), json!("Ada"), json!("active"))
    );
    assert!(user.get("password_hash").is_none());

    let out = post(&host, "/v1/auth/logout", &json!({}), Some(&token))?;
    assert_eq!(out.status, 204);
    assert_eq!(
        me(&host, &token)?.status,
        401,
        "a revoked session stops on the next request"
    );
    Ok(())
}

#[test]
fn sessions_are_stored_as_digests_only() -> Result<()> {
    let host = start()?;
    let token = signed_in(&host, "grace@example.com")?;
    let db = rusqlite::Connection::open(host.state.path().join("sqlite_db.db"))?;
    let stored: Vec<String> = db
        .prepare("SELECT token_digest FROM sessions")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&token[4..]));
    let hash: String = db.query_row("SELECT password_hash FROM users", [], |r| r.get(0))?;
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    Ok(())
}

#[test]
fn registration_validates_every_field() -> Result<()> {
    let host = start()?;
    let reply = post(
        &host,
        "/v1/auth/register",
        &json!({"email": "not-an-email", "password": "password123", "display_name": ""}),
        None,
    )?;
    assert_eq!(reply.status, 422);
    let problem = reply.json()?;
    assert_eq!(problem["code"], "validation_failed");
    let pointers: Vec<String> = problem["errors"]
        .as_array()
        .context("errors")?
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["pointer"].as_str().unwrap_or(""),
                e["code"].as_str().unwrap_or("")
            )
        })
        .collect();
    for expected in [
        "/email:invalid_format",
        "/display_name:invalid_length",
        "/password:too_common",
    ] {
        assert!(
            pointers.iter().any(|p| p == expected),
            "{expected} missing in {pointers:?}"
        );
    }
    let missing = post(
        &host,
        "/v1/auth/register",
        &json!({"email": "a@b.co"}),
        None,
    )?
    .json()?;
    assert_eq!(missing["errors"][0]["code"], "required");
    let malformed = send(
        "POST",
        &host.url("/v1/auth/register"),
        &[("content-type", "application/json")],
        b"{\"email\":",
    )?;
    assert_eq!(
        (malformed.status, malformed.json()?["code"].clone()),
        (400, json!("invalid_json"))
    );
    let wrong_type = send(
        "POST",
        &host.url("/v1/auth/register"),
        &[("content-type", "text/plain")],
        b"x",
    )?;
    assert_eq!(wrong_type.status, 415);
    assert_eq!(get(&host.url("/v1/auth/register"), &[])?.status, 405);
    Ok(())
}

#[test]
fn register_answers_the_same_for_known_and_unknown_emails() -> Result<()> {
    let host = start()?;
    let first = register(&host, "known@example.com")?;
    let known = register(&host, "KNOWN@example.com")?;
    let unknown = register(&host, "unknown@example.com")?;
    assert_eq!(
        (known.status, known.json()?),
        (unknown.status, unknown.json()?)
    );
    assert_eq!(first.json()?, unknown.json()?);
    // The owner hears about the attempt; no second account appears.
    mail(&host, "KNOWN@example.com", "account_exists")?;
    let db = rusqlite::Connection::open(host.state.path().join("sqlite_db.db"))?;
    let n: i64 = db.query_row(
        "SELECT COUNT(*) FROM users WHERE email_normalized = 'known@example.com'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(n, 1);
    Ok(())
}

#[test]
fn login_failures_do_not_tell_unknown_emails_from_wrong_passwords() -> Result<()> {
    let host = start()?;
    signed_in(&host, "lin@example.com")?;
    let wrong_password = post(
        &host,
        "/v1/auth/login",
        &json!({"email": "lin@example.com", "password": "not-the-password"}),
        None,
    )?;
    let unknown_email = post(
        &host,
        "/v1/auth/login",
        &json!({"email": "nobody@example.com", "password": "not-the-password"}),
        None,
    )?;
    assert_eq!(wrong_password.status, 401);
    assert_eq!(wrong_password.header("www-authenticate"), Some("Bearer"));
    let strip = |mut v: Value| {
        v["instance"] = Value::Null;
        v
    };
    assert_eq!(
        (wrong_password.status, strip(wrong_password.json()?)),
        (unknown_email.status, strip(unknown_email.json()?))
    );
    let empty = post(
        &host,
        "/v1/auth/login",
        &json!({"email": "", "password": ""}),
        None,
    )?;
    assert_eq!(empty.status, 422);
    Ok(())
}

#[test]
fn me_requires_a_live_session_token() -> Result<()> {
    let host = start()?;
    let none = get(&host.url("/v1/me"), &[])?;
    assert_eq!(
        (none.status, none.json()?["code"].clone()),
        (401, json!("unauthenticated"))
    );
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    for bad in [
        "Bearer ",
        "Bearer ghs_short",
        "Basic dXNlcjpwYXNz",
        &format!("Bearer ghs_{}", "A".repeat(43)),
    ] {
        let reply = get(&host.url("/v1/me"), &[("authorization", bad)])?;
        assert_eq!(reply.status, 401, "{bad}");
    }
    assert_eq!(
        post(&host, "/v1/auth/logout", &json!({}), None)?.status,
        401
    );
    Ok(())
}

#[test]
fn verification_rejects_unknown_and_malformed_tokens() -> Result<()> {
    let host = start()?;
    for token in ["", "gvt_nope", &format!("gvt_{}", "B".repeat(43))] {
        let reply = post(
            &host,
            "/v1/auth/verify-email",
            &json!({"token": token}),
            None,
        )?;
        assert_eq!(reply.status, 422, "{token}");
        assert_eq!(reply.json()?["errors"][0]["pointer"], "/token");
    }
    Ok(())
}

#[test]
fn the_development_outbox_is_off_unless_enabled() -> Result<()> {
    let host = TestHost::start({
        let mut config = HostConfig::new(root().join("spin.toml"));
        config.migrations = Some(root().join("infra/migrations"));
        config
    })?;
    assert_eq!(get(&host.url("/v1/dev/outbox"), &[])?.status, 404);
    Ok(())
}
