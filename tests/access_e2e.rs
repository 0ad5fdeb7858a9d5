//! Access control through the built `access` component: roles (CRUD,
//! `$copy`), groups whose `add-user`/`remove-user` holders manage members,
//! grants that reach the holder's very next request, resource grants and
//! ownership, versioned policies, checks with reasons, and filters whose
//! SQL rendering is run against a real SQLite table. Every route is tried
//! without credentials and across tenants.

use anyhow::{Context, Result};
use gatehouse_tests::app::{call, expect, join, post, signed_in, start_app, user_id};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

fn get(host: &TestHost, path: &str, token: &str) -> Result<Reply> {
    call(host, "GET", path, None, Some(token), &[])
}

fn patch(host: &TestHost, path: &str, body: &Value, token: &str) -> Result<Reply> {
    call(host, "PATCH", path, Some(body), Some(token), &[])
}

fn put(host: &TestHost, path: &str, body: Option<&Value>, token: &str) -> Result<Reply> {
    call(host, "PUT", path, body, Some(token), &[])
}

fn delete(host: &TestHost, path: &str, token: &str) -> Result<Reply> {
    call(host, "DELETE", path, None, Some(token), &[])
}

fn code(reply: &Reply) -> String {
    reply
        .json()
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn pointers(reply: &Reply) -> Result<Vec<String>> {
    Ok(reply.json()?["errors"]
        .as_array()
        .context("errors")?
        .iter()
        .filter_map(|e| e["pointer"].as_str().map(str::to_string))
        .collect())
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i[field].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn create_org(host: &TestHost, token: &str, handle: &str) -> Result<String> {
    let org = expect(
        post(
            host,
            "/v1/orgs",
            &json!({"name": format!("{handle} Inc."), "handle": handle}),
            Some(token),
        )?,
        201,
    )?;
    Ok(org["id"].as_str().context("org id")?.to_string())
}

fn create_team(
    host: &TestHost,
    token: &str,
    org: &str,
    name: &str,
    parent: Option<&str>,
) -> Result<String> {
    let team = expect(
        post(
            host,
            &format!("/v1/orgs/{org}/teams"),
            &json!({"name": name, "parent_team_id": parent}),
            Some(token),
        )?,
        201,
    )?;
    Ok(team["id"].as_str().context("team id")?.to_string())
}

fn create_role(host: &TestHost, token: &str, name: &str, permissions: &[&str]) -> Result<Value> {
    expect(
        post(
            host,
            "/v1/roles",
            &json!({"name": name, "permissions": permissions}),
            Some(token),
        )?,
        201,
    )
}

fn grant_role(host: &TestHost, token: &str, role: &str, user: &str) -> Result<Reply> {
    put(
        host,
        &format!("/v1/roles/{role}/members/{user}"),
        None,
        token,
    )
}

/// An org `acme` with teams Eng > Backend and Sales: Ada administers it;
/// Bob, Carol (in Backend) and Dave (in Sales) are members.
struct World {
    host: TestHost,
    org_id: String,
    ada: String,
    bob: String,
    bob_id: String,
    carol: String,
    carol_id: String,
    dave: String,
    dave_id: String,
    eng: String,
    backend: String,
    sales: String,
}

fn world() -> Result<World> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    let org_id = create_org(&host, &ada, "acme")?;
    let eng = create_team(&host, &ada, "acme", "Engineering", None)?;
    let backend = create_team(&host, &ada, "acme", "Backend", Some(&eng))?;
    let sales = create_team(&host, &ada, "acme", "Sales", None)?;
    let (bob, bob_id) = join(&host, &ada, "acme", "bob@example.com", "member", &[])?;
    let (carol, carol_id) = join(
        &host,
        &ada,
        "acme",
        "carol@example.com",
        "member",
        &[&backend],
    )?;
    let (dave, dave_id) = join(&host, &ada, "acme", "dave@example.com", "member", &[&sales])?;
    Ok(World {
        host,
        org_id,
        ada,
        bob,
        bob_id,
        carol,
        carol_id,
        dave,
        dave_id,
        eng,
        backend,
        sales,
    })
}

#[test]
fn roles_are_created_listed_changed_copied_and_deleted() -> Result<()> {
    let w = world()?;
    let (host, ada, bob) = (&w.host, &w.ada, &w.bob);

    // Admins create; names are unique; permissions are stored sorted and once.
    let admin = expect(
        post(
            host,
            "/v1/roles",
            &json!({"name": "mygroup:admin", "description": "Runs mygroup",
                    "permissions": ["write", "read", "delete", "add-user", "remove-user", "read"]}),
            Some(ada),
        )?,
        201,
    )?;
    assert!(
        admin["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("role_"))
    );
    assert_eq!(admin["group"], "mygroup");
    assert_eq!(
        admin["permissions"],
        json!(["add-user", "delete", "read", "remove-user", "write"])
    );
    create_role(host, ada, "mygroup:write", &["read", "write"])?;
    create_role(host, ada, "auditor", &["read"])?;
    let again = post(host, "/v1/roles", &json!({"name": "auditor"}), Some(ada))?;
    assert_eq!(
        (again.status, pointers(&again)?),
        (409, vec!["/name".to_string()])
    );

    // An Idempotency-Key replays the first answer instead of conflicting.
    let key = [("idempotency-key", "create-viewer-1")];
    let body = json!({"name": "viewer", "permissions": ["read"]});
    let first = call(host, "POST", "/v1/roles", Some(&body), Some(ada), &key)?;
    let replay = call(host, "POST", "/v1/roles", Some(&body), Some(ada), &key)?;
    assert_eq!((first.status, replay.status), (201, 201));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.json()?["id"], replay.json()?["id"]);

    // Members read, by name, with pagination and a group filter.
    let all = expect(get(host, "/v1/roles?limit=3", bob)?, 200)?;
    assert_eq!(
        names(&all, "name"),
        ["auditor", "mygroup:admin", "mygroup:write"]
    );
    let cursor = all["next_cursor"].as_str().context("second page")?;
    let rest = expect(
        get(host, &format!("/v1/roles?limit=3&cursor={cursor}"), bob)?,
        200,
    )?;
    assert_eq!(names(&rest, "name"), ["viewer"]);
    assert!(rest["next_cursor"].is_null());
    let group = expect(get(host, "/v1/roles?group=mygroup", bob)?, 200)?;
    assert_eq!(names(&group, "name"), ["mygroup:admin", "mygroup:write"]);
    let one = expect(get(host, "/v1/roles/mygroup%3Aadmin", bob)?, 200)?;
    assert_eq!(one["description"], "Runs mygroup");
    assert_eq!(get(host, "/v1/roles/nope", bob)?.status, 404);

    // $copy: a new role with the source's permissions, then edited on its own.
    let copied = expect(
        post(
            host,
            "/v1/roles/mygroup:write/$copy",
            &json!({"name": "mygroup:editor"}),
            Some(ada),
        )?,
        201,
    )?;
    assert_eq!(copied["permissions"], json!(["read", "write"]));
    let edited = expect(
        patch(
            host,
            "/v1/roles/mygroup:editor",
            &json!({"permissions": ["read", "write", "publish"], "description": "Edits"}),
            ada,
        )?,
        200,
    )?;
    assert_eq!(edited["permissions"], json!(["publish", "read", "write"]));
    assert_eq!(
        expect(get(host, "/v1/roles/mygroup:write", bob)?, 200)?["permissions"],
        json!(["read", "write"]),
        "the source is untouched"
    );
    let taken = post(
        host,
        "/v1/roles/auditor/$copy",
        &json!({"name": "viewer"}),
        Some(ada),
    )?;
    assert_eq!(taken.status, 409);
    let missing = post(
        host,
        "/v1/roles/ghost/$copy",
        &json!({"name": "x"}),
        Some(ada),
    )?;
    assert_eq!(missing.status, 404);

    // Renames keep the role; a taken name is refused.
    let renamed = expect(
        patch(
            host,
            "/v1/roles/mygroup:editor",
            &json!({"name": "mygroup:publisher"}),
            ada,
        )?,
        200,
    )?;
    assert_eq!(
        (renamed["name"].clone(), renamed["id"].clone()),
        (json!("mygroup:publisher"), copied["id"].clone())
    );
    let clash = patch(
        host,
        "/v1/roles/mygroup:publisher",
        &json!({"name": "auditor"}),
        ada,
    )?;
    assert_eq!(clash.status, 409);

    // Members may not write.
    for reply in [
        post(host, "/v1/roles", &json!({"name": "mine"}), Some(bob))?,
        patch(host, "/v1/roles/auditor", &json!({"description": "x"}), bob)?,
        delete(host, "/v1/roles/auditor", bob)?,
        post(
            host,
            "/v1/roles/auditor/$copy",
            &json!({"name": "mine"}),
            Some(bob),
        )?,
    ] {
        assert_eq!(
            (reply.status, code(&reply)),
            (403, "forbidden".to_string()),
            "{}",
            reply.text()
        );
    }

    // Validation: every wrong field at once, with a pointer.
    let bad = post(
        host,
        "/v1/roles",
        &json!({"name": "Bad Name", "description": "x".repeat(501), "permissions": ["read", "NOT OK"]}),
        Some(ada),
    )?;
    assert_eq!(bad.status, 422);
    assert_eq!(pointers(&bad)?, ["/name", "/description", "/permissions/1"]);
    for name in ["a:b:c", ":x", "x:", "$copy"] {
        let reply = post(host, "/v1/roles", &json!({"name": name}), Some(ada))?;
        assert_eq!(reply.status, 422, "{name}");
    }
    let unknown = post(
        host,
        "/v1/roles",
        &json!({"name": "x", "perms": []}),
        Some(ada),
    )?;
    assert_eq!(
        (unknown.status, pointers(&unknown)?),
        (422, vec!["/perms".to_string()])
    );
    let patch_bad = patch(
        host,
        "/v1/roles/auditor",
        &json!({"permissions": "read"}),
        ada,
    )?;
    assert_eq!(patch_bad.status, 422);
    let wrong_type = call(
        host,
        "POST",
        "/v1/roles",
        None,
        Some(ada),
        &[("content-type", "text/plain")],
    )?;
    assert_eq!(wrong_type.status, 415);
    assert_eq!(get(host, "/v1/roles?limit=0", bob)?.status, 400);
    let method = call(host, "PUT", "/v1/roles", Some(&json!({})), Some(ada), &[])?;
    assert_eq!(
        (method.status, method.header("allow")),
        (405, Some("GET, POST"))
    );

    // Delete: gone, and its name is free again.
    expect(delete(host, "/v1/roles/mygroup:publisher", ada)?, 204)?;
    assert_eq!(get(host, "/v1/roles/mygroup:publisher", ada)?.status, 404);
    assert_eq!(
        delete(host, "/v1/roles/mygroup:publisher", ada)?.status,
        404
    );
    create_role(host, ada, "mygroup:publisher", &[])?;
    Ok(())
}

#[test]
fn group_members_are_managed_by_add_user_and_remove_user_holders() -> Result<()> {
    let w = world()?;
    let (host, ada) = (&w.host, &w.ada);
    create_role(
        host,
        ada,
        "mygroup:admin",
        &["read", "write", "delete", "add-user", "remove-user"],
    )?;
    create_role(host, ada, "mygroup:write", &["read", "write"])?;
    create_role(host, ada, "other:admin", &["add-user", "remove-user"])?;
    create_role(host, ada, "auditor", &["read"])?;
    create_role(host, ada, "lead:adder", &["add-user"])?;

    // The org admin makes Bob the group's admin.
    expect(grant_role(host, ada, "mygroup:admin", &w.bob_id)?, 204)?;
    // Bob adds Carol to the group, and removes her again.
    expect(grant_role(host, &w.bob, "mygroup:write", &w.carol_id)?, 204)?;
    expect(grant_role(host, &w.bob, "mygroup:write", &w.carol_id)?, 204)?;
    let holders = expect(get(host, "/v1/roles/mygroup:write/members", &w.dave)?, 200)?;
    assert_eq!(names(&holders, "subject_id"), [w.carol_id.as_str()]);
    assert_eq!(holders["items"][0]["subject_type"], "user");
    assert_eq!(holders["items"][0]["email"], "carol@example.com");
    assert_eq!(holders["items"][0]["granted_by"], json!(w.bob_id));
    // Bob's add-user counts in mygroup only: not for another group or a plain role.
    for role in ["other:admin", "auditor"] {
        let refused = grant_role(host, &w.bob, role, &w.dave_id)?;
        assert_eq!(
            (refused.status, code(&refused)),
            (403, "forbidden".to_string()),
            "{role}"
        );
    }
    // Carol holds mygroup:write (no add-user): she manages nobody.
    let refused = grant_role(host, &w.carol, "mygroup:write", &w.dave_id)?;
    assert_eq!(refused.status, 403);
    let refused = delete(
        host,
        &format!("/v1/roles/mygroup:write/members/{}", w.bob_id),
        &w.carol,
    )?;
    assert_eq!(refused.status, 403);
    // add-user without remove-user: Dave adds to `lead` but cannot remove.
    expect(grant_role(host, ada, "lead:adder", &w.dave_id)?, 204)?;
    expect(grant_role(host, &w.dave, "lead:adder", &w.carol_id)?, 204)?;
    let refused = delete(
        host,
        &format!("/v1/roles/lead:adder/members/{}", w.carol_id),
        &w.dave,
    )?;
    assert_eq!(refused.status, 403);
    expect(
        delete(
            host,
            &format!("/v1/roles/lead:adder/members/{}", w.carol_id),
            ada,
        )?,
        204,
    )?;

    // Bob removes Carol; removing again is 404.
    expect(
        delete(
            host,
            &format!("/v1/roles/mygroup:write/members/{}", w.carol_id),
            &w.bob,
        )?,
        204,
    )?;
    let again = delete(
        host,
        &format!("/v1/roles/mygroup:write/members/{}", w.carol_id),
        &w.bob,
    )?;
    assert_eq!(again.status, 404);
    // Only members of the org can hold roles; unknown roles are 404.
    let outsider = signed_in(host, "eve@example.com")?;
    let eve_id = user_id(host, &outsider)?;
    assert_eq!(
        grant_role(host, &w.bob, "mygroup:write", &eve_id)?.status,
        404
    );
    assert_eq!(
        grant_role(host, ada, "ghost:role", &w.carol_id)?.status,
        404
    );
    // Once Bob loses the group's admin role, he manages nothing.
    expect(
        delete(
            host,
            &format!("/v1/roles/mygroup:admin/members/{}", w.bob_id),
            ada,
        )?,
        204,
    )?;
    assert_eq!(
        grant_role(host, &w.bob, "mygroup:write", &w.carol_id)?.status,
        403
    );
    Ok(())
}

fn whoami(host: &TestHost, token: &str) -> Result<Value> {
    expect(get(host, "/v1/auth/whoami", token)?, 200)
}

#[test]
fn grant_and_permission_changes_reach_the_holders_very_next_request() -> Result<()> {
    let w = world()?;
    let (host, ada) = (&w.host, &w.ada);
    create_role(host, ada, "mygroup:write", &["read", "write"])?;
    create_role(host, ada, "auditor", &["audit"])?;
    // Carol's session is cached before any change.
    assert_eq!(whoami(host, &w.carol)?["roles"], json!([]));
    assert_eq!(whoami(host, &w.carol)?["permissions"], json!([]));

    expect(grant_role(host, ada, "mygroup:write", &w.carol_id)?, 204)?;
    expect(grant_role(host, ada, "auditor", &w.carol_id)?, 204)?;
    let me = whoami(host, &w.carol)?;
    assert_eq!(me["roles"], json!(["auditor", "mygroup:write"]));
    assert_eq!(
        me["permissions"],
        json!(["audit", "read", "write"]),
        "the union"
    );

    // A permission change reaches the holder at once.
    expect(
        patch(
            host,
            "/v1/roles/mygroup:write",
            &json!({"permissions": ["read"]}),
            ada,
        )?,
        200,
    )?;
    assert_eq!(
        whoami(host, &w.carol)?["permissions"],
        json!(["audit", "read"])
    );
    // So does a rename.
    expect(
        patch(
            host,
            "/v1/roles/auditor",
            &json!({"name": "inspector"}),
            ada,
        )?,
        200,
    )?;
    assert_eq!(
        whoami(host, &w.carol)?["roles"],
        json!(["inspector", "mygroup:write"])
    );
    // A revoked grant is gone on the next request.
    expect(
        delete(
            host,
            &format!("/v1/roles/inspector/members/{}", w.carol_id),
            ada,
        )?,
        204,
    )?;
    let me = whoami(host, &w.carol)?;
    assert_eq!(
        (me["roles"].clone(), me["permissions"].clone()),
        (json!(["mygroup:write"]), json!(["read"]))
    );
    // A deleted role is gone for its holders on the next request.
    expect(delete(host, "/v1/roles/mygroup:write", ada)?, 204)?;
    let me = whoami(host, &w.carol)?;
    assert_eq!(
        (me["roles"].clone(), me["permissions"].clone()),
        (json!([]), json!([]))
    );
    Ok(())
}

#[test]
fn resource_grants_and_owners_are_recorded_per_org() -> Result<()> {
    let w = world()?;
    let (host, ada) = (&w.host, &w.ada);
    create_role(host, ada, "mygroup:write", &["read", "write"])?;
    create_role(host, ada, "indexer", &["authz:resources"])?;
    let path = "/v1/authz/grants/datasources/datasources/mygroup:write";

    let changed = expect(
        post(
            host,
            path,
            &json!({"grant": ["ds_2", "ds_1", "ds_3"]}),
            Some(ada),
        )?,
        200,
    )?;
    assert_eq!(
        (changed["granted"].clone(), changed["revoked"].clone()),
        (json!(3), json!(0))
    );
    let changed = expect(
        post(
            host,
            path,
            &json!({"grant": ["ds_1", "ds_4"], "revoke": ["ds_3", "ds_9"]}),
            Some(ada),
        )?,
        200,
    )?;
    assert_eq!(
        (changed["granted"].clone(), changed["revoked"].clone()),
        (json!(1), json!(1))
    );
    // The record: (service, collection, role) -> ids, in order, paginated.
    let record = expect(get(host, &format!("{path}?limit=2"), &w.bob)?, 200)?;
    assert_eq!(record["role"], "mygroup:write");
    assert_eq!(names(&record, "id"), ["ds_1", "ds_2"]);
    let cursor = record["next_cursor"].as_str().context("more ids")?;
    let rest = expect(
        get(host, &format!("{path}?limit=2&cursor={cursor}"), &w.bob)?,
        200,
    )?;
    assert_eq!(names(&rest, "id"), ["ds_4"]);
    post(
        host,
        "/v1/authz/grants/reports/reports/mygroup:write",
        &json!({"grant": ["r1"]}),
        Some(ada),
    )?;
    let records = expect(get(host, "/v1/authz/grants", &w.bob)?, 200)?;
    assert_eq!(
        records["items"],
        json!([
            {"service": "datasources", "collection": "datasources", "role": "mygroup:write", "count": 3},
            {"service": "reports", "collection": "reports", "role": "mygroup:write", "count": 1}
        ])
    );
    let filtered = expect(get(host, "/v1/authz/grants?service=reports", &w.bob)?, 200)?;
    assert_eq!(names(&filtered, "service"), ["reports"]);

    // Owners: several per resource; each must be this org's.
    let resource = "/v1/authz/resources/datasources/datasources/ds_1";
    expect(
        put(
            host,
            &format!("{resource}/owners/user/{}", w.carol_id),
            None,
            ada,
        )?,
        204,
    )?;
    expect(
        put(
            host,
            &format!("{resource}/owners/team/{}", w.eng),
            None,
            ada,
        )?,
        204,
    )?;
    expect(
        put(
            host,
            &format!("{resource}/owners/org/{}", w.org_id),
            None,
            ada,
        )?,
        204,
    )?;
    expect(
        put(
            host,
            &format!("{resource}/owners/org/{}", w.org_id),
            None,
            ada,
        )?,
        204,
    )?;
    let seen = expect(get(host, resource, &w.dave)?, 200)?;
    assert_eq!(seen["owners"].as_array().map(Vec::len), Some(3));
    assert_eq!(seen["grants"][0]["role"], "mygroup:write");
    expect(
        delete(host, &format!("{resource}/owners/team/{}", w.eng), ada)?,
        204,
    )?;
    assert_eq!(
        delete(host, &format!("{resource}/owners/team/{}", w.eng), ada)?.status,
        404
    );
    assert_eq!(
        get(
            host,
            "/v1/authz/resources/datasources/datasources/ds_404",
            ada
        )?
        .status,
        404
    );
    for (kind, id) in [
        ("user", "usr_nobody"),
        ("team", "team_nobody"),
        ("org", "org_nobody"),
    ] {
        let reply = put(host, &format!("{resource}/owners/{kind}/{id}"), None, ada)?;
        assert_eq!(reply.status, 404, "{kind}");
    }
    let bad_kind = put(host, &format!("{resource}/owners/robot/x"), None, ada)?;
    assert_eq!(
        (bad_kind.status, pointers(&bad_kind)?),
        (422, vec!["/owner_type".to_string()])
    );

    // Members may not change grants or owners; holders of authz:resources may.
    let refused = post(host, path, &json!({"grant": ["ds_5"]}), Some(&w.bob))?;
    assert_eq!(refused.status, 403);
    assert_eq!(
        put(
            host,
            &format!("{resource}/owners/user/{}", w.bob_id),
            None,
            &w.bob
        )?
        .status,
        403
    );
    expect(grant_role(host, ada, "indexer", &w.bob_id)?, 204)?;
    expect(
        post(host, path, &json!({"grant": ["ds_5"]}), Some(&w.bob))?,
        200,
    )?;
    expect(
        put(
            host,
            &format!("{resource}/owners/user/{}", w.bob_id),
            None,
            &w.bob,
        )?,
        204,
    )?;

    // Validation.
    let bad = post(
        host,
        path,
        &json!({"grant": ["", "a/b"], "revoke": ["x"]}),
        Some(ada),
    )?;
    assert_eq!(
        (bad.status, pointers(&bad)?),
        (422, vec!["/grant/0".to_string(), "/grant/1".to_string()])
    );
    let empty = post(host, path, &json!({}), Some(ada))?;
    assert_eq!(empty.status, 422);
    let both = post(
        host,
        path,
        &json!({"grant": ["x"], "revoke": ["x"]}),
        Some(ada),
    )?;
    assert_eq!(pointers(&both)?, ["/revoke/0"]);
    let too_many: Vec<String> = (0..501).map(|i| format!("d{i}")).collect();
    let many = post(host, path, &json!({"grant": too_many}), Some(ada))?;
    assert_eq!(pointers(&many)?, ["/grant"]);
    let bad_path = post(
        host,
        "/v1/authz/grants/Bad/datasources/mygroup:write",
        &json!({"grant": ["x"]}),
        Some(ada),
    )?;
    assert_eq!(
        (bad_path.status, pointers(&bad_path)?),
        (422, vec!["/service".to_string()])
    );
    let no_role = post(
        host,
        "/v1/authz/grants/datasources/datasources/ghost",
        &json!({"grant": ["x"]}),
        Some(ada),
    )?;
    assert_eq!(no_role.status, 404);
    // Deleting the role takes its resource grants with it.
    expect(delete(host, "/v1/roles/mygroup:write", ada)?, 204)?;
    let records = expect(get(host, "/v1/authz/grants", ada)?, 200)?;
    assert_eq!(records["items"], json!([]));
    Ok(())
}

#[test]
fn policies_are_versioned_documents_admins_write() -> Result<()> {
    let w = world()?;
    let (host, ada) = (&w.host, &w.ada);
    let document = json!({"rules": {"read": {"owner": {"user": true}}}});
    let v1 = expect(
        put(
            host,
            "/v1/authz/policies/datasources_filter",
            Some(&json!({"document": document})),
            ada,
        )?,
        201,
    )?;
    assert_eq!(v1["version"], 1);
    assert!(
        v1["created_by"]
            .as_str()
            .is_some_and(|u| u.starts_with("usr_"))
    );
    // The same document again is no new version.
    let same = expect(
        put(
            host,
            "/v1/authz/policies/datasources_filter",
            Some(&json!({"document": document})),
            ada,
        )?,
        200,
    )?;
    assert_eq!(same["version"], 1);
    let changed = json!({"description": "owners and grants", "rules": {"read": {"owner": {"user": true}, "grant_permission": "read"}}});
    let v2 = expect(
        put(
            host,
            "/v1/authz/policies/datasources_filter",
            Some(&json!({"document": changed})),
            ada,
        )?,
        201,
    )?;
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["document"], changed);
    // Members read the one in force, any version, and the history.
    assert_eq!(
        expect(
            get(host, "/v1/authz/policies/datasources_filter", &w.bob)?,
            200
        )?["version"],
        2
    );
    let old = expect(
        get(
            host,
            "/v1/authz/policies/datasources_filter?version=1",
            &w.bob,
        )?,
        200,
    )?;
    assert_eq!(old["document"], document);
    let history = expect(
        get(
            host,
            "/v1/authz/policies/datasources_filter/versions?limit=1",
            &w.bob,
        )?,
        200,
    )?;
    assert_eq!(history["items"][0]["version"], 2);
    let cursor = history["next_cursor"].as_str().context("older versions")?;
    let older = expect(
        get(
            host,
            &format!("/v1/authz/policies/datasources_filter/versions?limit=1&cursor={cursor}"),
            &w.bob,
        )?,
        200,
    )?;
    assert_eq!(
        (
            older["items"][0]["version"].clone(),
            older["next_cursor"].clone()
        ),
        (json!(1), json!(null))
    );
    expect(
        put(
            host,
            "/v1/authz/policies/reports",
            Some(&json!({"document": document})),
            ada,
        )?,
        201,
    )?;
    let list = expect(get(host, "/v1/authz/policies", &w.bob)?, 200)?;
    assert_eq!(names(&list, "name"), ["datasources_filter", "reports"]);
    assert_eq!(list["items"][0]["version"], 2);

    // Members may not write; documents are validated with pointers.
    assert_eq!(
        put(
            host,
            "/v1/authz/policies/mine",
            Some(&json!({"document": document})),
            &w.bob
        )?
        .status,
        403
    );
    assert_eq!(
        delete(host, "/v1/authz/policies/reports", &w.bob)?.status,
        403
    );
    let bad = put(
        host,
        "/v1/authz/policies/broken",
        Some(&json!({"document": {"rules": {"Read": {}, "write": {"grant_permission": "NO"}}}})),
        ada,
    )?;
    assert_eq!(bad.status, 422);
    assert_eq!(
        pointers(&bad)?,
        [
            "/document/rules/Read",
            "/document/rules/write/grant_permission"
        ]
    );
    let shape = put(
        host,
        "/v1/authz/policies/broken",
        Some(&json!({"document": {"rules": {"read": {"owner": {"team": "everyone"}}}}})),
        ada,
    )?;
    assert_eq!(
        (shape.status, pointers(&shape)?),
        (422, vec!["/document/rules/read/owner/team".to_string()])
    );
    let bad_name = put(
        host,
        "/v1/authz/policies/Bad%20Name",
        Some(&json!({"document": document})),
        ada,
    )?;
    assert_eq!(
        (bad_name.status, pointers(&bad_name)?),
        (422, vec!["/name".to_string()])
    );
    assert_eq!(
        get(host, "/v1/authz/policies/datasources_filter?version=0", ada)?.status,
        400
    );
    assert_eq!(
        get(host, "/v1/authz/policies/datasources_filter?version=9", ada)?.status,
        404
    );
    expect(delete(host, "/v1/authz/policies/reports", ada)?, 204)?;
    assert_eq!(get(host, "/v1/authz/policies/reports", ada)?.status, 404);
    assert_eq!(
        get(host, "/v1/authz/policies/reports/versions", ada)?.status,
        404
    );
    Ok(())
}

/// Roles, grants, owners and policies the check and filter tests share.
///
/// - `ds_1` is owned by Carol, `ds_2` by team Engineering (above Carol's
///   Backend), `ds_3` by the org; `ds_4`, `ds_5` are granted to
///   `mygroup:write` (Carol's), `ds_6` to `mygroup:admin`, `ds_7` to
///   `mygroup:write` in another collection; `ds_8` to nobody.
/// - `owners_only:read`: owning user and teams with sub-teams, no grants.
/// - `grants_only:read`: grants whose role has `read`.
/// - `datasources_filter:read`: both, and org ownership for admins.
fn share(w: &World) -> Result<()> {
    let (host, ada) = (&w.host, &w.ada);
    create_role(
        host,
        ada,
        "mygroup:admin",
        &["read", "write", "delete", "add-user", "remove-user"],
    )?;
    create_role(host, ada, "mygroup:write", &["read", "write"])?;
    expect(grant_role(host, ada, "mygroup:write", &w.carol_id)?, 204)?;
    let grants = "/v1/authz/grants/datasources/datasources";
    expect(
        post(
            host,
            &format!("{grants}/mygroup:write"),
            &json!({"grant": ["ds_4", "ds_5"]}),
            Some(ada),
        )?,
        200,
    )?;
    expect(
        post(
            host,
            &format!("{grants}/mygroup:admin"),
            &json!({"grant": ["ds_6"]}),
            Some(ada),
        )?,
        200,
    )?;
    expect(
        post(
            host,
            "/v1/authz/grants/datasources/archive/mygroup:write",
            &json!({"grant": ["ds_7"]}),
            Some(ada),
        )?,
        200,
    )?;
    let owners = "/v1/authz/resources/datasources/datasources";
    expect(
        put(
            host,
            &format!("{owners}/ds_1/owners/user/{}", w.carol_id),
            None,
            ada,
        )?,
        204,
    )?;
    expect(
        put(
            host,
            &format!("{owners}/ds_2/owners/team/{}", w.eng),
            None,
            ada,
        )?,
        204,
    )?;
    expect(
        put(
            host,
            &format!("{owners}/ds_3/owners/org/{}", w.org_id),
            None,
            ada,
        )?,
        204,
    )?;
    expect(
        put(
            host,
            &format!("{owners}/ds_8/owners/team/{}", w.sales),
            None,
            ada,
        )?,
        204,
    )?;
    let pin = json!({"service": "datasources", "collection": "datasources"});
    for (name, rule) in [
        (
            "owners_only",
            json!({"owner": {"user": true, "team": "with_subteams"}, "grant_permission": null}),
        ),
        ("grants_only", json!({"grant_permission": "read"})),
        (
            "datasources_filter",
            json!({"owner": {"user": true, "team": "with_subteams", "org": "admins"}}),
        ),
    ] {
        let document = json!({"applies_to": pin, "rules": {"read": rule}});
        expect(
            put(
                host,
                &format!("/v1/authz/policies/{name}"),
                Some(&json!({"document": document})),
                ada,
            )?,
            201,
        )?;
    }
    expect(
        put(
            host,
            "/v1/authz/policies/generic",
            Some(&json!({"document": {"rules": {"*": {"owner": {"user": true}}}}})),
            ada,
        )?,
        201,
    )?;
    Ok(())
}

fn check(host: &TestHost, token: &str, body: Value) -> Result<Value> {
    expect(post(host, "/v1/authz/check", &body, Some(token))?, 200)
}

fn verdict(host: &TestHost, token: &str, policy: &str, id: &str) -> Result<(bool, String)> {
    let answer = check(
        host,
        token,
        json!({"policy": policy, "resource": {"id": id}}),
    )?;
    Ok((
        answer["allowed"].as_bool().context("allowed")?,
        answer["reason"].as_str().context("reason")?.to_string(),
    ))
}

#[test]
fn checks_allow_and_deny_with_reasons() -> Result<()> {
    let w = world()?;
    share(&w)?;
    let (host, carol) = (&w.host, &w.carol);
    let cases = [
        ("datasources_filter:read", "ds_1", true, "owner_user"),
        ("datasources_filter:read", "ds_2", true, "owner_team"),
        ("datasources_filter:read", "ds_3", false, "not_granted"),
        ("datasources_filter:read", "ds_4", true, "role_grant"),
        ("datasources_filter:read", "ds_6", false, "not_granted"),
        ("datasources_filter:read", "ds_8", false, "not_granted"),
        ("datasources_filter:write", "ds_1", false, "no_rule"),
        ("owners_only:read", "ds_4", false, "not_granted"),
        ("grants_only:read", "ds_1", false, "not_granted"),
        ("grants_only:read", "ds_5", true, "role_grant"),
    ];
    for (policy, id, allowed, reason) in cases {
        assert_eq!(
            verdict(host, carol, policy, id)?,
            (allowed, reason.to_string()),
            "{policy} {id}"
        );
    }
    let answer = check(
        host,
        carol,
        json!({"policy": "datasources_filter:read", "resource": {"id": "ds_2"}}),
    )?;
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&w.eng)),
        "{answer}"
    );
    assert_eq!(
        answer["policy"],
        json!({"name": "datasources_filter", "version": 1, "action": "read"})
    );
    assert_eq!(answer["subject"], json!({"type": "user", "id": w.carol_id}));
    assert_eq!(
        answer["resource"],
        json!({"service": "datasources", "collection": "datasources", "id": "ds_2"})
    );
    // A grant in another collection does not reach this one.
    let other = check(
        host,
        carol,
        json!({"policy": "generic:read", "resource": {"service": "datasources", "collection": "datasources", "id": "ds_7"}}),
    )?;
    assert_eq!(other["allowed"], false);
    let there = check(
        host,
        carol,
        json!({"policy": "generic:read", "resource": {"service": "datasources", "collection": "archive", "id": "ds_7"}}),
    )?;
    assert_eq!(
        (there["allowed"].clone(), there["reason"].clone()),
        (json!(true), json!("role_grant"))
    );
    // The org owns ds_3: its admins are in under this policy.
    assert_eq!(
        verdict(host, &w.ada, "datasources_filter:read", "ds_3")?,
        (true, "owner_org".into())
    );

    // Admins, and holders of authz:check, ask for another member; members may not.
    let for_carol = json!({"policy": "datasources_filter:read", "resource": {"id": "ds_1"}, "subject": {"type": "user", "id": w.carol_id}});
    let by_admin = check(host, &w.ada, for_carol.clone())?;
    assert_eq!(
        (
            by_admin["allowed"].clone(),
            by_admin["subject"]["id"].clone()
        ),
        (json!(true), json!(w.carol_id))
    );
    let refused = post(host, "/v1/authz/check", &for_carol, Some(&w.dave))?;
    assert_eq!(
        (refused.status, code(&refused)),
        (403, "forbidden".to_string())
    );
    create_role(host, &w.ada, "backend-service", &["authz:check"])?;
    expect(
        grant_role(host, &w.ada, "backend-service", &w.dave_id)?,
        204,
    )?;
    assert_eq!(
        check(host, &w.dave, for_carol.clone())?["reason"],
        "owner_user"
    );
    // Asking for oneself needs nothing.
    let own = json!({"policy": "datasources_filter:read", "resource": {"id": "ds_1"}, "subject": {"type": "user", "id": w.carol_id}});
    assert_eq!(check(host, carol, own)?["allowed"], true);
    // Someone outside the org is not known here.
    let outsider = signed_in(host, "eve@example.com")?;
    let eve_id = user_id(host, &outsider)?;
    let unknown = post(
        host,
        "/v1/authz/check",
        &json!({"policy": "datasources_filter:read", "resource": {"id": "ds_1"}, "subject": {"type": "user", "id": eve_id}}),
        Some(&w.ada),
    )?;
    assert_eq!(unknown.status, 404);

    // Revoking the role takes its grants away on the next check.
    expect(
        delete(
            host,
            &format!("/v1/roles/mygroup:write/members/{}", w.carol_id),
            &w.ada,
        )?,
        204,
    )?;
    assert_eq!(
        verdict(host, carol, "datasources_filter:read", "ds_4")?,
        (false, "not_granted".into())
    );
    // A new policy version applies at once; an old one can still be named.
    let open = json!({"document": {"applies_to": {"service": "datasources", "collection": "datasources"}, "rules": {"read": {"everything": {"org_admin": true}}}}});
    expect(
        put(
            host,
            "/v1/authz/policies/datasources_filter",
            Some(&open),
            &w.ada,
        )?,
        201,
    )?;
    assert_eq!(
        verdict(host, &w.ada, "datasources_filter:read", "ds_8")?,
        (true, "org_admin".into())
    );
    let pinned = check(
        host,
        carol,
        json!({"policy": "datasources_filter:read", "version": 1, "resource": {"id": "ds_1"}}),
    )?;
    assert_eq!(
        (
            pinned["allowed"].clone(),
            pinned["policy"]["version"].clone()
        ),
        (json!(true), json!(1))
    );

    // Validation.
    let bad = post(
        host,
        "/v1/authz/check",
        &json!({"policy": "no-action", "resource": {"id": "a/b", "service": "Bad"}, "version": 0}),
        Some(carol),
    )?;
    assert_eq!(bad.status, 422);
    assert_eq!(
        pointers(&bad)?,
        ["/policy", "/version", "/resource/service", "/resource/id"]
    );
    let missing = post(
        host,
        "/v1/authz/check",
        &json!({"policy": "generic:read", "resource": {"id": "x"}}),
        Some(carol),
    )?;
    assert_eq!(
        pointers(&missing)?,
        ["/resource/service", "/resource/collection"]
    );
    let mismatch = post(
        host,
        "/v1/authz/check",
        &json!({"policy": "owners_only:read", "resource": {"collection": "archive", "id": "x"}}),
        Some(carol),
    )?;
    assert_eq!(
        (
            mismatch.status,
            mismatch.json()?["errors"][0]["code"].clone()
        ),
        (422, json!("policy_mismatch"))
    );
    let key_subject = post(
        host,
        "/v1/authz/check",
        &json!({"policy": "generic:read", "resource": {"id": "x"}, "subject": {"type": "api_key", "id": "key_1"}}),
        Some(&w.ada),
    )?;
    assert_eq!(
        (key_subject.status, pointers(&key_subject)?),
        (422, vec!["/subject/type".to_string()])
    );
    let no_policy = post(
        host,
        "/v1/authz/check",
        &json!({"policy": "ghost:read", "resource": {"id": "x"}}),
        Some(carol),
    )?;
    assert_eq!(no_policy.status, 404);
    let get_check = get(host, "/v1/authz/check", carol)?;
    assert_eq!(
        (get_check.status, get_check.header("allow")),
        (405, Some("POST"))
    );
    Ok(())
}

/// A service's own table, in a real SQLite database: the rows a filter runs on.
fn datasources_table(carol_id: &str, backend: &str) -> Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open_in_memory()?;
    db.execute_batch(
        "CREATE TABLE datasources (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_by TEXT, team_id TEXT)",
    )?;
    for i in 1..=8 {
        db.execute(
            "INSERT INTO datasources (id, name, created_by, team_id) VALUES (?1, ?2, 'usr_someone', NULL)",
            [format!("ds_{i}"), format!("Datasource {i}")],
        )?;
    }
    // Rows whose own columns say who owns them, with no edge in Gatehouse.
    db.execute(
        "INSERT INTO datasources (id, name, created_by, team_id) VALUES ('ds_9', 'Carol''s own', ?1, NULL)",
        [carol_id],
    )?;
    db.execute(
        "INSERT INTO datasources (id, name, created_by, team_id) VALUES ('ds_10', 'Backend''s', 'usr_x', ?1)",
        [backend],
    )?;
    Ok(db)
}

/// The ids the SQL rendering selects from the table.
fn rows_selected(db: &rusqlite::Connection, answer: &Value) -> Result<Vec<String>> {
    let fragment = answer["sql"]["where"].as_str().context("where")?;
    let params: Vec<String> = answer["sql"]["params"]
        .as_array()
        .context("params")?
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    let mut statement = db.prepare(&format!(
        "SELECT id FROM datasources WHERE {fragment} ORDER BY id"
    ))?;
    let ids = statement
        .query_map(rusqlite::params_from_iter(params.iter()), |row| {
            row.get::<_, String>(0)
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(ids)
}

fn filter(host: &TestHost, token: &str, body: Value) -> Result<Value> {
    expect(post(host, "/v1/authz/filter", &body, Some(token))?, 200)
}

fn sorted(mut ids: Vec<&str>) -> Vec<String> {
    ids.sort();
    ids.into_iter().map(str::to_string).collect()
}

#[test]
fn filters_select_exactly_the_rows_the_subject_reaches() -> Result<()> {
    let w = world()?;
    share(&w)?;
    let (host, carol) = (&w.host, &w.carol);
    let db = datasources_table(&w.carol_id, &w.backend)?;

    // Ownership only: Carol's own ds_1, and ds_2 of Engineering above her Backend.
    let owners = filter(host, carol, json!({"policy": "owners_only:read"}))?;
    assert_eq!(
        owners["filter"],
        json!({"op": "in", "field": "id", "values": ["ds_1", "ds_2"]})
    );
    assert_eq!(
        owners["sql"],
        json!({"where": "\"id\" IN (?, ?)", "params": ["ds_1", "ds_2"]})
    );
    assert_eq!(owners["mongo"], json!({"id": {"$in": ["ds_1", "ds_2"]}}));
    assert_eq!(rows_selected(&db, &owners)?, sorted(vec!["ds_1", "ds_2"]));

    // Group grants only: what mygroup:write (Carol's) was granted here, not
    // mygroup:admin's ds_6 nor the archive collection's ds_7.
    let grants = filter(host, carol, json!({"policy": "grants_only:read"}))?;
    assert_eq!(grants["mongo"], json!({"id": {"$in": ["ds_4", "ds_5"]}}));
    assert_eq!(rows_selected(&db, &grants)?, sorted(vec!["ds_4", "ds_5"]));

    // Both combined, with the table's own owner columns mapped: ds_9
    // (created_by Carol) and ds_10 (Backend's) join by their columns.
    let both = filter(
        host,
        carol,
        json!({
            "policy": "datasources_filter:read",
            "fields": {"id": "id", "owner_user": "created_by", "owner_team": "team_id"},
            "sql": {"placeholder": "?N", "first": 1}
        }),
    )?;
    assert_eq!(
        both["mongo"],
        json!({"$or": [
            {"id": {"$in": ["ds_1", "ds_2", "ds_4", "ds_5"]}},
            {"created_by": {"$eq": w.carol_id}},
            {"team_id": {"$in": sorted(vec![&w.backend, &w.eng])}}
        ]})
    );
    assert_eq!(
        both["sql"]["where"],
        "(\"id\" IN (?1, ?2, ?3, ?4) OR \"created_by\" = ?5 OR \"team_id\" IN (?6, ?7))"
    );
    assert_eq!(both["filter"]["op"], "or");
    assert_eq!(
        rows_selected(&db, &both)?,
        sorted(vec!["ds_1", "ds_10", "ds_2", "ds_4", "ds_5", "ds_9"])
    );
    // Without the columns, the same policy reaches the ids alone.
    let ids_only = filter(host, carol, json!({"policy": "datasources_filter:read"}))?;
    assert_eq!(
        rows_selected(&db, &ids_only)?,
        sorted(vec!["ds_1", "ds_2", "ds_4", "ds_5"])
    );

    // Nobody's rows for Bob (no teams, roles or ownership): nothing matches.
    let none = filter(host, &w.bob, json!({"policy": "datasources_filter:read"}))?;
    assert_eq!(none["filter"], json!({"op": "false"}));
    assert_eq!(none["sql"], json!({"where": "1 = 0", "params": []}));
    assert_eq!(none["mongo"], json!({"id": {"$in": []}}));
    assert!(rows_selected(&db, &none)?.is_empty());
    // An admin asking for Carol gets Carol's rows; the admin's own reach the org's ds_3.
    let for_carol = filter(
        host,
        &w.ada,
        json!({"policy": "owners_only:read", "subject": {"type": "user", "id": w.carol_id}}),
    )?;
    assert_eq!(
        rows_selected(&db, &for_carol)?,
        sorted(vec!["ds_1", "ds_2"])
    );
    let admins = filter(host, &w.ada, json!({"policy": "datasources_filter:read"}))?;
    assert_eq!(rows_selected(&db, &admins)?, ["ds_3"]);
    assert_eq!(
        post(
            host,
            "/v1/authz/filter",
            &json!({"policy": "owners_only:read", "subject": {"type": "user", "id": w.carol_id}}),
            Some(&w.dave)
        )?
        .status,
        403
    );
    // A policy opening everything renders as match-all.
    let open = json!({"document": {"rules": {"read": {"everything": {"org_admin": true}}}}});
    expect(
        put(host, "/v1/authz/policies/open", Some(&open), &w.ada)?,
        201,
    )?;
    let all = filter(
        host,
        &w.ada,
        json!({"policy": "open:read", "service": "datasources", "collection": "datasources", "sql": {"placeholder": "$N", "first": 3}}),
    )?;
    assert_eq!(
        (
            all["filter"].clone(),
            all["mongo"].clone(),
            all["sql"]["where"].clone()
        ),
        (json!({"op": "true"}), json!({}), json!("1 = 1"))
    );
    assert_eq!(rows_selected(&db, &all)?.len(), 10);
    // Numbered Postgres-style parameters start where the caller's stop.
    let pg = filter(
        host,
        carol,
        json!({"policy": "owners_only:read", "sql": {"placeholder": "$N", "first": 3}}),
    )?;
    assert_eq!(pg["sql"]["where"], "\"id\" IN ($3, $4)");

    // Revoking Carol's role drops its grants from her next filter.
    expect(
        delete(
            host,
            &format!("/v1/roles/mygroup:write/members/{}", w.carol_id),
            &w.ada,
        )?,
        204,
    )?;
    let after = filter(host, carol, json!({"policy": "grants_only:read"}))?;
    assert!(rows_selected(&db, &after)?.is_empty());

    // Field names are identifiers, never SQL.
    let hostile = post(
        host,
        "/v1/authz/filter",
        &json!({"policy": "owners_only:read", "fields": {"id": "id) OR 1=1 --", "owner_team": "$where"}}),
        Some(carol),
    )?;
    assert_eq!(
        (hostile.status, pointers(&hostile)?),
        (422, vec!["/fields/id".to_string()])
    );
    let team = post(
        host,
        "/v1/authz/filter",
        &json!({"policy": "owners_only:read", "fields": {"owner_team": "team id"}}),
        Some(carol),
    )?;
    assert_eq!(pointers(&team)?, ["/fields/owner_team"]);
    let style = post(
        host,
        "/v1/authz/filter",
        &json!({"policy": "owners_only:read", "sql": {"placeholder": ":name", "first": 0}}),
        Some(carol),
    )?;
    assert_eq!(pointers(&style)?, ["/sql/placeholder", "/sql/first"]);
    let missing = post(
        host,
        "/v1/authz/filter",
        &json!({"policy": "generic:read"}),
        Some(carol),
    )?;
    assert_eq!(pointers(&missing)?, ["/service", "/collection"]);
    Ok(())
}

#[test]
fn access_routes_require_credentials_and_an_org() -> Result<()> {
    let host = start_app()?;
    let routes = [
        ("GET", "/v1/roles"),
        ("POST", "/v1/roles"),
        ("GET", "/v1/roles/auditor"),
        ("PATCH", "/v1/roles/auditor"),
        ("DELETE", "/v1/roles/auditor"),
        ("POST", "/v1/roles/auditor/$copy"),
        ("GET", "/v1/roles/auditor/members"),
        ("PUT", "/v1/roles/auditor/members/usr_1"),
        ("DELETE", "/v1/roles/auditor/members/usr_1"),
        ("GET", "/v1/authz/grants"),
        ("GET", "/v1/authz/grants/s/c/auditor"),
        ("POST", "/v1/authz/grants/s/c/auditor"),
        ("GET", "/v1/authz/resources/s/c/r1"),
        ("PUT", "/v1/authz/resources/s/c/r1/owners/user/usr_1"),
        ("DELETE", "/v1/authz/resources/s/c/r1/owners/user/usr_1"),
        ("GET", "/v1/authz/policies"),
        ("GET", "/v1/authz/policies/p"),
        ("PUT", "/v1/authz/policies/p"),
        ("DELETE", "/v1/authz/policies/p"),
        ("GET", "/v1/authz/policies/p/versions"),
        ("POST", "/v1/authz/check"),
        ("POST", "/v1/authz/filter"),
    ];
    for (method, path) in routes {
        let none = call(&host, method, path, Some(&json!({})), None, &[])?;
        assert_eq!(
            (none.status, none.header("www-authenticate")),
            (401, Some("Bearer")),
            "{method} {path}"
        );
        for token in [
            "ghs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "not-a-token",
        ] {
            let refused = call(&host, method, path, Some(&json!({})), Some(token), &[])?;
            assert_eq!(refused.status, 401, "{method} {path} with {token}");
        }
    }
    // Signed in but in no org (or in two, without X-Org): 403.
    let loner = signed_in(&host, "loner@example.com")?;
    for (method, path) in routes {
        let reply = call(&host, method, path, Some(&json!({})), Some(&loner), &[])?;
        assert_eq!(
            (reply.status, code(&reply)),
            (403, "forbidden".to_string()),
            "{method} {path}"
        );
    }
    create_org(&host, &loner, "one")?;
    create_org(&host, &loner, "two")?;
    assert_eq!(get(&host, "/v1/roles", &loner)?.status, 403);
    let chosen = call(
        &host,
        "GET",
        "/v1/roles",
        None,
        Some(&loner),
        &[("x-org", "two")],
    )?;
    assert_eq!(chosen.status, 200);
    Ok(())
}

#[test]
fn another_orgs_roles_resources_and_policies_answer_404() -> Result<()> {
    let w = world()?;
    share(&w)?;
    let host = &w.host;
    // Mallory runs her own org, with a role of the same shape.
    let mallory = signed_in(host, "mallory@example.com")?;
    create_org(host, &mallory, "alpha")?;
    create_role(host, &mallory, "mine", &["read"])?;

    // X-Org naming acme is refused like an org that does not exist.
    for (method, path) in [
        ("GET", "/v1/roles"),
        ("GET", "/v1/roles/mygroup:write"),
        ("POST", "/v1/authz/check"),
    ] {
        let body = json!({"policy": "datasources_filter:read", "resource": {"id": "ds_1"}});
        for org in ["acme", w.org_id.as_str()] {
            let reply = call(
                host,
                method,
                path,
                Some(&body),
                Some(&mallory),
                &[("x-org", org)],
            )?;
            assert_eq!(
                (reply.status, code(&reply)),
                (404, "not_found".to_string()),
                "{method} {path} as {org}"
            );
        }
    }
    // Acme's names and ids inside Mallory's own org: as absent as ones that never existed.
    let owner = format!(
        "/v1/authz/resources/datasources/datasources/ds_1/owners/user/{}",
        w.carol_id
    );
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/roles/mygroup:write".into(), None),
        (
            "PATCH",
            "/v1/roles/mygroup:write".into(),
            Some(json!({"permissions": []})),
        ),
        ("DELETE", "/v1/roles/mygroup:write".into(), None),
        (
            "POST",
            "/v1/roles/mygroup:write/$copy".into(),
            Some(json!({"name": "stolen"})),
        ),
        ("GET", "/v1/roles/mygroup:write/members".into(), None),
        (
            "PUT",
            format!("/v1/roles/mine/members/{}", w.carol_id),
            None,
        ),
        (
            "DELETE",
            format!("/v1/roles/mine/members/{}", w.carol_id),
            None,
        ),
        (
            "PUT",
            format!("/v1/roles/mygroup:write/members/{}", w.carol_id),
            None,
        ),
        (
            "GET",
            "/v1/authz/grants/datasources/datasources/mygroup:write".into(),
            None,
        ),
        (
            "POST",
            "/v1/authz/grants/datasources/datasources/mygroup:write".into(),
            Some(json!({"grant": ["x"]})),
        ),
        (
            "GET",
            "/v1/authz/resources/datasources/datasources/ds_1".into(),
            None,
        ),
        ("DELETE", owner.clone(), None),
        ("PUT", owner, None),
        (
            "PUT",
            format!(
                "/v1/authz/resources/datasources/datasources/ds_1/owners/team/{}",
                w.eng
            ),
            None,
        ),
        (
            "PUT",
            format!(
                "/v1/authz/resources/datasources/datasources/ds_1/owners/org/{}",
                w.org_id
            ),
            None,
        ),
        ("GET", "/v1/authz/policies/datasources_filter".into(), None),
        (
            "GET",
            "/v1/authz/policies/datasources_filter/versions".into(),
            None,
        ),
        (
            "DELETE",
            "/v1/authz/policies/datasources_filter".into(),
            None,
        ),
        (
            "POST",
            "/v1/authz/check".into(),
            Some(json!({"policy": "datasources_filter:read", "resource": {"id": "ds_1"}})),
        ),
        (
            "POST",
            "/v1/authz/filter".into(),
            Some(json!({"policy": "datasources_filter:read"})),
        ),
        (
            "POST",
            "/v1/authz/check".into(),
            Some(
                json!({"policy": "mine:read", "resource": {"service": "s", "collection": "c", "id": "ds_1"}, "subject": {"type": "user", "id": w.carol_id}}),
            ),
        ),
    ];
    for (method, path, body) in cases {
        let reply = call(host, method, &path, body.as_ref(), Some(&mallory), &[])?;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.text());
    }
    // Mallory's listings show only her org's rows.
    assert_eq!(
        names(&expect(get(host, "/v1/roles", &mallory)?, 200)?, "name"),
        ["mine"]
    );
    assert_eq!(
        expect(get(host, "/v1/authz/grants", &mallory)?, 200)?["items"],
        json!([])
    );
    assert_eq!(
        expect(get(host, "/v1/authz/policies", &mallory)?, 200)?["items"],
        json!([])
    );
    // Acme is untouched.
    let role = expect(get(host, "/v1/roles/mygroup:write", &w.ada)?, 200)?;
    assert_eq!(role["permissions"], json!(["read", "write"]));
    assert_eq!(
        verdict(host, &w.carol, "datasources_filter:read", "ds_1")?,
        (true, "owner_user".to_string())
    );
    Ok(())
}

#[test]
fn an_api_key_asks_with_its_roles_and_loses_them_with_the_role() -> Result<()> {
    let w = world()?;
    share(&w)?;
    let (host, ada) = (&w.host, &w.ada);
    create_role(host, ada, "backend-service", &["authz:check"])?;
    let created = expect(
        post(
            host,
            "/v1/keys",
            &json!({"name": "datasources-api", "roles": ["backend-service", "mygroup:write"]}),
            Some(ada),
        )?,
        201,
    )?;
    let key = created["key"].as_str().context("key")?.to_string();
    let key_id = created["id"].as_str().context("key id")?.to_string();

    // The service asks for one of its users, as authz:check allows.
    let for_carol = json!({"policy": "datasources_filter:read", "resource": {"id": "ds_2"}, "subject": {"type": "user", "id": w.carol_id}});
    let answer = check(host, &key, for_carol.clone())?;
    assert_eq!(
        (answer["allowed"].clone(), answer["reason"].clone()),
        (json!(true), json!("owner_team"))
    );
    // For itself, the key reaches what its roles were granted.
    let own = check(
        host,
        &key,
        json!({"policy": "grants_only:read", "resource": {"id": "ds_4"}}),
    )?;
    assert_eq!(own["subject"], json!({"type": "api_key", "id": key_id}));
    assert_eq!(
        (own["allowed"].clone(), own["reason"].clone()),
        (json!(true), json!("role_grant"))
    );
    let rows = filter(host, &key, json!({"policy": "grants_only:read"}))?;
    assert_eq!(rows["mongo"], json!({"id": {"$in": ["ds_4", "ds_5"]}}));
    // The holders listing shows the key next to members.
    let holders = expect(get(host, "/v1/roles/mygroup:write/members", ada)?, 200)?;
    assert_eq!(names(&holders, "subject_type"), ["api_key", "user"]);
    // Keys are not admins: they manage no roles.
    assert_eq!(
        post(host, "/v1/roles", &json!({"name": "x"}), Some(&key))?.status,
        403
    );

    // Deleting the role reaches the key's cached verification at once.
    expect(delete(host, "/v1/roles/backend-service", ada)?, 204)?;
    let refused = post(host, "/v1/authz/check", &for_carol, Some(&key))?;
    assert_eq!(
        (refused.status, code(&refused)),
        (403, "forbidden".to_string())
    );
    // So does a permission change of a role it still holds.
    expect(
        patch(
            host,
            "/v1/roles/mygroup:write",
            &json!({"permissions": ["write"]}),
            ada,
        )?,
        200,
    )?;
    let own = check(
        host,
        &key,
        json!({"policy": "grants_only:read", "resource": {"id": "ds_4"}}),
    )?;
    assert_eq!(own["allowed"], false);
    Ok(())
}

#[test]
fn a_keys_group_management_ends_when_its_owner_loses_the_group_role() -> Result<()> {
    let w = world()?;
    let (host, ada) = (&w.host, &w.ada);
    create_role(host, ada, "mygroup:admin", &["add-user", "remove-user"])?;
    create_role(host, ada, "mygroup:write", &["write"])?;
    // Bob manages the group and gives his key the same role.
    expect(grant_role(host, ada, "mygroup:admin", &w.bob_id)?, 204)?;
    let created = expect(
        post(
            host,
            "/v1/keys",
            &json!({"name": "bob-bot", "roles": ["mygroup:admin"]}),
            Some(&w.bob),
        )?,
        201,
    )?;
    let key = created["key"].as_str().context("key")?.to_string();
    expect(grant_role(host, &key, "mygroup:write", &w.carol_id)?, 204)?;
    // Bob loses the role: key verification drops it from the key, and so
    // does the manager check, though the key's own grant row remains.
    expect(
        delete(
            host,
            &format!("/v1/roles/mygroup:admin/members/{}", w.bob_id),
            ada,
        )?,
        204,
    )?;
    let verified = expect(
        post(host, "/v1/keys/verify", &json!({"key": key}), Some(ada))?,
        200,
    )?;
    assert_eq!(verified["roles"], json!([]), "{verified}");
    let refused = grant_role(host, &key, "mygroup:write", &w.dave_id)?;
    assert_eq!(
        (refused.status, code(&refused)),
        (403, "forbidden".to_string())
    );
    let refused = delete(
        host,
        &format!("/v1/roles/mygroup:write/members/{}", w.carol_id),
        &key,
    )?;
    assert_eq!(refused.status, 403);
    Ok(())
}
