use super::*;
use crate::IdSource;

const SECRET: &str = "whsec_test_endpoint_secret";
const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#;

fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    hmac_hex(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body])
}

fn header(value: String) -> [(&'static str, String); 1] {
    [("Stripe-Signature", value)]
}

fn config() -> VerifyConfig {
    VerifyConfig::with_secrets([SECRET])
}

#[test]
fn a_stripe_delivery_signed_with_the_endpoint_secret_verifies() -> anyhow::Result<()> {
    let signed = header(format!("t={NOW},v1={}", signature(SECRET, NOW, BODY)));
    let verified = check(Provider::Stripe, &config(), &signed, BODY)?;
    assert_eq!(verified.dedupe_id, "evt_1");
    assert_eq!(verified.id_source, IdSource::Provider);
    assert_eq!(verified.event_type.as_deref(), Some("invoice.paid"));
    assert_eq!(verified.signed_at, Some(NOW));
    Ok(())
}

#[test]
fn any_v1_signature_in_the_header_may_match() -> anyhow::Result<()> {
    let good = signature(SECRET, NOW, BODY);
    let value = format!("t={NOW},v1={},v0={good},v1={good}", "00".repeat(32));
    check(Provider::Stripe, &config(), &header(value), BODY)?;
    Ok(())
}

#[test]
fn any_configured_stripe_secret_may_match_during_a_rotation() -> anyhow::Result<()> {
    let rotated = VerifyConfig::with_secrets(["whsec_new", SECRET]);
    let signed = header(format!("t={NOW},v1={}", signature(SECRET, NOW, BODY)));
    check(Provider::Stripe, &rotated, &signed, BODY)?;
    let only_new = VerifyConfig::with_secrets(["whsec_new"]);
    assert_eq!(
        check(Provider::Stripe, &only_new, &signed, BODY),
        Err(Rejection::SignatureMismatch)
    );
    Ok(())
}

#[test]
fn a_tampered_stripe_body_or_timestamp_is_refused() {
    let good = signature(SECRET, NOW, BODY);
    let tampered = br#"{"id":"evt_1","object":"event","type":"invoice.void"}"#;
    let signed = header(format!("t={NOW},v1={good}"));
    assert_eq!(
        check(Provider::Stripe, &config(), &signed, tampered),
        Err(Rejection::SignatureMismatch)
    );
    let moved = header(format!("t={},v1={good}", NOW - 1));
    assert_eq!(
        check(Provider::Stripe, &config(), &moved, BODY),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn a_stripe_timestamp_is_accepted_up_to_five_minutes_either_way() -> anyhow::Result<()> {
    for t in [NOW - 300, NOW + 300] {
        let signed = header(format!("t={t},v1={}", signature(SECRET, t, BODY)));
        check(Provider::Stripe, &config(), &signed, BODY)?;
    }
    for t in [NOW - 301, NOW + 301] {
        let signed = header(format!("t={t},v1={}", signature(SECRET, t, BODY)));
        assert_eq!(
            check(Provider::Stripe, &config(), &signed, BODY),
            Err(Rejection::TimestampOutOfTolerance)
        );
    }
    Ok(())
}

#[test]
fn the_stripe_tolerance_can_be_configured() -> anyhow::Result<()> {
    let t = NOW - 600;
    let signed = header(format!("t={t},v1={}", signature(SECRET, t, BODY)));
    check(Provider::Stripe, &config().tolerance(600), &signed, BODY)?;
    assert_eq!(
        check(Provider::Stripe, &config().tolerance(599), &signed, BODY),
        Err(Rejection::TimestampOutOfTolerance)
    );
    Ok(())
}

#[test]
fn a_stripe_header_without_one_t_and_a_v1_is_malformed() {
    let good = signature(SECRET, NOW, BODY);
    for value in [
        format!("v1={good}"),
        format!("t={NOW}"),
        format!("t={NOW},v0={good}"),
        format!("t={NOW},t={NOW},v1={good}"),
        format!("t={NOW},v1=not-hex"),
        "garbage".to_string(),
    ] {
        assert_eq!(
            check(Provider::Stripe, &config(), &header(value.clone()), BODY),
            Err(Rejection::MalformedSignature),
            "{value}"
        );
    }
    let fractional = header(format!("t={NOW}.5,v1={good}"));
    assert_eq!(
        check(Provider::Stripe, &config(), &fractional, BODY),
        Err(Rejection::MalformedTimestamp)
    );
}

#[test]
fn a_stripe_delivery_without_its_header_is_missing_a_signature() {
    let none: [(&str, String); 0] = [];
    assert_eq!(
        check(Provider::Stripe, &config(), &none, BODY),
        Err(Rejection::MissingSignature)
    );
}

#[test]
fn a_signed_stripe_body_must_still_be_json() {
    let body = b"not json";
    let signed = header(format!("t={NOW},v1={}", signature(SECRET, NOW, body)));
    assert_eq!(
        check(Provider::Stripe, &config(), &signed, body),
        Err(Rejection::BodyNotJson)
    );
}

#[test]
fn a_stripe_event_without_an_id_is_deduplicated_by_its_digest() -> anyhow::Result<()> {
    let body = br#"{"type":"ping"}"#;
    let signed = header(format!("t={NOW},v1={}", signature(SECRET, NOW, body)));
    let verified = check(Provider::Stripe, &config(), &signed, body)?;
    assert_eq!(verified.id_source, IdSource::BodyDigest);
    assert!(verified.dedupe_id.starts_with("sha256:"));
    Ok(())
}
