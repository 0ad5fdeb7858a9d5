//! What the ingest keeps once and which credentials it takes: a signed
//! body replayed under a new id by a provider whose signature covers no
//! timestamp is the first event again; and Azure DevOps Basic credentials
//! with an empty user name, as Azure DevOps allows.

use anyhow::{Context, Result};
use gatehouse_tests::app::{database, org};
use serde_json::json;
use webhooks_core::SigningSecret;

use crate::support::{
    T, accepted, create_source, event, events, id_of, refused, sign, source, standard, start,
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
    assert_eq!(source(&host, &acme, &id_of(&jira)?)?["events"], 1);
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
