//! Background jobs through the built components: identity queues mail with
//! its `mail.send` job, the request's own attempt may fail, and the `jobs`
//! component's runner (`POST /v1/admin/jobs/$run`, operator token) retries
//! it by the job policy, here shrunk to no wait
//! (`SPIN_VARIABLE_JOB_RETRY_BASE_SECONDS=0`). A local server speaking
//! Postmark's wire format stands in for the email API and answers as
//! scripted per recipient; the tests check what it received and what the
//! operator routes show.

use anyhow::{Context, Result, bail};
use gatehouse_tests::fake_http::{self, RawRequest};
use gatehouse_tests::{TestHost, app, get, root, send};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "pm-test-server-token";
const OPERATOR: &str = "operator-test-token-for-jobs";

#[derive(Default)]
struct FakeState {
    /// Recipient and status of every request, in order.
    received: Vec<(String, u16)>,
    /// Scripted answers for mails to an address, used before success.
    failures: HashMap<String, VecDeque<(u16, Value)>>,
    sent: usize,
}

/// Postmark's API on 127.0.0.1: checks the server token, answers as
/// scripted for a recipient, else accepts; waits `delay` before each
/// answer, so attempts running at once overlap.
struct FakeApi {
    base: String,
    state: Arc<Mutex<FakeState>>,
}

impl FakeApi {
    fn start(delay: Duration) -> Result<FakeApi> {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let shared = state.clone();
        let addr = fake_http::serve(move |request| answer(&request, &shared, delay))?;
        let base = format!("http://{addr}");
        Ok(FakeApi { base, state })
    }

    /// The next `times` mails to `to` get `status` with `body`.
    fn fail_for(&self, to: &str, times: usize, status: u16, body: Value) {
        let mut state = self.state.lock().unwrap();
        let queue = state.failures.entry(to.to_string()).or_default();
        for _ in 0..times {
            queue.push_back((status, body.clone()));
        }
    }

    /// Statuses answered for mail to `to`, in order.
    fn answered(&self, to: &str) -> Vec<u16> {
        let state = self.state.lock().unwrap();
        state
            .received
            .iter()
            .filter(|(r, _)| r == to)
            .map(|(_, s)| *s)
            .collect()
    }

    /// Mails to `to` the fake accepted.
    fn accepted_for(&self, to: &str) -> usize {
        self.answered(to).iter().filter(|s| **s == 200).count()
    }

    /// The variables that send mail here, with the operator token and no
    /// wait between attempts.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("SPIN_VARIABLE_EMAIL_PROVIDER".into(), "postmark".into()),
            ("SPIN_VARIABLE_EMAIL_API_BASE_URL".into(), self.base.clone()),
            ("SPIN_VARIABLE_EMAIL_API_TOKEN".into(), TOKEN.into()),
            ("SPIN_VARIABLE_OPERATOR_TOKEN".into(), OPERATOR.into()),
            ("SPIN_VARIABLE_JOB_RETRY_BASE_SECONDS".into(), "0".into()),
        ]
    }
}

/// Waits `delay`, then records the request's recipient and answers: 401
/// without the server token, else as scripted, else accepted.
fn answer(request: &RawRequest, state: &Mutex<FakeState>, delay: Duration) -> (u16, Value) {
    let body = request.json();
    std::thread::sleep(delay);
    let to = body["To"].as_str().unwrap_or_default().to_string();
    let mut state = state.lock().unwrap();
    let reply = if request.header("x-postmark-server-token") != Some(TOKEN) {
        (
            401,
            json!({"ErrorCode": 10, "Message": "Bad or missing server token"}),
        )
    } else if let Some(failure) = state.failures.get_mut(&to).and_then(VecDeque::pop_front) {
        failure
    } else {
        state.sent += 1;
        let id = format!("pm-{}", state.sent);
        (
            200,
            json!({"To": to, "ErrorCode": 0, "Message": "OK", "MessageID": id}),
        )
    };
    state.received.push((to, reply.0));
    reply
}

const OPERATOR_AUTH: (&str, &str) = ("authorization", "Bearer operator-test-token-for-jobs");

fn register(host: &TestHost, email: &str) -> Result<()> {
    let reply = app::register(host, email)?;
    if reply.status != 202 {
        bail!("register {email}: {} {}", reply.status, reply.text());
    }
    Ok(())
}

/// `POST /v1/admin/jobs/$run` without a body: the run's report.
fn run(host: &TestHost) -> Result<Value> {
    let reply = send(
        "POST",
        &host.url("/v1/admin/jobs/$run"),
        &[OPERATOR_AUTH],
        b"",
    )?;
    app::expect(reply, 200)
}

/// `GET /v1/admin/jobs?{query}`.
fn list(host: &TestHost, query: &str) -> Result<Value> {
    let reply = get(
        &host.url(&format!("/v1/admin/jobs?{query}")),
        &[OPERATOR_AUTH],
    )?;
    app::expect(reply, 200)
}

/// The `mail.send` job of the newest mail of `kind` to `to`.
fn mail_job(host: &TestHost, to: &str, kind: &str) -> Result<Value> {
    let mail_id = app::mail(host, to, kind)?["id"]
        .as_str()
        .context("mail id")?
        .to_string();
    let jobs = list(host, "kind=mail.send&limit=200")?;
    jobs["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|j| j["idempotency_key"] == mail_id.as_str())
        .cloned()
        .with_context(|| format!("no job for {mail_id}: {jobs}"))
}

/// `(claimed, succeeded, retried, dead, remaining_due)` of a report.
fn counts(report: &Value) -> (i64, i64, i64, i64, i64) {
    let n = |k: &str| report[k].as_i64().unwrap_or(-1);
    (
        n("claimed"),
        n("succeeded"),
        n("retried"),
        n("dead"),
        n("remaining_due"),
    )
}

#[test]
fn a_mail_whose_sends_fail_twice_is_retried_by_runs_until_it_is_sent() -> Result<()> {
    let api = FakeApi::start(Duration::ZERO)?;
    let host = app::start_app_with(api.env())?;
    let internal = json!({"ErrorCode": 0, "Message": "Internal"});
    api.fail_for("ada@example.com", 2, 500, internal);
    register(&host, "ada@example.com")?;

    // The request's own attempt is the job's first.
    let job = mail_job(&host, "ada@example.com", "verify_email")?;
    assert_eq!(
        (
            &job["kind"],
            &job["state"],
            &job["attempts"],
            &job["max_attempts"]
        ),
        (&json!("mail.send"), &json!("pending"), &json!(1), &json!(8)),
        "{job}"
    );
    assert_eq!(job["last_error"], "postmark 500: Internal");
    assert_eq!(job["payload"]["mail_id"], job["idempotency_key"]);

    // A run takes each job once: due again at once, it waits for the next.
    assert_eq!(counts(&run(&host)?), (1, 0, 1, 0, 1));
    let job = mail_job(&host, "ada@example.com", "verify_email")?;
    assert_eq!(
        (&job["state"], &job["attempts"]),
        (&json!("pending"), &json!(2))
    );
    assert_eq!(counts(&run(&host)?), (1, 1, 0, 0, 0));

    let job = mail_job(&host, "ada@example.com", "verify_email")?;
    assert_eq!(
        (&job["state"], &job["attempts"]),
        (&json!("done"), &json!(3)),
        "{job}"
    );
    assert!(job["finished_at"].is_i64(), "{job}");
    assert_eq!(job["lease_owner"], Value::Null);
    assert_eq!(api.answered("ada@example.com"), vec![500, 500, 200]);
    let mail = app::mail(&host, "ada@example.com", "verify_email")?;
    assert_eq!(
        (&mail["status"], &mail["attempts"]),
        (&json!("sent"), &json!(3))
    );
    assert_eq!(counts(&run(&host)?), (0, 0, 0, 0, 0), "done is final");
    assert_eq!(api.answered("ada@example.com").len(), 3);
    Ok(())
}

#[test]
fn a_permanent_refusal_makes_the_job_dead_with_the_providers_reason() -> Result<()> {
    let api = FakeApi::start(Duration::ZERO)?;
    let host = app::start_app_with(api.env())?;
    let inactive = json!({"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have been marked as inactive."});
    api.fail_for("gone@example.com", 1, 422, inactive);
    register(&host, "gone@example.com")?;

    let dead = list(&host, "state=dead")?;
    let items = dead["items"].as_array().context("items")?;
    assert_eq!(items.len(), 1, "{dead}");
    let job = &items[0];
    assert_eq!(
        (&job["state"], &job["attempts"]),
        (&json!("dead"), &json!(1))
    );
    let error = job["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("postmark 422: error 406: You tried"),
        "{job}"
    );
    assert!(!error.contains(TOKEN), "{job}");
    assert!(job["finished_at"].is_i64(), "{job}");
    assert_eq!(
        mail_job(&host, "gone@example.com", "verify_email")?["id"],
        job["id"]
    );
    assert_eq!(
        app::mail(&host, "gone@example.com", "verify_email")?["status"],
        "failed"
    );

    assert_eq!(
        counts(&run(&host)?),
        (0, 0, 0, 0, 0),
        "dead is never claimed"
    );
    assert_eq!(api.answered("gone@example.com"), vec![422]);
    Ok(())
}

#[test]
fn a_job_failing_at_its_last_attempt_is_dead_listed_and_an_operator_can_retry_it() -> Result<()> {
    let api = FakeApi::start(Duration::ZERO)?;
    let mut env = api.env();
    env.push(("SPIN_VARIABLE_JOB_MAX_ATTEMPTS".into(), "2".into()));
    let host = app::start_app_with(env)?;
    let down = json!({"ErrorCode": 0, "Message": "Service Unavailable"});
    api.fail_for("ada@example.com", 2, 503, down);
    register(&host, "ada@example.com")?;
    let job = mail_job(&host, "ada@example.com", "verify_email")?;
    assert_eq!(job["max_attempts"], 2, "{job}");

    assert_eq!(counts(&run(&host)?), (1, 0, 0, 1, 0));
    let dead = list(&host, "state=dead&kind=mail.send")?;
    let listed = &dead["items"][0];
    assert_eq!(listed["id"], job["id"], "{dead}");
    assert_eq!(
        (&listed["attempts"], &listed["last_error"]),
        (&json!(2), &json!("postmark 503: Service Unavailable"))
    );
    let mail = app::mail(&host, "ada@example.com", "verify_email")?;
    assert_eq!(mail["status"], "failed");
    assert_eq!(counts(&run(&host)?).0, 0, "dead is never claimed");

    let id = job["id"].as_str().context("id")?;
    let retry = format!("/v1/admin/jobs/{id}/$retry");
    let retried = app::expect(send("POST", &host.url(&retry), &[OPERATOR_AUTH], b"")?, 200)?;
    assert_eq!(
        (
            &retried["state"],
            &retried["attempts"],
            &retried["finished_at"]
        ),
        (&json!("pending"), &json!(0), &Value::Null),
        "{retried}"
    );
    let again = send("POST", &host.url(&retry), &[OPERATOR_AUTH], b"")?;
    assert_eq!(again.status, 409, "only a dead job is retried");
    assert_eq!(again.json()?["code"], "conflict");

    assert_eq!(counts(&run(&host)?), (1, 1, 0, 0, 0));
    assert_eq!(api.answered("ada@example.com"), vec![503, 503, 200]);
    let mail = app::mail(&host, "ada@example.com", "verify_email")?;
    assert_eq!(mail["status"], "sent");
    assert!(
        list(&host, "state=dead")?["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    Ok(())
}

#[test]
fn concurrent_runs_never_send_one_mail_twice() -> Result<()> {
    let api = FakeApi::start(Duration::from_millis(100))?;
    let host = app::start_app_with(api.env())?;
    let addresses: Vec<String> = (0..6).map(|i| format!("u{i}@example.com")).collect();
    let busy = json!({"ErrorCode": 0, "Message": "busy"});
    for to in &addresses {
        api.fail_for(to, 1, 503, busy.clone());
        register(&host, to)?;
    }
    let host = Arc::new(host);
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let host = host.clone();
            std::thread::spawn(move || run(&host))
        })
        .collect();
    let mut total = (0, 0);
    for handle in runs {
        let report = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a run panicked"))??;
        let (claimed, succeeded, retried, dead, _) = counts(&report);
        assert_eq!((retried, dead), (0, 0), "{report}");
        total = (total.0 + claimed, total.1 + succeeded);
    }
    assert_eq!(total, (6, 6), "each job claimed once among the runs");
    for to in &addresses {
        assert_eq!(api.answered(to), vec![503, 200], "{to}");
        assert_eq!(app::mail(&host, to, "verify_email")?["status"], "sent");
    }
    assert_eq!(counts(&run(&host)?), (0, 0, 0, 0, 0));
    Ok(())
}

#[test]
fn requests_retrying_due_mail_and_runs_at_once_never_send_one_mail_twice() -> Result<()> {
    let api = FakeApi::start(Duration::from_millis(100))?;
    let host = app::start_app_with(api.env())?;
    let waiting: Vec<String> = (0..4).map(|i| format!("w{i}@example.com")).collect();
    let busy = json!({"ErrorCode": 0, "Message": "busy"});
    for to in &waiting {
        api.fail_for(to, 1, 503, busy.clone());
        register(&host, to)?;
    }
    // Each registration's own delivery also takes up to three due mails.
    let host = Arc::new(host);
    let mut workers = Vec::new();
    for i in 0..2 {
        let runner = host.clone();
        workers.push(std::thread::spawn(move || run(&runner).map(Some)));
        let client = host.clone();
        let to = format!("new{i}@example.com");
        workers.push(std::thread::spawn(move || {
            register(&client, &to).map(|()| None)
        }));
    }
    for worker in workers {
        let report = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
        if let Some(report) = report {
            let (_, _, retried, dead, _) = counts(&report);
            assert_eq!((retried, dead), (0, 0), "{report}");
        }
    }
    for to in &waiting {
        assert_eq!(api.answered(to), vec![503, 200], "{to}");
    }
    for i in 0..2 {
        assert_eq!(api.answered(&format!("new{i}@example.com")), vec![200]);
    }
    Ok(())
}

#[test]
fn the_hosts_interval_runner_sends_queued_mail_without_a_run_call() -> Result<()> {
    let api = FakeApi::start(Duration::ZERO)?;
    let mut config = app::app_config();
    config.env.extend(api.env());
    config.jobs_every = Some(Duration::from_millis(200));
    let host = TestHost::start(config)?;
    let down = json!({"ErrorCode": 0, "Message": "Service Unavailable"});
    api.fail_for("ada@example.com", 1, 503, down);
    register(&host, "ada@example.com")?;

    let deadline = Instant::now() + Duration::from_secs(20);
    while api.accepted_for("ada@example.com") == 0 {
        if Instant::now() > deadline {
            bail!(
                "not sent by the interval runner: {:?}",
                api.answered("ada@example.com")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(api.answered("ada@example.com"), vec![503, 200]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let job = mail_job(&host, "ada@example.com", "verify_email")?;
        if job["state"] == "done" {
            assert_eq!(job["attempts"], 2, "{job}");
            break;
        }
        if Instant::now() > deadline {
            bail!("the job did not end done: {job}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Every operator route, with a body where it takes one.
const ROUTES: [(&str, &str); 3] = [
    ("GET", "/v1/admin/jobs?state=dead"),
    ("POST", "/v1/admin/jobs/$run"),
    (
        "POST",
        "/v1/admin/jobs/job_00000000000000000000000000000000/$retry",
    ),
];

fn expect_refused(host: &TestHost, auth: Option<&str>) -> Result<()> {
    for (method, path) in ROUTES {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = auth {
            headers.push(("authorization", auth));
        }
        // The body is not even read without the operator.
        let reply = send(method, &host.url(path), &headers, br#"{"max_seconds": 0}"#)?;
        assert_eq!(
            reply.status,
            401,
            "{method} {path} with {auth:?}: {}",
            reply.text()
        );
        assert_eq!(reply.json()?["code"], "unauthenticated");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
    Ok(())
}

#[test]
fn operator_routes_refuse_a_missing_or_wrong_token_or_a_users_session() -> Result<()> {
    let api = FakeApi::start(Duration::ZERO)?;
    let host = app::start_app_with(api.env())?;
    let session = app::signed_in(&host, "ada@example.com")?;
    expect_refused(&host, None)?;
    expect_refused(&host, Some("Bearer operator-test-token-for-jobz"))?;
    expect_refused(&host, Some(&format!("Bearer {session}")))?;
    expect_refused(&host, Some(OPERATOR))?;
    Ok(())
}

#[test]
fn operator_routes_are_off_when_the_operator_token_is_empty() -> Result<()> {
    let api = FakeApi::start(Duration::ZERO)?;
    let env = api
        .env()
        .into_iter()
        .filter(|(k, _)| k != "SPIN_VARIABLE_OPERATOR_TOKEN")
        .collect();
    let host = app::start_app_with(env)?;
    expect_refused(&host, Some("Bearer "))?;
    expect_refused(&host, Some("Bearer operator-test-token-for-jobs"))?;
    Ok(())
}

fn problem(reply: gatehouse_tests::Reply, status: u16, code: &str) -> Result<Value> {
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{}",
        reply.text()
    );
    let problem = app::expect(reply, status)?;
    assert_eq!(problem["code"], code, "{problem}");
    Ok(problem)
}

#[test]
fn bad_queries_and_bodies_are_problems_with_stable_codes() -> Result<()> {
    let api = FakeApi::start(Duration::ZERO)?;
    let host = app::start_app_with(api.env())?;
    for (query, pointer) in [
        ("state=failed", "/state"),
        ("state=", "/state"),
        ("kind=Mail.Send", "/kind"),
        ("kind=", "/kind"),
        ("limit=0", "/limit"),
        ("limit=201", "/limit"),
        ("limit=ten", "/limit"),
        ("cursor=***", "/cursor"),
    ] {
        let url = host.url(&format!("/v1/admin/jobs?{query}"));
        let found = problem(get(&url, &[OPERATOR_AUTH])?, 400, "invalid_query")?;
        assert_eq!(found["errors"][0]["pointer"], pointer, "{query}: {found}");
    }

    let run_with = |content_type: &str, body: &str| {
        let headers = [OPERATOR_AUTH, ("content-type", content_type)];
        send(
            "POST",
            &host.url("/v1/admin/jobs/$run"),
            &headers,
            body.as_bytes(),
        )
    };
    for (body, pointer) in [
        (r#"{"max_seconds": 0}"#, "/max_seconds"),
        (r#"{"max_seconds": 26}"#, "/max_seconds"),
        (r#"{"max_seconds": -3}"#, "/max_seconds"),
        (r#"{"max_jobs": 0}"#, "/max_jobs"),
        (r#"{"max_jobs": 1001}"#, "/max_jobs"),
    ] {
        let found = problem(
            run_with("application/json", body)?,
            422,
            "validation_failed",
        )?;
        assert_eq!(
            (&found["errors"][0]["pointer"], &found["errors"][0]["code"]),
            (&json!(pointer), &json!("invalid_range")),
            "{body}: {found}"
        );
    }
    for body in [
        r#"{"max_seconds": "soon"}"#,
        r#"{"max_seconds": 1.5}"#,
        r#"{"every": 1}"#,
    ] {
        problem(
            run_with("application/json", body)?,
            422,
            "validation_failed",
        )?;
    }
    problem(
        run_with("application/json", "{not json")?,
        400,
        "invalid_json",
    )?;
    problem(
        run_with("text/plain", r#"{"max_seconds": 1}"#)?,
        415,
        "unsupported_media_type",
    )?;
    let report = app::expect(
        run_with("application/json", r#"{"max_seconds": 1, "max_jobs": 1}"#)?,
        200,
    )?;
    assert_eq!(counts(&report), (0, 0, 0, 0, 0));

    let wrong_method = get(&host.url("/v1/admin/jobs/$run"), &[OPERATOR_AUTH])?;
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    problem(wrong_method, 405, "method_not_allowed")?;
    let delete = send("DELETE", &host.url("/v1/admin/jobs"), &[OPERATOR_AUTH], b"")?;
    problem(delete, 405, "method_not_allowed")?;
    Ok(())
}

#[test]
fn retrying_an_unknown_job_is_404_and_a_job_that_is_not_dead_409() -> Result<()> {
    let api = FakeApi::start(Duration::ZERO)?;
    let host = app::start_app_with(api.env())?;
    for id in ["job_00000000000000000000000000000000", "nothing-like-an-id"] {
        let path = format!("/v1/admin/jobs/{id}/$retry");
        problem(
            send("POST", &host.url(&path), &[OPERATOR_AUTH], b"")?,
            404,
            "not_found",
        )?;
    }
    register(&host, "ada@example.com")?;
    let job = mail_job(&host, "ada@example.com", "verify_email")?;
    assert_eq!(job["state"], "done", "{job}");
    let path = format!(
        "/v1/admin/jobs/{}/$retry",
        job["id"].as_str().context("id")?
    );
    let refused = problem(
        send("POST", &host.url(&path), &[OPERATOR_AUTH], b"")?,
        409,
        "conflict",
    )?;
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("done")),
        "{refused}"
    );
    assert_eq!(
        api.answered("ada@example.com"),
        vec![200],
        "nothing sent again"
    );
    Ok(())
}

#[test]
fn a_job_of_an_unknown_kind_fails_with_a_clear_error_and_ends_dead() -> Result<()> {
    let api = FakeApi::start(Duration::ZERO)?;
    let mut env = api.env();
    env.push(("SPIN_VARIABLE_JOB_MAX_ATTEMPTS".into(), "2".into()));
    let host = app::start_app_with(env)?;
    app::database(&host)?.execute(
        "INSERT INTO jobs (id, kind, payload, idempotency_key, state, run_at, attempts, max_attempts, created_at, updated_at)
         VALUES ('job_1f00000000000000000000000000000e', 'report.nightly', '{}', 'night-1', 'pending', 0, 0, 2, 1, 1)",
        [],
    )?;
    assert_eq!(counts(&run(&host)?), (1, 0, 1, 0, 1));
    let pending = list(&host, "kind=report.nightly")?;
    let job = &pending["items"][0];
    assert_eq!(
        (&job["state"], &job["attempts"]),
        (&json!("pending"), &json!(1)),
        "{pending}"
    );
    assert!(
        job["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("unknown job kind `report.nightly`")),
        "{job}"
    );
    assert_eq!(counts(&run(&host)?), (1, 0, 0, 1, 0));
    assert_eq!(
        list(&host, "state=dead&kind=report.nightly")?["items"][0]["id"],
        job["id"]
    );
    Ok(())
}

#[test]
fn the_listing_pages_through_jobs_by_state_and_kind() -> Result<()> {
    let api = FakeApi::start(Duration::ZERO)?;
    let host = app::start_app_with(api.env())?;
    for to in ["a@example.com", "b@example.com", "c@example.com"] {
        register(&host, to)?;
    }
    let first = list(&host, "state=done&kind=mail.send&limit=2")?;
    let cursor = first["next_cursor"].as_str().context("a second page")?;
    let second = list(
        &host,
        &format!("state=done&kind=mail.send&limit=2&cursor={cursor}"),
    )?;
    assert_eq!(second["next_cursor"], Value::Null, "{second}");
    let mut ids = Vec::new();
    for page in [&first, &second] {
        for job in page["items"].as_array().context("items")? {
            assert_eq!(
                (&job["state"], &job["kind"]),
                (&json!("done"), &json!("mail.send"))
            );
            assert_eq!(job["payload"]["mail_id"], job["idempotency_key"], "{job}");
            ids.push(job["id"].as_str().context("id")?.to_string());
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every job once: {first} {second}");
    let created: Vec<i64> = first["items"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(second["items"].as_array().into_iter().flatten())
        .filter_map(|j| j["created_at"].as_i64())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );
    for state in ["pending", "running", "dead"] {
        let none = list(&host, &format!("state={state}"))?;
        assert!(
            none["items"].as_array().is_some_and(Vec::is_empty),
            "{none}"
        );
    }
    Ok(())
}

#[test]
fn mail_queued_before_the_jobs_migration_gets_a_job_and_is_sent() -> Result<()> {
    // A database at migration 0014, holding a mail nobody sent.
    let earlier = gatehouse_tests::TempDir::new("migrations-0014")?;
    for entry in std::fs::read_dir(root().join("infra/migrations"))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".sql") && name < "0015" {
            std::fs::copy(&path, earlier.path().join(name))?;
        }
    }
    let api = FakeApi::start(Duration::ZERO)?;
    let mut config = app::app_config();
    config.migrations = Some(earlier.path().to_path_buf());
    config.env.extend(api.env());
    let host = TestHost::start(config)?;
    app::database(&host)?.execute(
        "INSERT INTO email_outbox (id, to_address, kind, subject, body_text, status, attempts, next_attempt_at, created_at)
         VALUES ('mail_0123456789abcdef0123456789abcdef', 'old@example.com', 'verify_email', 'Hello', 'Hello', 'pending', 1,
                 0, CAST(strftime('%s', 'now') AS INTEGER))",
        [],
    )?;
    let health = get(&host.url("/v1/health"), &[])?;
    assert_eq!(health.status, 503, "0015 is pending: {}", health.text());

    let migrated = send(
        "POST",
        &host.url("/v1/admin/migrations"),
        &[OPERATOR_AUTH],
        b"",
    )?;
    let migrated = app::expect(migrated, 200)?;
    // 0015 and every later migration, in order.
    assert_eq!(migrated["applied_now"][0], "0015_jobs", "{migrated}");
    let pending = list(&host, "state=pending&kind=mail.send")?;
    let job = &pending["items"][0];
    assert_eq!(
        (
            &job["idempotency_key"],
            &job["payload"]["mail_id"],
            &job["attempts"]
        ),
        (
            &json!("mail_0123456789abcdef0123456789abcdef"),
            &json!("mail_0123456789abcdef0123456789abcdef"),
            &json!(1)
        ),
        "{pending}"
    );
    assert_eq!(counts(&run(&host)?), (1, 1, 0, 0, 0));
    assert_eq!(api.answered("old@example.com"), vec![200]);
    assert_eq!(get(&host.url("/v1/health"), &[])?.status, 200);
    Ok(())
}
