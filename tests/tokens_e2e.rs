//! Signed JWTs through the built `tokens` component: tokens verify with an
//! independent library in another language (Python's PyJWT, with the
//! `cryptography` package, against the live JWKS); Gatehouse accepts them
//! as credentials and refuses tampered, expired, wrong-audience and
//! `alg: none` ones; narrowing works and widening is refused; rotation
//! publishes before signing and keeps old keys until their tokens expire.

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_tests::app::{MASTER_KEY, call, expect, join, post, python, signed_in};
use gatehouse_tests::{HostConfig, Reply, TestHost, root};
use serde_json::{Value, json};

const OPERATOR: &str = "operator-secret-for-tests";

fn start(max_ttl: &str) -> Result<TestHost> {
    let mut config = HostConfig::new(root().join("spin.toml"));
    config.migrations = Some(root().join("infra/migrations"));
    config.env = vec![
        ("SPIN_VARIABLE_DEV_OUTBOX".into(), "enabled".into()),
        ("SPIN_VARIABLE_MASTER_KEY".into(), MASTER_KEY.into()),
        ("SPIN_VARIABLE_OPERATOR_TOKEN".into(), OPERATOR.into()),
        ("SPIN_VARIABLE_TOKEN_MAX_TTL_SECONDS".into(), max_ttl.into()),
    ];
    let host = TestHost::start(config)?;
    Ok(host)
}

fn token(host: &TestHost, credential: &str, body: Value) -> Result<String> {
    let issued = expect(post(host, "/v1/tokens", &body, Some(credential))?, 200)?;
    assert_eq!(issued["token_type"], "Bearer");
    Ok(issued["access_token"]
        .as_str()
        .context("access_token")?
        .to_string())
}

fn jwks(host: &TestHost) -> Result<Value> {
    expect(
        call(host, "GET", "/.well-known/jwks.json", None, None, &[])?,
        200,
    )
}

fn claims_of(token: &str) -> Result<Value> {
    let payload = token.split('.').nth(1).context("payload")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?)
}

/// PyJWT verifies `token` against `jwks` for `audience` and `issuer`;
/// returns its decoded claims, or its error text.
fn pyjwt(
    token: &str,
    jwks: &Value,
    audience: &str,
    issuer: &str,
) -> Result<std::result::Result<Value, String>> {
    const SCRIPT: &str = r#"
import json, sys
import jwt
data = json.load(sys.stdin)
kid = jwt.get_unverified_header(data["token"])["kid"]
key = next(k for k in data["jwks"]["keys"] if k["kid"] == kid)
try:
    claims = jwt.decode(data["token"], jwt.PyJWK(key), algorithms=["EdDSA", "ES256"],
                        audience=data["audience"], issuer=data["issuer"])
    print(json.dumps({"ok": claims}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__}))
"#;
    let input = json!({"token": token, "jwks": jwks, "audience": audience, "issuer": issuer});
    let answer = python(SCRIPT, &input)?;
    Ok(match answer.get("ok") {
        Some(claims) => Ok(claims.clone()),
        None => Err(answer["error"].as_str().unwrap_or_default().to_string()),
    })
}

fn whoami(host: &TestHost, credential: &str) -> Result<Reply> {
    call(host, "GET", "/v1/auth/whoami", None, Some(credential), &[])
}

#[test]
fn issued_tokens_verify_with_pyjwt_and_authenticate_every_component() -> Result<()> {
    let host = start("900")?;
    let ada = signed_in(&host, "ada@example.com")?;
    let org = expect(
        post(
            &host,
            "/v1/orgs",
            &json!({"name": "Acme", "handle": "acme"}),
            Some(&ada),
        )?,
        201,
    )?;

    let discovery = expect(
        call(
            &host,
            "GET",
            "/.well-known/openid-configuration",
            None,
            None,
            &[],
        )?,
        200,
    )?;
    let issuer = discovery["issuer"].as_str().context("issuer")?.to_string();
    assert_eq!(
        discovery["jwks_uri"],
        json!(format!("{issuer}/.well-known/jwks.json"))
    );

    let jwt = token(&host, &ada, json!({"client_id": "dashboard"}))?;
    let keys = jwks(&host)?;
    let claims = pyjwt(&jwt, &keys, "gatehouse", &issuer)?.map_err(anyhow::Error::msg)?;
    assert_eq!(claims["org"], org["id"]);
    assert_eq!(claims["azp"], "dashboard");
    assert_eq!(claims["org_role"], "admin");
    assert!(
        claims["exp"].as_i64().unwrap_or_default() - claims["iat"].as_i64().unwrap_or_default()
            == 900
    );
    assert_eq!(keys["keys"][0]["alg"], "EdDSA");
    assert_eq!(
        pyjwt(&jwt, &keys, "billing", &issuer)?,
        Err("InvalidAudienceError".into())
    );

    // Gatehouse takes it as a credential on any component.
    let me = expect(whoami(&host, &jwt)?, 200)?;
    assert_eq!(
        (me["credential"].clone(), me["org_id"].clone()),
        (json!("jwt"), org["id"].clone())
    );
    assert_eq!(
        expect(
            call(&host, "GET", "/v1/orgs/acme", None, Some(&jwt), &[])?,
            200
        )?["role"],
        "admin"
    );
    expect(call(&host, "GET", "/v1/keys", None, Some(&jwt), &[])?, 200)?;

    // A token for another audience is not a credential for Gatehouse.
    let elsewhere = token(&host, &ada, json!({"audience": ["billing"]}))?;
    assert_eq!(
        pyjwt(&elsewhere, &keys, "billing", &issuer)?.map(|_| ()),
        Ok(())
    );
    assert_eq!(whoami(&host, &elsewhere)?.status, 401);

    // Tampered, unsigned and expired tokens are refused.
    let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
    let mut forged = claims_of(&jwt)?;
    forged["permissions"] = json!(["everything"]);
    parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
    let tampered = parts.join(".");
    assert_eq!(whoami(&host, &tampered)?.status, 401);
    assert!(pyjwt(&tampered, &keys, "gatehouse", &issuer)?.is_err());
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    assert_eq!(whoami(&host, &unsigned)?.status, 401);
    let short = token(&host, &ada, json!({"ttl_seconds": 1}))?;
    expect(whoami(&host, &short)?, 200)?;
    // The leeway is 60 seconds: a token whose exp is far behind is refused.
    let mut stale = claims_of(&jwt)?;
    stale["exp"] = json!(stale["iat"].as_i64().unwrap_or_default() - 3600);
    parts[1] = URL_SAFE_NO_PAD.encode(stale.to_string());
    assert_eq!(
        whoami(&host, &parts.join("."))?.status,
        401,
        "re-signed claims without the key fail"
    );
    // X-Org can only repeat the token's org.
    assert_eq!(
        call(
            &host,
            "GET",
            "/v1/auth/whoami",
            None,
            Some(&jwt),
            &[("x-org", "org_other")]
        )?
        .status,
        404
    );
    // A token cannot mint tokens.
    assert_eq!(
        post(&host, "/v1/tokens", &json!({}), Some(&jwt))?.status,
        403
    );
    Ok(())
}

#[test]
fn tokens_may_narrow_the_caller_but_never_widen() -> Result<()> {
    let host = start("900")?;
    let ada = signed_in(&host, "ada@example.com")?;
    expect(
        post(
            &host,
            "/v1/orgs",
            &json!({"name": "Acme", "handle": "acme"}),
            Some(&ada),
        )?,
        201,
    )?;
    for (name, perms) in [
        ("reader", json!(["docs:read"])),
        ("writer", json!(["docs:read", "docs:write"])),
    ] {
        expect(
            post(
                &host,
                "/v1/roles",
                &json!({"name": name, "permissions": perms}),
                Some(&ada),
            )?,
            201,
        )?;
    }
    let me = expect(call(&host, "GET", "/v1/me", None, Some(&ada), &[])?, 200)?;
    let user = me["id"].as_str().context("id")?;
    expect(
        call(
            &host,
            "PUT",
            &format!("/v1/roles/reader/members/{user}"),
            None,
            Some(&ada),
            &[],
        )?,
        204,
    )?;

    let full = claims_of(&token(&host, &ada, json!({}))?)?;
    assert_eq!(
        (full["roles"].clone(), full["permissions"].clone()),
        (json!(["reader"]), json!(["docs:read"]))
    );
    let narrowed = claims_of(&token(
        &host,
        &ada,
        json!({"permissions": [], "ttl_seconds": 60}),
    )?)?;
    assert_eq!(narrowed["permissions"], json!([]));
    assert_eq!(
        narrowed["exp"].as_i64().unwrap_or_default() - narrowed["iat"].as_i64().unwrap_or_default(),
        60
    );
    let capped = claims_of(&token(&host, &ada, json!({"ttl_seconds": 86400}))?)?;
    assert_eq!(
        capped["exp"].as_i64().unwrap_or_default() - capped["iat"].as_i64().unwrap_or_default(),
        900,
        "never longer than the maximum"
    );
    let wider = post(
        &host,
        "/v1/tokens",
        &json!({"roles": ["writer"]}),
        Some(&ada),
    )?;
    assert_eq!(
        (wider.status, wider.json()?["code"].clone()),
        (403, json!("forbidden"))
    );
    assert_eq!(
        post(
            &host,
            "/v1/tokens",
            &json!({"permissions": ["docs:write"]}),
            Some(&ada)
        )?
        .status,
        403
    );

    // An API key exchanges too, and its token names the key and its owner.
    let key = expect(
        post(
            &host,
            "/v1/keys",
            &json!({"name": "svc", "roles": ["reader"]}),
            Some(&ada),
        )?,
        201,
    )?;
    let key_claims = claims_of(&token(
        &host,
        key["key"].as_str().unwrap_or_default(),
        json!({}),
    )?)?;
    assert_eq!(
        (key_claims["sub"].clone(), key_claims["owner"].clone()),
        (key["id"].clone(), json!(user))
    );

    for (body, pointer) in [
        (json!({"ttl_seconds": 0}), "/ttl_seconds"),
        (json!({"audience": [""]}), "/audience"),
        (json!({"scope": "x"}), "/scope"),
    ] {
        let reply = post(&host, "/v1/tokens", &body, Some(&ada))?;
        assert_eq!(
            (reply.status, reply.json()?["errors"][0]["pointer"].clone()),
            (422, json!(pointer)),
            "{body}"
        );
    }
    let none = post(&host, "/v1/tokens", &json!({}), None)?;
    assert_eq!(none.status, 401);
    Ok(())
}

#[test]
fn rotation_publishes_before_signing_and_keeps_old_keys_until_their_tokens_expire() -> Result<()> {
    let host = start("900")?;
    let ada = signed_in(&host, "ada@example.com")?;
    let before = token(&host, &ada, json!({}))?;
    let old_kid = jwks(&host)?["keys"][0]["kid"]
        .as_str()
        .context("kid")?
        .to_string();

    // Only the operator rotates.
    assert_eq!(
        post(&host, "/v1/signing-keys/$rotate", &json!({}), Some(&ada))?.status,
        401
    );
    assert_eq!(
        post(&host, "/v1/signing-keys/$rotate", &json!({}), None)?.status,
        401
    );
    assert_eq!(
        post(
            &host,
            "/v1/signing-keys/$rotate",
            &json!({"alg": "RS256"}),
            Some(OPERATOR)
        )?
        .status,
        422
    );

    // With a lead time, the new key is published but the old one still signs.
    let rotated = expect(
        post(
            &host,
            "/v1/signing-keys/$rotate",
            &json!({"alg": "ES256", "publish_lead_seconds": 3600}),
            Some(OPERATOR),
        )?,
        201,
    )?;
    let new_kid = rotated["kid"].as_str().context("kid")?.to_string();
    let kids: Vec<String> = jwks(&host)?["keys"]
        .as_array()
        .context("keys")?
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_string))
        .collect();
    assert!(
        kids.contains(&new_kid) && kids.contains(&old_kid),
        "{kids:?}"
    );
    let during = token(&host, &ada, json!({}))?;
    assert_eq!(
        tokens_core::key_id(&during),
        Some(old_kid.clone()),
        "not signing before it is published long enough"
    );

    // Without one, the next key signs at once; tokens from before still verify.
    let now_rotated = expect(
        post(
            &host,
            "/v1/signing-keys/$rotate",
            &json!({"publish_lead_seconds": 0}),
            Some(OPERATOR),
        )?,
        201,
    )?;
    let newest = now_rotated["kid"].as_str().context("kid")?.to_string();
    let after = token(&host, &ada, json!({}))?;
    assert_eq!(tokens_core::key_id(&after), Some(newest));
    for t in [&before, &during, &after] {
        expect(whoami(&host, t)?, 200)?;
    }
    let issuer = expect(
        call(
            &host,
            "GET",
            "/.well-known/openid-configuration",
            None,
            None,
            &[],
        )?,
        200,
    )?["issuer"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let keys = jwks(&host)?;
    for t in [&before, &after] {
        assert!(pyjwt(t, &keys, "gatehouse", &issuer)?.is_ok());
    }
    // Once every token the old key signed has expired, it leaves JWKS.
    let db = rusqlite::Connection::open(
        host.state
            .path()
            .join(gatehouse_host::runtime_config::DEFAULT_DB_FILE),
    )?;
    db.execute(
        "UPDATE signing_keys SET published_until = 1 WHERE kid = ?1",
        [&old_kid],
    )?;
    let kids: Vec<String> = jwks(&host)?["keys"]
        .as_array()
        .context("keys")?
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_string))
        .collect();
    assert!(!kids.contains(&old_kid));
    assert_eq!(whoami(&host, &before)?.status, 401);
    Ok(())
}

/// A service's own key pair, made by Python's `cryptography`: its public
/// JWK (as PyJWT writes it), its private key in PEM, and its algorithm.
fn service_key_on(curve: &str) -> Result<Value> {
    python(
        r#"
import json, sys, jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
curve = json.load(sys.stdin)["curve"]
if curve == "Ed25519":
    key, alg, family = ed25519.Ed25519PrivateKey.generate(), "EdDSA", jwt.algorithms.OKPAlgorithm
else:
    key, alg, family = ec.generate_private_key(ec.SECP256R1()), "ES256", jwt.algorithms.ECAlgorithm
pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
print(json.dumps({"jwk": json.loads(family.to_jwk(key.public_key())), "pem": pem.decode(), "alg": alg}))
"#,
        &json!({"curve": curve}),
    )
}

/// A service's own Ed25519 key.
fn service_key() -> Result<Value> {
    service_key_on("Ed25519")
}

/// A JWT (a token, or a proof of possession) the service signs itself
/// with PyJWT, naming `kid` in its header.
fn service_token(key: &Value, kid: &str, claims: Value) -> Result<String> {
    let out = python(
        r#"
import json, sys, jwt
data = json.load(sys.stdin)
print(json.dumps(jwt.encode(data["claims"], data["pem"], algorithm=data["alg"], headers={"kid": data["kid"]})))
"#,
        &json!({"pem": key["pem"], "alg": key["alg"], "kid": kid, "claims": claims}),
    )?;
    Ok(out.as_str().context("token")?.to_string())
}

/// `POST /v1/services/{service}/keys/$challenge` for `key`'s public JWK.
fn challenge(host: &TestHost, admin: &str, service: &str, key: &Value) -> Result<Reply> {
    post(
        host,
        &format!("/v1/services/{service}/keys/$challenge"),
        &json!({"jwk": key["jwk"]}),
        Some(admin),
    )
}

/// The proof a client makes with PyJWT from a challenge: the claims it
/// names, signed with `key` under the `kid` it names.
fn proof(key: &Value, challenge: &Value) -> Result<String> {
    service_token(
        key,
        challenge["kid"].as_str().context("kid")?,
        challenge["claims"].clone(),
    )
}

/// `POST /v1/services/{service}/keys` with `key`'s public JWK and `proof`.
fn add_key(host: &TestHost, admin: &str, service: &str, key: &Value, proof: &str) -> Result<Reply> {
    post(
        host,
        &format!("/v1/services/{service}/keys"),
        &json!({"jwk": key["jwk"], "proof": proof}),
        Some(admin),
    )
}

/// Registers `key` as a holder of its private half does: a challenge,
/// then the key with a proof over it.
fn register_key(host: &TestHost, admin: &str, service: &str, key: &Value) -> Result<Reply> {
    let issued = expect(challenge(host, admin, service, key)?, 201)?;
    add_key(host, admin, service, key, &proof(key, &issued)?)
}

/// A problem document without its request id, to compare two answers.
fn problem_of(reply: Reply) -> Result<Value> {
    let mut body = reply.json()?;
    body.as_object_mut().context("problem")?.remove("instance");
    Ok(json!({"status": reply.status, "body": body}))
}

fn unix_now() -> Result<i64> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64)
}

/// Claims of a service's token: `iss`, `aud`, an `exp` and more.
fn service_claims(iss: &str, aud: &str, exp: i64, more: Value) -> Result<Value> {
    let mut claims =
        json!({"iss": iss, "aud": aud, "sub": "worker-1", "iat": unix_now()?, "exp": exp});
    if let (Some(claims), Value::Object(more)) = (claims.as_object_mut(), more) {
        claims.extend(more);
    }
    Ok(claims)
}

fn new_org(host: &TestHost, admin: &str, name: &str, handle: &str) -> Result<Value> {
    expect(
        post(
            host,
            "/v1/orgs",
            &json!({"name": name, "handle": handle}),
            Some(admin),
        )?,
        201,
    )
}

fn new_service(host: &TestHost, admin: &str, name: &str, permissions: Value) -> Result<Value> {
    expect(
        post(
            host,
            "/v1/services",
            &json!({"name": name, "permissions": permissions}),
            Some(admin),
        )?,
        201,
    )
}

fn whoami_in(host: &TestHost, credential: &str, org: &str) -> Result<Reply> {
    call(
        host,
        "GET",
        "/v1/auth/whoami",
        None,
        Some(credential),
        &[("x-org", org)],
    )
}

#[test]
fn registered_services_sign_their_own_tokens_until_their_key_is_revoked() -> Result<()> {
    let host = start("900")?;
    let ada = signed_in(&host, "ada@example.com")?;
    let org = new_org(&host, &ada, "Acme", "acme")?;
    let service = new_service(&host, &ada, "billing-worker", json!(["invoices:write"]))?;
    assert_eq!(service["permissions"], json!(["invoices:write"]));
    let key = service_key()?;
    let added = expect(register_key(&host, &ada, "billing-worker", &key)?, 201)?;
    let kid = added["kid"].as_str().context("kid")?.to_string();
    // Registered here already: a conflict in this org, proof or not.
    assert_eq!(
        register_key(&host, &ada, "billing-worker", &key)?.status,
        409
    );

    let now = unix_now()?;
    let claims = |iss: &str, aud: &str, exp: i64| service_claims(iss, aud, exp, json!({}));
    let good = service_token(
        &key,
        &kid,
        claims("billing-worker", "gatehouse", now + 300)?,
    )?;
    let me = expect(whoami(&host, &good)?, 200)?;
    assert_eq!(
        me["subject"],
        json!({"type": "service", "name": "billing-worker"})
    );
    assert_eq!(
        (me["org_id"].clone(), me["permissions"].clone()),
        (org["id"].clone(), json!(["invoices:write"]))
    );
    for (why, token) in [
        (
            "another issuer",
            service_token(&key, &kid, claims("other-service", "gatehouse", now + 300)?)?,
        ),
        (
            "another audience",
            service_token(&key, &kid, claims("billing-worker", "billing", now + 300)?)?,
        ),
        (
            "expired",
            service_token(
                &key,
                &kid,
                claims("billing-worker", "gatehouse", now - 600)?,
            )?,
        ),
        (
            "too long-lived",
            service_token(
                &key,
                &kid,
                claims("billing-worker", "gatehouse", now + 86_400)?,
            )?,
        ),
        (
            "unregistered key",
            service_token(
                &service_key()?,
                &kid,
                claims("billing-worker", "gatehouse", now + 300)?,
            )?,
        ),
        (
            "a proof of possession, not a token",
            service_token(
                &key,
                &kid,
                claims("billing-worker", "gatehouse:service-key-proof", now + 300)?,
            )?,
        ),
    ] {
        assert_eq!(whoami(&host, &token)?.status, 401, "{why}");
    }

    // Members read the registry; only admins change it; another org sees nothing.
    let listed = expect(
        call(
            &host,
            "GET",
            "/v1/services/billing-worker/keys",
            None,
            Some(&ada),
            &[],
        )?,
        200,
    )?;
    assert_eq!(listed["items"][0]["kid"], json!(kid));
    let gil = signed_in(&host, "gil@example.com")?;
    new_org(&host, &gil, "Globex", "globex")?;
    for (method, path) in [
        ("GET", "/v1/services/billing-worker"),
        ("GET", "/v1/services/billing-worker/keys"),
        ("POST", "/v1/services/billing-worker/keys/$challenge"),
        (
            "DELETE",
            &format!("/v1/services/billing-worker/keys/{kid}") as &str,
        ),
        ("DELETE", "/v1/services/billing-worker"),
    ] {
        assert_eq!(
            call(&host, method, path, None, Some(&gil), &[])?.status,
            404,
            "{method} {path}"
        );
    }
    assert_eq!(
        post(
            &host,
            "/v1/services",
            &json!({"name": "Bad Name"}),
            Some(&ada)
        )?
        .status,
        422
    );
    let not_a_key = json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"});
    for (path, body) in [
        (
            "/v1/services/billing-worker/keys",
            json!({"jwk": not_a_key, "proof": "a.b.c"}),
        ),
        (
            "/v1/services/billing-worker/keys/$challenge",
            json!({"jwk": not_a_key}),
        ),
    ] {
        let reply = post(&host, path, &body, Some(&ada))?;
        let body = reply.json()?;
        assert_eq!(
            (reply.status, body["errors"][0]["pointer"].clone()),
            (422, json!("/jwk")),
            "{path}: {body}"
        );
    }
    assert_eq!(
        post(&host, "/v1/services", &json!({"name": "x"}), None)?.status,
        401
    );
    // A service's token cannot manage the registry.
    assert_eq!(
        post(
            &host,
            "/v1/services",
            &json!({"name": "sneaky"}),
            Some(&good)
        )?
        .status,
        403
    );

    // Revoked: its tokens stop on the next request.
    expect(
        call(
            &host,
            "DELETE",
            &format!("/v1/services/billing-worker/keys/{kid}"),
            None,
            Some(&ada),
            &[],
        )?,
        204,
    )?;
    assert_eq!(whoami(&host, &good)?.status, 401);
    Ok(())
}

#[test]
fn a_challenge_names_the_key_and_the_claims_to_sign_and_only_admins_get_one() -> Result<()> {
    let host = start("900")?;
    let ada = signed_in(&host, "ada@example.com")?;
    new_org(&host, &ada, "Acme", "acme")?;
    new_service(&host, &ada, "billing-worker", json!([]))?;
    let (bo, _) = join(&host, &ada, "acme", "bo@example.com", "member", &[])?;

    for curve in ["Ed25519", "P-256"] {
        let key = service_key_on(curve)?;
        let issued = expect(challenge(&host, &ada, "billing-worker", &key)?, 201)?;
        let secret = issued["challenge"].as_str().context("challenge")?;
        assert!(secret.starts_with("gkc_"), "{issued}");
        assert_eq!(
            (
                issued["alg"].clone(),
                issued["claims"]["iss"].clone(),
                issued["claims"]["aud"].clone(),
                issued["claims"]["challenge"].clone(),
                issued["claims"]["exp"].clone(),
            ),
            (
                key["alg"].clone(),
                json!("billing-worker"),
                json!("gatehouse:service-key-proof"),
                json!(secret),
                issued["expires_at"].clone(),
            )
        );
        // The key registers under the kid the challenge named.
        let added = expect(
            add_key(&host, &ada, "billing-worker", &key, &proof(&key, &issued)?)?,
            201,
        )?;
        assert_eq!(added["kid"], issued["kid"]);
        let now = unix_now()?;
        let token = service_token(
            &key,
            added["kid"].as_str().context("kid")?,
            service_claims("billing-worker", "gatehouse", now + 300, json!({}))?,
        )?;
        expect(whoami(&host, &token)?, 200)?;
    }
    // Only the challenge's digest is stored.
    let db = rusqlite::Connection::open(
        host.state
            .path()
            .join(gatehouse_host::runtime_config::DEFAULT_DB_FILE),
    )?;
    let issued = expect(
        challenge(&host, &ada, "billing-worker", &service_key()?)?,
        201,
    )?;
    let stored: i64 = db.query_row(
        "SELECT COUNT(*) FROM service_key_challenges WHERE digest = ?1",
        [identity_core::token::digest(
            issued["challenge"].as_str().unwrap_or_default(),
        )],
        |r| r.get(0),
    )?;
    let plain: i64 = db.query_row(
        "SELECT COUNT(*) FROM service_key_challenges WHERE digest = ?1",
        [issued["challenge"].as_str().unwrap_or_default()],
        |r| r.get(0),
    )?;
    assert_eq!((stored, plain), (1, 0));
    // Issuing many keeps only the newest ten of the service live.
    let many = service_key()?;
    let mut issued = Vec::new();
    for _ in 0..12 {
        issued.push(expect(
            challenge(&host, &ada, "billing-worker", &many)?,
            201,
        )?);
    }
    let live: i64 = db.query_row(
        "SELECT COUNT(*) FROM service_key_challenges WHERE kid = ?1",
        [issued[0]["kid"].as_str().unwrap_or_default()],
        |r| r.get(0),
    )?;
    assert_eq!(live, 10);
    let oldest = add_key(
        &host,
        &ada,
        "billing-worker",
        &many,
        &proof(&many, &issued[0])?,
    )?;
    assert_eq!(
        (oldest.status, oldest.json()?["errors"][0]["code"].clone()),
        (422, json!("invalid_proof"))
    );
    expect(
        add_key(
            &host,
            &ada,
            "billing-worker",
            &many,
            &proof(&many, &issued[11])?,
        )?,
        201,
    )?;

    let key = service_key()?;
    let path = "/v1/services/billing-worker/keys/$challenge";
    let body = json!({"jwk": key["jwk"]});
    assert_eq!(post(&host, path, &body, None)?.status, 401);
    assert_eq!(
        post(&host, path, &body, Some("ghs_not-a-session"))?.status,
        401
    );
    let member = post(&host, path, &body, Some(&bo))?;
    assert_eq!(
        (member.status, member.json()?["code"].clone()),
        (403, json!("forbidden"))
    );
    assert_eq!(challenge(&host, &ada, "no-such-service", &key)?.status, 404);
    for (why, body) in [
        ("no key", json!({})),
        (
            "a private key",
            json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": key["jwk"]["x"], "d": "AAAA"}}),
        ),
        (
            "an RSA key",
            json!({"jwk": {"kty": "RSA", "crv": "", "x": ""}}),
        ),
    ] {
        assert_eq!(post(&host, path, &body, Some(&ada))?.status, 422, "{why}");
    }
    let wrong_method = call(&host, "GET", path, None, Some(&ada), &[])?;
    assert_eq!(
        (wrong_method.status, wrong_method.header("allow")),
        (405, Some("POST"))
    );
    Ok(())
}

#[test]
fn registration_is_refused_without_a_proof_over_a_live_challenge_of_this_org_and_service()
-> Result<()> {
    let host = start("900")?;
    let ada = signed_in(&host, "ada@example.com")?;
    new_org(&host, &ada, "Acme", "acme")?;
    new_service(&host, &ada, "billing-worker", json!([]))?;
    new_service(&host, &ada, "reports", json!([]))?;
    let gil = signed_in(&host, "gil@example.com")?;
    new_org(&host, &gil, "Globex", "globex")?;
    new_service(&host, &gil, "billing-worker", json!([]))?;
    let key = service_key()?;
    let other = service_key()?;
    let service = "billing-worker";

    // No proof at all.
    let missing = post(
        &host,
        "/v1/services/billing-worker/keys",
        &json!({"jwk": key["jwk"]}),
        Some(&ada),
    )?;
    let missing = missing.json()?;
    assert_eq!(
        (
            missing["status"].clone(),
            missing["errors"][0]["pointer"].clone(),
            missing["errors"][0]["code"].clone()
        ),
        (json!(422), json!("/proof"), json!("required"))
    );

    let issued = expect(challenge(&host, &ada, service, &key)?, 201)?;
    let kid = issued["kid"].as_str().context("kid")?.to_string();
    let claims = issued["claims"].clone();
    let with = |change: Value| -> Value {
        let mut c = claims.clone();
        if let (Some(c), Value::Object(change)) = (c.as_object_mut(), change) {
            c.extend(change);
        }
        c
    };
    let now = unix_now()?;
    let never_issued = format!("gkc_{}", "A".repeat(43));
    let for_reports = expect(challenge(&host, &ada, "reports", &key)?, 201)?;
    let for_other_key = expect(challenge(&host, &ada, service, &other)?, 201)?;
    let in_globex = expect(challenge(&host, &gil, service, &key)?, 201)?;
    let bad_proofs = [
        ("not a JWS", "not-a-jws".to_string()),
        (
            "another key's signature",
            service_token(&other, &kid, claims.clone())?,
        ),
        (
            "a challenge never issued",
            service_token(&key, &kid, with(json!({"challenge": never_issued})))?,
        ),
        (
            "no challenge",
            service_token(
                &key,
                &kid,
                json!({"iss": service, "aud": "gatehouse:service-key-proof", "exp": now + 300}),
            )?,
        ),
        (
            "Gatehouse's audience",
            service_token(&key, &kid, with(json!({"aud": "gatehouse"})))?,
        ),
        (
            "another service as issuer",
            service_token(&key, &kid, with(json!({"iss": "reports"})))?,
        ),
        (
            "an expired proof",
            service_token(&key, &kid, with(json!({"exp": now - 600})))?,
        ),
        (
            "another service's challenge",
            service_token(
                &key,
                &kid,
                with(json!({"challenge": for_reports["challenge"]})),
            )?,
        ),
        (
            "another key's challenge",
            service_token(
                &key,
                &kid,
                with(json!({"challenge": for_other_key["challenge"]})),
            )?,
        ),
        (
            "another org's challenge",
            service_token(
                &key,
                &kid,
                with(json!({"challenge": in_globex["challenge"]})),
            )?,
        ),
    ];
    let mut answers = Vec::new();
    for (why, bad) in &bad_proofs {
        let reply = add_key(&host, &ada, service, &key, bad)?;
        assert_eq!(reply.status, 422, "{why}: {}", reply.text());
        answers.push((*why, problem_of(reply)?));
    }
    let first = answers[0].1.clone();
    assert_eq!(first["body"]["code"], "validation_failed");
    assert_eq!(first["body"]["errors"][0]["code"], "invalid_proof");
    assert_eq!(first["body"]["errors"][0]["pointer"], "/proof");
    for (why, answer) in &answers {
        assert_eq!(answer, &first, "{why} is answered like any bad proof");
    }

    // Expired: the challenge outlived its minutes.
    let db = rusqlite::Connection::open(
        host.state
            .path()
            .join(gatehouse_host::runtime_config::DEFAULT_DB_FILE),
    )?;
    let stale = expect(challenge(&host, &ada, service, &key)?, 201)?;
    db.execute(
        "UPDATE service_key_challenges SET expires_at = 1 WHERE digest = ?1",
        [identity_core::token::digest(
            stale["challenge"].as_str().unwrap_or_default(),
        )],
    )?;
    let expired = add_key(&host, &ada, service, &key, &proof(&key, &stale)?)?;
    assert_eq!(problem_of(expired)?, first, "an expired challenge");

    // The good proof registers once; its challenge is then used up.
    let good = proof(&key, &issued)?;
    expect(add_key(&host, &ada, service, &key, &good)?, 201)?;
    let reused = add_key(&host, &ada, service, &key, &good)?;
    assert_eq!(problem_of(reused)?, first, "a used challenge");
    // ...and Globex's own challenge still serves Globex.
    expect(
        add_key(&host, &gil, service, &key, &proof(&key, &in_globex)?)?,
        201,
    )?;
    Ok(())
}

#[test]
fn another_orgs_key_cannot_be_registered_without_its_private_key_and_its_holder_is_not_revealed()
-> Result<()> {
    let host = start("900")?;
    let ada = signed_in(&host, "ada@example.com")?;
    let acme = new_org(&host, &ada, "Acme", "acme")?;
    new_service(&host, &ada, "billing-worker", json!(["invoices:write"]))?;
    let key = service_key()?;
    let kid = expect(register_key(&host, &ada, "billing-worker", &key)?, 201)?["kid"]
        .as_str()
        .context("kid")?
        .to_string();

    // Globex names a service like Acme's and tries Acme's public key.
    let gil = signed_in(&host, "gil@example.com")?;
    let globex = new_org(&host, &gil, "Globex", "globex")?;
    new_service(&host, &gil, "billing-worker", json!(["everything"]))?;
    let own = service_key()?;
    let fresh = service_key()?;
    let taken = expect(challenge(&host, &gil, "billing-worker", &key)?, 201)?;
    let untaken = expect(challenge(&host, &gil, "billing-worker", &fresh)?, 201)?;
    // A challenge for a held key looks like one for a fresh key.
    assert_eq!(
        (
            taken.as_object().map(|o| o.len()),
            taken["claims"]["iss"].clone()
        ),
        (
            untaken.as_object().map(|o| o.len()),
            untaken["claims"]["iss"].clone()
        )
    );
    // Without the private key, the proof is signed with some other key:
    // refused exactly as a bad proof for a key nobody holds.
    let stolen = add_key(
        &host,
        &gil,
        "billing-worker",
        &key,
        &service_token(&own, &kid, taken["claims"].clone())?,
    )?;
    let unheld = add_key(
        &host,
        &gil,
        "billing-worker",
        &fresh,
        &service_token(
            &own,
            untaken["kid"].as_str().unwrap_or_default(),
            untaken["claims"].clone(),
        )?,
    )?;
    assert_eq!(stolen.status, 422);
    assert_eq!(problem_of(stolen)?, problem_of(unheld)?);
    // Globex's keys are its own: a key it holds registers whatever others hold.
    expect(register_key(&host, &gil, "billing-worker", &own)?, 201)?;

    // Acme's key still acts only as Acme's service.
    let now = unix_now()?;
    let token = service_token(
        &key,
        &kid,
        service_claims("billing-worker", "gatehouse", now + 300, json!({}))?,
    )?;
    let me = expect(whoami(&host, &token)?, 200)?;
    assert_eq!(
        (me["org_id"].clone(), me["permissions"].clone()),
        (acme["id"].clone(), json!(["invoices:write"]))
    );
    let globex_id = globex["id"].as_str().context("id")?;
    assert_eq!(whoami_in(&host, &token, globex_id)?.status, 404);
    let claiming = service_token(
        &key,
        &kid,
        service_claims(
            "billing-worker",
            "gatehouse",
            now + 300,
            json!({"org": globex_id}),
        )?,
    )?;
    assert_eq!(whoami(&host, &claiming)?.status, 401);
    let listed = expect(
        call(
            &host,
            "GET",
            "/v1/services/billing-worker/keys",
            None,
            Some(&gil),
            &[],
        )?,
        200,
    )?;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert_ne!(listed["items"][0]["kid"], json!(kid));
    Ok(())
}

#[test]
fn a_key_its_holder_registered_in_two_orgs_acts_only_in_the_org_its_token_or_request_names()
-> Result<()> {
    let host = start("900")?;
    let ada = signed_in(&host, "ada@example.com")?;
    let acme = new_org(&host, &ada, "Acme", "acme")?;
    new_service(&host, &ada, "billing-worker", json!(["acme:invoices"]))?;
    let gil = signed_in(&host, "gil@example.com")?;
    let globex = new_org(&host, &gil, "Globex", "globex")?;
    new_service(&host, &gil, "billing-worker", json!(["globex:invoices"]))?;
    let (acme_id, globex_id) = (
        acme["id"].as_str().context("id")?,
        globex["id"].as_str().context("id")?,
    );

    // The holder proves possession in each org.
    let key = service_key()?;
    let in_acme = expect(register_key(&host, &ada, "billing-worker", &key)?, 201)?;
    let in_globex = expect(register_key(&host, &gil, "billing-worker", &key)?, 201)?;
    assert_eq!(in_acme["kid"], in_globex["kid"]);
    let kid = in_acme["kid"].as_str().context("kid")?;

    let now = unix_now()?;
    let signed = |more: Value| -> Result<String> {
        service_token(
            &key,
            kid,
            service_claims("billing-worker", "gatehouse", now + 300, more)?,
        )
    };
    let unnamed = signed(json!({}))?;
    let for_acme = signed(json!({"org": acme_id}))?;
    let for_globex = signed(json!({"org": globex_id}))?;
    let for_nobody = signed(json!({"org": "org_00000000000000000000000000000000"}))?;

    // Ambiguous: refused.
    assert_eq!(whoami(&host, &unnamed)?.status, 401);
    assert_eq!(whoami(&host, &for_nobody)?.status, 401);
    // The signed `org` claim picks.
    for (token, org, permissions) in [
        (&for_acme, acme_id, "acme:invoices"),
        (&for_globex, globex_id, "globex:invoices"),
    ] {
        let me = expect(whoami(&host, token)?, 200)?;
        assert_eq!(
            (me["org_id"].clone(), me["permissions"].clone()),
            (json!(org), json!([permissions]))
        );
    }
    // Else the org the request names picks (by id or handle).
    for (named, org) in [(globex_id, globex_id), ("acme", acme_id)] {
        let me = expect(whoami_in(&host, &unnamed, named)?, 200)?;
        assert_eq!(me["org_id"], json!(org), "{named}");
    }
    // The request cannot move a token that names its org.
    assert_eq!(whoami_in(&host, &for_acme, globex_id)?.status, 404);

    // Revoked in one org: its tokens for that org stop at once, the other's go on.
    expect(
        call(
            &host,
            "DELETE",
            &format!("/v1/services/billing-worker/keys/{kid}"),
            None,
            Some(&ada),
            &[],
        )?,
        204,
    )?;
    assert_eq!(whoami(&host, &for_acme)?.status, 401);
    assert_eq!(whoami_in(&host, &unnamed, acme_id)?.status, 404);
    assert_eq!(
        expect(whoami(&host, &for_globex)?, 200)?["org_id"],
        json!(globex_id)
    );
    Ok(())
}

#[test]
fn a_key_registered_before_proof_was_required_gives_way_to_its_holders_proven_registration()
-> Result<()> {
    let host = start("900")?;
    let ada = signed_in(&host, "ada@example.com")?;
    let acme = new_org(&host, &ada, "Acme", "acme")?;
    new_service(&host, &ada, "billing-worker", json!(["acme:invoices"]))?;
    let gil = signed_in(&host, "gil@example.com")?;
    let globex = new_org(&host, &gil, "Globex", "globex")?;
    let globex_service = new_service(&host, &gil, "billing-worker", json!(["globex:invoices"]))?;

    // Before proofs, Globex registered Acme's public key (a row as the
    // earlier registry wrote it: no proof).
    let key = service_key()?;
    let issued = expect(challenge(&host, &ada, "billing-worker", &key)?, 201)?;
    let kid = issued["kid"].as_str().context("kid")?.to_string();
    let public = json!({
        "kty": "OKP", "crv": "Ed25519", "x": key["jwk"]["x"], "kid": kid, "alg": "EdDSA", "use": "sig"
    })
    .to_string();
    let db = rusqlite::Connection::open(
        host.state
            .path()
            .join(gatehouse_host::runtime_config::DEFAULT_DB_FILE),
    )?;
    db.execute(
        "INSERT INTO service_keys (org_id, kid, service_id, public_jwk, created_at) VALUES (?1, ?2, ?3, ?4, 1)",
        [
            globex["id"].as_str().unwrap_or_default(),
            kid.as_str(),
            globex_service["id"].as_str().unwrap_or_default(),
            public.as_str(),
        ],
    )?;
    let token = service_token(
        &key,
        &kid,
        service_claims("billing-worker", "gatehouse", unix_now()? + 300, json!({}))?,
    )?;
    assert_eq!(expect(whoami(&host, &token)?, 200)?["org_id"], globex["id"]);

    // Once the holder proves possession, the unproven registration stops counting.
    expect(
        add_key(&host, &ada, "billing-worker", &key, &proof(&key, &issued)?)?,
        201,
    )?;
    let me = expect(whoami(&host, &token)?, 200)?;
    assert_eq!(
        (me["org_id"].clone(), me["permissions"].clone()),
        (acme["id"].clone(), json!(["acme:invoices"]))
    );
    let globex_id = globex["id"].as_str().context("id")?;
    assert_eq!(whoami_in(&host, &token, globex_id)?.status, 404);
    Ok(())
}

/// Migration 0013 keys service keys by org and keeps every registered key
/// (marked as registered without proof), from a database at any earlier
/// version.
#[test]
fn service_keys_become_per_org_from_every_earlier_schema_version() -> Result<()> {
    use gatehouse_host::migrate;
    let all = migrate::load_dir(&root().join("infra/migrations"))?;
    let ours = all
        .iter()
        .position(|m| m.version == 13)
        .context("migration 0013")?;
    let services = all
        .iter()
        .position(|m| m.version == 9)
        .context("migration 0009")?;
    for applied in 0..=ours {
        let mut db = rusqlite::Connection::open_in_memory()?;
        db.execute_batch("PRAGMA foreign_keys = ON;")?;
        migrate::apply(&mut db, &all[..applied])?;
        let had_keys = applied > services;
        if had_keys {
            db.execute_batch(
                "INSERT INTO orgs (org_id, handle, name, created_by, created_at, updated_at)
                     VALUES ('org_a', 'a', 'A', 'usr_a', 1, 1), ('org_b', 'b', 'B', 'usr_b', 1, 1);
                 INSERT INTO services (org_id, service_id, name, created_at, updated_at)
                     VALUES ('org_a', 'svc_a', 'billing', 1, 1), ('org_b', 'svc_b', 'billing', 1, 1);
                 INSERT INTO service_keys (org_id, kid, service_id, public_jwk, created_at)
                     VALUES ('org_a', 'kid_1', 'svc_a', '{}', 5);",
            )?;
        }
        migrate::apply(&mut db, &all).with_context(|| format!("after {applied} migrations"))?;
        if !had_keys {
            continue;
        }
        let kept: (String, String, i64, Option<i64>) = db.query_row(
            "SELECT org_id, service_id, created_at, proved_at FROM service_keys WHERE kid = 'kid_1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        assert_eq!(kept, ("org_a".into(), "svc_a".into(), 5, None));
        // The same key in another org is a registration of its own; in
        // the same org, a conflict.
        db.execute(
            "INSERT INTO service_keys (org_id, kid, service_id, public_jwk, created_at, proved_at) VALUES ('org_b', 'kid_1', 'svc_b', '{}', 6, 6)",
            [],
        )?;
        assert!(
            db.execute(
                "INSERT INTO service_keys (org_id, kid, service_id, public_jwk, created_at) VALUES ('org_a', 'kid_1', 'svc_a', '{}', 7)",
                [],
            )
            .is_err()
        );
    }
    Ok(())
}
