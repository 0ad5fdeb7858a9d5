//! TOTP multi-factor authentication through the built `identity`
//! component: enrol → confirm → a login that needs the second factor →
//! codes that work once → recovery codes → challenge limits → turning the
//! factor off, and the rest of the account journey around it (sessions,
//! revocation, password reset).

use anyhow::{Context, Result};
use gatehouse_tests::app::{
    PASSWORD, call, column, database, expect, mail, mailed_token, post, reset_password,
    retry_after, signed_in, start_app, totp_code,
};
use gatehouse_tests::{HostConfig, Reply, TestHost, root};
use serde_json::json;

/// The authenticator app: the code for `secret` (base32) at `offset` steps from now.
fn code(secret: &str, offset: i64) -> Result<String> {
    totp_code(secret, offset)
}

/// A six-digit code that matches no step in the window around now.
fn wrong_code(secret: &str) -> Result<String> {
    let valid: Vec<String> = (-2..=2).map(|o| code(secret, o)).collect::<Result<_>>()?;
    Ok((0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap_or_default())
}

fn login(host: &TestHost, email: &str, password: &str) -> Result<Reply> {
    post(
        host,
        "/v1/auth/login",
        &json!({"email": email, "password": password}),
        None,
    )
}

fn challenge_of(reply: Reply) -> Result<String> {
    let body = expect(reply, 202)?;
    assert_eq!(body["status"], "mfa_required");
    assert!(
        body.get("token").is_none(),
        "no session before the second factor"
    );
    Ok(body["challenge"].as_str().context("challenge")?.to_string())
}

fn complete(host: &TestHost, challenge: &str, field: &str, value: &str) -> Result<Reply> {
    post(
        host,
        "/v1/auth/mfa",
        &json!({"challenge": challenge, field: value}),
        None,
    )
}

/// Lets the codes of the current window verify again, and a wait between
/// wrong codes run out, as if the next 30-second steps had passed.
fn let_time_pass(host: &TestHost) -> Result<()> {
    let db = database(host)?;
    db.execute("UPDATE mfa_totp SET last_used_step = NULL", [])?;
    db.execute("UPDATE mfa_guards SET next_attempt_at = 0", [])?;
    Ok(())
}

#[test]
fn register_verify_login_mfa_sessions_revoke_reset_journey() -> Result<()> {
    let host = start_app()?;
    let email = "ada@example.com";
    let token = signed_in(&host, email)?;
    let auth = Some(token.as_str());
    assert_eq!(
        expect(call(&host, "GET", "/v1/auth/mfa", None, auth, &[])?, 200)?["totp"],
        "disabled"
    );

    // Enrol: a secret and the URI an authenticator app scans.
    let enrolment = expect(post(&host, "/v1/auth/mfa/totp", &json!({}), auth)?, 201)?;
    let secret = enrolment["secret"].as_str().context("secret")?.to_string();
    let uri = enrolment["otpauth_uri"].as_str().context("uri")?;
    assert!(
        uri.starts_with("otpauth://totp/Gatehouse:ada@example.com?secret="),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")) && uri.contains("issuer=Gatehouse"));
    assert_eq!(
        expect(call(&host, "GET", "/v1/auth/mfa", None, auth, &[])?, 200)?["totp"],
        "pending"
    );
    // Sealed at rest with the deployment's data key: the stored value is
    // not the secret.
    let sealed: String =
        database(&host)?.query_row("SELECT secret_sealed FROM mfa_totp", [], |r| r.get(0))?;
    assert!(sealed.starts_with("v2.1.") && !sealed.contains(&secret));
    // Pending enrolment does not guard logins yet.
    expect(login(&host, email, PASSWORD)?, 200)?;

    // Confirm with a code from the app; recovery codes are shown this once.
    let wrong = post(
        &host,
        "/v1/auth/mfa/totp/confirm",
        &json!({"code": wrong_code(&secret)?}),
        auth,
    )?;
    assert_eq!(
        (wrong.status, wrong.json()?["errors"][0]["code"].clone()),
        (422, json!("invalid_code"))
    );
    let malformed = post(
        &host,
        "/v1/auth/mfa/totp/confirm",
        &json!({"code": "12ab56"}),
        auth,
    )?;
    assert_eq!(malformed.status, 422);
    let confirmed = expect(
        post(
            &host,
            "/v1/auth/mfa/totp/confirm",
            &json!({"code": code(&secret, 0)?}),
            auth,
        )?,
        200,
    )?;
    let recovery: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .context("recovery codes")?
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    assert_eq!(recovery.len(), 10);
    let status = expect(call(&host, "GET", "/v1/auth/mfa", None, auth, &[])?, 200)?;
    assert_eq!(
        (
            status["totp"].clone(),
            status["recovery_codes_remaining"].clone()
        ),
        (json!("enabled"), json!(10))
    );
    assert_eq!(
        post(&host, "/v1/auth/mfa/totp", &json!({}), auth)?.status,
        409
    );
    let stored: i64 = database(&host)?.query_row(
        "SELECT COUNT(*) FROM mfa_recovery_codes WHERE digest = ?1",
        [&recovery[0]],
        |r| r.get(0),
    )?;
    assert_eq!(stored, 0, "recovery codes are stored as digests only");

    // Login now stops at a challenge; the code that confirmed cannot be replayed.
    let challenge = challenge_of(login(&host, email, PASSWORD)?)?;
    let replay = complete(&host, &challenge, "code", &code(&secret, 0)?)?;
    assert_eq!(replay.status, 422, "a code works once");
    let done = expect(
        complete(&host, &challenge, "code", &code(&secret, 1)?)?,
        200,
    )?;
    let mfa_session = done["token"].as_str().context("token")?.to_string();
    expect(
        call(&host, "GET", "/v1/me", None, Some(&mfa_session), &[])?,
        200,
    )?;
    let spent = complete(&host, &challenge, "code", &code(&secret, 1)?)?;
    assert_eq!(spent.status, 401, "a challenge works once");

    // A recovery code stands in for the app, once.
    let challenge = challenge_of(login(&host, email, PASSWORD)?)?;
    let typed = recovery[0].to_uppercase().replace('-', " ");
    expect(complete(&host, &challenge, "recovery_code", &typed)?, 200)?;
    let challenge = challenge_of(login(&host, email, PASSWORD)?)?;
    assert_eq!(
        complete(&host, &challenge, "recovery_code", &recovery[0])?.status,
        422
    );
    let status = expect(call(&host, "GET", "/v1/auth/mfa", None, auth, &[])?, 200)?;
    assert_eq!(status["recovery_codes_remaining"], 9);

    // Five wrong codes kill a challenge, even for a right code after them.
    let challenge = challenge_of(login(&host, email, PASSWORD)?)?;
    for _ in 0..5 {
        let_time_pass(&host)?;
        assert_eq!(
            complete(&host, &challenge, "code", &wrong_code(&secret)?)?.status,
            422
        );
    }
    assert_eq!(
        complete(&host, &challenge, "recovery_code", &recovery[1])?.status,
        401
    );

    // Sessions: the MFA sessions are devices like any other; signing the
    // others out ends them.
    let devices = expect(call(&host, "GET", "/v1/sessions", None, auth, &[])?, 200)?;
    assert!(devices["items"].as_array().map_or(0, Vec::len) >= 3);
    expect(call(&host, "DELETE", "/v1/sessions", None, auth, &[])?, 200)?;
    assert_eq!(
        call(&host, "GET", "/v1/me", None, Some(&mfa_session), &[])?.status,
        401
    );
    let left = expect(call(&host, "GET", "/v1/sessions", None, auth, &[])?, 200)?;
    assert_eq!(left["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(left["items"][0]["current"], true);

    // New recovery codes replace the old ones.
    let_time_pass(&host)?;
    let fresh = expect(
        post(
            &host,
            "/v1/auth/mfa/recovery-codes",
            &json!({"code": code(&secret, 0)?}),
            auth,
        )?,
        200,
    )?;
    assert_eq!(fresh["recovery_codes"].as_array().map(Vec::len), Some(10));
    let challenge = challenge_of(login(&host, email, PASSWORD)?)?;
    assert_eq!(
        complete(&host, &challenge, "recovery_code", &recovery[2])?.status,
        422
    );

    // A password reset signs everything out, and the factor still guards the account.
    post(
        &host,
        "/v1/auth/password/forgot",
        &json!({"email": email}),
        None,
    )?;
    let reset = mailed_token(&host, email, "reset_password", "grt_")?;
    let new_password = "quartz-lantern-harbor-77";
    expect(
        post(
            &host,
            "/v1/auth/password/reset",
            &json!({"token": reset, "password": new_password}),
            None,
        )?,
        200,
    )?;
    assert_eq!(call(&host, "GET", "/v1/me", None, auth, &[])?.status, 401);
    let challenge = challenge_of(login(&host, email, new_password)?)?;
    let_time_pass(&host)?;
    let token = expect(
        complete(&host, &challenge, "code", &code(&secret, 0)?)?,
        200,
    )?["token"]
        .as_str()
        .context("token")?
        .to_string();
    let auth = Some(token.as_str());

    // Turning the factor off takes a current code.
    let refused = call(
        &host,
        "DELETE",
        "/v1/auth/mfa/totp",
        Some(&json!({"code": wrong_code(&secret)?})),
        auth,
        &[],
    )?;
    assert_eq!(refused.status, 422);
    let_time_pass(&host)?;
    expect(
        call(
            &host,
            "DELETE",
            "/v1/auth/mfa/totp",
            Some(&json!({"code": code(&secret, 0)?})),
            auth,
            &[],
        )?,
        204,
    )?;
    assert_eq!(
        expect(call(&host, "GET", "/v1/auth/mfa", None, auth, &[])?, 200)?["totp"],
        "disabled"
    );
    expect(login(&host, email, new_password)?, 200)?;
    Ok(())
}

#[test]
fn mfa_routes_require_a_session_and_valid_input() -> Result<()> {
    let host = start_app()?;
    for (method, path) in [
        ("GET", "/v1/auth/mfa"),
        ("POST", "/v1/auth/mfa/totp"),
        ("POST", "/v1/auth/mfa/totp/confirm"),
        ("DELETE", "/v1/auth/mfa/totp"),
        ("POST", "/v1/auth/mfa/recovery-codes"),
    ] {
        let none = call(
            &host,
            method,
            path,
            Some(&json!({"code": "123456"})),
            None,
            &[],
        )?;
        assert_eq!(
            (none.status, none.header("www-authenticate")),
            (401, Some("Bearer")),
            "{method} {path}"
        );
        let forged = call(
            &host,
            method,
            path,
            Some(&json!({"code": "123456"})),
            Some("ghs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            &[],
        )?;
        assert_eq!(forged.status, 401, "{method} {path}");
    }
    let token = signed_in(&host, "bob@example.com")?;
    let auth = Some(token.as_str());
    // Nothing to confirm, turn off or regenerate before enrolment.
    assert_eq!(
        post(
            &host,
            "/v1/auth/mfa/totp/confirm",
            &json!({"code": "123456"}),
            auth
        )?
        .status,
        409
    );
    assert_eq!(
        call(
            &host,
            "DELETE",
            "/v1/auth/mfa/totp",
            Some(&json!({"code": "123456"})),
            auth,
            &[]
        )?
        .status,
        409
    );
    assert_eq!(
        post(
            &host,
            "/v1/auth/mfa/recovery-codes",
            &json!({"code": "123456"}),
            auth
        )?
        .status,
        409
    );
    // Completing a challenge: the challenge must be real, and exactly one factor sent.
    for body in [
        json!({"challenge": "gmc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "code": "123456"}),
        json!({"challenge": "nope", "code": "123456"}),
    ] {
        assert_eq!(
            post(&host, "/v1/auth/mfa", &body, None)?.status,
            401,
            "{body}"
        );
    }
    for body in [
        json!({"challenge": "gmc_x"}),
        json!({"challenge": "gmc_x", "code": "123456", "recovery_code": "abcd"}),
        json!({"challenge": "gmc_x", "code": "12345"}),
        json!({"code": "123456"}),
    ] {
        assert_eq!(
            post(&host, "/v1/auth/mfa", &body, None)?.status,
            422,
            "{body}"
        );
    }
    let wrong_method = call(&host, "PUT", "/v1/auth/mfa/totp", None, auth, &[])?;
    assert_eq!(
        (wrong_method.status, wrong_method.header("allow")),
        (405, Some("POST, DELETE"))
    );
    Ok(())
}

#[test]
fn another_users_codes_and_secrets_are_useless() -> Result<()> {
    let host = start_app()?;
    let mut secrets = Vec::new();
    let mut recovery = Vec::new();
    for email in ["ada@example.com", "eve@example.com"] {
        let token = signed_in(&host, email)?;
        let secret = expect(
            post(&host, "/v1/auth/mfa/totp", &json!({}), Some(&token))?,
            201,
        )?["secret"]
            .as_str()
            .context("secret")?
            .to_string();
        let codes = expect(
            post(
                &host,
                "/v1/auth/mfa/totp/confirm",
                &json!({"code": code(&secret, 0)?}),
                Some(&token),
            )?,
            200,
        )?;
        recovery.push(
            codes["recovery_codes"][0]
                .as_str()
                .context("code")?
                .to_string(),
        );
        secrets.push(secret);
    }
    let_time_pass(&host)?;
    // Eve's recovery code and Eve's current code do not complete Ada's challenge.
    let challenge = challenge_of(login(&host, "ada@example.com", PASSWORD)?)?;
    assert_eq!(
        complete(&host, &challenge, "recovery_code", &recovery[1])?.status,
        422
    );
    let eve_now = code(&secrets[1], 0)?;
    let ada_window: Vec<String> = (-1..=1)
        .map(|o| code(&secrets[0], o))
        .collect::<Result<_>>()?;
    if !ada_window.contains(&eve_now) {
        assert_eq!(complete(&host, &challenge, "code", &eve_now)?.status, 422);
    }
    // A sealed secret is bound to its user: copied onto another, it does not open.
    let ids: Vec<String> = column(&host, "SELECT id FROM users ORDER BY email_normalized", [])?;
    database(&host)?.execute(
        "UPDATE mfa_totp SET secret_sealed = (SELECT secret_sealed FROM mfa_totp WHERE user_id = ?1) WHERE user_id = ?2",
        [&ids[1], &ids[0]],
    )?;
    let challenge = challenge_of(login(&host, "ada@example.com", PASSWORD)?)?;
    let reply = complete(&host, &challenge, "code", &code(&secrets[1], 0)?)?;
    assert_eq!(
        reply.status, 500,
        "a secret that does not open is a server fault, never a pass"
    );
    assert_eq!(reply.json()?["code"], "internal");
    Ok(())
}

#[test]
fn without_a_master_key_mfa_is_unavailable_and_logins_still_work() -> Result<()> {
    let mut config = HostConfig::new(root().join("spin.toml"));
    config.migrations = Some(root().join("infra/migrations"));
    config.env = vec![("SPIN_VARIABLE_DEV_OUTBOX".into(), "enabled".into())];
    let host = TestHost::start(config)?;
    let token = signed_in(&host, "ada@example.com")?;
    let reply = post(&host, "/v1/auth/mfa/totp", &json!({}), Some(&token))?;
    assert_eq!(
        (reply.status, reply.json()?["code"].clone()),
        (503, json!("unavailable"))
    );
    expect(login(&host, "ada@example.com", PASSWORD)?, 200)?;
    Ok(())
}

#[test]
fn wrong_codes_count_per_user_across_challenges_then_the_factor_locks_and_the_user_is_told()
-> Result<()> {
    let host = start_app()?;
    let email = "ada@example.com";
    let token = signed_in(&host, email)?;
    let secret = expect(
        post(&host, "/v1/auth/mfa/totp", &json!({}), Some(&token))?,
        201,
    )?["secret"]
        .as_str()
        .context("secret")?
        .to_string();
    expect(
        post(
            &host,
            "/v1/auth/mfa/totp/confirm",
            &json!({"code": code(&secret, 0)?}),
            Some(&token),
        )?,
        200,
    )?;
    let_time_pass(&host)?;
    // Five wrong codes spread over three challenges (a new password entry
    // each time) are five for the user, not a fresh allowance each.
    for per_challenge in [2, 2, 1] {
        let challenge = challenge_of(login(&host, email, PASSWORD)?)?;
        for _ in 0..per_challenge {
            let wrong = complete(&host, &challenge, "code", &wrong_code(&secret)?)?;
            assert_eq!(wrong.status, 422, "{}", wrong.text());
        }
    }
    let told = mail(&host, email, "mfa_failures")?;
    assert!(
        told["body"]
            .as_str()
            .unwrap_or_default()
            .contains("entered 5 wrong"),
        "the owner hears that the password is known: {told}"
    );
    // The next try waits, even with the right code on a fresh challenge.
    let challenge = challenge_of(login(&host, email, PASSWORD)?)?;
    let waiting = complete(&host, &challenge, "code", &code(&secret, 0)?)?;
    assert_eq!(waiting.status, 429, "{}", waiting.text());
    assert_eq!(waiting.json()?["code"], "rate_limited");
    let wait = retry_after(&waiting)?;
    assert!((1..=15).contains(&wait), "{wait}");
    // Waits grow until the tenth wrong code locks the factor.
    for _ in 5..10 {
        let_time_pass(&host)?;
        let challenge = challenge_of(login(&host, email, PASSWORD)?)?;
        assert_eq!(
            complete(&host, &challenge, "code", &wrong_code(&secret)?)?.status,
            422
        );
    }
    let_time_pass(&host)?;
    let challenge = challenge_of(login(&host, email, PASSWORD)?)?;
    let locked = complete(&host, &challenge, "code", &code(&secret, 0)?)?;
    assert_eq!(locked.status, 429, "locked: the right code is refused too");
    let wait = retry_after(&locked)?;
    assert!(wait > 3000, "locked for about an hour, not {wait}s");
    assert!(locked.text().contains("locked"), "{}", locked.text());
    let told = mail(&host, email, "mfa_failures")?;
    assert!(
        told["body"]
            .as_str()
            .unwrap_or_default()
            .contains("now locked"),
        "{told}"
    );
    // Proving the mailbox with a password reset unlocks it.
    let new_password = "quartz-lantern-harbor-77";
    reset_password(&host, email, new_password)?;
    let challenge = challenge_of(login(&host, email, new_password)?)?;
    expect(
        complete(&host, &challenge, "code", &code(&secret, 0)?)?,
        200,
    )?;
    Ok(())
}
