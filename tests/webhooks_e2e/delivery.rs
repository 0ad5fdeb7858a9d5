//! Outgoing webhooks delivered: what happens in an org (an API key made or
//! revoked, a member joining or leaving) is POSTed to each of its
//! endpoints that takes the type, by the jobs runner (`POST
//! /v1/admin/jobs/$run`), on the Standard Webhooks schedule. The guests'
//! clock is moved instead of waiting between attempts.
//!
//! A node receiver (`tests/webhook-signers/receive.mjs`) stands in for the
//! endpoints: it checks every delivery with the `standardwebhooks` library
//! (each `v1` secret it is given, against the guests' clock) and node's
//! Ed25519 (`v1a`, with the endpoint's public key), answers as it is told
//! and logs what it received.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use gatehouse_tests::app::{
    Org, app_config, call, database, expect, join, mail, org, post, python,
};
use gatehouse_tests::{TestHost, get, root, send};
use serde_json::{Value, json};

use crate::endpoints::{by, create as endpoint, read};
use crate::support::{OPERATOR, T, run_jobs, run_jobs_with};

#[path = "delivery/lifecycle.rs"]
mod lifecycle;
#[path = "delivery/runs.rs"]
mod runs;

/// The Standard Webhooks schedule, as the waits before attempts 2 to 10.
const WAITS: [i64; 9] = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];

/// The app with its clock at [`T`], allowed to deliver to 127.0.0.1 over
/// http, with `private_hosts` as the hosts endpoints may be on.
fn start(private_hosts: &str) -> Result<TestHost> {
    start_with(private_hosts, "http://127.0.0.1:*")
}

/// [`start`], with `delivery_hosts` as the outbound rule for deliveries.
fn start_with(private_hosts: &str, delivery_hosts: &str) -> Result<TestHost> {
    let mut config = app_config();
    config.controllable_clock = true;
    config.env.extend(
        [
            ("WEBHOOK_DELIVERY_HOSTS", delivery_hosts),
            ("WEBHOOK_ENDPOINT_PRIVATE_HOSTS", private_hosts),
            ("OPERATOR_TOKEN", OPERATOR),
        ]
        .map(|(name, value)| (format!("SPIN_VARIABLE_{name}"), value.to_string())),
    );
    let host = TestHost::start(config)?;
    host.set_clock(T)?;
    Ok(host)
}

/// A receiver of deliveries, stopped on drop.
struct Receiver {
    child: Child,
    port: u16,
}

impl Receiver {
    /// Starts `receive.mjs`, which reads the time from `host`'s clock.
    fn start(host: &TestHost) -> Result<Receiver> {
        let dir = root().join("tests/webhook-signers");
        if !dir.join("node_modules/standardwebhooks").exists() {
            bail!("run `npm ci` in tests/webhook-signers (scripts/test does)");
        }
        let config = json!({"clock": host.url("/.host/clock")});
        let mut child = Command::new("node")
            .arg("receive.mjs")
            .arg(config.to_string())
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("node is needed for the webhook receiver")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        let port = serde_json::from_str::<Value>(&line)?["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .with_context(|| format!("receive.mjs said {line:?}"))?;
        Ok(Receiver { child, port })
    }

    /// The URL of `path` here.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sets what it verifies with and answers: `secrets`, `public_key`,
    /// `answers` (in order) and `then`.
    fn control(&self, settings: Value) -> Result<()> {
        let reply = send(
            "POST",
            &self.url("/.control"),
            &[],
            settings.to_string().as_bytes(),
        )?;
        expect(reply, 200).map(|_| ())
    }

    /// Every delivery received so far, in order.
    fn log(&self) -> Result<Vec<Value>> {
        let log = expect(get(&self.url("/.log"), &[])?, 200)?;
        Ok(log.as_array().context("log")?.clone())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many delivery jobs there are, in any state.
fn delivery_jobs(host: &TestHost) -> Result<i64> {
    Ok(database(host)?.query_row(
        "SELECT COUNT(*) FROM jobs WHERE kind = 'webhook.deliver'",
        [],
        |row| row.get(0),
    )?)
}

/// The endpoint's messages, newest first.
fn messages(host: &TestHost, org: &Org, id: &str) -> Result<Vec<Value>> {
    let page = read(host, org, id, "/messages")?;
    Ok(page["items"].as_array().context("items")?.clone())
}

/// The endpoint's only message, with its attempts (newest first).
fn only_message(host: &TestHost, org: &Org, id: &str) -> Result<Value> {
    let listed = messages(host, org, id)?;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let message = listed[0]["id"].as_str().context("message id")?;
    read(host, org, id, &format!("/messages/{message}"))
}

/// An API key made by the org's admin (a `key.created` event).
fn make_key(host: &TestHost, org: &Org, name: &str) -> Result<Value> {
    expect(
        post(host, "/v1/keys", &json!({"name": name}), Some(&org.admin))?,
        201,
    )
}

fn text(value: &Value, name: &str) -> Result<String> {
    Ok(value[name]
        .as_str()
        .with_context(|| format!("{name} in {value}"))?
        .to_string())
}

/// Whether each `(data, schema)` pair validates, by the `jsonschema_rs`
/// library (draft 2020-12).
fn validates(pairs: Value) -> Result<Vec<bool>> {
    let checked = python(
        "import json, sys, jsonschema_rs\n\
         pairs = json.load(sys.stdin)\n\
         print(json.dumps([jsonschema_rs.Draft202012Validator(s).is_valid(d) for d, s in pairs]))",
        &pairs,
    )?;
    Ok(checked
        .as_array()
        .context("answers")?
        .iter()
        .map(|v| v == &json!(true))
        .collect())
}

/// The schema of `event_type`'s data, as `GET /v1/webhooks/event-types`
/// answers it.
fn schema_of(catalog: &Value, event_type: &str) -> Result<Value> {
    catalog["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|t| t["type"] == event_type)
        .map(|t| t["schema"].clone())
        .with_context(|| format!("no {event_type} in the catalog"))
}

#[test]
fn a_failing_delivery_is_retried_at_5_seconds_and_5_minutes_with_the_same_id_and_body() -> Result<()>
{
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    let made = endpoint(
        &host,
        &acme,
        json!({"url": receiver.url("/hooks/acme"), "event_types": ["key.*"]}),
    )?;
    let id = text(&made, "id")?;
    receiver.control(
        json!({"secrets": [text(&made, "secret")?], "answers": [500, 500], "then": 200}),
    )?;
    make_key(&host, &acme, "ci")?;

    // The first attempt at once; nothing more is due until 5 s later.
    run_jobs(&host)?;
    assert_eq!(receiver.log()?.len(), 1);
    let first = only_message(&host, &acme, &id)?;
    assert_eq!(first["status"], "pending", "{first}");
    let at = first["attempts"][0]["attempted_at"]
        .as_i64()
        .context("attempted_at")?;
    assert_eq!(first["next_attempt_at"].as_i64(), Some(at + 5), "{first}");
    assert_eq!(
        read(&host, &acme, &id, "")?["failing_since"].as_i64(),
        Some(at)
    );
    run_jobs(&host)?;
    assert_eq!(receiver.log()?.len(), 1);

    host.advance_clock(5)?;
    run_jobs(&host)?;
    assert_eq!(receiver.log()?.len(), 2);
    let second = only_message(&host, &acme, &id)?;
    let at = second["attempts"][0]["attempted_at"]
        .as_i64()
        .context("attempted_at")?;
    assert_eq!(
        second["next_attempt_at"].as_i64(),
        Some(at + 300),
        "{second}"
    );
    host.advance_clock(290)?;
    run_jobs(&host)?;
    assert_eq!(receiver.log()?.len(), 2);
    host.advance_clock(10)?;
    run_jobs(&host)?;

    let log = receiver.log()?;
    assert_eq!(log.len(), 3, "{log:?}");
    let delivered = only_message(&host, &acme, &id)?;
    assert_eq!(
        (
            &delivered["status"],
            &delivered["attempt_count"],
            &delivered["next_attempt_at"]
        ),
        (&json!("delivered"), &json!(3), &Value::Null),
        "{delivered}"
    );
    let attempts = delivered["attempts"].as_array().context("attempts")?;
    let codes: Vec<&Value> = attempts.iter().rev().map(|a| &a["response_code"]).collect();
    assert_eq!(codes, [&json!(500), &json!(500), &json!(200)]);
    let statuses: Vec<&Value> = attempts.iter().rev().map(|a| &a["status"]).collect();
    assert_eq!(
        statuses,
        [&json!("failed"), &json!("failed"), &json!("succeeded")]
    );
    for attempt in attempts {
        assert_eq!(attempt["trigger"], "scheduled");
        // A local receiver answers at once: well inside the 15 s limit.
        assert!(
            attempt["duration_ms"]
                .as_i64()
                .is_some_and(|ms| (0..15_000).contains(&ms)),
            "{attempt}"
        );
    }
    assert_eq!(attempts[2]["error"], "the endpoint answered 500");
    assert_eq!(attempts[0]["error"], Value::Null);
    assert_eq!(read(&host, &acme, &id, "")?["failing_since"], Value::Null);

    // The same id and the very same bytes each time, each signed anew at
    // its own time and verified by the library.
    let event_id = text(&delivered, "event_id")?;
    assert!(log.iter().all(|d| d["id"] == event_id.as_str()), "{log:?}");
    assert!(log.iter().all(|d| d["body"] == log[0]["body"]), "{log:?}");
    assert!(log.iter().all(|d| d["v1"] == json!([true])), "{log:?}");
    assert!(
        log.iter().all(|d| d["content_type"] == "application/json"),
        "{log:?}"
    );
    let stamps: Vec<&Value> = log.iter().map(|d| &d["timestamp"]).collect();
    assert!(
        stamps[0] != stamps[1] && stamps[1] != stamps[2],
        "{stamps:?}"
    );
    let body: Value = serde_json::from_str(log[0]["body"].as_str().context("body")?)?;
    assert_eq!(body["type"], "key.created");
    assert_eq!(body["data"]["key"]["name"], "ci");
    assert!(
        body["timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with("2027-01-15T")),
        "{body}"
    );
    Ok(())
}

#[test]
fn events_reach_the_endpoints_that_take_their_type_with_data_their_schema_validates() -> Result<()>
{
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    // Any member reads the catalog; without credentials, nobody.
    let (cat_token, _) = join(
        &host,
        &acme.admin,
        &acme.id,
        "cat@example.com",
        "member",
        &[],
    )?;
    let catalog = expect(
        by(&host, &cat_token, "GET", "/v1/webhooks/event-types", None)?,
        200,
    )?;
    let anonymous = call(&host, "GET", "/v1/webhooks/event-types", None, None, &[])?;
    assert_eq!(anonymous.status, 401);
    let receiver = Receiver::start(&host)?;
    let keys = endpoint(
        &host,
        &acme,
        json!({"url": receiver.url("/keys"), "event_types": ["key.created"]}),
    )?;
    let members = endpoint(
        &host,
        &acme,
        json!({"url": receiver.url("/members"), "event_types": ["member.*"]}),
    )?;
    receiver.control(json!({"secrets": [text(&keys, "secret")?, text(&members, "secret")?]}))?;

    let key = make_key(&host, &acme, "deploy")?;
    run_jobs(&host)?;
    let log = receiver.log()?;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["path"], "/keys");
    // Verified with the keys endpoint's secret, not the other's.
    assert_eq!(log[0]["v1"], json!([true, false]));
    assert!(messages(&host, &acme, &text(&members, "id")?)?.is_empty());

    // A member joins (by invitation) and leaves; a key is revoked, which
    // neither endpoint takes.
    let (bob_token, bob) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[],
    )?;
    let path = format!("/v1/orgs/{}/members/{bob}", acme.id);
    assert_eq!(by(&host, &bob_token, "DELETE", &path, None)?.status, 204);
    let revoke = format!("/v1/keys/{}", text(&key, "name")?);
    assert_eq!(by(&host, &acme.admin, "DELETE", &revoke, None)?.status, 204);
    run_jobs(&host)?;
    let log = receiver.log()?;
    let paths: Vec<&Value> = log.iter().map(|d| &d["path"]).collect();
    assert_eq!(
        paths,
        [&json!("/keys"), &json!("/members"), &json!("/members")]
    );
    assert!(
        log[1..].iter().all(|d| d["v1"] == json!([false, true])),
        "{log:?}"
    );
    assert_eq!(messages(&host, &acme, &text(&keys, "id")?)?.len(), 1);

    let bodies: Vec<Value> = log
        .iter()
        .map(|d| serde_json::from_str(d["body"].as_str().unwrap_or_default()))
        .collect::<Result<_, _>>()?;
    let types: Vec<&Value> = bodies.iter().map(|b| &b["type"]).collect();
    assert_eq!(
        types,
        [
            &json!("key.created"),
            &json!("member.added"),
            &json!("member.removed")
        ]
    );
    assert_eq!(bodies[0]["data"]["key"]["id"], key["id"]);
    assert_eq!(
        bodies[1]["data"],
        json!({"member": {"user_id": bob, "email": "bob@example.com", "role": "member"}, "via": "invitation"})
    );
    assert_eq!(
        bodies[2]["data"],
        json!({"member": {"user_id": bob, "email": "bob@example.com", "role": "member"},
               "reason": "left", "removed_by": bob})
    );

    // Each event's data against its type's schema from the catalog, by an
    // independent JSON Schema library; and a broken one is refused.
    let mut pairs = Vec::new();
    for body in &bodies {
        let schema = schema_of(&catalog, body["type"].as_str().unwrap_or_default())?;
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        pairs.push(json!([body["data"], schema]));
    }
    let mut broken = bodies[0]["data"].clone();
    broken["key"]["roles"] = json!("admin");
    pairs.push(json!([broken, schema_of(&catalog, "key.created")?]));
    assert_eq!(validates(Value::Array(pairs))?, [true, true, true, false]);
    Ok(())
}

#[test]
fn an_endpoint_answering_410_is_disabled_as_gone_and_gets_nothing_more() -> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    let made = endpoint(&host, &acme, json!({"url": receiver.url("/gone")}))?;
    let id = text(&made, "id")?;
    receiver.control(json!({"then": 410}))?;
    make_key(&host, &acme, "one")?;
    run_jobs(&host)?;

    let ended = read(&host, &acme, &id, "")?;
    assert_eq!(
        (&ended["enabled"], &ended["disabled_reason"]),
        (&json!(false), &json!("gone")),
        "{ended}"
    );
    let message = only_message(&host, &acme, &id)?;
    assert_eq!(message["status"], "failed");
    assert_eq!(message["attempts"][0]["response_code"], 410);
    assert!(
        message["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("410")),
        "{message}"
    );

    // Later events make a failed message and no request.
    make_key(&host, &acme, "two")?;
    host.advance_clock(600)?;
    run_jobs(&host)?;
    let later = messages(&host, &acme, &id)?;
    assert_eq!(later.len(), 2, "{later:?}");
    // (Both made in the same second: ids order them, so pick by attempts.)
    let unsent: Vec<&Value> = later.iter().filter(|m| m["attempt_count"] == 0).collect();
    assert_eq!(unsent.len(), 1, "{later:?}");
    assert_eq!(unsent[0]["status"], "failed", "{later:?}");
    assert!(
        unsent[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("disabled")),
        "{later:?}"
    );
    assert_eq!(receiver.log()?.len(), 1);
    assert_eq!(delivery_jobs(&host)?, 1);
    Ok(())
}

#[test]
fn an_endpoint_failing_for_five_days_is_disabled_and_every_admin_is_mailed() -> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    join(
        &host,
        &acme.admin,
        &acme.id,
        "grace@example.com",
        "admin",
        &[],
    )?;
    join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[],
    )?;
    let receiver = Receiver::start(&host)?;
    let made = endpoint(
        &host,
        &acme,
        json!({"url": receiver.url("/down"), "event_types": ["key.*"]}),
    )?;
    let id = text(&made, "id")?;
    receiver.control(json!({"then": 503}))?;

    // One event through its whole schedule: ten attempts over about three
    // days, then the message fails; the endpoint stays on.
    make_key(&host, &acme, "first")?;
    run_jobs(&host)?;
    for wait in WAITS {
        host.advance_clock(wait)?;
        run_jobs(&host)?;
    }
    assert_eq!(receiver.log()?.len(), 10);
    let first = only_message(&host, &acme, &id)?;
    assert_eq!(
        (&first["status"], &first["attempt_count"]),
        (&json!("failed"), &json!(10))
    );
    assert!(
        first["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("the last of 10 attempts")),
        "{first}"
    );
    let failing = read(&host, &acme, &id, "")?;
    assert_eq!(failing["enabled"], true);
    let since = failing["failing_since"].as_i64().context("failing_since")?;

    // Five days after the first failure, the next failure disables it.
    host.advance_clock(5 * 86_400 - WAITS.iter().sum::<i64>())?;
    make_key(&host, &acme, "second")?;
    run_jobs(&host)?;
    let off = read(&host, &acme, &id, "")?;
    assert_eq!(
        (
            &off["enabled"],
            &off["disabled_reason"],
            &off["failing_since"]
        ),
        (&json!(false), &json!("failing"), &json!(since)),
        "{off}"
    );
    let messages_now = messages(&host, &acme, &id)?;
    assert_eq!(messages_now.len(), 2);
    assert_eq!(messages_now[0]["status"], "failed");
    for admin in ["ada@example.com", "grace@example.com"] {
        let sent = mail(&host, admin, "webhook_endpoint_disabled")?;
        let body = sent["body"].as_str().unwrap_or_default();
        assert!(
            body.contains(&id) && body.contains("the endpoint answered 503"),
            "{body}"
        );
        assert!(!body.contains("/down"), "{body}");
    }
    assert!(mail(&host, "bob@example.com", "webhook_endpoint_disabled").is_err());

    // Nothing more goes to it: a later event is a failed message.
    make_key(&host, &acme, "third")?;
    host.advance_clock(86_400)?;
    run_jobs(&host)?;
    let later = messages(&host, &acme, &id)?;
    assert_eq!(later.len(), 3);
    // (Made in the same second as the one before: ids order them.)
    let unsent: Vec<&Value> = later.iter().filter(|m| m["attempt_count"] == 0).collect();
    assert_eq!(unsent.len(), 1, "{later:?}");
    assert_eq!(unsent[0]["status"], "failed", "{later:?}");
    assert_eq!(receiver.log()?.len(), 11);
    Ok(())
}

#[test]
fn after_a_rotation_both_secrets_sign_for_a_day_then_only_the_new_one_and_v1a_throughout()
-> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    let made = endpoint(
        &host,
        &acme,
        json!({"url": receiver.url("/signed"), "event_types": ["key.created"], "v1a": true}),
    )?;
    let id = text(&made, "id")?;
    let old = text(&made, "secret")?;
    let public_key = text(&made, "public_key")?;
    assert!(public_key.starts_with("whpk_"), "{made}");
    receiver.control(json!({"secrets": [old], "public_key": public_key}))?;
    make_key(&host, &acme, "before")?;
    run_jobs(&host)?;

    let path = format!("/v1/webhooks/endpoints/{id}/secret/$rotate");
    let rotated = expect(by(&host, &acme.admin, "POST", &path, None)?, 200)?;
    let new = text(&rotated, "secret")?;
    assert_ne!(new, old);
    receiver.control(json!({"secrets": [old, new]}))?;
    host.advance_clock(3600)?;
    make_key(&host, &acme, "during")?;
    run_jobs(&host)?;

    host.advance_clock(23 * 3600 + 1)?;
    make_key(&host, &acme, "after")?;
    run_jobs(&host)?;

    let log = receiver.log()?;
    assert_eq!(log.len(), 3, "{log:?}");
    let v1s = |d: &Value| {
        d["signature"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| s.starts_with("v1,"))
            .count()
    };
    assert_eq!(log[0]["v1"], json!([true]));
    assert_eq!(v1s(&log[0]), 1);
    // Within the day: either secret verifies.
    assert_eq!(log[1]["v1"], json!([true, true]));
    assert_eq!(v1s(&log[1]), 2);
    // After it: the new one only.
    assert_eq!(log[2]["v1"], json!([false, true]));
    assert_eq!(v1s(&log[2]), 1);
    assert!(log.iter().all(|d| d["v1a"] == true), "{log:?}");
    Ok(())
}

#[test]
fn an_endpoint_on_a_private_address_no_longer_allowed_fails_without_a_request() -> Result<()> {
    // Endpoints may be on localhost only; the stored URL is then changed
    // to 127.0.0.1 (as if saved under a wider list since narrowed), which
    // the deployment's outbound rule (any http host) still lets through.
    let host = start_with("localhost", "http://*:*")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    let made = endpoint(
        &host,
        &acme,
        json!({"url": format!("http://localhost:{}/private", receiver.port)}),
    )?;
    let id = text(&made, "id")?;
    database(&host)?.execute(
        "UPDATE webhook_endpoints SET url = ?1 WHERE endpoint_id = ?2",
        [receiver.url("/private"), id.clone()],
    )?;
    make_key(&host, &acme, "ci")?;
    run_jobs(&host)?;

    assert!(receiver.log()?.is_empty());
    let message = only_message(&host, &acme, &id)?;
    assert_eq!(message["status"], "pending", "{message}");
    let attempt = &message["attempts"][0];
    assert_eq!(
        (&attempt["status"], &attempt["response_code"]),
        (&json!("failed"), &Value::Null),
        "{attempt}"
    );
    let error = attempt["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("127.0.0.1") && error.contains("webhook_endpoint_private_hosts"),
        "{error}"
    );
    assert!(!error.contains("/private"), "{error}");
    Ok(())
}
