//! Who may manage webhook sources and read what they received, what a
//! source accepts to be made with, and what the ingest URL refuses before
//! verifying anything: a deleted or unknown source, an oversize body.

use anyhow::{Context, Result};
use gatehouse_tests::app::{call, expect, join, org, post, problem};
use serde_json::{Value, json};

use crate::support::{
    T, accepted, admin, create_source, deliver, deliver_announced, event, events, id_of,
    patch_source, source, start, stripe,
};

const SECRET: &str = "whsec_boundary_tests_secret";

/// `(pointer, code)` of the first field error of a 422 `validation_failed`.
fn invalid(reply: gatehouse_tests::Reply) -> Result<(String, String)> {
    let (code, pointer, field) = problem(reply, 422)?;
    assert_eq!(code, "validation_failed");
    Ok((pointer, field))
}

fn pair(pointer: &str, code: &str) -> (String, String) {
    (pointer.to_string(), code.to_string())
}

#[test]
fn each_validation_error_is_a_problem_with_its_code() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let create = |body: Value| post(&host, "/v1/webhooks/sources", &body, Some(&acme.admin));
    let whsec = webhooks_core::SigningSecret::from_random(&[41u8; 32])?.to_whsec();
    let whsk = webhooks_core::SigningKey::from_seed(&[42u8; 32]).to_whsk();
    let cases = [
        (
            json!({"provider": "gitlab", "secrets": ["s"]}),
            pair("/provider", "unknown_provider"),
        ),
        (
            json!({"provider": "github"}),
            pair("/secrets", "secrets_required"),
        ),
        (
            json!({"provider": "standard", "secrets": [whsec, "not base64!"]}),
            pair("/secrets/1", "invalid_secret"),
        ),
        (
            json!({"provider": "standard", "secrets": [whsk]}),
            pair("/secrets/0", "invalid_secret"),
        ),
        (
            json!({"provider": "teams", "secrets": ["%%% not a token %%%"]}),
            pair("/secrets/0", "invalid_secret"),
        ),
        (
            json!({"provider": "github", "secrets": ["ok", ""]}),
            pair("/secrets/1", "invalid_secret"),
        ),
        (
            json!({"provider": "github", "secrets": ["x".repeat(513)]}),
            pair("/secrets/0", "invalid_secret"),
        ),
        (
            json!({"provider": "github", "secrets": ["1", "2", "3", "4", "5", "6"]}),
            pair("/secrets", "too_many_secrets"),
        ),
        (
            json!({"provider": "azure_devops"}),
            pair("/basic", "credentials_required"),
        ),
        (
            json!({"provider": "azure_devops", "secrets": ["s"], "basic": {"username": "u", "password": "p"}}),
            pair("/secrets", "secrets_not_supported"),
        ),
        (
            json!({"provider": "github", "secrets": ["s"], "basic": {"username": "u", "password": "p"}}),
            pair("/basic", "credentials_not_supported"),
        ),
        (
            json!({"provider": "github", "secrets": ["s"], "tolerance_seconds": 60}),
            pair("/tolerance_seconds", "tolerance_not_supported"),
        ),
        (
            json!({"provider": "stripe", "secrets": [SECRET], "tolerance_seconds": 0}),
            pair("/tolerance_seconds", "tolerance_out_of_range"),
        ),
        (
            json!({"provider": "slack", "secrets": ["s"], "tolerance_seconds": 3601}),
            pair("/tolerance_seconds", "tolerance_out_of_range"),
        ),
        (
            json!({"provider": "azure_devops", "header": {"name": "X Bad", "value": "v"}}),
            pair("/header/name", "invalid_header_name"),
        ),
        (
            json!({"provider": "github", "secrets": ["s"], "description": "d".repeat(201)}),
            pair("/description", "too_long"),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(invalid(create(body.clone())?)?, expected, "{body}");
    }
    // Unknown fields are refused, not ignored.
    let (_, code) = invalid(create(
        json!({"provider": "github", "secrets": ["s"], "secret": "s"}),
    )?)?;
    assert_eq!(code, "unknown_field");
    // The limits themselves are accepted.
    let widest = create_source(
        &host,
        &acme,
        json!({"provider": "slack", "secrets": ["1", "2", "3", "4", "5"],
               "tolerance_seconds": 3600, "description": "d".repeat(200)}),
    )?;
    assert_eq!(widest["secret_count"], 5);
    let public_key = webhooks_core::SigningKey::from_seed(&[43u8; 32])
        .public_key()
        .to_whpk();
    let keyed = create_source(
        &host,
        &acme,
        json!({"provider": "standard", "secrets": [whsec, public_key]}),
    )?;
    assert_eq!(keyed["secret_count"], 2);

    // An update is held to the same rules.
    let id = id_of(&create_source(
        &host,
        &acme,
        json!({"provider": "stripe", "secrets": [SECRET]}),
    )?)?;
    let updates = [
        (
            json!({"tolerance_seconds": 3601}),
            pair("/tolerance_seconds", "tolerance_out_of_range"),
        ),
        (
            json!({"secrets": ["1", "2", "3", "4", "5", "6"]}),
            pair("/secrets", "too_many_secrets"),
        ),
        (
            json!({"secrets": [SECRET, ""]}),
            pair("/secrets/1", "invalid_secret"),
        ),
        (
            json!({"description": "d".repeat(201)}),
            pair("/description", "too_long"),
        ),
    ];
    for (body, expected) in updates {
        let reply = patch_source(&host, &acme, &id, body.clone())?;
        assert_eq!(invalid(reply)?, expected, "{body}");
    }
    let (_, code) = invalid(patch_source(
        &host,
        &acme,
        &id,
        json!({"provider": "github"}),
    )?)?;
    assert_eq!(code, "unknown_field");
    let github = id_of(&create_source(
        &host,
        &acme,
        json!({"provider": "github", "secrets": ["s"]}),
    )?)?;
    let reply = patch_source(&host, &acme, &github, json!({"tolerance_seconds": 60}))?;
    assert_eq!(
        invalid(reply)?,
        pair("/tolerance_seconds", "tolerance_not_supported")
    );
    // Nothing refused was changed.
    let kept = source(&host, &acme, &id)?;
    assert_eq!(
        (&kept["secret_count"], &kept["tolerance_seconds"]),
        (&json!(1), &Value::Null)
    );

    // The list of events reads only the query parameters it knows, as they are.
    for query in ["status=bogus", "limit=0", "limit=201", "cursor=@@@@"] {
        let path = format!("/v1/webhooks/events?{query}");
        let reply = admin(&host, "GET", &path, None, &acme.admin)?;
        assert_eq!(problem(reply, 400)?.0, "invalid_query", "{query}");
    }
    Ok(())
}

#[test]
fn a_member_who_is_not_an_admin_is_forbidden_and_no_credentials_are_unauthenticated() -> Result<()>
{
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "stripe", "secrets": [SECRET]}),
    )?;
    let body = r#"{"id":"evt_member_0001","type":"customer.created"}"#;
    let received = accepted(&made, &stripe(SECRET, body, T)?, body)?;
    let (source_id, event_id) = (id_of(&made)?, id_of(&received)?);
    let (bob, _) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[],
    )?;
    let create = json!({"provider": "github", "secrets": ["s"]});
    let patch = json!({"description": "mine now"});
    let routes = [
        ("POST", "/v1/webhooks/sources".to_string(), Some(&create)),
        ("GET", "/v1/webhooks/sources".to_string(), None),
        ("GET", format!("/v1/webhooks/sources/{source_id}"), None),
        (
            "PATCH",
            format!("/v1/webhooks/sources/{source_id}"),
            Some(&patch),
        ),
        ("DELETE", format!("/v1/webhooks/sources/{source_id}"), None),
        ("GET", "/v1/webhooks/events".to_string(), None),
        ("GET", format!("/v1/webhooks/events/{event_id}"), None),
    ];
    for (method, path, body) in &routes {
        let reply = call(&host, method, path, *body, Some(&bob), &[])?;
        assert_eq!(problem(reply, 403)?.0, "forbidden", "{method} {path}");
        for token in [None, Some("ghs_not-a-session")] {
            let reply = call(&host, method, path, *body, token, &[])?;
            assert_eq!(
                problem(reply, 401)?.0,
                "unauthenticated",
                "{method} {path} with {token:?}"
            );
        }
    }
    // None of it changed anything.
    let kept = source(&host, &acme, &source_id)?;
    assert_eq!(kept["description"], Value::Null);
    assert_eq!(events(&host, &acme, "")?.len(), 1);
    Ok(())
}

#[test]
fn another_orgs_sources_and_events_are_not_found() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let globex = org(&host, "eve@example.com", "globex")?;
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "stripe", "secrets": [SECRET]}),
    )?;
    let body = r#"{"id":"evt_tenant_0001","type":"customer.created"}"#;
    let received = accepted(&made, &stripe(SECRET, body, T)?, body)?;
    let (source_id, event_id) = (id_of(&made)?, id_of(&received)?);
    create_source(
        &host,
        &globex,
        json!({"provider": "github", "secrets": ["globex secret"]}),
    )?;

    let patch = json!({"description": "taken"});
    let routes = [
        ("GET", format!("/v1/webhooks/sources/{source_id}"), None),
        (
            "PATCH",
            format!("/v1/webhooks/sources/{source_id}"),
            Some(&patch),
        ),
        ("DELETE", format!("/v1/webhooks/sources/{source_id}"), None),
        ("GET", format!("/v1/webhooks/events/{event_id}"), None),
    ];
    for (method, path, body) in &routes {
        let reply = call(&host, method, path, *body, Some(&globex.admin), &[])?;
        assert_eq!(problem(reply, 404)?.0, "not_found", "{method} {path}");
    }
    let theirs = expect(
        admin(&host, "GET", "/v1/webhooks/sources", None, &globex.admin)?,
        200,
    )?;
    let listed = theirs["items"].as_array().context("items")?;
    assert_eq!(listed.len(), 1);
    assert_ne!(listed[0]["id"], source_id);
    assert!(events(&host, &globex, "")?.is_empty());
    // Naming acme's source as a filter finds nothing of acme's.
    let filtered = admin(
        &host,
        "GET",
        &format!("/v1/webhooks/events?source={source_id}"),
        None,
        &globex.admin,
    )?;
    if filtered.status == 200 {
        assert_eq!(filtered.json()?["items"], json!([]));
    } else {
        assert_eq!(problem(filtered, 404)?.0, "not_found");
    }
    // Naming acme in X-Org is refused like an org that does not exist.
    let as_acme = call(
        &host,
        "GET",
        "/v1/webhooks/events",
        None,
        Some(&globex.admin),
        &[("x-org", &acme.id)],
    )?;
    assert_eq!(problem(as_acme, 404)?.0, "not_found");

    let kept = source(&host, &acme, &source_id)?;
    assert_eq!(kept["description"], Value::Null);
    assert_eq!(event(&host, &acme, &event_id)?["id"], event_id);
    Ok(())
}

#[test]
fn a_deleted_sources_url_answers_not_found_and_its_events_stay() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "stripe", "secrets": [SECRET]}),
    )?;
    let id = id_of(&made)?;
    let body = r#"{"id":"evt_deleted_0001","type":"customer.deleted"}"#;
    let signed = stripe(SECRET, body, T)?;
    let received = accepted(&made, &signed, body)?;

    let path = format!("/v1/webhooks/sources/{id}");
    let gone = admin(&host, "DELETE", &path, None, &acme.admin)?;
    assert_eq!(gone.status, 204, "{}", gone.text());
    assert!(gone.body.is_empty());
    // Even a redelivery of what it accepted before.
    for (headers, body) in [(&signed, body), (&vec![], "{}")] {
        let reply = deliver(&made, headers, body.as_bytes())?;
        assert_eq!(problem(reply, 404)?.0, "not_found");
    }
    assert_eq!(
        problem(admin(&host, "GET", &path, None, &acme.admin)?, 404)?.0,
        "not_found"
    );
    assert_eq!(
        problem(admin(&host, "DELETE", &path, None, &acme.admin)?, 404)?.0,
        "not_found"
    );
    let listed = expect(
        admin(&host, "GET", "/v1/webhooks/sources", None, &acme.admin)?,
        200,
    )?;
    assert_eq!(listed["items"], json!([]));
    let kept = events(&host, &acme, "")?;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["id"], received["id"]);
    assert_eq!(
        event(&host, &acme, &id_of(&received)?)?["delivery_id"],
        "evt_deleted_0001"
    );

    // A source that never was answers the same.
    let never = format!("{}/v1/hooks/whs_{}", host.base, "0".repeat(32));
    for url in [never, host.url("/v1/hooks/not-a-source")] {
        let reply =
            gatehouse_tests::send("POST", &url, &[("content-type", "application/json")], b"{}")?;
        assert_eq!(problem(reply, 404)?.0, "not_found", "{url}");
    }
    Ok(())
}

#[test]
fn an_oversize_body_is_refused_with_413_and_one_of_the_limit_is_taken() -> Result<()> {
    const MIB: usize = 1024 * 1024;
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let secret = "github oversize secret";
    let made = create_source(
        &host,
        &acme,
        json!({"provider": "github", "secrets": [secret]}),
    )?;
    let padded = |size: usize| {
        let frame = r#"{"action":"opened","pad":""}"#;
        format!(
            r#"{{"action":"opened","pad":"{}"}}"#,
            "x".repeat(size - frame.len())
        )
    };
    let (largest, over) = (padded(MIB), padded(MIB + 1));
    let signed = crate::support::sign(json!([
        {"op": "github", "secret": secret, "payload": largest,
         "delivery": "aaaaaaaa-0000-0000-0000-000000000001", "event": "issues"},
        {"op": "github", "secret": secret, "payload": over,
         "delivery": "aaaaaaaa-0000-0000-0000-000000000002", "event": "issues"},
    ]))?;
    let refused = deliver_announced(&made, &signed[1], over.as_bytes())?;
    assert_eq!(problem(refused, 413)?.0, "payload_too_large");
    assert!(events(&host, &acme, "")?.is_empty());

    let taken = accepted(&made, &signed[0], &largest)?;
    let listed = events(&host, &acme, "")?;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (&listed[0]["id"], &listed[0]["size"]),
        (&taken["id"], &json!(MIB))
    );
    Ok(())
}
