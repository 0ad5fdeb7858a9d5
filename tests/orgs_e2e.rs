//! Orgs, teams, memberships, invitations and preferences through the built
//! `orgs` component: the org → team tree → invite → accept → role change →
//! leave journey, the tenant boundary (another org's ids answer 404, for
//! reads and writes), credentials, validation, and the principal every
//! component derives from a session.

use anyhow::{Context, Result};
use gatehouse_tests::app::{
    PASSWORD, call, expect, join, mailed_token, post, signed_in, start_app,
};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

fn get(host: &TestHost, path: &str, token: &str) -> Result<Reply> {
    call(host, "GET", path, None, Some(token), &[])
}

fn patch(host: &TestHost, path: &str, body: &Value, token: &str) -> Result<Reply> {
    call(host, "PATCH", path, Some(body), Some(token), &[])
}

fn put(host: &TestHost, path: &str, body: &Value, token: &str) -> Result<Reply> {
    call(host, "PUT", path, Some(body), Some(token), &[])
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

fn create_org(host: &TestHost, token: &str, handle: &str) -> Result<Value> {
    expect(
        post(
            host,
            "/v1/orgs",
            &json!({"name": format!("{handle} Inc."), "handle": handle}),
            Some(token),
        )?,
        201,
    )
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

fn user_id(host: &TestHost, token: &str) -> Result<String> {
    Ok(expect(get(host, "/v1/me", token)?, 200)?["id"]
        .as_str()
        .context("user id")?
        .to_string())
}

fn invite(
    host: &TestHost,
    token: &str,
    org: &str,
    email: &str,
    role: &str,
    teams: &[&str],
) -> Result<Value> {
    expect(
        post(
            host,
            &format!("/v1/orgs/{org}/invitations"),
            &json!({"email": email, "role": role, "team_ids": teams}),
            Some(token),
        )?,
        201,
    )
}

fn invitation_token(host: &TestHost, to: &str) -> Result<String> {
    mailed_token(host, to, "invitation", "ginv_")
}

fn ids(list: &Value, field: &str) -> Vec<String> {
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

#[test]
fn org_team_tree_invite_accept_role_change_leave_journey() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    let ada_id = user_id(&host, &ada)?;

    // The creator becomes the org's admin; the org answers by id and by handle.
    let org = create_org(&host, &ada, "acme")?;
    assert_eq!(
        (org["handle"].clone(), org["role"].clone()),
        (json!("acme"), json!("admin"))
    );
    let org_id = org["id"].as_str().context("org id")?.to_string();
    assert!(org_id.starts_with("org_"));
    assert_eq!(
        expect(get(&host, &format!("/v1/orgs/{org_id}"), &ada)?, 200)?["handle"],
        "acme"
    );
    assert_eq!(
        ids(&expect(get(&host, "/v1/orgs", &ada)?, 200)?, "id"),
        vec![org_id.clone()]
    );
    let changed = expect(
        patch(
            &host,
            "/v1/orgs/acme",
            &json!({"name": "Acme Corporation", "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"}, "contact": {"email": "ops@acme.example"}}),
            &ada,
        )?,
        200,
    )?;
    assert_eq!(changed["name"], "Acme Corporation");
    assert_eq!(changed["address"]["city"], "Springfield");

    // A team tree three levels deep.
    let eng = create_team(&host, &ada, "acme", "Engineering", None)?;
    let backend = create_team(&host, &ada, "acme", "Backend", Some(&eng))?;
    let api = create_team(&host, &ada, "acme", "API", Some(&backend))?;
    let sales = create_team(&host, &ada, "acme", "Sales", None)?;
    let top = expect(get(&host, "/v1/orgs/acme/teams?parent=root", &ada)?, 200)?;
    assert_eq!(ids(&top, "id"), vec![eng.clone(), sales.clone()]);
    let under_eng = expect(
        get(&host, &format!("/v1/orgs/acme/teams?parent={eng}"), &ada)?,
        200,
    )?;
    assert_eq!(ids(&under_eng, "id"), vec![backend.clone()]);
    let all = expect(get(&host, "/v1/orgs/acme/teams?limit=2", &ada)?, 200)?;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(2));
    let cursor = all["next_cursor"].as_str().context("a second page")?;
    let rest = expect(
        get(
            &host,
            &format!("/v1/orgs/acme/teams?limit=2&cursor={cursor}"),
            &ada,
        )?,
        200,
    )?;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(2));
    assert!(rest["next_cursor"].is_null());
    let subtree = expect(
        get(&host, &format!("/v1/orgs/acme/teams/{eng}/subtree"), &ada)?,
        200,
    )?;
    let depths: Vec<(String, i64)> = subtree["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap_or_default().to_string(),
                t["depth"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        depths,
        vec![(eng.clone(), 0), (backend.clone(), 1), (api.clone(), 2)]
    );

    // Cycles are refused; a legal move is not.
    let cycle = patch(
        &host,
        &format!("/v1/orgs/acme/teams/{eng}"),
        &json!({"parent_team_id": api}),
        &ada,
    )?;
    assert_eq!(cycle.status, 422);
    assert_eq!(cycle.json()?["errors"][0]["code"], "cycle");
    let onto_itself = patch(
        &host,
        &format!("/v1/orgs/acme/teams/{eng}"),
        &json!({"parent_team_id": eng}),
        &ada,
    )?;
    assert_eq!(onto_itself.json()?["errors"][0]["code"], "cycle");
    let moved = expect(
        patch(
            &host,
            &format!("/v1/orgs/acme/teams/{api}"),
            &json!({"parent_team_id": sales}),
            &ada,
        )?,
        200,
    )?;
    assert_eq!(moved["parent_team_id"], json!(sales));
    let to_top = expect(
        patch(
            &host,
            &format!("/v1/orgs/acme/teams/{api}"),
            &json!({"parent_team_id": null}),
            &ada,
        )?,
        200,
    )?;
    assert!(to_top["parent_team_id"].is_null());

    // Invite Bob (who has an account) into Backend; he accepts signed in.
    let bob = signed_in(&host, "bob@example.com")?;
    let bob_id = user_id(&host, &bob)?;
    let invitation = invite(
        &host,
        &ada,
        "acme",
        "Bob@Example.com",
        "member",
        &[&backend],
    )?;
    assert_eq!(invitation["status"], "pending");
    assert!(
        invitation.get("token").is_none(),
        "the token only travels by mail"
    );
    let token = invitation_token(&host, "Bob@Example.com")?;
    let accepted = expect(
        post(
            &host,
            "/v1/invitations/accept",
            &json!({"token": token}),
            Some(&bob),
        )?,
        200,
    )?;
    assert_eq!(
        (accepted["org"]["id"].clone(), accepted["role"].clone()),
        (json!(org_id), json!("member"))
    );
    assert_eq!(
        ids(&expect(get(&host, "/v1/orgs", &bob)?, 200)?, "id"),
        vec![org_id.clone()]
    );
    let backend_members = expect(
        get(
            &host,
            &format!("/v1/orgs/acme/teams/{backend}/members"),
            &ada,
        )?,
        200,
    )?;
    assert_eq!(ids(&backend_members, "user_id"), vec![bob_id.clone()]);
    let whoami = expect(get(&host, "/v1/auth/whoami", &bob)?, 200)?;
    assert_eq!(whoami["org_id"], json!(org_id));
    assert_eq!(whoami["org_role"], "member");
    assert_eq!(whoami["team_ids"], json!([backend]));

    // Carol has no account: accepting creates it, verified by the mailed token.
    invite(&host, &ada, "acme", "carol@example.com", "member", &[])?;
    let token = invitation_token(&host, "carol@example.com")?;
    let created = expect(
        post(
            &host,
            "/v1/invitations/accept",
            &json!({"token": token, "password": PASSWORD, "display_name": "Carol"}),
            None,
        )?,
        201,
    )?;
    assert_eq!(created["user"]["email_verified"], true);
    let login = expect(
        post(
            &host,
            "/v1/auth/login",
            &json!({"email": "carol@example.com", "password": PASSWORD}),
            None,
        )?,
        200,
    )?;
    let carol = login["token"].as_str().context("token")?.to_string();
    assert_eq!(
        expect(get(&host, "/v1/orgs/acme", &carol)?, 200)?["role"],
        "member"
    );

    // A member may read but not manage.
    assert_eq!(
        expect(get(&host, "/v1/orgs/acme/members", &carol)?, 200)?["items"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let refused = patch(&host, "/v1/orgs/acme", &json!({"name": "Carol's"}), &carol)?;
    assert_eq!(
        (refused.status, code(&refused)),
        (403, "forbidden".to_string())
    );
    assert_eq!(
        post(
            &host,
            "/v1/orgs/acme/teams",
            &json!({"name": "X"}),
            Some(&carol)
        )?
        .status,
        403
    );

    // Role change: Bob becomes admin and can manage at once.
    let promoted = expect(
        patch(
            &host,
            &format!("/v1/orgs/acme/members/{bob_id}"),
            &json!({"role": "admin"}),
            &ada,
        )?,
        200,
    )?;
    assert_eq!(promoted["role"], "admin");
    expect(
        patch(
            &host,
            "/v1/orgs/acme",
            &json!({"name": "Acme by Bob"}),
            &bob,
        )?,
        200,
    )?;

    // Ada leaves; Bob is then the last admin and can neither leave nor step down.
    expect(
        delete(&host, &format!("/v1/orgs/acme/members/{ada_id}"), &ada)?,
        204,
    )?;
    assert_eq!(get(&host, "/v1/orgs/acme", &ada)?.status, 404);
    let last = delete(&host, &format!("/v1/orgs/acme/members/{bob_id}"), &bob)?;
    assert_eq!((last.status, code(&last)), (409, "conflict".to_string()));
    let demote = patch(
        &host,
        &format!("/v1/orgs/acme/members/{bob_id}"),
        &json!({"role": "member"}),
        &bob,
    )?;
    assert_eq!(demote.status, 409);

    // Removing a member takes effect on their very next request, cached session or not.
    let carol_id = user_id(&host, &carol)?;
    expect(get(&host, "/v1/orgs/acme", &carol)?, 200)?;
    expect(
        delete(&host, &format!("/v1/orgs/acme/members/{carol_id}"), &bob)?,
        204,
    )?;
    assert_eq!(get(&host, "/v1/orgs/acme", &carol)?.status, 404);

    // Deleting the org removes it for everyone.
    expect(delete(&host, "/v1/orgs/acme", &bob)?, 204)?;
    assert_eq!(get(&host, "/v1/orgs/acme", &bob)?.status, 404);
    assert_eq!(
        ids(&expect(get(&host, "/v1/orgs", &bob)?, 200)?, "id"),
        Vec::<String>::new()
    );
    Ok(())
}

#[test]
fn another_orgs_ids_answer_404_for_reads_and_writes() -> Result<()> {
    let host = start_app()?;
    let alice = signed_in(&host, "alice@example.com")?;
    let mallory = signed_in(&host, "mallory@example.com")?;
    let bob = signed_in(&host, "bob@example.com")?;
    let bob_id = user_id(&host, &bob)?;

    // Org B (alice's victim) with a team, a member and a pending invitation.
    let b = create_org(&host, &alice, "bravo")?;
    let b_id = b["id"].as_str().context("id")?.to_string();
    let b_team = create_team(&host, &alice, "bravo", "Secret", None)?;
    invite(
        &host,
        &alice,
        "bravo",
        "bob@example.com",
        "member",
        &[&b_team],
    )?;
    let token = invitation_token(&host, "bob@example.com")?;
    expect(
        post(
            &host,
            "/v1/invitations/accept",
            &json!({"token": token}),
            Some(&bob),
        )?,
        200,
    )?;
    let b_invitation = invite(&host, &alice, "bravo", "dave@example.com", "member", &[])?;
    let b_invitation = b_invitation["id"].as_str().context("id")?.to_string();
    put(
        &host,
        "/v1/orgs/bravo/preferences",
        &json!({"theme": "dark"}),
        &alice,
    )?;

    // Mallory's own org A.
    create_org(&host, &mallory, "alpha")?;
    create_team(&host, &mallory, "alpha", "Mine", None)?;

    // Every org-scoped route against org B, by id and by handle.
    for org in [b_id.as_str(), "bravo"] {
        let cases: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", format!("/v1/orgs/{org}"), None),
            (
                "PATCH",
                format!("/v1/orgs/{org}"),
                Some(json!({"name": "pwned"})),
            ),
            ("DELETE", format!("/v1/orgs/{org}"), None),
            ("GET", format!("/v1/orgs/{org}/members"), None),
            (
                "PATCH",
                format!("/v1/orgs/{org}/members/{bob_id}"),
                Some(json!({"role": "admin"})),
            ),
            ("DELETE", format!("/v1/orgs/{org}/members/{bob_id}"), None),
            ("GET", format!("/v1/orgs/{org}/teams"), None),
            (
                "POST",
                format!("/v1/orgs/{org}/teams"),
                Some(json!({"name": "Backdoor"})),
            ),
            ("GET", format!("/v1/orgs/{org}/teams/{b_team}"), None),
            (
                "PATCH",
                format!("/v1/orgs/{org}/teams/{b_team}"),
                Some(json!({"name": "pwned"})),
            ),
            ("DELETE", format!("/v1/orgs/{org}/teams/{b_team}"), None),
            (
                "GET",
                format!("/v1/orgs/{org}/teams/{b_team}/subtree"),
                None,
            ),
            (
                "GET",
                format!("/v1/orgs/{org}/teams/{b_team}/members"),
                None,
            ),
            (
                "PUT",
                format!("/v1/orgs/{org}/teams/{b_team}/members/{bob_id}"),
                None,
            ),
            (
                "DELETE",
                format!("/v1/orgs/{org}/teams/{b_team}/members/{bob_id}"),
                None,
            ),
            (
                "GET",
                format!("/v1/orgs/{org}/teams/{b_team}/preferences"),
                None,
            ),
            (
                "PUT",
                format!("/v1/orgs/{org}/teams/{b_team}/preferences"),
                Some(json!({"x": 1})),
            ),
            ("GET", format!("/v1/orgs/{org}/invitations"), None),
            (
                "POST",
                format!("/v1/orgs/{org}/invitations"),
                Some(json!({"email": "m@example.com"})),
            ),
            (
                "DELETE",
                format!("/v1/orgs/{org}/invitations/{b_invitation}"),
                None,
            ),
            ("GET", format!("/v1/orgs/{org}/preferences"), None),
            (
                "PUT",
                format!("/v1/orgs/{org}/preferences"),
                Some(json!({"theme": "pwned"})),
            ),
            ("GET", format!("/v1/orgs/{org}/preferences/effective"), None),
        ];
        for (method, path, body) in cases {
            let reply = call(&host, method, &path, body.as_ref(), Some(&mallory), &[])?;
            assert_eq!(
                (reply.status, code(&reply)),
                (404, "not_found".to_string()),
                "{method} {path}: {}",
                reply.text()
            );
        }
    }

    // Org B's ids inside Mallory's own org: as absent as ids that never existed.
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/v1/orgs/alpha/teams/{b_team}"), None),
        (
            "PATCH",
            format!("/v1/orgs/alpha/teams/{b_team}"),
            Some(json!({"name": "pwned"})),
        ),
        ("DELETE", format!("/v1/orgs/alpha/teams/{b_team}"), None),
        (
            "GET",
            format!("/v1/orgs/alpha/teams/{b_team}/members"),
            None,
        ),
        (
            "GET",
            format!("/v1/orgs/alpha/teams/{b_team}/subtree"),
            None,
        ),
        (
            "GET",
            format!("/v1/orgs/alpha/teams/{b_team}/preferences"),
            None,
        ),
        (
            "PUT",
            format!("/v1/orgs/alpha/teams/{b_team}/preferences"),
            Some(json!({"x": 1})),
        ),
        ("GET", format!("/v1/orgs/alpha/teams?parent={b_team}"), None),
        (
            "GET",
            format!("/v1/orgs/alpha/preferences/effective?team={b_team}"),
            None,
        ),
        (
            "PATCH",
            format!("/v1/orgs/alpha/members/{bob_id}"),
            Some(json!({"role": "admin"})),
        ),
        ("DELETE", format!("/v1/orgs/alpha/members/{bob_id}"), None),
        (
            "DELETE",
            format!("/v1/orgs/alpha/invitations/{b_invitation}"),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let reply = call(&host, method, &path, body.as_ref(), Some(&mallory), &[])?;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.text());
    }
    // Nor can another org's team be named as a parent or an invitation's team.
    let parent = post(
        &host,
        "/v1/orgs/alpha/teams",
        &json!({"name": "Child", "parent_team_id": b_team}),
        Some(&mallory),
    )?;
    assert_eq!(
        (parent.status, parent.json()?["errors"][0]["code"].clone()),
        (422, json!("not_found"))
    );
    let invited = post(
        &host,
        "/v1/orgs/alpha/invitations",
        &json!({"email": "x@example.com", "team_ids": [b_team]}),
        Some(&mallory),
    )?;
    assert_eq!(invited.status, 422);
    // X-Org naming an org the caller is not in is refused the same way.
    let whoami = call(
        &host,
        "GET",
        "/v1/auth/whoami",
        None,
        Some(&mallory),
        &[("x-org", "bravo")],
    )?;
    assert_eq!(whoami.status, 404);

    // Org B is untouched.
    let b_now = expect(get(&host, "/v1/orgs/bravo", &alice)?, 200)?;
    assert_eq!(b_now["name"], "bravo Inc.");
    assert_eq!(
        ids(
            &expect(get(&host, "/v1/orgs/bravo/teams", &alice)?, 200)?,
            "id"
        ),
        vec![b_team.clone()]
    );
    assert_eq!(
        expect(get(&host, "/v1/orgs/bravo/members", &alice)?, 200)?["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        expect(get(&host, "/v1/orgs/bravo/preferences", &alice)?, 200)?,
        json!({"theme": "dark"})
    );
    let pending = expect(
        get(&host, "/v1/orgs/bravo/invitations?status=pending", &alice)?,
        200,
    )?;
    assert_eq!(ids(&pending, "id"), vec![b_invitation]);
    Ok(())
}

#[test]
fn org_routes_require_credentials_and_valid_input() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    for (method, path) in [
        ("GET", "/v1/orgs"),
        ("POST", "/v1/orgs"),
        ("GET", "/v1/orgs/acme/teams"),
        ("GET", "/v1/me/preferences"),
    ] {
        let none = call(&host, method, path, Some(&json!({})), None, &[])?;
        assert_eq!(
            (none.status, none.header("www-authenticate")),
            (401, Some("Bearer")),
            "{method} {path}"
        );
        let forged = call(
            &host,
            method,
            path,
            Some(&json!({})),
            Some("ghs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            &[],
        )?;
        assert_eq!(forged.status, 401, "{method} {path}");
        let garbage = call(
            &host,
            method,
            path,
            Some(&json!({})),
            Some("not-a-token"),
            &[],
        )?;
        assert_eq!(garbage.status, 401, "{method} {path}");
    }

    let bad = post(
        &host,
        "/v1/orgs",
        &json!({"name": "", "handle": "Not A Handle", "address": {"line1": "x", "city": "y", "country": "usa"}, "contact": {"email": "nope", "website": "ftp://x"}}),
        Some(&ada),
    )?;
    assert_eq!(bad.status, 422);
    let pointers: Vec<String> = bad.json()?["errors"]
        .as_array()
        .context("errors")?
        .iter()
        .filter_map(|e| e["pointer"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        pointers,
        vec![
            "/name",
            "/handle",
            "/address/country",
            "/contact/email",
            "/contact/website"
        ]
    );
    let missing = post(&host, "/v1/orgs", &json!({"name": "Acme"}), Some(&ada))?;
    assert_eq!(
        (
            missing.status,
            missing.json()?["errors"][0]["pointer"].clone()
        ),
        (422, json!("/handle"))
    );
    let unknown = post(
        &host,
        "/v1/orgs",
        &json!({"name": "Acme", "handle": "acme", "owner": "x"}),
        Some(&ada),
    )?;
    assert_eq!(unknown.status, 422);
    let not_json = call(
        &host,
        "POST",
        "/v1/orgs",
        None,
        Some(&ada),
        &[("content-type", "application/json")],
    )?;
    assert_eq!(not_json.status, 400);

    create_org(&host, &ada, "acme")?;
    let taken = post(
        &host,
        "/v1/orgs",
        &json!({"name": "Other", "handle": "acme"}),
        Some(&ada),
    )?;
    assert_eq!(
        (taken.status, taken.json()?["errors"][0]["code"].clone()),
        (409, json!("taken"))
    );
    let other = create_org(&host, &ada, "other")?;
    let rename = patch(&host, "/v1/orgs/other", &json!({"handle": "acme"}), &ada)?;
    assert_eq!(rename.status, 409);
    let renamed = expect(
        patch(&host, "/v1/orgs/other", &json!({"handle": "renamed"}), &ada)?,
        200,
    )?;
    assert_eq!(
        (renamed["id"].clone(), renamed["handle"].clone()),
        (other["id"].clone(), json!("renamed"))
    );
    expect(get(&host, "/v1/orgs/renamed", &ada)?, 200)?;

    let empty_name = post(
        &host,
        "/v1/orgs/acme/teams",
        &json!({"name": " "}),
        Some(&ada),
    )?;
    assert_eq!(empty_name.status, 422);
    let team = create_team(&host, &ada, "acme", "Core", None)?;
    let twin = post(
        &host,
        "/v1/orgs/acme/teams",
        &json!({"name": "Core"}),
        Some(&ada),
    )?;
    assert_eq!(twin.status, 409);
    let bad_role = patch(
        &host,
        "/v1/orgs/acme/members/usr_x",
        &json!({"role": "owner"}),
        &ada,
    )?;
    assert_eq!(bad_role.status, 422);
    let nobody = patch(
        &host,
        "/v1/orgs/acme/members/usr_nobody",
        &json!({"role": "admin"}),
        &ada,
    )?;
    assert_eq!(nobody.status, 404);
    let bad_email = post(
        &host,
        "/v1/orgs/acme/invitations",
        &json!({"email": "not-an-address"}),
        Some(&ada),
    )?;
    assert_eq!(bad_email.status, 422);
    let own = post(
        &host,
        "/v1/orgs/acme/invitations",
        &json!({"email": "ada@example.com"}),
        Some(&ada),
    )?;
    assert_eq!(own.status, 409, "a member cannot be invited again");

    // The tree's depth is bounded.
    let mut parent = team;
    for level in 2..=8 {
        parent = create_team(
            &host,
            &ada,
            "acme",
            &format!("Level {level}"),
            Some(&parent),
        )?;
    }
    let too_deep = post(
        &host,
        "/v1/orgs/acme/teams",
        &json!({"name": "Level 9", "parent_team_id": parent}),
        Some(&ada),
    )?;
    assert_eq!(
        (
            too_deep.status,
            too_deep.json()?["errors"][0]["code"].clone()
        ),
        (422, json!("too_deep"))
    );
    let has_children = delete(
        &host,
        &format!(
            "/v1/orgs/acme/teams/{}",
            ids(
                &expect(get(&host, "/v1/orgs/acme/teams?parent=root", &ada)?, 200)?,
                "id"
            )[0]
        ),
        &ada,
    )?;
    assert_eq!(has_children.status, 409);

    let wrong_method = call(
        &host,
        "PUT",
        "/v1/orgs/acme",
        Some(&json!({})),
        Some(&ada),
        &[],
    )?;
    assert_eq!(
        (wrong_method.status, wrong_method.header("allow")),
        (405, Some("GET, PATCH, DELETE"))
    );
    let bad_cursor = get(&host, "/v1/orgs?cursor=%%%", &ada)?;
    assert_eq!(bad_cursor.status, 400);
    Ok(())
}

#[test]
fn invitations_are_single_use_expire_and_can_be_revoked() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    create_org(&host, &ada, "acme")?;
    let eve = signed_in(&host, "eve@example.com")?;

    // Sent to one address: another signed-in user cannot spend it.
    invite(&host, &ada, "acme", "frank@example.com", "member", &[])?;
    let frank_token = invitation_token(&host, "frank@example.com")?;
    let stolen = post(
        &host,
        "/v1/invitations/accept",
        &json!({"token": frank_token}),
        Some(&eve),
    )?;
    assert_eq!(stolen.status, 403);
    // Without an account: password and name are required and checked.
    let bare = post(
        &host,
        "/v1/invitations/accept",
        &json!({"token": frank_token}),
        None,
    )?;
    assert_eq!(bare.status, 422);
    let weak = post(
        &host,
        "/v1/invitations/accept",
        &json!({"token": frank_token, "password": "password", "display_name": "Frank"}),
        None,
    )?;
    assert_eq!(
        (weak.status, weak.json()?["errors"][0]["pointer"].clone()),
        (422, json!("/password"))
    );
    expect(
        post(
            &host,
            "/v1/invitations/accept",
            &json!({"token": frank_token, "password": PASSWORD, "display_name": "Frank"}),
            None,
        )?,
        201,
    )?;
    let again = post(
        &host,
        "/v1/invitations/accept",
        &json!({"token": frank_token, "password": PASSWORD, "display_name": "Frank"}),
        None,
    )?;
    assert_eq!(
        (again.status, again.json()?["errors"][0]["code"].clone()),
        (422, json!("invalid_token"))
    );

    // Revoked.
    let invitation = invite(&host, &ada, "acme", "eve@example.com", "member", &[])?;
    let eve_token = invitation_token(&host, "eve@example.com")?;
    let id = invitation["id"].as_str().context("id")?;
    expect(
        delete(&host, &format!("/v1/orgs/acme/invitations/{id}"), &ada)?,
        204,
    )?;
    let revoked = post(
        &host,
        "/v1/invitations/accept",
        &json!({"token": eve_token}),
        Some(&eve),
    )?;
    assert_eq!(revoked.status, 422);
    let listed = expect(get(&host, "/v1/orgs/acme/invitations", &ada)?, 200)?;
    let mut statuses: Vec<&str> = listed["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|i| i["status"].as_str())
        .collect();
    // Newest first; both were sent within the same second, so sort.
    statuses.sort();
    assert_eq!(statuses, vec!["accepted", "revoked"]);

    // A newer invitation replaces the older one.
    invite(&host, &ada, "acme", "eve@example.com", "member", &[])?;
    let first = invitation_token(&host, "eve@example.com")?;
    invite(&host, &ada, "acme", "eve@example.com", "admin", &[])?;
    let second = invitation_token(&host, "eve@example.com")?;
    assert_ne!(first, second);
    assert_eq!(
        post(
            &host,
            "/v1/invitations/accept",
            &json!({"token": first}),
            Some(&eve)
        )?
        .status,
        422
    );

    // Expired: a week after sending, the token no longer works.
    let db = host
        .state
        .path()
        .join(gatehouse_host::runtime_config::DEFAULT_DB_FILE);
    rusqlite::Connection::open(db)?.execute(
        "UPDATE invitations SET expires_at = 0 WHERE accepted_at IS NULL AND revoked_at IS NULL",
        [],
    )?;
    assert_eq!(
        post(
            &host,
            "/v1/invitations/accept",
            &json!({"token": second}),
            Some(&eve)
        )?
        .status,
        422
    );
    let pending = expect(
        get(&host, "/v1/orgs/acme/invitations?status=pending", &ada)?,
        200,
    )?;
    assert_eq!(pending["items"], json!([]));

    for bad in [
        "",
        "ginv_short",
        "ghs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let reply = post(
            &host,
            "/v1/invitations/accept",
            &json!({"token": bad}),
            Some(&eve),
        )?;
        assert_eq!(reply.status, 422, "{bad}");
    }
    // Members cannot see or manage invitations.
    let frank = expect(
        post(
            &host,
            "/v1/auth/login",
            &json!({"email": "frank@example.com", "password": PASSWORD}),
            None,
        )?,
        200,
    )?;
    let frank = frank["token"].as_str().context("token")?;
    assert_eq!(get(&host, "/v1/orgs/acme/invitations", frank)?.status, 403);
    assert_eq!(
        post(
            &host,
            "/v1/orgs/acme/invitations",
            &json!({"email": "g@example.com"}),
            Some(frank)
        )?
        .status,
        403
    );
    Ok(())
}

#[test]
fn preferences_resolve_user_over_team_over_org() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    create_org(&host, &ada, "acme")?;
    let eng = create_team(&host, &ada, "acme", "Engineering", None)?;
    let backend = create_team(&host, &ada, "acme", "Backend", Some(&eng))?;

    put(
        &host,
        "/v1/orgs/acme/preferences",
        &json!({"theme": "light", "locale": "en", "limits": {"daily": 10, "monthly": 100}}),
        &ada,
    )?;
    put(
        &host,
        &format!("/v1/orgs/acme/teams/{eng}/preferences"),
        &json!({"limits": {"daily": 20}, "locale": "de"}),
        &ada,
    )?;
    put(
        &host,
        &format!("/v1/orgs/acme/teams/{backend}/preferences"),
        &json!({"limits": {"daily": 30}}),
        &ada,
    )?;
    put(&host, "/v1/me/preferences", &json!({"theme": "dark"}), &ada)?;

    let effective = expect(
        get(
            &host,
            &format!("/v1/orgs/acme/preferences/effective?team={backend}"),
            &ada,
        )?,
        200,
    )?;
    assert_eq!(
        effective["settings"],
        json!({"theme": "dark", "locale": "de", "limits": {"daily": 30, "monthly": 100}})
    );
    let scopes: Vec<&str> = effective["sources"]
        .as_array()
        .context("sources")?
        .iter()
        .filter_map(|s| s["scope"].as_str())
        .collect();
    assert_eq!(scopes, vec!["org", "team", "team", "user"]);
    let org_only = expect(
        get(&host, "/v1/orgs/acme/preferences/effective", &ada)?,
        200,
    )?;
    assert_eq!(
        org_only["settings"],
        json!({"theme": "dark", "locale": "en", "limits": {"daily": 10, "monthly": 100}})
    );

    // ETags: a read answers 304 when unchanged; a write with a stale If-Match is refused.
    let read = get(&host, "/v1/orgs/acme/preferences", &ada)?;
    let etag = read.header("etag").context("etag")?.to_string();
    let cached = call(
        &host,
        "GET",
        "/v1/orgs/acme/preferences",
        None,
        Some(&ada),
        &[("if-none-match", &etag)],
    )?;
    assert_eq!(cached.status, 304);
    let ok = call(
        &host,
        "PUT",
        "/v1/orgs/acme/preferences",
        Some(&json!({"theme": "blue"})),
        Some(&ada),
        &[("if-match", &etag)],
    )?;
    assert_eq!(ok.status, 200);
    let stale = call(
        &host,
        "PUT",
        "/v1/orgs/acme/preferences",
        Some(&json!({"theme": "red"})),
        Some(&ada),
        &[("if-match", &etag)],
    )?;
    assert_eq!(
        (stale.status, code(&stale)),
        (412, "precondition_failed".to_string())
    );

    // Only objects, only admins for org and team settings.
    for bad in [json!([1, 2]), json!("dark"), json!(null)] {
        assert_eq!(
            put(&host, "/v1/me/preferences", &bad, &ada)?.status,
            422,
            "{bad}"
        );
    }
    let huge = json!({"blob": "x".repeat(20_000)});
    assert_eq!(put(&host, "/v1/me/preferences", &huge, &ada)?.status, 413);
    invite(&host, &ada, "acme", "bob@example.com", "member", &[])?;
    let bob = signed_in(&host, "bob@example.com")?;
    let token = invitation_token(&host, "bob@example.com")?;
    expect(
        post(
            &host,
            "/v1/invitations/accept",
            &json!({"token": token}),
            Some(&bob),
        )?,
        200,
    )?;
    assert_eq!(
        expect(get(&host, "/v1/orgs/acme/preferences", &bob)?, 200)?,
        json!({"theme": "blue"})
    );
    assert_eq!(
        put(
            &host,
            "/v1/orgs/acme/preferences",
            &json!({"theme": "x"}),
            &bob
        )?
        .status,
        403
    );
    assert_eq!(
        put(
            &host,
            &format!("/v1/orgs/acme/teams/{eng}/preferences"),
            &json!({}),
            &bob
        )?
        .status,
        403
    );
    // A user's own settings are theirs alone.
    assert_eq!(
        expect(get(&host, "/v1/me/preferences", &bob)?, 200)?,
        json!({})
    );
    Ok(())
}

#[test]
fn the_principal_acts_in_the_org_x_org_names_or_the_only_one() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    let none = expect(get(&host, "/v1/auth/whoami", &ada)?, 200)?;
    assert_eq!(
        (none["org_id"].clone(), none["credential"].clone()),
        (Value::Null, json!("session"))
    );
    assert_eq!(none["subject"]["type"], "user");

    let first = create_org(&host, &ada, "first")?;
    let only = expect(get(&host, "/v1/auth/whoami", &ada)?, 200)?;
    assert_eq!(
        (only["org_id"].clone(), only["org_role"].clone()),
        (first["id"].clone(), json!("admin"))
    );

    let second = create_org(&host, &ada, "second")?;
    let ambiguous = expect(get(&host, "/v1/auth/whoami", &ada)?, 200)?;
    assert!(
        ambiguous["org_id"].is_null(),
        "two orgs and no X-Org: none chosen"
    );
    let chosen = expect(
        call(
            &host,
            "GET",
            "/v1/auth/whoami",
            None,
            Some(&ada),
            &[("x-org", "SECOND")],
        )?,
        200,
    )?;
    assert_eq!(chosen["org_id"], second["id"]);
    let by_id = expect(
        call(
            &host,
            "GET",
            "/v1/auth/whoami",
            None,
            Some(&ada),
            &[("x-org", first["id"].as_str().unwrap_or_default())],
        )?,
        200,
    )?;
    assert_eq!(by_id["org_id"], first["id"]);
    Ok(())
}

#[test]
fn creating_posts_honour_idempotency_keys() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    let body = json!({"name": "Acme", "handle": "acme"});
    let key = [("idempotency-key", "create-acme-1")];
    let first = call(&host, "POST", "/v1/orgs", Some(&body), Some(&ada), &key)?;
    assert_eq!(first.status, 201, "{}", first.text());
    let retry = call(&host, "POST", "/v1/orgs", Some(&body), Some(&ada), &key)?;
    assert_eq!(
        (retry.status, retry.header("idempotent-replayed")),
        (201, Some("true"))
    );
    assert_eq!(
        retry.json()?["id"],
        first.json()?["id"],
        "the org was created once"
    );
    assert_eq!(
        expect(get(&host, "/v1/orgs", &ada)?, 200)?["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let other = call(
        &host,
        "POST",
        "/v1/orgs",
        Some(&json!({"name": "Other", "handle": "other"})),
        Some(&ada),
        &key,
    )?;
    assert_eq!(
        (other.status, code(&other)),
        (422, "idempotency_key_reused".to_string())
    );
    // Keys are the caller's own: another user's equal key is a new request.
    let bob = signed_in(&host, "bob@example.com")?;
    let theirs = call(
        &host,
        "POST",
        "/v1/orgs",
        Some(&json!({"name": "Bob", "handle": "bobs"})),
        Some(&bob),
        &key,
    )?;
    assert_eq!(theirs.status, 201);
    // Teams and invitations too; a validation failure is the key's answer as well.
    let team_key = [("idempotency-key", "team-1")];
    let team = call(
        &host,
        "POST",
        "/v1/orgs/acme/teams",
        Some(&json!({"name": "Core"})),
        Some(&ada),
        &team_key,
    )?;
    let again = call(
        &host,
        "POST",
        "/v1/orgs/acme/teams",
        Some(&json!({"name": "Core"})),
        Some(&ada),
        &team_key,
    )?;
    assert_eq!((team.status, again.status), (201, 201));
    assert_eq!(team.json()?["id"], again.json()?["id"]);
    let invite_key = [("idempotency-key", "invite-1")];
    let bad = call(
        &host,
        "POST",
        "/v1/orgs/acme/invitations",
        Some(&json!({"email": "nope"})),
        Some(&ada),
        &invite_key,
    )?;
    let bad_again = call(
        &host,
        "POST",
        "/v1/orgs/acme/invitations",
        Some(&json!({"email": "nope"})),
        Some(&ada),
        &invite_key,
    )?;
    assert_eq!(
        (
            bad.status,
            bad_again.status,
            bad_again.header("idempotent-replayed")
        ),
        (422, 422, Some("true"))
    );
    let malformed = call(
        &host,
        "POST",
        "/v1/orgs",
        Some(&body),
        Some(&ada),
        &[("idempotency-key", "has space")],
    )?;
    assert_eq!(
        (malformed.status, code(&malformed)),
        (400, "idempotency_key_invalid".to_string())
    );
    Ok(())
}

#[test]
fn an_orgs_time_zone_defaults_to_utc_and_admins_set_it() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    let plain = create_org(&host, &ada, "plain")?;
    assert_eq!(plain["time_zone"], "UTC", "{plain}");

    let berlin = expect(
        post(
            &host,
            "/v1/orgs",
            &json!({"name": "Berlin", "handle": "berlin", "time_zone": "Europe/Berlin"}),
            Some(&ada),
        )?,
        201,
    )?;
    assert_eq!(berlin["time_zone"], "Europe/Berlin", "{berlin}");
    let read = expect(get(&host, "/v1/orgs/berlin", &ada)?, 200)?;
    assert_eq!(read["time_zone"], "Europe/Berlin", "{read}");

    // Any spelling the database knows is stored in its own spelling.
    let moved = expect(
        patch(
            &host,
            "/v1/orgs/berlin",
            &json!({"time_zone": "america/new_york"}),
            &ada,
        )?,
        200,
    )?;
    assert_eq!(moved["time_zone"], "America/New_York", "{moved}");
    // A change to another field keeps the zone.
    let renamed = expect(
        patch(
            &host,
            "/v1/orgs/berlin",
            &json!({"name": "Berlin East"}),
            &ada,
        )?,
        200,
    )?;
    assert_eq!(renamed["time_zone"], "America/New_York", "{renamed}");
    let listed = expect(get(&host, "/v1/orgs", &ada)?, 200)?;
    // Both joined in the same second, maybe: the order is the ids'.
    let mut zones: Vec<&str> = listed["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|o| o["time_zone"].as_str())
        .collect();
    zones.sort_unstable();
    assert_eq!(zones, vec!["America/New_York", "UTC"], "{listed}");
    Ok(())
}

#[test]
fn an_unknown_time_zone_is_a_validation_problem() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    let unknown = |reply: Reply| -> Result<()> {
        assert_eq!(reply.status, 422, "{}", reply.text());
        let body = reply.json()?;
        assert_eq!(body["code"], "validation_failed", "{body}");
        assert_eq!(
            (
                body["errors"][0]["pointer"].clone(),
                body["errors"][0]["code"].clone()
            ),
            (json!("/time_zone"), json!("unknown_time_zone")),
            "{body}"
        );
        Ok(())
    };
    for zone in [
        "Mars/Olympus_Mons",
        "",
        "Europe/Berlin ",
        "../../etc/passwd",
    ] {
        unknown(post(
            &host,
            "/v1/orgs",
            &json!({"name": "Acme", "handle": "acme", "time_zone": zone}),
            Some(&ada),
        )?)?;
    }
    create_org(&host, &ada, "acme")?;
    unknown(patch(
        &host,
        "/v1/orgs/acme",
        &json!({"time_zone": "Atlantis/Capital"}),
        &ada,
    )?)?;
    let wrong_type = patch(&host, "/v1/orgs/acme", &json!({"time_zone": 1}), &ada)?;
    assert_eq!(wrong_type.status, 422, "{}", wrong_type.text());
    let read = expect(get(&host, "/v1/orgs/acme", &ada)?, 200)?;
    assert_eq!(read["time_zone"], "UTC", "{read}");
    Ok(())
}

#[test]
fn a_member_cannot_change_the_time_zone() -> Result<()> {
    let host = start_app()?;
    let ada = signed_in(&host, "ada@example.com")?;
    let org = create_org(&host, &ada, "acme")?;
    let org_id = org["id"].as_str().context("org id")?;
    let (bob, _) = join(&host, &ada, org_id, "bob@example.com", "member", &[])?;
    let refused = patch(
        &host,
        "/v1/orgs/acme",
        &json!({"time_zone": "Asia/Tokyo"}),
        &bob,
    )?;
    assert_eq!(
        (refused.status, code(&refused)),
        (403, "forbidden".to_string()),
        "{}",
        refused.text()
    );
    // The member reads the zone; it did not change.
    let read = expect(get(&host, "/v1/orgs/acme", &bob)?, 200)?;
    assert_eq!(read["time_zone"], "UTC", "{read}");
    Ok(())
}
