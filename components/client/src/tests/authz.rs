//! The authz client against canned answers: the request bodies it sends,
//! the answers it reads, and refusals as problems.

use anyhow::Result;
use serde_json::json;

use super::{Fake, run};
use crate::authz::{
    AuthzClient, AuthzError, CheckRequest, Field, FieldNames, Filter, FilterRequest, Placeholder,
    Reason, SubjectKind,
};

const BASE: &str = "https://auth.example.com/";

fn last_post(fake: &Fake) -> (String, String, serde_json::Value) {
    fake.posts
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn check_sends_the_request_and_reads_the_decision() -> Result<()> {
    let fake = Fake::default();
    fake.answer(
        200,
        json!({
            "allowed": true, "reason": "role_grant", "detail": "granted to role analyst",
            "policy": {"name": "reports", "version": 3, "action": "read"},
            "subject": {"type": "user", "id": "usr_carol"},
            "resource": {"service": "reports", "collection": "reports", "id": "rep_1"},
            "added_later": {"ignored": true}
        }),
    );
    let client = AuthzClient::new(BASE, &fake);
    let request = CheckRequest::new("reports:read", "rep_1")
        .in_collection("reports", "reports")
        .for_user("usr_carol")
        .at_version(3);
    let decision = run(client.check("jwt-of-ada", &request))?;
    assert_eq!(
        last_post(&fake),
        (
            "https://auth.example.com/v1/authz/check".to_string(),
            "jwt-of-ada".to_string(),
            json!({
                "policy": "reports:read",
                "resource": {"service": "reports", "collection": "reports", "id": "rep_1"},
                "subject": {"type": "user", "id": "usr_carol"},
                "version": 3
            })
        )
    );
    assert!(decision.allowed);
    assert_eq!(decision.reason, Reason::RoleGrant);
    assert_eq!(decision.detail, "granted to role analyst");
    assert_eq!(
        (decision.policy.name.as_str(), decision.policy.version),
        ("reports", 3)
    );
    assert_eq!(
        (decision.subject.kind, decision.subject.id.as_str()),
        (SubjectKind::User, "usr_carol")
    );
    assert_eq!(decision.resource.id, "rep_1");

    // The smallest request names the policy and the id; an unknown reason
    // does not fail the call.
    fake.answer(
        200,
        json!({
            "allowed": false, "reason": "quota_exceeded",
            "policy": {"name": "reports", "version": 3, "action": "read"},
            "subject": {"type": "api_key", "id": "key_1"},
            "resource": {"service": "reports", "collection": "reports", "id": "rep_2"}
        }),
    );
    let denied = run(client.check("key", &CheckRequest::new("reports:read", "rep_2")))?;
    assert_eq!(
        last_post(&fake).2,
        json!({"policy": "reports:read", "resource": {"id": "rep_2"}})
    );
    assert_eq!(
        (
            denied.allowed,
            denied.reason,
            denied.subject.kind,
            denied.detail.as_str()
        ),
        (false, Reason::Other, SubjectKind::ApiKey, "")
    );
    Ok(())
}

#[test]
fn filter_sends_the_request_and_reads_tree_mongo_and_sql() -> Result<()> {
    let fake = Fake::default();
    fake.answer(
        200,
        json!({
            "policy": {"name": "reports", "version": 1, "action": "read"},
            "subject": {"type": "user", "id": "usr_carol"},
            "service": "reports", "collection": "reports",
            "filter": {"op": "or", "args": [
                {"op": "in", "field": "id", "values": ["rep_1", "rep_2"]},
                {"op": "eq", "field": "owner_user", "value": "usr_carol"}
            ]},
            "mongo": {"$or": [{"id": {"$in": ["rep_1", "rep_2"]}}, {"created_by": {"$eq": "usr_carol"}}]},
            "sql": {"where": "(\"id\" IN ($3, $4) OR \"created_by\" = $5)", "params": ["rep_1", "rep_2", "usr_carol"]}
        }),
    );
    let client = AuthzClient::new(BASE, &fake);
    let request = FilterRequest::new("reports:read")
        .in_collection("reports", "reports")
        .with_fields(FieldNames {
            owner_user: Some("created_by".into()),
            ..FieldNames::default()
        })
        .with_sql(Placeholder::Dollar, 3);
    let answer = run(client.filter("jwt", &request))?;
    let (url, _, body) = last_post(&fake);
    assert_eq!(url, "https://auth.example.com/v1/authz/filter");
    assert_eq!(
        body,
        json!({
            "policy": "reports:read", "service": "reports", "collection": "reports",
            "fields": {"id": "id", "owner_user": "created_by"},
            "sql": {"placeholder": "$N", "first": 3}
        })
    );
    assert_eq!(
        answer.filter,
        Filter::Or {
            args: vec![
                Filter::In {
                    field: Field::Id,
                    values: vec!["rep_1".into(), "rep_2".into()]
                },
                Filter::Eq {
                    field: Field::OwnerUser,
                    value: "usr_carol".into()
                },
            ]
        }
    );
    assert_eq!(
        answer.sql.condition,
        "(\"id\" IN ($3, $4) OR \"created_by\" = $5)"
    );
    assert_eq!(answer.sql.params, ["rep_1", "rep_2", "usr_carol"]);
    assert_eq!(answer.mongo["$or"][1]["created_by"]["$eq"], "usr_carol");

    // A filter node this client does not know fails the call, rather than
    // be read as something wider.
    fake.answer(
        200,
        json!({
            "policy": {"name": "reports", "version": 1, "action": "read"},
            "subject": {"type": "user", "id": "usr_carol"},
            "service": "reports", "collection": "reports",
            "filter": {"op": "not", "arg": {"op": "false"}},
            "mongo": {}, "sql": {"where": "1 = 1", "params": []}
        }),
    );
    assert!(matches!(
        run(client.filter("jwt", &FilterRequest::new("reports:read"))),
        Err(AuthzError::InvalidResponse(_))
    ));
    Ok(())
}

#[test]
fn refusals_are_problems_with_their_status_and_code() -> Result<()> {
    let fake = Fake::default();
    fake.answer(
        403,
        json!({
            "type": "urn:gatehouse:problem:forbidden", "title": "Forbidden", "status": 403,
            "code": "forbidden", "detail": "only admins and holders of authz:check ask for others",
            "instance": "req_1"
        }),
    );
    let client = AuthzClient::new(BASE, &fake);
    let request = CheckRequest::new("reports:read", "rep_1").for_user("usr_bob");
    let Err(AuthzError::Problem(problem)) = run(client.check("jwt", &request)) else {
        panic!("a 403 is a problem");
    };
    assert_eq!((problem.status, problem.code.as_str()), (403, "forbidden"));
    assert_eq!(problem.instance.as_deref(), Some("req_1"));
    assert_eq!(
        AuthzError::Problem(problem).to_string(),
        "Gatehouse answered 403 forbidden: only admins and holders of authz:check ask for others"
    );

    fake.answer(
        422,
        json!({"status": 422, "code": "validation_failed",
               "errors": [{"pointer": "/policy", "code": "invalid_format", "message": "policy is name:action"}]}),
    );
    let Err(AuthzError::Problem(invalid)) =
        run(client.check("jwt", &CheckRequest::new("reports", "x")))
    else {
        panic!("a 422 is a problem");
    };
    assert_eq!(invalid.errors[0].pointer, "/policy");

    // A proxy's page in front of Gatehouse: the status, and no code.
    *fake.reply.lock().unwrap() = Some(crate::HttpResponse {
        status: 502,
        body: b"<html>Bad Gateway</html>".to_vec(),
    });
    let Err(AuthzError::Problem(gateway)) = run(client.check("jwt", &request)) else {
        panic!("a 502 is a problem");
    };
    assert_eq!((gateway.status, gateway.code.as_str()), (502, ""));

    *fake.reply.lock().unwrap() = None;
    assert!(matches!(
        run(client.check("jwt", &request)),
        Err(AuthzError::Transport(_))
    ));
    Ok(())
}
