//! A component protected through the `gatehouse:client` import: the
//! `notes` component of tests/guarded-app imports the package, and the
//! app's manifest plugs in Gatehouse's `client_component.wasm` as the
//! dependency that exports it. The app runs on the local host beside
//! Gatehouse; each caller must see only what Gatehouse's answers let them.

use anyhow::{Context, Result};
use gatehouse_tests::app::{
    Org, call, database, expect, join, mailed_token, org, post, problem, retry_after, role_key,
};
use gatehouse_tests::guarded::{AUDIENCE, Gatehouse, gatehouse, guarded, jwt, subject_id};
use gatehouse_tests::{Reply, TestHost};
use serde_json::{Value, json};

/// The `notes` collection's policy in `org`: owners read their own notes,
/// the org's admins every note of the org.
fn notes_policy(gh: &Gatehouse, org: &Org) -> Result<()> {
    let document = json!({"document": {
        "applies_to": {"service": "notes", "collection": "notes"},
        "rules": {"read": {"owner": {"user": true, "org": "admins"}}}
    }});
    let put = call(
        &gh.host,
        "PUT",
        "/v1/authz/policies/notes",
        Some(&document),
        Some(&org.admin),
        &[],
    )?;
    assert!(matches!(put.status, 200 | 201), "{}", put.text());
    Ok(())
}

/// Two members of the org: Bob's session and id, and Carol's session.
fn bob_and_carol(gh: &Gatehouse) -> Result<(String, String, String)> {
    let member = |email: &str| join(&gh.host, &gh.org.admin, &gh.org.id, email, "member", &[]);
    let (bob, bob_id) = member("bob@example.com")?;
    let (carol, _) = member("carol@example.com")?;
    Ok((bob, bob_id, carol))
}

/// The meter `meter` (its definition) in the org, and Bob, a member with a
/// daily quota of `limit` on it: his session and id.
fn member_with_quota(gh: &Gatehouse, meter: Value, limit: i64) -> Result<(String, String)> {
    let admin = Some(gh.org.admin.as_str());
    expect(post(&gh.host, "/v1/meters", &meter, admin)?, 201)?;
    let (bob, bob_id) = join(
        &gh.host,
        &gh.org.admin,
        &gh.org.id,
        "bob@example.com",
        "member",
        &[],
    )?;
    let quota = json!({"entity": format!("user:{bob_id}"), "meter": meter["key"], "limit": limit, "period": "day"});
    expect(post(&gh.host, "/v1/quotas", &quota, admin)?, 201)?;
    Ok((bob, bob_id))
}

fn notes(
    app: &TestHost,
    method: &str,
    path: &str,
    body: Option<&Value>,
    credential: Option<&str>,
) -> Result<Reply> {
    call(app, method, path, body, credential, &[])
}

fn write(app: &TestHost, credential: &str, text: &str) -> Result<Value> {
    expect(
        notes(
            app,
            "POST",
            "/notes",
            Some(&json!({"body": text})),
            Some(credential),
        )?,
        201,
    )
}

/// The bodies of the notes `credential` is served, in order.
fn read(app: &TestHost, credential: &str) -> Result<Vec<String>> {
    let listed = expect(notes(app, "GET", "/notes", None, Some(credential))?, 200)?;
    Ok(listed["notes"]
        .as_array()
        .context("notes")?
        .iter()
        .map(|n| n["body"].as_str().unwrap_or_default().to_string())
        .collect())
}

#[test]
fn without_a_valid_credential_the_component_answers_gatehouses_401() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[], false)?;
    let none = call(
        &app,
        "GET",
        "/notes/me",
        None,
        None,
        &[("x-gatehouse-subject", "usr_forged")],
    )?;
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert_eq!(problem(none, 401)?.0, "unauthenticated");
    let forged = notes(&app, "GET", "/notes", None, Some("gk_not_a_key"))?;
    assert_eq!(
        forged.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    assert_eq!(problem(forged, 401)?.0, "unauthenticated");
    // A Gatehouse JWT for Gatehouse's own audience is not one for this app.
    let other_audience = jwt(&gh, &gh.org.admin, "gatehouse")?;
    assert_eq!(
        problem(
            notes(&app, "GET", "/notes/me", None, Some(&other_audience))?,
            401
        )?
        .0,
        "unauthenticated"
    );
    Ok(())
}

#[test]
fn every_credential_verifies_into_the_principal_gatehouse_knows() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[], false)?;
    let token = jwt(&gh, &gh.org.admin, AUDIENCE)?;
    let me = expect(notes(&app, "GET", "/notes/me", None, Some(&token))?, 200)?;
    assert_eq!(
        (
            me["kind"].as_str(),
            me["id"].as_str(),
            me["org"].as_str(),
            me["org_role"].as_str(),
            me["credential"].as_str()
        ),
        (
            Some("user"),
            Some(gh.org.admin_id.as_str()),
            Some(gh.org.id.as_str()),
            Some("admin"),
            Some("jwt")
        )
    );
    let session = expect(
        notes(&app, "GET", "/notes/me", None, Some(&gh.org.admin))?,
        200,
    )?;
    assert_eq!(
        (session["id"].as_str(), session["credential"].as_str()),
        (Some(gh.org.admin_id.as_str()), Some("session"))
    );

    let key = role_key(&gh.host, &gh.org, "reader", &["reports:read"])?;
    let as_key = expect(notes(&app, "GET", "/notes/me", None, Some(&key))?, 200)?;
    assert_eq!(
        (
            as_key["kind"].as_str(),
            as_key["id"].as_str(),
            as_key["owner"].as_str(),
            as_key["credential"].as_str()
        ),
        (
            Some("api_key"),
            Some(subject_id(&gh, &key)?.as_str()),
            Some(gh.org.admin_id.as_str()),
            Some("api_key")
        )
    );
    assert_eq!(as_key["permissions"], json!(["reports:read"]));
    Ok(())
}

#[test]
fn each_member_is_served_the_notes_gatehouses_filter_lets_them_read() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[], false)?;
    notes_policy(&gh, &gh.org)?;
    let (bob, bob_id, carol) = bob_and_carol(&gh)?;
    let bob_jwt = jwt(&gh, &bob, AUDIENCE)?;

    assert_eq!(write(&app, &bob_jwt, "bob 1")?["owner"], json!(bob_id));
    write(&app, &bob, "bob 2")?;
    write(&app, &carol, "carol 1")?;
    write(&app, &gh.org.admin, "ada 1")?;

    // Owners read their own; the admin reads the org's.
    assert_eq!(read(&app, &bob_jwt)?, ["bob 1", "bob 2"]);
    assert_eq!(read(&app, &carol)?, ["carol 1"]);
    assert_eq!(
        read(&app, &gh.org.admin)?,
        ["ada 1", "bob 1", "bob 2", "carol 1"]
    );
    let listed = expect(notes(&app, "GET", "/notes", None, Some(&bob))?, 200)?;
    assert_eq!(listed["where"], json!("\"owner_user\" = ?2"));
    assert_eq!(listed["mongo"], json!({"owner_user": {"$eq": bob_id}}));
    assert_eq!(listed["policy"], json!("notes:read"));

    // Someone acting in another org is decided for in none of this one's.
    let eve_org = org(&gh.host, "eve@example.com", "evil")?;
    let eve = jwt(&gh, &eve_org.admin, AUDIENCE)?;
    write(&app, &eve, "eve 1")?;
    assert_eq!(
        problem(notes(&app, "GET", "/notes", None, Some(&eve))?, 403)?.0,
        "forbidden"
    );

    // An API key is no member: decisions through the import are for members.
    let key = role_key(&gh.host, &gh.org, "reader", &["reports:read"])?;
    assert_eq!(
        problem(notes(&app, "GET", "/notes", None, Some(&key))?, 403)?.0,
        "forbidden"
    );
    Ok(())
}

#[test]
fn a_check_answers_for_one_resource_by_gatehouses_ownership() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[], false)?;
    notes_policy(&gh, &gh.org)?;
    let (bob, bob_id, carol) = bob_and_carol(&gh)?;
    let owned = call(
        &gh.host,
        "PUT",
        &format!("/v1/authz/resources/notes/notes/n_shared/owners/user/{bob_id}"),
        None,
        Some(&gh.org.admin),
        &[],
    )?;
    assert_eq!(owned.status, 204, "{}", owned.text());
    let access = |who: &str| -> Result<Value> {
        expect(
            notes(&app, "GET", "/notes/n_shared/access", None, Some(who))?,
            200,
        )
    };
    let for_bob = access(&bob)?;
    assert_eq!(
        (for_bob["allowed"].as_bool(), for_bob["reason"].as_str()),
        (Some(true), Some("owner_user"))
    );
    assert_eq!(
        (for_bob["policy"].as_str(), for_bob["version"].as_i64()),
        (Some("notes:read"), Some(1))
    );
    let for_carol = access(&carol)?;
    assert_eq!(
        (for_carol["allowed"].as_bool(), for_carol["reason"].as_str()),
        (Some(false), Some("not_granted"))
    );
    // The admins' rule reaches what the org owns; Bob alone owns this one.
    let for_admin = access(&gh.org.admin)?;
    assert_eq!(
        (for_admin["allowed"].as_bool(), for_admin["reason"].as_str()),
        (Some(false), Some("not_granted"))
    );
    // An API key is no member: decisions through the import are for members.
    let key = role_key(&gh.host, &gh.org, "reader", &["reports:read"])?;
    assert_eq!(
        problem(
            notes(&app, "GET", "/notes/n_shared/access", None, Some(&key))?,
            403
        )?
        .0,
        "forbidden"
    );
    Ok(())
}

#[test]
fn writing_consumes_the_callers_quota_once_per_idempotency_key_then_429() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[("NOTES_METER", "notes")], false)?;
    let (bob, bob_id) = member_with_quota(
        &gh,
        json!({"key": "notes", "event_type": "note.write", "aggregation": "count"}),
        2,
    )?;
    let again = [("idempotency-key", "note-1")];
    for _ in 0..2 {
        expect(
            call(
                &app,
                "POST",
                "/notes",
                Some(&json!({"body": "once"})),
                Some(&bob),
                &again,
            )?,
            201,
        )?;
    }
    write(&app, &bob, "twice")?;
    let refused = notes(
        &app,
        "POST",
        "/notes",
        Some(&json!({"body": "thrice"})),
        Some(&bob),
    )?;
    assert!(retry_after(&refused)? >= 1, "{:?}", refused.headers);
    assert_eq!(problem(refused, 429)?.0, "quota_exceeded");
    let counted: i64 = database(&gh.host)?.query_row(
        "SELECT COUNT(*) FROM usage_events WHERE org_id = ?1 AND subject_type = 'user' AND subject_id = ?2",
        [&gh.org.id, &bob_id],
        |row| row.get(0),
    )?;
    assert_eq!(counted, 2);
    // Another member's key of the same name is theirs: counted for them.
    let (carol, carol_id) = join(
        &gh.host,
        &gh.org.admin,
        &gh.org.id,
        "carol@example.com",
        "member",
        &[],
    )?;
    expect(
        call(
            &app,
            "POST",
            "/notes",
            Some(&json!({"body": "hers"})),
            Some(&carol),
            &again,
        )?,
        201,
    )?;
    let hers: i64 = database(&gh.host)?.query_row(
        "SELECT COUNT(*) FROM usage_events WHERE org_id = ?1 AND subject_type = 'user' AND subject_id = ?2",
        [&gh.org.id, &carol_id],
        |row| row.get(0),
    )?;
    assert_eq!(hers, 1);
    // The admin has no quota on the meter; another org's caller is not
    // one the app's service key may meter.
    write(&app, &gh.org.admin, "free")?;
    let eve_org = org(&gh.host, "eve@example.com", "evil")?;
    let eve = jwt(&gh, &eve_org.admin, AUDIENCE)?;
    let (code, pointer, field) = problem(
        notes(
            &app,
            "POST",
            "/notes",
            Some(&json!({"body": "x"})),
            Some(&eve),
        )?,
        422,
    )?;
    assert_eq!(
        (code.as_str(), pointer.as_str(), field.as_str()),
        ("validation_failed", "/subject", "unknown_subject")
    );
    Ok(())
}

#[test]
fn a_reservation_counts_what_was_written_and_a_refused_one_writes_nothing() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[("NOTES_METER", "words")], false)?;
    let (bob, _) = member_with_quota(
        &gh,
        json!({"key": "words", "event_type": "note.words", "aggregation": "sum", "value_path": "n"}),
        5,
    )?;
    // Four held, two written: two counted.
    let batch = expect(
        notes(
            &app,
            "POST",
            "/notes/batch",
            Some(&json!({"bodies": ["a", "b"], "reserve": 4})),
            Some(&bob),
        )?,
        201,
    )?;
    assert_eq!(
        (batch["reserved"].as_u64(), batch["committed"].as_u64()),
        (Some(4), Some(2))
    );
    // Nothing written: the hold is released, nothing counted.
    let empty = expect(
        notes(
            &app,
            "POST",
            "/notes/batch",
            Some(&json!({"bodies": [], "reserve": 3})),
            Some(&bob),
        )?,
        201,
    )?;
    assert_eq!(empty["committed"], json!(0));
    // Three are left of five: a hold of four is refused.
    let refused = notes(
        &app,
        "POST",
        "/notes/batch",
        Some(&json!({"bodies": ["c"], "reserve": 4})),
        Some(&bob),
    )?;
    assert_eq!(problem(refused, 429)?.0, "quota_exceeded");
    let states: Vec<(String, i64, Option<i64>)> = {
        let db = database(&gh.host)?;
        let mut statement = db.prepare(
            "SELECT state, amount, committed FROM quota_reservations WHERE org_id = ?1 ORDER BY created_at, rowid",
        )?;
        statement
            .query_map([&gh.org.id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?
    };
    assert_eq!(
        states,
        [
            ("committed".to_string(), 4, Some(2)),
            ("released".to_string(), 3, None)
        ]
    );
    Ok(())
}

#[test]
fn a_revoked_api_key_is_refused_once_the_cache_bound_has_passed() -> Result<()> {
    let gh = gatehouse()?;
    // The component's clock is the host's controllable one.
    let (app, _dir) = guarded(&gh, &[("GATEHOUSE_CACHE_SECONDS", "30")], true)?;
    let key = role_key(&gh.host, &gh.org, "reader", &["reports:read"])?;
    expect(notes(&app, "GET", "/notes/me", None, Some(&key))?, 200)?;
    let revoked = call(
        &gh.host,
        "DELETE",
        "/v1/keys/reader-agent",
        None,
        Some(&gh.org.admin),
        &[],
    )?;
    assert!(matches!(revoked.status, 200 | 204), "{}", revoked.text());
    // Within the bound the acceptance may be reused ...
    expect(notes(&app, "GET", "/notes/me", None, Some(&key))?, 200)?;
    // ... past it, Gatehouse is asked again and refuses.
    app.advance_clock(31)?;
    assert_eq!(
        problem(notes(&app, "GET", "/notes/me", None, Some(&key))?, 401)?.0,
        "unauthenticated"
    );
    Ok(())
}

#[test]
fn a_member_acting_in_another_org_gets_no_decision_made_in_this_one() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[], false)?;
    notes_policy(&gh, &gh.org)?;
    write(&app, &gh.org.admin, "acme's")?;
    // Ada, admin of the app's org, is also a member of Eve's.
    let eve_org = org(&gh.host, "eve@example.com", "evil")?;
    expect(
        post(
            &gh.host,
            &format!("/v1/orgs/{}/invitations", eve_org.id),
            &json!({"email": "ada@example.com", "role": "member"}),
            Some(&eve_org.admin),
        )?,
        201,
    )?;
    let invitation = mailed_token(&gh.host, "ada@example.com", "invitation", "ginv_")?;
    expect(
        post(
            &gh.host,
            "/v1/invitations/accept",
            &json!({"token": invitation}),
            Some(&gh.org.admin),
        )?,
        200,
    )?;
    let in_org = |org: &str, path: &str| {
        call(
            &app,
            "GET",
            path,
            None,
            Some(&gh.org.admin),
            &[("x-org", org)],
        )
    };
    // Acting in the app's org, her admin rule reaches every note ...
    let listed = expect(in_org(&gh.org.id, "/notes")?, 200)?;
    assert_eq!(listed["notes"][0]["body"], json!("acme's"));
    // ... acting in Eve's, no decision of the app's org is made for her.
    for path in ["/notes", "/notes/n_any/access"] {
        assert_eq!(
            problem(in_org(&eve_org.id, path)?, 403)?.0,
            "forbidden",
            "{path}"
        );
    }
    Ok(())
}

#[test]
fn the_guards_verdicts_never_answer_for_the_client_component() -> Result<()> {
    let gh = gatehouse()?;
    // The guard without a service key asks whoami, which accepts any org's
    // key; the client component verifies keys of the app's org only.
    let (app, _dir) = guarded(&gh, &[("GUARD_SERVICE_KEY", "")], false)?;
    let eve_org = org(&gh.host, "eve@example.com", "evil")?;
    let foreign = role_key(&gh.host, &eve_org, "reader", &["reports:read"])?;
    expect(
        call(&app, "GET", "/reports/today", None, Some(&foreign), &[])?,
        200,
    )?;
    assert_eq!(
        problem(notes(&app, "GET", "/notes/me", None, Some(&foreign))?, 401)?.0,
        "unauthenticated"
    );
    Ok(())
}

#[test]
fn a_remembered_jwt_is_refused_once_it_expires() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[], true)?;
    let issued = expect(
        post(
            &gh.host,
            "/v1/tokens",
            &json!({"audience": [AUDIENCE], "ttl_seconds": 60}),
            Some(&gh.org.admin),
        )?,
        200,
    )?;
    let token = issued["access_token"].as_str().context("access_token")?;
    // Verified, then answered from the instance's memory ...
    for _ in 0..2 {
        expect(notes(&app, "GET", "/notes/me", None, Some(token))?, 200)?;
    }
    // ... but not past its exp and the leeway.
    app.advance_clock(60 + 61)?;
    assert_eq!(
        problem(notes(&app, "GET", "/notes/me", None, Some(token))?, 401)?.0,
        "unauthenticated"
    );
    Ok(())
}
