use super::*;
use crate::IdSource;

const BODY: &[u8] =
    br#"{"id":"03c164c2-8912-4d5e-8009-3707d5f83734","eventType":"git.push","resource":{}}"#;

fn basic(user: &str, password: &str) -> (&'static str, String) {
    let encoded = STANDARD.encode(format!("{user}:{password}"));
    ("Authorization", format!("Basic {encoded}"))
}

#[test]
fn an_azure_devops_hook_with_the_configured_basic_credentials_verifies() -> anyhow::Result<()> {
    let config = VerifyConfig::default().basic("hook", "s3cret");
    let verified = check(
        Provider::AzureDevOps,
        &config,
        &[basic("hook", "s3cret")],
        BODY,
    )?;
    assert_eq!(verified.dedupe_id, "03c164c2-8912-4d5e-8009-3707d5f83734");
    assert_eq!(verified.id_source, IdSource::Provider);
    assert_eq!(verified.event_type.as_deref(), Some("git.push"));
    assert_eq!(verified.signed_at, None);
    Ok(())
}

#[test]
fn wrong_or_absent_basic_credentials_are_refused() {
    let config = VerifyConfig::default().basic("hook", "s3cret");
    for sent in [
        basic("hook", "s3cre"),
        basic("Hook", "s3cret"),
        basic("", "s3cret"),
    ] {
        assert_eq!(
            check(Provider::AzureDevOps, &config, &[sent], BODY),
            Err(Rejection::CredentialsMismatch)
        );
    }
    let bearer = [("Authorization", "Bearer s3cret".to_string())];
    assert_eq!(
        check(Provider::AzureDevOps, &config, &bearer, BODY),
        Err(Rejection::MissingCredentials)
    );
    let none: [(&str, String); 0] = [];
    assert_eq!(
        check(Provider::AzureDevOps, &config, &none, BODY),
        Err(Rejection::MissingCredentials)
    );
}

#[test]
fn any_configured_basic_credential_may_match_during_a_rotation() -> anyhow::Result<()> {
    let config = VerifyConfig::default()
        .basic("hook", "old")
        .basic("hook", "new");
    check(
        Provider::AzureDevOps,
        &config,
        &[basic("hook", "old")],
        BODY,
    )?;
    check(
        Provider::AzureDevOps,
        &config,
        &[basic("hook", "new")],
        BODY,
    )?;
    Ok(())
}

#[test]
fn a_configured_header_credential_is_compared_by_value() -> anyhow::Result<()> {
    let config = VerifyConfig::default().header("X-Hook-Token", "tok_1");
    let sent = [("x-hook-token", "tok_1".to_string())];
    check(Provider::AzureDevOps, &config, &sent, BODY)?;
    let wrong = [("X-Hook-Token", "tok_2".to_string())];
    assert_eq!(
        check(Provider::AzureDevOps, &config, &wrong, BODY),
        Err(Rejection::CredentialsMismatch)
    );
    assert_eq!(
        check(Provider::AzureDevOps, &config, &[basic("a", "b")], BODY),
        Err(Rejection::MissingCredentials)
    );
    Ok(())
}

#[test]
fn basic_and_header_credentials_are_both_required_when_both_are_configured() -> anyhow::Result<()> {
    let config = VerifyConfig::default()
        .basic("hook", "s3cret")
        .header("X-Hook-Token", "tok_1");
    let both = [basic("hook", "s3cret"), ("X-Hook-Token", "tok_1".into())];
    check(Provider::AzureDevOps, &config, &both, BODY)?;
    assert_eq!(
        check(Provider::AzureDevOps, &config, &both[..1], BODY),
        Err(Rejection::MissingCredentials)
    );
    assert_eq!(
        check(Provider::AzureDevOps, &config, &both[1..], BODY),
        Err(Rejection::MissingCredentials)
    );
    Ok(())
}

#[test]
fn an_authenticated_azure_devops_body_must_be_json() {
    let config = VerifyConfig::default().basic("hook", "s3cret");
    assert_eq!(
        check(
            Provider::AzureDevOps,
            &config,
            &[basic("hook", "s3cret")],
            b"id=1"
        ),
        Err(Rejection::BodyNotJson)
    );
}
