//! What the webhook end-to-end tests share: deliveries signed by the
//! providers' own libraries (`tests/webhook-signers/sign.mjs`, run by
//! node), sources made through the API, deliveries posted to a source's
//! ingest URL, and the admin's reads of sources and received events.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result};
use gatehouse_tests::app::{Org, app_config, call, expect, post, problem};
use gatehouse_tests::{Reply, TestHost, send};
use serde_json::{Value, json};

/// The guests' wall clock when a test starts (2027-01-15), in Unix
/// seconds: deliveries are signed at it, and the host's controllable clock
/// moves it where a test needs time to pass.
pub const T: i64 = 1_800_000_000;

/// The operator token of every test host here: it runs the jobs.
pub const OPERATOR: &str = "operator-token-for-webhook-tests";

/// `POST /v1/admin/jobs/$run`: each due job attempted once; the report.
pub fn run_jobs(host: &TestHost) -> Result<Value> {
    run_jobs_with(host, &json!({}))
}

/// `POST /v1/admin/jobs/$run` with `body` (its limits); the report.
pub fn run_jobs_with(host: &TestHost, body: &Value) -> Result<Value> {
    let auth = format!("Bearer {OPERATOR}");
    let reply = send(
        "POST",
        &host.url("/v1/admin/jobs/$run"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )?;
    expect(reply, 200)
}

/// The app with its clock set to [`T`].
pub fn start() -> Result<TestHost> {
    let mut config = app_config();
    config.controllable_clock = true;
    let host = TestHost::start(config)?;
    host.set_clock(T)?;
    Ok(host)
}

/// Header name/value pairs of one delivery.
pub type Headers = Vec<(String, String)>;

/// The headers each job of `jobs` makes, signed in one node process (the
/// jobs `sign.mjs` takes: `stripe`, `github`, `standard`, `azure_devops`…).
pub fn sign(jobs: Value) -> Result<Vec<Headers>> {
    let results = signers(jobs)?;
    results
        .iter()
        .map(|result| {
            let map = result["headers"].as_object().context("headers")?;
            Ok(map
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect())
        })
        .collect()
}

/// What `sign.mjs` answers for each job of `jobs`, as it answers it (a
/// `standard_verify` job answers `{"ok", "error"}`, not headers).
pub fn signers(jobs: Value) -> Result<Vec<Value>> {
    gatehouse_tests::webhook_signers::run(jobs)
}

/// The headers of one signing job.
pub fn sign_one(job: Value) -> Result<Headers> {
    sign(json!([job]))?.pop().context("one result")
}

/// `Stripe-Signature` made by stripe-node for `body` at `timestamp`.
pub fn stripe(secret: &str, body: &str, timestamp: i64) -> Result<Headers> {
    sign_one(json!({"op": "stripe", "secret": secret, "payload": body, "timestamp": timestamp}))
}

/// A Standard Webhooks delivery signed by the `standardwebhooks` library.
pub fn standard(secret: &str, id: &str, body: &str, timestamp: i64) -> Result<Headers> {
    sign_one(json!({
        "op": "standard", "secret": secret, "id": id, "timestamp": timestamp, "payload": body,
    }))
}

/// An org admin's `POST /v1/webhooks/sources`, expected to succeed.
pub fn create_source(host: &TestHost, org: &Org, body: Value) -> Result<Value> {
    expect(
        post(host, "/v1/webhooks/sources", &body, Some(&org.admin))?,
        201,
    )
}

/// A source's id.
pub fn id_of(value: &Value) -> Result<String> {
    Ok(value["id"].as_str().context("id")?.to_string())
}

/// `method path` as the holder of `token`, with a JSON body when given.
pub fn admin(
    host: &TestHost,
    method: &str,
    path: &str,
    body: Option<&Value>,
    token: &str,
) -> Result<Reply> {
    call(host, method, path, body, Some(token), &[])
}

/// `GET /v1/webhooks/sources/{id}` by the org's admin.
pub fn source(host: &TestHost, org: &Org, id: &str) -> Result<Value> {
    let path = format!("/v1/webhooks/sources/{id}");
    expect(admin(host, "GET", &path, None, &org.admin)?, 200)
}

/// `PATCH /v1/webhooks/sources/{id}` by the org's admin.
pub fn patch_source(host: &TestHost, org: &Org, id: &str, body: Value) -> Result<Reply> {
    let path = format!("/v1/webhooks/sources/{id}");
    admin(host, "PATCH", &path, Some(&body), &org.admin)
}

/// The received events `GET /v1/webhooks/events{query}` lists.
pub fn events(host: &TestHost, org: &Org, query: &str) -> Result<Vec<Value>> {
    let path = format!("/v1/webhooks/events{query}");
    let page = expect(admin(host, "GET", &path, None, &org.admin)?, 200)?;
    Ok(page["items"].as_array().context("items")?.clone())
}

/// `GET /v1/webhooks/events/{id}` by the org's admin.
pub fn event(host: &TestHost, org: &Org, id: &str) -> Result<Value> {
    let path = format!("/v1/webhooks/events/{id}");
    expect(admin(host, "GET", &path, None, &org.admin)?, 200)
}

/// Posts a delivery to `source`'s ingest URL, without Gatehouse
/// credentials, as JSON unless `headers` name another content type.
pub fn deliver(source: &Value, headers: &[(String, String)], body: &[u8]) -> Result<Reply> {
    let url = source["ingest_url"].as_str().context("ingest_url")?;
    let mut sent: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        sent.push(("content-type", "application/json"));
    }
    send("POST", url, &sent, body)
}

/// A delivery that must be accepted: its answer, `{"id", "duplicate"}`.
pub fn accepted(source: &Value, headers: &[(String, String)], body: &str) -> Result<Value> {
    let answer = expect(deliver(source, headers, body.as_bytes())?, 200)?;
    let id = answer["id"].as_str().context("event id")?;
    assert!(is_id(id, "whe_"), "{answer}");
    Ok(answer)
}

/// A delivery that must be refused: the webhooks-core rejection code.
pub fn refused(source: &Value, headers: &[(String, String)], body: &str) -> Result<String> {
    let (code, _, reason) = problem(deliver(source, headers, body.as_bytes())?, 401)?;
    assert_eq!(code, "webhook_verification_failed");
    Ok(reason)
}

/// Whether `id` is `prefix` and 32 lowercase hex digits.
pub fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The named fields of `value`, as one object to compare at once.
pub fn pick(value: &Value, names: &[&str]) -> Value {
    names
        .iter()
        .map(|name| (name.to_string(), value[*name].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Posts a delivery to `source`'s ingest URL announcing its body with
/// `Expect: 100-continue`, and sends the body only if the server asks for
/// it. A server that refuses a body by its `Content-Length` then answers
/// with no request bytes left unread in the socket; had they been sent,
/// closing over them would reset the connection under the answer.
pub fn deliver_announced(
    source: &Value,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Reply> {
    let url = source["ingest_url"].as_str().context("ingest_url")?;
    let rest = url.strip_prefix("http://").context("an http URL")?;
    let (authority, path) = rest.split_at(rest.find('/').context("a path")?);
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut answer = read_head(&mut reader)?;
    if answer.status == 100 {
        stream.write_all(body)?;
        answer = read_head(&mut reader)?;
    }
    let length: usize = answer
        .header("content-length")
        .context("content-length")?
        .parse()?;
    answer.body = vec![0; length];
    reader.read_exact(&mut answer.body)?;
    Ok(answer)
}

/// A response's status line and headers.
fn read_head(reader: &mut impl BufRead) -> Result<Reply> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .context("a status line")?
        .parse()?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let field = line.trim_end();
        if field.is_empty() {
            break;
        }
        let (name, value) = field.split_once(':').context("a header line")?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Reply {
        status,
        headers,
        body: Vec::new(),
    })
}
