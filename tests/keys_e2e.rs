//! API keys v2 through the built `keys` component: create → verify →
//! revoke, each failing state's code, rotation with a grace period, a
//! budget under concurrent verifies, the role-subset and inheritance
//! rules, keys authenticating requests, legacy import, validation,
//! credentials and the tenant boundary.
//!
//! Roles are set up as rows (the access component's routes manage them in
//! production); every fixture that changes what a cached credential holds
//! also replaces the holder's cache version, as the routes do.

use anyhow::{Context, Result};
use gatehouse_host::runtime_config::DEFAULT_KV_FILE;
use gatehouse_tests::TestHost;
use gatehouse_tests::app::{
    Org, call, column, concurrently, database as db, expect, join, org, post, signed_in, start_app,
};
use serde_json::{Value, json};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A role of the org with these permissions.
fn role(host: &TestHost, org_id: &str, name: &str, permissions: &[&str]) -> Result<()> {
    let perms = serde_json::to_string(permissions)?;
    db(host)?.execute(
        "INSERT INTO roles (org_id, role_id, name, permissions, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, 0)",
        rusqlite::params![org_id, format!("role_{name}_{org_id}"), name, perms],
    )?;
    Ok(())
}

/// Grants a role to a member, and makes their cached sessions re-read it.
fn grant_user(host: &TestHost, org_id: &str, user_id: &str, role_name: &str) -> Result<()> {
    db(host)?.execute(
        "INSERT INTO role_grants (org_id, role_id, subject_type, subject_id, created_at)
         SELECT org_id, role_id, 'user', ?3, 0 FROM roles WHERE org_id = ?1 AND name = ?2",
        rusqlite::params![org_id, role_name, user_id],
    )?;
    let kv = rusqlite::Connection::open(host.state.path().join(DEFAULT_KV_FILE))?;
    kv.busy_timeout(std::time::Duration::from_secs(5))?;
    kv.execute(
        "INSERT INTO spin_key_value (store, key, value) VALUES ('default', ?1, ?2)
         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
        rusqlite::params![
            format!("identity:user-version:{user_id}"),
            fixture_version().into_bytes()
        ],
    )?;
    Ok(())
}

/// A cache version no other write has used.
fn fixture_version() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("fixture-{nanos}")
}

/// A member of `org` (invited and accepted), returns (token, user id).
fn member(host: &TestHost, org: &Org, email: &str) -> Result<(String, String)> {
    join(host, &org.admin, &org.id, email, "member", &[])
}

fn create(host: &TestHost, token: &str, body: Value) -> Result<Value> {
    expect(post(host, "/v1/keys", &body, Some(token))?, 201)
}

fn verify(host: &TestHost, token: &str, key: &str) -> Result<Value> {
    expect(
        post(host, "/v1/keys/verify", &json!({"key": key}), Some(token))?,
        200,
    )
}

fn secret(created: &Value) -> Result<String> {
    Ok(created["key"].as_str().context("key")?.to_string())
}

#[test]
fn create_verify_update_and_revoke_journey() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    role(&host, &acme.id, "reader", &["docs:read"])?;
    role(&host, &acme.id, "writer", &["docs:read", "docs:write"])?;

    let created = create(
        &host,
        &acme.admin,
        json!({"name": "ci", "roles": ["reader", "writer"], "metadata": {"team": "build"}, "prefix": "acme_live"}),
    )?;
    let key = secret(&created)?;
    assert!(
        key.starts_with("acme_live_") && key.len() == "acme_live_".len() + 43,
        "{key}"
    );
    assert_eq!(created["start"], json!(&key[..14]));
    assert_eq!(created["roles"], json!(["reader", "writer"]));
    assert_eq!(created["status"], "active");
    // Only the digest and the first characters are stored.
    let stored: Vec<String> = column(
        &host,
        "SELECT digest || '|' || start FROM api_key_secrets",
        [],
    )?;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&key[14..]), "no plaintext at rest");

    let verdict = verify(&host, &acme.admin, &key)?;
    assert_eq!(
        (verdict["valid"].clone(), verdict["code"].clone()),
        (json!(true), json!("valid"))
    );
    assert_eq!(verdict["key_id"], created["id"]);
    assert_eq!(verdict["org"], json!(acme.id));
    assert_eq!(verdict["owner"], json!(acme.admin_id));
    assert_eq!(verdict["permissions"], json!(["docs:read", "docs:write"]));
    assert_eq!(verdict["metadata"], json!({"team": "build"}));
    assert!(verdict["remaining"].is_null() && verdict["ratelimit"].is_null());

    let listed = expect(
        call(&host, "GET", "/v1/keys", None, Some(&acme.admin), &[])?,
        200,
    )?;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert!(
        listed["items"][0].get("key").is_none(),
        "a listing never shows a secret"
    );
    let patched = expect(
        call(
            &host,
            "PATCH",
            "/v1/keys/ci",
            Some(&json!({"metadata": null, "remaining": 5})),
            Some(&acme.admin),
            &[],
        )?,
        200,
    )?;
    assert_eq!(
        (patched["metadata"].clone(), patched["remaining"].clone()),
        (Value::Null, json!(5))
    );
    assert_eq!(
        verify(&host, &acme.admin, &key)?["remaining"],
        4,
        "the change shows at once"
    );

    // Revoked: the very next verify says so, though the last one was cached.
    expect(
        call(&host, "DELETE", "/v1/keys/ci", None, Some(&acme.admin), &[])?,
        204,
    )?;
    let verdict = verify(&host, &acme.admin, &key)?;
    assert_eq!(
        (verdict["valid"].clone(), verdict["code"].clone()),
        (json!(false), json!("revoked"))
    );
    assert_eq!(
        call(&host, "GET", "/v1/keys/ci", None, Some(&acme.admin), &[])?.status,
        404
    );
    let revoked = expect(
        call(
            &host,
            "GET",
            "/v1/keys?status=revoked",
            None,
            Some(&acme.admin),
            &[],
        )?,
        200,
    )?;
    assert_eq!(revoked["items"][0]["status"], "revoked", "kept for audit");
    // The name is free again.
    create(&host, &acme.admin, json!({"name": "ci"}))?;
    Ok(())
}

#[test]
fn each_failing_state_has_its_own_code() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let t = now();
    let unknown = verify(&host, &acme.admin, &format!("gk_{}", "A".repeat(43)))?;
    assert_eq!(
        (unknown["valid"].clone(), unknown["code"].clone()),
        (json!(false), json!("not_found"))
    );
    assert!(unknown["key_id"].is_null());

    let expired = secret(&create(
        &host,
        &acme.admin,
        json!({"name": "old", "expires_at": t - 10}),
    )?)?;
    assert_eq!(verify(&host, &acme.admin, &expired)?["code"], "expired");
    let early = secret(&create(
        &host,
        &acme.admin,
        json!({"name": "early", "not_before": t + 3600}),
    )?)?;
    assert_eq!(verify(&host, &acme.admin, &early)?["code"], "not_yet_valid");

    let budget = secret(&create(
        &host,
        &acme.admin,
        json!({"name": "once", "remaining": 1}),
    )?)?;
    let first = verify(&host, &acme.admin, &budget)?;
    assert_eq!(
        (first["code"].clone(), first["remaining"].clone()),
        (json!("valid"), json!(0))
    );
    let second = verify(&host, &acme.admin, &budget)?;
    assert_eq!(
        (
            second["valid"].clone(),
            second["code"].clone(),
            second["remaining"].clone()
        ),
        (json!(false), json!("usage_exceeded"), json!(0))
    );

    let limited = secret(&create(
        &host,
        &acme.admin,
        json!({"name": "limited", "ratelimit": {"limit": 2, "window_seconds": 3600}}),
    )?)?;
    let a = verify(&host, &acme.admin, &limited)?;
    assert_eq!(
        (
            a["code"].clone(),
            a["ratelimit"]["limit"].clone(),
            a["ratelimit"]["remaining"].clone()
        ),
        (json!("valid"), json!(2), json!(1))
    );
    assert_eq!(
        verify(&host, &acme.admin, &limited)?["ratelimit"]["remaining"],
        0
    );
    let c = verify(&host, &acme.admin, &limited)?;
    assert_eq!(
        (c["valid"].clone(), c["code"].clone()),
        (json!(false), json!("rate_limited"))
    );
    assert!(c["ratelimit"]["reset"].as_i64().unwrap_or_default() > t);

    // A rate-limited verify does not spend a budget.
    let both = secret(&create(
        &host,
        &acme.admin,
        json!({"name": "both", "remaining": 5, "ratelimit": {"limit": 1, "window_seconds": 3600}}),
    )?)?;
    assert_eq!(verify(&host, &acme.admin, &both)?["remaining"], 4);
    assert_eq!(verify(&host, &acme.admin, &both)?["code"], "rate_limited");
    let left: i64 = db(&host)?.query_row(
        "SELECT remaining FROM api_keys WHERE name = 'both'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(left, 4);
    Ok(())
}

#[test]
fn rotation_keeps_the_old_secret_for_the_grace_period_then_stops_it() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let old = secret(&create(&host, &acme.admin, json!({"name": "svc"}))?)?;
    assert_eq!(verify(&host, &acme.admin, &old)?["code"], "valid");

    let rotated = expect(
        post(
            &host,
            "/v1/keys/svc/$rotate",
            &json!({"grace_seconds": 2}),
            Some(&acme.admin),
        )?,
        200,
    )?;
    let new = rotated["key"].as_str().context("key")?.to_string();
    assert!(new.starts_with("gk_") && new != old);
    assert_eq!(verify(&host, &acme.admin, &new)?["code"], "valid");
    let during = verify(&host, &acme.admin, &old)?;
    assert_eq!(
        (during["code"].clone(), during["key_id"].clone()),
        (json!("valid"), rotated["id"].clone())
    );
    // Past the grace period the old secret stops, cached or not.
    std::thread::sleep(std::time::Duration::from_millis(3100));
    assert_eq!(verify(&host, &acme.admin, &old)?["code"], "expired");
    assert_eq!(verify(&host, &acme.admin, &new)?["code"], "valid");

    // Without a grace period the current secret stops at once.
    let rotated = expect(
        post(&host, "/v1/keys/svc/$rotate", &json!({}), Some(&acme.admin))?,
        200,
    )?;
    assert_eq!(verify(&host, &acme.admin, &new)?["code"], "expired");
    assert_eq!(
        verify(
            &host,
            &acme.admin,
            rotated["key"].as_str().unwrap_or_default()
        )?["code"],
        "valid"
    );
    let too_long = post(
        &host,
        "/v1/keys/svc/$rotate",
        &json!({"grace_seconds": 99_999_999}),
        Some(&acme.admin),
    )?;
    assert_eq!(too_long.status, 422);
    Ok(())
}

#[test]
fn a_budget_never_goes_below_zero_under_concurrent_verifies() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let key = secret(&create(
        &host,
        &acme.admin,
        json!({"name": "metered", "remaining": 20}),
    )?)?;
    let verdicts: Vec<Value> = concurrently(8, || -> Result<Vec<Value>> {
        (0..5).map(|_| verify(&host, &acme.admin, &key)).collect()
    })?
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(verdicts.len(), 40);
    let valid = verdicts.iter().filter(|v| v["code"] == "valid").count();
    let exhausted = verdicts
        .iter()
        .filter(|v| v["code"] == "usage_exceeded")
        .count();
    assert_eq!((valid, exhausted), (20, 20));
    let mut left: Vec<i64> = verdicts
        .iter()
        .filter(|v| v["code"] == "valid")
        .filter_map(|v| v["remaining"].as_i64())
        .collect();
    left.sort();
    assert_eq!(
        left,
        (0..20).collect::<Vec<_>>(),
        "each use saw its own count"
    );
    let stored: i64 = db(&host)?.query_row(
        "SELECT remaining FROM api_keys WHERE name = 'metered'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(stored, 0);
    Ok(())
}

#[test]
fn a_keys_roles_are_a_subset_of_its_creators_and_only_admins_make_inheriting_keys() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    role(&host, &acme.id, "reader", &["docs:read"])?;
    role(&host, &acme.id, "writer", &["docs:read", "docs:write"])?;
    let (bob, bob_id) = member(&host, &acme, "bob@example.com")?;
    grant_user(&host, &acme.id, &bob_id, "reader")?;

    let mine = create(
        &host,
        &bob,
        json!({"name": "bob-reader", "roles": ["reader"]}),
    )?;
    assert_eq!(mine["owner_user_id"], json!(bob_id));
    let wider = post(
        &host,
        "/v1/keys",
        &json!({"name": "bob-writer", "roles": ["writer"]}),
        Some(&bob),
    )?;
    assert_eq!(
        (wider.status, wider.json()?["code"].clone()),
        (403, json!("forbidden"))
    );
    let unknown_role = post(
        &host,
        "/v1/keys",
        &json!({"name": "x", "roles": ["nope"]}),
        Some(&bob),
    )?;
    assert_eq!(
        (
            unknown_role.status,
            unknown_role.json()?["errors"][0]["pointer"].clone()
        ),
        (422, json!("/roles/0"))
    );
    assert_eq!(
        post(
            &host,
            "/v1/keys",
            &json!({"name": "bob-inherits", "inherit": true}),
            Some(&bob)
        )?
        .status,
        403
    );
    assert_eq!(
        call(
            &host,
            "PUT",
            "/v1/keys/bob-reader/roles/writer",
            None,
            Some(&bob),
            &[]
        )?
        .status,
        403
    );

    // Admins grant any role; the key's verification follows its grants.
    let admin_key = secret(&create(&host, &acme.admin, json!({"name": "svc"}))?)?;
    assert_eq!(verify(&host, &acme.admin, &admin_key)?["roles"], json!([]));
    expect(
        call(
            &host,
            "PUT",
            "/v1/keys/svc/roles/writer",
            None,
            Some(&acme.admin),
            &[],
        )?,
        204,
    )?;
    assert_eq!(
        verify(&host, &acme.admin, &admin_key)?["roles"],
        json!(["writer"])
    );
    expect(
        call(
            &host,
            "GET",
            "/v1/keys/svc/roles/writer",
            None,
            Some(&acme.admin),
            &[],
        )?,
        200,
    )?;
    expect(
        call(
            &host,
            "DELETE",
            "/v1/keys/svc/roles/writer",
            None,
            Some(&acme.admin),
            &[],
        )?,
        204,
    )?;
    assert_eq!(
        call(
            &host,
            "GET",
            "/v1/keys/svc/roles/writer",
            None,
            Some(&acme.admin),
            &[]
        )?
        .status,
        404
    );
    assert_eq!(
        verify(&host, &acme.admin, &admin_key)?["permissions"],
        json!([])
    );
    assert_eq!(
        call(
            &host,
            "DELETE",
            "/v1/keys/svc/roles/writer",
            None,
            Some(&acme.admin),
            &[]
        )?
        .status,
        404
    );

    // An inheriting key holds its owner's permissions, live.
    grant_user(&host, &acme.id, &acme.admin_id, "reader")?;
    let inheriting = secret(&create(
        &host,
        &acme.admin,
        json!({"name": "mirror", "inherit": true}),
    )?)?;
    let created_roles = post(
        &host,
        "/v1/keys",
        &json!({"name": "both", "inherit": true, "roles": ["reader"]}),
        Some(&acme.admin),
    )?;
    assert_eq!(
        created_roles.status, 422,
        "an inheriting key has no roles of its own"
    );
    assert_eq!(
        verify(&host, &acme.admin, &inheriting)?["permissions"],
        json!(["docs:read"])
    );
    grant_user(&host, &acme.id, &acme.admin_id, "writer")?;
    assert_eq!(
        verify(&host, &acme.admin, &inheriting)?["permissions"],
        json!(["docs:read", "docs:write"])
    );

    // Members see and manage only their own keys.
    let listed = expect(call(&host, "GET", "/v1/keys", None, Some(&bob), &[])?, 200)?;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert_eq!(names, vec!["bob-reader"]);
    assert_eq!(
        call(&host, "GET", "/v1/keys/svc", None, Some(&bob), &[])?.status,
        404
    );
    assert_eq!(
        call(&host, "DELETE", "/v1/keys/svc", None, Some(&bob), &[])?.status,
        404
    );
    assert_eq!(
        post(
            &host,
            "/v1/keys/verify",
            &json!({"key": admin_key}),
            Some(&bob)
        )?
        .status,
        403,
        "verifying takes keys:verify"
    );
    Ok(())
}

#[test]
fn api_keys_authenticate_requests_with_their_own_rights() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    role(&host, &acme.id, "verifier", &["keys:verify"])?;
    let verifier = secret(&create(
        &host,
        &acme.admin,
        json!({"name": "gateway", "roles": ["verifier"]}),
    )?)?;
    let plain = secret(&create(&host, &acme.admin, json!({"name": "plain"}))?)?;

    let whoami = expect(
        call(&host, "GET", "/v1/auth/whoami", None, Some(&verifier), &[])?,
        200,
    )?;
    assert_eq!(whoami["subject"]["type"], "api_key");
    assert_eq!(whoami["subject"]["owner_user_id"], json!(acme.admin_id));
    assert_eq!(
        (whoami["org_id"].clone(), whoami["credential"].clone()),
        (json!(acme.id), json!("api_key"))
    );
    assert_eq!(whoami["permissions"], json!(["keys:verify"]));
    let other_org = call(
        &host,
        "GET",
        "/v1/auth/whoami",
        None,
        Some(&verifier),
        &[("x-org", "globex")],
    )?;
    assert_eq!(other_org.status, 404);
    expect(
        call(
            &host,
            "GET",
            "/v1/auth/whoami",
            None,
            Some(&verifier),
            &[("x-org", "acme")],
        )?,
        200,
    )?;

    // A service holding keys:verify checks its callers' keys with its own key.
    assert_eq!(verify(&host, &verifier, &plain)?["code"], "valid");
    assert_eq!(
        post(
            &host,
            "/v1/keys/verify",
            &json!({"key": plain}),
            Some(&plain)
        )?
        .status,
        403
    );
    expect(
        call(
            &host,
            "DELETE",
            "/v1/keys/gateway",
            None,
            Some(&acme.admin),
            &[],
        )?,
        204,
    )?;
    let revoked = post(
        &host,
        "/v1/keys/verify",
        &json!({"key": plain}),
        Some(&verifier),
    )?;
    assert_eq!(
        (revoked.status, revoked.header("www-authenticate")),
        (401, Some("Bearer"))
    );

    // A key used as a credential counts against its limits too.
    let limited = secret(&create(
        &host,
        &acme.admin,
        json!({"name": "limited", "ratelimit": {"limit": 1, "window_seconds": 3600}}),
    )?)?;
    expect(
        call(&host, "GET", "/v1/auth/whoami", None, Some(&limited), &[])?,
        200,
    )?;
    let over = call(&host, "GET", "/v1/auth/whoami", None, Some(&limited), &[])?;
    assert_eq!(
        (over.status, over.header("retry-after").is_some()),
        (429, true)
    );
    Ok(())
}

#[test]
fn legacy_keys_are_imported_by_hash_and_keep_working() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let legacy = "sk_live_51HxQ2eLegacyKeyFromTheOldSystem000000";
    let hash = identity_core::token::digest(legacy);
    let imported = expect(
        post(
            &host,
            "/v1/keys/$import",
            &json!({"name": "old-client", "hash": hash, "start": "sk_live_51"}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    assert_eq!(imported["start"], "sk_live_51");
    assert!(imported.get("key").is_none());
    let verdict = verify(&host, &acme.admin, legacy)?;
    assert_eq!(
        (verdict["code"].clone(), verdict["name"].clone()),
        (json!("valid"), json!("old-client"))
    );
    let again = post(
        &host,
        "/v1/keys/$import",
        &json!({"name": "dup", "hash": hash, "start": "sk"}),
        Some(&acme.admin),
    )?;
    assert_eq!(again.status, 409);
    let bad = post(
        &host,
        "/v1/keys/$import",
        &json!({"name": "bad", "hash": "abc", "start": ""}),
        Some(&acme.admin),
    )?;
    assert_eq!(bad.status, 422);
    let (bob, _) = member(&host, &acme, "bob@example.com")?;
    let refused = post(
        &host,
        "/v1/keys/$import",
        &json!({"name": "b", "hash": "0".repeat(64), "start": "x"}),
        Some(&bob),
    )?;
    assert_eq!(refused.status, 403);
    Ok(())
}

#[test]
fn key_routes_require_credentials_an_org_and_valid_input() -> Result<()> {
    let host = start_app()?;
    for (method, path) in [
        ("POST", "/v1/keys"),
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys/verify"),
        ("GET", "/v1/keys/x"),
        ("POST", "/v1/keys/x/$rotate"),
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
            Some(&format!("gk_{}", "B".repeat(43))),
            &[],
        )?;
        assert_eq!(forged.status, 401, "{method} {path}");
    }
    // Signed in but in no org: keys need one.
    let loner = signed_in(&host, "loner@example.com")?;
    assert_eq!(
        post(&host, "/v1/keys", &json!({"name": "k"}), Some(&loner))?.status,
        403
    );

    let acme = org(&host, "ada@example.com", "acme")?;
    for (body, pointer) in [
        (json!({"name": ""}), "/name"),
        (json!({"name": "has space"}), "/name"),
        (json!({"name": "k", "prefix": "ghs"}), "/prefix"),
        (json!({"name": "k", "prefix": "Upper"}), "/prefix"),
        (json!({"name": "k", "remaining": -1}), "/remaining"),
        (
            json!({"name": "k", "ratelimit": {"limit": 0, "window_seconds": 60}}),
            "/ratelimit/limit",
        ),
        (
            json!({"name": "k", "ratelimit": {"limit": 5, "window_seconds": 0}}),
            "/ratelimit/window_seconds",
        ),
        (
            json!({"name": "k", "not_before": 200, "expires_at": 100}),
            "/not_before",
        ),
        (json!({"name": "k", "metadata": [1]}), "/metadata"),
        (json!({"name": "k", "owner": "x"}), "/owner"),
    ] {
        let reply = post(&host, "/v1/keys", &body, Some(&acme.admin))?;
        assert_eq!(
            (reply.status, reply.json()?["errors"][0]["pointer"].clone()),
            (422, json!(pointer)),
            "{body}"
        );
    }
    create(&host, &acme.admin, json!({"name": "k"}))?;
    let taken = post(&host, "/v1/keys", &json!({"name": "k"}), Some(&acme.admin))?;
    assert_eq!(taken.status, 409);
    assert_eq!(
        post(
            &host,
            "/v1/keys/verify",
            &json!({"key": ""}),
            Some(&acme.admin)
        )?
        .status,
        422
    );
    assert_eq!(
        post(&host, "/v1/keys/verify", &json!({}), Some(&acme.admin))?.status,
        422
    );
    let wrong = call(&host, "PUT", "/v1/keys/k", None, Some(&acme.admin), &[])?;
    assert_eq!(
        (wrong.status, wrong.header("allow")),
        (405, Some("GET, PATCH, DELETE"))
    );
    // No idempotency record keeps a secret: a retry is refused by name instead.
    let idem = [("idempotency-key", "make-k2")];
    expect(
        call(
            &host,
            "POST",
            "/v1/keys",
            Some(&json!({"name": "k2"})),
            Some(&acme.admin),
            &idem,
        )?,
        201,
    )?;
    let retry = call(
        &host,
        "POST",
        "/v1/keys",
        Some(&json!({"name": "k2"})),
        Some(&acme.admin),
        &idem,
    )?;
    assert_eq!(
        (retry.status, retry.header("idempotent-replayed")),
        (409, None)
    );
    let stored: i64 =
        db(&host)?.query_row("SELECT COUNT(*) FROM idempotency_keys", [], |r| r.get(0))?;
    assert_eq!(stored, 0, "no response holding a secret is stored");
    for (body, pointer) in [
        (json!({"name": ".."}), "/name"),
        (json!({"name": "k", "prefix": "ghs_live"}), "/prefix"),
    ] {
        let reply = post(&host, "/v1/keys", &body, Some(&acme.admin))?;
        assert_eq!(
            (reply.status, reply.json()?["errors"][0]["pointer"].clone()),
            (422, json!(pointer)),
            "{body}"
        );
    }
    Ok(())
}

#[test]
fn another_orgs_keys_are_unknown_and_untouched() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let globex = org(&host, "gil@example.com", "globex")?;
    let theirs = secret(&create(
        &host,
        &globex.admin,
        json!({"name": "prod", "remaining": 3}),
    )?)?;

    let verdict = verify(&host, &acme.admin, &theirs)?;
    assert_eq!(
        (verdict["valid"].clone(), verdict["code"].clone()),
        (json!(false), json!("not_found"))
    );
    assert!(
        verdict["key_id"].is_null() && verdict["org"].is_null(),
        "nothing about the key leaks"
    );
    for (method, path, body) in [
        ("GET", "/v1/keys/prod", None),
        ("PATCH", "/v1/keys/prod", Some(json!({"remaining": 100}))),
        ("DELETE", "/v1/keys/prod", None),
        ("POST", "/v1/keys/prod/$rotate", Some(json!({}))),
        ("PUT", "/v1/keys/prod/roles/admin", None),
        ("GET", "/v1/keys/prod/roles/admin", None),
        ("DELETE", "/v1/keys/prod/roles/admin", None),
    ] {
        let reply = call(&host, method, path, body.as_ref(), Some(&acme.admin), &[])?;
        assert_eq!(reply.status, 404, "{method} {path}");
    }
    let listed = expect(
        call(&host, "GET", "/v1/keys", None, Some(&acme.admin), &[])?,
        200,
    )?;
    assert_eq!(listed["items"], json!([]));
    // Untouched: the budget was not spent by the other org's verify.
    let own = verify(&host, &globex.admin, &theirs)?;
    assert_eq!(
        (own["code"].clone(), own["remaining"].clone()),
        (json!("valid"), json!(2))
    );
    // Deleting an org ends its keys at once.
    expect(
        call(
            &host,
            "DELETE",
            "/v1/orgs/globex",
            None,
            Some(&globex.admin),
            &[],
        )?,
        204,
    )?;
    let whoami = call(&host, "GET", "/v1/auth/whoami", None, Some(&theirs), &[])?;
    assert_eq!(whoami.status, 401);
    Ok(())
}

#[test]
fn api_keys_read_their_org_through_the_orgs_routes_and_nothing_more() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let globex = org(&host, "gil@example.com", "globex")?;
    let team = expect(
        post(
            &host,
            "/v1/orgs/acme/teams",
            &json!({"name": "Core"}),
            Some(&acme.admin),
        )?,
        201,
    )?;
    let key = secret(&create(&host, &acme.admin, json!({"name": "reader"}))?)?;
    let k = Some(key.as_str());

    let listed = expect(call(&host, "GET", "/v1/orgs", None, k, &[])?, 200)?;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(ids, vec![acme.id.as_str()]);
    assert_eq!(
        expect(call(&host, "GET", "/v1/orgs/acme", None, k, &[])?, 200)?["role"],
        "member"
    );
    expect(
        call(
            &host,
            "GET",
            &format!("/v1/orgs/{}/members", acme.id),
            None,
            k,
            &[],
        )?,
        200,
    )?;
    let teams = expect(
        call(&host, "GET", "/v1/orgs/acme/teams", None, k, &[])?,
        200,
    )?;
    assert_eq!(teams["items"][0]["id"], team["id"]);
    // Reads only, its own org only, and nothing that acts for a person.
    assert_eq!(
        call(
            &host,
            "PATCH",
            "/v1/orgs/acme",
            Some(&json!({"name": "x"})),
            k,
            &[]
        )?
        .status,
        403
    );
    assert_eq!(
        post(&host, "/v1/orgs/acme/teams", &json!({"name": "X"}), k)?.status,
        403
    );
    assert_eq!(
        call(&host, "GET", "/v1/orgs/globex", None, k, &[])?.status,
        404
    );
    assert_eq!(
        call(
            &host,
            "GET",
            &format!("/v1/orgs/{}/teams", globex.id),
            None,
            k,
            &[]
        )?
        .status,
        404
    );
    assert_eq!(
        post(
            &host,
            "/v1/orgs",
            &json!({"name": "New", "handle": "newco"}),
            k
        )?
        .status,
        403
    );
    assert_eq!(
        call(&host, "GET", "/v1/me/preferences", None, k, &[])?.status,
        403
    );
    let leave = call(
        &host,
        "DELETE",
        &format!("/v1/orgs/acme/members/{}", acme.admin_id),
        None,
        k,
        &[],
    )?;
    assert_eq!(leave.status, 403, "a key cannot make its owner leave");
    expect(
        call(&host, "GET", "/v1/orgs/acme", None, Some(&acme.admin), &[])?,
        200,
    )?;
    // Revoked: out at once.
    expect(
        call(
            &host,
            "DELETE",
            "/v1/keys/reader",
            None,
            Some(&acme.admin),
            &[],
        )?,
        204,
    )?;
    assert_eq!(
        call(&host, "GET", "/v1/orgs/acme", None, k, &[])?.status,
        401
    );
    Ok(())
}

#[test]
fn a_key_is_never_more_than_its_owner_and_never_manages_itself() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    role(&host, &acme.id, "billing", &["billing:write"])?;
    let (bob, bob_id) = member(&host, &acme, "bob@example.com")?;
    grant_user(&host, &acme.id, &bob_id, "billing")?;
    let bobkey = secret(&create(
        &host,
        &bob,
        json!({"name": "bobkey", "roles": ["billing"], "remaining": 100}),
    )?)?;
    assert_eq!(
        verify(&host, &acme.admin, &bobkey)?["permissions"],
        json!(["billing:write"])
    );

    // A key without keys:manage manages no keys, itself included.
    let k = Some(bobkey.as_str());
    assert_eq!(
        call(
            &host,
            "PATCH",
            "/v1/keys/bobkey",
            Some(&json!({"remaining": null})),
            k,
            &[]
        )?
        .status,
        404
    );
    assert_eq!(
        post(&host, "/v1/keys/bobkey/$rotate", &json!({}), k)?.status,
        404
    );
    assert_eq!(
        post(&host, "/v1/keys", &json!({"name": "minted"}), k)?.status,
        403
    );
    // Even with keys:manage it cannot touch itself.
    role(&host, &acme.id, "keymaster", &["keys:manage"])?;
    let master = secret(&create(
        &host,
        &acme.admin,
        json!({"name": "master", "roles": ["keymaster"], "remaining": 5}),
    )?)?;
    assert_eq!(
        call(
            &host,
            "PATCH",
            "/v1/keys/master",
            Some(&json!({"remaining": null})),
            Some(&master),
            &[]
        )?
        .status,
        404
    );
    expect(
        call(&host, "GET", "/v1/keys/bobkey", None, Some(&master), &[])?,
        200,
    )?;

    // The owner loses the role: the key loses it on its next verify.
    db(&host)?.execute(
        "DELETE FROM role_grants WHERE subject_type = 'user' AND subject_id = ?1",
        [&bob_id],
    )?;
    grant_user(&host, &acme.id, &bob_id, "nothing-matches")?;
    assert_eq!(
        verify(&host, &acme.admin, &bobkey)?["permissions"],
        json!([])
    );
    // The owner leaves the org: the key stops at once.
    expect(
        call(
            &host,
            "DELETE",
            &format!("/v1/orgs/acme/members/{bob_id}"),
            None,
            Some(&acme.admin),
            &[],
        )?,
        204,
    )?;
    let verdict = verify(&host, &acme.admin, &bobkey)?;
    assert_eq!(
        (verdict["valid"].clone(), verdict["code"].clone()),
        (json!(false), json!("revoked"))
    );
    assert_eq!(
        call(&host, "GET", "/v1/auth/whoami", None, Some(&bobkey), &[])?.status,
        401
    );
    drop(bob);
    Ok(())
}

#[test]
fn concurrent_rotations_leave_one_current_secret() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    create(&host, &acme.admin, json!({"name": "svc"}))?;
    let statuses = concurrently(4, || {
        post(
            &host,
            "/v1/keys/svc/$rotate",
            &json!({"grace_seconds": 600}),
            Some(&acme.admin),
        )
        .map(|r| r.status)
    })?;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200));
    let current: i64 = db(&host)?.query_row(
        "SELECT COUNT(*) FROM api_key_secrets WHERE expires_at IS NULL",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(current, 1, "exactly one secret without an end");
    Ok(())
}
