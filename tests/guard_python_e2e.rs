//! The Gatehouse guard in front of a handler written in Python:
//! tests/guarded-py (the built `guard` middleware before app.py, built by
//! scripts/test with componentize-py into a `wasi:http@0.3.0` component)
//! runs on the local host beside Gatehouse, as tests/guard_e2e.rs runs the
//! Rust echo. The Python app serves each caller their own data by the
//! principal the guard verified: `GET /py/whoami` and `GET /py/notes`.

use anyhow::{Context, Result};
use gatehouse_tests::app::{call, expect, grant, org, problem, role_key};
use gatehouse_tests::guarded::{self, Gatehouse, gatehouse, jwt, subject_id};
use gatehouse_tests::{Reply, TempDir, TestHost};
use serde_json::{Value, json};

/// The audience the Python app accepts (its spin.toml's default).
const AUDIENCE: &str = "guarded-py";

/// The Python app behind the guard, its `SPIN_VARIABLE_*` set from `vars`
/// beside `gatehouse_url`, the issuer and the service key.
fn guarded(gh: &Gatehouse, vars: &[(&str, &str)]) -> Result<(TestHost, TempDir)> {
    guarded::app("tests/guarded-py/spin.toml", gh, vars, false)
}

/// `GET path` on the Python app with `credential` and `extra` headers.
fn py(
    app: &TestHost,
    path: &str,
    credential: Option<&str>,
    extra: &[(&str, &str)],
) -> Result<Reply> {
    call(app, "GET", path, None, credential, extra)
}

/// What the Python app answers at `GET /py/whoami` for `credential`.
fn whoami(app: &TestHost, credential: &str) -> Result<Value> {
    let reply = py(app, "/py/whoami", Some(credential), &[])?;
    assert_eq!(reply.header("content-type"), Some("application/json"));
    expect(reply, 200)
}

#[test]
fn without_a_credential_the_python_app_is_not_reached() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[])?;

    for path in ["/py/whoami", "/py/notes", "/py/nope"] {
        let none = py(&app, path, None, &[("x-gatehouse-subject", "usr_forged")])?;
        assert_eq!(none.header("www-authenticate"), Some("Bearer"), "{path}");
        assert_eq!(problem(none, 401)?.0, "unauthenticated", "{path}");
    }
    for bad in ["gk_not_a_key", "gst_not_a_session", "a.b.c"] {
        let reply = py(&app, "/py/whoami", Some(bad), &[])?;
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer error=\"invalid_token\"")
        );
        assert_eq!(problem(reply, 401)?.0, "unauthenticated", "{bad}");
    }
    Ok(())
}

#[test]
fn forged_principal_headers_from_the_client_never_reach_the_python_app() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[])?;
    let key = role_key(&gh.host, &gh.org, "reader", &["notes:read"])?;

    let reply = py(
        &app,
        "/py/whoami",
        Some(&key),
        &[
            ("x-gatehouse-subject", "usr_forged"),
            ("X-Gatehouse-Org", "org_forged"),
            ("x-gatehouse-roles", "admin"),
            ("X-Gatehouse-Permissions", "everything"),
            ("x-gatehouse-credential", "session"),
        ],
    )?;
    assert_eq!(
        expect(reply, 200)?,
        json!({
            "subject": subject_id(&gh, &key)?,
            "org": gh.org.id,
            "roles": ["reader"],
            "permissions": ["notes:read"],
            "credential": "api_key",
            "language": "python",
        })
    );
    // The forged subject gets no notes of its own either.
    let notes = expect(
        py(
            &app,
            "/py/notes",
            Some(&key),
            &[("x-gatehouse-subject", "usr_forged")],
        )?,
        200,
    )?;
    assert_eq!(notes["owner"], json!(subject_id(&gh, &key)?));
    Ok(())
}

#[test]
fn a_gatehouse_jwt_for_the_apps_audience_reaches_python_with_its_subject_org_and_roles()
-> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[])?;
    let key = role_key(&gh.host, &gh.org, "reader", &["notes:read"])?;
    let token = jwt(&gh, &key, AUDIENCE)?;

    assert_eq!(
        whoami(&app, &token)?,
        json!({
            "subject": subject_id(&gh, &key)?,
            "org": gh.org.id,
            "roles": ["reader"],
            "permissions": ["notes:read"],
            "credential": "jwt",
            "language": "python",
        })
    );
    // A token for another app (the Rust guarded app's audience) is not one.
    let elsewhere = jwt(&gh, &key, "guarded-app")?;
    assert_eq!(
        problem(py(&app, "/py/whoami", Some(&elsewhere), &[])?, 401)?.0,
        "unauthenticated"
    );
    Ok(())
}

#[test]
fn an_api_key_reaches_python_as_an_api_key_with_or_without_a_service_key() -> Result<()> {
    let gh = gatehouse()?;
    // Without a service key the guard asks whoami with the key itself.
    for (n, service_key) in [gh.service_key.as_str(), ""].into_iter().enumerate() {
        let (app, _dir) = guarded(&gh, &[("GUARD_SERVICE_KEY", service_key)])?;
        let role = format!("reader{n}");
        let key = role_key(&gh.host, &gh.org, &role, &["notes:read", "notes:list"])?;
        let seen = whoami(&app, &key)?;
        assert_eq!(seen["credential"], "api_key");
        assert_eq!(seen["subject"], json!(subject_id(&gh, &key)?));
        assert_eq!(seen["org"], json!(gh.org.id));
        assert_eq!(seen["roles"], json!([role]));
        let mut permissions: Vec<String> = serde_json::from_value(seen["permissions"].clone())?;
        permissions.sort();
        assert_eq!(permissions, ["notes:list", "notes:read"]);
    }
    Ok(())
}

#[test]
fn a_caller_without_the_routes_permission_is_forbidden_before_python() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[("GUARD_PERMISSION", "notes:read")])?;
    let reader = role_key(&gh.host, &gh.org, "reader", &["notes:read"])?;
    let writer = role_key(&gh.host, &gh.org, "writer", &["notes:write"])?;

    assert_eq!(whoami(&app, &reader)?["permissions"], json!(["notes:read"]));
    let reader_jwt = jwt(&gh, &reader, AUDIENCE)?;
    assert_eq!(whoami(&app, &reader_jwt)?["credential"], "jwt");
    for credential in [writer.clone(), jwt(&gh, &writer, AUDIENCE)?] {
        for path in ["/py/whoami", "/py/notes"] {
            let reply = py(&app, path, Some(&credential), &[])?;
            assert_eq!(problem(reply, 403)?.0, "forbidden", "{path}");
        }
    }
    Ok(())
}

#[test]
fn each_caller_sees_only_their_own_data() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[])?;
    // A second user, admin of an org of her own.
    let other = org(&gh.host, "grace@example.com", "globex")?;
    assert_ne!(other.id, gh.org.id);
    // Each holds a role of her own org.
    grant(
        &gh.host,
        &gh.org,
        &gh.org.admin_id,
        "author",
        &["notes:read"],
    )?;
    grant(
        &gh.host,
        &other,
        &other.admin_id,
        "editor",
        &["notes:write"],
    )?;

    let mut owners = Vec::new();
    for (admin, role, kind, credential) in [
        (&gh.org, "author", "session", gh.org.admin.clone()),
        (&other, "editor", "session", other.admin.clone()),
        (&gh.org, "author", "jwt", jwt(&gh, &gh.org.admin, AUDIENCE)?),
        (&other, "editor", "jwt", jwt(&gh, &other.admin, AUDIENCE)?),
    ] {
        let me = whoami(&app, &credential)?;
        assert_eq!(me["subject"], json!(admin.admin_id));
        assert_eq!(me["org"], json!(admin.id));
        assert_eq!(me["roles"], json!([role]));
        assert_eq!(me["credential"], kind);
        assert_eq!(me["language"], "python");

        let notes = expect(py(&app, "/py/notes", Some(&credential), &[])?, 200)?;
        assert_eq!(notes["owner"], json!(admin.admin_id));
        assert_eq!(notes["org"], json!(admin.id));
        let titles: Vec<&str> = notes["notes"]
            .as_array()
            .context("notes")?
            .iter()
            .filter_map(|n| n["title"].as_str())
            .collect();
        assert_eq!(
            titles,
            [
                format!("Welcome, {}", admin.admin_id).as_str(),
                "Only you can read this"
            ]
        );
        owners.push(notes);
    }
    // The same user's document whatever the credential; another user's
    // differs in owner and in every note id.
    assert_eq!(owners[0], owners[2]);
    assert_eq!(owners[1], owners[3]);
    let ids = |doc: &Value| -> Vec<Value> {
        doc["notes"]
            .as_array()
            .map(|n| n.iter().map(|note| note["id"].clone()).collect())
            .unwrap_or_default()
    };
    assert_ne!(owners[0]["owner"], owners[1]["owner"]);
    assert!(
        ids(&owners[0])
            .iter()
            .all(|id| !ids(&owners[1]).contains(id))
    );

    // Both users at once, interleaved on the app's shared instances: each
    // answer is still its own caller's document.
    let app = &app;
    let expected = [&owners[0], &owners[1]];
    std::thread::scope(|scope| -> Result<()> {
        let callers: Vec<_> = (0..16)
            .map(|n| {
                let credential = if n % 2 == 0 {
                    &gh.org.admin
                } else {
                    &other.admin
                };
                scope.spawn(move || -> Result<(usize, Value)> {
                    let reply = py(app, "/py/notes", Some(credential), &[])?;
                    Ok((n % 2, expect(reply, 200)?))
                })
            })
            .collect();
        for caller in callers {
            let (who, notes) = caller.join().expect("caller thread")?;
            assert_eq!(&notes, expected[who]);
        }
        Ok(())
    })?;
    Ok(())
}

#[test]
fn past_the_guard_python_answers_its_own_problems() -> Result<()> {
    let gh = gatehouse()?;
    let (app, _dir) = guarded(&gh, &[])?;
    let key = role_key(&gh.host, &gh.org, "reader", &["notes:read"])?;

    assert_eq!(
        problem(py(&app, "/py/nope", Some(&key), &[])?, 404)?.0,
        "not_found"
    );
    let post = call(&app, "POST", "/py/notes", Some(&json!({})), Some(&key), &[])?;
    assert_eq!(post.header("allow"), Some("GET"));
    assert_eq!(problem(post, 405)?.0, "method_not_allowed");
    // The query plays no part in who the caller is.
    let notes = expect(
        py(&app, "/py/notes?owner=usr_forged", Some(&key), &[])?,
        200,
    )?;
    assert_eq!(notes["owner"], json!(subject_id(&gh, &key)?));
    Ok(())
}
