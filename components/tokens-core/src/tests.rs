use super::*;

/// RFC 8037, appendix A.1: the private key `d`.
const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";

fn rfc_key() -> SigningKey {
    let d: [u8; 32] = URL_SAFE_NO_PAD
        .decode(RFC8037_D)
        .ok()
        .and_then(|v| v.try_into().ok())
        .unwrap_or([0; 32]);
    SigningKey::from_secret(Algorithm::EdDSA, &d).unwrap_or_else(|_| unreachable!())
}

fn claims(now: i64) -> Map<String, Value> {
    let Value::Object(map) = serde_json::json!({
        "iss": "https://auth.example.com", "sub": "usr_1", "aud": ["api", "other"],
        "iat": now, "nbf": now, "exp": now + 300, "jti": "j1"
    }) else {
        unreachable!()
    };
    map
}

fn expect(now: i64) -> Expectations<'static> {
    Expectations {
        issuer: "https://auth.example.com",
        audiences: &["api"],
        now,
        leeway: 30,
    }
}

fn es256_key() -> SigningKey {
    SigningKey::from_secret(Algorithm::ES256, &[7u8; 32]).unwrap_or_else(|_| unreachable!())
}

#[test]
fn the_public_jwk_and_kid_match_rfc_8037_and_7638() {
    let jwk = rfc_key().jwk();
    assert_eq!(jwk.x, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    assert_eq!(jwk.kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    assert_eq!(
        (jwk.kty.as_str(), jwk.crv.as_str(), jwk.alg.as_str()),
        ("OKP", "Ed25519", "EdDSA")
    );
}

#[test]
fn signed_tokens_verify_with_either_algorithm() -> Result<(), Refusal> {
    for key in [rfc_key(), es256_key()] {
        let jwk = key.jwk();
        let token = sign(&key, &jwk.kid, &claims(1000));
        assert_eq!(key_id(&token).as_deref(), Some(jwk.kid.as_str()));
        let verified = verify(&token, std::slice::from_ref(&jwk), &expect(1000))?;
        assert_eq!(verified.get("sub"), Some(&Value::from("usr_1")));
    }
    let es = es256_key().jwk();
    assert_eq!((es.kty.as_str(), es.crv.as_str()), ("EC", "P-256"));
    assert!(es.y.is_some());
    Ok(())
}

#[test]
fn keys_survive_their_secret_bytes() -> Result<(), InvalidKey> {
    for key in [rfc_key(), es256_key()] {
        let again = SigningKey::from_secret(key.algorithm(), &key.secret_bytes())?;
        assert_eq!(again.jwk(), key.jwk());
    }
    Ok(())
}

fn part(token: &str, i: usize) -> &str {
    token.split('.').nth(i).unwrap_or_default()
}

fn forged_header(token: &str, header: &Value) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        part(token, 1),
        part(token, 2)
    )
}

#[test]
fn tampered_unsigned_and_confused_tokens_are_refused() {
    let key = rfc_key();
    let jwk = key.jwk();
    let keys = [jwk.clone()];
    let token = sign(&key, &jwk.kid, &claims(1000));

    let mut other = claims(1000);
    other.insert("sub".into(), Value::from("usr_admin"));
    let tampered = format!(
        "{}.{}.{}",
        part(&token, 0),
        URL_SAFE_NO_PAD.encode(Value::Object(other).to_string()),
        part(&token, 2)
    );
    assert_eq!(
        verify(&tampered, &keys, &expect(1000)),
        Err(Refusal::Signature)
    );

    let none = serde_json::json!({"alg": "none", "typ": "JWT", "kid": jwk.kid});
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(none.to_string()),
        part(&token, 1)
    );
    assert_eq!(
        verify(&unsigned, &keys, &expect(1000)),
        Err(Refusal::Algorithm)
    );
    let hs = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": jwk.kid});
    assert_eq!(
        verify(&forged_header(&token, &hs), &keys, &expect(1000)),
        Err(Refusal::Algorithm)
    );
    // An ES256 header on an Ed25519 key: the key's algorithm decides.
    let es = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": jwk.kid});
    assert_eq!(
        verify(&forged_header(&token, &es), &keys, &expect(1000)),
        Err(Refusal::Algorithm)
    );
    let unknown = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "nope"});
    assert_eq!(
        verify(&forged_header(&token, &unknown), &keys, &expect(1000)),
        Err(Refusal::UnknownKey)
    );

    for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
        assert_eq!(
            verify(bad, &keys, &expect(1000)),
            Err(Refusal::Malformed),
            "{bad}"
        );
    }
    // Another key with the same kid claimed does not verify.
    let impostor = es256_key();
    let forged = sign(&impostor, &jwk.kid, &claims(1000));
    assert!(verify(&forged, &keys, &expect(1000)).is_err());
}

#[test]
fn claims_are_checked_with_leeway() {
    let key = rfc_key();
    let jwk = key.jwk();
    let keys = [jwk.clone()];
    let token = sign(&key, &jwk.kid, &claims(1000));
    assert!(
        verify(&token, &keys, &expect(1000 + 300 + 29)).is_ok(),
        "within leeway after exp"
    );
    assert_eq!(
        verify(&token, &keys, &expect(1000 + 300 + 30)),
        Err(Refusal::Expired)
    );
    assert!(verify(&token, &keys, &expect(1000 - 30)).is_ok());
    assert_eq!(
        verify(&token, &keys, &expect(1000 - 31)),
        Err(Refusal::NotYetValid)
    );
    let wrong_issuer = Expectations {
        issuer: "https://evil.example.com",
        ..expect(1000)
    };
    assert_eq!(verify(&token, &keys, &wrong_issuer), Err(Refusal::Issuer));
    let wrong_audience = Expectations {
        audiences: &["billing"],
        ..expect(1000)
    };
    assert_eq!(
        verify(&token, &keys, &wrong_audience),
        Err(Refusal::Audience)
    );
    let mut no_exp = claims(1000);
    no_exp.remove("exp");
    let token = sign(&key, &jwk.kid, &no_exp);
    assert_eq!(
        verify(&token, &keys, &expect(1000)),
        Err(Refusal::Expired),
        "exp is required"
    );
}

#[test]
fn public_keys_from_others_are_checked_and_named_by_thumbprint() {
    let ours = rfc_key().jwk();
    let theirs = Jwk::from_public("OKP", "Ed25519", &ours.x, None);
    assert_eq!(theirs.map(|k| k.kid), Ok(ours.kid));
    let es = es256_key().jwk();
    assert!(Jwk::from_public("EC", "P-256", &es.x, es.y.as_deref()).is_ok());
    assert_eq!(
        Jwk::from_public("OKP", "Ed25519", "AAAA", None),
        Err(InvalidKey)
    );
    assert_eq!(
        Jwk::from_public("EC", "P-256", &es.x, Some(&es.x)),
        Err(InvalidKey),
        "not on the curve"
    );
    assert_eq!(
        Jwk::from_public("RSA", "P-256", &es.x, es.y.as_deref()),
        Err(InvalidKey)
    );
    assert_eq!(
        Jwk::from_public("OKP", "Ed25519", &ours.x, Some("y")),
        Err(InvalidKey)
    );
}

/// A deterministic generator, so the RSA test key is the same every run.
struct Counter(u64);

impl rand_core::RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            self.0 += 1;
            let block = Sha256::digest(self.0.to_le_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for Counter {}

/// An RS256 token over `claims` signed by a fresh RSA key of `bits`, and
/// that key's JWK Set entry.
fn rs256(bits: usize, claims: &Map<String, Value>) -> (String, Value) {
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::traits::PublicKeyParts;
    let private =
        rsa::RsaPrivateKey::new(&mut Counter(bits as u64), bits).unwrap_or_else(|_| unreachable!());
    let public = private.to_public_key();
    let entry = serde_json::json!({
        "kty": "RSA", "use": "sig", "kid": "idp-key-1",
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    });
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "idp-key-1"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string())
    );
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(private);
    let signature = signer.sign(input.as_bytes()).to_vec();
    (
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)),
        entry,
    )
}

#[test]
fn rs256_tokens_of_other_issuers_verify_against_their_key_set() -> Result<(), Refusal> {
    let (token, entry) = rs256(2048, &claims(1000));
    let keys = key_set(&serde_json::json!({"keys": [
        entry,
        {"kty": "RSA", "use": "enc", "kid": "enc-1", "n": "AQAB", "e": "AQAB"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        rfc_key().jwk(),
    ]}));
    // The encryption key and the symmetric key are not taken.
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        vec!["idp-key-1", "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"]
    );
    assert_eq!(keys[0].alg, "RS256");
    let verified = verify(&token, &keys, &expect(1000))?;
    assert_eq!(verified.get("jti"), Some(&Value::from("j1")));

    // A changed claim breaks the signature; so does a header naming
    // another algorithm for the RSA key.
    let mut other = claims(1000);
    other.insert("sub".into(), "usr_2".into());
    let forged = format!(
        "{}.{}.{}",
        part(&token, 0),
        URL_SAFE_NO_PAD.encode(Value::Object(other).to_string()),
        part(&token, 2)
    );
    assert_eq!(
        verify(&forged, &keys, &expect(1000)),
        Err(Refusal::Signature)
    );
    let confused = forged_header(
        &token,
        &serde_json::json!({"alg": "ES256", "kid": "idp-key-1"}),
    );
    assert_eq!(
        verify(&confused, &keys, &expect(1000)),
        Err(Refusal::Algorithm)
    );
    let hmac = forged_header(&token, &serde_json::json!({"alg": "HS256", "kid": "hmac"}));
    assert_eq!(verify(&hmac, &keys, &expect(1000)), Err(Refusal::Algorithm));
    Ok(())
}

#[test]
fn short_rsa_keys_and_mismatched_algorithms_are_not_taken() {
    let (token, entry) = rs256(1024, &claims(1000));
    assert!(Jwk::from_set_entry(&entry).is_none());
    // Even handed in directly, the short key verifies nothing.
    let jwk: Jwk = serde_json::from_value(serde_json::json!({
        "kty": "RSA", "n": entry["n"], "e": entry["e"], "kid": "idp-key-1", "alg": "RS256", "use": "sig"
    }))
    .unwrap_or_else(|_| unreachable!());
    assert_eq!(
        verify(&token, &[jwk], &expect(1000)),
        Err(Refusal::UnknownKey)
    );
    let mut mislabelled = rfc_key().jwk();
    mislabelled.alg = "RS256".into();
    let value = serde_json::to_value(&mislabelled).unwrap_or_default();
    assert!(Jwk::from_set_entry(&value).is_none());
    assert!(key_set(&serde_json::json!({"nokeys": []})).is_empty());
}

#[test]
fn gatehouse_signs_only_with_eddsa_and_es256() {
    assert_eq!(Algorithm::parse_signing("EdDSA"), Some(Algorithm::EdDSA));
    assert_eq!(Algorithm::parse_signing("ES256"), Some(Algorithm::ES256));
    assert_eq!(Algorithm::parse_signing("RS256"), None);
    assert_eq!(Algorithm::parse("RS256"), Some(Algorithm::RS256));
    assert!(SigningKey::from_secret(Algorithm::RS256, &[1; 32]).is_err());
}
