//! The verifier against tokens signed with `tokens_core` keys and a fake
//! JWKS: claims, refusals, and when the keys are (re)fetched.

use anyhow::{Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use tokens_core::{Algorithm, SigningKey};

use super::{Fake, run};
use crate::transport::HttpResponse;
use crate::verifier::{CachedKeys, InvalidToken, KeysError, Verifier, VerifyError};

const BASE: &str = "https://auth.example.com";
/// The time tokens are issued at, Unix seconds.
const T0: i64 = 1_700_000_000;

fn key(alg: Algorithm, seed: u8) -> Result<SigningKey> {
    SigningKey::from_secret(alg, &[seed; 32]).map_err(|_| anyhow!("no key from seed {seed}"))
}

fn jwks(keys: &[&SigningKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

fn claims(overrides: Value) -> Map<String, Value> {
    let mut claims = json!({
        "iss": BASE, "sub": "usr_ada", "aud": ["gatehouse"],
        "iat": T0, "nbf": T0, "exp": T0 + 900, "jti": "5f0c",
        "org": "org_acme", "org_role": "admin", "teams": ["team_eng"],
        "roles": ["analyst"], "permissions": ["reports:read"], "azp": "dashboard",
    });
    if let (Some(base), Value::Object(more)) = (claims.as_object_mut(), overrides) {
        base.extend(more);
    }
    claims.as_object().cloned().unwrap_or_default()
}

fn token(key: &SigningKey, overrides: Value) -> String {
    tokens_core::sign(key, &key.jwk().kid, &claims(overrides))
}

fn verifier(fake: &Fake) -> Verifier<&Fake> {
    Verifier::new(BASE, fake)
}

fn refusal(outcome: Result<crate::Claims, VerifyError>) -> Option<InvalidToken> {
    match outcome {
        Err(VerifyError::Invalid(why)) => Some(why),
        _ => None,
    }
}

#[test]
fn a_valid_token_gives_its_claims_typed() -> Result<()> {
    let ed = key(Algorithm::EdDSA, 1)?;
    let fake = Fake::serving(jwks(&[&ed]));
    let verifier = verifier(&fake);
    let jwt = token(
        &ed,
        json!({"act": {"sub": "usr_root"}, "tenant_tier": "gold"}),
    );
    let claims = run(verifier.verify_at(&jwt, T0 + 10))?;
    assert_eq!(
        (claims.sub.as_str(), claims.org.as_deref()),
        ("usr_ada", Some("org_acme"))
    );
    assert_eq!(claims.aud, ["gatehouse"]);
    assert_eq!((claims.exp, claims.iat), (T0 + 900, Some(T0)));
    assert_eq!(claims.jti.as_deref(), Some("5f0c"));
    assert!(claims.is_org_admin() && claims.in_team("team_eng"));
    assert!(claims.has_role("analyst") && !claims.has_role("admin"));
    assert!(claims.has_permission("reports:read") && !claims.has_permission("reports:write"));
    assert_eq!(claims.azp.as_deref(), Some("dashboard"));
    assert_eq!(claims.impersonator(), Some("usr_root"));
    assert_eq!(claims.extra.get("tenant_tier"), Some(&json!("gold")));
    assert_eq!(
        fake.gets.lock().unwrap().as_slice(),
        [format!("{BASE}/.well-known/jwks.json")]
    );

    // ES256 keys verify too; a single-string `aud` reads as one audience,
    // and a token without `act` has no impersonator.
    let es = key(Algorithm::ES256, 2)?;
    fake.publish(jwks(&[&ed, &es]));
    let plain = token(&es, json!({"aud": "gatehouse"}));
    let claims = run(verifier.verify_at(&plain, T0 + 100))?;
    assert_eq!(
        (claims.aud.clone(), claims.impersonator()),
        (vec!["gatehouse".to_string()], None)
    );
    Ok(())
}

#[test]
fn tampered_expired_and_foreign_tokens_are_refused() -> Result<()> {
    let ed = key(Algorithm::EdDSA, 1)?;
    let fake = Fake::serving(jwks(&[&ed]));
    let verifier = verifier(&fake);
    let jwt = token(&ed, json!({}));

    let parts: Vec<&str> = jwt.split('.').collect();
    let widened =
        URL_SAFE_NO_PAD.encode(Value::Object(claims(json!({"permissions": ["*"]}))).to_string());
    let tampered = format!("{}.{widened}.{}", parts[0], parts[2]);
    assert_eq!(
        refusal(run(verifier.verify_at(&tampered, T0))),
        Some(InvalidToken::Signature)
    );

    // Past `exp` beyond the 60 s leeway; inside it, still fine.
    assert!(run(verifier.verify_at(&jwt, T0 + 900 + 59)).is_ok());
    assert_eq!(
        refusal(run(verifier.verify_at(&jwt, T0 + 900 + 60))),
        Some(InvalidToken::Expired)
    );
    assert_eq!(
        refusal(run(verifier.verify_at(&jwt, T0 - 120))),
        Some(InvalidToken::NotYetValid)
    );

    let billing = token(&ed, json!({"aud": ["billing"]}));
    assert_eq!(
        refusal(run(verifier.verify_at(&billing, T0))),
        Some(InvalidToken::Audience)
    );
    let for_billing = Verifier::new(BASE, &fake).with_audiences(["billing"]);
    assert_eq!(run(for_billing.verify_at(&billing, T0))?.aud, ["billing"]);

    let elsewhere = token(&ed, json!({"iss": "https://evil.example"}));
    assert_eq!(
        refusal(run(verifier.verify_at(&elsewhere, T0))),
        Some(InvalidToken::Issuer)
    );
    // The issuer is compared without a trailing slash on either side.
    let slashed = Verifier::new(&format!("{BASE}/"), &fake);
    assert!(run(slashed.verify_at(&jwt, T0)).is_ok());

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD
            .encode(json!({"alg": "none", "typ": "JWT", "kid": ed.jwk().kid}).to_string()),
        parts[1]
    );
    assert_eq!(
        refusal(run(verifier.verify_at(&unsigned, T0))),
        Some(InvalidToken::Algorithm)
    );
    let hmac = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": ed.jwk().kid}).to_string()),
        parts[1],
        parts[2]
    );
    assert_eq!(
        refusal(run(verifier.verify_at(&hmac, T0))),
        Some(InvalidToken::Algorithm)
    );
    assert_eq!(
        refusal(run(verifier.verify_at("not.a.jwt", T0))),
        Some(InvalidToken::Malformed)
    );

    // Signed, but without a subject.
    let mut no_sub = claims(json!({}));
    no_sub.remove("sub");
    let no_sub = tokens_core::sign(&ed, &ed.jwk().kid, &no_sub);
    assert_eq!(
        refusal(run(verifier.verify_at(&no_sub, T0))),
        Some(InvalidToken::Claims)
    );

    // One fetch per verifier: no refusal made one fetch again.
    assert_eq!(fake.get_count(), 3);
    Ok(())
}

#[test]
fn an_unknown_kid_refetches_once_per_floor_and_rotation_is_picked_up() -> Result<()> {
    let (old, new, forged) = (
        key(Algorithm::EdDSA, 1)?,
        key(Algorithm::EdDSA, 2)?,
        key(Algorithm::EdDSA, 3)?,
    );
    let fake = Fake::serving(jwks(&[&old]));
    let verifier = verifier(&fake);
    run(verifier.verify_at(&token(&old, json!({})), T0))?;
    assert_eq!(fake.get_count(), 1);

    // The floor (60 s) counts from the last fetch. A kid the cache does not
    // hold: one refetch, which does not hold it either.
    let unknown = token(&forged, json!({}));
    assert_eq!(
        refusal(run(verifier.verify_at(&unknown, T0 + 60))),
        Some(InvalidToken::UnknownKey)
    );
    assert_eq!(fake.get_count(), 2);
    // Gatehouse rotates; inside the floor another unknown kid fetches nothing.
    fake.publish(jwks(&[&new, &old]));
    let rotated = token(&new, json!({}));
    assert_eq!(
        refusal(run(verifier.verify_at(&rotated, T0 + 90))),
        Some(InvalidToken::UnknownKey)
    );
    assert_eq!(fake.get_count(), 2);
    // Known keys still verify without a fetch.
    run(verifier.verify_at(&token(&old, json!({})), T0 + 90))?;
    assert_eq!(fake.get_count(), 2);

    // After the floor, the new kid is fetched and verifies.
    let claims = run(verifier.verify_at(&rotated, T0 + 120))?;
    assert_eq!(claims.sub, "usr_ada");
    assert_eq!(fake.get_count(), 3);
    run(verifier.verify_at(&rotated, T0 + 130))?;
    assert_eq!(fake.get_count(), 3);
    Ok(())
}

#[test]
fn keys_are_refetched_when_older_than_their_maximum_age() -> Result<()> {
    let ed = key(Algorithm::EdDSA, 1)?;
    let fake = Fake::serving(jwks(&[&ed]));
    let verifier = verifier(&fake).with_max_age(std::time::Duration::from_secs(600));
    let jwt = token(&ed, json!({}));
    run(verifier.verify_at(&jwt, T0))?;
    run(verifier.verify_at(&jwt, T0 + 599))?;
    assert_eq!(fake.get_count(), 1);
    run(verifier.verify_at(&jwt, T0 + 600))?;
    assert_eq!(fake.get_count(), 2);
    Ok(())
}

#[test]
fn a_failing_jwks_keeps_the_cached_keys() -> Result<()> {
    let (ed, rotated) = (key(Algorithm::EdDSA, 1)?, key(Algorithm::EdDSA, 2)?);
    let fake = Fake::serving(jwks(&[&ed]));
    let verifier = verifier(&fake);
    let jwt = token(&ed, json!({"exp": T0 + 7200}));
    run(verifier.verify_at(&jwt, T0))?;

    fake.fail_gets();
    // Stale keys: the refetch fails, the cached keys still verify.
    assert!(run(verifier.verify_at(&jwt, T0 + 3600)).is_ok());
    assert_eq!(fake.get_count(), 2);
    // An unknown kid after the floor: the refetch fails, the token is refused.
    let unknown = token(&rotated, json!({}));
    assert_eq!(
        refusal(run(verifier.verify_at(&unknown, T0 + 3700))),
        Some(InvalidToken::UnknownKey)
    );
    assert_eq!(fake.get_count(), 3);
    assert!(run(verifier.verify_at(&jwt, T0 + 3700)).is_ok());
    Ok(())
}

#[test]
fn without_cached_keys_a_failing_jwks_is_unavailable_not_invalid() -> Result<()> {
    let ed = key(Algorithm::EdDSA, 1)?;
    let jwt = token(&ed, json!({}));
    let fake = Fake::default();
    let verifier = verifier(&fake);
    match run(verifier.verify_at(&jwt, T0)) {
        Err(VerifyError::KeysUnavailable(KeysError::Transport(e))) => {
            assert_eq!(e.message(), "connection refused")
        }
        other => panic!("{other:?}"),
    }
    // Every call tries while nothing is cached.
    *fake.jwks.lock().unwrap() = Some(HttpResponse {
        status: 503,
        body: Vec::new(),
    });
    assert_eq!(
        run(verifier.verify_at(&jwt, T0 + 1)).err(),
        Some(VerifyError::KeysUnavailable(KeysError::Status(503)))
    );
    fake.publish(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]}));
    assert_eq!(
        run(verifier.verify_at(&jwt, T0 + 2)).err(),
        Some(VerifyError::KeysUnavailable(KeysError::NotAKeySet))
    );
    fake.publish(jwks(&[&ed]));
    assert!(run(verifier.verify_at(&jwt, T0 + 3)).is_ok());
    assert_eq!(fake.get_count(), 4);
    Ok(())
}

#[test]
fn errors_read_as_sentences() {
    assert_eq!(
        VerifyError::Invalid(InvalidToken::Expired).to_string(),
        "the token has expired"
    );
    assert_eq!(
        VerifyError::KeysUnavailable(KeysError::Status(502)).to_string(),
        "no signing keys: the JWKS answered 502"
    );
}

#[test]
fn verification_is_send_when_the_transport_is() -> Result<()> {
    fn send<F: Send>(future: F) -> F {
        future
    }
    let ed = key(Algorithm::EdDSA, 1)?;
    let fake = Fake::serving(jwks(&[&ed]));
    let verifier = std::sync::Arc::new(verifier(&fake));
    let jwt = token(&ed, json!({}));
    run(send(verifier.verify_at(&jwt, T0)))?;
    Ok(())
}

#[test]
fn cached_keys_carry_the_cache_to_a_new_verifier() -> Result<()> {
    let (ed, forged) = (key(Algorithm::EdDSA, 1)?, key(Algorithm::EdDSA, 3)?);
    let fake = Fake::serving(jwks(&[&ed]));
    let first = verifier(&fake);
    assert_eq!(first.cached_keys(), None);
    let jwt = token(&ed, json!({}));
    run(first.verify_at(&jwt, T0))?;
    let kept = first
        .cached_keys()
        .ok_or_else(|| anyhow!("keys are cached"))?;
    assert_eq!((kept.fetched_at, kept.attempted_at), (T0, T0));
    // Kept as JSON (in a key-value store), read back by the next instance.
    let kept: CachedKeys = serde_json::from_slice(&serde_json::to_vec(&kept)?)?;

    let next = verifier(&fake).with_cached_keys(&kept);
    run(next.verify_at(&jwt, T0 + 10))?;
    // The floor carries over too: an unknown kid inside it fetches nothing.
    let unknown = token(&forged, json!({}));
    assert_eq!(
        refusal(run(next.verify_at(&unknown, T0 + 20))),
        Some(InvalidToken::UnknownKey)
    );
    assert_eq!(fake.get_count(), 1);

    // A kept set without a usable key starts an empty cache.
    let empty = CachedKeys {
        jwks: json!({"keys": []}),
        ..kept
    };
    let cold = verifier(&fake).with_cached_keys(&empty);
    run(cold.verify_at(&jwt, T0 + 30))?;
    assert_eq!(fake.get_count(), 2);
    Ok(())
}
