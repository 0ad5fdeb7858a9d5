use super::*;
use crate::{IdSource, Signer, SigningKey, SigningSecret, signature_header};

const ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
const BODY: &[u8] = br#"{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z"}"#;

fn secret(byte: u8) -> SigningSecret {
    SigningSecret::from_random(&[byte; 32]).unwrap_or_else(|_| unreachable!())
}

fn headers(id: &str, ts: i64, signature: String) -> Vec<(&'static str, String)> {
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signature),
    ]
}

fn signed(ts: i64, signers: &[Signer]) -> Vec<(&'static str, String)> {
    headers(ID, ts, signature_header(ID, ts, BODY, signers))
}

#[test]
fn a_standard_delivery_verifies_with_its_id_and_body_type() -> anyhow::Result<()> {
    let key = secret(1);
    let config = VerifyConfig::with_secrets([key.to_whsec()]);
    let verified = check(
        Provider::Standard,
        &config,
        &signed(NOW, &[Signer::Hmac(key)]),
        BODY,
    )?;
    assert_eq!(verified.dedupe_id, ID);
    assert_eq!(verified.id_source, IdSource::Provider);
    assert_eq!(verified.event_type.as_deref(), Some("contact.created"));
    assert_eq!(verified.signed_at, Some(NOW));
    Ok(())
}

#[test]
fn a_signature_computed_by_hand_from_the_decoded_secret_verifies() -> anyhow::Result<()> {
    let raw = [42u8; 24];
    let whsec = format!("whsec_{}", STANDARD.encode(raw));
    let ts = NOW.to_string();
    let sig = hmac_b64(&raw, &[ID.as_bytes(), b".", ts.as_bytes(), b".", BODY]);
    let config = VerifyConfig::with_secrets([whsec]);
    check(
        Provider::Standard,
        &config,
        &headers(ID, NOW, format!("v1,{sig}")),
        BODY,
    )?;
    Ok(())
}

#[test]
fn one_matching_signature_among_several_is_enough() -> anyhow::Result<()> {
    let (old, new) = (secret(1), secret(2));
    let good = signature_header(ID, NOW, BODY, &[Signer::Hmac(old.clone())]);
    let list = format!(
        "v2,AAAA v1,not*base64 v1,{} v1a,AAAA  {good}",
        "A".repeat(44)
    );
    let config = VerifyConfig::with_secrets([new.to_whsec(), old.to_whsec()]);
    check(Provider::Standard, &config, &headers(ID, NOW, list), BODY)?;
    Ok(())
}

#[test]
fn a_rotation_signed_by_old_and_new_secrets_verifies_with_either() -> anyhow::Result<()> {
    let (old, new) = (secret(1), secret(2));
    let both = signed(NOW, &[Signer::Hmac(new.clone()), Signer::Hmac(old.clone())]);
    for key in [old, new] {
        let config = VerifyConfig::with_secrets([key.to_whsec()]);
        check(Provider::Standard, &config, &both, BODY)?;
    }
    let stranger = VerifyConfig::with_secrets([secret(3).to_whsec()]);
    assert_eq!(
        check(Provider::Standard, &stranger, &both, BODY),
        Err(Rejection::SignatureMismatch)
    );
    Ok(())
}

#[test]
fn a_v1a_signature_verifies_with_the_whpk_public_key_only() -> anyhow::Result<()> {
    let key = SigningKey::from_seed(&[5u8; 32]);
    let headers = signed(NOW, &[Signer::Ed25519(key.clone())]);
    let config = VerifyConfig::with_secrets([key.public_key().to_whpk()]);
    check(Provider::Standard, &config, &headers, BODY)?;
    let other = SigningKey::from_seed(&[6u8; 32]).public_key().to_whpk();
    assert_eq!(
        check(
            Provider::Standard,
            &VerifyConfig::with_secrets([other]),
            &headers,
            BODY
        ),
        Err(Rejection::SignatureMismatch)
    );
    // A private key in the configuration is never used to verify.
    assert_eq!(
        check(
            Provider::Standard,
            &VerifyConfig::with_secrets([key.to_whsk()]),
            &headers,
            BODY
        ),
        Err(Rejection::NotConfigured)
    );
    Ok(())
}

#[test]
fn a_tampered_body_id_or_timestamp_is_refused() {
    let key = secret(1);
    let config = VerifyConfig::with_secrets([key.to_whsec()]);
    let good = signature_header(ID, NOW, BODY, &[Signer::Hmac(key)]);
    let tampered = br#"{"type":"contact.deleted","timestamp":"2022-11-03T20:26:10.344522Z"}"#;
    for (headers, body) in [
        (headers(ID, NOW, good.clone()), &tampered[..]),
        (headers("msg_other", NOW, good.clone()), BODY),
        (headers(ID, NOW - 1, good), BODY),
    ] {
        assert_eq!(
            check(Provider::Standard, &config, &headers, body),
            Err(Rejection::SignatureMismatch)
        );
    }
}

#[test]
fn a_standard_timestamp_is_accepted_up_to_five_minutes_either_way() -> anyhow::Result<()> {
    let key = secret(1);
    let config = VerifyConfig::with_secrets([key.to_whsec()]);
    let signer = [Signer::Hmac(key)];
    for ts in [NOW - 300, NOW + 300] {
        check(Provider::Standard, &config, &signed(ts, &signer), BODY)?;
    }
    for ts in [NOW - 301, NOW + 301] {
        assert_eq!(
            check(Provider::Standard, &config, &signed(ts, &signer), BODY),
            Err(Rejection::TimestampOutOfTolerance)
        );
    }
    Ok(())
}

#[test]
fn each_standard_header_is_required() {
    let key = secret(1);
    let config = VerifyConfig::with_secrets([key.to_whsec()]);
    let full = signed(NOW, &[Signer::Hmac(key)]);
    let expected = [
        Rejection::MissingHeader("webhook-id"),
        Rejection::MissingHeader("webhook-timestamp"),
        Rejection::MissingSignature,
    ];
    for (i, rejection) in expected.into_iter().enumerate() {
        let mut partial = full.clone();
        partial.remove(i);
        assert_eq!(
            check(Provider::Standard, &config, &partial, BODY),
            Err(rejection)
        );
    }
}

#[test]
fn a_timestamp_must_be_whole_seconds_and_a_signature_must_be_versioned() {
    let key = secret(1);
    let config = VerifyConfig::with_secrets([key.to_whsec()]);
    let good = signature_header(ID, NOW, BODY, &[Signer::Hmac(key)]);
    for ts in ["1700000000.0", "-1700000000", "+1700000000", "", "1e9"] {
        let mut sent = headers(ID, NOW, good.clone());
        sent[1].1 = ts.to_string();
        assert_eq!(
            check(Provider::Standard, &config, &sent, BODY),
            Err(Rejection::MalformedTimestamp),
            "{ts:?}"
        );
    }
    for signature in [
        "",
        "v2,AAAA",
        "K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    ] {
        assert_eq!(
            check(
                Provider::Standard,
                &config,
                &headers(ID, NOW, signature.into()),
                BODY
            ),
            Err(Rejection::MalformedSignature),
            "{signature:?}"
        );
    }
}

#[test]
fn a_bare_base64_secret_works_like_its_whsec_form() -> anyhow::Result<()> {
    let key = secret(9);
    let bare = key.to_whsec().trim_start_matches("whsec_").to_string();
    let config = VerifyConfig::with_secrets([bare]);
    check(
        Provider::Standard,
        &config,
        &signed(NOW, &[Signer::Hmac(key)]),
        BODY,
    )?;
    Ok(())
}

#[test]
fn a_header_listing_more_than_sixteen_signatures_is_refused() -> anyhow::Result<()> {
    let key = SigningKey::from_seed(&[5u8; 32]);
    let config = VerifyConfig::with_secrets([key.public_key().to_whpk()]);
    let good = signature_header(ID, NOW, BODY, &[Signer::Ed25519(key)]);
    let filler = format!("v1a,{}", STANDARD.encode([0u8; 64]));
    let at_cap = format!("{} {good}", vec![filler.as_str(); 15].join(" "));
    check(Provider::Standard, &config, &headers(ID, NOW, at_cap), BODY)?;
    let over_cap = format!("{} {good}", vec![filler.as_str(); 16].join(" "));
    assert_eq!(
        check(
            Provider::Standard,
            &config,
            &headers(ID, NOW, over_cap),
            BODY
        ),
        Err(Rejection::MalformedSignature)
    );
    Ok(())
}
