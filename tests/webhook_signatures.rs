//! Webhook signatures made by the providers' own libraries, checked with
//! `webhooks_core::verify`: Stripe's `stripe`, GitHub's
//! `@octokit/webhooks-methods` and the Standard Webhooks reference library
//! `standardwebhooks`, from the npm registry (`tests/webhook-signers`,
//! versions pinned in its package-lock.json, installed by scripts/test).
//! Slack, Jira, Teams and Azure DevOps have no small signing library
//! there; `sign.mjs` computes theirs with node's crypto from each
//! provider's documentation, which still checks this crate against an
//! independent implementation.
//!
//! The other direction: the reference library's own `verify` must accept
//! Gatehouse's outgoing `v1` signatures. That library (1.1.1) knows no
//! `v1a`; it skips such entries, so Ed25519 signatures are checked here by
//! this crate alone (and against RFC 8032 in its unit tests).

use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};
use webhooks_core::{
    IdSource, Provider, Rejection, Signer, SigningKey, SigningSecret, Verified, VerifyConfig,
    signature_header, verify,
};

/// The signed time of library-made deliveries, in Unix seconds.
const T: i64 = 1_700_000_000;

/// Runs `jobs` through `sign.mjs` in one node process.
fn node(jobs: Value) -> Result<Vec<Value>> {
    gatehouse_tests::webhook_signers::run(jobs)
}

/// The headers of one result, as name/value pairs.
fn headers(result: &Value) -> Result<Vec<(String, String)>> {
    let map = result["headers"].as_object().context("headers")?;
    Ok(map
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect())
}

fn check(
    provider: Provider,
    config: &VerifyConfig,
    headers: &[(String, String)],
    body: &str,
    now: i64,
) -> Result<Verified, Rejection> {
    verify(provider, config, headers, body.as_bytes(), now)
}

fn now() -> Result<i64> {
    Ok(i64::try_from(
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    )?)
}

#[test]
fn stripes_library_signatures_verify_and_tampered_or_stale_ones_do_not() -> Result<()> {
    let body = r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"customer.created","data":{"name":"Zoë ☕"}}"#;
    let (old, new) = ("whsec_old_endpoint_secret", "whsec_new_endpoint_secret");
    let signed = node(json!([
        {"op": "stripe", "secret": old, "payload": body, "timestamp": T},
        {"op": "stripe", "secret": new, "payload": body, "timestamp": T},
    ]))?;
    let by_old = headers(&signed[0])?;
    let config = VerifyConfig::with_secrets([old]);

    let verified = check(Provider::Stripe, &config, &by_old, body, T + 10)?;
    assert_eq!(verified.dedupe_id, "evt_1NG8Du2eZvKYlo2CUI79vXWy");
    assert_eq!(verified.event_type.as_deref(), Some("customer.created"));
    assert_eq!(verified.signed_at, Some(T));

    let tampered = body.replace("Zoë", "Zoe");
    assert_eq!(
        check(Provider::Stripe, &config, &by_old, &tampered, T),
        Err(Rejection::SignatureMismatch)
    );
    for stale in [T + 301, T - 301] {
        assert_eq!(
            check(Provider::Stripe, &config, &by_old, body, stale),
            Err(Rejection::TimestampOutOfTolerance)
        );
    }

    // A secret being rolled: the new secret's v1 beside the old one's.
    let new_v1 = headers(&signed[1])?[0]
        .1
        .split(',')
        .nth(1)
        .context("v1")?
        .to_string();
    let both = vec![(
        "Stripe-Signature".to_string(),
        format!("{},{new_v1}", by_old[0].1),
    )];
    check(
        Provider::Stripe,
        &VerifyConfig::with_secrets([new]),
        &both,
        body,
        T,
    )?;
    check(
        Provider::Stripe,
        &VerifyConfig::with_secrets([new, old]),
        &by_old,
        body,
        T,
    )?;
    Ok(())
}

#[test]
fn octokits_signatures_verify_and_tampered_ones_do_not() -> Result<()> {
    let body = r#"{"action":"opened","issue":{"number":1,"title":"Ünïcode"}}"#;
    let secret = "github webhook secret";
    let signed = node(json!([{
        "op": "github", "secret": secret, "payload": body,
        "delivery": "f4b6c3a0-1e2d-11ef-8d4b-9a7f1c2e3d4f", "event": "issues",
    }]))?;
    let sent = headers(&signed[0])?;
    let config = VerifyConfig::with_secrets(["other secret", secret]);

    let verified = check(Provider::GitHub, &config, &sent, body, T)?;
    assert_eq!(verified.dedupe_id, "f4b6c3a0-1e2d-11ef-8d4b-9a7f1c2e3d4f");
    assert_eq!(verified.event_type.as_deref(), Some("issues.opened"));

    let tampered = body.replace("opened", "closed");
    assert_eq!(
        check(Provider::GitHub, &config, &sent, &tampered, T),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        check(
            Provider::GitHub,
            &VerifyConfig::with_secrets(["other secret"]),
            &sent,
            body,
            T
        ),
        Err(Rejection::SignatureMismatch)
    );
    Ok(())
}

#[test]
fn the_reference_librarys_signatures_verify_and_tampered_or_stale_ones_do_not() -> Result<()> {
    let body = r#"{"type":"invoice.paid","data":{"customer":"Åsa"}}"#;
    let old = SigningSecret::from_random(&[11u8; 32])?.to_whsec();
    let new = SigningSecret::from_random(&[12u8; 32])?.to_whsec();
    let signed = node(json!([
        {"op": "standard", "secret": old, "id": "msg_1", "timestamp": T, "payload": body},
        {"op": "standard", "secret": new, "id": "msg_1", "timestamp": T, "payload": body},
    ]))?;
    let by_old = headers(&signed[0])?;
    let config = VerifyConfig::with_secrets([old.as_str()]);

    let verified = check(Provider::Standard, &config, &by_old, body, T + 299)?;
    assert_eq!(
        (verified.dedupe_id.as_str(), verified.id_source),
        ("msg_1", IdSource::Provider)
    );
    assert_eq!(verified.event_type.as_deref(), Some("invoice.paid"));

    let tampered = body.replace("Åsa", "Asa");
    assert_eq!(
        check(Provider::Standard, &config, &by_old, &tampered, T),
        Err(Rejection::SignatureMismatch)
    );
    for stale in [T + 301, T - 301] {
        assert_eq!(
            check(Provider::Standard, &config, &by_old, body, stale),
            Err(Rejection::TimestampOutOfTolerance)
        );
    }

    // A sender rotating its secret lists both signatures.
    let signature = |i: usize| -> Result<String> {
        let sent = headers(&signed[i])?;
        let (_, value) = sent
            .iter()
            .find(|(k, _)| k == "webhook-signature")
            .context("sig")?;
        Ok(value.clone())
    };
    let mut both = by_old.clone();
    for (name, value) in &mut both {
        if name == "webhook-signature" {
            *value = format!("{} {}", signature(1)?, signature(0)?);
        }
    }
    check(
        Provider::Standard,
        &VerifyConfig::with_secrets([new]),
        &both,
        body,
        T,
    )?;
    Ok(())
}

#[test]
fn the_reference_library_accepts_our_outgoing_signatures() -> Result<()> {
    let body = r#"{"type":"user.created","data":{"email":"zoë@example.com"}}"#;
    let new = SigningSecret::from_random(&[21u8; 32])?;
    let old = SigningSecret::from_random(&[22u8; 32])?;
    let ed25519 = SigningKey::from_seed(&[23u8; 32]);
    // The library checks the timestamp against its own clock.
    let sent_at = now()?;
    let signers = [
        Signer::Ed25519(ed25519.clone()),
        Signer::Hmac(new.clone()),
        Signer::Hmac(old.clone()),
    ];
    let signature = signature_header("msg_out_1", sent_at, body.as_bytes(), &signers);
    let sent = json!({
        "webhook-id": "msg_out_1",
        "webhook-timestamp": sent_at.to_string(),
        "webhook-signature": signature,
    });
    let stranger = SigningSecret::from_random(&[24u8; 32])?;
    let results = node(json!([
        {"op": "standard_verify", "secret": new.to_whsec(), "payload": body, "headers": sent},
        {"op": "standard_verify", "secret": old.to_whsec(), "payload": body, "headers": sent},
        {"op": "standard_verify", "secret": stranger.to_whsec(), "payload": body, "headers": sent},
        {"op": "standard_verify", "secret": new.to_whsec(), "payload": body.replace("zoë", "zoe"), "headers": sent},
    ]))?;
    let accepted: Vec<bool> = results.iter().map(|r| r["ok"] == json!(true)).collect();
    assert_eq!(accepted, [true, true, false, false], "{results:?}");

    // The v1a entry, which the library skips, verifies with the public key.
    let pairs: Vec<(String, String)> = sent
        .as_object()
        .context("headers")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let by_key = VerifyConfig::with_secrets([ed25519.public_key().to_whpk()]);
    check(Provider::Standard, &by_key, &pairs, body, sent_at)?;
    Ok(())
}

#[test]
fn slack_signatures_made_by_its_recipe_verify_and_tampered_or_stale_ones_do_not() -> Result<()> {
    let body = r#"{"type":"event_callback","event_id":"Ev0PV52K21","event":{"type":"message","text":"héllo"}}"#;
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let signed = node(json!([{"op": "slack", "secret": secret, "payload": body, "timestamp": T}]))?;
    let sent = headers(&signed[0])?;
    let config = VerifyConfig::with_secrets([secret]);

    let verified = check(Provider::Slack, &config, &sent, body, T + 1)?;
    assert_eq!(verified.dedupe_id, "Ev0PV52K21");
    assert_eq!(verified.event_type.as_deref(), Some("message"));
    assert_eq!(
        check(
            Provider::Slack,
            &config,
            &sent,
            &body.replace("héllo", "hello"),
            T
        ),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        check(Provider::Slack, &config, &sent, body, T + 301),
        Err(Rejection::TimestampOutOfTolerance)
    );
    Ok(())
}

#[test]
fn jira_signatures_made_by_its_recipe_verify_and_tampered_ones_do_not() -> Result<()> {
    let body = r#"{"timestamp":1700000000000,"webhookEvent":"jira:issue_updated","issue":{"key":"OPS-7","fields":{"summary":"Größe"}}}"#;
    let secret = "jira-webhook-secret-from-the-admin-page";
    let signed = node(json!([{
        "op": "jira", "secret": secret, "payload": body,
        "identifier": "8f1d2c3b-4a5e-6f70-8192-a3b4c5d6e7f8",
    }]))?;
    let sent = headers(&signed[0])?;
    let config = VerifyConfig::with_secrets([secret]);

    let verified = check(Provider::Jira, &config, &sent, body, T)?;
    assert_eq!(verified.dedupe_id, "8f1d2c3b-4a5e-6f70-8192-a3b4c5d6e7f8");
    assert_eq!(verified.event_type.as_deref(), Some("jira:issue_updated"));
    assert_eq!(
        check(
            Provider::Jira,
            &config,
            &sent,
            &body.replace("OPS-7", "OPS-8"),
            T
        ),
        Err(Rejection::SignatureMismatch)
    );
    Ok(())
}

#[test]
fn teams_signatures_made_by_its_recipe_verify_and_tampered_ones_do_not() -> Result<()> {
    let body = r#"{"type":"message","id":"1712345678901","text":"<at>Gatehouse</at> status ✓"}"#;
    let token = "+ZaRRMC8+mpnfGaGsBOmkIFt98bttL5YQRq3p2tXgcE=";
    let signed = node(json!([{"op": "teams", "token": token, "payload": body}]))?;
    let sent = headers(&signed[0])?;
    let config = VerifyConfig::with_secrets([token]);

    let verified = check(Provider::Teams, &config, &sent, body, T)?;
    assert_eq!(verified.dedupe_id, "1712345678901");
    assert_eq!(verified.event_type.as_deref(), Some("message"));
    assert_eq!(
        check(
            Provider::Teams,
            &config,
            &sent,
            &body.replace("status", "delete"),
            T
        ),
        Err(Rejection::SignatureMismatch)
    );
    Ok(())
}

#[test]
fn azure_devops_basic_credentials_encoded_by_node_verify_and_wrong_ones_do_not() -> Result<()> {
    let body = r#"{"id":"7c1d9c52-1a2b-4c3d-9e8f-0a1b2c3d4e5f","eventType":"build.complete","resource":{}}"#;
    let signed = node(json!([
        {"op": "azure_devops", "username": "gatehouse", "password": "pässword:with:colons"},
        {"op": "azure_devops", "username": "gatehouse", "password": "guess"},
    ]))?;
    let config = VerifyConfig::default().basic("gatehouse", "pässword:with:colons");

    let verified = check(
        Provider::AzureDevOps,
        &config,
        &headers(&signed[0])?,
        body,
        T,
    )?;
    assert_eq!(verified.dedupe_id, "7c1d9c52-1a2b-4c3d-9e8f-0a1b2c3d4e5f");
    assert_eq!(verified.event_type.as_deref(), Some("build.complete"));
    assert_eq!(
        check(
            Provider::AzureDevOps,
            &config,
            &headers(&signed[1])?,
            body,
            T
        ),
        Err(Rejection::CredentialsMismatch)
    );
    Ok(())
}
