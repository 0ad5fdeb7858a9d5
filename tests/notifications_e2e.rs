//! Notifications end to end: events in identity, orgs, billing and keys
//! notify their users through `notification.deliver` jobs (run here by
//! the jobs runner's route); each user's channels resolve from the user's
//! preferences, then the nearest team's, then the org's, then the kind's
//! default; critical kinds cannot be muted; in-app notifications are
//! listed, counted and marked read by their user only; mail goes to the
//! outbox; text messages reach a local server speaking Twilio's Messages
//! API (tests/sms-api/server.py), once per notification however often its
//! job runs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use gatehouse_tests::app::{
    PASSWORD, call, database, expect, join, org, post, problem, reset_password, signed_in,
    start_app_with, team, user_id,
};
use gatehouse_tests::{Reply, TestHost, get, root, send};
use serde_json::{Value, json};

// The billing tests' Stripe stand-in and steps; this binary uses a few.
#[allow(dead_code)]
#[path = "billing_e2e/support.rs"]
mod support;

const OPERATOR: &str = "operator-test-token-for-notifications";
const SID: &str = "AC0123456789abcdef0123456789abcdef";
const SMS_TOKEN: &str = "sms-auth-token-for-tests";
const SMS_FROM: &str = "+15550001111";

/// The app with the jobs runner's route on and retries due at once.
fn start(extra: Vec<(String, String)>) -> Result<TestHost> {
    let mut env = vec![
        ("SPIN_VARIABLE_OPERATOR_TOKEN".into(), OPERATOR.into()),
        ("SPIN_VARIABLE_JOB_RETRY_BASE_SECONDS".into(), "0".into()),
    ];
    env.extend(extra);
    start_app_with(env)
}

/// Runs the due jobs (`POST /v1/admin/jobs/$run`); a job due again is
/// attempted by the next run.
fn run_jobs(host: &TestHost) -> Result<Value> {
    let auth = format!("Bearer {OPERATOR}");
    expect(
        send(
            "POST",
            &host.url("/v1/admin/jobs/$run"),
            &[("authorization", &auth)],
            b"",
        )?,
        200,
    )
}

fn get_as(host: &TestHost, token: &str, path: &str) -> Result<Reply> {
    call(host, "GET", path, None, Some(token), &[])
}

fn put_as(host: &TestHost, token: &str, path: &str, body: &Value) -> Result<Reply> {
    call(host, "PUT", path, Some(body), Some(token), &[])
}

/// The caller's in-app notifications (one page of `query`).
fn inbox(host: &TestHost, token: &str, query: &str) -> Result<Value> {
    expect(
        get_as(host, token, &format!("/v1/me/notifications{query}"))?,
        200,
    )
}

fn kinds_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|n| n["kind"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn unread(host: &TestHost, token: &str) -> Result<i64> {
    let count = expect(
        get_as(host, token, "/v1/me/notifications/unread-count")?,
        200,
    )?;
    count["unread"].as_i64().context("unread")
}

/// `(on, source)` of a kind's channel in the caller's resolved matrix.
fn resolved(host: &TestHost, token: &str, kind: &str, channel: &str) -> Result<(bool, String)> {
    let matrix = expect(get_as(host, token, "/v1/me/notification-preferences")?, 200)?;
    let entry = matrix["kinds"]
        .as_array()
        .context("kinds")?
        .iter()
        .find(|k| k["kind"] == kind)
        .with_context(|| format!("no {kind}: {matrix}"))?;
    let setting = &entry["channels"][channel];
    Ok((
        setting["on"].as_bool().context("on")?,
        setting["source"].as_str().context("source")?.to_string(),
    ))
}

/// Mails in the outbox of `kind` to `to`.
fn mails(host: &TestHost, to: &str, kind: &str) -> Result<Vec<Value>> {
    let outbox = get(&host.url("/v1/dev/outbox"), &[])?.json()?;
    Ok(outbox["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|m| m["to"] == to && m["kind"] == kind)
        .cloned()
        .collect())
}

/// A sign-in as `email` from a device named by its user agent.
fn login_from(host: &TestHost, email: &str, agent: &str) -> Result<String> {
    let reply = send(
        "POST",
        &host.url("/v1/auth/login"),
        &[("content-type", "application/json"), ("user-agent", agent)],
        json!({"email": email, "password": PASSWORD})
            .to_string()
            .as_bytes(),
    )?;
    let body = expect(reply, 200)?;
    Ok(body["token"].as_str().context("token")?.to_string())
}

/// The SMS stand-in, stopped on drop.
struct SmsApi {
    base_url: String,
    child: Child,
}

impl Drop for SmsApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmsApi {
    /// Starts tests/sms-api/server.py on a free port; its first
    /// `fail_first` well-formed requests are answered 503.
    fn start(fail_first: u32) -> Result<SmsApi> {
        let mut child = Command::new("python3")
            .arg(root().join("tests/sms-api/server.py"))
            .env("PORT", "0")
            .env("ACCOUNT_SID", SID)
            .env("AUTH_TOKEN", SMS_TOKEN)
            .env("FAIL_FIRST", fail_first.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("python3 runs tests/sms-api/server.py")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        let Some(port) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            bail!("the SMS stand-in did not start: {line:?}");
        };
        Ok(SmsApi {
            base_url: format!("http://127.0.0.1:{port}"),
            child,
        })
    }

    /// The variables that point the app at it.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "SPIN_VARIABLE_SMS_API_BASE_URL".into(),
                self.base_url.clone(),
            ),
            ("SPIN_VARIABLE_SMS_ACCOUNT_SID".into(), SID.into()),
            ("SPIN_VARIABLE_SMS_AUTH_TOKEN".into(), SMS_TOKEN.into()),
            ("SPIN_VARIABLE_SMS_FROM".into(), SMS_FROM.into()),
        ]
    }

    /// Every request it received, with the status it answered.
    fn received(&self) -> Result<Vec<Value>> {
        let page = get(&format!("{}/_test/messages", self.base_url), &[])?.json()?;
        Ok(page["items"].as_array().context("items")?.clone())
    }
}

#[test]
fn preferences_resolve_the_user_over_the_nearest_team_over_the_org() -> Result<()> {
    let host = start(vec![])?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let eng = team(&host, &acme, "eng", None)?;
    let platform = team(&host, &acme, "platform", Some(&eng))?;
    let (bob, _) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@acme.test",
        "admin",
        &[&platform],
    )?;
    let kind = "key.expiring";
    assert_eq!(
        resolved(&host, &bob, kind, "email")?,
        (true, "default".into())
    );

    let org_prefs = format!("/v1/orgs/{}/preferences", acme.id);
    let muted = json!({"notifications": {kind: {"email": false}}});
    expect(put_as(&host, &acme.admin, &org_prefs, &muted)?, 200)?;
    assert_eq!(resolved(&host, &bob, kind, "email")?, (false, "org".into()));

    // The parent team turns it back on for its teams below.
    let eng_prefs = format!("/v1/orgs/{}/teams/{eng}/preferences", acme.id);
    let on = json!({"notifications": {kind: {"email": true}}});
    expect(put_as(&host, &acme.admin, &eng_prefs, &on)?, 200)?;
    assert_eq!(resolved(&host, &bob, kind, "email")?, (true, "team".into()));
    // The team bob is in is nearer than its parent.
    let platform_prefs = format!("/v1/orgs/{}/teams/{platform}/preferences", acme.id);
    expect(put_as(&host, &acme.admin, &platform_prefs, &muted)?, 200)?;
    assert_eq!(
        resolved(&host, &bob, kind, "email")?,
        (false, "team".into())
    );
    // Ada is in no team: the org's mute stands for her.
    assert_eq!(
        resolved(&host, &acme.admin, kind, "email")?,
        (false, "org".into())
    );

    // Bob's own word wins, and the job follows it: his expiring key is
    // mailed to him, not to Ada, whose key is told in the app only.
    expect(put_as(&host, &bob, "/v1/me/preferences", &on)?, 200)?;
    assert_eq!(resolved(&host, &bob, kind, "email")?, (true, "user".into()));
    assert_eq!(
        resolved(&host, &bob, kind, "in_app")?,
        (true, "default".into())
    );
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64
        + 3 * 24 * 3600;
    for (token, name) in [(&bob, "bobs-key"), (&acme.admin, "adas-key")] {
        expect(
            post(
                &host,
                "/v1/keys",
                &json!({"name": name, "expires_at": soon}),
                Some(token),
            )?,
            201,
        )?;
    }
    run_jobs(&host)?;
    assert_eq!(
        mails(&host, "bob@acme.test", "notification.key.expiring")?.len(),
        1
    );
    assert!(mails(&host, "ada@acme.test", "notification.key.expiring")?.is_empty());
    let adas = inbox(&host, &acme.admin, "")?;
    assert_eq!(kinds_of(&adas), vec!["key.expiring"], "{adas}");
    assert_eq!(adas["items"][0]["data"]["name"], "adas-key");
    assert_eq!(adas["items"][0]["org_id"], acme.id.as_str());

    // A key is told once: scanning again (the day's scan forgotten, as
    // on the next day) adds nothing.
    database(&host)?.execute("UPDATE notification_scans SET day = 0", [])?;
    run_jobs(&host)?;
    let day: i64 =
        database(&host)?.query_row("SELECT day FROM notification_scans", [], |r| r.get(0))?;
    assert!(day > 0, "the scan ran again");
    assert_eq!(kinds_of(&inbox(&host, &acme.admin, "")?).len(), 1);
    assert_eq!(
        mails(&host, "bob@acme.test", "notification.key.expiring")?.len(),
        1
    );
    Ok(())
}

#[test]
fn a_critical_kind_is_sent_even_when_muted_and_muting_it_is_refused() -> Result<()> {
    let host = start(vec![])?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let user = signed_in(&host, "cy@example.com")?;
    let cy = user_id(&host, &user)?;

    // Muting a critical kind is refused at every level, naming the field.
    let mute = json!({"notifications": {"password.changed": {"email": false}}});
    for (token, path) in [
        (&user, "/v1/me/preferences".to_string()),
        (&acme.admin, format!("/v1/orgs/{}/preferences", acme.id)),
    ] {
        let (code, pointer, field) = problem(put_as(&host, token, &path, &mute)?, 422)?;
        assert_eq!(
            (code.as_str(), pointer.as_str(), field.as_str()),
            (
                "validation_failed",
                "/notifications/password.changed/email",
                "critical_kind"
            )
        );
    }
    // A mute stored before the rule (or by hand) changes nothing either;
    // a muted ordinary kind stays quiet.
    let stored = json!({"notifications": {
        "password.changed": {"email": false, "in_app": false},
        "sign_in.new_device": {"in_app": false},
    }});
    database(&host)?.execute(
        "INSERT INTO preferences (org_id, scope, scope_id, settings, updated_at) VALUES (NULL, 'user', ?1, ?2, 0)",
        rusqlite::params![cy, stored.to_string()],
    )?;
    assert_eq!(
        resolved(&host, &user, "password.changed", "email")?,
        (true, "critical".into())
    );
    login_from(&host, "cy@example.com", "Phone/1")?;
    reset_password(&host, "cy@example.com", "orange-bicycle-harbour")?;
    run_jobs(&host)?;
    let token = gatehouse_tests::app::post(
        &host,
        "/v1/auth/login",
        &json!({"email": "cy@example.com", "password": "orange-bicycle-harbour"}),
        None,
    )?;
    let token = expect(token, 200)?["token"]
        .as_str()
        .context("token")?
        .to_string();
    let listed = inbox(&host, &token, "")?;
    assert_eq!(kinds_of(&listed), vec!["password.changed"], "{listed}");
    assert_eq!(listed["items"][0]["critical"], true);
    let mailed = mails(&host, "cy@example.com", "notification.password.changed")?;
    assert_eq!(mailed.len(), 1);
    assert!(
        mailed[0]["body"]
            .as_str()
            .unwrap_or_default()
            .contains("Your password was changed"),
        "{}",
        mailed[0]
    );
    Ok(())
}

#[test]
fn in_app_notifications_are_listed_counted_and_marked_read_by_their_user_only() -> Result<()> {
    let host = start(vec![])?;
    let dee = signed_in(&host, "dee@example.com")?;
    let eve = signed_in(&host, "eve@example.com")?;
    for agent in ["Laptop/1", "Phone/2", "Tablet/3"] {
        login_from(&host, "dee@example.com", agent)?;
    }
    // Nothing shows before the job runs.
    assert_eq!(unread(&host, &dee)?, 0);
    run_jobs(&host)?;
    assert_eq!(unread(&host, &dee)?, 3);
    assert_eq!(unread(&host, &eve)?, 0);

    let first = inbox(&host, &dee, "?limit=2")?;
    assert_eq!(kinds_of(&first), vec!["sign_in.new_device"; 2]);
    assert_eq!(
        first["items"][0]["data"]["user_agent"], "Tablet/3",
        "newest first"
    );
    let cursor = first["next_cursor"].as_str().context("next_cursor")?;
    let second = inbox(&host, &dee, &format!("?limit=2&cursor={cursor}"))?;
    assert_eq!(second["items"][0]["data"]["user_agent"], "Laptop/1");
    assert!(second["next_cursor"].is_null());

    let newest = first["items"][0]["id"].as_str().context("id")?.to_string();
    let read_path = format!("/v1/me/notifications/{newest}/$read");
    let read = expect(call(&host, "POST", &read_path, None, Some(&dee), &[])?, 200)?;
    assert_eq!(
        (read["id"].as_str(), read["read"].as_bool()),
        (Some(newest.as_str()), Some(true))
    );
    assert_eq!(unread(&host, &dee)?, 2);
    let unread_page = inbox(&host, &dee, "?unread=true")?;
    assert_eq!(unread_page["items"].as_array().map(Vec::len), Some(2));
    assert!(
        unread_page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|n| n["id"] != newest.as_str())
    );

    // Another user's notification is not found, whatever they try.
    for (method, path) in [
        ("POST", read_path.clone()),
        ("DELETE", format!("/v1/me/notifications/{newest}")),
    ] {
        let (code, _, _) = problem(call(&host, method, &path, None, Some(&eve), &[])?, 404)?;
        assert_eq!(code, "not_found");
    }
    let marked = expect(
        call(
            &host,
            "POST",
            "/v1/me/notifications/$read-all",
            None,
            Some(&eve),
            &[],
        )?,
        200,
    )?;
    assert_eq!(marked["marked"], 0);
    assert_eq!(unread(&host, &dee)?, 2);
    assert!(
        inbox(&host, &eve, "")?["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    let marked = expect(
        call(
            &host,
            "POST",
            "/v1/me/notifications/$read-all",
            None,
            Some(&dee),
            &[],
        )?,
        200,
    )?;
    assert_eq!(marked["marked"], 2);
    assert_eq!(unread(&host, &dee)?, 0);
    let deleted = call(
        &host,
        "DELETE",
        &format!("/v1/me/notifications/{newest}"),
        None,
        Some(&dee),
        &[],
    )?;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert_eq!(kinds_of(&inbox(&host, &dee, "")?).len(), 2);
    let (code, _, _) = problem(call(&host, "POST", &read_path, None, Some(&dee), &[])?, 404)?;
    assert_eq!(code, "not_found");
    Ok(())
}

/// Notifications speak of a person's whole account: an org's token for
/// the person, and an admin acting as them, read none of them.
#[test]
fn only_the_persons_own_session_reads_their_notifications() -> Result<()> {
    let host = start(vec![])?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let (bob, bob_id) = join(&host, &acme.admin, &acme.id, "bob@acme.test", "member", &[])?;
    expect(get_as(&host, &bob, "/v1/me/notifications")?, 200)?;
    let token = expect(
        call(
            &host,
            "POST",
            "/v1/tokens",
            Some(&json!({})),
            Some(&bob),
            &[("x-org", "acme")],
        )?,
        200,
    )?;
    let jwt = token["access_token"].as_str().context("access_token")?;
    for path in ["/v1/me/notifications", "/v1/me/notification-preferences"] {
        let (code, _, _) = problem(get_as(&host, jwt, path)?, 403)?;
        assert_eq!(code, "session_required", "{path}");
        let acting = call(
            &host,
            "GET",
            path,
            None,
            Some(&acme.admin),
            &[("x-act-as", &bob_id), ("x-org", "acme")],
        )?;
        problem(acting, 403)?;
    }
    Ok(())
}

#[test]
fn text_messages_reach_a_twilio_compatible_api_once_though_the_job_is_retried() -> Result<()> {
    let sms = SmsApi::start(1)?;
    let host = start(sms.env())?;
    let user = signed_in(&host, "fay@example.com")?;
    let kinds = expect(get_as(&host, &user, "/v1/notification-kinds")?, 200)?;
    assert!(
        kinds["channels"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["name"] == "sms" && c["available"] == true),
        "{kinds}"
    );
    let prefs = json!({"notifications": {
        "sms_number": "+15557654321",
        "mfa.changed": {"sms": true},
    }});
    expect(put_as(&host, &user, "/v1/me/preferences", &prefs)?, 200)?;

    // Turning on the authenticator notifies (mfa.changed is critical).
    let enrol = expect(
        post(&host, "/v1/auth/mfa/totp", &json!({}), Some(&user))?,
        201,
    )?;
    let secret = enrol["secret"].as_str().context("secret")?;
    let code = gatehouse_tests::app::totp_code(secret, 0)?;
    expect(
        post(
            &host,
            "/v1/auth/mfa/totp/confirm",
            &json!({"code": code}),
            Some(&user),
        )?,
        200,
    )?;

    // The first attempt: in the app and mailed, but the provider fails.
    run_jobs(&host)?;
    assert_eq!(unread(&host, &user)?, 1);
    assert_eq!(
        mails(&host, "fay@example.com", "notification.mfa.changed")?.len(),
        1
    );
    let received = sms.received()?;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["status"], 503);
    let auth = format!("Bearer {OPERATOR}");
    let jobs = expect(
        get(
            &host.url("/v1/admin/jobs?kind=notification.deliver"),
            &[("authorization", &auth)],
        )?,
        200,
    )?;
    assert_eq!(jobs["items"][0]["state"], "pending", "{jobs}");

    // The retry sends the text and nothing else again.
    run_jobs(&host)?;
    let received = sms.received()?;
    assert_eq!(received.len(), 2, "{received:?}");
    let sent = &received[1];
    assert_eq!(sent["status"], 201, "{sent}");
    assert_eq!(sent["authorized"], true);
    assert_eq!(sent["form"]["To"], "+15557654321");
    assert_eq!(sent["form"]["From"], SMS_FROM);
    assert!(
        sent["form"]["Body"]
            .as_str()
            .unwrap_or_default()
            .contains("Two-factor"),
        "{sent}"
    );
    assert_eq!(
        mails(&host, "fay@example.com", "notification.mfa.changed")?.len(),
        1
    );

    // Run once more, as if the runner had lost its lease: still one each.
    database(&host)?.execute(
        "UPDATE jobs SET state = 'pending', run_at = 0, finished_at = NULL WHERE kind = 'notification.deliver'",
        [],
    )?;
    run_jobs(&host)?;
    assert_eq!(sms.received()?.len(), 2);
    assert_eq!(
        mails(&host, "fay@example.com", "notification.mfa.changed")?.len(),
        1
    );
    assert_eq!(unread(&host, &user)?, 1);
    Ok(())
}

#[test]
fn without_a_provider_the_sms_channel_is_off_and_says_so() -> Result<()> {
    let host = start(vec![])?;
    let user = signed_in(&host, "gil@example.com")?;
    let kinds = expect(get_as(&host, &user, "/v1/notification-kinds")?, 200)?;
    let sms = kinds["channels"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "sms")
        .cloned()
        .context("sms channel")?;
    assert_eq!(sms["available"], false);
    assert!(
        sms["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("sms_account_sid")
    );
    let password = kinds["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["kind"] == "password.changed")
        .cloned()
        .context("password.changed")?;
    assert_eq!(password["critical"], true);
    assert_eq!(password["defaults"], json!(["in_app", "email"]));
    Ok(())
}

#[test]
fn an_invitation_notifies_an_invitee_who_has_an_account() -> Result<()> {
    let host = start(vec![])?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let (hal, hal_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "hal@example.com",
        "member",
        &[],
    )?;
    run_jobs(&host)?;
    let listed = inbox(&host, &hal, "")?;
    assert_eq!(kinds_of(&listed), vec!["invitation.received"], "{listed}");
    assert_eq!(listed["items"][0]["org_id"], acme.id.as_str());
    assert_eq!(listed["items"][0]["data"]["org_name"], "acme");

    // Notifications about an org go with it; a user's with the user.
    let ada = user_id(&host, &acme.admin)?;
    let db = database(&host)?;
    let count = |user: &str| -> Result<i64> {
        Ok(db.query_row(
            "SELECT COUNT(*) FROM notifications WHERE user_id = ?1",
            [user],
            |r| r.get(0),
        )?)
    };
    assert_eq!(count(&hal_id)?, 1);
    login_from(&host, "ada@acme.test", "Laptop/9")?;
    run_jobs(&host)?;
    assert_eq!(count(&ada)?, 1);
    let deleted = call(
        &host,
        "DELETE",
        &format!("/v1/orgs/{}", acme.id),
        None,
        Some(&acme.admin),
        &[],
    )?;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert_eq!(count(&hal_id)?, 0);
    assert!(
        inbox(&host, &hal, "")?["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    db.execute_batch("PRAGMA foreign_keys = ON")?;
    db.execute("DELETE FROM users WHERE id = ?1", [&ada])?;
    assert_eq!(count(&ada)?, 0);
    Ok(())
}

#[test]
fn every_route_refuses_a_request_without_credentials() -> Result<()> {
    let host = start(vec![])?;
    for (method, path) in [
        ("GET", "/v1/me/notifications"),
        ("GET", "/v1/me/notifications/unread-count"),
        ("POST", "/v1/me/notifications/$read-all"),
        ("POST", "/v1/me/notifications/ntf_1/$read"),
        ("DELETE", "/v1/me/notifications/ntf_1"),
        ("GET", "/v1/notification-kinds"),
        ("GET", "/v1/me/notification-preferences"),
    ] {
        let (code, _, _) = problem(call(&host, method, path, None, None, &[])?, 401)?;
        assert_eq!(code, "unauthenticated", "{method} {path}");
    }
    Ok(())
}

#[test]
fn invalid_queries_and_preferences_are_problem_documents() -> Result<()> {
    let host = start(vec![])?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    for query in ["?unread=maybe", "?cursor=not-a-cursor", "?limit=0"] {
        let reply = get_as(&host, &acme.admin, &format!("/v1/me/notifications{query}"))?;
        let (code, _, _) = problem(reply, 400)?;
        assert_eq!(code, "invalid_query", "{query}");
    }
    let org_prefs = format!("/v1/orgs/{}/preferences", acme.id);
    for (path, body, pointer, field) in [
        (
            org_prefs.as_str(),
            json!({"notifications": {"no.such.kind": {"email": true}}}),
            "/notifications/no.such.kind",
            "unknown_kind",
        ),
        (
            org_prefs.as_str(),
            json!({"notifications": {"sign_in.new_device": {"email": true}}}),
            "/notifications/sign_in.new_device/email",
            "unknown_channel",
        ),
        (
            org_prefs.as_str(),
            json!({"notifications": {"sms_number": "+15557654321"}}),
            "/notifications/sms_number",
            "user_only",
        ),
        (
            "/v1/me/preferences",
            json!({"notifications": {"sms_number": "555-1234"}}),
            "/notifications/sms_number",
            "invalid_phone_number",
        ),
        (
            "/v1/me/preferences",
            json!({"notifications": {"key.expiring": {"email": "no"}}}),
            "/notifications/key.expiring/email",
            "invalid_type",
        ),
    ] {
        let (code, at, why) = problem(put_as(&host, &acme.admin, path, &body)?, 422)?;
        assert_eq!(
            (code.as_str(), at.as_str(), why.as_str()),
            ("validation_failed", pointer, field)
        );
    }
    // An API key is not a person with notifications.
    let key = expect(
        post(
            &host,
            "/v1/keys",
            &json!({"name": "robot"}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let secret = key["key"].as_str().context("key")?;
    let (code, _, _) = problem(get_as(&host, secret, "/v1/me/notifications")?, 403)?;
    assert_eq!(code, "session_required");
    Ok(())
}

#[test]
fn a_failed_payment_notifies_the_orgs_admins_once() -> Result<()> {
    let mut b = support::start()?;
    let acme = b.org("acme")?;
    let sub = b.subscribe(&acme, "pro", 5)?;
    b.sync()?;
    b.stripe.payment_failed(&sub)?;
    b.sync()?;
    b.run_jobs()?;
    let told = |b: &support::Billing| -> Result<Vec<Value>> {
        let page = inbox(&b.host, &acme.admin, "")?;
        Ok(page["items"]
            .as_array()
            .context("items")?
            .iter()
            .filter(|n| n["kind"] == "payment.failed")
            .cloned()
            .collect())
    };
    let notices = told(&b)?;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["org_id"], acme.id.as_str());
    assert_eq!(notices[0]["critical"], true);
    assert_eq!(notices[0]["data"]["subscription_id"], sub.as_str());
    let mailed = mails(&b.host, "admin@acme.test", "notification.payment.failed")?;
    assert_eq!(mailed.len(), 1);

    // Another failed attempt while still past due is the same episode.
    b.tick(3600)?;
    b.stripe.payment_failed(&sub)?;
    b.sync()?;
    b.run_jobs()?;
    assert_eq!(told(&b)?.len(), 1);
    Ok(())
}

#[test]
fn a_quota_reaching_a_threshold_notifies_the_admins_in_the_app_beside_its_mail() -> Result<()> {
    let host = start(vec![])?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let (bob, _) = join(&host, &acme.admin, &acme.id, "bob@acme.test", "member", &[])?;
    expect(
        post(
            &host,
            "/v1/meters",
            &json!({"key": "calls", "event_type": "llm.call", "aggregation": "count"}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let subject = format!("user:{}", acme.admin_id);
    expect(
        post(
            &host,
            "/v1/quotas",
            &json!({"entity": subject, "meter": "calls", "limit": 2, "period": "lifetime",
                    "thresholds": [{"percent": 50}]}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let consume = json!({"subject": subject, "meter": "calls"});
    expect(
        post(&host, "/v1/quotas/consume", &consume, Some(&acme.admin))?,
        200,
    )?;
    run_jobs(&host)?;
    let listed = inbox(&host, &acme.admin, "")?;
    assert_eq!(kinds_of(&listed), vec!["quota.threshold"], "{listed}");
    assert_eq!(listed["items"][0]["org_id"], acme.id.as_str());
    // The kind's email is the alert's own mail: one, not two.
    assert_eq!(mails(&host, "ada@acme.test", "quota_alert")?.len(), 1);
    assert!(mails(&host, "ada@acme.test", "notification.quota.threshold")?.is_empty());
    // Only admins hear of it.
    assert!(
        kinds_of(&inbox(&host, &bob, "")?)
            .iter()
            .all(|k| k != "quota.threshold")
    );
    Ok(())
}
