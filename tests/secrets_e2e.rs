//! Secrets end to end: an org's, a team's and a user's, sealed with the
//! org's data key; values read only with `secrets:read` (or by the user,
//! for their own), every read and refusal in the audit trail; a sealed
//! value moved to another org's row does not open; another org's secrets
//! are not found.

use anyhow::{Context, Result};
use gatehouse_tests::TestHost;
use gatehouse_tests::app::{
    Org, call, column, database, expect, join, org, post, problem, start_app, team,
};
use serde_json::{Value, json};

fn put_secret(
    host: &TestHost,
    token: &str,
    path: &str,
    value: &str,
) -> Result<gatehouse_tests::Reply> {
    call(
        host,
        "PUT",
        path,
        Some(&json!({"value": value, "description": "for tests"})),
        Some(token),
        &[],
    )
}

fn get(host: &TestHost, token: &str, path: &str) -> Result<gatehouse_tests::Reply> {
    call(host, "GET", path, None, Some(token), &[])
}

/// `token`'s user gets a role holding `secrets:read`.
fn grant_read(host: &TestHost, org: &Org, user: &str) -> Result<()> {
    let _ = post(
        host,
        "/v1/roles",
        &json!({"name": "secret-reader", "permissions": ["secrets:read"]}),
        Some(&org.admin),
    )?;
    let granted = call(
        host,
        "PUT",
        &format!("/v1/roles/secret-reader/members/{user}"),
        None,
        Some(&org.admin),
        &[],
    )?;
    assert!(
        matches!(granted.status, 200 | 201 | 204),
        "{}",
        granted.text()
    );
    Ok(())
}

fn audited(host: &TestHost, org: &Org, action: &str) -> Result<Vec<Value>> {
    let page = expect(
        get(
            host,
            &org.admin,
            &format!("/v1/orgs/{}/audit-events?action={action}", org.id),
        )?,
        200,
    )?;
    Ok(page["items"].as_array().context("items")?.clone())
}

#[test]
fn an_orgs_secret_is_listed_without_its_value_and_read_only_with_secrets_read() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let (bob, bob_id) = join(&host, &acme.admin, &acme.id, "bob@acme.test", "member", &[])?;
    let path = format!("/v1/orgs/{}/secrets/OPENAI_API_KEY", acme.id);
    let made = expect(put_secret(&host, &acme.admin, &path, "sk-live-123")?, 201)?;
    assert_eq!(
        (made["name"].as_str(), made["scope"].as_str()),
        (Some("OPENAI_API_KEY"), Some("org"))
    );
    assert!(!made.to_string().contains("sk-live-123"));
    expect(put_secret(&host, &acme.admin, &path, "sk-live-456")?, 200)?;
    // Stored sealed: the value is nowhere in the database.
    let sealed: String = database(&host)?.query_row(
        "SELECT sealed FROM secrets WHERE name = 'OPENAI_API_KEY'",
        [],
        |r| r.get(0),
    )?;
    assert!(!sealed.contains("sk-live"));

    // Listing: names and metadata, never a value; the org by id or by
    // handle, in any case.
    let listed = expect(
        get(&host, &acme.admin, &format!("/v1/orgs/{}/secrets", acme.id))?,
        200,
    )?;
    let by_handle = expect(get(&host, &acme.admin, "/v1/orgs/ACME/secrets")?, 200)?;
    assert_eq!(by_handle["items"], listed["items"]);
    assert_eq!(listed["items"][0]["name"], "OPENAI_API_KEY");
    assert!(!listed.to_string().contains("sk-live"));

    // An admin's role alone does not read values; neither does a member.
    for token in [&acme.admin, &bob] {
        let (code, _, _) = problem(get(&host, token, &path)?, 403)?;
        assert_eq!(code, "forbidden");
    }
    let denied = audited(&host, &acme, "secret.read_denied")?;
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert!(denied.iter().any(|e| e["actor_user_id"] == bob_id.as_str()));

    // With secrets:read, the value; every read in the audit trail.
    grant_read(&host, &acme, &bob_id)?;
    let read = get(&host, &bob, &path)?;
    assert_eq!(read.header("cache-control"), Some("no-store"));
    let read = expect(read, 200)?;
    assert_eq!(
        (read["value"].as_str(), read["encoding"].as_str()),
        (Some("sk-live-456"), Some("utf8"))
    );
    let reads = audited(&host, &acme, "secret.read")?;
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0]["actor_user_id"], bob_id.as_str());
    assert_eq!(audited(&host, &acme, "secret.write")?.len(), 2);

    // Members may not write or delete the org's.
    let (code, _, _) = problem(put_secret(&host, &bob, &path, "x")?, 403)?;
    assert_eq!(code, "forbidden");
    let deleted = call(&host, "DELETE", &path, None, Some(&acme.admin), &[])?;
    assert_eq!(deleted.status, 204);
    assert_eq!(problem(get(&host, &bob, &path)?, 404)?.0, "not_found");
    let bad = put_secret(
        &host,
        &acme.admin,
        &format!("/v1/orgs/{}/secrets/1bad", acme.id),
        "x",
    )?;
    assert_eq!(problem(bad, 422)?.2, "invalid_name");
    let empty = put_secret(&host, &acme.admin, &path, "")?;
    assert_eq!(problem(empty, 422)?.2, "invalid_length");
    let none = call(&host, "GET", &path, None, None, &[])?;
    assert_eq!(problem(none, 401)?.0, "unauthenticated");
    Ok(())
}

#[test]
fn a_sealed_value_moved_into_another_orgs_row_does_not_open() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let globex = org(&host, "gus@globex.test", "globex")?;
    grant_read(&host, &acme, &acme.admin_id)?;
    grant_read(&host, &globex, &globex.admin_id)?;
    expect(
        put_secret(
            &host,
            &acme.admin,
            &format!("/v1/orgs/{}/secrets/TOKEN", acme.id),
            "acme-secret",
        )?,
        201,
    )?;
    let theirs = format!("/v1/orgs/{}/secrets/TOKEN", globex.id);
    expect(
        put_secret(&host, &globex.admin, &theirs, "globex-secret")?,
        201,
    )?;
    // Another org's admin finds none of acme's.
    let across = get(
        &host,
        &globex.admin,
        &format!("/v1/orgs/{}/secrets/TOKEN", acme.id),
    )?;
    assert_eq!(problem(across, 404)?.0, "not_found");
    let across = get(
        &host,
        &globex.admin,
        &format!("/v1/orgs/{}/secrets", acme.id),
    )?;
    assert_eq!(problem(across, 404)?.0, "not_found");
    // Someone with the database copies acme's sealed value (and its key
    // version) into globex's row.
    let db = database(&host)?;
    db.execute(
        "UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE org_id = ?1 AND name = 'TOKEN'),
                            key_version = (SELECT key_version FROM secrets WHERE org_id = ?1 AND name = 'TOKEN')
         WHERE org_id = ?2 AND name = 'TOKEN'",
        [&acme.id, &globex.id],
    )?;
    let read = get(&host, &globex.admin, &theirs)?;
    assert_eq!(read.status, 500, "{}", read.text());
    assert!(!read.text().contains("acme-secret"));
    // Deleting an org deletes its data keys: its values no longer open.
    let deleted = call(
        &host,
        "DELETE",
        &format!("/v1/orgs/{}", acme.id),
        None,
        Some(&acme.admin),
        &[],
    )?;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    let keys: i64 = db.query_row(
        "SELECT COUNT(*) FROM org_data_keys WHERE org_id = ?1",
        [&acme.id],
        |r| r.get(0),
    )?;
    assert_eq!(keys, 0);
    Ok(())
}

#[test]
fn a_teams_and_a_users_secrets_are_theirs() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let eng = team(&host, &acme, "Eng", None)?;
    let (bob, bob_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "bob@acme.test",
        "member",
        &[&eng],
    )?;
    let (carol, carol_id) = join(
        &host,
        &acme.admin,
        &acme.id,
        "carol@acme.test",
        "member",
        &[],
    )?;
    grant_read(&host, &acme, &bob_id)?;
    grant_read(&host, &acme, &carol_id)?;
    let team_path = format!("/v1/orgs/{}/teams/{eng}/secrets/DEPLOY_TOKEN", acme.id);
    expect(
        put_secret(&host, &acme.admin, &team_path, "team-token")?,
        201,
    )?;
    // In the team with secrets:read: the value; outside it: refused.
    assert_eq!(
        expect(get(&host, &bob, &team_path)?, 200)?["value"],
        "team-token"
    );
    assert_eq!(
        problem(get(&host, &carol, &team_path)?, 403)?.0,
        "forbidden"
    );
    let unknown_team = format!("/v1/orgs/{}/teams/tm_nope/secrets/DEPLOY_TOKEN", acme.id);
    assert_eq!(
        problem(get(&host, &bob, &unknown_team)?, 404)?.0,
        "not_found"
    );

    // A user's own: theirs alone, no permission needed.
    expect(
        put_secret(&host, &carol, "/v1/me/secrets/GITHUB_PAT", "carol-pat")?,
        201,
    )?;
    assert_eq!(
        expect(get(&host, &carol, "/v1/me/secrets/GITHUB_PAT")?, 200)?["value"],
        "carol-pat"
    );
    assert_eq!(
        problem(get(&host, &bob, "/v1/me/secrets/GITHUB_PAT")?, 404)?.0,
        "not_found"
    );
    let mine = expect(get(&host, &carol, "/v1/me/secrets")?, 200)?;
    assert_eq!(mine["items"].as_array().context("items")?.len(), 1);
    assert_eq!(mine["items"][0]["scope_id"], carol_id.as_str());
    // Binary values travel as base64.
    let raw = call(
        &host,
        "PUT",
        "/v1/me/secrets/CERT",
        Some(&json!({"value": "AP8A/w==", "encoding": "base64"})),
        Some(&carol),
        &[],
    )?;
    expect(raw, 201)?;
    let cert = expect(get(&host, &carol, "/v1/me/secrets/CERT")?, 200)?;
    assert_eq!(
        (cert["value"].as_str(), cert["encoding"].as_str()),
        (Some("AP8A/w=="), Some("base64"))
    );
    Ok(())
}

const OPERATOR: &str = "operator-token-for-secrets-tests";
const NEW_MASTER: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn app(master: &str, previous: Option<&str>) -> gatehouse_tests::HostConfig {
    let mut config = gatehouse_tests::app::app_config();
    config.env.retain(|(k, _)| k != "SPIN_VARIABLE_MASTER_KEY");
    config
        .env
        .push(("SPIN_VARIABLE_MASTER_KEY".into(), master.into()));
    config
        .env
        .push(("SPIN_VARIABLE_OPERATOR_TOKEN".into(), OPERATOR.into()));
    if let Some(previous) = previous {
        config
            .env
            .push(("SPIN_VARIABLE_PREVIOUS_MASTER_KEY".into(), previous.into()));
    }
    config
}

fn operator_post(host: &TestHost, path: &str) -> Result<Value> {
    let auth = format!("Bearer {OPERATOR}");
    let reply = gatehouse_tests::send(
        "POST",
        &host.url(path),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        b"{}",
    )?;
    expect(reply, 200)
}

/// The key versions the org's values are sealed with, and its data keys.
fn versions(host: &TestHost, org: &Org) -> Result<(Vec<i64>, Vec<i64>)> {
    let sealed = column(
        host,
        "SELECT DISTINCT key_version FROM secrets WHERE org_id = ?1 ORDER BY 1",
        [&org.id],
    )?;
    let keys = column(
        host,
        "SELECT version FROM org_data_keys WHERE org_id = ?1 ORDER BY 1",
        [&org.id],
    )?;
    Ok((sealed, keys))
}

#[test]
fn data_key_and_master_key_rotations_keep_every_value_readable() -> Result<()> {
    let host = TestHost::start(app(gatehouse_tests::app::MASTER_KEY, None))?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    grant_read(&host, &acme, &acme.admin_id)?;
    let eng = team(&host, &acme, "Eng", None)?;
    let paths = [
        format!("/v1/orgs/{}/secrets/ONE", acme.id),
        format!("/v1/orgs/{}/teams/{eng}/secrets/TWO", acme.id),
        "/v1/me/secrets/THREE".to_string(),
    ];
    for (i, path) in paths.iter().enumerate() {
        expect(
            put_secret(&host, &acme.admin, path, &format!("value-{i}"))?,
            201,
        )?;
    }
    let read_all = |host: &TestHost| -> Result<()> {
        for (i, path) in paths.iter().enumerate() {
            let got = expect(get(host, &acme.admin, path)?, 200)?;
            assert_eq!(got["value"], format!("value-{i}"), "{path}");
        }
        Ok(())
    };
    // A new data key: old values open with theirs until the job seals
    // them again; a value written now uses the new one.
    let rotated = call(
        &host,
        "POST",
        &format!("/v1/orgs/{}/secrets/$rotate-key", acme.id),
        None,
        Some(&acme.admin),
        &[],
    )?;
    assert_eq!(expect(rotated, 202)?["key_version"], 2);
    assert_eq!(versions(&host, &acme)?, (vec![1], vec![1, 2]));
    read_all(&host)?;
    expect(
        put_secret(&host, &acme.admin, "/v1/me/secrets/FOUR", "value-4")?,
        201,
    )?;
    assert_eq!(versions(&host, &acme)?, (vec![1, 2], vec![1, 2]));
    operator_post(&host, "/v1/admin/jobs/$run")?;
    assert_eq!(versions(&host, &acme)?, (vec![2], vec![2]));
    read_all(&host)?;
    let member_rotates = {
        let (bob, _) = join(&host, &acme.admin, &acme.id, "bob@acme.test", "member", &[])?;
        call(
            &host,
            "POST",
            &format!("/v1/orgs/{}/secrets/$rotate-key", acme.id),
            None,
            Some(&bob),
            &[],
        )?
    };
    assert_eq!(problem(member_rotates, 403)?.0, "forbidden");

    // A new master key, the old one kept as previous: everything opens;
    // rewrapped, the old one is no longer needed.
    let host = host.restart(app(NEW_MASTER, Some(gatehouse_tests::app::MASTER_KEY)))?;
    read_all(&host)?;
    let rewrapped = operator_post(&host, "/v1/admin/secrets/$rewrap")?;
    assert_eq!(rewrapped["rewrapped"], 1);
    assert_eq!(
        operator_post(&host, "/v1/admin/secrets/$rewrap")?["rewrapped"],
        0
    );
    let host = host.restart(app(NEW_MASTER, None))?;
    read_all(&host)?;
    // Without the rewrap, the old master key's data keys would not open:
    // back on the old key alone, nothing does.
    let host = host.restart(app(gatehouse_tests::app::MASTER_KEY, None))?;
    assert_eq!(get(&host, &acme.admin, &paths[0])?.status, 500);
    let no_token = gatehouse_tests::send("POST", &host.url("/v1/admin/secrets/$rewrap"), &[], b"")?;
    assert_eq!(no_token.status, 401);
    Ok(())
}

#[test]
fn the_audit_trail_filters_by_actor_and_time_and_exports_json_lines() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let (bob, bob_id) = join(&host, &acme.admin, &acme.id, "bob@acme.test", "member", &[])?;
    let path = format!("/v1/orgs/{}/secrets/TOKEN", acme.id);
    expect(put_secret(&host, &acme.admin, &path, "v")?, 201)?;
    for _ in 0..3 {
        problem(get(&host, &bob, &path)?, 403)?;
    }
    let trail = |query: &str| -> Result<gatehouse_tests::Reply> {
        get(
            &host,
            &acme.admin,
            &format!("/v1/orgs/{}/audit-events{query}", acme.id),
        )
    };
    let bobs = expect(trail(&format!("?actor={bob_id}"))?, 200)?;
    let items = bobs["items"].as_array().context("items")?;
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|e| e["action"] == "secret.read_denied"));
    let now = items[0]["occurred_at"].as_i64().context("time")?;
    let before = expect(trail(&format!("?to={}", now - 3600))?, 200)?;
    assert!(before["items"].as_array().context("items")?.is_empty());
    let since = expect(
        trail(&format!("?from={}&action=secret.write", now - 3600))?,
        200,
    )?;
    assert_eq!(since["items"].as_array().context("items")?.len(), 1);
    // An export: JSON lines, a page at a time.
    let export = trail(&format!("?actor={bob_id}&format=jsonl&limit=2"))?;
    assert_eq!(export.status, 200);
    assert_eq!(export.header("content-type"), Some("application/x-ndjson"));
    let cursor = export
        .header("x-next-cursor")
        .context("next cursor")?
        .to_string();
    let lines: Vec<Value> = export
        .text()
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2);
    let rest = trail(&format!(
        "?actor={bob_id}&format=jsonl&limit=2&cursor={cursor}"
    ))?;
    assert_eq!(rest.text().lines().count(), 1);
    assert!(rest.header("x-next-cursor").is_none());
    assert_eq!(problem(trail("?from=yesterday")?, 400)?.0, "invalid_query");
    assert_eq!(problem(trail("?format=csv")?, 400)?.0, "invalid_query");
    Ok(())
}

/// Gatehouse's own tokens stand for their user on every component's
/// routes, these included: each verifies the issuer it is configured with.
#[test]
fn a_gatehouse_token_is_a_credential_for_secrets_and_billing_routes() -> Result<()> {
    let host = start_app()?;
    let acme = org(&host, "ada@acme.test", "acme")?;
    let issued = expect(
        call(
            &host,
            "POST",
            "/v1/tokens",
            Some(&json!({})),
            Some(&acme.admin),
            &[("x-org", "acme")],
        )?,
        200,
    )?;
    let jwt = issued["access_token"].as_str().context("access_token")?;
    let listed = get(&host, jwt, &format!("/v1/orgs/{}/secrets", acme.id))?;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let entitlements = get(&host, jwt, "/v1/entitlements")?;
    assert_eq!(entitlements.status, 200, "{}", entitlements.text());
    Ok(())
}
