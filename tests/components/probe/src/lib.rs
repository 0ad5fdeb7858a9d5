//! The conformance probe: one route per host capability, each answering
//! with JSON that says exactly what the host did, including every error
//! variant, so tests can assert the host's behaviour from outside.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::{http_service, key_value, sqlite, variables};

type Reply = http_body_util::Full<Bytes>;

fn reply(status: u16, body: Value) -> spin_sdk::http::Response<Reply> {
    spin_sdk::http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

fn query(req: &Request, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| v.replace("%2F", "/").replace("%3A", ":"))
    })
}

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let path = req.uri().path().to_string();
    let reply = match path.rsplit('/').next().unwrap_or_default() {
        "echo" => echo(req).await,
        "kv" => kv(req).await,
        "sql" => sql(req).await,
        "var" => var(req).await,
        "outbound" => outbound(req).await,
        // An abort is a wasm `unreachable`: a trap, with nothing printed.
        "trap" => std::process::abort(),
        "counter" => counter(),
        "sized" => sized(),
        "spin" => spin_forever(),
        "json" => json_body(req).await,
        "idem" => idempotency(req).await,
        _ => echo(req).await,
    };
    Ok(reply)
}

async fn echo(req: Request) -> Response<Reply> {
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("spin-"))
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
        .collect();
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().len(),
        Err(_) => usize::MAX,
    };
    reply(
        200,
        json!({"method": method, "uri": uri, "headers": headers, "body_len": body}),
    )
}

async fn kv(req: Request) -> Response<Reply> {
    let label = query(&req, "label").unwrap_or_else(|| "default".into());
    let op = query(&req, "op").unwrap_or_else(|| "get".into());
    let key = query(&req, "key").unwrap_or_default();
    let value = query(&req, "value").unwrap_or_default();
    let store = match key_value::Store::open(&label).await {
        Ok(s) => s,
        Err(e) => return reply(200, json!({"error": format!("{e:?}")})),
    };
    let result = match op.as_str() {
        "set" => store
            .set(&key, value.as_bytes())
            .await
            .map(|()| json!(null)),
        "get" => store.get(&key).await.map(|v| {
            v.map(|b| json!(String::from_utf8_lossy(&b)))
                .unwrap_or(Value::Null)
        }),
        "delete" => store.delete(&key).await.map(|()| json!(null)),
        "exists" => store.exists(&key).await.map(|b| json!(b)),
        "keys" => store.get_keys().await.collect().await.map(|k| json!(k)),
        _ => return reply(400, json!({"error": "unknown op"})),
    };
    match result {
        Ok(v) => reply(200, json!({"value": v})),
        Err(e) => reply(200, json!({"error": format!("{e:?}")})),
    }
}

async fn sql(req: Request) -> Response<Reply> {
    let db = query(&req, "db").unwrap_or_else(|| "default".into());
    let statement = match req.into_body().collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => return reply(400, json!({"error": "unreadable body"})),
    };
    let conn = match sqlite::Connection::open(&db).await {
        Ok(c) => c,
        Err(e) => return reply(200, json!({"error": format!("{e:?}")})),
    };
    let mut all = Vec::new();
    for stmt in statement
        .split(";\n")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let rows = match conn.execute(stmt, []).await {
            Ok(r) => r,
            Err(e) => return reply(200, json!({"error": format!("{e:?}")})),
        };
        let rows = match rows.collect().await {
            Ok(rows) => rows,
            Err(e) => return reply(200, json!({"error": format!("{e:?}")})),
        };
        for row in rows {
            all.push(
                row.values
                    .iter()
                    .map(|v| match v {
                        sqlite::Value::Integer(i) => json!(i),
                        sqlite::Value::Real(f) => json!(f),
                        sqlite::Value::Text(t) => json!(t),
                        sqlite::Value::Blob(b) => json!(b.len()),
                        sqlite::Value::Null => Value::Null,
                    })
                    .collect::<Vec<_>>(),
            );
        }
    }
    reply(200, json!({"rows": all, "changes": conn.changes().await}))
}

async fn var(req: Request) -> Response<Reply> {
    let name = query(&req, "name").unwrap_or_default();
    match variables::get(&name).await {
        Ok(v) => reply(200, json!({"value": v})),
        Err(e) => reply(200, json!({"error": format!("{e:?}")})),
    }
}

async fn outbound(req: Request) -> Response<Reply> {
    let Some(url) = query(&req, "url") else {
        return reply(400, json!({"error": "url missing"}));
    };
    match spin_sdk::http::get(&url).await {
        Ok(res) => {
            let status = res.status().as_u16();
            let body = match res.into_body().collect().await {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                Err(_) => String::new(),
            };
            reply(200, json!({"status": status, "body": body}))
        }
        Err(e) => reply(200, json!({"error": format!("{e:?}")})),
    }
}

/// Computes forever without yielding: only the host's request timeout
/// ends it.
fn spin_forever() -> Response<Reply> {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// A response whose length the component states itself.
fn sized() -> Response<Reply> {
    let body = json!({"sized": true}).to_string();
    spin_sdk::http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("content-length", body.len().to_string())
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// Counts calls within this instance: a host that gives every request a
/// fresh instance always answers 1.
fn counter() -> Response<Reply> {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    reply(200, json!({"calls": n}))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Greeting {
    name: String,
}

impl gatehouse_http::json::Validate for Greeting {
    fn validate(&self) -> Result<(), Vec<gatehouse_http::FieldError>> {
        if self.name.is_empty() {
            return Err(vec![gatehouse_http::FieldError::new(
                "/name",
                "required",
                "name must not be empty",
            )]);
        }
        Ok(())
    }
}

/// The shared crate's JSON body handling, inside a real component.
async fn json_body(req: Request) -> Response<Reply> {
    let id = gatehouse_http::request_id::generate();
    match gatehouse_http::json::read_json::<Greeting, _>(req, 64).await {
        Ok(g) => reply(200, json!({"hello": g.name})),
        Err(problem) => gatehouse_http::response::problem(problem, &id),
    }
}

/// The shared crate's SQLite idempotency store, inside a real component.
async fn idempotency(req: Request) -> Response<Reply> {
    use gatehouse_http::idempotency::{
        Claim, IdempotencyStore, StoredResponse, sqlite::SqliteStore,
    };
    let scope = query(&req, "scope").unwrap_or_default();
    let key = query(&req, "key").unwrap_or_default();
    let fp = query(&req, "fp").unwrap_or_default();
    let now: i64 = query(&req, "now").and_then(|n| n.parse().ok()).unwrap_or(0);
    let conn = match sqlite::Connection::open_default().await {
        Ok(c) => c,
        Err(e) => return reply(200, json!({"error": format!("{e:?}")})),
    };
    let store = SqliteStore::new(&conn);
    let outcome = match query(&req, "op").as_deref() {
        Some("claim") => store.claim(&scope, &key, &fp, now).await.map(|c| match c {
            Claim::Fresh => json!("fresh"),
            Claim::Replay(r) => {
                json!({"replay": r.status, "body": String::from_utf8_lossy(&r.body)})
            }
            Claim::Mismatch => json!("mismatch"),
            Claim::InProgress => json!("in_progress"),
        }),
        Some("complete") => {
            let stored = StoredResponse {
                status: 201,
                content_type: "application/json".into(),
                body: b"{\"id\":7}".to_vec(),
            };
            gatehouse_http::idempotency::settle(&store, &scope, &key, &stored)
                .await
                .map(|()| json!("completed"))
        }
        Some("fail") => {
            let stored = StoredResponse {
                status: 503,
                content_type: "application/json".into(),
                body: Vec::new(),
            };
            gatehouse_http::idempotency::settle(&store, &scope, &key, &stored)
                .await
                .map(|()| json!("released"))
        }
        _ => return reply(400, json!({"error": "op must be claim, complete or fail"})),
    };
    match outcome {
        Ok(v) => reply(200, json!({"value": v})),
        Err(e) => reply(200, json!({"error": format!("{e:?}")})),
    }
}
