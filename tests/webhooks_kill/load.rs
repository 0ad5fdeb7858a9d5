//! The deliveries (Stripe and GitHub, signed up front by stripe-node and
//! octokit) and the client threads that post them until one of them,
//! on reading the `200` that makes [`KILL_AFTER`], kills the host.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::host::{Host, Killer};
use crate::setup::{GITHUB_SECRET, STRIPE_SECRET, Setup};

/// Client threads posting at once.
pub const CLIENTS: usize = 8;
/// The kill comes once this many deliveries of a round were answered `200`.
pub const KILL_AFTER: usize = 600;
/// Every fourth delivery is GitHub's, whose body is deduplicated too.
const GITHUB_EVERY: usize = 4;

/// One delivery: the id it is deduplicated on, where it goes, its body
/// and its headers as the provider signed them.
pub struct Delivery {
    pub id: String,
    pub source: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// A Stripe event of about 1.1 KB, as Stripe sends `payment_intent.succeeded`.
fn stripe_event(id: &str, n: usize) -> String {
    json!({
        "id": id, "object": "event", "api_version": "2024-06-20", "created": 1_800_000_000 + n,
        "livemode": false, "pending_webhooks": 1, "type": "payment_intent.succeeded",
        "request": {"id": format!("req_{n:014}"), "idempotency_key": format!("ik-{n:08}-kill")},
        "data": {"object": {
            "id": format!("pi_3Kill{n:016}"), "object": "payment_intent", "amount": 2000 + n,
            "amount_received": 2000 + n, "capture_method": "automatic", "currency": "eur",
            "client_secret": format!("pi_3Kill{n:016}_secret_{}", "x".repeat(24)),
            "created": 1_800_000_000 + n, "customer": format!("cus_Kill{n:010}"),
            "description": "Zoë's order ☕", "latest_charge": format!("ch_3Kill{n:016}"),
            "metadata": {"order_id": format!("ord_{n}"), "tenant": "acme"},
            "payment_method": format!("pm_1Kill{n:014}"), "payment_method_types": ["card"],
            "receipt_email": "ada@example.com", "status": "succeeded",
            "shipping": {"name": "Ada Lovelace", "address": {"line1": "12 St James's Square",
                         "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"}},
        }},
    })
    .to_string()
}

/// A GitHub `push` of about 1 KB.
fn github_push(n: usize) -> String {
    json!({
        "ref": "refs/heads/main", "before": format!("{:040x}", n), "after": format!("{:040x}", n + 1),
        "repository": {"id": 1_296_269, "full_name": "acme/gatehouse", "private": true},
        "pusher": {"name": "ada", "email": "ada@example.com"},
        "head_commit": {"id": format!("{:040x}", n + 1), "message": format!("Zoë's fix №{n} ☕"),
                        "timestamp": "2026-11-29T12:00:00Z", "added": [], "removed": [],
                        "modified": ["components/webhooks/src/ingest.rs"]},
        "commits": [{"id": format!("{:040x}", n + 1), "distinct": true, "message": format!("fix {n}")}],
    })
    .to_string()
}

/// `count` deliveries numbered from `first`, signed at `now`.
pub fn signed(setup: &Setup, first: usize, count: usize, now: i64) -> Result<Vec<Delivery>> {
    let mut deliveries = Vec::with_capacity(count);
    let mut jobs = Vec::with_capacity(count);
    for n in first..first + count {
        if n % GITHUB_EVERY == 0 {
            let id = format!("6e1d7c2a-8b3f-11ef-9a4e-{n:012}");
            let body = github_push(n);
            jobs.push(
                json!({"op": "github", "secret": GITHUB_SECRET, "payload": body,
                             "delivery": id, "event": "push"}),
            );
            deliveries.push((id, setup.github.clone(), body));
        } else {
            let id = format!("evt_3Kill{n:019}");
            let body = stripe_event(&id, n);
            jobs.push(
                json!({"op": "stripe", "secret": STRIPE_SECRET, "payload": body, "timestamp": now}),
            );
            deliveries.push((id, setup.stripe.clone(), body));
        }
    }
    let signed = gatehouse_tests::webhook_signers::run(Value::Array(jobs))?;
    ensure!(signed.len() == deliveries.len(), "one signature a job");
    deliveries
        .into_iter()
        .zip(signed)
        .map(|((id, source, body), result)| {
            let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
            for (name, value) in result["headers"].as_object().context("headers")? {
                headers.push((
                    name.clone(),
                    value.as_str().context("a header")?.to_string(),
                ));
            }
            Ok(Delivery {
                id,
                source,
                body,
                headers,
            })
        })
        .collect()
}

/// Posts `delivery` to `host` (with `headers` in place of its own when
/// given): `Ok(Some(answer))` for a `200`, `Ok(None)` when no answer came,
/// an error for any other answer (nothing else may be said to a
/// well-signed delivery).
pub fn post(agent: &ureq::Agent, base: &str, delivery: &Delivery) -> Result<Option<Value>> {
    post_with(agent, base, delivery, &delivery.headers)
}

pub fn post_with(
    agent: &ureq::Agent,
    base: &str,
    delivery: &Delivery,
    headers: &[(String, String)],
) -> Result<Option<Value>> {
    let mut request = ureq::http::Request::post(format!("{base}/v1/hooks/{}", delivery.source));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request.body(delivery.body.as_bytes().to_vec())?;
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
        delivery.id,
        String::from_utf8_lossy(&body)
    );
    Ok(Some(serde_json::from_slice(&body)?))
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// How one posted delivery ended, as its sender saw it.
pub enum Sent {
    /// Answered `200` with this stored event id.
    Acknowledged(String),
    /// No answer (the host was killed under it).
    Cut,
}

/// What a round of load left: each posted delivery's outcome by index,
/// and the one whose `200` the kill came right after.
pub struct Round {
    pub outcomes: BTreeMap<usize, Sent>,
    pub last_answered: usize,
}

/// What one client thread sent, and the index of the delivery whose
/// answer it killed the host after, if it did.
type Client = (Vec<(usize, Sent)>, Option<usize>);

/// Each client thread posts its share of `deliveries` in turn; the one
/// that reads the [`KILL_AFTER`]th `200` kills the host at once and stops.
pub fn until_killed(host: &Host, deliveries: &Arc<Vec<Delivery>>) -> Result<Round> {
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let base = host.url("");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (deliveries, acknowledged, base, killer): (_, _, _, Killer) = (
                deliveries.clone(),
                acknowledged.clone(),
                base.clone(),
                host.killer(),
            );
            std::thread::spawn(move || -> Result<Client> {
                let agent = agent();
                let mut sent = Vec::new();
                for n in (client..deliveries.len()).step_by(CLIENTS) {
                    let Some(answer) = post(&agent, &base, &deliveries[n])? else {
                        sent.push((n, Sent::Cut));
                        return Ok((sent, None));
                    };
                    ensure!(answer["duplicate"] == false, "{answer}");
                    let id = answer["id"].as_str().context("event id")?.to_string();
                    sent.push((n, Sent::Acknowledged(id)));
                    if acknowledged.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                        killer.kill()?;
                        return Ok((sent, Some(n)));
                    }
                }
                Ok((sent, None))
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !host.exited()? {
        if Instant::now() > deadline {
            host.stop()?;
            anyhow::bail!(
                "only {} deliveries were answered",
                acknowledged.load(Ordering::SeqCst)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    host.stop()?;
    let mut outcomes = BTreeMap::new();
    let mut last_answered = None;
    for client in clients {
        let (sent, killed) = client
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        // Every client was still posting when the host died: the killer
        // stopped after its answer, each other one was cut off.
        let cut = matches!(sent.last(), Some((_, Sent::Cut)));
        ensure!(
            cut != killed.is_some(),
            "a client ran out of deliveries before the kill"
        );
        last_answered = last_answered.or(killed);
        outcomes.extend(sent);
    }
    Ok(Round {
        outcomes,
        last_answered: last_answered.context("no client killed the host")?,
    })
}
