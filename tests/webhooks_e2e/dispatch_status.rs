//! An event's status follows its handler jobs however they end: a job the
//! reaper makes dead (its runner stopped during the last attempt), a dead
//! job an operator retries and that then succeeds, a replay whose jobs
//! succeed while the round before it gives up; and nothing is handed on
//! while the signing secret is not one to sign with.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_tests::app::{database, expect, org};
use gatehouse_tests::fake_http::{self, RawRequest};
use gatehouse_tests::{TestHost, get, send};
use serde_json::{Value, json};

use crate::dispatch::{Handler, github, github_source, replay, start_dispatching, state};
use crate::support::{OPERATOR, accepted, id_of, run_jobs, sign};

/// The dispatch jobs, newest first, as the operator lists them.
fn dispatch_jobs(host: &TestHost, query: &str) -> Result<Vec<Value>> {
    let auth = format!("Bearer {OPERATOR}");
    let url = host.url(&format!("/v1/admin/jobs?kind=webhook.dispatch{query}"));
    let page = expect(get(&url, &[("authorization", &auth)])?, 200)?;
    Ok(page["items"].as_array().context("items")?.clone())
}

#[test]
fn a_handler_job_the_reaper_ends_leaves_its_event_dead_with_the_reason() -> Result<()> {
    let handler = Handler::start(200)?;
    let host = start_dispatching(
        json!([{"provider": "github", "sources": ["*"], "types": ["*"], "url": handler.url}]),
        &[],
    )?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = github_source(&host, &acme)?;
    let body = r#"{"action":"deleted","label":{"name":"wontfix"}}"#;
    let signed = sign(json!([github(
        "0b7e5f13-8b3f-11ef-9a4e-0242ac120002",
        "label",
        body
    )]))?;
    let id = id_of(&accepted(&made, &signed[0], body)?)?;
    // A runner took the job's last attempt and stopped: its lease lapsed
    // long ago, with no outcome recorded.
    let changed = database(&host)?.execute(
        "UPDATE jobs SET state = 'running', attempts = max_attempts, lease_owner = 'a-stopped-run',
                lease_until = 1 WHERE kind = 'webhook.dispatch'",
        [],
    )?;
    assert_eq!(changed, 1);

    run_jobs(&host)?;
    assert!(handler.received().is_empty());
    let (status, error) = state(&host, &acme, &id)?;
    assert_eq!(status, "dead");
    assert!(
        error.as_str().is_some_and(|e| e.contains("runner stopped")),
        "{error}"
    );
    // A replay hands it on after all.
    expect(replay(&host, &id, Some(&acme.admin))?, 202)?;
    run_jobs(&host)?;
    assert_eq!(
        state(&host, &acme, &id)?,
        (json!("dispatched"), Value::Null)
    );
    assert_eq!(handler.received().len(), 1);
    Ok(())
}

#[test]
fn a_dead_handler_job_an_operator_retries_leaves_the_event_dispatched_once_it_succeeds()
-> Result<()> {
    let steady = Handler::start(200)?;
    let failing = Handler::start(500)?;
    let host = start_dispatching(
        json!([
            {"provider": "github", "sources": ["*"], "types": ["*"], "url": steady.url},
            {"provider": "github", "sources": ["*"], "types": ["*"], "url": failing.url},
        ]),
        &[("JOB_MAX_ATTEMPTS", "1")],
    )?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = github_source(&host, &acme)?;
    let body = r#"{"action":"published","release":{"tag_name":"v1.2.0"}}"#;
    let signed = sign(json!([github(
        "1c8f6024-8b3f-11ef-9a4e-0242ac120002",
        "release",
        body
    )]))?;
    let id = id_of(&accepted(&made, &signed[0], body)?)?;
    run_jobs(&host)?;
    let (status, error) = state(&host, &acme, &id)?;
    assert_eq!(status, "dead");
    assert!(error.as_str().is_some_and(|e| e.contains("500")), "{error}");

    failing.answer(200);
    let dead = dispatch_jobs(&host, "&state=dead")?;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let job = dead[0]["id"].as_str().context("job id")?;
    let auth = format!("Bearer {OPERATOR}");
    let path = format!("/v1/admin/jobs/{job}/$retry");
    expect(
        send("POST", &host.url(&path), &[("authorization", &auth)], b"")?,
        200,
    )?;
    run_jobs(&host)?;
    // Both handlers have it now: nothing stale is left on the event.
    assert_eq!((steady.received().len(), failing.received().len()), (1, 2));
    assert_eq!(
        state(&host, &acme, &id)?,
        (json!("dispatched"), Value::Null)
    );
    Ok(())
}

#[test]
fn a_replay_is_judged_by_its_own_jobs_not_by_the_round_before_it_giving_up() -> Result<()> {
    // A handler that refuses the first message about an event and takes
    // the replay's (it had mishandled the event and wants it again).
    let received: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
    let log = received.clone();
    let addr = fake_http::serve(move |request| {
        let first = request.header("webhook-id") == request.json()["id"].as_str();
        log.lock().unwrap_or_else(|p| p.into_inner()).push(request);
        if first {
            (500, json!({"error": "not now"}))
        } else {
            (200, json!({"ok": true}))
        }
    })?;
    let host = start_dispatching(
        json!([{"provider": "github", "sources": ["*"], "types": ["*"],
                "url": format!("http://{addr}/hook")}]),
        &[("JOB_MAX_ATTEMPTS", "2")],
    )?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = github_source(&host, &acme)?;
    let body = r#"{"action":"created","check_run":{"id":4}}"#;
    let signed = sign(json!([github(
        "2d907135-8b3f-11ef-9a4e-0242ac120002",
        "check_run",
        body
    )]))?;
    let id = id_of(&accepted(&made, &signed[0], body)?)?;
    run_jobs(&host)?;
    assert_eq!(state(&host, &acme, &id)?.0, "failed");

    // Replayed while the first job still has an attempt left: in the next
    // run that attempt fails for good and the replay's job succeeds.
    let replayed = expect(replay(&host, &id, Some(&acme.admin))?, 202)?;
    assert_eq!(replayed["status"], "pending");
    run_jobs(&host)?;
    let got = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let ids: Vec<Option<&str>> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids.iter().filter(|i| **i == Some(id.as_str())).count(), 2);
    assert_eq!(
        state(&host, &acme, &id)?,
        (json!("dispatched"), Value::Null)
    );
    assert_eq!(dispatch_jobs(&host, "&state=dead")?.len(), 1);
    Ok(())
}

#[test]
fn a_handler_secret_too_short_to_sign_with_sends_nothing_says_why_and_spends_no_attempt()
-> Result<()> {
    let handler = Handler::start(200)?;
    let short = format!("whsec_{}", STANDARD.encode([5u8; 16]));
    let host = start_dispatching(
        json!([{"provider": "github", "sources": ["*"], "types": ["*"], "url": handler.url}]),
        &[("WEBHOOK_HANDLER_SECRET", &short)],
    )?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = github_source(&host, &acme)?;
    let body = r#"{"action":"opened","discussion":{"number":1}}"#;
    let other = r#"{"action":"opened","discussion":{"number":2}}"#;
    let signed = sign(json!([
        github("3ea18246-8b3f-11ef-9a4e-0242ac120002", "discussion", body),
        github("3ea18246-8b3f-11ef-9a4e-0242ac120003", "discussion", other),
    ]))?;
    let id = id_of(&accepted(&made, &signed[0], body)?)?;
    accepted(&made, &signed[1], other)?;
    // More runs than a job has attempts (8), each finding the jobs due
    // again: a misconfigured secret must not make the events dead.
    for _ in 0..10 {
        run_jobs(&host)?;
        database(&host)?.execute(
            "UPDATE jobs SET run_at = 0 WHERE kind = 'webhook.dispatch'",
            [],
        )?;
    }
    assert!(handler.received().is_empty());
    let jobs = dispatch_jobs(&host, "")?;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for job in &jobs {
        assert_eq!(
            (&job["state"], &job["attempts"]),
            (&json!("pending"), &json!(0)),
            "{job}"
        );
    }
    let (status, error) = state(&host, &acme, &id)?;
    assert_eq!(status, "failed");
    let error = error.as_str().unwrap_or_default().to_string();
    assert!(
        error.contains("webhook_handler_secret") && error.contains("24 to 64 bytes"),
        "{error}"
    );
    assert!(!error.contains(&short["whsec_".len()..]), "{error}");
    let mine = jobs
        .iter()
        .find(|j| j["payload"]["event_id"] == json!(id))
        .context("the event's job")?;
    assert_eq!(mine["last_error"], json!(error), "{jobs:?}");
    Ok(())
}

#[test]
fn a_replays_jobs_queued_before_replays_had_ids_are_sent_under_the_replays_id() -> Result<()> {
    // Migration 0024 on a database that has a replay's jobs from before
    // it: they name no webhook_id, and would go out under the event's id,
    // which a handler that deduplicates drops.
    let dir = gatehouse_tests::TempDir::new("replays-before-0024")?;
    let mut conn = rusqlite::Connection::open(dir.path().join("db.sqlite"))?;
    let all = gatehouse_host::migrate::load_dir(&gatehouse_tests::root().join("infra/migrations"))?;
    let before: Vec<_> = all.iter().filter(|m| m.version < 24).cloned().collect();
    gatehouse_host::migrate::apply(&mut conn, &before)?;
    // The rows stand alone: no org is needed to read the jobs' payloads.
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         INSERT INTO webhook_events (org_id, event_id, source_id, provider, delivery_id, payload, received_at, status)
         VALUES ('org_1', 'whe_1', 'whs_1', 'github', 'd-1', x'7b7d', 1, 'pending');
         INSERT INTO jobs (id, kind, payload, idempotency_key, state, run_at, max_attempts, created_at, updated_at) VALUES
           ('job_1', 'webhook.dispatch', '{\"event_id\":\"whe_1\",\"url\":\"http://h/\"}', 'whe_1 0 http://h/', 'done', 1, 8, 1, 1),
           ('job_2', 'webhook.dispatch', '{\"event_id\":\"whe_1\",\"url\":\"http://h/\"}', 'whe_1 replay_7 http://h/', 'pending', 1, 8, 2, 2);",
    )?;
    gatehouse_host::migrate::apply(&mut conn, &all)?;
    let payload = |id: &str| -> Result<Value> {
        let text: String =
            conn.query_row("SELECT payload FROM jobs WHERE id = ?1", [id], |r| r.get(0))?;
        Ok(serde_json::from_str(&text)?)
    };
    assert_eq!(
        payload("job_2")?,
        json!({"event_id": "whe_1", "url": "http://h/", "webhook_id": "replay_7"})
    );
    // The first round's job goes out under the event's id, as before.
    assert_eq!(
        payload("job_1")?,
        json!({"event_id": "whe_1", "url": "http://h/"})
    );
    let round: String = conn.query_row(
        "SELECT dispatch_round FROM webhook_events WHERE event_id = 'whe_1'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(round, "replay_7");
    Ok(())
}
