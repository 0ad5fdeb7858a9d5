//! What becomes of deliveries when their endpoint or their org changes:
//! turned off, deleted, on again and recovered; and where secrets never
//! show.

use anyhow::{Context, Result};
use gatehouse_tests::app::{database, expect, org};
use gatehouse_tests::get;
use serde_json::json;

use super::{
    OPERATOR, Receiver, by, delivery_jobs, endpoint, make_key, messages, only_message, read,
    run_jobs, start, text,
};
use crate::support::T;

#[test]
fn deleting_an_org_deletes_its_webhook_rows_and_its_pending_retry_sends_nothing() -> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    endpoint(&host, &acme, json!({"url": receiver.url("/acme")}))?;
    receiver.control(json!({"answers": [500], "then": 200}))?;
    make_key(&host, &acme, "ci")?;
    run_jobs(&host)?;
    assert_eq!(receiver.log()?.len(), 1);

    let path = format!("/v1/orgs/{}", acme.id);
    assert_eq!(by(&host, &acme.admin, "DELETE", &path, None)?.status, 204);
    let db = database(&host)?;
    for table in [
        "webhook_endpoints",
        "webhook_messages",
        "webhook_attempts",
        "org_events",
        "orgs",
    ] {
        let left: i64 = db.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE org_id = ?1"),
            [&acme.id],
            |row| row.get(0),
        )?;
        assert_eq!(left, 0, "{table}");
    }

    // The retry comes due, finds nothing and ends without a request.
    host.advance_clock(5)?;
    let report = run_jobs(&host)?;
    assert_eq!(receiver.log()?.len(), 1, "{report}");
    let state: String = db.query_row(
        "SELECT state FROM jobs WHERE kind = 'webhook.deliver'",
        [],
        |row| row.get(0),
    )?;
    assert_eq!(state, "done");
    Ok(())
}

#[test]
fn a_pending_retry_to_an_endpoint_turned_off_or_deleted_since_sends_nothing() -> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    let off = text(
        &endpoint(&host, &acme, json!({"url": receiver.url("/off")}))?,
        "id",
    )?;
    let deleted = text(
        &endpoint(&host, &acme, json!({"url": receiver.url("/deleted")}))?,
        "id",
    )?;
    receiver.control(json!({"answers": [500, 500], "then": 200}))?;
    make_key(&host, &acme, "ci")?;
    run_jobs(&host)?;
    assert_eq!(receiver.log()?.len(), 2);

    let patch = format!("/v1/webhooks/endpoints/{off}");
    let patched = by(
        &host,
        &acme.admin,
        "PATCH",
        &patch,
        Some(&json!({"enabled": false})),
    )?;
    expect(patched, 200)?;
    let gone = format!("/v1/webhooks/endpoints/{deleted}");
    assert_eq!(by(&host, &acme.admin, "DELETE", &gone, None)?.status, 204);
    host.advance_clock(5)?;
    run_jobs(&host)?;

    assert_eq!(receiver.log()?.len(), 2);
    let message = only_message(&host, &acme, &off)?;
    assert_eq!(message["status"], "failed", "{message}");
    assert_eq!(message["attempt_count"], 1, "{message}");
    let status: String = database(&host)?.query_row(
        "SELECT status FROM webhook_messages WHERE endpoint_id = ?1",
        [&deleted],
        |row| row.get(0),
    )?;
    assert_eq!(status, "failed");
    Ok(())
}

#[test]
fn events_while_an_endpoint_is_off_are_failed_messages_that_a_recovery_sends_once_it_is_on()
-> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    let made = endpoint(&host, &acme, json!({"url": receiver.url("/later")}))?;
    let id = text(&made, "id")?;
    receiver.control(json!({"secrets": [text(&made, "secret")?]}))?;
    let path = format!("/v1/webhooks/endpoints/{id}");
    expect(
        by(
            &host,
            &acme.admin,
            "PATCH",
            &path,
            Some(&json!({"enabled": false})),
        )?,
        200,
    )?;

    make_key(&host, &acme, "while-off")?;
    run_jobs(&host)?;
    assert!(receiver.log()?.is_empty());
    assert_eq!(delivery_jobs(&host)?, 0);
    let missed = only_message(&host, &acme, &id)?;
    assert_eq!(missed["status"], "failed", "{missed}");
    assert!(
        missed["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("disabled")),
        "{missed}"
    );

    host.advance_clock(60)?;
    expect(
        by(
            &host,
            &acme.admin,
            "PATCH",
            &path,
            Some(&json!({"enabled": true})),
        )?,
        200,
    )?;
    let recover = format!("{path}/$recover");
    expect(
        by(
            &host,
            &acme.admin,
            "POST",
            &recover,
            Some(&json!({"since": T - 60})),
        )?,
        202,
    )?;
    run_jobs(&host)?;

    let log = receiver.log()?;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["v1"], json!([true]));
    let delivered = only_message(&host, &acme, &id)?;
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    assert_eq!(
        delivered["attempts"][0]["trigger"], "recover",
        "{delivered}"
    );
    assert_eq!(messages(&host, &acme, &id)?.len(), 1);
    Ok(())
}

#[test]
fn secrets_show_neither_in_the_jobs_listing_nor_in_attempts() -> Result<()> {
    let host = start("127.0.0.1")?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let receiver = Receiver::start(&host)?;
    let made = endpoint(
        &host,
        &acme,
        json!({"url": receiver.url("/quiet"), "v1a": true}),
    )?;
    let id = text(&made, "id")?;
    receiver.control(json!({"answers": [500], "then": 200}))?;
    make_key(&host, &acme, "ci")?;
    run_jobs(&host)?;
    host.advance_clock(5)?;
    run_jobs(&host)?;

    let (secret, signing_key): (String, String) = database(&host)?.query_row(
        "SELECT secret, signing_key FROM webhook_endpoints WHERE endpoint_id = ?1",
        [&id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let plain = text(&made, "secret")?;
    let auth = format!("Bearer {OPERATOR}");
    let jobs = expect(
        get(
            &host.url("/v1/admin/jobs?kind=webhook.deliver"),
            &[("authorization", &auth)],
        )?,
        200,
    )?;
    assert_eq!(
        jobs["items"].as_array().context("items")?.len(),
        1,
        "{jobs}"
    );
    let message = only_message(&host, &acme, &id)?;
    assert_eq!(message["attempts"].as_array().map(Vec::len), Some(2));
    let endpoint_now = read(&host, &acme, &id, "")?;
    for shown in [jobs.to_string(), message.to_string()] {
        for hidden in [
            plain.as_str(),
            plain.trim_start_matches("whsec_"),
            secret.as_str(),
            signing_key.as_str(),
            "whsec_",
        ] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
    }
    assert!(!endpoint_now.to_string().contains(&secret));
    Ok(())
}
