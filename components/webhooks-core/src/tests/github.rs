use super::*;
use crate::IdSource;

const SECRET: &str = "It's a Secret to Everybody";
const BODY: &[u8] = br#"{"action":"opened","number":1}"#;

fn headers(body: &[u8], secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-GitHub-Event", "pull_request".into()),
        (
            "X-GitHub-Delivery",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
        ),
        (
            "X-Hub-Signature-256",
            format!("sha256={}", hmac_hex(secret.as_bytes(), &[body])),
        ),
    ]
}

#[test]
fn a_github_delivery_verifies_with_its_delivery_id_and_event_action() -> anyhow::Result<()> {
    let config = VerifyConfig::with_secrets([SECRET]);
    let verified = check(Provider::GitHub, &config, &headers(BODY, SECRET), BODY)?;
    assert_eq!(verified.dedupe_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(verified.id_source, IdSource::Provider);
    assert_eq!(verified.event_type.as_deref(), Some("pull_request.opened"));
    assert_eq!(verified.signed_at, None);
    Ok(())
}

#[test]
fn githubs_documented_example_signature_verifies() -> anyhow::Result<()> {
    // GitHub's "validating webhook deliveries" page: this secret and the
    // payload "Hello, World!" give this signature.
    let body = b"Hello, World!";
    let signed = [(
        "x-hub-signature-256",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".to_string(),
    )];
    let verified = check(
        Provider::GitHub,
        &VerifyConfig::with_secrets([SECRET]),
        &signed,
        body,
    )?;
    assert_eq!(verified.event_type, None);
    assert_eq!(verified.id_source, IdSource::BodyDigest);
    Ok(())
}

#[test]
fn a_form_encoded_github_delivery_is_typed_by_its_event_header() -> anyhow::Result<()> {
    let body = b"payload=%7B%22action%22%3A%22opened%22%7D";
    let config = VerifyConfig::with_secrets([SECRET]);
    let verified = check(Provider::GitHub, &config, &headers(body, SECRET), body)?;
    assert_eq!(verified.event_type.as_deref(), Some("pull_request"));
    Ok(())
}

#[test]
fn any_configured_github_secret_may_match_during_a_rotation() -> anyhow::Result<()> {
    let config = VerifyConfig::with_secrets(["new secret", SECRET]);
    check(Provider::GitHub, &config, &headers(BODY, SECRET), BODY)?;
    check(
        Provider::GitHub,
        &config,
        &headers(BODY, "new secret"),
        BODY,
    )?;
    Ok(())
}

#[test]
fn a_tampered_github_body_is_refused() {
    let config = VerifyConfig::with_secrets([SECRET]);
    let signed = headers(BODY, SECRET);
    let tampered = br#"{"action":"closed","number":1}"#;
    assert_eq!(
        check(Provider::GitHub, &config, &signed, tampered),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        check(Provider::GitHub, &config, &headers(BODY, "wrong"), BODY),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn a_github_signature_must_be_sha256_hex() {
    let config = VerifyConfig::with_secrets([SECRET]);
    let digest = hmac_hex(SECRET.as_bytes(), &[BODY]);
    for value in [
        digest.clone(),
        format!("sha1={digest}"),
        "sha256=zz".to_string(),
        "sha256=".to_string(),
    ] {
        let signed = [("X-Hub-Signature-256", value.clone())];
        assert_eq!(
            check(Provider::GitHub, &config, &signed, BODY),
            Err(Rejection::MalformedSignature),
            "{value}"
        );
    }
    // The legacy SHA-1 header alone does not count as a signature.
    let legacy = [("X-Hub-Signature", format!("sha1={digest}"))];
    assert_eq!(
        check(Provider::GitHub, &config, &legacy, BODY),
        Err(Rejection::MissingSignature)
    );
}
