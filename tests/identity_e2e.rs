//! Accounts and sessions through the built `identity` component: the
//! register → verify → login → me → logout journey, every validation and
//! credential failure, and responses that do not reveal which emails exist.

use anyhow::{Context, Result};
use gatehouse_tests::app::{
    PASSWORD, column, database, mail, mailed_token, me, post, register, signed_in,
    start_app as start, verification_token,
};
use gatehouse_tests::{HostConfig, Reply, TestHost, get, root, send};
use serde_json::{Value, json};

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
    let stored: Vec<String> = column(&host, "SELECT token_digest FROM sessions", [])?;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&token[4..]));
    let hash: String =
        database(&host)?.query_row("SELECT password_hash FROM users", [], |r| r.get(0))?;
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

fn delete(host: &TestHost, path: &str, token: &str) -> Result<Reply> {
    send(
        "DELETE",
        &host.url(path),
        &[("authorization", &format!("Bearer {token}"))],
        b"",
    )
}

fn sessions_of(host: &TestHost, token: &str) -> Result<Vec<Value>> {
    let reply = get(
        &host.url("/v1/sessions"),
        &[("authorization", &format!("Bearer {token}"))],
    )?;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    Ok(reply.json()?["items"].as_array().context("items")?.clone())
}

fn login(host: &TestHost, email: &str, password: &str, agent: &str) -> Result<Reply> {
    send(
        "POST",
        &host.url("/v1/auth/login"),
        &[("content-type", "application/json"), ("user-agent", agent)],
        json!({"email": email, "password": password})
            .to_string()
            .as_bytes(),
    )
}

fn token_of(reply: &Reply) -> Result<String> {
    Ok(reply.json()?["token"]
        .as_str()
        .context("token")?
        .to_string())
}

#[test]
fn sessions_list_devices_and_revoke_one_or_all_others() -> Result<()> {
    let host = start()?;
    let laptop = signed_in(&host, "kim@example.com")?;
    let phone = token_of(&login(&host, "kim@example.com", PASSWORD, "Phone/1.0")?)?;
    let tablet = token_of(&login(&host, "kim@example.com", PASSWORD, "Tablet/2.0")?)?;

    let devices = sessions_of(&host, &phone)?;
    assert_eq!(devices.len(), 3);
    let current: Vec<&Value> = devices.iter().filter(|d| d["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "Phone/1.0");
    assert_eq!(current[0]["client_address"], "127.0.0.1");

    // Pagination walks every session exactly once.
    let first = get(
        &host.url("/v1/sessions?limit=2"),
        &[("authorization", &format!("Bearer {phone}"))],
    )?
    .json()?;
    let cursor = first["next_cursor"].as_str().context("a second page")?;
    let second = get(
        &host.url(&format!("/v1/sessions?limit=2&cursor={cursor}")),
        &[("authorization", &format!("Bearer {phone}"))],
    )?
    .json()?;
    let mut ids: Vec<Value> = first["items"]
        .as_array()
        .context("items")?
        .iter()
        .chain(second["items"].as_array().context("items")?)
        .map(|d| d["id"].clone())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert!(second["next_cursor"].is_null());

    // Sign the tablet out from the phone.
    let tablet_id = devices
        .iter()
        .find(|d| d["user_agent"] == "Tablet/2.0")
        .context("tablet")?["id"]
        .as_str()
        .context("id")?
        .to_string();
    assert_eq!(
        delete(&host, &format!("/v1/sessions/{tablet_id}"), &phone)?.status,
        204
    );
    assert_eq!(me(&host, &tablet)?.status, 401);
    assert_eq!(
        delete(&host, &format!("/v1/sessions/{tablet_id}"), &phone)?.status,
        404,
        "already revoked"
    );

    // Everywhere else: the laptop goes, the phone stays.
    let others = delete(&host, "/v1/sessions", &phone)?;
    assert_eq!(
        (others.status, others.json()?["revoked"].clone()),
        (200, json!(1))
    );
    assert_eq!(me(&host, &laptop)?.status, 401);
    assert_eq!(me(&host, &phone)?.status, 200);
    Ok(())
}

#[test]
fn another_users_session_cannot_be_seen_or_revoked() -> Result<()> {
    let host = start()?;
    let alice = signed_in(&host, "alice@example.com")?;
    let mallory = signed_in(&host, "mallory@example.com")?;
    let alice_session = sessions_of(&host, &alice)?[0]["id"]
        .as_str()
        .context("id")?
        .to_string();
    assert!(
        sessions_of(&host, &mallory)?
            .iter()
            .all(|d| d["id"] != alice_session.as_str())
    );
    let attempt = delete(&host, &format!("/v1/sessions/{alice_session}"), &mallory)?;
    assert_eq!(
        (attempt.status, attempt.json()?["code"].clone()),
        (404, json!("not_found"))
    );
    assert_eq!(me(&host, &alice)?.status, 200, "alice is still signed in");
    assert_eq!(
        delete(&host, "/v1/sessions/ses_does_not_exist", &mallory)?.status,
        404
    );
    Ok(())
}

#[test]
fn session_routes_require_credentials_and_valid_input() -> Result<()> {
    let host = start()?;
    assert_eq!(get(&host.url("/v1/sessions"), &[])?.status, 401);
    assert_eq!(
        send("DELETE", &host.url("/v1/sessions"), &[], b"")?.status,
        401
    );
    assert_eq!(
        send(
            "DELETE",
            &host.url("/v1/sessions/ses_x"),
            &[("authorization", "Bearer nope")],
            b""
        )?
        .status,
        401
    );
    let token = signed_in(&host, "val@example.com")?;
    let bad = get(
        &host.url("/v1/sessions?limit=0"),
        &[("authorization", &format!("Bearer {token}"))],
    )?;
    assert_eq!(
        (bad.status, bad.json()?["code"].clone()),
        (400, json!("invalid_query"))
    );
    let bad = get(
        &host.url("/v1/sessions?cursor=%%%"),
        &[("authorization", &format!("Bearer {token}"))],
    )?;
    assert_eq!(bad.status, 400);
    assert_eq!(
        send("PUT", &host.url("/v1/sessions"), &[], b"")?.status,
        405
    );
    Ok(())
}

#[test]
fn profile_updates_are_validated_and_scoped_to_the_caller() -> Result<()> {
    let host = start()?;
    let token = signed_in(&host, "zoe@example.com")?;
    let auth = format!("Bearer {token}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    let ok = send(
        "PATCH",
        &host.url("/v1/me"),
        &headers,
        br#"{"display_name": "  Zoe Q  "}"#,
    )?;
    assert_eq!(
        (ok.status, ok.json()?["display_name"].clone()),
        (200, json!("Zoe Q"))
    );
    let empty = send(
        "PATCH",
        &host.url("/v1/me"),
        &headers,
        br#"{"display_name": " "}"#,
    )?;
    assert_eq!(
        (empty.status, empty.json()?["errors"][0]["pointer"].clone()),
        (422, json!("/display_name"))
    );
    let email = send(
        "PATCH",
        &host.url("/v1/me"),
        &headers,
        br#"{"email": "other@example.com"}"#,
    )?;
    assert_eq!(
        (email.status, email.json()?["errors"][0]["code"].clone()),
        (422, json!("unknown_field"))
    );
    let anonymous = send(
        "PATCH",
        &host.url("/v1/me"),
        &[("content-type", "application/json")],
        br#"{"display_name": "x"}"#,
    )?;
    assert_eq!(anonymous.status, 401);
    Ok(())
}

fn reset_token(host: &TestHost, to: &str) -> Result<String> {
    mailed_token(host, to, "reset_password", "grt_")
}

#[test]
fn password_reset_replaces_the_password_and_signs_out_everywhere() -> Result<()> {
    let host = start()?;
    let old_session = signed_in(&host, "omar@example.com")?;
    let forgot = post(
        &host,
        "/v1/auth/password/forgot",
        &json!({"email": "OMAR@example.com"}),
        None,
    )?;
    assert_eq!(forgot.status, 202);
    let token = reset_token(&host, "omar@example.com")?;

    let weak = post(
        &host,
        "/v1/auth/password/reset",
        &json!({"token": token, "password": "password1"}),
        None,
    )?;
    assert_eq!(
        (weak.status, weak.json()?["errors"][0]["pointer"].clone()),
        (422, json!("/password"))
    );
    let mentions_email = post(
        &host,
        "/v1/auth/password/reset",
        &json!({"token": token, "password": "omar-is-the-best-2026"}),
        None,
    )?;
    assert_eq!(
        mentions_email.json()?["errors"][0]["code"],
        "contains_email"
    );

    let done = post(
        &host,
        "/v1/auth/password/reset",
        &json!({"token": token, "password": "lemon-harbour-violin"}),
        None,
    )?;
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    assert_eq!(done.json()?["sessions_revoked"], 1);
    assert_eq!(
        me(&host, &old_session)?.status,
        401,
        "every session is signed out"
    );
    assert_eq!(
        login(&host, "omar@example.com", PASSWORD, "t")?.status,
        401,
        "the old password is gone"
    );
    assert_eq!(
        login(&host, "omar@example.com", "lemon-harbour-violin", "t")?.status,
        200
    );
    let reuse = post(
        &host,
        "/v1/auth/password/reset",
        &json!({"token": token, "password": "another-fine-phrase"}),
        None,
    )?;
    assert_eq!(reuse.status, 422, "a reset token works once");
    Ok(())
}

#[test]
fn forgot_answers_the_same_for_known_and_unknown_emails() -> Result<()> {
    let host = start()?;
    signed_in(&host, "pat@example.com")?;
    let known = post(
        &host,
        "/v1/auth/password/forgot",
        &json!({"email": "pat@example.com"}),
        None,
    )?;
    let unknown = post(
        &host,
        "/v1/auth/password/forgot",
        &json!({"email": "nobody@example.com"}),
        None,
    )?;
    assert_eq!(
        (known.status, known.json()?),
        (unknown.status, unknown.json()?)
    );
    // Both addresses get a mail (the same work either way); only the
    // account's owner gets a reset token.
    let outbox = get(&host.url("/v1/dev/outbox"), &[])?.json()?;
    let to_nobody: Vec<&Value> = outbox["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|m| m["to"] == "nobody@example.com")
        .collect();
    assert_eq!(to_nobody.len(), 1);
    assert_eq!(to_nobody[0]["kind"], "reset_no_account");
    assert!(
        !to_nobody[0]["body"]
            .as_str()
            .unwrap_or_default()
            .contains("grt_")
    );
    mail(&host, "pat@example.com", "reset_password")?;
    let missing = post(&host, "/v1/auth/password/forgot", &json!({}), None)?;
    assert_eq!(missing.status, 422);
    let bad_token = post(
        &host,
        "/v1/auth/password/reset",
        &json!({"token": "grt_x", "password": "lemon-harbour-violin"}),
        None,
    )?;
    assert_eq!(
        (
            bad_token.status,
            bad_token.json()?["errors"][0]["pointer"].clone()
        ),
        (422, json!("/token"))
    );
    Ok(())
}

#[test]
fn repeated_failures_slow_logins_alike_for_known_and_unknown_emails() -> Result<()> {
    let host = start()?;
    signed_in(&host, "tess@example.com")?;
    for email in ["tess@example.com", "ghost@example.com"] {
        for _ in 0..5 {
            assert_eq!(login(&host, email, "wrong-password-here", "t")?.status, 401);
        }
        let throttled = login(&host, email, PASSWORD, "t")?;
        assert_eq!(throttled.status, 429, "{email}");
        assert_eq!(throttled.json()?["code"], "rate_limited");
        // The sixth try from one address waits the first delay (15 s).
        let wait: i64 = throttled
            .header("retry-after")
            .context("retry-after")?
            .parse()?;
        assert!((1..=15).contains(&wait), "{wait}");
    }
    // Every attempt is on record with its outcome.
    let db = rusqlite::Connection::open(host.state.path().join("sqlite_db.db"))?;
    let outcomes: Vec<(String, i64)> = db
        .prepare("SELECT outcome, COUNT(*) FROM login_attempts GROUP BY outcome ORDER BY outcome")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    assert_eq!(
        outcomes,
        vec![
            ("bad_credentials".to_string(), 10),
            ("success".to_string(), 1),
            ("throttled".to_string(), 2)
        ]
    );
    Ok(())
}

#[test]
fn a_sign_in_from_a_new_device_is_flagged_and_mailed() -> Result<()> {
    let host = start()?;
    signed_in(&host, "uma@example.com")?;
    assert_eq!(
        login(&host, "uma@example.com", PASSWORD, "Laptop/1")?.status,
        200
    );
    assert!(
        mail(&host, "uma@example.com", "new_sign_in").is_ok(),
        "first device after the first sign-in"
    );
    let db = rusqlite::Connection::open(host.state.path().join("sqlite_db.db"))?;
    let flagged = |db: &rusqlite::Connection| -> rusqlite::Result<i64> {
        db.query_row(
            "SELECT COUNT(*) FROM login_attempts WHERE new_device = 1",
            [],
            |r| r.get(0),
        )
    };
    assert_eq!(flagged(&db)?, 1);
    // The same device again is not news.
    assert_eq!(
        login(&host, "uma@example.com", PASSWORD, "Laptop/1")?.status,
        200
    );
    assert_eq!(flagged(&db)?, 1);
    Ok(())
}

#[test]
fn cached_sessions_never_outlive_a_revocation_or_a_change() -> Result<()> {
    let host = start()?;
    let laptop = signed_in(&host, "vic@example.com")?;
    let phone = token_of(&login(&host, "vic@example.com", PASSWORD, "Phone/1.0")?)?;
    // Both sessions are now cached by their first use.
    assert_eq!(me(&host, &laptop)?.status, 200);
    assert_eq!(me(&host, &phone)?.status, 200);
    let kv = rusqlite::Connection::open(host.state.path().join("sqlite_key_value.db"))?;
    let cached: i64 = kv.query_row(
        "SELECT COUNT(*) FROM spin_key_value WHERE store = 'default' AND key LIKE 'identity:session:%'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(cached, 2);

    // A profile change shows on the very next request of every session.
    let auth = format!("Bearer {phone}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    send(
        "PATCH",
        &host.url("/v1/me"),
        &headers,
        br#"{"display_name": "Victor"}"#,
    )?;
    assert_eq!(me(&host, &laptop)?.json()?["display_name"], "Victor");

    // Revoking the cached laptop session stops it on the next request.
    assert_eq!(me(&host, &laptop)?.status, 200);
    let laptop_id = sessions_of(&host, &phone)?
        .into_iter()
        .find(|d| d["current"] == false)
        .context("laptop")?["id"]
        .as_str()
        .context("id")?
        .to_string();
    assert_eq!(
        delete(&host, &format!("/v1/sessions/{laptop_id}"), &phone)?.status,
        204
    );
    assert_eq!(me(&host, &laptop)?.status, 401);
    assert_eq!(me(&host, &phone)?.status, 200);
    Ok(())
}

#[test]
fn deactivating_the_account_ends_every_session_and_refuses_sign_in() -> Result<()> {
    let host = start()?;
    let token = signed_in(&host, "gus@example.com")?;
    let other = post(
        &host,
        "/v1/auth/login",
        &json!({"email": "gus@example.com", "password": PASSWORD}),
        None,
    )?
    .json()?["token"]
        .as_str()
        .context("token")?
        .to_string();
    let auth = format!("Bearer {token}");
    let delete = |body: Value, auth: &str| {
        send(
            "DELETE",
            &host.url("/v1/me"),
            &[
                ("content-type", "application/json"),
                ("authorization", auth),
            ],
            body.to_string().as_bytes(),
        )
    };
    let wrong = delete(json!({"password": "not-the-password"}), &auth)?;
    assert_eq!(
        (wrong.status, wrong.json()?["errors"][0]["code"].clone()),
        (422, json!("incorrect"))
    );
    assert_eq!(delete(json!({}), &auth)?.status, 422);
    assert_eq!(
        delete(json!({"password": PASSWORD}), "Bearer nope")?.status,
        401
    );

    // The only admin of an org must hand it over first.
    let org = post(
        &host,
        "/v1/orgs",
        &json!({"name": "Gus", "handle": "gus-org"}),
        Some(&token),
    )?;
    assert_eq!(org.status, 201);
    assert_eq!(delete(json!({"password": PASSWORD}), &auth)?.status, 409);
    let removed = send(
        "DELETE",
        &host.url("/v1/orgs/gus-org"),
        &[("authorization", &auth)],
        b"",
    )?;
    assert_eq!(removed.status, 204);

    assert_eq!(delete(json!({"password": PASSWORD}), &auth)?.status, 204);
    assert_eq!(me(&host, &token)?.status, 401);
    assert_eq!(me(&host, &other)?.status, 401, "every session ends");
    let login = post(
        &host,
        "/v1/auth/login",
        &json!({"email": "gus@example.com", "password": PASSWORD}),
        None,
    )?;
    assert_eq!(
        (login.status, login.json()?["detail"].clone()),
        (403, json!("this account is inactive"))
    );
    Ok(())
}
