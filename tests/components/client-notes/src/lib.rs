//! A component of another app, protected by importing `gatehouse:client`
//! (the manifest plugs in Gatehouse's `client_component.wasm`). It keeps
//! notes in its own SQLite table and serves each caller theirs:
//!
//! - `GET /notes/me`: the verified principal;
//! - `POST /notes` `{"body"}`: one unit of the `notes_meter` meter
//!   consumed for the caller (with the request's `Idempotency-Key`), then
//!   a note owned by the caller in their org;
//! - `POST /notes/batch` `{"bodies", "reserve"}`: `reserve` units held,
//!   as many notes written as the hold allows, the count committed (or
//!   the hold released when none was written);
//! - `GET /notes`: the org's notes the caller may read, selected by
//!   Gatehouse's data filter for `notes:read` in SQL;
//! - `GET /notes/{id}/access`: Gatehouse's check of `notes:read` on one note.
//!
//! Every refusal is the problem record the import returned, answered as
//! `application/problem+json`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use spin_sdk::http::{IntoResponse, Request};

type Response = spin_sdk::http::Response<Full<Bytes>>;
use spin_sdk::http_service;
use spin_sdk::sqlite::{Connection, Value as Sql};

spin_sdk::wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    world: "protected",
    path: "../../../wit/client",
});

use gatehouse::client::authz::{self, Columns, FilterRequest, Placeholder, ResourceRef};
use gatehouse::client::quota::{self, Usage};
use gatehouse::client::types::{Credential, Principal, Problem, SubjectKind};
use gatehouse::client::verify;

fn answer(status: u16, body: &Value) -> anyhow::Result<Response> {
    let body = Bytes::from(body.to_string());
    Ok(spin_sdk::http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Full::new(body))?)
}

fn problem(p: Problem) -> anyhow::Result<Response> {
    let body = json!({
        "type": format!("urn:gatehouse:problem:{}", p.code),
        "title": p.title,
        "status": p.status,
        "code": p.code,
        "detail": p.detail,
        "errors": p.errors.iter().map(|e| json!({"pointer": e.pointer, "code": e.code, "message": e.message})).collect::<Vec<_>>(),
    });
    let body = Bytes::from(body.to_string());
    let mut res = spin_sdk::http::Response::builder()
        .status(p.status)
        .header("content-type", "application/problem+json")
        .header("content-length", body.len());
    if let Some(seconds) = p.retry_after {
        res = res.header("retry-after", seconds);
    }
    if let Some(challenge) = p.challenge {
        res = res.header("www-authenticate", challenge);
    }
    Ok(res.body(Full::new(body))?)
}

fn quota_exceeded(retry_after: Option<i64>) -> Problem {
    Problem {
        status: 429,
        code: "quota_exceeded".into(),
        title: "Quota Exceeded".into(),
        detail: Some("the notes quota is used up".into()),
        errors: Vec::new(),
        retry_after: retry_after.map(|at| at.max(1) as u32),
        challenge: None,
    }
}

fn principal_json(p: &Principal) -> Value {
    json!({
        "kind": match p.kind {
            SubjectKind::User => "user",
            SubjectKind::ApiKey => "api_key",
            SubjectKind::Service => "service",
            SubjectKind::External => "external",
        },
        "id": p.id,
        "owner": p.owner,
        "org": p.org,
        "org_role": p.org_role,
        "teams": p.teams,
        "roles": p.roles,
        "permissions": p.permissions,
        "credential": match p.credential {
            Credential::Jwt => "jwt",
            Credential::ApiKey => "api_key",
            Credential::Session => "session",
        },
    })
}

/// The user a note of `p` belongs to: the user, or an API key's owner.
fn owner(p: &Principal) -> String {
    match p.kind {
        SubjectKind::User => p.id.clone(),
        _ => p.owner.clone().unwrap_or_else(|| p.id.clone()),
    }
}

async fn db() -> anyhow::Result<Connection> {
    let conn = Connection::open_default().await?;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, org_id TEXT NOT NULL, owner_user TEXT NOT NULL, body TEXT NOT NULL)",
        vec![],
    )
    .await?;
    Ok(conn)
}

async fn insert(conn: &Connection, p: &Principal, body: &str) -> anyhow::Result<String> {
    let rows = conn
        .execute(
            "INSERT INTO notes (id, org_id, owner_user, body) VALUES ('n_' || lower(hex(randomblob(8))), ?1, ?2, ?3) RETURNING id",
            vec![
                Sql::Text(p.org.clone().unwrap_or_default()),
                Sql::Text(owner(p)),
                Sql::Text(body.to_string()),
            ],
        )
        .await?
        .collect()
        .await?;
    match rows.first().and_then(|r| r.values.first()) {
        Some(Sql::Text(id)) => Ok(id.clone()),
        _ => anyhow::bail!("no id returned"),
    }
}

async fn meter() -> Option<String> {
    spin_sdk::variables::get("notes_meter")
        .await
        .ok()
        .filter(|m| !m.is_empty())
}

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let who = match verify::verify(header("authorization"), header("x-org")).await {
        Ok(who) => who,
        Err(p) => return problem(p),
    };
    let idempotency_key = header("idempotency-key");
    let method = req.method().clone();
    let path: Vec<String> = req
        .uri()
        .path()
        .trim_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();
    let body = req.into_body().collect().await?.to_bytes();
    let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match (method.as_str(), path.as_slice()) {
        ("GET", ["notes", "me"]) => answer(200, &principal_json(&who)),
        ("POST", ["notes"]) => {
            let Some(text) = input["body"].as_str() else {
                return answer(
                    422,
                    &json!({"code": "validation_failed", "pointer": "/body"}),
                );
            };
            if let Some(meter) = meter().await {
                let usage = Usage {
                    meter,
                    amount: None,
                    item_type: None,
                    item_id: None,
                };
                match quota::consume(who.clone(), usage, idempotency_key.clone()).await {
                    Ok(d) if d.allowed => {}
                    Ok(d) => return problem(quota_exceeded(d.reset_at.map(|at| at - now()))),
                    Err(p) => return problem(p),
                }
            }
            let id = insert(&db().await?, &who, text).await?;
            answer(201, &json!({"id": id, "owner": owner(&who)}))
        }
        ("POST", ["notes", "batch"]) => {
            let bodies: Vec<String> = input["bodies"]
                .as_array()
                .map(|b| {
                    b.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let reserve = input["reserve"].as_u64().unwrap_or(1);
            let Some(meter) = meter().await else {
                return answer(500, &json!({"code": "no_meter"}));
            };
            let usage = Usage {
                meter,
                amount: Some(reserve),
                item_type: None,
                item_id: None,
            };
            let held = match quota::reserve(who.clone(), usage, Some(60)).await {
                Ok(d) if d.allowed => d,
                Ok(d) => return problem(quota_exceeded(d.reset_at.map(|at| at - now()))),
                Err(p) => return problem(p),
            };
            let reservation = held.reservation.unwrap_or_default();
            let conn = db().await?;
            let mut ids = Vec::new();
            for text in bodies.iter().take(reserve as usize) {
                ids.push(insert(&conn, &who, text).await?);
            }
            let done = if ids.is_empty() {
                quota::release(reservation).await
            } else {
                quota::commit(reservation, ids.len() as u64).await
            };
            if let Err(p) = done {
                return problem(p);
            }
            answer(
                201,
                &json!({"ids": ids, "reserved": reserve, "committed": ids.len()}),
            )
        }
        ("GET", ["notes"]) => {
            let request = FilterRequest {
                policy: "notes:read".into(),
                service: Some("notes".into()),
                collection: Some("notes".into()),
                columns: Some(Columns {
                    id: "id".into(),
                    owner_user: Some("owner_user".into()),
                    owner_team: None,
                    org: Some("org_id".into()),
                }),
                placeholder: Some(Placeholder::QuestionNumbered),
                first_parameter: Some(2),
            };
            let filter = match authz::filter(who.clone(), request).await {
                Ok(f) => f,
                Err(p) => return problem(p),
            };
            let mut params = vec![Sql::Text(who.org.clone().unwrap_or_default())];
            params.extend(filter.sql.params.iter().cloned().map(Sql::Text));
            let sql = format!(
                "SELECT id, owner_user, body FROM notes WHERE org_id = ?1 AND ({}) ORDER BY body",
                filter.sql.condition
            );
            let rows = db().await?.execute(&sql, params).await?.collect().await?;
            let text = |v: Option<&Sql>| match v {
                Some(Sql::Text(t)) => t.clone(),
                _ => String::new(),
            };
            let notes: Vec<Value> = rows
                .iter()
                .map(|r| json!({"id": text(r.values.first()), "owner": text(r.values.get(1)), "body": text(r.values.get(2))}))
                .collect();
            answer(
                200,
                &json!({"notes": notes, "where": filter.sql.condition, "tree": serde_json::from_str::<Value>(&filter.tree).unwrap_or(Value::Null), "mongo": serde_json::from_str::<Value>(&filter.mongo).unwrap_or(Value::Null), "policy": filter.policy}),
            )
        }
        ("GET", ["notes", id, "access"]) => {
            let target = ResourceRef {
                service: Some("notes".into()),
                collection: Some("notes".into()),
                id: id.to_string(),
            };
            match authz::check(who.clone(), "notes:read".into(), target).await {
                Ok(d) => answer(
                    200,
                    &json!({"allowed": d.allowed, "reason": d.reason, "policy": d.policy, "version": d.version}),
                ),
                Err(p) => problem(p),
            }
        }
        _ => answer(404, &json!({"code": "not_found"})),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
