//! An org admin acting as a member (`X-Act-As`), through the built
//! components: who may, whom, what the request and any token issued then
//! carry (`acting_as`, the `act` claim), and the audit trail that records
//! every such request and nothing else.

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_tests::app::{call, expect, join, post, signed_in, start_app, user_id};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

fn as_user(
    host: &TestHost,
    token: &str,
    target: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Reply> {
    call(
        host,
        method,
        path,
        body,
        Some(token),
        &[("x-act-as", target)],
    )
}

fn audit(host: &TestHost, token: &str, query: &str) -> Result<Reply> {
    call(
        host,
        "GET",
        &format!("/v1/orgs/acme/audit-events{query}"),
        None,
        Some(token),
        &[],
    )
}

#[test]
fn an_admin_with_the_permission_acts_as_a_member_and_every_request_is_audited() -> Result<()> {
    let host = start_app()?;
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
    let ada_id = user_id(&host, &ada)?;
    let (bob, bob_id) = join(&host, &ada, "acme", "bob@example.com", "member", &[])?;
    let (_carol, carol_id) = join(&host, &ada, "acme", "carol@example.com", "admin", &[])?;
    let eve = signed_in(&host, "eve@example.com")?;
    expect(
        post(
            &host,
            "/v1/orgs",
            &json!({"name": "Globex", "handle": "globex"}),
            Some(&eve),
        )?,
        201,
    )?;
    let eve_id = user_id(&host, &eve)?;
    expect(
        call(
            &host,
            "POST",
            "/v1/roles",
            Some(&json!({"name": "reader", "permissions": ["docs:read"]})),
            Some(&ada),
            &[],
        )?,
        201,
    )?;
    expect(
        call(
            &host,
            "PUT",
            &format!("/v1/roles/reader/members/{bob_id}"),
            None,
            Some(&ada),
            &[],
        )?,
        204,
    )?;

    // Being an admin is not enough: the dedicated permission is needed.
    assert_eq!(
        as_user(&host, &ada, &bob_id, "GET", "/v1/auth/whoami", None)?.status,
        403
    );
    expect(
        call(
            &host,
            "POST",
            "/v1/roles",
            Some(&json!({"name": "support", "permissions": ["users:impersonate"]})),
            Some(&ada),
            &[],
        )?,
        201,
    )?;
    expect(
        call(
            &host,
            "PUT",
            &format!("/v1/roles/support/members/{ada_id}"),
            None,
            Some(&ada),
            &[],
        )?,
        204,
    )?;

    // Ada acts as Bob: the request is Bob's, with Ada kept beside him.
    let acting = expect(
        as_user(&host, &ada, &bob_id, "GET", "/v1/auth/whoami", None)?,
        200,
    )?;
    assert_eq!(acting["subject"], json!({"type": "user", "id": bob_id}));
    assert_eq!(acting["acting_as"], json!({"impersonator_user_id": ada_id}));
    assert_eq!(acting["org_role"], "member");
    assert_eq!(acting["permissions"], json!(["docs:read"]));
    // Org routes answer as Bob: he lists members but may not read the
    // admin-only audit trail, nor leave the org or create one.
    let members = expect(
        as_user(&host, &ada, &bob_id, "GET", "/v1/orgs/acme/members", None)?,
        200,
    )?;
    assert_eq!(members["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        as_user(
            &host,
            &ada,
            &bob_id,
            "GET",
            "/v1/orgs/acme/audit-events",
            None
        )?
        .status,
        403
    );
    let leave = as_user(
        &host,
        &ada,
        &bob_id,
        "DELETE",
        &format!("/v1/orgs/acme/members/{bob_id}"),
        None,
    )?;
    assert_eq!(leave.status, 403, "{}", leave.text());

    // A token issued meanwhile names both, and using it is audited too.
    let issued = expect(
        as_user(&host, &ada, &bob_id, "POST", "/v1/tokens", Some(&json!({})))?,
        200,
    )?;
    let jwt = issued["access_token"]
        .as_str()
        .context("token")?
        .to_string();
    let payload = jwt.split('.').nth(1).context("payload")?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?;
    assert_eq!(claims["sub"], json!(bob_id));
    assert_eq!(claims["act"], json!({"sub": ada_id}));
    let via_jwt = expect(
        call(&host, "GET", "/v1/auth/whoami", None, Some(&jwt), &[])?,
        200,
    )?;
    assert_eq!(
        via_jwt["acting_as"],
        json!({"impersonator_user_id": ada_id})
    );
    assert_eq!(via_jwt["credential"], "jwt");
    // A request id the client sends is kept with the event.
    let tagged = call(
        &host,
        "GET",
        "/v1/auth/whoami",
        None,
        Some(&jwt),
        &[("x-request-id", "trace-42")],
    )?;
    assert_eq!(tagged.status, 200);

    // Refused: a peer admin, another org's user, an unknown id, oneself,
    // a chain through the token, a member trying it, account routes.
    assert_eq!(
        as_user(&host, &ada, &carol_id, "GET", "/v1/auth/whoami", None)?.status,
        403
    );
    assert_eq!(
        as_user(&host, &ada, &eve_id, "GET", "/v1/auth/whoami", None)?.status,
        404
    );
    assert_eq!(
        as_user(
            &host,
            &ada,
            "usr_00000000000000000000000000000000",
            "GET",
            "/v1/auth/whoami",
            None
        )?
        .status,
        404
    );
    assert_eq!(
        as_user(&host, &ada, &ada_id, "GET", "/v1/auth/whoami", None)?.status,
        422
    );
    assert_eq!(
        as_user(&host, &jwt, &bob_id, "GET", "/v1/auth/whoami", None)?.status,
        403
    );
    // Only a session starts it: Ada's own token cannot, and API keys cannot
    // be made (or used) while acting.
    let own = expect(post(&host, "/v1/tokens", &json!({}), Some(&ada))?, 200)?;
    let own = own["access_token"].as_str().context("token")?;
    assert_eq!(
        as_user(&host, own, &bob_id, "GET", "/v1/auth/whoami", None)?.status,
        403
    );
    let key = as_user(
        &host,
        &ada,
        &bob_id,
        "POST",
        "/v1/keys",
        Some(&json!({"name": "bobs"})),
    )?;
    assert_eq!(key.status, 403, "{}", key.text());
    assert_eq!(
        as_user(&host, &bob, &ada_id, "GET", "/v1/auth/whoami", None)?.status,
        403
    );
    assert_eq!(
        as_user(&host, &ada, &bob_id, "GET", "/v1/me", None)?.status,
        403
    );
    assert_eq!(
        as_user(&host, &ada, &bob_id, "GET", "/v1/auth/whoami", None).map(|r| r.status)?,
        200
    );
    // Eve cannot act as Bob by naming acme either.
    let cross = call(
        &host,
        "GET",
        "/v1/auth/whoami",
        None,
        Some(&eve),
        &[("x-act-as", &bob_id), ("x-org", "acme")],
    )?;
    assert_eq!(cross.status, 404);

    // The trail: the 9 requests made as Bob, newest first (those refused
    // for what Bob may do included), and nothing for the requests refused
    // for what Ada may do.
    let trail = expect(audit(&host, &ada, "?action=impersonation.request")?, 200)?;
    let items = trail["items"].as_array().context("items")?;
    assert_eq!(items.len(), 9, "{trail}");
    for event in items {
        assert_eq!(event["action"], "impersonation.request");
        assert_eq!(event["actor_user_id"], json!(ada_id));
        assert_eq!(event["subject_user_id"], json!(bob_id));
    }
    let paths: Vec<&str> = items.iter().filter_map(|e| e["path"].as_str()).collect();
    assert!(
        paths.contains(&"/v1/tokens") && paths.contains(&"/v1/orgs/acme/audit-events"),
        "{paths:?}"
    );
    let credentials: Vec<&str> = items
        .iter()
        .filter_map(|e| e["credential"].as_str())
        .collect();
    assert_eq!(credentials.iter().filter(|c| **c == "jwt").count(), 2);
    assert!(items.iter().any(|e| e["request_id"] == "trace-42"));
    // Pages and the action filter.
    let first = expect(
        audit(&host, &ada, "?action=impersonation.request&limit=5")?,
        200,
    )?;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(5));
    let cursor = first["next_cursor"].as_str().context("next_cursor")?;
    let second = expect(
        audit(
            &host,
            &ada,
            &format!("?action=impersonation.request&limit=5&cursor={cursor}"),
        )?,
        200,
    )?;
    assert_eq!(second["items"].as_array().map(Vec::len), Some(4));
    assert!(second["next_cursor"].is_null());
    let none = expect(audit(&host, &ada, "?action=invitation.sent")?, 200)?;
    assert_eq!(none["items"], json!([]));
    assert_eq!(audit(&host, &ada, "?action=DROP%20TABLE")?.status, 400);
    // Members, other orgs and strangers do not read it.
    assert_eq!(audit(&host, &bob, "")?.status, 403);
    assert_eq!(audit(&host, &eve, "")?.status, 404);
    assert_eq!(
        call(&host, "GET", "/v1/orgs/acme/audit-events", None, None, &[])?.status,
        401
    );
    Ok(())
}
