//! The audit trail end to end: every mutating operation the OpenAPI
//! document describes leaves a record before its answer; a record joins
//! an org's trail only when its actor belongs to the org; the operator
//! reads the deployment's records; each org's retention is applied by the
//! jobs run.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use gatehouse_http::audit::routes::{Record, find};
use gatehouse_tests::app::{
    Org, app_config, call, expect, join, org, post, problem, signed_in, team,
};
use gatehouse_tests::{TestHost, root, send};
use serde_json::{Value, json};

const OPERATOR: &str = "operator-token-for-the-audit-trail";
const OPERATOR_AUTH: (&str, &str) = ("authorization", "Bearer operator-token-for-the-audit-trail");

fn start(clock: bool) -> Result<TestHost> {
    let mut config = app_config();
    config
        .env
        .push(("SPIN_VARIABLE_OPERATOR_TOKEN".into(), OPERATOR.into()));
    config.controllable_clock = clock;
    TestHost::start(config)
}

/// `GET /v1/admin/audit-events{query}` with the operator's token.
fn operator_get(host: &TestHost, query: &str) -> Result<gatehouse_tests::Reply> {
    call(
        host,
        "GET",
        &format!("/v1/admin/audit-events{query}"),
        None,
        None,
        &[OPERATOR_AUTH],
    )
}

/// The records the operator sees for `query`, one page.
fn operator_items(host: &TestHost, query: &str) -> Result<Vec<Value>> {
    let page = expect(operator_get(host, query)?, 200)?;
    Ok(page["items"].as_array().context("items")?.clone())
}

/// Every record the operator sees, by request id.
fn all_records(host: &TestHost) -> Result<HashMap<String, Value>> {
    let mut records = HashMap::new();
    let mut cursor = String::new();
    loop {
        let page = expect(operator_get(host, &format!("?limit=100{cursor}"))?, 200)?;
        for event in page["items"].as_array().context("items")? {
            let id = event["request_id"].as_str().unwrap_or_default().to_string();
            records.insert(id, event.clone());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return Ok(records),
        }
    }
}

fn org_trail(host: &TestHost, org: &Org, query: &str) -> Result<Vec<Value>> {
    let page = expect(
        call(
            host,
            "GET",
            &format!("/v1/orgs/{}/audit-events{query}", org.id),
            None,
            Some(&org.admin),
            &[],
        )?,
        200,
    )?;
    Ok(page["items"].as_array().context("items")?.clone())
}

/// A path of the document with its parameters filled: the org is the
/// caller's, every other parameter names nothing.
fn filled(template: &str, org: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment {
            "{org}" => org.to_string(),
            s if s.starts_with('{') => "nothing-here".to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether the operation takes a credential.
fn secured(doc: &Value, method: &str, template: &str) -> bool {
    let operation = &doc["paths"][template][method.to_ascii_lowercase()];
    let security = operation.get("security").unwrap_or(&doc["security"]);
    security.as_array().is_some_and(|s| !s.is_empty())
}

#[test]
fn every_mutating_operation_of_the_openapi_document_leaves_a_record() -> Result<()> {
    let host = start(false)?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let text = std::fs::read_to_string(root().join("docs/openapi.json"))?;
    let doc: Value = serde_json::from_str(&text)?;
    let mut operations = Vec::new();
    for (template, ops) in doc["paths"].as_object().context("paths")? {
        for method in ops.as_object().context("operations")?.keys() {
            let method = method.to_ascii_uppercase();
            if matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
                operations.push((method, template.clone()));
            }
        }
    }
    // What ends the caller's standing goes last.
    operations.sort_by_key(|(m, t)| match (m.as_str(), t.as_str()) {
        ("DELETE", "/v1/orgs/{org}") => 1,
        ("DELETE", "/v1/me") => 2,
        ("POST", "/v1/auth/logout") => 3,
        _ => 0,
    });
    let mut sent = Vec::new();
    // Deleting an org deletes its trail: the deletion is tried on another.
    let doomed = expect(
        post(
            &host,
            "/v1/orgs",
            &json!({"name": "doomed", "handle": "doomed"}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let doomed = doomed["id"].as_str().context("id")?.to_string();
    for (i, (method, template)) in operations.iter().enumerate() {
        let org = if method == "DELETE" && template == "/v1/orgs/{org}" {
            &doomed
        } else {
            &acme.id
        };
        let path = filled(template, org);
        let request_id = format!("walk-{i}");
        let auth = if template.starts_with("/v1/admin/") || template == "/v1/signing-keys/$rotate" {
            format!("Bearer {OPERATOR}")
        } else {
            format!("Bearer {}", acme.admin)
        };
        let reply = send(
            method,
            &host.url(&path),
            &[
                ("authorization", &auth),
                ("x-org", "acme"),
                ("x-request-id", &request_id),
                ("content-type", "application/json"),
            ],
            b"{}",
        )?;
        assert!(
            reply.status < 500,
            "{method} {path}: {} {}",
            reply.status,
            reply.text()
        );
        let route = find(method, &path).with_context(|| format!("{method} {template}"))?;
        sent.push((
            method.clone(),
            template.clone(),
            request_id,
            route,
            reply.status,
        ));
    }
    let records = all_records(&host)?;
    let mut recorded = 0;
    for (method, template, request_id, route, status) in &sent {
        let record = records.get(request_id);
        match route.route.record {
            Record::Action(action) => {
                let record = record
                    .with_context(|| format!("no record of {method} {template} ({status})"))?;
                assert_eq!(record["action"], action, "{method} {template}");
                assert_eq!(record["outcome"], json!(status), "{method} {template}");
                assert_eq!(record["method"], json!(method));
                // A request with the caller's credential is the caller's,
                // whatever its answer.
                if secured(&doc, method, template) && *status != 401 {
                    assert_ne!(record["actor"]["type"], "anonymous", "{method} {template}");
                }
                recorded += 1;
            }
            Record::Elsewhere(_) => {
                assert!(
                    record.is_none(),
                    "{method} {template} is recorded elsewhere"
                )
            }
        }
    }
    assert!(recorded > 80, "{recorded} operations recorded");
    let refused = sent.iter().filter(|s| s.4 == 401).count();
    assert!(refused < 10, "{refused} operations refused the credential");
    Ok(())
}

#[test]
fn a_record_joins_an_orgs_trail_only_when_its_actor_belongs_to_the_org() -> Result<()> {
    let host = start(false)?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let globex = org(&host, "gus@globex.test", "globex")?;
    let (bob, bob_id) = join(&host, &acme.admin, &acme.id, "bob@acme.test", "member", &[])?;

    // A change by the admin: who, what, the fields set (never values),
    // the answer's digest, the client address.
    let made = expect(
        call(
            &host,
            "POST",
            &format!("/v1/orgs/{}/teams", acme.id),
            Some(&json!({"name": "Research"})),
            Some(&acme.admin),
            &[("x-request-id", "make-team")],
        )?,
        201,
    )?;
    let team_id = made["id"].as_str().context("team id")?;
    let made_records = org_trail(&host, &acme, "?action=team.create")?;
    let record = made_records.first().context("the team's record")?;
    assert_eq!(
        record["actor"],
        json!({"type": "user", "id": acme.admin_id})
    );
    assert_eq!(record["credential"], "session");
    assert_eq!(record["resource"], json!({"type": "team", "id": team_id}));
    assert_eq!(record["changed_fields"], json!(["name"]));
    assert_eq!(record["outcome"], 201);
    assert_eq!(record["request_id"], "make-team");
    assert_eq!(record["client_address"], "127.0.0.1");
    assert_eq!(record["digest"].as_str().map(str::len), Some(64));
    assert!(!record.to_string().contains("Research"));

    // A member refused is recorded in the org, as the member.
    let path = format!("/v1/orgs/{}/teams/{team_id}", acme.id);
    problem(call(&host, "DELETE", &path, None, Some(&bob), &[])?, 403)?;
    let refused = org_trail(&host, &acme, &format!("?actor={bob_id}&action=team.delete"))?;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["outcome"], 403);

    // Another org's admin is not found, and writes nothing into acme's
    // trail: the record is the deployment's.
    let eve = call(
        &host,
        "DELETE",
        &path,
        None,
        Some(&globex.admin),
        &[("x-request-id", "from-globex")],
    )?;
    problem(eve, 404)?;
    let acme_all = org_trail(&host, &acme, "?limit=100")?;
    assert!(acme_all.iter().all(|e| e["request_id"] != "from-globex"));
    assert!(
        org_trail(&host, &globex, "?limit=100")?
            .iter()
            .all(|e| e["request_id"] != "from-globex")
    );
    let records = all_records(&host)?;
    let foreign = records
        .get("from-globex")
        .context("the deployment's record")?;
    assert_eq!(foreign["org_id"], Value::Null);
    assert_eq!(foreign["actor"]["id"], json!(globex.admin_id));

    // An API key acts as itself, for its owner.
    let key = expect(
        post(
            &host,
            "/v1/keys",
            &json!({"name": "deployer", "roles": []}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let secret = key["key"].as_str().context("key")?;
    let key_id = key["id"].as_str().context("key id")?;
    let _ = call(
        &host,
        "POST",
        "/v1/roles",
        Some(&json!({"name": "auditor", "permissions": ["audit:read"]})),
        Some(secret),
        &[("x-request-id", "by-key")],
    )?;
    let by_key = org_trail(&host, &acme, &format!("?actor={key_id}"))?;
    let by_key = by_key.first().context("the key's record")?;
    assert_eq!(by_key["actor"], json!({"type": "api_key", "id": key_id}));
    assert_eq!(by_key["actor_user_id"], json!(acme.admin_id));
    assert_eq!(by_key["credential"], "api_key");

    // Sign-ins are the deployment's: a failed one names the account.
    let failed = post(
        &host,
        "/v1/auth/login",
        &json!({"email": "ada@acme.test", "password": "not-the-password"}),
        None,
    )?;
    assert_eq!(failed.status, 401);
    let records = all_records(&host)?;
    let logins: Vec<&Value> = records
        .values()
        .filter(|e| e["action"] == "auth.login" && e["outcome"] == 401)
        .collect();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["actor"]["id"], json!(acme.admin_id));
    assert_eq!(logins[0]["org_id"], Value::Null);
    assert!(org_trail(&host, &acme, "?action=auth.login")?.is_empty());

    // Filters by resource.
    let by_resource = org_trail(
        &host,
        &acme,
        &format!("?resource_type=team&resource_id={team_id}"),
    )?;
    assert_eq!(by_resource.len(), 2, "{by_resource:?}");
    Ok(())
}

#[test]
fn each_orgs_retention_is_applied_by_the_jobs_run() -> Result<()> {
    let host = start(true)?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let globex = org(&host, "gus@globex.test", "globex")?;
    team(&host, &acme, "Research", None)?;
    team(&host, &globex, "Research", None)?;
    let retention = |days: Value| {
        call(
            &host,
            "PATCH",
            &format!("/v1/orgs/{}", acme.id),
            Some(&json!({"audit_retention_days": days})),
            Some(&acme.admin),
            &[],
        )
    };
    assert_eq!(problem(retention(json!(89))?, 422)?.0, "validation_failed");
    assert_eq!(
        problem(retention(json!(3651))?, 422)?.0,
        "validation_failed"
    );
    let changed = expect(retention(json!(90))?, 200)?;
    assert_eq!(changed["audit_retention_days"], 90);
    let before = org_trail(&host, &acme, "?limit=100")?.len();
    assert!(before >= 2);

    host.advance_clock(91 * 86_400)?;
    let run = call(
        &host,
        "POST",
        "/v1/admin/jobs/$run",
        None,
        None,
        &[OPERATOR_AUTH],
    )?;
    assert_eq!(run.status, 200, "{}", run.text());
    // Acme keeps 90 days: its older records are gone; globex keeps a year.
    // (The admins' sessions have lapsed by now: the operator reads.)
    let acme_left = operator_items(&host, &format!("?org={}", acme.id))?;
    assert!(acme_left.is_empty(), "{acme_left:?}");
    let globex_left = operator_items(&host, &format!("?org={}&action=team.create", globex.id))?;
    assert_eq!(globex_left.len(), 1);
    Ok(())
}

#[test]
fn the_trails_are_read_only_by_their_readers() -> Result<()> {
    let host = start(false)?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let globex = org(&host, "gus@globex.test", "globex")?;
    let (bob, _) = join(&host, &acme.admin, &acme.id, "bob@acme.test", "member", &[])?;
    let path = format!("/v1/orgs/{}/audit-events", acme.id);
    problem(call(&host, "GET", &path, None, Some(&bob), &[])?, 403)?;
    problem(
        call(&host, "GET", &path, None, Some(&globex.admin), &[])?,
        404,
    )?;
    problem(call(&host, "GET", &path, None, None, &[])?, 401)?;
    let stranger = signed_in(&host, "mallory@example.test")?;
    problem(call(&host, "GET", &path, None, Some(&stranger), &[])?, 404)?;
    assert_eq!(
        problem(
            call(
                &host,
                "GET",
                &format!("{path}?resource_type=DROP"),
                None,
                Some(&acme.admin),
                &[]
            )?,
            400
        )?
        .0,
        "invalid_query"
    );
    // The operator's route takes the operator token, and only that.
    problem(
        call(
            &host,
            "GET",
            "/v1/admin/audit-events",
            None,
            Some(&acme.admin),
            &[],
        )?,
        401,
    )?;
    let bad = operator_get(&host, "?org=acme")?;
    assert_eq!(problem(bad, 400)?.0, "invalid_query");
    let items = operator_items(&host, &format!("?org={}", acme.id))?;
    if items.is_empty() || items.iter().any(|e| e["org_id"] != json!(acme.id)) {
        bail!("the operator's view of one org: {items:?}");
    }
    let items = operator_items(&host, "?org=none")?;
    assert!(items.iter().all(|e| e["org_id"].is_null()));
    assert!(items.iter().any(|e| e["action"] == "user.register"));
    Ok(())
}
