//! The host killed with SIGKILL in the middle of a load of Stripe
//! deliveries, then started again on the same SQLite files: every delivery
//! that was answered `200` is in the inbox exactly once, with the job that
//! hands it to its handler, and a provider's retry of any delivery (one
//! that was answered, or one cut off by the kill) answers as a duplicate or
//! is stored now, never twice.
//!
//! The host runs as a child process (`gatehouse-host up`, as `scripts/up`
//! runs it), so the kill stops it between any two instructions: mid-write,
//! mid-transaction, or with an answer written but not yet sent. Deliveries
//! are signed up front by stripe-node (`tests/webhook-signers`), each with
//! its own `evt_` id, and posted by several client threads at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use gatehouse_tests::app::MASTER_KEY;
use gatehouse_tests::{TempDir, cache_dir, free_port, host_binary, root, send};
use serde_json::{Value, json};
use webhooks_core::SigningSecret;

/// Deliveries signed up front: far more than are sent before the kill, so
/// the load is still running when it comes.
const EVENTS: usize = 3000;
/// Client threads posting at once.
const CLIENTS: usize = 8;
/// The kill comes once this many deliveries were answered `200`.
const KILL_AFTER: usize = 800;
const STRIPE_SECRET: &str = "whsec_stripe_secret_of_the_kill_test";
const PASSWORD: &str = "violet-tractor-umbrella";

/// `gatehouse-host up` on `state`, killed on drop.
struct Host {
    child: Child,
    base: String,
}

impl Host {
    /// Starts the host on a free port and waits until it answers.
    fn start(state: &Path) -> Result<Host> {
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        // A handler that is never called: the host runs no jobs unless
        // told to, so each dispatch job stays queued, to be counted.
        let handlers = json!([{"provider": "stripe", "sources": ["*"], "types": ["*"],
                               "url": "http://127.0.0.1:9/handler"}]);
        let handler_secret = SigningSecret::from_random(&[61u8; 32])?.to_whsec();
        let child = Command::new(host_binary()?)
            .args(["up", "--quiet", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--from")
            .arg(root().join("spin.toml"))
            .arg("--state-dir")
            .arg(state)
            .arg("--cache-dir")
            .arg(cache_dir())
            .env("SPIN_VARIABLE_MASTER_KEY", MASTER_KEY)
            .env("SPIN_VARIABLE_DEV_OUTBOX", "enabled")
            .env("SPIN_VARIABLE_PUBLIC_BASE_URL", &base)
            .env("SPIN_VARIABLE_WEBHOOK_HANDLERS", handlers.to_string())
            .env("SPIN_VARIABLE_WEBHOOK_HANDLER_HOSTS", "http://127.0.0.1:*")
            .env("SPIN_VARIABLE_WEBHOOK_HANDLER_SECRET", handler_secret)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut host = Host { child, base };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(reply) = gatehouse_tests::get(&host.url("/v1/health/live"), &[])
                && reply.status == 200
            {
                return Ok(host);
            }
            if let Some(status) = host.child.try_wait()? {
                bail!("the host exited before it served: {status}");
            }
            ensure!(Instant::now() < deadline, "the host did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no shutdown, no flush, no answer sent after it.
    fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `method path` with a JSON body and a bearer token when given; the JSON
/// answer, which must have `status`.
fn call(host: &Host, method: &str, path: &str, body: &Value, token: Option<&str>) -> Result<Value> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = auth.as_deref() {
        headers.push(("authorization", auth));
    }
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let reply = send(method, &host.url(path), &headers, &bytes)?;
    ensure!(
        (200..300).contains(&reply.status),
        "{method} {path}: {} {}",
        reply.status,
        reply.text()
    );
    if reply.body.is_empty() {
        return Ok(Value::Null);
    }
    reply.json()
}

/// An org admin's session and a Stripe source of the org: the token and
/// the source's id.
fn stripe_source(host: &Host) -> Result<(String, String)> {
    let email = "ada@example.com";
    let register = json!({"email": email, "password": PASSWORD, "display_name": "Ada"});
    call(host, "POST", "/v1/auth/register", &register, None)?;
    let outbox = call(host, "GET", "/v1/dev/outbox", &Value::Null, None)?;
    let mail = outbox["items"][0]["body"].as_str().context("a mail")?;
    let start = mail.find("gvt_").context("a verification token")?;
    let token: String = mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    call(
        host,
        "POST",
        "/v1/auth/verify-email",
        &json!({"token": token}),
        None,
    )?;
    let login = json!({"email": email, "password": PASSWORD});
    let session = call(host, "POST", "/v1/auth/login", &login, None)?["token"]
        .as_str()
        .context("session token")?
        .to_string();
    let org = json!({"name": "acme", "handle": "acme"});
    call(host, "POST", "/v1/orgs", &org, Some(&session))?;
    let source = json!({"provider": "stripe", "secrets": [STRIPE_SECRET]});
    let made = call(
        host,
        "POST",
        "/v1/webhooks/sources",
        &source,
        Some(&session),
    )?;
    let id = made["id"].as_str().context("source id")?.to_string();
    Ok((session, id))
}

/// A Stripe event of about 1.1 KB, as Stripe sends `payment_intent.succeeded`.
fn stripe_event(id: &str, n: usize) -> String {
    json!({
        "id": id, "object": "event", "api_version": "2024-06-20", "created": 1_800_000_000 + n,
        "livemode": false, "pending_webhooks": 1, "type": "payment_intent.succeeded",
        "request": {"id": format!("req_{n:014}"), "idempotency_key": format!("ik-{n:08}-kill")},
        "data": {"object": {
            "id": format!("pi_3Kill{n:016}"), "object": "payment_intent", "amount": 2000 + n,
            "amount_capturable": 0, "amount_received": 2000 + n, "capture_method": "automatic",
            "client_secret": format!("pi_3Kill{n:016}_secret_{}", "x".repeat(24)),
            "confirmation_method": "automatic", "created": 1_800_000_000 + n, "currency": "eur",
            "customer": format!("cus_Kill{n:010}"), "description": "Zoë's order ☕",
            "latest_charge": format!("ch_3Kill{n:016}"), "livemode": false,
            "metadata": {"order_id": format!("ord_{n}"), "tenant": "acme"},
            "payment_method": format!("pm_1Kill{n:014}"),
            "payment_method_types": ["card"], "receipt_email": "ada@example.com",
            "shipping": {"name": "Ada Lovelace", "address": {"line1": "12 St James's Square",
                         "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"}},
            "status": "succeeded", "statement_descriptor": "GATEHOUSE",
        }},
    })
    .to_string()
}

/// One delivery: its Stripe id, body and signature.
struct Delivery {
    event_id: String,
    body: String,
    signature: String,
}

/// [`EVENTS`] deliveries signed by stripe-node at `now`, in one process.
fn signed_deliveries(now: i64) -> Result<Vec<Delivery>> {
    let mut deliveries: Vec<Delivery> = (0..EVENTS)
        .map(|n| {
            let event_id = format!("evt_3Kill{n:019}");
            Delivery {
                body: stripe_event(&event_id, n),
                event_id,
                signature: String::new(),
            }
        })
        .collect();
    let jobs: Vec<Value> = deliveries
        .iter()
        .map(|d| json!({"op": "stripe", "secret": STRIPE_SECRET, "payload": d.body, "timestamp": now}))
        .collect();
    let signed = gatehouse_tests::webhook_signers::run(Value::Array(jobs))?;
    ensure!(signed.len() == deliveries.len(), "one signature a job");
    for (delivery, result) in deliveries.iter_mut().zip(signed) {
        delivery.signature = result["headers"]["Stripe-Signature"]
            .as_str()
            .context("Stripe-Signature")?
            .to_string();
    }
    Ok(deliveries)
}

/// How one posted delivery ended, as its sender saw it.
enum Sent {
    /// Answered `200` with this stored event id.
    Acknowledged(String),
    /// No answer (the host was killed under it).
    Cut,
}

/// Posts `delivery` to `url`: `Ok(Some(id))` for a `200` naming the
/// stored event, `Ok(None)` when no answer came, an error for any other
/// answer (nothing else may be said to a well-signed new delivery).
fn post(agent: &ureq::Agent, url: &str, delivery: &Delivery) -> Result<Option<Value>> {
    let request = ureq::http::Request::post(url)
        .header("content-type", "application/json")
        .header("stripe-signature", &delivery.signature)
        .body(delivery.body.as_bytes().to_vec())?;
    let Ok(response) = agent.run(request) else {
        return Ok(None);
    };
    let status = response.status().as_u16();
    let Ok(body) = response.into_body().read_to_vec() else {
        return Ok(None);
    };
    ensure!(
        status == 200,
        "{}: {status} {}",
        delivery.event_id,
        String::from_utf8_lossy(&body)
    );
    Ok(Some(serde_json::from_slice(&body)?))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Each client thread posts its share of `deliveries` in turn until the
/// host stops answering; what each posted delivery got, by index.
fn load_until_killed(
    host: &mut Host,
    source: &str,
    deliveries: &Arc<Vec<Delivery>>,
) -> Result<BTreeMap<usize, Sent>> {
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let url = host.url(&format!("/v1/hooks/{source}"));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (deliveries, acknowledged, url) =
                (deliveries.clone(), acknowledged.clone(), url.clone());
            std::thread::spawn(move || -> Result<(Vec<(usize, Sent)>, bool)> {
                let agent = agent();
                let mut sent = Vec::new();
                for n in (client..deliveries.len()).step_by(CLIENTS) {
                    let Some(answer) = post(&agent, &url, &deliveries[n])? else {
                        sent.push((n, Sent::Cut));
                        return Ok((sent, true));
                    };
                    ensure!(answer["duplicate"] == false, "{answer}");
                    let id = answer["id"].as_str().context("event id")?.to_string();
                    sent.push((n, Sent::Acknowledged(id)));
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                }
                Ok((sent, false))
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.load(Ordering::SeqCst) < KILL_AFTER {
        ensure!(
            Instant::now() < deadline,
            "only {} deliveries were answered",
            acknowledged.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    host.kill()?;
    let mut outcomes = BTreeMap::new();
    for client in clients {
        let (sent, cut) = client
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        // Every client was still posting when the host died.
        ensure!(cut, "a client ran out of deliveries before the kill");
        outcomes.extend(sent);
    }
    Ok(outcomes)
}

/// The source's stored events, `delivery id -> event ids`, and the
/// dispatch jobs queued, `event id -> count`, read from the database file.
type Stored = (BTreeMap<String, Vec<String>>, BTreeMap<String, i64>);

fn stored(state: &Path, source: &str) -> Result<Stored> {
    let conn =
        rusqlite::Connection::open(state.join(gatehouse_host::runtime_config::DEFAULT_DB_FILE))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    ensure!(check == "ok", "integrity_check: {check}");
    let mut events: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rows = conn.prepare(
        "SELECT delivery_id, event_id FROM webhook_events WHERE source_id = ?1 ORDER BY rowid",
    )?;
    for row in rows.query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (delivery, event): (String, String) = row?;
        events.entry(delivery).or_default().push(event);
    }
    let mut jobs = BTreeMap::new();
    let mut rows = conn.prepare(
        "SELECT json_extract(payload, '$.event_id'), COUNT(*) FROM jobs
         WHERE kind = 'webhook.dispatch' GROUP BY 1",
    )?;
    for row in rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (event, count): (String, i64) = row?;
        jobs.insert(event, count);
    }
    Ok((events, jobs))
}

/// Each stored event once, each with its one dispatch job, and no job
/// without its event: what the event's transaction promises.
fn check_each_once(
    events: &BTreeMap<String, Vec<String>>,
    jobs: &BTreeMap<String, i64>,
) -> Result<()> {
    for (delivery, ids) in events {
        ensure!(ids.len() == 1, "{delivery} is stored {} times", ids.len());
        ensure!(
            jobs.get(&ids[0]) == Some(&1),
            "{delivery} ({}) has {:?} dispatch jobs",
            ids[0],
            jobs.get(&ids[0])
        );
    }
    let stored: BTreeSet<&String> = events.values().flatten().collect();
    for event in jobs.keys() {
        ensure!(
            stored.contains(event),
            "a dispatch job for {event}, never stored"
        );
    }
    Ok(())
}

#[test]
fn a_host_killed_mid_load_keeps_every_acknowledged_delivery_once_and_retries_find_them()
-> Result<()> {
    let state = TempDir::new("webhooks-kill")?;
    let mut host = Host::start(state.path())?;
    let (session, source) = stripe_source(&host)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let deliveries = Arc::new(signed_deliveries(now)?);

    let outcomes = load_until_killed(&mut host, &source, &deliveries)?;
    let acknowledged: BTreeMap<&str, &str> = outcomes
        .iter()
        .filter_map(|(n, sent)| match sent {
            Sent::Acknowledged(id) => Some((deliveries[*n].event_id.as_str(), id.as_str())),
            Sent::Cut => None,
        })
        .collect();
    let cut: Vec<usize> = outcomes
        .iter()
        .filter_map(|(n, sent)| matches!(sent, Sent::Cut).then_some(*n))
        .collect();
    ensure!(acknowledged.len() >= KILL_AFTER, "{}", acknowledged.len());
    ensure!(cut.len() == CLIENTS, "{cut:?}");

    // Started again on the same files.
    let host = Host::start(state.path())?;
    let (events, jobs) = stored(state.path(), &source)?;
    check_each_once(&events, &jobs)?;
    for (delivery, id) in &acknowledged {
        let ids = events.get(*delivery).map(Vec::as_slice).unwrap_or_default();
        ensure!(
            ids == [id.to_string()],
            "{delivery} answered as {id}, stored as {ids:?}"
        );
    }
    // Nothing stored that was not sent; a cut-off delivery may or may not be.
    let posted: BTreeSet<&str> = outcomes
        .keys()
        .map(|n| deliveries[*n].event_id.as_str())
        .collect();
    for delivery in events.keys() {
        ensure!(
            posted.contains(delivery.as_str()),
            "{delivery} was never sent"
        );
    }
    ensure!(
        events.len() <= acknowledged.len() + cut.len(),
        "{} stored, {} answered, {} cut off",
        events.len(),
        acknowledged.len(),
        cut.len()
    );

    let cut_but_stored = cut
        .iter()
        .filter(|n| events.contains_key(&deliveries[**n].event_id))
        .count();
    eprintln!(
        "killed after {} answered deliveries; {} cut off by the kill, {cut_but_stored} of them stored",
        acknowledged.len(),
        cut.len()
    );

    // The inbox reads them after the restart.
    for (delivery, id) in acknowledged.iter().step_by(97) {
        let read = call(
            &host,
            "GET",
            &format!("/v1/webhooks/events/{id}"),
            &Value::Null,
            Some(&session),
        )?;
        ensure!(
            read["delivery_id"] == *delivery && read["payload"]["id"] == *delivery,
            "{read}"
        );
    }
    // Stripe retries: an answered delivery is a duplicate of what was
    // stored; a cut-off one is either that or stored now, once.
    let agent = agent();
    let url = host.url(&format!("/v1/hooks/{source}"));
    let by_id: BTreeMap<&str, &Delivery> = deliveries
        .iter()
        .map(|d| (d.event_id.as_str(), d))
        .collect();
    for (delivery, id) in acknowledged.iter().step_by(13) {
        let answer = post(&agent, &url, by_id[delivery])?.context("an answer")?;
        ensure!(
            answer == json!({"id": id, "duplicate": true}),
            "{delivery}: {answer}"
        );
    }
    for n in &cut {
        let delivery = &deliveries[*n];
        let answer = post(&agent, &url, delivery)?.context("an answer")?;
        let before = events.get(&delivery.event_id);
        let expected = match before {
            Some(ids) => json!({"id": ids[0], "duplicate": true}),
            None => json!({"id": answer["id"], "duplicate": false}),
        };
        ensure!(
            answer == expected,
            "{}: {answer}, stored before: {before:?}",
            delivery.event_id
        );
    }
    let (events, jobs) = stored(state.path(), &source)?;
    check_each_once(&events, &jobs)?;
    ensure!(
        events.len() == acknowledged.len() + cut.len(),
        "{} stored after the retries, {} posted",
        events.len(),
        acknowledged.len() + cut.len()
    );
    Ok(())
}
