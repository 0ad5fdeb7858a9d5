//! The client crate against the live app: a service verifies a Gatehouse
//! JWT offline against the published JWKS (fetched once, then cached),
//! refuses a tampered token and one for another audience, and asks
//! `/v1/authz/check` and `/v1/authz/filter` with the JWT as its bearer.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_client::authz::{Field, Filter};
use gatehouse_client::{
    AuthzClient, AuthzError, CheckRequest, FilterRequest, HttpResponse, InvalidToken, Reason,
    Transport, TransportError, Verifier, VerifyError,
};
use gatehouse_tests::app::{call, expect, post, signed_in, start_app};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

/// The harness's blocking HTTP client as a transport, counting GETs.
#[derive(Default)]
struct Blocking {
    gets: AtomicUsize,
}

fn answer(reply: Result<Reply>) -> Result<HttpResponse, TransportError> {
    let reply = reply.map_err(|e| TransportError::new(e.to_string()))?;
    Ok(HttpResponse {
        status: reply.status,
        body: reply.body,
    })
}

impl Transport for Blocking {
    async fn get(&self, url: &str) -> Result<HttpResponse, TransportError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        answer(gatehouse_tests::get(url, &[]))
    }

    async fn post_json(
        &self,
        url: &str,
        bearer: &str,
        body: Vec<u8>,
    ) -> Result<HttpResponse, TransportError> {
        let authorization = format!("Bearer {bearer}");
        let headers = [
            ("content-type", "application/json"),
            ("authorization", authorization.as_str()),
        ];
        answer(gatehouse_tests::send("POST", url, &headers, &body))
    }
}

/// Runs a future of the blocking transport, which is ready when first polled.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the blocking transport never waits"),
    }
}

fn put(host: &TestHost, path: &str, body: Option<&Value>, token: &str) -> Result<Reply> {
    call(host, "PUT", path, body, Some(token), &[])
}

fn issue(host: &TestHost, session: &str, body: Value) -> Result<String> {
    let issued = expect(post(host, "/v1/tokens", &body, Some(session))?, 200)?;
    Ok(issued["access_token"]
        .as_str()
        .context("access_token")?
        .to_string())
}

/// Ada administers `acme` and holds `analyst` (`reports:read`). Policy
/// `reports:read` reaches a report by its owning user or by a grant to a
/// role with `reports:read`: Ada owns `rep_1`, `analyst` is granted
/// `rep_2`, nobody `rep_3`. Returns the session, user id and org id.
fn acme(host: &TestHost) -> Result<(String, String, String)> {
    let ada = signed_in(host, "ada@example.com")?;
    let ada_id = expect(call(host, "GET", "/v1/me", None, Some(&ada), &[])?, 200)?["id"]
        .as_str()
        .context("user id")?
        .to_string();
    let org = expect(
        post(
            host,
            "/v1/orgs",
            &json!({"name": "Acme", "handle": "acme"}),
            Some(&ada),
        )?,
        201,
    )?;
    let org_id = org["id"].as_str().context("org id")?.to_string();
    expect(
        post(
            host,
            "/v1/roles",
            &json!({"name": "analyst", "permissions": ["reports:read"]}),
            Some(&ada),
        )?,
        201,
    )?;
    expect(
        put(
            host,
            &format!("/v1/roles/analyst/members/{ada_id}"),
            None,
            &ada,
        )?,
        204,
    )?;
    let document = json!({
        "applies_to": {"service": "reports", "collection": "reports"},
        "rules": {"read": {"owner": {"user": true}, "grant_permission": "reports:read"}}
    });
    expect(
        put(
            host,
            "/v1/authz/policies/reports",
            Some(&json!({"document": document})),
            &ada,
        )?,
        201,
    )?;
    expect(
        put(
            host,
            &format!("/v1/authz/resources/reports/reports/rep_1/owners/user/{ada_id}"),
            None,
            &ada,
        )?,
        204,
    )?;
    expect(
        post(
            host,
            "/v1/authz/grants/reports/reports/analyst",
            &json!({"grant": ["rep_2"]}),
            Some(&ada),
        )?,
        200,
    )?;
    Ok((ada, ada_id, org_id))
}

/// `token` claiming `permissions`, under its original signature.
fn with_permissions(token: &str, permissions: &[&str]) -> Result<String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        bail!("not a JWT: {token}");
    };
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?;
    claims["permissions"] = json!(permissions);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    Ok(format!("{header}.{payload}.{signature}"))
}

#[test]
fn a_service_verifies_gatehouse_tokens_offline_and_asks_for_decisions() -> Result<()> {
    let host = start_app()?;
    let (ada, ada_id, org_id) = acme(&host)?;
    let jwt = issue(&host, &ada, json!({"client_id": "reports-service"}))?;

    let transport = Blocking::default();
    let verifier = Verifier::new(&host.base, &transport);
    let claims = run(verifier.verify(&jwt))?;
    assert_eq!(
        (claims.iss.as_str(), claims.sub.as_str()),
        (host.base.as_str(), ada_id.as_str())
    );
    assert_eq!(claims.org.as_deref(), Some(org_id.as_str()));
    assert!(claims.is_org_admin() && claims.has_role("analyst"));
    assert_eq!(claims.permissions, ["reports:read"]);
    assert!(claims.has_permission("reports:read"));
    assert_eq!(claims.azp.as_deref(), Some("reports-service"));
    assert_eq!(claims.impersonator(), None);
    // A second token verifies from the cache.
    let again = issue(&host, &ada, json!({}))?;
    assert_eq!(run(verifier.verify(&again))?.sub, ada_id);
    assert_eq!(transport.gets.load(Ordering::Relaxed), 1);

    // Tampered: wider permissions under the original signature.
    let tampered = with_permissions(&jwt, &["reports:read", "reports:delete"])?;
    assert_eq!(
        run(verifier.verify(&tampered)).err(),
        Some(VerifyError::Invalid(InvalidToken::Signature))
    );
    // A token for another audience is refused unless that audience is accepted.
    let for_billing = issue(&host, &ada, json!({"audience": ["billing"]}))?;
    assert_eq!(
        run(verifier.verify(&for_billing)).err(),
        Some(VerifyError::Invalid(InvalidToken::Audience))
    );
    let billing = Verifier::new(&host.base, &transport).with_audiences(["billing"]);
    assert_eq!(run(billing.verify(&for_billing))?.aud, ["billing"]);

    // Decisions, with the JWT as the bearer.
    let authz = AuthzClient::new(&host.base, &transport);
    for (id, allowed, reason) in [
        ("rep_1", true, Reason::OwnerUser),
        ("rep_2", true, Reason::RoleGrant),
        ("rep_3", false, Reason::NotGranted),
    ] {
        let decision = run(authz.check(&jwt, &CheckRequest::new("reports:read", id)))?;
        assert_eq!(
            (decision.allowed, decision.reason),
            (allowed, reason),
            "{id}"
        );
        assert_eq!(decision.subject.id, ada_id);
        assert_eq!(
            (decision.resource.service.as_str(), decision.policy.version),
            ("reports", 1)
        );
    }
    let answer = run(authz.filter(&jwt, &FilterRequest::new("reports:read")))?;
    let Filter::In {
        field: Field::Id,
        mut values,
    } = answer.filter
    else {
        bail!("a filter on ids: {:?}", answer.filter);
    };
    values.sort();
    assert_eq!(values, ["rep_1", "rep_2"]);
    assert_eq!(answer.sql.condition, "\"id\" IN (?, ?)");

    // Refusals arrive as problems with Gatehouse's codes.
    let Err(AuthzError::Problem(missing)) =
        run(authz.check(&jwt, &CheckRequest::new("ghost:read", "rep_1")))
    else {
        bail!("an unknown policy is refused");
    };
    assert_eq!((missing.status, missing.code.as_str()), (404, "not_found"));
    let Err(AuthzError::Problem(refused)) =
        run(authz.check(&tampered, &CheckRequest::new("reports:read", "rep_1")))
    else {
        bail!("a tampered bearer is refused");
    };
    assert_eq!(
        (refused.status, refused.code.as_str()),
        (401, "unauthenticated")
    );
    Ok(())
}
