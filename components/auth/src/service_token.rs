//! What a registered service's own key signs: the tokens it authenticates
//! with (`iss` = the service's name, `aud` naming Gatehouse, at most
//! [`MAX_SERVICE_TOKEN_SECONDS`](crate::jwt::MAX_SERVICE_TOKEN_SECONDS)),
//! and the proof of possession an org admin presents when registering the
//! key.
//!
//! A key id is the key's RFC 7638 thumbprint, so the same key has the same
//! `kid` in every org. Registration therefore proves possession of the
//! private key: without it, an org could register another's public key
//! and have that holder's tokens act as its own service. A key may be
//! registered in several orgs by its holder; a token then stands for the
//! one registration its issuer and org hint pick ([`pick`]), and for none
//! when that is still ambiguous.

use serde_json::{Map, Value};
use tokens_core::{Expectations, Jwk, Refusal};

use crate::jwt::LEEWAY_SECONDS;

/// The `aud` of a proof of possession. It is not Gatehouse's audience, so
/// a proof is never a service token, nor a service token a proof.
pub const PROOF_AUDIENCE: &str = "gatehouse:service-key-proof";

/// The proof's claim that repeats the server's challenge.
pub const CHALLENGE_CLAIM: &str = "challenge";

/// The token claim by which a service names the org it acts in.
pub const ORG_CLAIM: &str = "org";

/// Checks a proof of possession: a compact JWS signed by the private half
/// of `jwk` (same `alg`, `kid` = its thumbprint) whose claims name the
/// service (`iss`), [`PROOF_AUDIENCE`] (`aud`), a future `exp` and the
/// challenge ([`CHALLENGE_CLAIM`]). Returns the challenge; whether it is a
/// live one of this org and service is the caller's to check.
pub fn check_proof(proof: &str, jwk: &Jwk, service: &str, now: i64) -> Result<String, Refusal> {
    let expect = Expectations {
        issuer: service,
        audiences: &[PROOF_AUDIENCE],
        now,
        leeway: LEEWAY_SECONDS,
    };
    let claims = tokens_core::verify(proof, std::slice::from_ref(jwk), &expect)?;
    claims
        .get(CHALLENGE_CLAIM)
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .ok_or(Refusal::Malformed)
}

/// One live registration of a key, in the org that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The org holding it.
    pub org_id: String,
    /// The service's name.
    pub service: String,
    /// Its permissions, a JSON array.
    pub permissions: String,
    /// The public key, a JSON JWK.
    pub public_jwk: String,
    /// Whether possession was proved at registration (keys registered
    /// before proof was required were not).
    pub proved: bool,
}

/// Why no one registration stands for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// None fits.
    Unknown,
    /// Several fit, and nothing tells them apart.
    Ambiguous,
}

/// The registration a token stands for, among the live registrations of
/// its `kid` under its issuer's name. A proved registration outranks one
/// made before proof was required (at most one such exists per key, and
/// it may have been made by someone who never held the private key). The
/// token's own `org` claim, signed by the holder, is binding; else, only
/// when several remain, the org the request names (`hint`, from `X-Org`)
/// picks one.
pub fn pick<'a>(
    registrations: &'a [Registration],
    claimed_org: Option<&str>,
    hint: Option<&str>,
) -> Result<&'a Registration, Unresolved> {
    let any_proved = registrations.iter().any(|r| r.proved);
    let mut fitting: Vec<&Registration> = registrations
        .iter()
        .filter(|r| r.proved || !any_proved)
        .collect();
    let wanted = match (claimed_org, hint) {
        (Some(org), _) => Some(org),
        (None, Some(org)) if fitting.len() > 1 => Some(org),
        _ => None,
    };
    if let Some(org) = wanted {
        fitting.retain(|r| r.org_id == org);
    }
    match fitting.as_slice() {
        [one] => Ok(one),
        [] => Err(Unresolved::Unknown),
        _ => Err(Unresolved::Ambiguous),
    }
}

/// The `org` a token's (unverified) claims name, if any.
pub fn claimed_org(claims: &Map<String, Value>) -> Option<&str> {
    claims.get(ORG_CLAIM).and_then(Value::as_str)
}

#[cfg(target_arch = "wasm32")]
pub use store::authenticate;

#[cfg(target_arch = "wasm32")]
mod store {
    use super::{Registration, claimed_org, pick};
    use crate::db;
    use crate::jwt::{AUDIENCE, LEEWAY_SECONDS, MAX_SERVICE_TOKEN_SECONDS};
    use gatehouse_http::principal::{Credential, Principal, Subject};
    use gatehouse_http::{ErrorCode, Problem};
    use serde_json::{Map, Value};
    use spin_sdk::sqlite::Connection;
    use tokens_core::{Expectations, Jwk};

    fn refused() -> Problem {
        Problem::new(ErrorCode::Unauthenticated)
            .detail("the credentials are invalid or expired")
            .header("www-authenticate", "Bearer error=\"invalid_token\"")
    }

    async fn registrations(
        conn: &Connection,
        kid: &str,
        service: &str,
    ) -> Result<Vec<Registration>, Problem> {
        // Across orgs on purpose: the token names no org it can be trusted
        // for until one registration is picked and its key verifies it.
        let rows = db::query(
            conn,
            "SELECT k.org_id, s.name, s.permissions, k.public_jwk, k.proved_at IS NOT NULL
             FROM service_keys k JOIN services s ON s.service_id = k.service_id AND s.org_id = k.org_id
             WHERE k.kid = ? AND s.name = ? AND k.revoked_at IS NULL",
            vec![db::text(kid), db::text(service)],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|r| Registration {
                org_id: db::get_text(r, 0),
                service: db::get_text(r, 1),
                permissions: db::get_text(r, 2),
                public_jwk: db::get_text(r, 3),
                proved: db::get_int(r, 4) == Some(1),
            })
            .collect())
    }

    /// A token a registered service signed: its `iss` is the service's
    /// name, its `aud` names Gatehouse, it lives at most
    /// [`MAX_SERVICE_TOKEN_SECONDS`], and the registration it stands for
    /// (see [`pick`]; `org` is the org id `X-Org` names) is live: a
    /// revoked key is refused on the next request.
    pub async fn authenticate(
        conn: &Connection,
        token: &str,
        kid: &str,
        claimed: &Map<String, Value>,
        org: Option<&str>,
        now: i64,
    ) -> Result<Principal, Problem> {
        let Some(service) = claimed.get("iss").and_then(Value::as_str) else {
            eprintln!("auth: service JWT refused: no issuer");
            return Err(refused());
        };
        let found = registrations(conn, kid, service).await?;
        // The claims that pick are unverified here; the picked key's
        // signature over them is checked next, so a forged `org` fails.
        let registration = pick(&found, claimed_org(claimed), org).map_err(|why| {
            eprintln!("auth: service JWT refused: {why:?}");
            refused()
        })?;
        let jwk: Jwk =
            serde_json::from_str(&registration.public_jwk).map_err(|_| Problem::internal())?;
        let expect = Expectations {
            issuer: &registration.service,
            audiences: &[AUDIENCE],
            now,
            leeway: LEEWAY_SECONDS,
        };
        let claims =
            tokens_core::verify(token, std::slice::from_ref(&jwk), &expect).map_err(|why| {
                eprintln!("auth: service JWT refused: {why:?}");
                refused()
            })?;
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MAX);
        if exp - now > MAX_SERVICE_TOKEN_SECONDS + LEEWAY_SECONDS {
            eprintln!("auth: service JWT refused: lives too long");
            return Err(refused());
        }
        Ok(Principal {
            subject: Subject::Service {
                name: registration.service.clone(),
            },
            org_id: Some(registration.org_id.clone()),
            org_role: None,
            team_ids: Vec::new(),
            roles: Vec::new(),
            permissions: serde_json::from_str(&registration.permissions).unwrap_or_default(),
            acting_as: None,
            credential: Credential::Jwt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokens_core::{Algorithm, SigningKey};

    const NOW: i64 = 1_000_000;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_secret(Algorithm::EdDSA, &[seed; 32]).unwrap_or_else(|_| unreachable!())
    }

    fn signed(key: &SigningKey, kid: &str, claims: Value) -> String {
        let Value::Object(map) = claims else {
            unreachable!()
        };
        tokens_core::sign(key, kid, &map)
    }

    fn proof_claims(service: &str, aud: &str) -> Value {
        serde_json::json!({
            "iss": service, "aud": aud, "challenge": "gkc_abc", "iat": NOW, "exp": NOW + 300
        })
    }

    #[test]
    fn a_proof_by_the_registered_key_yields_its_challenge() {
        for key in [
            key(3),
            SigningKey::from_secret(Algorithm::ES256, &[9; 32]).unwrap_or_else(|_| unreachable!()),
        ] {
            let jwk = key.jwk();
            let proof = signed(&key, &jwk.kid, proof_claims("billing", PROOF_AUDIENCE));
            assert_eq!(
                check_proof(&proof, &jwk, "billing", NOW),
                Ok("gkc_abc".to_string())
            );
        }
    }

    #[test]
    fn a_proof_by_another_key_for_another_service_or_audience_is_refused() {
        let (mine, theirs) = (key(3), key(4));
        let jwk = mine.jwk();
        // Another key, even naming this key's kid, does not verify.
        let forged = signed(&theirs, &jwk.kid, proof_claims("billing", PROOF_AUDIENCE));
        assert_eq!(
            check_proof(&forged, &jwk, "billing", NOW),
            Err(Refusal::Signature)
        );
        let other_kid = signed(
            &theirs,
            &theirs.jwk().kid,
            proof_claims("billing", PROOF_AUDIENCE),
        );
        assert_eq!(
            check_proof(&other_kid, &jwk, "billing", NOW),
            Err(Refusal::UnknownKey)
        );
        let other_service = signed(&mine, &jwk.kid, proof_claims("reports", PROOF_AUDIENCE));
        assert_eq!(
            check_proof(&other_service, &jwk, "billing", NOW),
            Err(Refusal::Issuer)
        );
        // A service token (aud gatehouse) is no proof.
        let token = signed(&mine, &jwk.kid, proof_claims("billing", "gatehouse"));
        assert_eq!(
            check_proof(&token, &jwk, "billing", NOW),
            Err(Refusal::Audience)
        );
        assert_eq!(
            check_proof(&token, &jwk, "billing", NOW + 3600),
            Err(Refusal::Audience)
        );
        let expired = signed(&mine, &jwk.kid, proof_claims("billing", PROOF_AUDIENCE));
        assert_eq!(
            check_proof(&expired, &jwk, "billing", NOW + 3600),
            Err(Refusal::Expired)
        );
        let no_challenge = signed(
            &mine,
            &jwk.kid,
            serde_json::json!({"iss": "billing", "aud": PROOF_AUDIENCE, "exp": NOW + 300}),
        );
        assert_eq!(
            check_proof(&no_challenge, &jwk, "billing", NOW),
            Err(Refusal::Malformed)
        );
    }

    fn registration(org: &str, proved: bool) -> Registration {
        Registration {
            org_id: org.into(),
            service: "billing".into(),
            permissions: "[]".into(),
            public_jwk: "{}".into(),
            proved,
        }
    }

    fn org_of(found: Result<&Registration, Unresolved>) -> Result<&str, Unresolved> {
        found.map(|r| r.org_id.as_str())
    }

    #[test]
    fn one_registration_answers_unless_the_token_names_another_org() {
        let one = [registration("org_a", true)];
        assert_eq!(org_of(pick(&one, None, None)), Ok("org_a"));
        // X-Org only picks among several; naming another org is refused later.
        assert_eq!(org_of(pick(&one, None, Some("org_b"))), Ok("org_a"));
        assert_eq!(
            org_of(pick(&one, Some("org_b"), None)),
            Err(Unresolved::Unknown)
        );
        assert_eq!(org_of(pick(&[], None, None)), Err(Unresolved::Unknown));
    }

    #[test]
    fn a_key_held_by_two_orgs_needs_an_org_to_pick_one() {
        let two = [registration("org_a", true), registration("org_b", true)];
        assert_eq!(org_of(pick(&two, None, None)), Err(Unresolved::Ambiguous));
        assert_eq!(org_of(pick(&two, Some("org_b"), None)), Ok("org_b"));
        assert_eq!(org_of(pick(&two, None, Some("org_a"))), Ok("org_a"));
        // The signed claim binds; the header cannot override it.
        assert_eq!(
            org_of(pick(&two, Some("org_b"), Some("org_a"))),
            Ok("org_b")
        );
        assert_eq!(
            org_of(pick(&two, None, Some("org_c"))),
            Err(Unresolved::Unknown)
        );
    }

    #[test]
    fn a_proved_registration_outranks_one_made_without_proof() {
        let both = [registration("org_b", false), registration("org_a", true)];
        assert_eq!(org_of(pick(&both, None, None)), Ok("org_a"));
        assert_eq!(org_of(pick(&both, None, Some("org_b"))), Ok("org_a"));
        assert_eq!(
            org_of(pick(&both, Some("org_b"), None)),
            Err(Unresolved::Unknown)
        );
        let legacy = [registration("org_b", false)];
        assert_eq!(org_of(pick(&legacy, None, None)), Ok("org_b"));
    }

    #[test]
    fn the_org_claim_is_read_when_it_is_text() {
        let Value::Object(claims) = serde_json::json!({"org": "org_a", "iss": "billing"}) else {
            unreachable!()
        };
        assert_eq!(claimed_org(&claims), Some("org_a"));
        assert_eq!(claimed_org(&Map::new()), None);
    }
}
