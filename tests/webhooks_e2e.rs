//! Incoming webhooks through the built `webhooks` component: sources made
//! by org admins, deliveries signed by the providers' own libraries
//! (stripe-node, `@octokit/webhooks-methods`, `standardwebhooks`, from
//! `tests/webhook-signers`) posted to a source's ingest URL with no
//! Gatehouse credentials, deduplicated redeliveries, refusals counted per
//! reason and never stored, and the received events an admin reads back.
//!
//! `boundaries` covers who may manage sources and read events (roles,
//! credentials, the tenant boundary, deleted sources, body size) and the
//! validation codes. `dispatch` covers the handing on of accepted
//! deliveries to the deployment's handlers by background jobs, and replay;
//! `dispatch_status` the event's status however its jobs end. `ingest`
//! covers replayed bodies and credentials without a user name.

#[path = "webhooks_e2e/boundaries.rs"]
mod boundaries;
#[path = "webhooks_e2e/delivery.rs"]
mod delivery;
#[path = "webhooks_e2e/dispatch.rs"]
mod dispatch;
#[path = "webhooks_e2e/dispatch_status.rs"]
mod dispatch_status;
#[path = "webhooks_e2e/endpoints.rs"]
mod endpoints;
#[path = "webhooks_e2e/ingest.rs"]
mod ingest;
#[path = "webhooks_e2e/support.rs"]
mod support;

use anyhow::{Context, Result};
use gatehouse_tests::app::{expect, org};
use serde_json::{Value, json};
use support::{
    T, accepted, create_source, event, events, id_of, is_id, patch_source, pick, refused, sign,
    source, standard, start, stripe,
};
use webhooks_core::SigningSecret;

const STRIPE_SECRET: &str = "whsec_stripe_endpoint_secret_for_tests";
const GITHUB_SECRET: &str = "github webhook secret";

fn stripe_event(id: &str, kind: &str) -> String {
    format!(
        r#"{{"id":"{id}","object":"event","type":"{kind}","data":{{"object":{{"name":"Zoë ☕"}}}}}}"#
    )
}

#[test]
fn a_stripe_delivery_signed_by_stripe_node_is_accepted_and_listed_with_its_type() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "stripe", "description": "billing", "secrets": [STRIPE_SECRET]}),
    )?;
    let source_id = id_of(&made)?;
    assert!(is_id(&source_id, "whs_"), "{made}");
    assert_eq!(
        made["ingest_url"],
        host.url(&format!("/v1/hooks/{source_id}"))
    );
    assert_eq!(
        pick(
            &made,
            &[
                "provider",
                "description",
                "tolerance_seconds",
                "secret_count",
                "has_basic",
                "has_header",
                "rejections",
                "last_rejected_at",
                "events"
            ]
        ),
        json!({
            "provider": "stripe", "description": "billing", "tolerance_seconds": null,
            "secret_count": 1, "has_basic": false, "has_header": false,
            "rejections": {}, "last_rejected_at": null, "events": 0,
        })
    );
    assert!(made["created_at"].is_i64() && made["updated_at"].is_i64());
    assert!(
        made.get("secrets").is_none() && !made.to_string().contains(STRIPE_SECRET),
        "{made}"
    );

    let body = stripe_event("evt_1NG8Du2eZvKYlo2CUI79vXWy", "customer.created");
    let answer = accepted(&made, &stripe(STRIPE_SECRET, &body, T)?, &body)?;
    assert_eq!(answer["duplicate"], false);
    let event_id = answer["id"].as_str().context("event id")?;

    let listed = events(&host, &acme, "")?;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        pick(
            &listed[0],
            &[
                "id",
                "source_id",
                "provider",
                "event_type",
                "delivery_id",
                "status",
                "size"
            ]
        ),
        json!({
            "id": event_id, "source_id": source_id, "provider": "stripe",
            "event_type": "customer.created", "delivery_id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
            "status": "received", "size": body.len(),
        })
    );
    // The guests' clock runs on from T.
    assert!(listed[0]["received_at"].as_i64() >= Some(T), "{listed:?}");
    let detail = event(&host, &acme, event_id)?;
    assert_eq!(detail["payload"], serde_json::from_str::<Value>(&body)?);
    assert_eq!(detail["signed_at"], T);
    assert_eq!(source(&host, &acme, &source_id)?["events"], 1);

    // A later event is listed first; the filters pick by source, type and status.
    host.advance_clock(60)?;
    let later = stripe_event("evt_1NG8Du2eZvKYlo2CUI79vXWz", "invoice.paid");
    let second = accepted(&made, &stripe(STRIPE_SECRET, &later, T + 60)?, &later)?;
    let newest_first: Vec<Value> = events(&host, &acme, "")?
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(newest_first, [second["id"].clone(), answer["id"].clone()]);
    let by_type = events(&host, &acme, "?type=customer.created")?;
    assert_eq!(by_type.len(), 1);
    assert_eq!(by_type[0]["id"], event_id);
    assert_eq!(events(&host, &acme, "?type=charge.refunded")?.len(), 0);
    assert_eq!(
        events(
            &host,
            &acme,
            &format!("?source={source_id}&status=received")
        )?
        .len(),
        2
    );
    let first_page = expect(
        support::admin(
            &host,
            "GET",
            "/v1/webhooks/events?limit=1",
            None,
            &acme.admin,
        )?,
        200,
    )?;
    let cursor = first_page["next_cursor"].as_str().context("next_cursor")?;
    let rest = events(&host, &acme, &format!("?limit=1&cursor={cursor}"))?;
    assert_eq!(rest[0]["id"], event_id);
    Ok(())
}

#[test]
fn a_github_delivery_signed_by_octokit_is_accepted_with_its_event_and_action() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "github", "secrets": ["an older secret", GITHUB_SECRET]}),
    )?;
    assert_eq!(
        pick(&made, &["provider", "secret_count", "tolerance_seconds"]),
        json!({"provider": "github", "secret_count": 2, "tolerance_seconds": null})
    );
    let body = r#"{"action":"opened","issue":{"number":1,"title":"Ünïcode"}}"#;
    // GitHub's form-encoded content type: the body is not JSON.
    let form = "payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22%7D";
    let signed = sign(json!([
        {"op": "github", "secret": GITHUB_SECRET, "payload": body,
         "delivery": "f4b6c3a0-1e2d-11ef-8d4b-9a7f1c2e3d4f", "event": "issues"},
        {"op": "github", "secret": GITHUB_SECRET, "payload": form,
         "delivery": "0b9e7a10-1e2e-11ef-9c1a-3b5d7f9e1a2c", "event": "ping"},
    ]))?;
    let issue = accepted(&made, &signed[0], body)?;
    let mut form_headers = signed[1].clone();
    form_headers.push((
        "Content-Type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    let ping = accepted(&made, &form_headers, form)?;

    let issue = event(&host, &acme, issue["id"].as_str().context("id")?)?;
    assert_eq!(
        pick(
            &issue,
            &[
                "provider",
                "event_type",
                "delivery_id",
                "signed_at",
                "payload"
            ]
        ),
        json!({
            "provider": "github", "event_type": "issues.opened",
            "delivery_id": "f4b6c3a0-1e2d-11ef-8d4b-9a7f1c2e3d4f", "signed_at": null,
            "payload": serde_json::from_str::<Value>(body)?,
        })
    );
    let ping = event(&host, &acme, ping["id"].as_str().context("id")?)?;
    assert_eq!(
        pick(&ping, &["event_type", "delivery_id", "payload", "size"]),
        json!({
            "event_type": "ping", "delivery_id": "0b9e7a10-1e2e-11ef-9c1a-3b5d7f9e1a2c",
            "payload": form, "size": form.len(),
        })
    );
    Ok(())
}

#[test]
fn a_standard_webhooks_delivery_is_accepted_with_either_secret_during_a_rotation() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let old = SigningSecret::from_random(&[31u8; 32])?.to_whsec();
    let new = SigningSecret::from_random(&[32u8; 32])?.to_whsec();
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "standard", "secrets": [old]}),
    )?;
    let id = id_of(&made)?;
    let body = |n: u32| format!(r#"{{"type":"invoice.paid","data":{{"n":{n},"who":"Åsa"}}}}"#);
    accepted(&made, &standard(&old, "msg_1", &body(1), T)?, &body(1))?;

    let rotating = expect(
        patch_source(&host, &acme, &id, json!({"secrets": [old, new]}))?,
        200,
    )?;
    assert_eq!(rotating["secret_count"], 2);
    assert!(!rotating.to_string().contains(&new[6..]), "{rotating}");
    accepted(&made, &standard(&new, "msg_2", &body(2), T)?, &body(2))?;
    accepted(&made, &standard(&old, "msg_3", &body(3), T)?, &body(3))?;

    // The rotation done: the old secret no longer verifies.
    let rotated = expect(
        patch_source(&host, &acme, &id, json!({"secrets": [new]}))?,
        200,
    )?;
    assert_eq!(rotated["secret_count"], 1);
    let by_old = standard(&old, "msg_4", &body(4), T)?;
    assert_eq!(refused(&made, &by_old, &body(4))?, "signature_mismatch");
    accepted(&made, &standard(&new, "msg_4", &body(4), T)?, &body(4))?;

    let mut delivered: Vec<String> = events(&host, &acme, "")?
        .iter()
        .map(|e| e["delivery_id"].as_str().unwrap_or_default().to_string())
        .collect();
    delivered.sort();
    assert_eq!(delivered, ["msg_1", "msg_2", "msg_3", "msg_4"]);
    let listed = events(&host, &acme, "?type=invoice.paid")?;
    assert_eq!(listed.len(), 4);
    let after = source(&host, &acme, &id)?;
    assert_eq!(after["events"], 4);
    assert_eq!(after["rejections"], json!({"signature_mismatch": 1}));
    Ok(())
}

#[test]
fn the_same_delivery_twice_is_one_event() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let github = create_source(
        &host,
        &acme,
        json!({"provider": "github", "secrets": [GITHUB_SECRET]}),
    )?;
    let body = r#"{"action":"created","comment":{"body":"LGTM"}}"#;
    let job = |delivery: &str| {
        json!({"op": "github", "secret": GITHUB_SECRET, "payload": body,
               "delivery": delivery, "event": "issue_comment"})
    };
    let signed = sign(json!([
        job("11111111-2222-3333-4444-555555555555"),
        job("66666666-7777-8888-9999-000000000000")
    ]))?;
    let first = accepted(&github, &signed[0], body)?;
    assert_eq!(first["duplicate"], false);
    let again = accepted(&github, &signed[0], body)?;
    assert_eq!(again, json!({"id": first["id"], "duplicate": true}));
    assert_eq!(events(&host, &acme, "")?.len(), 1);
    // GitHub's signature does not cover the delivery id: the same signed
    // bytes under another id are a replay of the first, not a new event.
    let replayed = accepted(&github, &signed[1], body)?;
    assert_eq!(replayed, json!({"id": first["id"], "duplicate": true}));
    assert_eq!(events(&host, &acme, "")?.len(), 1);

    // Stripe retries an event with a fresh signature and timestamp.
    let stripe_source = create_source(
        &host,
        &acme,
        json!({"provider": "stripe", "secrets": [STRIPE_SECRET]}),
    )?;
    let charge = stripe_event("evt_3OdRetriedEvent000001", "charge.succeeded");
    let sent = accepted(&stripe_source, &stripe(STRIPE_SECRET, &charge, T)?, &charge)?;
    host.advance_clock(120)?;
    let retried = accepted(
        &stripe_source,
        &stripe(STRIPE_SECRET, &charge, T + 120)?,
        &charge,
    )?;
    assert_eq!(retried, json!({"id": sent["id"], "duplicate": true}));

    assert_eq!(events(&host, &acme, "")?.len(), 2);
    assert_eq!(source(&host, &acme, &id_of(&github)?)?["events"], 1);
    assert_eq!(source(&host, &acme, &id_of(&stripe_source)?)?["events"], 1);
    Ok(())
}

#[test]
fn a_tampered_body_and_a_stale_stripe_timestamp_are_refused_counted_and_not_stored() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "stripe", "secrets": [STRIPE_SECRET]}),
    )?;
    let id = id_of(&made)?;
    let body = stripe_event("evt_1Tampered0000000000001", "payout.paid");
    let signed = stripe(STRIPE_SECRET, &body, T)?;

    let tampered = body.replace("Zoë", "Zoe");
    assert_eq!(refused(&made, &signed, &tampered)?, "signature_mismatch");
    let stale = stripe(STRIPE_SECRET, &body, T - 600)?;
    assert_eq!(refused(&made, &stale, &body)?, "timestamp_out_of_tolerance");
    assert_eq!(refused(&made, &[], &body)?, "missing_signature");
    let garbled = vec![("Stripe-Signature".to_string(), "v1=zz".to_string())];
    assert_eq!(refused(&made, &garbled, &body)?, "malformed_signature");
    let by_stranger = stripe("whsec_someone_elses_secret", &body, T)?;
    assert_eq!(refused(&made, &by_stranger, &body)?, "signature_mismatch");

    let counted = source(&host, &acme, &id)?;
    assert_eq!(
        counted["rejections"],
        json!({
            "signature_mismatch": 2, "timestamp_out_of_tolerance": 1,
            "missing_signature": 1, "malformed_signature": 1,
        })
    );
    assert!(counted["last_rejected_at"].as_i64() >= Some(T), "{counted}");
    assert_eq!(counted["events"], 0);
    assert!(events(&host, &acme, "")?.is_empty());

    // A wider tolerance, set by the admin, takes the delayed delivery.
    let widened = expect(
        patch_source(&host, &acme, &id, json!({"tolerance_seconds": 900}))?,
        200,
    )?;
    assert_eq!(widened["tolerance_seconds"], 900);
    accepted(&made, &stale, &body)?;
    let after = source(&host, &acme, &id)?;
    assert_eq!(
        (&after["events"], &after["rejections"]),
        (&json!(1), &counted["rejections"])
    );
    Ok(())
}

#[test]
fn an_azure_devops_source_with_basic_credentials_accepts_the_right_ones_only() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let password = "pässword:with:colons";
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "azure_devops", "basic": {"username": "gatehouse", "password": password}}),
    )?;
    assert_eq!(
        pick(
            &made,
            &[
                "secret_count",
                "has_basic",
                "has_header",
                "tolerance_seconds"
            ]
        ),
        json!({"secret_count": 0, "has_basic": true, "has_header": false, "tolerance_seconds": null})
    );
    assert!(!made.to_string().contains(password), "{made}");
    let id = id_of(&made)?;
    let signed = sign(json!([
        {"op": "azure_devops", "username": "gatehouse", "password": password},
        {"op": "azure_devops", "username": "gatehouse", "password": "guess"},
    ]))?;
    let (right, wrong) = (&signed[0], &signed[1]);
    let body = |n: u32| {
        format!(
            r#"{{"id":"7c1d9c52-1a2b-4c3d-9e8f-0a1b2c3d4e5{n}","eventType":"build.complete","resource":{{}}}}"#
        )
    };

    let built = accepted(&made, right, &body(1))?;
    let built = event(&host, &acme, built["id"].as_str().context("id")?)?;
    assert_eq!(
        pick(&built, &["event_type", "delivery_id", "signed_at"]),
        json!({"event_type": "build.complete",
               "delivery_id": "7c1d9c52-1a2b-4c3d-9e8f-0a1b2c3d4e51", "signed_at": null})
    );
    assert_eq!(refused(&made, wrong, &body(2))?, "credentials_mismatch");
    assert_eq!(refused(&made, &[], &body(2))?, "missing_credentials");
    let mut as_text = right.clone();
    as_text.push(("Content-Type".into(), "text/plain".into()));
    assert_eq!(refused(&made, &as_text, "build done")?, "body_not_json");

    // A header credential as well: both must now be sent.
    let header = ("X-Gatehouse-Hook".to_string(), "hook-value-1".to_string());
    let both = expect(
        patch_source(
            &host,
            &acme,
            &id,
            json!({"header": {"name": header.0, "value": header.1}}),
        )?,
        200,
    )?;
    assert_eq!(
        pick(&both, &["has_basic", "has_header"]),
        json!({"has_basic": true, "has_header": true})
    );
    assert_eq!(refused(&made, right, &body(3))?, "missing_credentials");
    let mut wrong_header = right.clone();
    wrong_header.push((header.0.clone(), "hook-value-2".into()));
    assert_eq!(
        refused(&made, &wrong_header, &body(3))?,
        "credentials_mismatch"
    );
    let mut full = right.clone();
    full.push(header);
    accepted(&made, &full, &body(3))?;

    let after = source(&host, &acme, &id)?;
    assert_eq!(after["events"], 2);
    assert_eq!(
        after["rejections"],
        json!({"credentials_mismatch": 2, "missing_credentials": 2, "body_not_json": 1})
    );
    Ok(())
}
