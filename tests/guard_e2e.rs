//! The Gatehouse guard in front of another app: tests/guarded-app (the
//! built `guard` middleware before a handler that echoes the
//! `x-gatehouse-*` headers it receives) runs on the local host beside
//! Gatehouse, with `gatehouse_url` pointing at it. Credentials are made on
//! Gatehouse the way a user would; what the app saw is read from the echo.

use anyhow::{Context, Result};
use gatehouse_tests::app::{call, database, expect, post, problem, retry_after, role_key};
use gatehouse_tests::guarded::{self, AUDIENCE, Gatehouse, gatehouse_with, guarded, jwt};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

fn gatehouse() -> Result<Gatehouse> {
    guarded::gatehouse()
}

/// `GET /anything` on the guarded app with `credential` and `extra` headers.
fn through(app: &TestHost, credential: Option<&str>, extra: &[(&str, &str)]) -> Result<Reply> {
    call(app, "GET", "/reports/today", None, credential, extra)
}

/// The `x-gatehouse-*` headers the app saw, after a 200.
fn seen(reply: Reply) -> Result<Value> {
    expect(reply, 200)
}

#[test]
fn a_request_without_a_valid_credential_is_refused_with_a_bearer_challenge() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[], false)?;

    let none = through(&app, None, &[("x-gatehouse-subject", "usr_forged")])?;
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert_eq!(problem(none, 401)?.0, "unauthenticated");

    for bad in ["gk_not_a_key", "gst_not_a_session", "a.b.c"] {
        let reply = through(&app, Some(bad), &[])?;
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer error=\"invalid_token\"")
        );
        assert_eq!(problem(reply, 401)?.0, "unauthenticated", "{bad}");
    }
    let basic = call(
        &app,
        "GET",
        "/x",
        None,
        None,
        &[("authorization", "Basic YWRhOnNlY3JldA==")],
    )?;
    assert_eq!(problem(basic, 401)?.0, "unauthenticated");
    Ok(())
}

#[test]
fn forged_principal_headers_from_the_client_never_reach_the_app() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[], false)?;
    let key = role_key(&gh.host, &gh.org, "reader", &["reports:read"])?;

    let headers = seen(through(
        &app,
        Some(&key),
        &[
            ("x-gatehouse-subject", "usr_forged"),
            ("X-Gatehouse-Permissions", "everything"),
            ("x-gatehouse-admin", "true"),
        ],
    )?)?;
    assert_eq!(
        headers,
        json!({
            "x-gatehouse-subject": guarded::subject_id(&gh, &key)?,
            "x-gatehouse-org": gh.org.id,
            "x-gatehouse-roles": "reader",
            "x-gatehouse-permissions": "reports:read",
            "x-gatehouse-credential": "api_key",
        })
    );
    Ok(())
}

#[test]
fn a_gatehouse_jwt_for_the_apps_audience_passes_with_its_subject_org_and_roles() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[], false)?;
    let key = role_key(&gh.host, &gh.org, "reader", &["reports:read"])?;
    let token = jwt(&gh, &key, AUDIENCE)?;

    let headers = seen(through(&app, Some(&token), &[])?)?;
    assert_eq!(
        headers["x-gatehouse-subject"],
        json!(guarded::subject_id(&gh, &key)?)
    );
    assert_eq!(headers["x-gatehouse-org"], json!(gh.org.id));
    assert_eq!(headers["x-gatehouse-roles"], "reader");
    assert_eq!(headers["x-gatehouse-permissions"], "reports:read");
    assert_eq!(headers["x-gatehouse-credential"], "jwt");

    // The benchmark's trivial route: the same answer behind the guard and
    // without it, and behind it only with a credential.
    let ping = call(&app, "GET", "/reports/ping", None, Some(&token), &[])?;
    assert_eq!((ping.status, ping.body.as_slice()), (200, &b"ok"[..]));
    let open = call(&app, "GET", "/open/ping", None, None, &[])?;
    assert_eq!((open.status, open.body.as_slice()), (200, &b"ok"[..]));
    let refused = call(&app, "GET", "/reports/ping", None, None, &[])?;
    assert_eq!(problem(refused, 401)?.0, "unauthenticated");
    // Behind the benchmark's do-nothing middleware, the request arrives as
    // it was sent: nothing checked, nothing removed.
    let relayed = call(&app, "GET", "/relay/ping", None, None, &[])?;
    assert_eq!((relayed.status, relayed.body.as_slice()), (200, &b"ok"[..]));
    let relayed = call(
        &app,
        "GET",
        "/relay/today",
        None,
        None,
        &[("x-gatehouse-subject", "usr_sent")],
    )?;
    assert_eq!(
        expect(relayed, 200)?,
        json!({"x-gatehouse-subject": "usr_sent"})
    );

    // A token for another audience, or with its claims changed, is not one.
    let elsewhere = jwt(&gh, &key, "billing")?;
    assert_eq!(
        problem(through(&app, Some(&elsewhere), &[])?, 401)?.0,
        "unauthenticated"
    );
    let mut parts: Vec<&str> = token.split('.').collect();
    let other = jwt(&gh, &gh.org.admin, AUDIENCE)?;
    let other_claims = other.split('.').nth(1).context("payload")?.to_string();
    parts[1] = &other_claims;
    let spliced = parts.join(".");
    assert_eq!(
        problem(through(&app, Some(&spliced), &[])?, 401)?.0,
        "unauthenticated"
    );
    Ok(())
}

#[test]
fn the_app_gets_the_callers_credential_only_when_it_asks_for_it() -> Result<()> {
    let gh = gatehouse()?;
    let key = role_key(&gh.host, &gh.org, "reader", &["reports:read"])?;
    let token = jwt(&gh, &key, AUDIENCE)?;
    // By default the app gets the principal, not the credential.
    let (app, _dir) = guarded(&gh, &[], false)?;
    for (credential, kind) in [
        (&token, "jwt"),
        (&key, "api_key"),
        (&gh.org.admin, "session"),
    ] {
        let reply = through(&app, Some(credential), &[])?;
        assert_eq!(reply.header("x-authorization-seen"), Some("no"), "{kind}");
        assert_eq!(seen(reply)?["x-gatehouse-credential"], kind);
    }
    // An app that calls on with the caller's credential asks for it.
    let (app, _dir) = guarded(&gh, &[("GUARD_FORWARD_AUTHORIZATION", "TRUE")], false)?;
    let reply = through(&app, Some(&token), &[])?;
    assert_eq!(reply.header("x-authorization-seen"), Some("yes"));
    assert_eq!(seen(reply)?["x-gatehouse-credential"], "jwt");
    let (app, _dir) = guarded(&gh, &[("GUARD_FORWARD_AUTHORIZATION", "false")], false)?;
    let reply = through(&app, Some(&token), &[])?;
    assert_eq!(reply.header("x-authorization-seen"), Some("no"));
    // Anything else is a misconfiguration, refused rather than guessed at.
    let (app, _dir) = guarded(&gh, &[("GUARD_FORWARD_AUTHORIZATION", "sometimes")], false)?;
    assert_eq!(
        problem(through(&app, Some(&token), &[])?, 500)?.0,
        "internal"
    );
    Ok(())
}

#[test]
fn a_request_body_reaches_the_app_and_its_answer_comes_back_as_made() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[], false)?;
    let token = jwt(&gh, &gh.org.admin, AUDIENCE)?;
    let auth = format!("Bearer {token}");
    // A body far larger than one chunk, handed on as the stream it came as.
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let reply = gatehouse_tests::send(
        "POST",
        &app.url("/uploads"),
        &[
            ("authorization", &auth),
            ("content-type", "application/octet-stream"),
            // Headers for this hop only are not handed on (the host
            // refuses to send them, which would fail the request).
            ("proxy-authorization", "Basic cHJveHk6cHc="),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
        ],
        &body,
    )?;
    assert_eq!(reply.header("x-body-bytes"), Some("300000"));
    let seen = seen(reply)?;
    assert_eq!(seen["x-gatehouse-subject"], json!(gh.org.admin_id));
    Ok(())
}

#[test]
fn an_api_key_and_a_session_pass_as_what_they_are() -> Result<()> {
    let gh = gatehouse()?;
    // Without a service key the guard asks whoami with the key itself.
    for (n, service_key) in [gh.service_key.as_str(), ""].into_iter().enumerate() {
        let (app, _dir) = guarded(&gh, &[("GUARD_SERVICE_KEY", service_key)], false)?;
        let key = role_key(&gh.host, &gh.org, &format!("reader{n}"), &["reports:read"])?;
        let headers = seen(through(&app, Some(&key), &[])?)?;
        assert_eq!(headers["x-gatehouse-credential"], "api_key");
        assert_eq!(
            headers["x-gatehouse-subject"],
            json!(guarded::subject_id(&gh, &key)?)
        );
        assert_eq!(headers["x-gatehouse-permissions"], "reports:read");
    }

    let (app, _dir) = guarded(&gh, &[], false)?;
    let headers = seen(through(&app, Some(&gh.org.admin), &[])?)?;
    assert_eq!(headers["x-gatehouse-credential"], "session");
    assert_eq!(headers["x-gatehouse-subject"], json!(gh.org.admin_id));
    assert_eq!(headers["x-gatehouse-org"], json!(gh.org.id));
    Ok(())
}

#[test]
fn a_caller_without_the_routes_permission_is_forbidden() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[("GUARD_PERMISSION", "reports:read")], false)?;
    let reader = role_key(&gh.host, &gh.org, "reader", &["reports:read"])?;
    let writer = role_key(&gh.host, &gh.org, "writer", &["reports:write"])?;

    seen(through(&app, Some(&reader), &[])?)?;
    seen(through(&app, Some(&jwt(&gh, &reader, AUDIENCE)?), &[])?)?;
    assert_eq!(
        problem(through(&app, Some(&writer), &[])?, 403)?.0,
        "forbidden"
    );
    let writer_jwt = jwt(&gh, &writer, AUDIENCE)?;
    assert_eq!(
        problem(through(&app, Some(&writer_jwt), &[])?, 403)?.0,
        "forbidden"
    );
    Ok(())
}

#[test]
fn a_used_up_quota_is_refused_with_retry_after() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[("GUARD_METER", "calls")], false)?;
    let admin = Some(gh.org.admin.as_str());
    expect(
        post(
            &gh.host,
            "/v1/meters",
            &json!({"key": "calls", "event_type": "app.call", "aggregation": "count"}),
            admin,
        )?,
        201,
    )?;
    let key = role_key(&gh.host, &gh.org, "reader", &["reports:read"])?;
    // A key's use counts for its owner: the admin who made it.
    let owner = format!("user:{}", gh.org.admin_id);
    expect(
        post(
            &gh.host,
            "/v1/quotas",
            &json!({"entity": owner, "meter": "calls", "limit": 2, "period": "day"}),
            admin,
        )?,
        201,
    )?;

    for _ in 0..2 {
        seen(through(&app, Some(&key), &[])?)?;
    }
    let refused = through(&app, Some(&key), &[])?;
    assert!(retry_after(&refused)? >= 1, "{:?}", refused.headers);
    assert_eq!(problem(refused, 429)?.0, "quota_exceeded");
    // The refused request was not counted.
    let usage: i64 = database(&gh.host)?.query_row(
        "SELECT COUNT(*) FROM usage_events WHERE org_id = ?1 AND subject_type = 'user' AND subject_id = ?2",
        [&gh.org.id, &gh.org.admin_id],
        |row| row.get(0),
    )?;
    assert_eq!(usage, 2);
    Ok(())
}

#[test]
fn a_revoked_api_key_is_refused_once_the_cache_bound_has_passed() -> Result<()> {
    let gh = gatehouse()?;
    // The guard's clock is the host's controllable one: the bound passes
    // by moving it, not by waiting.
    let (app, _dir) = guarded(&gh, &[("GUARD_CACHE_SECONDS", "30")], true)?;
    let key = role_key(&gh.host, &gh.org, "reader", &["reports:read"])?;
    seen(through(&app, Some(&key), &[])?)?;

    let revoked = call(
        &gh.host,
        "DELETE",
        "/v1/keys/reader-agent",
        None,
        Some(&gh.org.admin),
        &[],
    )?;
    assert!(matches!(revoked.status, 200 | 204), "{}", revoked.text());
    assert_eq!(
        call(&gh.host, "GET", "/v1/auth/whoami", None, Some(&key), &[])?.status,
        401,
        "Gatehouse itself refuses the key at once"
    );
    // Within the bound the guard may still answer from its cache ...
    seen(through(&app, Some(&key), &[])?)?;
    // ... and past it, it asks again and refuses.
    app.advance_clock(31)?;
    assert_eq!(
        problem(through(&app, Some(&key), &[])?, 401)?.0,
        "unauthenticated"
    );
    Ok(())
}

#[test]
fn a_token_of_a_new_signing_key_verifies_once_the_refetch_floor_has_passed() -> Result<()> {
    const OPERATOR: &str = "operator-secret-for-tests";
    let gh = gatehouse_with(vec![(
        "SPIN_VARIABLE_OPERATOR_TOKEN".into(),
        OPERATOR.into(),
    )])?;
    let (app, _dir) = guarded(&gh, &[], true)?;
    let key = role_key(&gh.host, &gh.org, "reader", &["reports:read"])?;
    // The first token makes the guard fetch and cache the key set.
    seen(through(&app, Some(&jwt(&gh, &key, AUDIENCE)?), &[])?)?;

    // A key that signs at once, unknown to the cached set.
    let rotated = expect(
        post(
            &gh.host,
            "/v1/signing-keys/$rotate",
            &json!({"publish_lead_seconds": 0}),
            Some(OPERATOR),
        )?,
        201,
    )?;
    let fresh = jwt(&gh, &key, AUDIENCE)?;
    assert_eq!(
        tokens_core::key_id(&fresh).as_deref(),
        rotated["kid"].as_str()
    );
    // Unknown `kid`s fetch the set again at most once per floor ...
    assert_eq!(
        problem(through(&app, Some(&fresh), &[])?, 401)?.0,
        "unauthenticated"
    );
    // ... and once it has passed, the new key is fetched and verifies.
    app.advance_clock(31)?;
    let headers = seen(through(&app, Some(&fresh), &[])?)?;
    assert_eq!(headers["x-gatehouse-credential"], "jwt");
    Ok(())
}

#[test]
fn with_gatehouse_unreachable_jwts_still_verify_and_nothing_else_passes() -> Result<()> {
    let gh = gatehouse_with(vec![(
        "SPIN_VARIABLE_TOKEN_MAX_TTL_SECONDS".into(),
        "7200".into(),
    )])?;
    let (app, _dir) = guarded(&gh, &[], true)?;
    let key = role_key(&gh.host, &gh.org, "reader", &["reports:read"])?;
    let issued = expect(
        post(
            &gh.host,
            "/v1/tokens",
            &json!({"audience": [AUDIENCE], "ttl_seconds": 7200}),
            Some(&key),
        )?,
        200,
    )?;
    let token = issued["access_token"].as_str().context("access_token")?;
    seen(through(&app, Some(token), &[])?)?;

    let Gatehouse { host, .. } = gh;
    drop(host);
    // Past the key set's maximum age the guard tries to fetch it again,
    // fails, and keeps verifying with the keys it has.
    app.advance_clock(3601)?;
    let headers = seen(through(&app, Some(token), &[])?)?;
    assert_eq!(headers["x-gatehouse-credential"], "jwt");
    // A key whose verdict is no longer cached cannot be checked: 503, not through.
    let reply = through(&app, Some(&key), &[])?;
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(problem(reply, 503)?.0, "unavailable");
    Ok(())
}
