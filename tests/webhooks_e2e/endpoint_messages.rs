//! The messages an endpoint was sent, read with their attempts, resent
//! one at a time and recovered since a time, each by a delivery job that
//! the operator's job listing shows.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use gatehouse_tests::app::{database, expect, join, org, problem};
use gatehouse_tests::fake_http::{self, RawRequest};
use serde_json::{Value, json};

use super::{
    LOCAL, PUBLIC, by, create, delivery_jobs, id_of, invalid, items, pair, patch, read,
    record_message, start,
};
use crate::support::{T, pick, run_jobs};

#[test]
fn messages_are_listed_newest_first_with_their_attempts_and_one_is_resent_by_a_job() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let id = id_of(&create(&host, &acme, json!({"url": LOCAL}))?)?;
    let other = id_of(&create(&host, &acme, json!({"url": PUBLIC}))?)?;
    let failed = record_message(
        &host,
        &acme,
        &id,
        1,
        "failed",
        T - 7200,
        &[
            ("failed", Some(503), "scheduled", T - 7200),
            ("failed", None, "scheduled", T - 7195),
        ],
    )?;
    let delivered = record_message(
        &host,
        &acme,
        &id,
        2,
        "delivered",
        T - 3600,
        &[("succeeded", Some(204), "scheduled", T - 3600)],
    )?;
    let pending = record_message(&host, &acme, &id, 3, "pending", T - 60, &[])?;
    record_message(&host, &acme, &other, 4, "failed", T - 30, &[])?;

    let messages = format!("/v1/webhooks/endpoints/{id}/messages");
    let all = items(&read(&host, &acme, &id, "/messages")?)?;
    let order: Vec<Value> = all.iter().map(|m| m["id"].clone()).collect();
    assert_eq!(order, [json!(pending), json!(delivered), json!(failed)]);
    assert_eq!(
        pick(
            &all[2],
            &[
                "endpoint_id",
                "event_id",
                "event_type",
                "status",
                "attempt_count",
                "last_error",
                "created_at"
            ]
        ),
        json!({"endpoint_id": id, "event_id": format!("evt_{:032x}", 1), "event_type": "quota.threshold_reached",
               "status": "failed", "attempt_count": 2, "last_error": "the endpoint answered 503",
               "created_at": T - 7200})
    );
    for (status, expected) in [
        ("failed", &failed),
        ("delivered", &delivered),
        ("pending", &pending),
    ] {
        let only = items(&read(
            &host,
            &acme,
            &id,
            &format!("/messages?status={status}"),
        )?)?;
        assert_eq!(only.len(), 1, "{status}");
        assert_eq!(&only[0]["id"], expected, "{status}");
    }
    let first = expect(
        by(
            &host,
            &acme.admin,
            "GET",
            &format!("{messages}?limit=2"),
            None,
        )?,
        200,
    )?;
    let cursor = first["next_cursor"].as_str().context("next_cursor")?;
    let rest = read(
        &host,
        &acme,
        &id,
        &format!("/messages?limit=2&cursor={cursor}"),
    )?;
    assert_eq!(items(&rest)?.len(), 1);
    assert_eq!(items(&rest)?[0]["id"], failed.as_str());

    // One message with its attempts, newest first.
    let detail = read(&host, &acme, &id, &format!("/messages/{failed}"))?;
    assert_eq!(
        detail["attempts"],
        json!([
            {"id": format!("atmpt_{:016x}{:016x}", 1, 1), "status": "failed", "response_code": null,
             "duration_ms": 42, "error": "the endpoint answered 503", "trigger": "scheduled",
             "attempted_at": T - 7195},
            {"id": format!("atmpt_{:016x}{:016x}", 1, 0), "status": "failed", "response_code": 503,
             "duration_ms": 42, "error": "the endpoint answered 503", "trigger": "scheduled",
             "attempted_at": T - 7200},
        ])
    );
    // A message of another endpoint is not found under this one.
    let reply = by(
        &host,
        &acme.admin,
        "GET",
        &format!("/v1/webhooks/endpoints/{other}/messages/{failed}"),
        None,
    )?;
    assert_eq!(problem(reply, 404)?.0, "not_found");

    // Resent: pending again (on a fresh schedule, so its attempt count is
    // the delivery engine's to reset), with a delivery job queued as a resend.
    let resend = format!("{messages}/{failed}/$resend");
    let resent = expect(by(&host, &acme.admin, "POST", &resend, None)?, 202)?;
    assert_eq!(
        pick(&resent, &["id", "status"]),
        json!({"id": failed, "status": "pending"})
    );
    assert_eq!(
        delivery_jobs(&host)?,
        [(failed.clone(), "resend".to_string())]
    );
    // A delivered one may be sent again too, by a job of its own.
    expect(
        by(
            &host,
            &acme.admin,
            "POST",
            &format!("{messages}/{delivered}/$resend"),
            None,
        )?,
        202,
    )?;
    // A pending one is held by a job already, which retries it on its
    // schedule: a second job would send it on a second schedule.
    for message in [&failed, &pending] {
        let path = format!("{messages}/{message}/$resend");
        let reply = by(&host, &acme.admin, "POST", &path, None)?;
        assert_eq!(
            problem(reply, 409)?,
            ("conflict".into(), String::new(), "message_pending".into()),
            "{message}"
        );
    }
    let mut expected = vec![
        (failed.clone(), "resend".to_string()),
        (delivered.clone(), "resend".to_string()),
    ];
    expected.sort();
    assert_eq!(delivery_jobs(&host)?, expected);
    let unknown = format!("{messages}/msg_{:032x}/$resend", 99);
    let reply = by(&host, &acme.admin, "POST", &unknown, None)?;
    assert_eq!(problem(reply, 404)?.0, "not_found");

    // Not to a disabled endpoint; a deleted one is not found, as on its
    // other routes, though its messages stay readable.
    expect(patch(&host, &acme, &id, json!({"enabled": false}))?, 200)?;
    let reply = by(&host, &acme.admin, "POST", &resend, None)?;
    assert_eq!(
        problem(reply, 409)?,
        ("conflict".into(), String::new(), "endpoint_disabled".into())
    );
    let path = format!("/v1/webhooks/endpoints/{id}");
    assert_eq!(by(&host, &acme.admin, "DELETE", &path, None)?.status, 204);
    let reply = by(&host, &acme.admin, "POST", &resend, None)?;
    assert_eq!(problem(reply, 404)?.0, "not_found");
    let reply = by(
        &host,
        &acme.admin,
        "POST",
        &format!("{path}/$recover"),
        Some(&json!({"since": T - 3 * 3600})),
    )?;
    assert_eq!(problem(reply, 404)?.0, "not_found");
    assert_eq!(items(&read(&host, &acme, &id, "/messages")?)?.len(), 3);
    assert_eq!(
        read(&host, &acme, &id, &format!("/messages/{failed}"))?["attempts"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(delivery_jobs(&host)?.len(), 2);
    Ok(())
}

#[test]
fn recovering_sends_again_every_failed_message_since_a_time() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let id = id_of(&create(&host, &acme, json!({"url": LOCAL}))?)?;
    let other = id_of(&create(&host, &acme, json!({"url": PUBLIC}))?)?;
    let hour_ago = record_message(&host, &acme, &id, 1, "failed", T - 3600, &[])?;
    let two_hours_ago = record_message(&host, &acme, &id, 2, "failed", T - 7200, &[])?;
    let two_days_ago = record_message(&host, &acme, &id, 3, "failed", T - 2 * 86_400, &[])?;
    let delivered = record_message(&host, &acme, &id, 4, "delivered", T - 600, &[])?;
    let pending = record_message(&host, &acme, &id, 5, "pending", T - 300, &[])?;
    let elsewhere = record_message(&host, &acme, &other, 6, "failed", T - 600, &[])?;
    let recover = format!("/v1/webhooks/endpoints/{id}/$recover");

    // Unix seconds or RFC 3339; within the last 14 days, in the past.
    let refused = [
        (
            json!({"since": T - 15 * 86_400}),
            pair("/since", "since_too_old"),
        ),
        (
            json!({"since": "2026-12-01T00:00:00Z"}),
            pair("/since", "since_too_old"),
        ),
        (
            json!({"since": T + 3600}),
            pair("/since", "since_in_future"),
        ),
        (
            json!({"since": "yesterday"}),
            pair("/since", "invalid_time"),
        ),
        (
            json!({"since": T - 3600, "until": "soon"}),
            pair("/until", "invalid_time"),
        ),
        (
            json!({"since": T - 3600, "until": T - 7200}),
            pair("/until", "until_before_since"),
        ),
        (json!({"since": 1.5}), pair("/since", "invalid")),
        (json!({"until": T}), pair("/since", "required")),
    ];
    for (body, expected) in &refused {
        let reply = by(&host, &acme.admin, "POST", &recover, Some(body))?;
        assert_eq!(invalid(reply)?, *expected, "{body}");
    }
    assert!(delivery_jobs(&host)?.is_empty());

    // Since 3 hours before T, until 90 minutes before it: one message.
    let window = json!({"since": "2027-01-15T05:00:00Z", "until": T - 5400});
    assert_eq!(
        T, 1_800_000_000,
        "the RFC 3339 times below are relative to T"
    );
    let answer = expect(
        by(&host, &acme.admin, "POST", &recover, Some(&window))?,
        202,
    )?;
    assert_eq!(
        answer,
        json!({"queued": 1, "more": false, "since": T - 3 * 3600, "until": T - 5400})
    );
    assert_eq!(
        delivery_jobs(&host)?,
        [(two_hours_ago.clone(), "recover".to_string())]
    );

    // Since three days ago: the rest of the failed ones, not those of other endpoints.
    let answer = expect(
        by(
            &host,
            &acme.admin,
            "POST",
            &recover,
            Some(&json!({"since": T - 3 * 86_400})),
        )?,
        202,
    )?;
    assert_eq!(
        pick(&answer, &["queued", "more"]),
        json!({"queued": 2, "more": false})
    );
    let mut expected: Vec<(String, String)> = [&two_hours_ago, &hour_ago, &two_days_ago]
        .iter()
        .map(|m| (m.to_string(), "recover".to_string()))
        .collect();
    expected.sort();
    assert_eq!(delivery_jobs(&host)?, expected);
    let status = |m: &str, e: &str| -> Result<Value> {
        Ok(read(&host, &acme, e, &format!("/messages/{m}"))?["status"].clone())
    };
    for m in [&hour_ago, &two_hours_ago, &two_days_ago, &pending] {
        assert_eq!(status(m, &id)?, "pending", "{m}");
    }
    assert_eq!(status(&delivered, &id)?, "delivered");
    assert_eq!(status(&elsewhere, &other)?, "failed");
    // Nothing failed is left: a second recovery queues nothing.
    let again = expect(
        by(
            &host,
            &acme.admin,
            "POST",
            &recover,
            Some(&json!({"since": T - 3 * 86_400})),
        )?,
        202,
    )?;
    assert_eq!(again["queued"], 0);

    // Not for a disabled endpoint.
    let other_recover = format!("/v1/webhooks/endpoints/{other}/$recover");
    expect(patch(&host, &acme, &other, json!({"enabled": false}))?, 200)?;
    let reply = by(
        &host,
        &acme.admin,
        "POST",
        &other_recover,
        Some(&json!({"since": T - 3600})),
    )?;
    assert_eq!(
        problem(reply, 409)?,
        ("conflict".into(), String::new(), "endpoint_disabled".into())
    );
    assert_eq!(status(&elsewhere, &other)?, "failed");
    assert_eq!(delivery_jobs(&host)?.len(), 3);
    Ok(())
}

/// The attempts of a message as `(trigger, status)`, oldest first.
fn attempts(detail: &Value) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = detail["attempts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    let text = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                    (text("trigger"), text("status"))
                })
                .collect()
        })
        .unwrap_or_default();
    all.reverse();
    all
}

#[test]
fn a_resent_and_a_recovered_message_reach_the_endpoint_again_with_their_trigger() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    // A receiver that records what it gets and answers as it is set to.
    let received: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
    let status = Arc::new(AtomicU16::new(410));
    let (log, answer) = (received.clone(), status.clone());
    let addr = fake_http::serve(move |request| {
        log.lock().unwrap_or_else(|p| p.into_inner()).push(request);
        (answer.load(Ordering::SeqCst), json!({}))
    })?;
    let url = format!("http://{addr}/hooks");
    let id = id_of(&create(
        &host,
        &acme,
        json!({"url": url, "event_types": ["member.added"]}),
    )?)?;
    join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[],
    )?;
    let listed = items(&read(&host, &acme, &id, "/messages")?)?;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let message = listed[0]["id"].as_str().context("id")?.to_string();
    let event_id = listed[0]["event_id"].clone();
    let detail = format!("/messages/{message}");

    // The first attempt is answered 410 Gone: the message fails and the
    // endpoint is turned off, so no job holds the message. Once the
    // receiver is back and the endpoint on, a resend delivers.
    run_jobs(&host)?;
    let first = read(&host, &acme, &id, &detail)?;
    assert_eq!(first["status"], "failed", "{first}");
    assert_eq!(
        attempts(&first),
        [("scheduled".to_string(), "failed".to_string())]
    );
    status.store(200, Ordering::SeqCst);
    expect(patch(&host, &acme, &id, json!({"enabled": true}))?, 200)?;
    let resend = format!("/v1/webhooks/endpoints/{id}/messages/{message}/$resend");
    expect(by(&host, &acme.admin, "POST", &resend, None)?, 202)?;
    run_jobs(&host)?;
    let after = read(&host, &acme, &id, &detail)?;
    assert_eq!(after["status"], "delivered", "{after}");
    assert_eq!(
        attempts(&after),
        [
            ("scheduled".to_string(), "failed".to_string()),
            ("resend".to_string(), "succeeded".to_string())
        ],
        "{after}"
    );

    // Recorded as failed (as when the schedule runs out), then recovered.
    database(&host)?.execute(
        "UPDATE webhook_messages SET status = 'failed' WHERE message_id = ?1",
        [&message],
    )?;
    let recover = format!("/v1/webhooks/endpoints/{id}/$recover");
    let recovered = expect(
        by(
            &host,
            &acme.admin,
            "POST",
            &recover,
            Some(&json!({"since": T - 60})),
        )?,
        202,
    )?;
    assert_eq!(recovered["queued"], 1);
    run_jobs(&host)?;
    let last = read(&host, &acme, &id, &detail)?;
    assert_eq!(last["status"], "delivered", "{last}");
    assert_eq!(
        attempts(&last)[2..],
        [("recover".to_string(), "succeeded".to_string())],
        "{last}"
    );
    // Every delivery was the same message: one webhook-id, the event's.
    let ids: Vec<String> = received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|r| r.header("webhook-id").unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(
        ids.iter().all(|i| json!(i) == event_id),
        "{ids:?} {event_id}"
    );
    Ok(())
}

#[test]
fn a_recovery_queues_at_most_a_thousand_messages_and_says_more_are_left() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let id = id_of(&create(&host, &acme, json!({"url": PUBLIC}))?)?;
    // 1,001 failed messages, one a second before T.
    database(&host)?.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001)
         INSERT INTO webhook_messages (org_id, message_id, endpoint_id, event_id, event_type,
                                       status, attempts, created_at, updated_at)
         SELECT ?1, printf('msg_%032x', i), ?2, printf('evt_%032x', i),
                'quota.threshold_reached', 'failed', 10, ?3 - i, ?3 - i FROM n",
        rusqlite::params![acme.id, id, T],
    )?;
    let recover = format!("/v1/webhooks/endpoints/{id}/$recover");
    let since = json!({"since": T - 86_400});
    let first = expect(by(&host, &acme.admin, "POST", &recover, Some(&since))?, 202)?;
    assert_eq!(
        pick(&first, &["queued", "more"]),
        json!({"queued": 1000, "more": true})
    );
    let failed = |db: &rusqlite::Connection| -> Result<Vec<String>> {
        let mut query = db.prepare(
            "SELECT message_id FROM webhook_messages WHERE endpoint_id = ?1 AND status = 'failed'",
        )?;
        let ids = query
            .query_map([&id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    };
    // Oldest first: the newest is left.
    assert_eq!(failed(&database(&host)?)?, [format!("msg_{:032x}", 1)]);
    let second = expect(by(&host, &acme.admin, "POST", &recover, Some(&since))?, 202)?;
    assert_eq!(
        pick(&second, &["queued", "more"]),
        json!({"queued": 1, "more": false})
    );
    assert!(failed(&database(&host)?)?.is_empty());
    Ok(())
}
