use crate::{
    KeyError, PublicKey, Signer, SigningKey, SigningSecret, sign_v1, sign_v1a, signature_header,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

#[test]
fn the_published_standard_webhooks_test_vector_is_reproduced() -> anyhow::Result<()> {
    // The vector the Standard Webhooks reference libraries test against.
    let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
    let signature = sign_v1(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        br#"{"test": 2432232314}"#,
        &secret,
    );
    assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    Ok(())
}

#[test]
fn a_generated_secret_survives_its_whsec_form() -> anyhow::Result<()> {
    let random: Vec<u8> = (0u8..32).collect();
    let secret = SigningSecret::from_random(&random)?;
    let text = secret.to_whsec();
    assert!(text.starts_with("whsec_"));
    assert_eq!(STANDARD.decode(&text[6..])?, random);
    assert_eq!(SigningSecret::parse(&text)?, secret);
    Ok(())
}

#[test]
fn a_secret_needs_24_to_64_random_bytes() {
    for len in [0, 23, 65] {
        assert_eq!(
            SigningSecret::from_random(&vec![1; len]),
            Err(KeyError::WrongLength),
            "{len}"
        );
    }
    assert!(SigningSecret::from_random(&[1; 24]).is_ok());
    assert!(SigningSecret::from_random(&[1; 64]).is_ok());
    assert_eq!(SigningSecret::parse("whsec_!!"), Err(KeyError::NotBase64));
    assert_eq!(SigningSecret::parse("whsec_"), Err(KeyError::WrongLength));
}

#[test]
fn a_secret_to_sign_with_is_read_only_at_24_to_64_bytes() -> anyhow::Result<()> {
    // A sender's secret is read at any length; one we sign with is not.
    let short = format!("whsec_{}", STANDARD.encode([7u8; 16]));
    assert!(SigningSecret::parse(&short).is_ok());
    for len in [1, 16, 23, 65] {
        let encoded = STANDARD.encode(vec![7u8; len]);
        for text in [format!("whsec_{encoded}"), encoded] {
            assert_eq!(
                SigningSecret::parse_for_signing(&text),
                Err(KeyError::WrongLength),
                "{len}"
            );
        }
    }
    for len in [24, 32, 64] {
        let secret = SigningSecret::from_random(&vec![9u8; len])?;
        let bare = STANDARD.encode(vec![9u8; len]);
        assert_eq!(
            SigningSecret::parse_for_signing(&secret.to_whsec())?,
            secret
        );
        assert_eq!(SigningSecret::parse_for_signing(&bare)?, secret);
    }
    for text in ["", "whsec_", "whsec_!!", "not base64 at all"] {
        assert!(SigningSecret::parse_for_signing(text).is_err(), "{text:?}");
    }
    Ok(())
}

#[test]
fn the_ed25519_public_key_matches_rfc_8032() -> anyhow::Result<()> {
    // RFC 8032, section 7.1, test 1.
    let seed: [u8; 32] =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")?
            .try_into()
            .map_err(|_| anyhow::anyhow!("32 bytes"))?;
    let public = hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")?;
    let key = SigningKey::from_seed(&seed);
    assert_eq!(
        key.public_key().to_whpk(),
        format!("whpk_{}", STANDARD.encode(&public))
    );
    assert_eq!(key.to_whsk(), format!("whsk_{}", STANDARD.encode(seed)));
    Ok(())
}

#[test]
fn ed25519_keys_survive_their_whsk_and_whpk_forms() -> anyhow::Result<()> {
    let key = SigningKey::from_seed(&[3u8; 32]);
    let again = SigningKey::parse(&key.to_whsk())?;
    assert_eq!(again.public_key(), key.public_key());
    let public = PublicKey::parse(&key.public_key().to_whpk())?;
    assert_eq!(public, key.public_key());
    // The 64-byte layout (seed then public key) is read too, if consistent.
    let seed = STANDARD.decode(&key.to_whsk()[5..])?;
    let public_bytes = STANDARD.decode(&key.public_key().to_whpk()[5..])?;
    let long = format!(
        "whsk_{}",
        STANDARD.encode([&seed[..], &public_bytes[..]].concat())
    );
    assert_eq!(SigningKey::parse(&long)?.public_key(), key.public_key());
    let other = SigningKey::from_seed(&[4u8; 32]).public_key().to_whpk();
    let mismatched = [&seed[..], &STANDARD.decode(&other[5..])?[..]].concat();
    let mismatched = format!("whsk_{}", STANDARD.encode(mismatched));
    assert_eq!(
        SigningKey::parse(&mismatched).err(),
        Some(KeyError::InvalidKey)
    );
    Ok(())
}

#[test]
fn key_strings_must_carry_their_prefix_and_length() {
    let key = SigningKey::from_seed(&[3u8; 32]);
    let whpk = key.public_key().to_whpk();
    assert_eq!(SigningKey::parse(&whpk).err(), Some(KeyError::WrongPrefix));
    assert_eq!(PublicKey::parse(&key.to_whsk()), Err(KeyError::WrongPrefix));
    assert_eq!(PublicKey::parse("whpk_AAAA"), Err(KeyError::WrongLength));
    assert_eq!(
        SigningKey::parse("whsk_AAAA").err(),
        Some(KeyError::WrongLength)
    );
}

#[test]
fn a_v1a_signature_is_base64_of_64_bytes_over_the_signed_content() -> anyhow::Result<()> {
    let key = SigningKey::from_seed(&[8u8; 32]);
    let signature = sign_v1a("msg_1", 1_700_000_000, b"{}", &key);
    let bytes = STANDARD.decode(signature.strip_prefix("v1a,").unwrap_or_default())?;
    assert_eq!(bytes.len(), 64);
    assert!(key.public_key().verifies(b"msg_1.1700000000.{}", &bytes));
    assert!(!key.public_key().verifies(b"msg_1.1700000001.{}", &bytes));
    Ok(())
}

#[test]
fn the_signature_header_lists_one_signature_per_signer_in_order() -> anyhow::Result<()> {
    let new = SigningSecret::from_random(&[1; 32])?;
    let old = SigningSecret::from_random(&[2; 32])?;
    let key = SigningKey::from_seed(&[3; 32]);
    let signers = [
        Signer::Hmac(new.clone()),
        Signer::Hmac(old.clone()),
        Signer::Ed25519(key.clone()),
    ];
    let header = signature_header("msg_1", 5, b"{}", &signers);
    let expected = [
        sign_v1("msg_1", 5, b"{}", &new),
        sign_v1("msg_1", 5, b"{}", &old),
        sign_v1a("msg_1", 5, b"{}", &key),
    ]
    .join(" ");
    assert_eq!(header, expected);
    assert_eq!(signature_header("msg_1", 5, b"{}", &[]), "");
    Ok(())
}

#[test]
fn debug_output_of_keys_shows_no_key_material() -> anyhow::Result<()> {
    let secret = SigningSecret::from_random(&[1; 32])?;
    let key = SigningKey::from_seed(&[3; 32]);
    let shown = format!("{secret:?} {key:?} {:?}", Signer::Hmac(secret.clone()));
    assert!(!shown.contains(&secret.to_whsec()[6..12]));
    assert!(!shown.contains(&key.to_whsk()[5..11]));
    Ok(())
}
