//! Outgoing webhook endpoints managed by org admins: made with a
//! `whsec_` secret shown once (and to admins at `…/secret`), changed,
//! deleted, rotated with the old secret signing beside the new one for a
//! day, an Ed25519 key for `v1a`.
//!
//! `boundaries` covers the URL policy (`webhook_endpoint_private_hosts`,
//! `webhook_delivery_hosts`), the validation codes and limits, roles, credentials and the tenant
//! boundary; `messages` covers what an endpoint was sent: read with its
//! attempts, resent, recovered. Messages and attempts are written into the
//! app's database as the delivery engine records them, so these tests
//! read what the routes make of them; the jobs the routes queue are read
//! through the operator's job listing.

use anyhow::{Context, Result};
use base64::Engine as _;
use gatehouse_tests::app::{Org, app_config, call, database, expect, org, post, problem};
use gatehouse_tests::{Reply, TestHost, get, send};
use serde_json::{Value, json};
use webhooks_core::{PublicKey, SigningSecret};

use crate::support::{OPERATOR, T, is_id, pick};

#[path = "endpoint_boundaries.rs"]
mod boundaries;
#[path = "endpoint_messages.rs"]
mod messages;

/// An endpoint URL the tests' deployment allows: 127.0.0.1 is listed.
const LOCAL: &str = "http://127.0.0.1:9/hooks/gatehouse";
const PUBLIC: &str = "https://hooks.example.com/gatehouse";

/// The app with its clock at [`T`], 127.0.0.1 allowed for endpoints (and
/// to deliver to) and an operator token to read and run the jobs queue.
fn start() -> Result<TestHost> {
    // Any scheme, host and port may be delivered to: the tests' endpoints
    // are on hooks.example.com and on local receivers.
    start_with(Some("*://*:*"))
}

/// [`start`] with `delivery_hosts` as `webhook_delivery_hosts` (its
/// default, `https://*:443`, when `None`).
fn start_with(delivery_hosts: Option<&str>) -> Result<TestHost> {
    let mut config = app_config();
    config.controllable_clock = true;
    config.env.extend([
        (
            "SPIN_VARIABLE_WEBHOOK_ENDPOINT_PRIVATE_HOSTS".to_string(),
            "127.0.0.1".to_string(),
        ),
        ("SPIN_VARIABLE_OPERATOR_TOKEN".to_string(), OPERATOR.into()),
    ]);
    if let Some(hosts) = delivery_hosts {
        config.env.push((
            "SPIN_VARIABLE_WEBHOOK_DELIVERY_HOSTS".to_string(),
            hosts.to_string(),
        ));
    }
    let host = TestHost::start(config)?;
    host.set_clock(T)?;
    Ok(host)
}

/// `method path` as the holder of `token`, with a JSON body when given.
pub(crate) fn by(
    host: &TestHost,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Reply> {
    call(host, method, path, body, Some(token), &[])
}

/// `POST /v1/webhooks/endpoints` by the org's admin, expected to succeed.
pub(crate) fn create(host: &TestHost, org: &Org, body: Value) -> Result<Value> {
    expect(
        post(host, "/v1/webhooks/endpoints", &body, Some(&org.admin))?,
        201,
    )
}

/// `GET /v1/webhooks/endpoints/{id}{rest}` by the org's admin.
pub(crate) fn read(host: &TestHost, org: &Org, id: &str, rest: &str) -> Result<Value> {
    let path = format!("/v1/webhooks/endpoints/{id}{rest}");
    expect(by(host, &org.admin, "GET", &path, None)?, 200)
}

/// `PATCH /v1/webhooks/endpoints/{id}` by the org's admin.
fn patch(host: &TestHost, org: &Org, id: &str, body: Value) -> Result<Reply> {
    let path = format!("/v1/webhooks/endpoints/{id}");
    by(host, &org.admin, "PATCH", &path, Some(&body))
}

fn id_of(value: &Value) -> Result<String> {
    Ok(value["id"].as_str().context("id")?.to_string())
}

/// The items of a page.
fn items(page: &Value) -> Result<Vec<Value>> {
    Ok(page["items"].as_array().context("items")?.clone())
}

/// `(pointer, code)` of the first field error of a 422 `validation_failed`.
fn invalid(reply: Reply) -> Result<(String, String)> {
    let (code, pointer, field) = problem(reply, 422)?;
    assert_eq!(code, "validation_failed");
    Ok((pointer, field))
}

fn pair(pointer: &str, code: &str) -> (String, String) {
    (pointer.to_string(), code.to_string())
}

/// Whether `reply` tells caches not to store it.
fn no_store(reply: &Reply) -> bool {
    reply.header("cache-control") == Some("no-store")
}

/// The bytes a `whsec_` secret holds.
fn secret_bytes(secret: &Value) -> Result<Vec<u8>> {
    let text = secret.as_str().context("a secret")?;
    let encoded = text.strip_prefix("whsec_").context("whsec_")?;
    Ok(base64::engine::general_purpose::STANDARD.decode(encoded)?)
}

/// A message of `endpoint` as the delivery engine records one, made at
/// `created_at`, with `attempts` (`(status, code, trigger, at)`); its id.
fn record_message(
    host: &TestHost,
    org: &Org,
    endpoint: &str,
    n: u32,
    status: &str,
    created_at: i64,
    attempts: &[(&str, Option<i64>, &str, i64)],
) -> Result<String> {
    let id = format!("msg_{n:032x}");
    let db = database(host)?;
    db.execute(
        "INSERT INTO webhook_messages (org_id, message_id, endpoint_id, event_id, event_type, status,
                                       attempts, last_error, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'quota.threshold_reached', ?5, ?6, ?7, ?8, ?8)",
        rusqlite::params![
            org.id,
            id,
            endpoint,
            format!("evt_{n:032x}"),
            status,
            attempts.len() as i64,
            (status == "failed").then_some("the endpoint answered 503"),
            created_at,
        ],
    )?;
    for (i, (outcome, code, trigger, at)) in attempts.iter().enumerate() {
        db.execute(
            "INSERT INTO webhook_attempts (org_id, attempt_id, message_id, endpoint_id, trigger, status,
                                           response_code, duration_ms, error, attempted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 42, ?8, ?9)",
            rusqlite::params![
                org.id,
                format!("atmpt_{n:016x}{i:016x}"),
                id,
                endpoint,
                trigger,
                outcome,
                code,
                (*outcome == "failed").then_some("the endpoint answered 503"),
                at,
            ],
        )?;
    }
    Ok(id)
}

/// The delivery jobs an admin queued (resends and recoveries), as the
/// operator lists them: `(message_id, trigger)` of each. Scheduled ones,
/// which the org's own events make (a member joining), are left out.
fn delivery_jobs(host: &TestHost) -> Result<Vec<(String, String)>> {
    let auth = format!("Bearer {OPERATOR}");
    let page = expect(
        get(
            &host.url("/v1/admin/jobs?kind=webhook.deliver&limit=200"),
            &[("authorization", &auth)],
        )?,
        200,
    )?;
    let mut jobs: Vec<(String, String)> = items(&page)?
        .iter()
        .map(|j| {
            let text = |k: &str| j["payload"][k].as_str().unwrap_or_default().to_string();
            (text("message_id"), text("trigger"))
        })
        .filter(|(_, trigger)| trigger != "scheduled")
        .collect();
    jobs.sort();
    Ok(jobs)
}

#[test]
fn an_endpoint_is_made_read_listed_changed_and_deleted_by_an_org_admin() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = create(
        &host,
        &acme,
        json!({"url": PUBLIC, "description": "billing ☕", "event_types": ["quota.*", "key.created"]}),
    )?;
    let id = id_of(&made)?;
    assert!(is_id(&id, "whep_"), "{made}");
    assert_eq!(
        pick(
            &made,
            &[
                "url",
                "description",
                "event_types",
                "enabled",
                "disabled_reason",
                "disabled_at",
                "failing_since",
                "v1a",
                "public_key"
            ]
        ),
        json!({
            "url": PUBLIC, "description": "billing ☕", "event_types": ["quota.*", "key.created"],
            "enabled": true, "disabled_reason": null, "disabled_at": null, "failing_since": null,
            "v1a": false, "public_key": null,
        })
    );
    assert!(made["created_at"].as_i64() >= Some(T), "{made}");
    // The secret: whsec_ and base64 of 24 to 64 random bytes.
    let secret = made["secret"].as_str().context("secret")?.to_string();
    let bytes = secret_bytes(&made["secret"])?;
    assert!((24..=64).contains(&bytes.len()), "{secret}");
    SigningSecret::parse(&secret)?;
    let other = create(&host, &acme, json!({"url": LOCAL, "enabled": false}))?;
    assert_ne!(other["secret"], made["secret"]);
    assert_eq!(
        pick(&other, &["event_types", "enabled", "disabled_reason"]),
        json!({"event_types": null, "enabled": false, "disabled_reason": "admin"})
    );

    // Read and listed (newest first, a page at a time), never with a secret.
    let read_back = read(&host, &acme, &id, "")?;
    let listed = expect(
        by(&host, &acme.admin, "GET", "/v1/webhooks/endpoints", None)?,
        200,
    )?;
    for answer in [&read_back, &listed] {
        let text = answer.to_string();
        assert!(
            !text.contains(&secret[6..]) && !text.contains("\"secret\""),
            "{text}"
        );
    }
    let mut without_secret = made.clone();
    without_secret
        .as_object_mut()
        .context("object")?
        .remove("secret");
    assert_eq!(read_back, without_secret);
    let ids: Vec<Value> = items(&listed)?.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(ids.len(), 2);
    assert!(
        ids.contains(&json!(id)) && ids.contains(&other["id"]),
        "{listed}"
    );
    let first = expect(
        by(
            &host,
            &acme.admin,
            "GET",
            "/v1/webhooks/endpoints?limit=1",
            None,
        )?,
        200,
    )?;
    let cursor = first["next_cursor"].as_str().context("next_cursor")?;
    let rest = expect(
        by(
            &host,
            &acme.admin,
            "GET",
            &format!("/v1/webhooks/endpoints?limit=1&cursor={cursor}"),
            None,
        )?,
        200,
    )?;
    assert_eq!(rest["next_cursor"], Value::Null);
    let paged = [
        items(&first)?[0]["id"].clone(),
        items(&rest)?[0]["id"].clone(),
    ];
    assert_eq!(paged.to_vec(), ids);

    // Changed field by field; null clears the description and the filter.
    let changed = expect(
        patch(
            &host,
            &acme,
            &id,
            json!({"url": "https://hooks.example.com/v2", "description": null, "event_types": null}),
        )?,
        200,
    )?;
    assert_eq!(
        pick(&changed, &["url", "description", "event_types", "enabled"]),
        json!({"url": "https://hooks.example.com/v2", "description": null, "event_types": null, "enabled": true})
    );
    let off = expect(patch(&host, &acme, &id, json!({"enabled": false}))?, 200)?;
    assert_eq!(
        pick(&off, &["enabled", "disabled_reason", "url"]),
        json!({"enabled": false, "disabled_reason": "admin", "url": "https://hooks.example.com/v2"})
    );
    assert!(off["disabled_at"].is_i64(), "{off}");
    let on = expect(patch(&host, &acme, &id, json!({"enabled": true}))?, 200)?;
    assert_eq!(
        pick(&on, &["enabled", "disabled_reason", "disabled_at"]),
        json!({"enabled": true, "disabled_reason": null, "disabled_at": null})
    );
    let filtered = expect(
        patch(
            &host,
            &acme,
            &id,
            json!({"event_types": ["spend.unusual", "spend.unusual"]}),
        )?,
        200,
    )?;
    assert_eq!(filtered["event_types"], json!(["spend.unusual"]));
    assert!(!filtered.to_string().contains(&secret[6..]));

    // Deleted: gone from reads and the list, and it cannot be deleted again.
    let path = format!("/v1/webhooks/endpoints/{id}");
    let deleted = by(&host, &acme.admin, "DELETE", &path, None)?;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    for method in ["GET", "DELETE"] {
        let reply = by(&host, &acme.admin, method, &path, None)?;
        assert_eq!(problem(reply, 404)?.0, "not_found", "{method}");
    }
    let reply = by(&host, &acme.admin, "GET", &format!("{path}/secret"), None)?;
    assert_eq!(problem(reply, 404)?.0, "not_found");
    let left = expect(
        by(&host, &acme.admin, "GET", "/v1/webhooks/endpoints", None)?,
        200,
    )?;
    assert_eq!(items(&left)?.len(), 1);
    assert_eq!(items(&left)?[0]["id"], other["id"]);
    // Its secrets are erased, not kept sealed.
    let stored: (String, Option<String>) = database(&host)?.query_row(
        "SELECT secret, signing_key FROM webhook_endpoints WHERE endpoint_id = ?1",
        [&id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    assert_eq!(stored, (String::new(), None));
    Ok(())
}

#[test]
fn enabling_an_endpoint_the_deliveries_turned_off_clears_its_reason_and_failing_streak()
-> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let failing = id_of(&create(&host, &acme, json!({"url": PUBLIC}))?)?;
    let gone = id_of(&create(&host, &acme, json!({"url": LOCAL}))?)?;
    // As the delivery engine turns endpoints off.
    let db = database(&host)?;
    for (id, reason) in [(&failing, "failing"), (&gone, "gone")] {
        db.execute(
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?2, disabled_at = ?3,
                 failing_since = ?4 WHERE endpoint_id = ?1",
            rusqlite::params![id, reason, T - 10, T - 5 * 86_400],
        )?;
    }
    let state = |id: &str| -> Result<Value> {
        Ok(pick(
            &read(&host, &acme, id, "")?,
            &["enabled", "disabled_reason", "disabled_at", "failing_since"],
        ))
    };
    assert_eq!(
        state(&failing)?,
        json!({"enabled": false, "disabled_reason": "failing", "disabled_at": T - 10,
               "failing_since": T - 5 * 86_400})
    );
    // Turning it off again keeps why it went off; other changes keep it off.
    expect(patch(&host, &acme, &gone, json!({"enabled": false}))?, 200)?;
    expect(
        patch(&host, &acme, &gone, json!({"description": "moved"}))?,
        200,
    )?;
    assert_eq!(
        state(&gone)?,
        json!({"enabled": false, "disabled_reason": "gone", "disabled_at": T - 10,
               "failing_since": T - 5 * 86_400})
    );
    for id in [&failing, &gone] {
        let on = expect(patch(&host, &acme, id, json!({"enabled": true}))?, 200)?;
        assert_eq!(
            pick(
                &on,
                &["enabled", "disabled_reason", "disabled_at", "failing_since"]
            ),
            json!({"enabled": true, "disabled_reason": null, "disabled_at": null, "failing_since": null})
        );
    }
    Ok(())
}

#[test]
fn a_rotated_secret_keeps_the_previous_one_signing_for_a_day() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = create(&host, &acme, json!({"url": PUBLIC}))?;
    let id = id_of(&made)?;
    let first = made["secret"].clone();
    assert_eq!(
        read(&host, &acme, &id, "/secret")?,
        json!({"secret": first, "previous_secret": null, "previous_expires_at": null})
    );

    let rotate = format!("/v1/webhooks/endpoints/{id}/secret/$rotate");
    let rotated = expect(by(&host, &acme.admin, "POST", &rotate, None)?, 200)?;
    assert_ne!(rotated["secret"], first);
    assert!((24..=64).contains(&secret_bytes(&rotated["secret"])?.len()));
    assert_eq!(rotated["previous_secret"], first);
    let changed_at = read(&host, &acme, &id, "")?["updated_at"]
        .as_i64()
        .context("updated_at")?;
    let expires = changed_at + 86_400;
    assert_eq!(rotated["previous_expires_at"].as_i64(), Some(expires));
    assert_eq!(read(&host, &acme, &id, "/secret")?, rotated);

    // Rotating again within the day would cut the previous secret off while
    // receivers may still verify with it: refused, saying when it ends.
    let again = by(&host, &acme.admin, "POST", &rotate, None)?;
    let detail = again.json()?["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        problem(again, 409)?,
        (
            "conflict".into(),
            String::new(),
            "rotation_in_progress".into()
        )
    );
    assert!(
        detail.contains(&expires.to_string()) && detail.contains("expire_previous_now"),
        "{detail}"
    );
    assert_eq!(read(&host, &acme, &id, "/secret")?, rotated);

    // A chosen secret, checked; the one it replaces signs beside it.
    let chosen = SigningSecret::from_random(&[7u8; 40])?.to_whsec();
    let refused = [
        json!({"secret": "not a secret"}),
        json!({"secret": SigningSecret::from_random(&[7u8; 24])?.to_whsec().replace("whsec_", "")}),
        json!({"secret": format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([7u8; 16]))}),
        json!({"secret": format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([7u8; 65]))}),
        json!({"secret": "whsec_not base64!"}),
    ];
    for body in &refused {
        let reply = by(&host, &acme.admin, "POST", &rotate, Some(body))?;
        assert_eq!(invalid(reply)?, pair("/secret", "invalid_secret"), "{body}");
    }
    let reply = by(
        &host,
        &acme.admin,
        "POST",
        &rotate,
        Some(&json!({"key": chosen})),
    )?;
    assert_eq!(invalid(reply)?.1, "unknown_field");
    let reply = by(
        &host,
        &acme.admin,
        "POST",
        &rotate,
        Some(&json!({"secret": chosen})),
    )?;
    assert_eq!(problem(reply, 409)?.2, "rotation_in_progress");
    // Asked for, the previous secret ends now and the current one replaces it.
    let forced = expect(
        by(
            &host,
            &acme.admin,
            "POST",
            &rotate,
            Some(&json!({"secret": chosen, "expire_previous_now": true})),
        )?,
        200,
    )?;
    assert_eq!(
        pick(&forced, &["secret", "previous_secret"]),
        json!({"secret": chosen, "previous_secret": rotated["secret"]})
    );

    // A day later the previous secret is no longer shown (nor signs).
    host.advance_clock(86_401)?;
    assert_eq!(
        read(&host, &acme, &id, "/secret")?,
        json!({"secret": chosen, "previous_secret": null, "previous_expires_at": null})
    );
    // Then a rotation is taken again; a body of whitespace is no body.
    let auth = format!("Bearer {}", acme.admin);
    let blank = send(
        "POST",
        &host.url(&rotate),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        b" \r\n\t ",
    )?;
    let fresh = expect(blank, 200)?;
    assert_eq!(fresh["previous_secret"], json!(chosen));
    assert!((24..=64).contains(&secret_bytes(&fresh["secret"])?.len()));
    assert_ne!(fresh["secret"], json!(chosen));
    Ok(())
}

#[test]
fn every_answer_holding_a_secret_is_marked_no_store() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = post(
        &host,
        "/v1/webhooks/endpoints",
        &json!({"url": PUBLIC}),
        Some(&acme.admin),
    )?;
    assert!(no_store(&made), "{:?}", made.headers);
    let id = id_of(&expect(made, 201)?)?;
    let base = format!("/v1/webhooks/endpoints/{id}");
    let secret = by(&host, &acme.admin, "GET", &format!("{base}/secret"), None)?;
    assert!(no_store(&secret), "{:?}", secret.headers);
    expect(secret, 200)?;
    let rotated = by(
        &host,
        &acme.admin,
        "POST",
        &format!("{base}/secret/$rotate"),
        None,
    )?;
    assert!(no_store(&rotated), "{:?}", rotated.headers);
    expect(rotated, 200)?;
    // Answers without a secret are left to the usual caching rules.
    let plain = by(&host, &acme.admin, "GET", &base, None)?;
    assert!(!no_store(&plain), "{:?}", plain.headers);
    Ok(())
}

#[test]
fn changing_an_endpoint_s_url_ends_its_failing_streak_but_keeps_it_off() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let on = id_of(&create(&host, &acme, json!({"url": PUBLIC}))?)?;
    let off = id_of(&create(&host, &acme, json!({"url": PUBLIC}))?)?;
    // As the delivery engine records failures, and turns an endpoint off.
    let db = database(&host)?;
    db.execute(
        "UPDATE webhook_endpoints SET failing_since = ?2 WHERE endpoint_id = ?1",
        rusqlite::params![on, T - 3600],
    )?;
    db.execute(
        "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = 'failing', disabled_at = ?2,
             failing_since = ?3 WHERE endpoint_id = ?1",
        rusqlite::params![off, T - 10, T - 5 * 86_400],
    )?;
    let state = |id: &str| -> Result<Value> {
        Ok(pick(
            &read(&host, &acme, id, "")?,
            &["enabled", "disabled_reason", "disabled_at", "failing_since"],
        ))
    };
    // Other changes, and the same URL again, keep the streak.
    expect(patch(&host, &acme, &on, json!({"description": "x"}))?, 200)?;
    expect(patch(&host, &acme, &on, json!({"url": PUBLIC}))?, 200)?;
    assert_eq!(state(&on)?["failing_since"], T - 3600);

    let moved = "https://hooks.example.com/moved";
    let changed = expect(patch(&host, &acme, &on, json!({"url": moved}))?, 200)?;
    assert_eq!(
        pick(&changed, &["url", "enabled", "failing_since"]),
        json!({"url": moved, "enabled": true, "failing_since": null})
    );
    expect(patch(&host, &acme, &off, json!({"url": moved}))?, 200)?;
    assert_eq!(
        state(&off)?,
        json!({"enabled": false, "disabled_reason": "failing", "disabled_at": T - 10,
               "failing_since": null})
    );
    Ok(())
}

#[test]
fn an_endpoint_signing_v1a_too_shows_the_public_key_receivers_verify_with() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let made = create(&host, &acme, json!({"url": PUBLIC, "v1a": true}))?;
    let id = id_of(&made)?;
    assert_eq!(made["v1a"], true);
    let key = made["public_key"]
        .as_str()
        .context("public_key")?
        .to_string();
    PublicKey::parse(&key)?;
    assert!(
        made["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    // The public key is public: every read shows it, and the same one.
    assert_eq!(read(&host, &acme, &id, "")?["public_key"], key.as_str());
    let kept = expect(patch(&host, &acme, &id, json!({"v1a": true}))?, 200)?;
    assert_eq!(kept["public_key"], key.as_str());
    let plain = expect(patch(&host, &acme, &id, json!({"v1a": false}))?, 200)?;
    assert_eq!(
        pick(&plain, &["v1a", "public_key"]),
        json!({"v1a": false, "public_key": null})
    );
    let renewed = expect(patch(&host, &acme, &id, json!({"v1a": true}))?, 200)?;
    let new_key = renewed["public_key"].as_str().context("public_key")?;
    PublicKey::parse(new_key)?;
    assert_ne!(new_key, key);
    let listed = expect(
        by(&host, &acme.admin, "GET", "/v1/webhooks/endpoints", None)?,
        200,
    )?;
    assert_eq!(items(&listed)?[0]["public_key"], new_key);
    Ok(())
}

#[test]
fn reads_and_lists_show_the_public_key_without_opening_the_sealed_one() -> Result<()> {
    let host = start()?;
    let acme = org(&host, "ada@example.com", "acme")?;
    let signed = create(&host, &acme, json!({"url": PUBLIC, "v1a": true}))?;
    let id = id_of(&signed)?;
    let key = signed["public_key"].clone();
    create(&host, &acme, json!({"url": PUBLIC}))?;
    // A sealed key that does not open (another master key, a copied row):
    // nothing that only shows the endpoint needs to open it.
    database(&host)?.execute(
        "UPDATE webhook_endpoints SET signing_key = 'not a sealed key' WHERE endpoint_id = ?1",
        [&id],
    )?;
    let read_back = read(&host, &acme, &id, "")?;
    assert_eq!(
        pick(&read_back, &["v1a", "public_key"]),
        json!({"v1a": true, "public_key": key})
    );
    let listed = expect(
        by(&host, &acme.admin, "GET", "/v1/webhooks/endpoints", None)?,
        200,
    )?;
    assert_eq!(items(&listed)?.len(), 2, "{listed}");
    assert!(
        items(&listed)?.iter().any(|e| e["public_key"] == key),
        "{listed}"
    );
    // Deleting it erases both halves.
    let path = format!("/v1/webhooks/endpoints/{id}");
    assert_eq!(by(&host, &acme.admin, "DELETE", &path, None)?.status, 204);
    let stored: (Option<String>, Option<String>) = database(&host)?.query_row(
        "SELECT signing_key, public_key FROM webhook_endpoints WHERE endpoint_id = ?1",
        [&id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    assert_eq!(stored, (None, None));
    Ok(())
}
