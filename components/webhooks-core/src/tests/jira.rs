use super::*;
use crate::IdSource;

const SECRET: &str = "jira-admin-webhook-secret";
const BODY: &[u8] =
    br#"{"timestamp":1,"webhookEvent":"jira:issue_created","issue":{"key":"GH-1"}}"#;

fn headers(body: &[u8], secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Atlassian-Webhook-Identifier", "1234567890".into()),
        (
            "X-Hub-Signature",
            format!("sha256={}", hmac_hex(secret.as_bytes(), &[body])),
        ),
    ]
}

#[test]
fn a_jira_delivery_verifies_with_its_identifier_and_webhook_event() -> anyhow::Result<()> {
    let config = VerifyConfig::with_secrets([SECRET]);
    let verified = check(Provider::Jira, &config, &headers(BODY, SECRET), BODY)?;
    assert_eq!(verified.dedupe_id, "1234567890");
    assert_eq!(verified.id_source, IdSource::Provider);
    assert_eq!(verified.event_type.as_deref(), Some("jira:issue_created"));
    Ok(())
}

#[test]
fn a_tampered_or_missigned_jira_delivery_is_refused() {
    let config = VerifyConfig::with_secrets([SECRET]);
    let tampered = br#"{"timestamp":1,"webhookEvent":"jira:issue_deleted","issue":{"key":"GH-1"}}"#;
    assert_eq!(
        check(Provider::Jira, &config, &headers(BODY, SECRET), tampered),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        check(Provider::Jira, &config, &headers(BODY, "other"), BODY),
        Err(Rejection::SignatureMismatch)
    );
    let unsigned = [("X-Atlassian-Webhook-Identifier", "1".to_string())];
    assert_eq!(
        check(Provider::Jira, &config, &unsigned, BODY),
        Err(Rejection::MissingSignature)
    );
}

#[test]
fn a_signed_jira_body_must_be_json() {
    let body = b"<xml/>";
    let config = VerifyConfig::with_secrets([SECRET]);
    assert_eq!(
        check(Provider::Jira, &config, &headers(body, SECRET), body),
        Err(Rejection::BodyNotJson)
    );
}
