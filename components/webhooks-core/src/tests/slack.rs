use super::*;
use crate::IdSource;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const EVENT: &[u8] =
    br#"{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention"}}"#;

fn headers(secret: &str, ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let ts = ts.to_string();
    let digest = hmac_hex(secret.as_bytes(), &[b"v0:", ts.as_bytes(), b":", body]);
    vec![
        ("X-Slack-Request-Timestamp", ts),
        ("X-Slack-Signature", format!("v0={digest}")),
    ]
}

fn config() -> VerifyConfig {
    VerifyConfig::with_secrets([SECRET])
}

#[test]
fn a_slack_event_verifies_with_its_event_id_and_inner_type() -> anyhow::Result<()> {
    let verified = check(
        Provider::Slack,
        &config(),
        &headers(SECRET, NOW, EVENT),
        EVENT,
    )?;
    assert_eq!(verified.dedupe_id, "Ev08MFMKH6");
    assert_eq!(verified.id_source, IdSource::Provider);
    assert_eq!(verified.event_type.as_deref(), Some("app_mention"));
    assert_eq!(verified.signed_at, Some(NOW));
    Ok(())
}

#[test]
fn a_slack_url_verification_is_typed_by_its_outer_type() -> anyhow::Result<()> {
    let body = br#"{"type":"url_verification","challenge":"abc"}"#;
    let verified = check(
        Provider::Slack,
        &config(),
        &headers(SECRET, NOW, body),
        body,
    )?;
    assert_eq!(verified.event_type.as_deref(), Some("url_verification"));
    assert_eq!(verified.id_source, IdSource::BodyDigest);
    Ok(())
}

#[test]
fn a_form_encoded_slack_command_verifies_without_an_id_or_type() -> anyhow::Result<()> {
    let body = b"token=x&team_id=T1&command=%2Fweather&text=94070";
    let verified = check(
        Provider::Slack,
        &config(),
        &headers(SECRET, NOW, body),
        body,
    )?;
    assert_eq!(verified.event_type, None);
    assert_eq!(verified.id_source, IdSource::BodyDigest);
    Ok(())
}

#[test]
fn a_tampered_slack_body_or_timestamp_is_refused() {
    let mut signed = headers(SECRET, NOW, EVENT);
    let tampered =
        br#"{"type":"event_callback","event_id":"Ev08MFMKH7","event":{"type":"app_mention"}}"#;
    assert_eq!(
        check(Provider::Slack, &config(), &signed, tampered),
        Err(Rejection::SignatureMismatch)
    );
    signed[0].1 = (NOW + 1).to_string();
    assert_eq!(
        check(Provider::Slack, &config(), &signed, EVENT),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn a_slack_request_more_than_five_minutes_off_is_refused() -> anyhow::Result<()> {
    for ts in [NOW - 300, NOW + 300] {
        check(
            Provider::Slack,
            &config(),
            &headers(SECRET, ts, EVENT),
            EVENT,
        )?;
    }
    for ts in [NOW - 301, NOW + 301] {
        assert_eq!(
            check(
                Provider::Slack,
                &config(),
                &headers(SECRET, ts, EVENT),
                EVENT
            ),
            Err(Rejection::TimestampOutOfTolerance)
        );
    }
    Ok(())
}

#[test]
fn a_slack_request_needs_its_timestamp_and_a_v0_signature() {
    let signed = headers(SECRET, NOW, EVENT);
    assert_eq!(
        check(Provider::Slack, &config(), &signed[1..], EVENT),
        Err(Rejection::MissingHeader("X-Slack-Request-Timestamp"))
    );
    let v1 = [
        signed[0].clone(),
        ("X-Slack-Signature", signed[1].1.replacen("v0=", "v1=", 1)),
    ];
    assert_eq!(
        check(Provider::Slack, &config(), &v1, EVENT),
        Err(Rejection::MalformedSignature)
    );
}

#[test]
fn any_configured_slack_secret_may_match_during_a_rotation() -> anyhow::Result<()> {
    let rotated = VerifyConfig::with_secrets(["new-signing-secret", SECRET]);
    check(
        Provider::Slack,
        &rotated,
        &headers(SECRET, NOW, EVENT),
        EVENT,
    )?;
    Ok(())
}
