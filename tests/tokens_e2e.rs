//! Signed JWTs through the built `tokens` component: tokens verify with an
//! independent library in another language (Python's PyJWT, with the
//! `cryptography` package, against the live JWKS); Gatehouse accepts them
//! as credentials and refuses tampered, expired, wrong-audience and
//! `alg: none` ones; narrowing works and widening is refused; rotation
//! publishes before signing and keeps old keys until their tokens expire.

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_tests::app::{MASTER_KEY, call, expect, post, python, signed_in};
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

/// A service's own Ed25519 key, made by Python's `cryptography`.
fn service_key() -> Result<Value> {
    python(
        r#"
import base64, json
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
key = Ed25519PrivateKey.generate()
raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
print(json.dumps({"x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), "pem": pem.decode()}))
"#,
        &json!({}),
    )
}

/// A token the service signs itself with PyJWT.
fn service_token(key: &Value, kid: &str, claims: Value) -> Result<String> {
    let out = python(
        r#"
import json, sys, jwt
data = json.load(sys.stdin)
print(json.dumps(jwt.encode(data["claims"], data["pem"], algorithm="EdDSA", headers={"kid": data["kid"]})))
"#,
        &json!({"pem": key["pem"], "kid": kid, "claims": claims}),
    )?;
    Ok(out.as_str().context("token")?.to_string())
}

#[test]
fn registered_services_sign_their_own_tokens_until_their_key_is_revoked() -> Result<()> {
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
    let service = expect(
        post(
            &host,
            "/v1/services",
            &json!({"name": "billing-worker", "permissions": ["invoices:write"]}),
            Some(&ada),
        )?,
        201,
    )?;
    assert_eq!(service["permissions"], json!(["invoices:write"]));
    let key = service_key()?;
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": key["x"]});
    let added = expect(
        post(
            &host,
            "/v1/services/billing-worker/keys",
            &json!({"jwk": jwk}),
            Some(&ada),
        )?,
        201,
    )?;
    let kid = added["kid"].as_str().context("kid")?.to_string();
    assert_eq!(
        post(
            &host,
            "/v1/services/billing-worker/keys",
            &json!({"jwk": jwk}),
            Some(&ada)
        )?
        .status,
        409
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let claims = |iss: &str, aud: &str, exp: i64| json!({"iss": iss, "aud": aud, "sub": "worker-1", "iat": now, "exp": exp});
    let good = service_token(&key, &kid, claims("billing-worker", "gatehouse", now + 300))?;
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
            service_token(&key, &kid, claims("other-service", "gatehouse", now + 300))?,
        ),
        (
            "another audience",
            service_token(&key, &kid, claims("billing-worker", "billing", now + 300))?,
        ),
        (
            "expired",
            service_token(&key, &kid, claims("billing-worker", "gatehouse", now - 600))?,
        ),
        (
            "too long-lived",
            service_token(
                &key,
                &kid,
                claims("billing-worker", "gatehouse", now + 86_400),
            )?,
        ),
        (
            "unregistered key",
            service_token(
                &service_key()?,
                &kid,
                claims("billing-worker", "gatehouse", now + 300),
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
    expect(
        post(
            &host,
            "/v1/orgs",
            &json!({"name": "Globex", "handle": "globex"}),
            Some(&gil),
        )?,
        201,
    )?;
    for (method, path) in [
        ("GET", "/v1/services/billing-worker"),
        ("GET", "/v1/services/billing-worker/keys"),
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
    assert_eq!(
        post(
            &host,
            "/v1/services/billing-worker/keys",
            &json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}}),
            Some(&ada)
        )?
        .status,
        422
    );
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
