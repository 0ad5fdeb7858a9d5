//! What the ingest keeps once and which credentials it takes: a signed
//! body replayed under a new id by GitHub or Jira (whose signature covers
//! neither a timestamp nor the delivery id) is the first event again,
//! counted as `replayed_body`, unless the source turned that off; and
//! Azure DevOps Basic credentials with an empty user name, as Azure DevOps
//! allows.

use anyhow::{Context, Result};
use gatehouse_tests::app::{database, org};
use serde_json::json;
use webhooks_core::SigningSecret;

use crate::support::{
    T, accepted, create_source, event, events, id_of, patch_source, pick, refused, sign, source,
    standard, start,
};

#[test]
fn a_jira_body_replayed_under_a_new_identifier_is_the_first_event_and_stores_nothing() -> Result<()>
{
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let secret = "jira webhook secret of the ingest tests";
    let jira = create_source(
        &host,
        &acme,
        json!({"provider": "jira", "secrets": [secret]}),
    )?;
    let body =
        r#"{"timestamp":1800000000000,"webhookEvent":"jira:issue_updated","issue":{"key":"GH-7"}}"#;
    let job = |identifier: &str| json!({"op": "jira", "secret": secret, "payload": body, "identifier": identifier});
    let signed = sign(json!([job("101"), job("102"), job("103")]))?;
    let first = accepted(&jira, &signed[0], body)?;
    assert_eq!(first["duplicate"], false);
    // X-Atlassian-Webhook-Identifier is not signed: a captured delivery
    // sent again under other identifiers is the same event.
    for replay in &signed[1..] {
        let again = accepted(&jira, replay, body)?;
        assert_eq!(again, json!({"id": first["id"], "duplicate": true}));
    }
    let id = id_of(&first)?;
    assert_eq!(event(&host, &acme, &id)?["delivery_id"], "101");
    let shown = source(&host, &acme, &id_of(&jira)?)?;
    assert_eq!(
        pick(&shown, &["events", "rejections", "deduplicate_bodies"]),
        json!({"events": 1, "rejections": {"replayed_body": 2}, "deduplicate_bodies": true})
    );
    let stored: i64 = database(&host)?.query_row(
        "SELECT COUNT(*) FROM webhook_events WHERE source_id = ?1",
        [id_of(&jira)?],
        |r| r.get(0),
    )?;
    assert_eq!(stored, 1);

    // Another body is another event; the same body on another source is
    // that source's own.
    let other =
        r#"{"timestamp":1800000000001,"webhookEvent":"jira:issue_updated","issue":{"key":"GH-7"}}"#;
    let signed_other = sign(json!([
        {"op": "jira", "secret": secret, "payload": other, "identifier": "104"}
    ]))?;
    assert_eq!(
        accepted(&jira, &signed_other[0], other)?["duplicate"],
        false
    );
    let second_source = create_source(
        &host,
        &acme,
        json!({"provider": "jira", "secrets": [secret]}),
    )?;
    assert_eq!(
        accepted(&second_source, &signed[1], body)?["duplicate"],
        false
    );
    Ok(())
}

#[test]
fn a_github_body_under_a_new_delivery_id_is_a_duplicate_unless_the_source_keeps_repeated_bodies()
-> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let secret = "github webhook secret of the ingest tests";
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "github", "secrets": [secret]}),
    )?;
    assert_eq!(made["deduplicate_bodies"], true);
    // A workflow_dispatch with the same inputs: nothing in it is unique.
    let body = r#"{"inputs":{"env":"prod"},"ref":"refs/heads/main","workflow":".github/workflows/deploy.yml"}"#;
    let job = |delivery: &str| {
        json!({"op": "github", "secret": secret, "payload": body,
               "delivery": delivery, "event": "workflow_dispatch"})
    };
    let signed = sign(json!([
        job("0b7e5c1a-0001-11f0-8000-000000000001"),
        job("0b7e5c1a-0002-11f0-8000-000000000002"),
        job("0b7e5c1a-0003-11f0-8000-000000000003"),
        job("0b7e5c1a-0004-11f0-8000-000000000004"),
    ]))?;
    let first = accepted(&made, &signed[0], body)?;
    let replayed = accepted(&made, &signed[1], body)?;
    assert_eq!(replayed, json!({"id": first["id"], "duplicate": true}));
    let source_id = id_of(&made)?;
    assert_eq!(
        pick(
            &source(&host, &acme, &source_id)?,
            &["events", "rejections"]
        ),
        json!({"events": 1, "rejections": {"replayed_body": 1}})
    );

    // A source whose bodies repeat by design keeps each delivery; its own
    // delivery id still deduplicates a redelivery.
    let patched = patch_source(
        &host,
        &acme,
        &source_id,
        json!({"deduplicate_bodies": false}),
    )?;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()?["deduplicate_bodies"], false);
    let third = accepted(&made, &signed[2], body)?;
    assert_eq!(third["duplicate"], false);
    assert_ne!(third["id"], first["id"]);
    let fourth = accepted(&made, &signed[3], body)?;
    assert_eq!(fourth["duplicate"], false);
    assert_eq!(
        accepted(&made, &signed[3], body)?,
        json!({"id": fourth["id"], "duplicate": true})
    );
    assert_eq!(source(&host, &acme, &source_id)?["events"], 3);
    assert_eq!(
        source(&host, &acme, &source_id)?["deduplicate_bodies"],
        false
    );

    // Only GitHub and Jira deduplicate bodies: the setting is refused
    // elsewhere.
    let stripe_secret = SigningSecret::from_random(&[72u8; 32])?.to_whsec();
    let stripe = crate::support::admin(
        &host,
        "POST",
        "/v1/webhooks/sources",
        Some(
            &json!({"provider": "stripe", "secrets": [stripe_secret], "deduplicate_bodies": false}),
        ),
        &acme.admin,
    )?;
    assert_eq!(stripe.status, 422, "{}", stripe.text());
    assert!(
        stripe.text().contains("deduplication_not_supported"),
        "{}",
        stripe.text()
    );
    Ok(())
}

#[test]
fn a_standard_webhooks_body_under_another_signed_id_is_another_event() -> Result<()> {
    // Its signature covers the id and a timestamp: the same bytes under a
    // new signed id are a new message, not a replay.
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let secret = SigningSecret::from_random(&[71u8; 32])?.to_whsec();
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "standard", "secrets": [secret]}),
    )?;
    let body = r#"{"type":"invoice.paid","data":{"invoice":"in_1"}}"#;
    let first = accepted(&made, &standard(&secret, "msg_first", body, T)?, body)?;
    let second = accepted(&made, &standard(&secret, "msg_second", body, T)?, body)?;
    assert_eq!(
        (&first["duplicate"], &second["duplicate"]),
        (&json!(false), &json!(false))
    );
    assert_ne!(first["id"], second["id"]);
    assert_eq!(events(&host, &acme, "")?.len(), 2);
    Ok(())
}

#[test]
fn an_azure_devops_source_takes_basic_credentials_with_an_empty_username() -> Result<()> {
    // Azure DevOps's Web Hooks consumer makes the user name optional: a
    // subscription may send only a password.
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let password = "service hook password without a user";
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "azure_devops", "basic": {"username": "", "password": password}}),
    )?;
    assert_eq!(made["has_basic"], true);
    let signed = sign(json!([
        {"op": "azure_devops", "username": "", "password": password},
        {"op": "azure_devops", "username": "someone", "password": password},
        {"op": "azure_devops", "username": "", "password": "guess"},
    ]))?;
    let body =
        r#"{"id":"9e3f1b74-2c5d-4e6f-8a9b-0c1d2e3f4a5b","eventType":"git.push","resource":{}}"#;
    let built = accepted(&made, &signed[0], body)?;
    let stored = event(&host, &acme, built["id"].as_str().context("id")?)?;
    assert_eq!(stored["event_type"], "git.push");
    for wrong in &signed[1..] {
        assert_eq!(refused(&made, wrong, body)?, "credentials_mismatch");
    }
    Ok(())
}
