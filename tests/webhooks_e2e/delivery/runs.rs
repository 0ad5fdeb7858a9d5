//! How the jobs runner takes deliveries: after every other kind of job,
//! only with time for a whole attempt, several at once but one at a time
//! per endpoint; the schedule counted in requests made; what the reaper
//! and the retention leave.

use anyhow::{Context, Result};
use gatehouse_tests::app::{database, org};
use serde_json::{Value, json};

use super::{
    Receiver, delivery_jobs, endpoint, make_key, messages, only_message, run_jobs, run_jobs_with,
    start, text,
};
use crate::support::T;

/// `(state, attempts)` of the job of `kind` with `key`.
fn job(host: &gatehouse_tests::TestHost, kind: &str, key: &str) -> Result<(String, i64)> {
    Ok(database(host)?.query_row(
        "SELECT state, attempts FROM jobs WHERE kind = ?1 AND idempotency_key = ?2",
        [kind, key],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?)
}

#[test]
fn mail_is_taken_before_deliveries_that_have_waited_longer_and_deliveries_need_time_for_a_whole_attempt()
-> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    endpoint(&host, &acme, json!({"url": receiver.url("/slow")}))?;
    for name in ["one", "two", "three"] {
        make_key(&host, &acme, name)?;
    }
    // A mail job due after the three deliveries (its mail is gone, so its
    // attempt ends at once, whatever the provider).
    host.advance_clock(10)?;
    database(&host)?.execute(
        "INSERT INTO jobs (id, kind, payload, idempotency_key, state, run_at, attempts, max_attempts, created_at, updated_at)
         VALUES ('job_later_mail', 'mail.send', '{\"mail_id\":\"mail_gone\"}', 'later-mail', 'pending', ?1, 0, 8, ?1, ?1)",
        [T + 10],
    )?;

    // Ten seconds cannot hold a delivery's 16: the mail runs, the
    // deliveries stay due for the next run.
    let report = run_jobs_with(&host, &json!({"max_seconds": 10}))?;
    assert_eq!(job(&host, "mail.send", "later-mail")?.1, 1, "{report}");
    assert!(receiver.log()?.is_empty());
    assert_eq!(report["remaining_due"], 3, "{report}");
    let claimed_deliveries: i64 = database(&host)?.query_row(
        "SELECT COALESCE(SUM(attempts), -1) FROM jobs WHERE kind = 'webhook.deliver'",
        [],
        |row| row.get(0),
    )?;
    assert_eq!(claimed_deliveries, 0, "{report}");

    let report = run_jobs(&host)?;
    assert_eq!(receiver.log()?.len(), 3, "{report}");
    Ok(())
}

#[test]
fn deliveries_to_different_endpoints_are_in_flight_together_and_one_at_a_time_per_endpoint()
-> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    for path in ["/a", "/b", "/c"] {
        endpoint(&host, &acme, json!({"url": receiver.url(path)}))?;
    }
    receiver.control(json!({"delay_ms": 1500}))?;
    make_key(&host, &acme, "one")?;
    make_key(&host, &acme, "two")?;
    run_jobs(&host)?;

    let log = receiver.log()?;
    assert_eq!(log.len(), 6, "{log:?}");
    let most = |field: &str| log.iter().filter_map(|d| d[field].as_i64()).max();
    // All three endpoints at once; never two to one endpoint.
    assert_eq!(most("inflight"), Some(3), "{log:?}");
    assert_eq!(most("inflight_path"), Some(1), "{log:?}");
    let statuses = statuses(&host, &acme)?;
    assert_eq!(statuses.len(), 6, "{statuses:?}");
    assert!(statuses.iter().all(|s| s == "delivered"), "{statuses:?}");
    Ok(())
}

/// Every message's status, of every endpoint of the org.
fn statuses(
    host: &gatehouse_tests::TestHost,
    acme: &gatehouse_tests::app::Org,
) -> Result<Vec<String>> {
    let listed = super::expect(
        super::by(host, &acme.admin, "GET", "/v1/webhooks/endpoints", None)?,
        200,
    )?;
    let mut statuses = Vec::new();
    for e in listed["items"].as_array().context("items")? {
        for m in messages(host, acme, &text(e, "id")?)? {
            statuses.push(text(&m, "status")?);
        }
    }
    Ok(statuses)
}

#[test]
fn a_2xx_counts_when_its_status_comes_even_if_its_body_trickles_for_longer_than_the_limit()
-> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    let made = endpoint(&host, &acme, json!({"url": receiver.url("/trickle")}))?;
    let id = text(&made, "id")?;
    receiver.control(json!({"trickle_ms": 20_000}))?;
    make_key(&host, &acme, "ci")?;
    run_jobs(&host)?;

    let message = only_message(&host, &acme, &id)?;
    assert_eq!(message["status"], "delivered", "{message}");
    let attempt = &message["attempts"][0];
    assert_eq!(
        (&attempt["status"], &attempt["response_code"]),
        (&json!("succeeded"), &json!(200)),
        "{attempt}"
    );
    // The status came at once; the body was read for a second at most.
    assert!(
        attempt["duration_ms"]
            .as_i64()
            .is_some_and(|ms| (0..15_000).contains(&ms)),
        "{attempt}"
    );
    Ok(())
}

#[test]
fn the_schedule_counts_requests_made_not_claims_of_the_job() -> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    let made = endpoint(&host, &acme, json!({"url": receiver.url("/flaky")}))?;
    let id = text(&made, "id")?;
    receiver.control(json!({"then": 500}))?;
    make_key(&host, &acme, "ci")?;
    run_jobs(&host)?;
    // Claims that made no request (lost leases, secrets that did not
    // open) count on the job, not on the message.
    database(&host)?.execute(
        "UPDATE jobs SET attempts = 6 WHERE kind = 'webhook.deliver'",
        [],
    )?;
    host.advance_clock(5)?;
    run_jobs(&host)?;

    assert_eq!(receiver.log()?.len(), 2);
    let message = only_message(&host, &acme, &id)?;
    let at = message["attempts"][0]["attempted_at"]
        .as_i64()
        .context("attempted_at")?;
    // The message's second request: the next comes 5 minutes later.
    assert_eq!(message["attempt_count"], 2, "{message}");
    assert_eq!(
        message["next_attempt_at"].as_i64(),
        Some(at + 300),
        "{message}"
    );
    Ok(())
}

#[test]
fn a_delivery_job_whose_last_claim_lapsed_without_an_outcome_fails_its_message() -> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    let made = endpoint(&host, &acme, json!({"url": receiver.url("/stopped")}))?;
    let id = text(&made, "id")?;
    receiver.control(json!({"then": 500}))?;
    make_key(&host, &acme, "ci")?;
    run_jobs(&host)?;
    // A runner took the job's last claim and stopped mid-attempt.
    database(&host)?.execute(
        "UPDATE jobs SET state = 'running', attempts = max_attempts, lease_owner = 'run_stopped',
                lease_until = ?1 WHERE kind = 'webhook.deliver'",
        [T - 1],
    )?;
    run_jobs(&host)?;

    let message = only_message(&host, &acme, &id)?;
    assert_eq!(message["status"], "failed", "{message}");
    assert!(
        message["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("runner stopped")),
        "{message}"
    );
    assert_eq!(message["next_attempt_at"], Value::Null, "{message}");
    assert_eq!(receiver.log()?.len(), 1);
    Ok(())
}

#[test]
fn attempts_and_settled_messages_are_deleted_after_30_days_and_pending_ones_kept() -> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    let made = endpoint(&host, &acme, json!({"url": receiver.url("/kept")}))?;
    let id = text(&made, "id")?;
    receiver.control(json!({"answers": [200], "then": 500}))?;
    make_key(&host, &acme, "delivered")?;
    run_jobs(&host)?;
    make_key(&host, &acme, "pending")?;
    run_jobs(&host)?;
    // The pending one's next attempt is far off.
    database(&host)?.execute(
        "UPDATE jobs SET run_at = ?1 WHERE kind = 'webhook.deliver' AND state = 'pending'",
        [T + 100 * 86_400],
    )?;
    let count = |table: &str| -> Result<i64> {
        Ok(
            database(&host)?.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                row.get(0)
            })?,
        )
    };
    assert_eq!(
        (count("webhook_messages")?, count("webhook_attempts")?),
        (2, 2)
    );

    host.advance_clock(30 * 86_400 - 60)?;
    run_jobs(&host)?;
    assert_eq!(
        (count("webhook_messages")?, count("webhook_attempts")?),
        (2, 2)
    );

    host.advance_clock(120)?;
    run_jobs(&host)?;
    // (The admin's session has expired by now: the database tells.)
    let left: String = database(&host)?.query_row(
        "SELECT status FROM webhook_messages WHERE endpoint_id = ?1",
        [&id],
        |row| row.get(0),
    )?;
    assert_eq!(left, "pending");
    assert_eq!(
        (count("webhook_messages")?, count("webhook_attempts")?),
        (1, 0)
    );
    // The pending message's job is still there (the other's, done, went
    // with the done jobs).
    assert_eq!(delivery_jobs(&host)?, 1);
    Ok(())
}
