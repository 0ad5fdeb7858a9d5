//! A local server speaking Stripe's HTTP API wire format
//! (`tests/stripe-api/server.mjs`), for the billing end-to-end tests:
//! Stripe itself cannot be reached from the test machines. It answers
//! form-encoded requests with Stripe's objects and errors, honours
//! idempotency keys, and records signed webhook events (signed by
//! stripe-node itself) that a test hands to Gatehouse as Stripe would.
//!
//! The test drives what happens outside the API through the server's
//! `/_test/` routes: its clock, a customer paying at checkout, renewals that
//! fail or succeed, subscription changes and entitlements.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::{Reply, get, root, send};

/// The server process, stopped on drop.
pub struct StripeApi {
    /// `http://127.0.0.1:<port>`: what Gatehouse is configured to call
    /// instead of `https://api.stripe.com`.
    pub base_url: String,
    /// The only API key the server accepts.
    pub secret_key: String,
    /// The `whsec_` secret its events are signed with.
    pub webhook_secret: String,
    child: Child,
}

/// One event the server emitted, as a webhook delivery would carry it.
#[derive(Debug, Clone)]
pub struct StripeEvent {
    /// `evt_...`.
    pub id: String,
    /// The event type, e.g. `customer.subscription.updated`.
    pub kind: String,
    /// When it was emitted, on the server's clock (unix seconds).
    pub created: i64,
    /// The exact JSON text of the event: the body to deliver.
    pub payload: String,
    /// A `Stripe-Signature` header value for `payload`.
    pub signature: String,
}

impl StripeEvent {
    /// The payload parsed.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.payload).context("event payload")
    }
}

impl Drop for StripeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StripeApi {
    /// Starts the server on a free loopback port, accepting only
    /// `secret_key`, signing events with `webhook_secret`, with `prices`
    /// (a JSON array of `{id, lookup_key, unit_amount, currency,
    /// recurring: {interval, usage_type}, product}`) preloaded.
    pub fn start(secret_key: &str, webhook_secret: &str, prices: &Value) -> Result<StripeApi> {
        let dir = root().join("tests/stripe-api");
        if !dir.join("node_modules/stripe").exists() {
            bail!("run `npm ci` in tests/stripe-api (scripts/test does)");
        }
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            // Port 0: the server binds a free port and reports it, so no
            // other process can take it in between.
            .env("PORT", "0")
            .env("STRIPE_SECRET_KEY", secret_key)
            .env("WEBHOOK_SECRET", webhook_secret)
            .env("PRICES", prices.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("node is needed for the Stripe API server")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(port) = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse::<u16>().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the Stripe API server did not start: {line:?}");
        };
        Ok(StripeApi {
            base_url: format!("http://127.0.0.1:{port}"),
            secret_key: secret_key.to_string(),
            webhook_secret: webhook_secret.to_string(),
            child,
        })
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Calls the API as a Stripe client would: the secret key as a Bearer
    /// token, `form` form-encoded (bracket notation in the names), and an
    /// `Idempotency-Key` when given. A GET carries `form` as its query.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> Result<Reply> {
        let auth = format!("Bearer {}", self.secret_key);
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(key) = idempotency_key {
            headers.push(("idempotency-key", key));
        }
        let encoded = form_encode(form);
        if method == "GET" {
            let sep = if encoded.is_empty() { "" } else { "?" };
            return get(&self.url(&format!("{path}{sep}{encoded}")), &headers);
        }
        headers.push(("content-type", "application/x-www-form-urlencoded"));
        send(method, &self.url(path), &headers, encoded.as_bytes())
    }

    /// Sets the server's clock (objects' `created`, events' `created` and
    /// signature timestamps) to `now`, unix seconds. It stays there until
    /// set again.
    pub fn set_clock(&self, now: i64) -> Result<()> {
        self.control("POST", "/_test/clock", &json!({ "now": now }))?;
        Ok(())
    }

    /// The customer pays at checkout session `session`: a subscription in
    /// `status` (`active` or `trialing`) and a paid invoice, emitting
    /// `customer.subscription.created`, `checkout.session.completed` and
    /// `invoice.paid`. Returns the subscription id.
    pub fn complete_checkout(&self, session: &str, status: &str) -> Result<String> {
        let path = format!("/_test/checkout/{session}/complete");
        let answer = self.control("POST", &path, &json!({ "status": status }))?;
        Ok(answer["subscription"]
            .as_str()
            .context("subscription id")?
            .to_string())
    }

    /// Changes subscription `id` with any of `status`, `quantity` (price
    /// lookup key → quantity), `price` (`{from, to}` lookup keys),
    /// `cancel_at_period_end` and `period` (`{start, end}`), emitting
    /// `customer.subscription.updated` with `previous_attributes`, or
    /// `customer.subscription.deleted` when the status becomes `canceled`.
    pub fn update_subscription(&self, id: &str, change: &Value) -> Result<()> {
        self.control("POST", &format!("/_test/subscriptions/{id}"), change)?;
        Ok(())
    }

    /// A renewal charge of subscription `id` fails: an open invoice, the
    /// subscription `past_due`; emits `invoice.payment_failed`, then
    /// `customer.subscription.updated`.
    pub fn payment_failed(&self, id: &str) -> Result<()> {
        let path = format!("/_test/subscriptions/{id}/payment_failed");
        self.control("POST", &path, &json!({}))?;
        Ok(())
    }

    /// A charge of subscription `id` goes through: the open invoice (or a
    /// renewal's) paid, the subscription `active`; emits `invoice.paid`,
    /// then `customer.subscription.updated`.
    pub fn payment_succeeded(&self, id: &str) -> Result<()> {
        let path = format!("/_test/subscriptions/{id}/payment_succeeded");
        self.control("POST", &path, &json!({}))?;
        Ok(())
    }

    /// Customer `customer`'s active entitlements become exactly `features`
    /// (feature lookup keys); emits
    /// `entitlements.active_entitlement_summary.updated`.
    pub fn set_entitlements(&self, customer: &str, features: &[&str]) -> Result<()> {
        let path = format!("/_test/customers/{customer}/entitlements");
        self.control("POST", &path, &json!({ "features": features }))?;
        Ok(())
    }

    /// Every event emitted so far, oldest first.
    pub fn events(&self) -> Result<Vec<StripeEvent>> {
        let list = self.control("GET", "/_test/events", &Value::Null)?;
        let list = list.as_array().context("events")?;
        list.iter()
            .map(|e| {
                let text = |k: &str| -> Result<String> {
                    Ok(e[k]
                        .as_str()
                        .with_context(|| format!("event {k}"))?
                        .to_string())
                };
                Ok(StripeEvent {
                    id: text("id")?,
                    kind: text("type")?,
                    created: e["created"].as_i64().context("event created")?,
                    payload: text("payload")?,
                    signature: text("signature")?,
                })
            })
            .collect()
    }

    /// Every API request received so far: `method`, `path`, `params` (the
    /// decoded form or query), `idempotency_key`, `stripe_version`,
    /// `status` answered and whether it was a `replayed` idempotent answer.
    pub fn requests(&self) -> Result<Vec<Value>> {
        self.list("/_test/requests")
    }

    /// Every meter event accepted so far (a refused duplicate identifier is
    /// not among them), each with `error_code`: null when it counts, else
    /// what Stripe's asynchronous processing would report for it.
    pub fn meter_events(&self) -> Result<Vec<Value>> {
        self.list("/_test/meter_events")
    }

    fn list(&self, path: &str) -> Result<Vec<Value>> {
        match self.control("GET", path, &Value::Null)? {
            Value::Array(items) => Ok(items),
            other => bail!("{path}: not a list: {other}"),
        }
    }

    fn control(&self, method: &str, path: &str, body: &Value) -> Result<Value> {
        let reply = if method == "GET" {
            get(&self.url(path), &[])?
        } else {
            send(
                method,
                &self.url(path),
                &[("content-type", "application/json")],
                body.to_string().as_bytes(),
            )?
        };
        if reply.status != 200 {
            bail!("{method} {path}: {} {}", reply.status, reply.text());
        }
        reply.json()
    }
}

/// `application/x-www-form-urlencoded` of `pairs`, names and values
/// percent-encoded (brackets too, as clients send them).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn encode(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for b in text.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(char::from(b))
                }
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}
