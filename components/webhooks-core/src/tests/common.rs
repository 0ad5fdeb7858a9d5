use super::*;
use crate::compare::{any_equal, credential_equal};
use crate::{ConfigError, HeaderFn, Headers, IdSource, replay_digest};

#[test]
fn provider_names_round_trip_through_their_stable_strings() -> anyhow::Result<()> {
    let names: Vec<&str> = Provider::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "stripe",
            "github",
            "standard",
            "jira",
            "teams",
            "azure_devops",
            "slack"
        ]
    );
    for provider in Provider::ALL {
        assert_eq!(provider.as_str().parse::<Provider>()?, provider);
        assert_eq!(provider.to_string(), provider.as_str());
    }
    Ok(())
}

#[test]
fn provider_names_are_matched_exactly() {
    for name in [
        "Stripe",
        "GITHUB",
        "azure-devops",
        "azuredevops",
        " slack",
        "",
    ] {
        assert_eq!(Provider::parse(name), None, "{name:?}");
    }
}

#[test]
fn headers_are_found_whatever_their_case() {
    let pairs = [("X-Hub-Signature-256", "a"), ("webhook-id", "b")];
    assert_eq!(pairs.header("x-hub-signature-256").as_deref(), Some("a"));
    assert_eq!(pairs[..].header("WEBHOOK-ID").as_deref(), Some("b"));
    assert_eq!(pairs.header("webhook-timestamp"), None);
    let owned = vec![("Stripe-Signature".to_string(), "c".to_string())];
    assert_eq!(owned.header("stripe-signature").as_deref(), Some("c"));
    let by_closure = HeaderFn(|name: &str| (name == "x-slack-signature").then(|| "d".to_string()));
    assert_eq!(by_closure.header("X-Slack-Signature").as_deref(), Some("d"));
}

#[test]
fn the_constant_time_comparison_accepts_only_an_exact_tag() {
    let tag = [7u8; 32];
    let other = [9u8; 32];
    let mut last_byte_off = tag.to_vec();
    last_byte_off[31] ^= 1;
    let mut longer = tag.to_vec();
    longer.push(0);
    for wrong in [vec![], tag[..31].to_vec(), last_byte_off, longer] {
        assert!(!any_equal(&[tag, other], std::slice::from_ref(&wrong)));
    }
    assert!(any_equal(&[other, tag], &[vec![1], tag.to_vec()]));
    assert!(!any_equal(&[], &[tag.to_vec()]));
}

#[test]
fn the_credential_comparison_requires_equal_values() {
    assert!(credential_equal(b"user:pass", b"user:pass"));
    for wrong in [&b"user:pas"[..], b"user:passs", b"User:pass", b""] {
        assert!(!credential_equal(wrong, b"user:pass"));
    }
}

#[test]
fn rejection_codes_are_stable() {
    let codes: Vec<&str> = [
        Rejection::NotConfigured,
        Rejection::MissingSignature,
        Rejection::MalformedSignature,
        Rejection::MissingHeader("webhook-id"),
        Rejection::MalformedTimestamp,
        Rejection::SignatureMismatch,
        Rejection::TimestampOutOfTolerance,
        Rejection::MissingCredentials,
        Rejection::CredentialsMismatch,
        Rejection::BodyNotJson,
    ]
    .iter()
    .map(|r| r.code())
    .collect();
    assert_eq!(
        codes,
        [
            "not_configured",
            "missing_signature",
            "malformed_signature",
            "missing_header",
            "malformed_timestamp",
            "signature_mismatch",
            "timestamp_out_of_tolerance",
            "missing_credentials",
            "credentials_mismatch",
            "body_not_json",
        ]
    );
}

#[test]
fn rejection_messages_never_echo_a_secret_or_the_payload() {
    let secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";
    let body = br#"{"id":"evt_private_marker","type":"private.marker"}"#;
    let wrong = [
        (
            "Stripe-Signature",
            format!("t={NOW},v1={}", "ab".repeat(32)),
        ),
        ("X-Hub-Signature-256", format!("sha256={}", "cd".repeat(32))),
        ("webhook-id", "msg_private_marker".to_string()),
        ("webhook-timestamp", NOW.to_string()),
        ("webhook-signature", "v1,AAAA".to_string()),
        ("Authorization", "Basic dXNlcjpwYXNz".to_string()),
    ];
    let config = VerifyConfig::with_secrets([secret]).basic("u", "private_marker");
    for provider in Provider::ALL {
        let Err(rejection) = check(provider, &config, &wrong, body) else {
            panic!("{provider} accepted a forged delivery");
        };
        let message = rejection.message();
        for leaked in ["private", "marker", secret, "c2VjcmV0"] {
            assert!(!message.contains(leaked), "{provider}: {message}");
        }
    }
}

#[test]
fn debug_output_shows_no_secret() {
    let config = VerifyConfig::with_secrets(["whsec_c2VjcmV0"])
        .basic("ada", "hunter2")
        .header("X-Token", "tok_secret");
    let shown = format!("{config:?}");
    for leaked in ["c2VjcmV0", "ada", "hunter2", "tok_secret"] {
        assert!(!shown.contains(leaked), "{shown}");
    }
    assert!(shown.contains("X-Token"));
}

#[test]
fn check_accepts_each_providers_secret_form() -> anyhow::Result<()> {
    let standard = VerifyConfig::with_secrets([
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    ]);
    standard.check(Provider::Standard)?;
    VerifyConfig::with_secrets(["whsec_stripe"]).check(Provider::Stripe)?;
    VerifyConfig::with_secrets(["dGVhbXMtdG9rZW4="]).check(Provider::Teams)?;
    VerifyConfig::default()
        .header("X-Hook-Token", "t")
        .check(Provider::AzureDevOps)?;
    VerifyConfig::with_secrets(["s"])
        .tolerance(600)
        .check(Provider::Slack)?;
    Ok(())
}

#[test]
fn check_refuses_what_cannot_verify() {
    let cases = [
        (
            Provider::GitHub,
            VerifyConfig::default(),
            ConfigError::NoSecret,
        ),
        (
            Provider::Jira,
            VerifyConfig::with_secrets(["ok", ""]),
            ConfigError::InvalidSecret(1),
        ),
        (
            Provider::Standard,
            VerifyConfig::with_secrets(["whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="]),
            ConfigError::PrivateKey(0),
        ),
        (
            Provider::Standard,
            VerifyConfig::with_secrets(["whpk_AAAA"]),
            ConfigError::InvalidSecret(0),
        ),
        (
            Provider::Teams,
            VerifyConfig::with_secrets(["not base64!"]),
            ConfigError::InvalidSecret(0),
        ),
        (
            Provider::AzureDevOps,
            VerifyConfig::default(),
            ConfigError::NoCredentials,
        ),
        (
            Provider::AzureDevOps,
            VerifyConfig::default().header("Bad Name", "v"),
            ConfigError::InvalidHeaderName(0),
        ),
        (
            Provider::Stripe,
            VerifyConfig::with_secrets(["s"]).tolerance(0),
            ConfigError::ToleranceOutOfRange,
        ),
        (
            Provider::Slack,
            VerifyConfig::with_secrets(["s"]).tolerance(86_400),
            ConfigError::ToleranceOutOfRange,
        ),
    ];
    for (provider, config, expected) in cases {
        assert_eq!(config.check(provider), Err(expected), "{provider}");
    }
}

#[test]
fn every_provider_refuses_a_source_without_secrets() {
    let headers = [("Authorization", "HMAC AAAA".to_string())];
    for provider in Provider::ALL {
        assert_eq!(
            check(provider, &VerifyConfig::default(), &headers, b"{}"),
            Err(Rejection::NotConfigured),
            "{provider}"
        );
    }
}

#[test]
fn the_body_digest_is_the_dedupe_id_of_last_resort() -> anyhow::Result<()> {
    let body = b"{}";
    let key = b"jira-secret";
    let headers = [(
        "X-Hub-Signature",
        format!("sha256={}", hmac_hex(key, &[body])),
    )];
    let verified = check(
        Provider::Jira,
        &VerifyConfig::with_secrets(["jira-secret"]),
        &headers,
        body,
    )?;
    // SHA-256 of "{}".
    assert_eq!(
        verified.dedupe_id,
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert_eq!(verified.id_source, IdSource::BodyDigest);
    Ok(())
}

#[test]
fn a_body_is_kept_once_only_for_providers_whose_delivery_id_is_unsigned() {
    // SHA-256 of "{}".
    let digest = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    for provider in Provider::ALL {
        let expected = match provider {
            Provider::GitHub | Provider::Jira => Some(digest.to_string()),
            Provider::Stripe
            | Provider::Standard
            | Provider::Slack
            | Provider::Teams
            | Provider::AzureDevOps => None,
        };
        assert_eq!(replay_digest(provider, b"{}"), expected, "{provider}");
    }
    assert_ne!(
        replay_digest(Provider::GitHub, b"{} "),
        replay_digest(Provider::GitHub, b"{}")
    );
}
