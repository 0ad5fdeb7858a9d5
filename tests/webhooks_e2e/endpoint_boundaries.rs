//! What an endpoint is made with (the URL policy and the deployment's
//! outbound rule, event types, the limits), who may manage endpoints and read their messages, and the
//! tenant boundary around both.

use anyhow::Result;
use gatehouse_tests::app::{call, expect, join, org, post, problem};
use serde_json::{Value, json};

use super::{
    LOCAL, PUBLIC, by, create, delivery_jobs, id_of, invalid, items, pair, patch, read,
    record_message, start, start_with,
};
use crate::support::{T, pick};

#[test]
fn each_validation_error_is_a_problem_with_its_code() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let make = |body: Value| post(&host, "/v1/webhooks/endpoints", &body, Some(&acme.admin));
    let long_url = format!("https://hooks.example.com/{}", "a".repeat(2000));
    let many: Vec<String> = (0..101).map(|_| "quota.*".to_string()).collect();
    let cases = [
        (json!({"url": "not a url"}), pair("/url", "invalid_url")),
        (
            json!({"url": "ftp://hooks.example.com/x"}),
            pair("/url", "invalid_url"),
        ),
        (json!({"url": long_url}), pair("/url", "too_long")),
        (
            json!({"url": "http://hooks.example.com/x"}),
            pair("/url", "https_required"),
        ),
        (
            json!({"url": "https://user:pw@hooks.example.com/x"}),
            pair("/url", "url_has_credentials"),
        ),
        (
            json!({"url": "https://10.0.0.1/x"}),
            pair("/url", "private_host"),
        ),
        (
            json!({"url": "http://10.0.0.1/x"}),
            pair("/url", "private_host"),
        ),
        (
            json!({"url": "http://localhost:8080/x"}),
            pair("/url", "private_host"),
        ),
        (
            json!({"url": "https://[::1]/x"}),
            pair("/url", "private_host"),
        ),
        (
            json!({"url": "http://169.254.169.254/latest/meta-data/"}),
            pair("/url", "forbidden_host"),
        ),
        (
            json!({"url": "https://169.254.1.1/x"}),
            pair("/url", "private_host"),
        ),
        (
            json!({"url": PUBLIC, "event_types": ["quota.*", "quota.exceeded"]}),
            pair("/event_types/1", "unknown_event_type"),
        ),
        (
            json!({"url": PUBLIC, "event_types": ["*"]}),
            pair("/event_types/0", "unknown_event_type"),
        ),
        (
            json!({"url": PUBLIC, "event_types": "quota.*"}),
            pair("/event_types", "invalid"),
        ),
        (
            json!({"url": PUBLIC, "event_types": []}),
            pair("/event_types", "empty"),
        ),
        (
            json!({"url": PUBLIC, "event_types": many}),
            pair("/event_types", "too_many"),
        ),
        (
            json!({"url": PUBLIC, "description": "d".repeat(501)}),
            pair("/description", "too_long"),
        ),
        (
            json!({"url": PUBLIC, "v1a": "yes"}),
            pair("/v1a", "invalid"),
        ),
        (json!({"description": "no url"}), pair("/url", "required")),
        (
            json!({"url": PUBLIC, "secret": "whsec_x"}),
            pair("/secret", "unknown_field"),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(invalid(make(body.clone())?)?, expected, "{body}");
    }
    // The limits themselves are taken, and the listed host over http.
    let widest = create(
        &host,
        &acme,
        json!({"url": format!("https://hooks.example.com/{}", "a".repeat(2000 - 26)),
               "description": "d".repeat(500),
               "event_types": (0..100).map(|_| "key.*").collect::<Vec<_>>()}),
    )?;
    assert_eq!(widest["event_types"], json!(["key.*"]));
    let local = id_of(&create(&host, &acme, json!({"url": LOCAL}))?)?;

    // A change is held to the same rules, and nothing refused is changed.
    let updates = [
        (
            json!({"url": "http://hooks.example.com/x"}),
            pair("/url", "https_required"),
        ),
        (
            json!({"url": "https://10.0.0.1/x"}),
            pair("/url", "private_host"),
        ),
        (
            json!({"event_types": ["member.joined"]}),
            pair("/event_types/0", "unknown_event_type"),
        ),
        (
            json!({"description": "d".repeat(501)}),
            pair("/description", "too_long"),
        ),
        (json!({"enabled": "no"}), pair("/enabled", "invalid")),
        (json!({"url": null}), pair("/url", "invalid")),
        (json!({"id": "whep_x"}), pair("/id", "unknown_field")),
    ];
    for (body, expected) in updates {
        let reply = patch(&host, &acme, &local, body.clone())?;
        assert_eq!(invalid(reply)?, expected, "{body}");
    }
    let kept = read(&host, &acme, &local, "")?;
    assert_eq!(
        pick(&kept, &["url", "description", "event_types", "enabled"]),
        json!({"url": LOCAL, "description": null, "event_types": null, "enabled": true})
    );
    for query in ["status=bogus", "colour=red", "limit=0", "cursor=@@@@"] {
        let path = format!("/v1/webhooks/endpoints/{local}/messages?{query}");
        let reply = by(&host, &acme.admin, "GET", &path, None)?;
        assert_eq!(problem(reply, 400)?.0, "invalid_query", "{query}");
    }
    Ok(())
}

#[test]
fn a_url_outside_the_deployments_outbound_rule_for_deliveries_is_refused() -> Result<()> {
    // webhook_delivery_hosts as deployed by default: https://*:443.
    let host = start_with(None)?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let make = |url: &str| {
        post(
            &host,
            "/v1/webhooks/endpoints",
            &json!({"url": url}),
            Some(&acme.admin),
        )
    };
    for url in [
        "https://hooks.example.com:8443/x",
        "https://hooks.example.com:80/x",
        // Listed as a private host, but the jobs runner may not call it.
        LOCAL,
    ] {
        let reply = make(url)?;
        let message = reply.json()?["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            invalid(reply)?,
            pair("/url", "outside_outbound_rule"),
            "{url}"
        );
        assert!(
            message.contains("webhook_delivery_hosts = `https://*:443`"),
            "{message}"
        );
    }
    let id = id_of(&create(
        &host,
        &acme,
        json!({"url": "https://hooks.example.com:443/x"}),
    )?)?;
    create(&host, &acme, json!({"url": PUBLIC}))?;
    // A change is held to it too.
    let reply = patch(
        &host,
        &acme,
        &id,
        json!({"url": "https://hooks.example.com:8443/x"}),
    )?;
    assert_eq!(invalid(reply)?, pair("/url", "outside_outbound_rule"));
    assert_eq!(
        read(&host, &acme, &id, "")?["url"],
        "https://hooks.example.com:443/x"
    );
    Ok(())
}

#[test]
fn an_org_holds_at_most_fifty_endpoints() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let mut ids = Vec::new();
    for n in 0..50 {
        let url = format!("{PUBLIC}/{n}");
        ids.push(id_of(&create(&host, &acme, json!({"url": url}))?)?);
    }
    let reply = post(
        &host,
        "/v1/webhooks/endpoints",
        &json!({"url": PUBLIC}),
        Some(&acme.admin),
    )?;
    assert_eq!(
        problem(reply, 409)?,
        (
            "conflict".into(),
            String::new(),
            "endpoint_limit_reached".into()
        )
    );
    // Another org has its own fifty; a deleted endpoint makes room.
    let globex = org(&host, "eve@example.com", "globex")?;
    create(&host, &globex, json!({"url": PUBLIC}))?;
    let path = format!("/v1/webhooks/endpoints/{}", ids[0]);
    assert_eq!(by(&host, &acme.admin, "DELETE", &path, None)?.status, 204);
    create(&host, &acme, json!({"url": PUBLIC}))?;
    Ok(())
}

/// Every endpoint and message route, for endpoint `e` and message `m`.
fn routes(e: &str, m: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let base = format!("/v1/webhooks/endpoints/{e}");
    vec![
        ("GET", base.clone(), None),
        ("PATCH", base.clone(), Some(json!({"description": "taken"}))),
        ("GET", format!("{base}/secret"), None),
        ("POST", format!("{base}/secret/$rotate"), None),
        ("GET", format!("{base}/messages"), None),
        ("GET", format!("{base}/messages/{m}"), None),
        ("POST", format!("{base}/messages/{m}/$resend"), None),
        (
            "POST",
            format!("{base}/$recover"),
            Some(json!({"since": T - 3600})),
        ),
        ("DELETE", base, None),
    ]
}

#[test]
fn a_member_who_is_not_an_admin_is_forbidden_and_no_credentials_are_unauthenticated() -> Result<()>
{
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = create(&host, &acme, json!({"url": PUBLIC}))?;
    let id = id_of(&made)?;
    let message = record_message(&host, &acme, &id, 1, "failed", T - 60, &[])?;
    let (bob, _) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@example.com",
        "member",
        &[],
    )?;
    let mut all = routes(&id, &message);
    all.push((
        "POST",
        "/v1/webhooks/endpoints".into(),
        Some(json!({"url": PUBLIC})),
    ));
    all.push(("GET", "/v1/webhooks/endpoints".into(), None));
    for (method, path, body) in &all {
        let reply = call(&host, method, path, body.as_ref(), Some(&bob), &[])?;
        assert_eq!(problem(reply, 403)?.0, "forbidden", "{method} {path}");
        for token in [None, Some("ghs_not-a-session")] {
            let reply = call(&host, method, path, body.as_ref(), token, &[])?;
            assert_eq!(
                problem(reply, 401)?.0,
                "unauthenticated",
                "{method} {path} with {token:?}"
            );
        }
    }
    // None of it changed anything or queued anything.
    let kept = read(&host, &acme, &id, "/secret")?;
    assert_eq!(kept["secret"], made["secret"]);
    assert_eq!(read(&host, &acme, &id, "")?["description"], Value::Null);
    assert_eq!(
        read(&host, &acme, &id, &format!("/messages/{message}"))?["status"],
        "failed"
    );
    assert!(delivery_jobs(&host)?.is_empty());
    Ok(())
}

#[test]
fn another_orgs_endpoints_and_messages_are_not_found() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let globex = org(&host, "eve@example.com", "globex")?;
    let made = create(&host, &acme, json!({"url": PUBLIC}))?;
    let id = id_of(&made)?;
    let message = record_message(&host, &acme, &id, 1, "failed", T - 60, &[])?;
    let theirs = id_of(&create(&host, &globex, json!({"url": PUBLIC}))?)?;
    for (method, path, body) in routes(&id, &message) {
        let reply = call(
            &host,
            method,
            &path,
            body.as_ref(),
            Some(&globex.admin),
            &[],
        )?;
        assert_eq!(problem(reply, 404)?.0, "not_found", "{method} {path}");
    }
    // Acme's message under globex's own endpoint is not found either.
    for (method, path, body) in routes(&theirs, &message) {
        if path.contains(&message) {
            let reply = call(
                &host,
                method,
                &path,
                body.as_ref(),
                Some(&globex.admin),
                &[],
            )?;
            assert_eq!(problem(reply, 404)?.0, "not_found", "{method} {path}");
        }
    }
    let listed = expect(
        by(&host, &globex.admin, "GET", "/v1/webhooks/endpoints", None)?,
        200,
    )?;
    assert_eq!(
        items(&listed)?
            .iter()
            .map(|e| e["id"].clone())
            .collect::<Vec<_>>(),
        [json!(theirs)]
    );
    // Naming acme in X-Org is refused like an org that does not exist.
    let as_acme = call(
        &host,
        "GET",
        "/v1/webhooks/endpoints",
        None,
        Some(&globex.admin),
        &[("x-org", &acme.id)],
    )?;
    assert_eq!(problem(as_acme, 404)?.0, "not_found");
    let kept = read(&host, &acme, &id, "")?;
    assert_eq!(kept["description"], Value::Null);
    assert_eq!(
        read(&host, &acme, &id, "/secret")?["secret"],
        made["secret"]
    );
    assert_eq!(
        read(&host, &acme, &id, &format!("/messages/{message}"))?["status"],
        "failed"
    );
    assert!(delivery_jobs(&host)?.is_empty());
    Ok(())
}
