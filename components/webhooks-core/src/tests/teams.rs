use super::*;
use crate::IdSource;

/// A security token as Teams shows it: base64 of 32 random bytes.
const TOKEN: &str = "vqF0En+Z0ucuRTM/01o2GuhMH3hKKk/N2bOmlM31zaA=";
const BODY: &[u8] = br#"{"type":"message","id":"1485983408511","text":"<at>Bot</at> hi"}"#;

fn authorization(token: &str, body: &[u8]) -> [(&'static str, String); 1] {
    let key = STANDARD.decode(token).unwrap_or_default();
    [("Authorization", format!("HMAC {}", hmac_b64(&key, &[body])))]
}

#[test]
fn a_teams_message_verifies_with_its_activity_id_and_type() -> anyhow::Result<()> {
    let config = VerifyConfig::with_secrets([TOKEN]);
    let verified = check(Provider::Teams, &config, &authorization(TOKEN, BODY), BODY)?;
    assert_eq!(verified.dedupe_id, "1485983408511");
    assert_eq!(verified.id_source, IdSource::Provider);
    assert_eq!(verified.event_type.as_deref(), Some("message"));
    Ok(())
}

#[test]
fn the_teams_key_is_the_decoded_token_not_its_text() {
    let config = VerifyConfig::with_secrets([TOKEN]);
    let keyed_with_text = [(
        "Authorization",
        format!("HMAC {}", hmac_b64(TOKEN.as_bytes(), &[BODY])),
    )];
    assert_eq!(
        check(Provider::Teams, &config, &keyed_with_text, BODY),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn a_tampered_teams_message_is_refused() {
    let config = VerifyConfig::with_secrets([TOKEN]);
    let tampered = br#"{"type":"message","id":"1485983408511","text":"<at>Bot</at> rm"}"#;
    assert_eq!(
        check(
            Provider::Teams,
            &config,
            &authorization(TOKEN, BODY),
            tampered
        ),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn a_teams_authorization_must_be_hmac_and_base64() -> anyhow::Result<()> {
    let config = VerifyConfig::with_secrets([TOKEN]);
    let [(_, good)] = authorization(TOKEN, BODY);
    let lower = [("authorization", good.replacen("HMAC", "hmac", 1))];
    check(Provider::Teams, &config, &lower, BODY)?;
    for value in ["Bearer abc", "HMAC not*base64", "HMAC"] {
        let sent = [("Authorization", value.to_string())];
        assert_eq!(
            check(Provider::Teams, &config, &sent, BODY),
            Err(Rejection::MalformedSignature),
            "{value}"
        );
    }
    Ok(())
}

#[test]
fn any_configured_teams_token_may_match() -> anyhow::Result<()> {
    let other = "QgyNSToQjf4p6+YzDpjKks1/tXeJQ7FhVHqRwTnugVI=";
    let config = VerifyConfig::with_secrets([other, TOKEN]);
    check(Provider::Teams, &config, &authorization(TOKEN, BODY), BODY)?;
    Ok(())
}
