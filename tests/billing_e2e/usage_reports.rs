//! Usage on metered prices: what an org on a metered plan consumed,
//! reported to Stripe's billing meter events by the `billing.report_usage`
//! jobs, an hour's window at a time, each window once whatever is retried
//! or run again; nothing for an org whose plan bills no usage.

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use gatehouse_tests::app::{Org, database, expect, post};
use serde_json::{Value, json};

use crate::support::{Billing, T, metered_plans, start_configured};

const HOUR: i64 = 3600;
/// The jobs' settle delay: a window is reported this long after it ends.
const SETTLE: i64 = 60;
const JOB: &str = "billing.report_usage";

/// What the line between the app and the Stripe stand-in does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Requests and answers pass.
    Up,
    /// Every connection is closed unanswered: Stripe is unreachable.
    Down,
    /// Requests reach Stripe, which takes them; its answers are lost.
    AnswersLost,
}

/// A switch on the line to the Stripe stand-in: the app is configured to
/// call Stripe here, and the test cuts the line or loses Stripe's answers.
struct Switch {
    url: String,
    state: Arc<Mutex<(Line, Option<SocketAddr>)>>,
}

impl Switch {
    fn start() -> Result<Switch> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new((Line::Up, None)));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (line, stripe) = *shared.lock().unwrap_or_else(PoisonError::into_inner);
                std::thread::spawn(move || {
                    let _ = carry(client, line, stripe);
                });
            }
        });
        Ok(Switch { url, state })
    }

    /// Leads the line to the stand-in at `base_url` (`http://host:port`).
    fn lead_to(&self, base_url: &str) -> Result<()> {
        let addr = base_url
            .strip_prefix("http://")
            .context("an http URL")?
            .parse()?;
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = Some(addr);
        Ok(())
    }

    fn set(&self, line: Line) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).0 = line;
    }
}

/// One connection from the app, as the line is when it opens.
fn carry(client: TcpStream, line: Line, stripe: Option<SocketAddr>) -> std::io::Result<()> {
    let (Line::Up | Line::AnswersLost, Some(addr)) = (line, stripe) else {
        // Down: dropped, so the connection closes without an answer.
        return Ok(());
    };
    let server = TcpStream::connect(addr)?;
    let (mut from_client, mut to_server) = (client.try_clone()?, server.try_clone()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let (mut from_server, mut to_client) = (server, client);
    if line == Line::AnswersLost {
        // The stand-in answers once it has taken the request: its answer's
        // first byte is the sign, and the answer is dropped with the line.
        let _ = from_server.read(&mut [0u8; 1])?;
        return to_client.shutdown(Shutdown::Both);
    }
    std::io::copy(&mut from_server, &mut to_client)?;
    to_client.shutdown(Shutdown::Write)
}

/// The app selling [`metered_plans`], calling Stripe through a switch.
fn start_metered() -> Result<(Billing, Switch)> {
    let switch = Switch::start()?;
    let b = start_configured(None, |stripe| {
        switch.lead_to(&stripe.base_url)?;
        Ok(vec![
            ("BILLING_PLANS", metered_plans().to_string()),
            ("STRIPE_API_BASE_URL", switch.url.clone()),
        ])
    })?;
    Ok((b, switch))
}

/// `at` seconds after [`T`] as an RFC 3339 time: every time these tests
/// use falls on T's day (2027-01-15, T is 08:00 UTC).
fn time(at: i64) -> String {
    let of_day = 8 * HOUR + at;
    assert!((0..24 * HOUR).contains(&of_day), "{at} leaves T's day");
    format!(
        "2027-01-15T{:02}:{:02}:{:02}Z",
        of_day / HOUR,
        of_day / 60 % 60,
        of_day % 60
    )
}

fn meters(b: &Billing, org: &Org, bodies: &[Value]) -> Result<()> {
    for body in bodies {
        expect(post(&b.host, "/v1/meters", body, Some(&org.admin))?, 201)?;
    }
    Ok(())
}

const REQUESTS: &str =
    r#"{"key": "requests", "event_type": "api.request", "aggregation": "count"}"#;
const COMPUTE: &str = r#"{"key": "compute", "event_type": "job.finished", "aggregation": "sum", "value_path": "usage.seconds"}"#;

fn meter(text: &str) -> Result<Value> {
    Ok(serde_json::from_str(text)?)
}

/// Usage events of the org: `(id, type, seconds after T, data)`.
fn usage(b: &Billing, org: &Org, events: &[(&str, &str, i64, Value)]) -> Result<()> {
    let batch: Vec<Value> = events
        .iter()
        .map(|(id, kind, at, data)| {
            json!({"specversion": "1.0", "id": id, "source": "usage-reports-test", "type": kind,
                   "subject": format!("org:{}", org.id), "time": time(*at), "data": data})
        })
        .collect();
    let answer = expect(
        post(&b.host, "/v1/usage/events", &json!(batch), Some(&org.admin))?,
        200,
    )?;
    assert_eq!(answer["accepted"], json!(events.len()), "{answer}");
    Ok(())
}

/// The org's customer at Stripe.
fn customer(b: &Billing, org: &Org) -> Result<String> {
    let state = b.billing(org)?;
    Ok(state["stripe_customer_id"]
        .as_str()
        .context("stripe_customer_id")?
        .to_string())
}

/// A meter event: identifier, event name, customer, value and timestamp.
type Sent = (String, String, String, String, i64);

/// Each meter event Stripe took; every one of them counts (no error from
/// Stripe).
fn sent(b: &Billing) -> Result<Vec<Sent>> {
    let events = b.stripe.meter_events()?;
    events
        .iter()
        .map(|e| {
            assert_eq!(e["error_code"], Value::Null, "{e}");
            let text = |v: &Value| v.as_str().map(str::to_string).context("text");
            Ok((
                text(&e["identifier"])?,
                text(&e["event_name"])?,
                text(&e["payload"]["stripe_customer_id"])?,
                text(&e["payload"]["value"])?,
                e["timestamp"].as_i64().context("timestamp")?,
            ))
        })
        .collect()
}

/// The event expected for the org's `meter` over `[from, to)` after `T`.
fn event(
    org: &Org,
    meter: &str,
    name: &str,
    customer: &str,
    value: &str,
    (from, to): (i64, i64),
) -> Sent {
    (
        format!("{}:{meter}:{}-{}", org.id, T + from, T + to),
        name.to_string(),
        customer.to_string(),
        value.to_string(),
        T + to,
    )
}

/// The org's report jobs: state, last error and when due, oldest first.
fn jobs(b: &Billing, org: &Org) -> Result<Vec<(String, Option<String>, i64)>> {
    let db = database(&b.host)?;
    let mut rows = db.prepare(
        "SELECT state, last_error, run_at FROM jobs
         WHERE kind = ?1 AND json_extract(payload, '$.org_id') = ?2 ORDER BY run_at, created_at",
    )?;
    let found = rows
        .query_map([JOB, org.id.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(found)
}

#[test]
fn usage_on_a_metered_plan_is_reported_once_per_window_and_a_plan_without_none() -> Result<()> {
    let (mut b, _line) = start_metered()?;
    let acme = b.org("acme")?;
    let globex = b.org("globex")?;
    for org in [&acme, &globex] {
        meters(&b, org, &[meter(REQUESTS)?, meter(COMPUTE)?])?;
        // Usage before the subscription's period is not billed.
        usage(&b, org, &[("early", "api.request", -600, json!({}))])?;
    }
    b.subscribe(&acme, "scale", 1)?;
    let requests = b.stripe.requests()?;
    let checkout = requests
        .iter()
        .find(|r| r["path"] == "/v1/checkout/sessions")
        .context("a checkout session")?;
    // The metered prices are on the subscription, without a quantity.
    assert_eq!(
        checkout["params"]["line_items"],
        json!([{"price": "price_scale_monthly", "quantity": "1"},
               {"price": "price_scale_requests"}, {"price": "price_scale_compute"}])
    );
    b.subscribe(&globex, "pro", 5)?;
    b.sync()?;
    // Billing started the chain with the subscription: one job however
    // many of Stripe's events it took, already run (nothing to report
    // yet), and the next one due at the next hour.
    let chain = jobs(&b, &acme)?;
    assert_eq!(chain.len(), 2, "{chain:?}");
    assert_eq!(chain[0].0, "done");
    assert_eq!(
        (chain[1].0.as_str(), chain[1].2),
        ("pending", T + HOUR + SETTLE)
    );
    assert!(sent(&b)?.is_empty());

    for org in [&acme, &globex] {
        usage(
            &b,
            org,
            &[
                ("r1", "api.request", 300, json!({})),
                ("r2", "api.request", 1800, json!({})),
                ("c1", "job.finished", 600, json!({"usage": {"seconds": 7}})),
                (
                    "c2",
                    "job.finished",
                    1200,
                    json!({"usage": {"seconds": 5.5}}),
                ),
                ("r3", "api.request", HOUR + 300, json!({})),
                (
                    "c3",
                    "job.finished",
                    HOUR + 900,
                    json!({"usage": {"seconds": 3.5}}),
                ),
            ],
        )?;
    }
    // A consume counts as a request too (recorded at the host's time).
    let consumed = expect(
        post(
            &b.host,
            "/v1/quotas/consume",
            &json!({"subject": format!("user:{}", acme.admin_id), "meter": "requests", "amount": 1}),
            Some(&acme.admin),
        )?,
        200,
    )?;
    assert_eq!(consumed["allowed"], true, "{consumed}");

    b.tick(HOUR + SETTLE)?;
    b.run_jobs()?;
    let cus = customer(&b, &acme)?;
    let first = vec![
        event(&acme, "requests", "api_requests", &cus, "3", (0, HOUR)),
        // 12.5 seconds: the half is carried to the next window.
        event(&acme, "compute", "compute_seconds", &cus, "12", (0, HOUR)),
    ];
    assert_eq!(sent(&b)?, first);
    // Each with an Idempotency-Key of its own identifier.
    let keys: Vec<Value> = b
        .stripe
        .requests()?
        .into_iter()
        .filter(|r| r["path"] == "/v1/billing/meter_events")
        .map(|r| r["idempotency_key"].clone())
        .collect();
    let expected: Vec<Value> = first
        .iter()
        .map(|e| json!(format!("gatehouse-usage-{}", e.0)))
        .collect();
    assert_eq!(keys, expected);

    // Running the jobs again reports nothing again.
    b.run_jobs()?;
    b.tick(10 * 60)?;
    b.run_jobs()?;
    assert_eq!(sent(&b)?, first);

    // The next hour is its own window.
    b.tick(HOUR - 10 * 60)?;
    b.run_jobs()?;
    b.run_jobs()?;
    let mut all = first.clone();
    all.extend([
        event(
            &acme,
            "requests",
            "api_requests",
            &cus,
            "1",
            (HOUR, 2 * HOUR),
        ),
        // 3.5 seconds and the half carried.
        event(
            &acme,
            "compute",
            "compute_seconds",
            &cus,
            "4",
            (HOUR, 2 * HOUR),
        ),
    ]);
    assert_eq!(sent(&b)?, all);

    // Globex's plan bills no usage: no job, nothing for its customer.
    assert!(jobs(&b, &globex)?.is_empty());
    let globex_customer = customer(&b, &globex)?;
    assert!(sent(&b)?.iter().all(|e| e.2 != globex_customer));
    Ok(())
}

#[test]
fn a_report_stripe_did_not_answer_is_retried_and_taken_once() -> Result<()> {
    let (mut b, line) = start_metered()?;
    let acme = b.org("acme")?;
    meters(&b, &acme, &[meter(REQUESTS)?])?;
    b.subscribe(&acme, "scale", 1)?;
    b.sync()?;
    usage(
        &b,
        &acme,
        &[
            ("r1", "api.request", 600, json!({})),
            ("r2", "api.request", 1200, json!({})),
            ("r3", "api.request", HOUR + 600, json!({})),
        ],
    )?;
    let cus = customer(&b, &acme)?;
    let first = event(&acme, "requests", "api_requests", &cus, "2", (0, HOUR));

    // Stripe cannot be reached: the job waits to try again.
    line.set(Line::Down);
    b.tick(HOUR + SETTLE)?;
    b.run_jobs()?;
    assert!(sent(&b)?.is_empty());
    let retrying = jobs(&b, &acme)?
        .into_iter()
        .find(|j| j.1.is_some())
        .context("a job that failed")?;
    assert_eq!(retrying.0, "pending");
    assert!(
        retrying
            .1
            .as_deref()
            .is_some_and(|e| e.contains("Stripe did not answer")),
        "{retrying:?}"
    );

    // Stripe takes the retry, but its answer never comes back.
    line.set(Line::AnswersLost);
    b.tick(2 * 60)?;
    b.run_jobs()?;
    assert_eq!(b.stripe.meter_events()?.len(), 1);

    // The next retry sends the same report again: Stripe has it once.
    line.set(Line::Up);
    b.tick(4 * 60)?;
    b.run_jobs()?;
    b.run_jobs()?;
    let taken = b.stripe.meter_events()?.len();
    assert_eq!(taken, 1, "Stripe has the window {taken} times");
    assert_eq!(sent(&b)?, vec![first.clone()]);
    let states: Vec<String> = jobs(&b, &acme)?.into_iter().map(|j| j.0).collect();
    assert_eq!(states, ["done", "done", "pending"], "{states:?}");

    // And the next hour is reported as its own window, when its run is
    // due (the retries above took six minutes of it).
    b.tick(HOUR - 6 * 60)?;
    b.run_jobs()?;
    let second = event(
        &acme,
        "requests",
        "api_requests",
        &cus,
        "1",
        (HOUR, 2 * HOUR),
    );
    assert_eq!(sent(&b)?, vec![first, second]);
    Ok(())
}

#[test]
fn a_metered_meter_that_does_not_add_up_fails_its_job_and_the_others_are_still_reported()
-> Result<()> {
    let (mut b, _line) = start_metered()?;
    let acme = b.org("acme")?;
    let peak = json!({"key": "peak", "event_type": "load.sampled", "aggregation": "max", "value_path": "load"});
    meters(&b, &acme, &[meter(REQUESTS)?, peak])?;
    b.subscribe(&acme, "scale", 1)?;
    b.sync()?;
    usage(
        &b,
        &acme,
        &[
            ("r1", "api.request", 600, json!({})),
            ("p1", "load.sampled", 700, json!({"load": 9})),
        ],
    )?;
    b.tick(HOUR + SETTLE)?;
    b.run_jobs()?;
    let cus = customer(&b, &acme)?;
    assert_eq!(
        sent(&b)?,
        vec![event(
            &acme,
            "requests",
            "api_requests",
            &cus,
            "1",
            (0, HOUR)
        )]
    );
    // The job says what is wrong, and the chain goes on for the others.
    let chain = jobs(&b, &acme)?;
    let failed = chain.iter().find(|j| j.0 == "dead").context("a dead job")?;
    assert!(
        failed
            .1
            .as_deref()
            .is_some_and(|e| e.contains("meter `peak` is a max meter")),
        "{chain:?}"
    );
    assert_eq!(
        chain.last().map(|j| (j.0.as_str(), j.2)),
        Some(("pending", T + 2 * HOUR + SETTLE))
    );
    Ok(())
}
