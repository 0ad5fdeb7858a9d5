//! Signed JWTs (RFC 7519) in compact JWS form (RFC 7515), free of I/O.
//!
//! - [`SigningKey`]: an Ed25519 (`EdDSA`, RFC 8037) or P-256 (`ES256`)
//!   private key, made from random bytes the caller supplies, with its
//!   public [`Jwk`] (RFC 7517) and a `kid` that is the key's RFC 7638
//!   thumbprint.
//! - [`sign`]: header `{alg, typ: "JWT", kid}` and the caller's claims.
//! - [`verify`]: splits a token, refuses any algorithm outside the allow
//!   list (so `none` and HMAC confusion are impossible), finds the key by
//!   `kid`, checks the signature, then [`Expectations`] on `iss`, `aud`,
//!   `exp`, `nbf` and `iat` with a small leeway.
//! - [`key_set`]: the usable keys of a JWK Set another issuer publishes
//!   (an OpenID provider's `jwks_uri`): besides the two above, `RS256`
//!   with RSA keys of at least 2048 bits, which Auth0, Okta and Entra sign
//!   with. Gatehouse only ever signs with EdDSA or ES256.

#![deny(missing_docs)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The algorithms Gatehouse accepts; it signs with the first two only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    /// Ed25519 (RFC 8037).
    EdDSA,
    /// ECDSA over P-256 with SHA-256 (RFC 7518).
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518), for other issuers' keys.
    RS256,
}

/// The smallest RSA modulus accepted, in bits (RFC 7518, section 3.3).
pub const MIN_RSA_BITS: usize = 2048;

impl Algorithm {
    /// The `alg` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
        }
    }

    /// Parses an algorithm Gatehouse signs with (EdDSA, ES256); anything
    /// else is `None`.
    pub fn parse_signing(alg: &str) -> Option<Algorithm> {
        Algorithm::parse(alg).filter(|a| *a != Algorithm::RS256)
    }

    /// Parses an `alg` value of the allow list; anything else is `None`.
    pub fn parse(alg: &str) -> Option<Algorithm> {
        match alg {
            "EdDSA" => Some(Algorithm::EdDSA),
            "ES256" => Some(Algorithm::ES256),
            "RS256" => Some(Algorithm::RS256),
            _ => None,
        }
    }
}

/// A public key as JSON Web Key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `OKP` (Ed25519), `EC` (P-256) or `RSA`.
    pub kty: String,
    /// `Ed25519` or `P-256`; empty for RSA.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub crv: String,
    /// The public key (Ed25519) or its x coordinate (P-256), base64url;
    /// empty for RSA.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub x: String,
    /// The y coordinate (P-256 only), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// The RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// The key id.
    pub kid: String,
    /// The algorithm.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
}

impl Jwk {
    /// A public key someone else holds the private half of, checked: an
    /// Ed25519 key of 32 bytes, or a point on P-256. Its `kid` is the RFC
    /// 7638 thumbprint, whatever the submitter called it.
    pub fn from_public(kty: &str, crv: &str, x: &str, y: Option<&str>) -> Result<Jwk, InvalidKey> {
        let alg = match (kty, crv, y) {
            ("OKP", "Ed25519", None) => Algorithm::EdDSA,
            ("EC", "P-256", Some(_)) => Algorithm::ES256,
            _ => return Err(InvalidKey),
        };
        let jwk = Jwk {
            kid: thumbprint(kty, crv, x, y),
            kty: kty.into(),
            crv: crv.into(),
            x: x.into(),
            y: y.map(str::to_string),
            n: None,
            e: None,
            alg: alg.as_str().into(),
            key_use: "sig".into(),
        };
        // A key that cannot check a signature is refused now, not at use.
        match check_signature(&jwk, b"", &[0u8; 64]) {
            Err(Refusal::UnknownKey) | Err(Refusal::Algorithm) => Err(InvalidKey),
            _ => Ok(jwk),
        }
    }

    fn algorithm(&self) -> Option<Algorithm> {
        let alg = Algorithm::parse(&self.alg)?;
        match (alg, self.kty.as_str(), self.crv.as_str()) {
            (Algorithm::EdDSA, "OKP", "Ed25519")
            | (Algorithm::ES256, "EC", "P-256")
            | (Algorithm::RS256, "RSA", "") => Some(alg),
            _ => None,
        }
    }

    /// One entry of another issuer's JWK Set, if Gatehouse can verify
    /// with it: a signing key (`use` absent or `sig`) with a `kid`, of a
    /// supported type, whose `alg` (when given) fits the type, that checks
    /// a signature. The issuer's `kid` is kept.
    pub fn from_set_entry(entry: &Value) -> Option<Jwk> {
        let text = |name: &str| entry.get(name).and_then(Value::as_str);
        if text("use").is_some_and(|u| u != "sig") {
            return None;
        }
        let kty = text("kty")?;
        let derived = match (kty, text("crv")) {
            ("OKP", Some("Ed25519")) => Algorithm::EdDSA,
            ("EC", Some("P-256")) => Algorithm::ES256,
            ("RSA", None) => Algorithm::RS256,
            _ => return None,
        };
        if text("alg").is_some_and(|a| a != derived.as_str()) {
            return None;
        }
        let jwk = Jwk {
            kty: kty.into(),
            crv: text("crv").unwrap_or_default().into(),
            x: text("x").unwrap_or_default().into(),
            y: text("y").map(str::to_string),
            n: text("n").map(str::to_string),
            e: text("e").map(str::to_string),
            kid: text("kid")?.into(),
            alg: derived.as_str().into(),
            key_use: "sig".into(),
        };
        match check_signature(&jwk, b"", &[0u8; 64]) {
            Err(Refusal::UnknownKey) | Err(Refusal::Algorithm) => None,
            _ => Some(jwk),
        }
    }
}

/// The keys of a JWK Set (`{"keys": [...]}`) that [`Jwk::from_set_entry`]
/// accepts; others (encryption keys, unsupported types) are skipped.
pub fn key_set(set: &Value) -> Vec<Jwk> {
    set.get("keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Jwk::from_set_entry).collect())
        .unwrap_or_default()
}

/// The RFC 7638 thumbprint of a public key's required members, base64url.
fn thumbprint(kty: &str, crv: &str, x: &str, y: Option<&str>) -> String {
    // Members in lexicographic order, no whitespace, as the RFC requires.
    let canonical = match y {
        Some(y) => format!(r#"{{"crv":"{crv}","kty":"{kty}","x":"{x}","y":"{y}"}}"#),
        None => format!(r#"{{"crv":"{crv}","kty":"{kty}","x":"{x}"}}"#),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A private signing key.
pub enum SigningKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
    /// P-256.
    P256(p256::ecdsa::SigningKey),
}

/// Why bytes do not make a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidKey;

impl SigningKey {
    /// A key for `alg` from 32 random bytes (the private scalar or seed).
    /// For P-256 a value outside the curve's order is refused: draw again.
    pub fn from_secret(alg: Algorithm, secret: &[u8; 32]) -> Result<SigningKey, InvalidKey> {
        match alg {
            Algorithm::EdDSA => Ok(SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                secret,
            ))),
            Algorithm::ES256 => p256::ecdsa::SigningKey::from_bytes(secret.into())
                .map(SigningKey::P256)
                .map_err(|_| InvalidKey),
            Algorithm::RS256 => Err(InvalidKey),
        }
    }

    /// The 32 secret bytes, to be sealed at rest.
    pub fn secret_bytes(&self) -> [u8; 32] {
        match self {
            SigningKey::Ed25519(k) => k.to_bytes(),
            SigningKey::P256(k) => k.to_bytes().into(),
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Ed25519(_) => Algorithm::EdDSA,
            SigningKey::P256(_) => Algorithm::ES256,
        }
    }

    /// The public key as a JWK, `kid` its thumbprint.
    pub fn jwk(&self) -> Jwk {
        let (kty, crv, x, y) = match self {
            SigningKey::Ed25519(k) => (
                "OKP",
                "Ed25519",
                URL_SAFE_NO_PAD.encode(k.verifying_key().as_bytes()),
                None,
            ),
            SigningKey::P256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                let x = point
                    .x()
                    .map(|x| URL_SAFE_NO_PAD.encode(x))
                    .unwrap_or_default();
                let y = point.y().map(|y| URL_SAFE_NO_PAD.encode(y));
                ("EC", "P-256", x, y)
            }
        };
        Jwk {
            kid: thumbprint(kty, crv, &x, y.as_deref()),
            kty: kty.into(),
            crv: crv.into(),
            x,
            y,
            n: None,
            e: None,
            alg: self.algorithm().as_str().into(),
            key_use: "sig".into(),
        }
    }

    fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        match self {
            SigningKey::Ed25519(k) => {
                use ed25519_dalek::Signer;
                k.sign(message).to_bytes().to_vec()
            }
            SigningKey::P256(k) => {
                use p256::ecdsa::signature::Signer;
                let signature: p256::ecdsa::Signature = k.sign(message);
                // JWS wants r || s (64 bytes), not DER.
                signature.to_bytes().to_vec()
            }
        }
    }
}

/// Signs `claims` (a JSON object) with `key`, naming it by `kid`.
pub fn sign(key: &SigningKey, kid: &str, claims: &Map<String, Value>) -> String {
    let header = serde_json::json!({"alg": key.algorithm().as_str(), "typ": "JWT", "kid": kid});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string())
    );
    let signature = key.sign_bytes(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Why a token was refused. The variants are for logs and tests; callers
/// answer every one the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not three base64url parts of JSON.
    Malformed,
    /// `alg` outside the allow list (`none`, `HS256`, …), or not the key's.
    Algorithm,
    /// No known key has this `kid`.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// `iss` is not the expected issuer.
    Issuer,
    /// `aud` does not include an expected audience.
    Audience,
    /// Past `exp` (beyond the leeway), or `exp` missing.
    Expired,
    /// Before `nbf` or `iat` (beyond the leeway).
    NotYetValid,
}

/// What a verified token must say.
pub struct Expectations<'a> {
    /// The exact `iss`.
    pub issuer: &'a str,
    /// `aud` must contain one of these.
    pub audiences: &'a [&'a str],
    /// Unix seconds now.
    pub now: i64,
    /// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: i64,
}

fn decode_json(part: &str) -> Result<Map<String, Value>, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Refusal::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refusal::Malformed),
    }
}

/// The `kid` a token names, without verifying anything (to pick a key set).
pub fn key_id(token: &str) -> Option<String> {
    let header = decode_json(token.split('.').next()?).ok()?;
    header.get("kid")?.as_str().map(str::to_string)
}

fn check_signature(jwk: &Jwk, message: &[u8], signature: &[u8]) -> Result<(), Refusal> {
    let decode = |v: &str| URL_SAFE_NO_PAD.decode(v).map_err(|_| Refusal::UnknownKey);
    match jwk.algorithm().ok_or(Refusal::Algorithm)? {
        Algorithm::EdDSA => {
            let x: [u8; 32] = decode(&jwk.x)?
                .try_into()
                .map_err(|_| Refusal::UnknownKey)?;
            let key =
                ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| Refusal::UnknownKey)?;
            let signature =
                ed25519_dalek::Signature::from_slice(signature).map_err(|_| Refusal::Signature)?;
            key.verify_strict(message, &signature)
                .map_err(|_| Refusal::Signature)
        }
        Algorithm::ES256 => {
            use p256::ecdsa::signature::Verifier;
            let (x, y) = (
                decode(&jwk.x)?,
                decode(jwk.y.as_deref().unwrap_or_default())?,
            );
            if x.len() != 32 || y.len() != 32 {
                return Err(Refusal::UnknownKey);
            }
            let point = p256::EncodedPoint::from_affine_coordinates(
                x.as_slice().into(),
                y.as_slice().into(),
                false,
            );
            let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                .map_err(|_| Refusal::UnknownKey)?;
            let signature =
                p256::ecdsa::Signature::from_slice(signature).map_err(|_| Refusal::Signature)?;
            key.verify(message, &signature)
                .map_err(|_| Refusal::Signature)
        }
        Algorithm::RS256 => {
            use rsa::pkcs1v15::{Signature, VerifyingKey};
            use rsa::signature::Verifier;
            let (n, e) = (
                decode(jwk.n.as_deref().unwrap_or_default())?,
                decode(jwk.e.as_deref().unwrap_or_default())?,
            );
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&n),
                rsa::BigUint::from_bytes_be(&e),
            )
            .map_err(|_| Refusal::UnknownKey)?;
            if rsa::traits::PublicKeyParts::n(&key).bits() < MIN_RSA_BITS {
                return Err(Refusal::UnknownKey);
            }
            let signature = Signature::try_from(signature).map_err(|_| Refusal::Signature)?;
            VerifyingKey::<Sha256>::new(key)
                .verify(message, &signature)
                .map_err(|_| Refusal::Signature)
        }
    }
}

/// Verifies a token against `keys` and `expect`; the claims when it holds.
pub fn verify(
    token: &str,
    keys: &[Jwk],
    expect: &Expectations<'_>,
) -> Result<Map<String, Value>, Refusal> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let header_json = decode_json(header)?;
    let alg = header_json
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::parse)
        .ok_or(Refusal::Algorithm)?;
    let kid = header_json
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(Refusal::UnknownKey)?;
    let jwk = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(Refusal::UnknownKey)?;
    if jwk.algorithm() != Some(alg) {
        return Err(Refusal::Algorithm);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Refusal::Malformed)?;
    let signing_input = &token[..header.len() + 1 + payload.len()];
    check_signature(jwk, signing_input.as_bytes(), &signature)?;
    let claims = decode_json(payload)?;
    check_claims(&claims, expect)?;
    Ok(claims)
}

/// Checks `iss`, `aud`, `exp` (required), `nbf` and `iat`.
pub fn check_claims(claims: &Map<String, Value>, expect: &Expectations<'_>) -> Result<(), Refusal> {
    if claims.get("iss").and_then(Value::as_str) != Some(expect.issuer) {
        return Err(Refusal::Issuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => expect.audiences.contains(&aud.as_str()),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|a| expect.audiences.contains(&a)),
        _ => false,
    };
    if !audience_ok {
        return Err(Refusal::Audience);
    }
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    match number("exp") {
        Some(exp) if expect.now < exp + expect.leeway => {}
        _ => return Err(Refusal::Expired),
    }
    for name in ["nbf", "iat"] {
        if number(name).is_some_and(|t| t > expect.now + expect.leeway) {
            return Err(Refusal::NotYetValid);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
