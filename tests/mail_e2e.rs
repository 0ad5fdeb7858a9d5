//! Mail delivery through the built `identity` component: a local server
//! speaking Postmark's (or Resend's) wire format stands in for the email
//! API, the host gets its address through the `email_*` variables, and the
//! tests check what the API received and what the outbox recorded:
//! delivered at once, retried after a failure, given up after the last
//! attempt or a permanent refusal, never sent twice, never sent without a
//! provider. Retry times (kept by each mail's `mail.send` job) are made
//! due by editing the test host's SQLite file, so no test waits for a
//! backoff.

use anyhow::{Context, Result, bail};
use gatehouse_tests::fake_http::{self, RawRequest};
use gatehouse_tests::{HostConfig, TestHost, get, root, send};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "pm-test-server-token";
const FROM: &str = "Gatehouse Tests <auth@example.test>";
const PASSWORD: &str = "violet-tractor-umbrella";

/// Which API the fake speaks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Postmark,
    Resend,
}

/// One request the fake API received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Value,
    /// The status the fake answered with.
    status: u16,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn recipient(&self) -> String {
        match &self.body["To"] {
            Value::String(to) => to.clone(),
            _ => self.body["to"][0].as_str().unwrap_or_default().to_string(),
        }
    }
}

#[derive(Default)]
struct FakeState {
    received: Vec<Received>,
    /// Scripted answers for mails to an address, used before success.
    failures: HashMap<String, VecDeque<(u16, Value)>>,
    sent: usize,
}

/// An email API on 127.0.0.1 that records every request, checks the
/// credential, and answers as the real one does, or as scripted.
struct FakeApi {
    base: String,
    flavor: Flavor,
    state: Arc<Mutex<FakeState>>,
}

impl FakeApi {
    fn start(flavor: Flavor) -> Result<FakeApi> {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let shared = state.clone();
        let addr = fake_http::serve(move |request| record(request, flavor, &shared))?;
        let base = format!("http://{addr}");
        Ok(FakeApi {
            base,
            flavor,
            state,
        })
    }

    /// The next `times` mails to `to` get `status` with `body`.
    fn fail_for(&self, to: &str, times: usize, status: u16, body: Value) {
        let mut state = self.state.lock().unwrap();
        let queue = state.failures.entry(to.to_string()).or_default();
        for _ in 0..times {
            queue.push_back((status, body.clone()));
        }
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Requests for mail to `to`.
    fn received_for(&self, to: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.recipient() == to)
            .collect()
    }

    /// How many mails to `to` the fake accepted.
    fn accepted_for(&self, to: &str) -> usize {
        self.received_for(to)
            .iter()
            .filter(|r| r.status == 200)
            .count()
    }

    fn env(&self) -> Vec<(String, String)> {
        let provider = match self.flavor {
            Flavor::Postmark => "postmark",
            Flavor::Resend => "resend",
        };
        vec![
            ("SPIN_VARIABLE_EMAIL_PROVIDER".into(), provider.into()),
            ("SPIN_VARIABLE_EMAIL_API_BASE_URL".into(), self.base.clone()),
            ("SPIN_VARIABLE_EMAIL_API_TOKEN".into(), TOKEN.into()),
            ("SPIN_VARIABLE_EMAIL_FROM".into(), FROM.into()),
        ]
    }
}

/// Answers `request` as the API would and records it with the status.
fn record(request: RawRequest, flavor: Flavor, state: &Mutex<FakeState>) -> (u16, Value) {
    let body = request.json();
    let (status, reply) = answer(flavor, &request.headers, &body, state);
    state.lock().unwrap().received.push(Received {
        method: request.method,
        path: request.path,
        headers: request.headers,
        body,
        status,
    });
    (status, reply)
}

/// What the real API would say: a credential check first, then any
/// scripted failure for the recipient, then success with a message id.
fn answer(
    flavor: Flavor,
    headers: &HashMap<String, String>,
    body: &Value,
    state: &Mutex<FakeState>,
) -> (u16, Value) {
    let mut state = state.lock().unwrap();
    match flavor {
        Flavor::Postmark => {
            if headers.get("x-postmark-server-token").map(String::as_str) != Some(TOKEN) {
                return (
                    401,
                    json!({"ErrorCode": 10, "Message": "The Server Token you provided in the X-Postmark-Server-Token request header was invalid."}),
                );
            }
            let to = body["To"].as_str().unwrap_or_default().to_string();
            if let Some(failure) = state.failures.get_mut(&to).and_then(VecDeque::pop_front) {
                return failure;
            }
            state.sent += 1;
            (
                200,
                json!({"To": to, "SubmittedAt": "2026-01-01T00:00:00Z", "MessageID": format!("pm-{}", state.sent), "ErrorCode": 0, "Message": "OK"}),
            )
        }
        Flavor::Resend => {
            if headers.get("authorization") != Some(&format!("Bearer {TOKEN}")) {
                return (
                    403,
                    json!({"statusCode": 403, "name": "invalid_api_key", "message": "API key is invalid"}),
                );
            }
            let to = body["to"][0].as_str().unwrap_or_default().to_string();
            if let Some(failure) = state.failures.get_mut(&to).and_then(VecDeque::pop_front) {
                return failure;
            }
            state.sent += 1;
            (200, json!({"id": format!("rs-{}", state.sent)}))
        }
    }
}

fn start_with(env: Vec<(String, String)>) -> Result<TestHost> {
    let mut config = HostConfig::new(root().join("spin.toml"));
    config.migrations = Some(root().join("infra/migrations"));
    config.env = env;
    config
        .env
        .push(("SPIN_VARIABLE_DEV_OUTBOX".into(), "enabled".into()));
    TestHost::start(config)
}

fn register(host: &TestHost, email: &str) -> Result<()> {
    let body = json!({"email": email, "password": PASSWORD, "display_name": "Ada"});
    let reply = send(
        "POST",
        &host.url("/v1/auth/register"),
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )?;
    if reply.status != 202 {
        bail!(
            "register {email}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    Ok(())
}

/// The newest outbox entry to `to`, from the development listing.
fn outbox_entry(host: &TestHost, to: &str) -> Result<Value> {
    let outbox = get(&host.url("/v1/dev/outbox"), &[])?.json()?;
    outbox["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|m| m["to"] == to)
        .cloned()
        .with_context(|| format!("no mail to {to}: {outbox}"))
}

/// Runs `sql` on the test host's database (binding `to` as ?1).
fn edit_outbox(host: &TestHost, sql: &str, to: &str) -> Result<()> {
    let db = host
        .state
        .path()
        .join(gatehouse_host::runtime_config::DEFAULT_DB_FILE);
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute(sql, [to])?;
    Ok(())
}

/// Makes the pending mail to `to` due now instead of after its backoff:
/// the mail and its `mail.send` job, which owns the retry time.
fn make_due(host: &TestHost, to: &str) -> Result<()> {
    edit_outbox(
        host,
        "UPDATE email_outbox SET next_attempt_at = 0 WHERE to_address = ?1 AND status = 'pending'",
        to,
    )?;
    edit_jobs(host, "run_at = 0", to)
}

/// Sets `assignment` on the pending `mail.send` jobs of the mails to `to`.
fn edit_jobs(host: &TestHost, assignment: &str, to: &str) -> Result<()> {
    edit_outbox(
        host,
        &format!(
            "UPDATE jobs SET {assignment} WHERE kind = 'mail.send' AND state = 'pending'
             AND idempotency_key IN (SELECT id FROM email_outbox WHERE to_address = ?1)"
        ),
        to,
    )
}

#[test]
fn registering_sends_one_verification_mail_in_postmarks_format() -> Result<()> {
    let api = FakeApi::start(Flavor::Postmark)?;
    let host = start_with(api.env())?;
    register(&host, "ada@example.com")?;

    let received = api.received();
    assert_eq!(received.len(), 1, "exactly one request: {received:?}");
    let request = &received[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/email")
    );
    assert_eq!(request.header("x-postmark-server-token"), Some(TOKEN));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), None);

    let entry = outbox_entry(&host, "ada@example.com")?;
    let text = request.body["TextBody"].as_str().unwrap_or_default();
    let token_start = text.find("gvt_").context("the mail carries the token")?;
    let token: String = text[token_start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert!(token.len() > 20, "{token}");
    assert_eq!(
        request.body,
        json!({
            "From": FROM,
            "To": "ada@example.com",
            "Subject": "Confirm your email address",
            "TextBody": entry["body"],
            "MessageStream": "outbound",
        })
    );
    assert_eq!(entry["status"], "sent");
    assert_eq!(entry["attempts"], 1);
    assert_eq!(entry["provider"], "postmark");
    assert_eq!(entry["provider_message_id"], "pm-1");
    assert_eq!(entry["last_error"], Value::Null);
    assert_eq!(entry["next_attempt_at"], Value::Null);
    assert!(entry["sent_at"].is_i64(), "{entry}");

    // The mailed token works: what the API got is what the user needs.
    let verify = send(
        "POST",
        &host.url("/v1/auth/verify-email"),
        &[("content-type", "application/json")],
        json!({"token": token}).to_string().as_bytes(),
    )?;
    assert_eq!(verify.status, 200);
    assert_eq!(api.received().len(), 1, "verifying sends nothing");
    Ok(())
}

#[test]
fn a_failed_attempt_stays_pending_and_a_later_request_delivers_it() -> Result<()> {
    let api = FakeApi::start(Flavor::Postmark)?;
    let host = start_with(api.env())?;
    api.fail_for(
        "ada@example.com",
        1,
        503,
        json!({"ErrorCode": 100, "Message": "Maintenance"}),
    );
    register(&host, "ada@example.com")?;
    let entry = outbox_entry(&host, "ada@example.com")?;
    assert_eq!(entry["status"], "pending", "{entry}");
    assert_eq!(entry["attempts"], 1);
    assert_eq!(entry["last_error"], "postmark 503: error 100: Maintenance");
    let created = entry["created_at"].as_i64().context("created_at")?;
    let next = entry["next_attempt_at"]
        .as_i64()
        .context("next_attempt_at")?;
    assert!((created + 29..=created + 32).contains(&next), "{entry}");

    // Not due yet: the next request sends its own mail only.
    register(&host, "bob@example.com")?;
    assert_eq!(api.accepted_for("bob@example.com"), 1);
    assert_eq!(api.received_for("ada@example.com").len(), 1);

    // Once due, a request that mails carries the retry too.
    make_due(&host, "ada@example.com")?;
    register(&host, "cy@example.com")?;
    assert_eq!(api.accepted_for("cy@example.com"), 1);
    assert_eq!(api.accepted_for("ada@example.com"), 1);
    let entry = outbox_entry(&host, "ada@example.com")?;
    assert_eq!(
        (&entry["status"], &entry["attempts"], &entry["last_error"]),
        (&json!("sent"), &json!(2), &Value::Null),
        "{entry}"
    );

    // Sent is final: even a due-looking row is never sent again.
    edit_outbox(
        &host,
        "UPDATE email_outbox SET next_attempt_at = 0 WHERE to_address = ?1",
        "ada@example.com",
    )?;
    register(&host, "dee@example.com")?;
    assert_eq!(api.received_for("ada@example.com").len(), 2);
    assert_eq!(api.received_for("bob@example.com").len(), 1);
    Ok(())
}

#[test]
fn refusals_retry_unless_the_recipient_is_inactive() -> Result<()> {
    let api = FakeApi::start(Flavor::Postmark)?;
    let host = start_with(api.env())?;
    api.fail_for(
        "gone@example.com",
        1,
        422,
        json!({"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have been marked as inactive."}),
    );
    api.fail_for(
        "early@example.com",
        1,
        422,
        json!({"ErrorCode": 401, "Message": "Sender signature not confirmed"}),
    );
    register(&host, "gone@example.com")?;
    register(&host, "early@example.com")?;

    let gone = outbox_entry(&host, "gone@example.com")?;
    assert_eq!(gone["status"], "failed", "{gone}");
    assert!(
        gone["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("postmark 422: error 406:")),
        "{gone}"
    );
    let early = outbox_entry(&host, "early@example.com")?;
    assert_eq!(early["status"], "pending", "{early}");

    make_due(&host, "gone@example.com")?;
    make_due(&host, "early@example.com")?;
    register(&host, "next@example.com")?;
    assert_eq!(
        api.received_for("gone@example.com").len(),
        1,
        "failed is final"
    );
    assert_eq!(api.accepted_for("early@example.com"), 1);
    Ok(())
}

#[test]
fn the_last_allowed_attempt_that_fails_gives_the_mail_up() -> Result<()> {
    let api = FakeApi::start(Flavor::Postmark)?;
    let host = start_with(api.env())?;
    api.fail_for(
        "ada@example.com",
        2,
        500,
        json!({"ErrorCode": 0, "Message": "Internal"}),
    );
    register(&host, "ada@example.com")?;
    // Seven attempts on record, the eighth is the last.
    edit_outbox(
        &host,
        "UPDATE email_outbox SET attempts = 7, next_attempt_at = 0 WHERE to_address = ?1",
        "ada@example.com",
    )?;
    edit_jobs(&host, "attempts = 7, run_at = 0", "ada@example.com")?;
    register(&host, "bob@example.com")?;
    let entry = outbox_entry(&host, "ada@example.com")?;
    assert_eq!(
        (&entry["status"], &entry["attempts"]),
        (&json!("failed"), &json!(8)),
        "{entry}"
    );
    assert_eq!(entry["last_error"], "postmark 500: Internal");
    make_due(&host, "ada@example.com")?;
    register(&host, "cy@example.com")?;
    assert_eq!(api.received_for("ada@example.com").len(), 2);
    assert_eq!(api.accepted_for("ada@example.com"), 0);
    Ok(())
}

#[test]
fn concurrent_requests_never_send_one_mail_twice() -> Result<()> {
    let api = FakeApi::start(Flavor::Postmark)?;
    let host = start_with(api.env())?;
    let waiting = ["w1@example.com", "w2@example.com", "w3@example.com"];
    for to in waiting {
        api.fail_for(to, 1, 503, json!({"ErrorCode": 0, "Message": "busy"}));
        register(&host, to)?;
        make_due(&host, to)?;
    }
    // Six requests at once, each may retry every waiting mail.
    let host = Arc::new(host);
    let workers: Vec<_> = (0..6)
        .map(|i| {
            let host = host.clone();
            std::thread::spawn(move || register(&host, &format!("new{i}@example.com")))
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    for to in waiting {
        assert_eq!(api.accepted_for(to), 1, "{to}: {:?}", api.received_for(to));
        assert_eq!(outbox_entry(&host, to)?["status"], "sent");
    }
    for i in 0..6 {
        assert_eq!(api.accepted_for(&format!("new{i}@example.com")), 1);
    }
    Ok(())
}

#[test]
fn an_unreachable_api_or_a_wrong_token_never_fails_the_request() -> Result<()> {
    let closed = gatehouse_tests::free_port()?;
    let mut env = vec![
        ("SPIN_VARIABLE_EMAIL_PROVIDER".into(), "postmark".into()),
        (
            "SPIN_VARIABLE_EMAIL_API_BASE_URL".into(),
            format!("http://127.0.0.1:{closed}"),
        ),
        ("SPIN_VARIABLE_EMAIL_API_TOKEN".into(), TOKEN.into()),
    ];
    let host = start_with(env.clone())?;
    register(&host, "ada@example.com")?;
    let entry = outbox_entry(&host, "ada@example.com")?;
    assert_eq!(
        (&entry["status"], &entry["attempts"]),
        (&json!("pending"), &json!(1))
    );
    assert!(
        entry["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("postmark unreachable: ")),
        "{entry}"
    );
    drop(host);

    let api = FakeApi::start(Flavor::Postmark)?;
    env[1].1 = api.base.clone();
    env[2].1 = "wrong-token-value".into();
    let host = start_with(env)?;
    register(&host, "bob@example.com")?;
    let entry = outbox_entry(&host, "bob@example.com")?;
    assert_eq!(entry["status"], "pending");
    let error = entry["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("postmark 401: error 10:"), "{entry}");
    assert!(!error.contains("wrong-token-value"), "{entry}");
    Ok(())
}

#[test]
fn without_a_provider_nothing_is_sent_and_mail_stays_pending() -> Result<()> {
    let api = FakeApi::start(Flavor::Postmark)?;
    let env = api
        .env()
        .into_iter()
        .filter(|(k, _)| k != "SPIN_VARIABLE_EMAIL_PROVIDER")
        .collect();
    let host = start_with(env)?;
    register(&host, "ada@example.com")?;
    make_due(&host, "ada@example.com")?;
    register(&host, "bob@example.com")?;
    assert!(api.received().is_empty(), "{:?}", api.received());
    let entry = outbox_entry(&host, "ada@example.com")?;
    assert_eq!(
        (&entry["status"], &entry["attempts"], &entry["last_error"]),
        (&json!("pending"), &json!(0), &Value::Null),
        "{entry}"
    );
    Ok(())
}

#[test]
fn resend_receives_the_mail_in_its_format() -> Result<()> {
    let api = FakeApi::start(Flavor::Resend)?;
    let host = start_with(api.env())?;
    register(&host, "ada@example.com")?;
    let received = api.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let request = &received[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/emails")
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(request.header("x-postmark-server-token"), None);
    let entry = outbox_entry(&host, "ada@example.com")?;
    assert_eq!(request.header("idempotency-key"), entry["id"].as_str());
    assert_eq!(
        request.body,
        json!({
            "from": FROM,
            "to": ["ada@example.com"],
            "subject": "Confirm your email address",
            "text": entry["body"],
        })
    );
    assert_eq!(
        (
            &entry["status"],
            &entry["provider"],
            &entry["provider_message_id"]
        ),
        (&json!("sent"), &json!("resend"), &json!("rs-1"))
    );
    Ok(())
}

#[test]
fn an_invitation_from_the_orgs_component_is_delivered_too() -> Result<()> {
    let api = FakeApi::start(Flavor::Postmark)?;
    let host = start_with(api.env())?;
    let ada = gatehouse_tests::app::signed_in(&host, "ada@example.com")?;
    let org = gatehouse_tests::app::post(
        &host,
        "/v1/orgs",
        &json!({"name": "Acme", "handle": "acme"}),
        Some(&ada),
    )?;
    assert_eq!(org.status, 201);
    let invited = gatehouse_tests::app::post(
        &host,
        "/v1/orgs/acme/invitations",
        &json!({"email": "bob@example.com"}),
        Some(&ada),
    )?;
    assert_eq!(invited.status, 201);
    let received = api.received_for("bob@example.com");
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].body["Subject"], "Join Acme on Gatehouse");
    let text = received[0].body["TextBody"].as_str().unwrap_or_default();
    assert!(text.contains("ginv_"), "{text}");
    assert_eq!(outbox_entry(&host, "bob@example.com")?["status"], "sent");
    Ok(())
}
