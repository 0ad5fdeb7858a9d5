//! Accepted deliveries handed on to the deployment's handlers
//! (`webhook_handlers`) by background jobs, which the tests run through
//! the jobs runner (`POST /v1/admin/jobs/$run`, operator token), with no
//! wait between attempts. Local servers stand in for the handlers and
//! record what they receive; each dispatch is checked as a Standard
//! Webhooks message by the `standardwebhooks` library. The app runs on
//! the real clock here, as that library checks a timestamp against its
//! own.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_tests::app::{Org, app_config, call, expect, join, org, problem};
use gatehouse_tests::fake_http::{self, RawRequest};
use gatehouse_tests::{Reply, TestHost, free_port};
use serde_json::{Value, json};
use webhooks_core::SigningSecret;

use crate::support::{
    Headers, OPERATOR, accepted, create_source, event, events, id_of, run_jobs, sign, signers,
    standard,
};

pub(crate) const GITHUB_SECRET: &str = "github secret of the dispatch tests";

/// The secret every dispatch is signed with.
pub(crate) fn handler_secret() -> Result<String> {
    Ok(SigningSecret::from_random(&[51u8; 32])?.to_whsec())
}

/// A handler on 127.0.0.1 that records every request it receives and
/// answers with the status it is set to.
pub(crate) struct Handler {
    pub(crate) url: String,
    received: Arc<Mutex<Vec<RawRequest>>>,
    status: Arc<AtomicU16>,
}

impl Handler {
    pub(crate) fn start(status: u16) -> Result<Handler> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(status));
        let (log, answer) = (received.clone(), status.clone());
        let addr = fake_http::serve(move |request| {
            log.lock().unwrap_or_else(|p| p.into_inner()).push(request);
            let status = answer.load(Ordering::SeqCst);
            let body = if status < 300 {
                json!({"ok": true})
            } else {
                json!({"error": "the handler is down"})
            };
            (status, body)
        })?;
        Ok(Handler {
            url: format!("http://{addr}/hook"),
            received,
            status,
        })
    }

    /// From now on, answer `status`.
    pub(crate) fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// The requests received so far, in order.
    pub(crate) fn received(&self) -> Vec<RawRequest> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The app with `handlers` as its `webhook_handlers`, allowed to call
/// loopback, signing with [`handler_secret`], jobs run by the operator
/// with no wait between attempts, and `more` variables.
pub(crate) fn start_dispatching(handlers: Value, more: &[(&str, &str)]) -> Result<TestHost> {
    let mut config = app_config();
    let mut env = vec![
        ("WEBHOOK_HANDLERS", handlers.to_string()),
        ("WEBHOOK_HANDLER_HOSTS", "http://127.0.0.1:*".into()),
        ("WEBHOOK_HANDLER_SECRET", handler_secret()?),
        ("OPERATOR_TOKEN", OPERATOR.into()),
        ("JOB_RETRY_BASE_SECONDS", "0".into()),
    ];
    // A variable in `more` replaces the one set here (the host reads the first).
    env.retain(|(name, _)| !more.iter().any(|(k, _)| k == name));
    env.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    config.env.extend(
        env.into_iter()
            .map(|(name, value)| (format!("SPIN_VARIABLE_{name}"), value)),
    );
    TestHost::start(config)
}

/// `POST /v1/webhooks/events/{id}/$replay` as the holder of `token`.
pub(crate) fn replay(host: &TestHost, id: &str, token: Option<&str>) -> Result<Reply> {
    let path = format!("/v1/webhooks/events/{id}/$replay");
    call(host, "POST", &path, None, token, &[])
}

/// A GitHub delivery of `event` signed by octokit.
pub(crate) fn github(delivery: &str, event: &str, body: &str) -> Value {
    json!({"op": "github", "secret": GITHUB_SECRET, "payload": body,
           "delivery": delivery, "event": event})
}

/// An org's GitHub source.
pub(crate) fn github_source(host: &TestHost, org: &Org) -> Result<Value> {
    create_source(
        host,
        org,
        json!({"provider": "github", "secrets": [GITHUB_SECRET]}),
    )
}

/// Whether the `standardwebhooks` library accepts each request as a
/// message signed with `secret`.
pub(crate) fn verified(requests: &[&RawRequest], secret: &str) -> Result<Vec<bool>> {
    let jobs: Vec<Value> = requests
        .iter()
        .map(|r| {
            let header = |name: &str| r.header(name).unwrap_or_default();
            json!({
                "op": "standard_verify", "secret": secret,
                "payload": String::from_utf8_lossy(&r.body),
                "headers": {
                    "webhook-id": header("webhook-id"),
                    "webhook-timestamp": header("webhook-timestamp"),
                    "webhook-signature": header("webhook-signature"),
                },
            })
        })
        .collect();
    let results = signers(Value::Array(jobs))?;
    Ok(results.iter().map(|r| r["ok"] == json!(true)).collect())
}

/// The request whose `webhook-id` is `id`.
fn for_event<'a>(requests: &'a [RawRequest], id: &str) -> Result<&'a RawRequest> {
    requests
        .iter()
        .find(|r| r.header("webhook-id") == Some(id))
        .with_context(|| format!("no dispatch of {id}"))
}

/// `(status, last_error)` of an event, as read one at a time.
pub(crate) fn state(host: &TestHost, org: &Org, id: &str) -> Result<(Value, Value)> {
    let read = event(host, org, id)?;
    Ok((read["status"].clone(), read["last_error"].clone()))
}

#[test]
fn a_github_delivery_is_handed_to_the_matching_handler_signed_as_standard_webhooks() -> Result<()> {
    let issues = Handler::start(200)?;
    let pulls = Handler::start(200)?;
    let billing = Handler::start(200)?;
    let host = start_dispatching(
        json!([
            {"provider": "github", "sources": ["*"], "types": ["issues.*", "push"], "url": issues.url},
            {"provider": "github", "sources": ["*"], "types": ["pull_request"], "url": pulls.url},
            {"provider": "stripe", "sources": ["*"], "types": ["*"], "url": billing.url},
            // Another source's handler: this org's deliveries are not its own.
            {"provider": "github", "sources": ["whs_00000000000000000000000000000000"], "types": ["*"], "url": billing.url},
        ]),
        &[],
    )?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = github_source(&host, &acme)?;
    let source_id = id_of(&made)?;
    let body = r#"{"action":"opened","issue":{"number":7,"title":"Ünïcode ☕"}}"#;
    // A form-encoded push: its payload is handed on as text.
    let form = "payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D";
    let (opened_delivery, push_delivery) = (
        "5e1d7c2a-8b3f-11ef-9a4e-0242ac120002",
        "6f2e8d3b-8b3f-11ef-9a4e-0242ac120002",
    );
    let signed = sign(json!([
        github(opened_delivery, "issues", body),
        github(push_delivery, "push", form),
    ]))?;
    let opened = id_of(&accepted(&made, &signed[0], body)?)?;
    let mut form_headers: Headers = signed[1].clone();
    form_headers.push((
        "Content-Type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    let pushed = id_of(&accepted(&made, &form_headers, form)?)?;
    for id in [&opened, &pushed] {
        assert_eq!(state(&host, &acme, id)?, (json!("pending"), Value::Null));
    }
    assert_eq!(events(&host, &acme, "?status=pending")?.len(), 2);

    run_jobs(&host)?;
    let got = issues.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(pulls.received().is_empty(), "{:?}", pulls.received());
    assert!(billing.received().is_empty(), "{:?}", billing.received());

    let first = for_event(&got, &opened)?;
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(first.header("content-type"), Some("application/json"));
    let stored = event(&host, &acme, &opened)?;
    assert_eq!(
        first.json(),
        json!({
            "id": opened, "org_id": acme.id, "source_id": source_id, "provider": "github",
            "event_type": "issues.opened", "delivery_id": opened_delivery,
            "received_at": stored["received_at"], "signed_at": null,
            "content_type": "application/json",
            "payload": serde_json::from_str::<Value>(body)?,
            "body_base64": STANDARD.encode(body),
        })
    );
    // The exact bytes received, whatever the JSON value re-serializes to.
    let exact = STANDARD.decode(first.json()["body_base64"].as_str().unwrap_or_default())?;
    assert_eq!(exact, body.as_bytes());
    let second = for_event(&got, &pushed)?;
    let envelope = second.json();
    assert_eq!(
        crate::support::pick(
            &envelope,
            &[
                "event_type",
                "delivery_id",
                "content_type",
                "payload",
                "body_base64"
            ]
        ),
        json!({
            "event_type": "push", "delivery_id": push_delivery,
            "content_type": "application/x-www-form-urlencoded", "payload": form,
            "body_base64": STANDARD.encode(form),
        })
    );

    // Signed by the deployment's secret, and by nothing else.
    for request in [first, second] {
        let signature = request.header("webhook-signature").unwrap_or_default();
        assert!(signature.starts_with("v1,"), "{:?}", request.headers);
        let timestamp = request.header("webhook-timestamp").unwrap_or_default();
        assert!(timestamp.parse::<i64>().is_ok(), "{:?}", request.headers);
    }
    assert_eq!(
        verified(&[first, second], &handler_secret()?)?,
        [true, true]
    );
    let stranger = SigningSecret::from_random(&[52u8; 32])?.to_whsec();
    assert_eq!(verified(&[first, second], &stranger)?, [false, false]);

    for id in [&opened, &pushed] {
        assert_eq!(state(&host, &acme, id)?, (json!("dispatched"), Value::Null));
    }
    assert_eq!(events(&host, &acme, "?status=dispatched")?.len(), 2);
    // Dispatched is final: a later run sends nothing.
    run_jobs(&host)?;
    assert_eq!(issues.received().len(), 2);
    Ok(())
}

#[test]
fn the_same_delivery_received_twice_reaches_its_handler_once() -> Result<()> {
    let handler = Handler::start(200)?;
    let host = start_dispatching(
        json!([{"provider": "github", "sources": ["*"], "types": ["*"], "url": handler.url}]),
        &[],
    )?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = github_source(&host, &acme)?;
    let body = r#"{"action":"created","comment":{"body":"LGTM"}}"#;
    let signed = sign(json!([github(
        "7a3f9e4c-8b3f-11ef-9a4e-0242ac120002",
        "issue_comment",
        body
    )]))?;
    let first = accepted(&made, &signed[0], body)?;
    let again = accepted(&made, &signed[0], body)?;
    assert_eq!(again, json!({"id": first["id"], "duplicate": true}));
    run_jobs(&host)?;
    assert_eq!(handler.received().len(), 1);

    // A redelivery after the dispatch queues nothing either.
    let late = accepted(&made, &signed[0], body)?;
    assert_eq!(late["duplicate"], true);
    run_jobs(&host)?;
    let got = handler.received();
    assert_eq!(got.len(), 1);
    let id = id_of(&first)?;
    assert_eq!(got[0].header("webhook-id"), Some(id.as_str()));
    assert_eq!(state(&host, &acme, &id)?.0, "dispatched");
    Ok(())
}

#[test]
fn a_failing_handler_leaves_the_event_failed_with_its_error_and_dead_after_the_last_attempt()
-> Result<()> {
    let failing = Handler::start(500)?;
    // Nothing listens there: the handler is unreachable.
    let unreachable = format!("http://127.0.0.1:{}/hook", free_port()?);
    let host = start_dispatching(
        json!([
            {"provider": "github", "sources": ["*"], "types": ["issues.*"], "url": failing.url},
            {"provider": "github", "sources": ["*"], "types": ["push"], "url": unreachable},
        ]),
        &[("JOB_MAX_ATTEMPTS", "2")],
    )?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = github_source(&host, &acme)?;
    let (issue, push) = (
        r#"{"action":"reopened","issue":{"number":3}}"#,
        r#"{"ref":"refs/heads/main","commits":[]}"#,
    );
    let signed = sign(json!([
        github("8b4a0f5d-8b3f-11ef-9a4e-0242ac120002", "issues", issue),
        github("9c5b1a6e-8b3f-11ef-9a4e-0242ac120002", "push", push),
    ]))?;
    let reopened = id_of(&accepted(&made, &signed[0], issue)?)?;
    let pushed = id_of(&accepted(&made, &signed[1], push)?)?;

    // The first attempt fails; the job will try again.
    run_jobs(&host)?;
    let secret = handler_secret()?;
    let short_and_secret_free = |error: &Value| {
        let text = error.as_str().unwrap_or_default();
        !text.is_empty()
            && text.len() <= 500
            && !text.contains(&secret)
            && !text.contains(&secret["whsec_".len()..])
            && !text.contains(GITHUB_SECRET)
    };
    for id in [&reopened, &pushed] {
        let (status, error) = state(&host, &acme, id)?;
        assert_eq!(status, "failed", "{id}");
        assert!(short_and_secret_free(&error), "{id}: {error}");
    }
    let (_, error) = state(&host, &acme, &reopened)?;
    assert!(error.as_str().is_some_and(|e| e.contains("500")), "{error}");
    let listed = events(&host, &acme, "?status=failed")?;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|e| short_and_secret_free(&e["last_error"])),
        "{listed:?}"
    );
    assert_eq!(failing.received().len(), 1);

    // The second and last attempt fails too: dead, still saying why.
    run_jobs(&host)?;
    for id in [&reopened, &pushed] {
        let (status, error) = state(&host, &acme, id)?;
        assert_eq!(status, "dead", "{id}");
        assert!(short_and_secret_free(&error), "{id}: {error}");
    }
    assert_eq!(events(&host, &acme, "?status=dead")?.len(), 2);
    // Dead waits for a replay: a later run does not try again.
    run_jobs(&host)?;
    assert_eq!(failing.received().len(), 2);
    assert_eq!(state(&host, &acme, &reopened)?.0, "dead");
    Ok(())
}

#[test]
fn a_handler_that_fails_once_gets_the_event_on_the_retry_and_it_is_dispatched() -> Result<()> {
    let steady = Handler::start(200)?;
    let flaky = Handler::start(502)?;
    let host = start_dispatching(
        json!([
            {"provider": "github", "sources": ["*"], "types": ["push"], "url": steady.url},
            {"provider": "github", "sources": ["*"], "types": ["push", "issues.*"], "url": flaky.url},
        ]),
        &[],
    )?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = github_source(&host, &acme)?;
    let body = r#"{"ref":"refs/heads/release","commits":[{"id":"1f2e3d"}]}"#;
    let signed = sign(json!([github(
        "f2b17ac4-8b3f-11ef-9a4e-0242ac120002",
        "push",
        body
    )]))?;
    let id = id_of(&accepted(&made, &signed[0], body)?)?;

    run_jobs(&host)?;
    let (status, error) = state(&host, &acme, &id)?;
    assert_eq!(status, "failed");
    assert!(error.as_str().is_some_and(|e| e.contains("502")), "{error}");
    flaky.answer(200);
    run_jobs(&host)?;
    assert_eq!(
        state(&host, &acme, &id)?,
        (json!("dispatched"), Value::Null)
    );
    let listed = events(&host, &acme, "")?;
    assert_eq!(
        (&listed[0]["status"], &listed[0]["last_error"]),
        (&json!("dispatched"), &Value::Null)
    );
    assert_eq!((steady.received().len(), flaky.received().len()), (1, 2));
    Ok(())
}

#[test]
fn replaying_a_dead_event_after_its_handler_recovers_dispatches_it_to_every_matching_handler()
-> Result<()> {
    let steady = Handler::start(200)?;
    let flaky = Handler::start(503)?;
    let host = start_dispatching(
        json!([
            {"provider": "github", "sources": ["*"], "types": ["issues.*"], "url": steady.url},
            {"provider": "github", "sources": ["*"], "types": ["*"], "url": flaky.url},
        ]),
        &[("JOB_MAX_ATTEMPTS", "1")],
    )?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = github_source(&host, &acme)?;
    let body = r#"{"action":"closed","issue":{"number":9}}"#;
    let signed = sign(json!([github(
        "ad6c2b7f-8b3f-11ef-9a4e-0242ac120002",
        "issues",
        body
    )]))?;
    let id = id_of(&accepted(&made, &signed[0], body)?)?;
    run_jobs(&host)?;
    let (status, error) = state(&host, &acme, &id)?;
    assert_eq!(status, "dead");
    assert!(error.as_str().is_some_and(|e| !e.is_empty()), "{error}");

    flaky.answer(200);
    let replayed = expect(replay(&host, &id, Some(&acme.admin))?, 202)?;
    assert_eq!(
        (
            &replayed["id"],
            &replayed["status"],
            &replayed["event_type"]
        ),
        (&json!(id), &json!("pending"), &json!("issues.closed")),
        "{replayed}"
    );
    assert!(replayed.get("payload").is_none(), "{replayed}");
    assert_eq!(state(&host, &acme, &id)?.0, "pending");

    run_jobs(&host)?;
    assert_eq!(
        state(&host, &acme, &id)?,
        (json!("dispatched"), Value::Null)
    );
    let (again, recovered) = (steady.received(), flaky.received());
    assert_eq!((again.len(), recovered.len()), (2, 2));
    // A replay is a new message about the same event: its own webhook-id
    // (one for the whole replay), so a handler that drops a message id it
    // has seen still takes it; the envelope's `id` stays the event's.
    let first_round: Vec<_> = [&again[0], &recovered[0]]
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(first_round, [Some(id.as_str()); 2]);
    let replay_id = again[1].header("webhook-id").unwrap_or_default();
    assert!(crate::support::is_id(replay_id, "whr_"), "{replay_id}");
    assert_eq!(recovered[1].header("webhook-id"), Some(replay_id));
    for request in again.iter().chain(&recovered) {
        assert_eq!(request.json()["id"], json!(id));
    }
    assert_eq!(again[0].json(), again[1].json());
    let all: Vec<&RawRequest> = again.iter().chain(&recovered).collect();
    assert_eq!(verified(&all, &handler_secret()?)?, [true; 4]);
    Ok(())
}

#[test]
fn replay_is_a_conflict_without_a_matching_handler_and_only_the_orgs_admins_may_replay()
-> Result<()> {
    let handler = Handler::start(200)?;
    let host = start_dispatching(
        json!([{"provider": "github", "sources": ["*"], "types": ["push"], "url": handler.url}]),
        &[],
    )?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let globex = org(&host, "eve@example.com", "globex")?;
    let made = github_source(&host, &acme)?;
    let (issue, push) = (
        r#"{"action":"opened","issue":{"number":1}}"#,
        r#"{"ref":"refs/heads/main"}"#,
    );
    let signed = sign(json!([
        github("be7d3c80-8b3f-11ef-9a4e-0242ac120002", "issues", issue),
        github("cf8e4d91-8b3f-11ef-9a4e-0242ac120002", "push", push),
    ]))?;
    let unhandled = id_of(&accepted(&made, &signed[0], issue)?)?;
    let pushed = id_of(&accepted(&made, &signed[1], push)?)?;

    let (code, _, _) = problem(replay(&host, &unhandled, Some(&acme.admin))?, 409)?;
    assert_eq!(code, "conflict");
    assert_eq!(state(&host, &acme, &unhandled)?.0, "received");

    let (bob, _) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[],
    )?;
    assert_eq!(
        problem(replay(&host, &pushed, Some(&bob))?, 403)?.0,
        "forbidden"
    );
    for token in [None, Some("ghs_not-a-session")] {
        let reply = replay(&host, &pushed, token)?;
        assert_eq!(problem(reply, 401)?.0, "unauthenticated", "{token:?}");
    }
    let theirs = replay(&host, &pushed, Some(&globex.admin))?;
    assert_eq!(problem(theirs, 404)?.0, "not_found");
    let never = format!("whe_{}", "0".repeat(32));
    let reply = replay(&host, &never, Some(&acme.admin))?;
    assert_eq!(problem(reply, 404)?.0, "not_found");

    // None of the refused replays queued anything.
    run_jobs(&host)?;
    assert_eq!(handler.received().len(), 1);
    assert_eq!(state(&host, &acme, &pushed)?.0, "dispatched");
    assert_eq!(state(&host, &acme, &unhandled)?.0, "received");
    Ok(())
}

#[test]
fn an_event_no_handler_subscribes_to_stays_received_and_nothing_is_sent() -> Result<()> {
    let github_handler = Handler::start(200)?;
    let invoices = Handler::start(200)?;
    let host = start_dispatching(
        json!([
            {"provider": "github", "sources": ["*"], "types": ["issues.*", "push"], "url": github_handler.url},
            {"provider": "standard", "sources": ["*"], "types": ["invoice.*"], "url": invoices.url},
        ]),
        &[],
    )?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = github_source(&host, &acme)?;
    let (ping, bare) = (
        r#"{"zen":"Design for failure.","hook_id":1}"#,
        r#"{"issue":{"number":2}}"#,
    );
    let signed = sign(json!([
        github("d09f5ea2-8b3f-11ef-9a4e-0242ac120002", "ping", ping),
        // `issues` without an action is not `issues.*`.
        github("e1a06fb3-8b3f-11ef-9a4e-0242ac120002", "issues", bare),
    ]))?;
    let mut received = vec![
        id_of(&accepted(&made, &signed[0], ping)?)?,
        id_of(&accepted(&made, &signed[1], bare)?)?,
    ];
    // A Standard Webhooks event without a type matches `*` only.
    let secret = SigningSecret::from_random(&[53u8; 32])?.to_whsec();
    let standard_source = create_source(
        &host,
        &acme,
        json!({"provider": "standard", "secrets": [secret]}),
    )?;
    let untyped = r#"{"data":{"invoice":"in_1"}}"#;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let headers = standard(&secret, "msg_untyped_1", untyped, now)?;
    received.push(id_of(&accepted(&standard_source, &headers, untyped)?)?);

    let types: Vec<Value> = received
        .iter()
        .map(|id| Ok(event(&host, &acme, id)?["event_type"].clone()))
        .collect::<Result<_>>()?;
    assert_eq!(types, [json!("ping"), json!("issues"), Value::Null]);
    for id in &received {
        assert_eq!(state(&host, &acme, id)?, (json!("received"), Value::Null));
    }
    run_jobs(&host)?;
    assert!(github_handler.received().is_empty());
    assert!(invoices.received().is_empty());
    assert_eq!(events(&host, &acme, "?status=received")?.len(), 3);
    Ok(())
}

#[test]
fn an_event_without_a_type_goes_only_to_a_handler_taking_every_type() -> Result<()> {
    let every = Handler::start(200)?;
    let invoices = Handler::start(200)?;
    let host = start_dispatching(
        json!([
            {"provider": "standard", "sources": ["*"], "types": ["*"], "url": every.url},
            {"provider": "standard", "sources": ["*"], "types": ["invoice.*"], "url": invoices.url},
        ]),
        &[],
    )?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let secret = SigningSecret::from_random(&[54u8; 32])?.to_whsec();
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "standard", "secrets": [secret]}),
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let (untyped, paid) = (
        r#"{"data":{"n":1}}"#,
        r#"{"type":"invoice.paid","data":{"n":2}}"#,
    );
    let untyped_id = id_of(&accepted(
        &made,
        &standard(&secret, "msg_a", untyped, now)?,
        untyped,
    )?)?;
    let paid_id = id_of(&accepted(
        &made,
        &standard(&secret, "msg_b", paid, now)?,
        paid,
    )?)?;

    run_jobs(&host)?;
    let (to_every, to_invoices) = (every.received(), invoices.received());
    assert_eq!((to_every.len(), to_invoices.len()), (2, 1));
    let untyped_sent = for_event(&to_every, &untyped_id)?.json();
    assert_eq!(
        (&untyped_sent["event_type"], &untyped_sent["delivery_id"]),
        (&Value::Null, &json!("msg_a"))
    );
    assert!(untyped_sent["signed_at"].is_i64(), "{untyped_sent}");
    assert_eq!(
        for_event(&to_invoices, &paid_id)?.json()["event_type"],
        "invoice.paid"
    );
    for id in [&untyped_id, &paid_id] {
        assert_eq!(state(&host, &acme, id)?.0, "dispatched");
    }
    Ok(())
}
