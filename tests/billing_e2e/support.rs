//! What the billing tests share: a Stripe stand-in, the app configured to
//! sell plans through it, its Stripe source and handler, and the steps of
//! a subscription's life.

use anyhow::{Context, Result};
use gatehouse_tests::app::{Org, app_config, call, expect, org, post};
use gatehouse_tests::stripe_api::{StripeApi, StripeEvent};
use gatehouse_tests::{HostConfig, Reply, TestHost, send};
use serde_json::{Value, json};

/// The guests' and Stripe's clock when a test starts.
pub const T: i64 = 1_800_000_000;

/// The operator token: it runs the jobs.
pub const OPERATOR: &str = "operator-token-for-billing-tests";

/// Stripe's secret key, as the stand-in and the app know it.
pub const STRIPE_KEY: &str = "sk_test_gatehouse_billing_0123456789";

/// The signing secret of the Stripe source (Stripe's endpoint secret).
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_billingtestsecret0123456789abcdef";

/// The secret handler deliveries are signed with.
pub const HANDLER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The plans under test: a free default with 6 seats, Pro with 5
/// included seats and more for sale, and Team with 10.
pub fn plans() -> Value {
    json!([
        {"key": "free", "name": "Free", "default": true, "features": ["api"],
         "limits": {"projects": 3}, "seats": {"included": 6},
         "quotas": [{"meter": "tokens", "limit": 100, "period": "month"}]},
        {"key": "pro", "name": "Pro", "price": "pro_monthly", "features": ["api", "sso"],
         "limits": {"projects": 50}, "seats": {"included": 5, "price": "pro_seat", "max": 50},
         "quotas": [{"meter": "tokens", "limit": 1000, "period": "month"}]},
        {"key": "team", "name": "Team", "price": "team_monthly", "features": ["api", "sso", "audit"],
         "limits": {"projects": 200}, "seats": {"included": 10, "price": "team_seat", "max": 100},
         "quotas": [{"meter": "tokens", "limit": 5000, "period": "month"}]},
    ])
}

/// [`plans`] and Scale, a plan that also bills usage: the org's
/// `requests` (a count) and `compute` (a sum) meters reported to Stripe's
/// billing meters, and a `peak` meter (which only an org that makes it a
/// `max` meter has: reported as an error).
pub fn metered_plans() -> Value {
    let mut plans = plans();
    if let Some(list) = plans.as_array_mut() {
        list.push(json!(
            {"key": "scale", "name": "Scale", "price": "scale_monthly", "features": ["api"],
             "metered": [
                {"meter": "requests", "event_name": "api_requests", "price": "scale_requests"},
                {"meter": "compute", "event_name": "compute_seconds", "price": "scale_compute"},
                {"meter": "peak", "event_name": "peak_load"}]}
        ));
    }
    plans
}

/// The prices the Stripe stand-in sells.
pub fn prices() -> Value {
    json!([
        {"id": "price_scale_monthly", "lookup_key": "scale_monthly", "unit_amount": 9900, "currency": "usd",
         "recurring": {"interval": "month", "usage_type": "licensed"}, "product": "prod_scale"},
        {"id": "price_scale_requests", "lookup_key": "scale_requests", "unit_amount": 1, "currency": "usd",
         "recurring": {"interval": "month", "usage_type": "metered", "meter": "mtr_api_requests"}, "product": "prod_requests"},
        {"id": "price_scale_compute", "lookup_key": "scale_compute", "unit_amount": 2, "currency": "usd",
         "recurring": {"interval": "month", "usage_type": "metered", "meter": "mtr_compute_seconds"}, "product": "prod_compute"},
        {"id": "price_pro_monthly", "lookup_key": "pro_monthly", "unit_amount": 4900, "currency": "usd",
         "recurring": {"interval": "month", "usage_type": "licensed"}, "product": "prod_pro"},
        {"id": "price_pro_seat", "lookup_key": "pro_seat", "unit_amount": 900, "currency": "usd",
         "recurring": {"interval": "month", "usage_type": "licensed"}, "product": "prod_seat"},
        {"id": "price_team_monthly", "lookup_key": "team_monthly", "unit_amount": 19900, "currency": "usd",
         "recurring": {"interval": "month", "usage_type": "licensed"}, "product": "prod_team"},
        {"id": "price_team_seat", "lookup_key": "team_seat", "unit_amount": 1500, "currency": "usd",
         "recurring": {"interval": "month", "usage_type": "licensed"}, "product": "prod_team_seat"},
    ])
}

/// The app, Stripe, and the deployment's Stripe source.
pub struct Billing {
    pub host: TestHost,
    pub stripe: StripeApi,
    pub source: Value,
    /// The operator's org, which owns the Stripe source.
    pub ops: Org,
    /// How many of Stripe's events have been posted to the source.
    pub posted: usize,
    /// The variables the app was last deployed with, beside the defaults.
    deployed: Vec<(&'static str, String)>,
}

fn config(stripe: &StripeApi, more: &[(&str, String)]) -> HostConfig {
    let mut config = app_config();
    config.controllable_clock = true;
    let mut env = vec![
        ("OPERATOR_TOKEN", OPERATOR.to_string()),
        ("BILLING_PLANS", plans().to_string()),
        ("STRIPE_SECRET_KEY", STRIPE_KEY.to_string()),
        ("STRIPE_API_BASE_URL", stripe.base_url.clone()),
        ("WEBHOOK_HANDLER_SECRET", HANDLER_SECRET.to_string()),
    ];
    env.extend(more.iter().map(|(k, v)| (*k, v.clone())));
    for (name, value) in env {
        config
            .env
            .retain(|(k, _)| k != &format!("SPIN_VARIABLE_{name}"));
        config.env.push((format!("SPIN_VARIABLE_{name}"), value));
    }
    config
}

/// The app selling [`plans`] through a Stripe stand-in, with a Stripe
/// source made by an operator org and named by `billing_webhook_source`,
/// and the billing handler taking that source's events (`handler_sources`
/// lists the sources the handler entry takes; `None`: that source only).
/// Clocks at [`T`].
pub fn start_with(handler_sources: Option<Value>) -> Result<Billing> {
    start_configured(handler_sources, |_| Ok(Vec::new()))
}

/// [`start_with`], with more variables than the defaults, or in their
/// place (`BILLING_PLANS`, `STRIPE_API_BASE_URL` …): `more` gives them,
/// knowing the Stripe stand-in's address.
pub fn start_configured(
    handler_sources: Option<Value>,
    more: impl FnOnce(&StripeApi) -> Result<Vec<(&'static str, String)>>,
) -> Result<Billing> {
    let stripe = StripeApi::start(STRIPE_KEY, STRIPE_WEBHOOK_SECRET, &prices())?;
    let extra = more(&stripe)?;
    let host = TestHost::start(config(&stripe, &extra))?;
    host.set_clock(T)?;
    let ops = org(&host, "ops@billing.test", "gatehouse-ops")?;
    let source = expect(
        post(
            &host,
            "/v1/webhooks/sources",
            &json!({"provider": "stripe", "secrets": [STRIPE_WEBHOOK_SECRET]}),
            Some(&ops.admin),
        )?,
        201,
    )?;
    let source_id = source["id"].as_str().context("source id")?.to_string();
    let handlers = json!([{
        "provider": "stripe",
        "sources": handler_sources.unwrap_or_else(|| json!([source_id])),
        "types": ["customer.subscription.*", "checkout.session.completed", "invoice.*", "entitlements.*"],
        "url": "http://billing.spin.internal/stripe/events",
    }]);
    // The operator names the source and the handler, and redeploys.
    let mut redeployed = extra;
    redeployed.extend([
        ("BILLING_WEBHOOK_SOURCE", source_id),
        ("WEBHOOK_HANDLERS", handlers.to_string()),
    ]);
    let host = host.restart(config(&stripe, &redeployed))?;
    let deployed = redeployed;
    host.set_clock(T)?;
    stripe.set_clock(T)?;
    // The restarted host serves on another port.
    let source = json!({"ingest_url": host.url(&format!("/v1/hooks/{}", source["id"].as_str().context("id")?))});
    Ok(Billing {
        host,
        stripe,
        source,
        ops,
        posted: 0,
        deployed,
    })
}

/// [`start_with`] the handler taking the billing source only.
pub fn start() -> Result<Billing> {
    start_with(None)
}

impl Billing {
    /// Redeploys the app on the same data with `changes` to its
    /// variables, as an operator does; the clocks keep their time.
    pub fn redeploy(mut self, changes: &[(&'static str, String)]) -> Result<Billing> {
        let now = self.now()?;
        for (name, value) in changes {
            self.deployed.retain(|(k, _)| k != name);
            self.deployed.push((name, value.clone()));
        }
        let source = self.source["ingest_url"]
            .as_str()
            .and_then(|u| u.rsplit('/').next())
            .context("source id")?
            .to_string();
        let host = self.host.restart(config(&self.stripe, &self.deployed))?;
        host.set_clock(now)?;
        self.source = json!({"ingest_url": host.url(&format!("/v1/hooks/{source}"))});
        self.host = host;
        Ok(self)
    }

    /// Moves both clocks on by `seconds`.
    pub fn tick(&self, seconds: i64) -> Result<()> {
        self.host.advance_clock(seconds)?;
        let now = self.now()?;
        self.stripe.set_clock(now)
    }

    /// The guests' clock, read back from the host.
    pub fn now(&self) -> Result<i64> {
        let reply = gatehouse_tests::get(&self.host.url("/.host/clock"), &[])?;
        reply.json()?["now"].as_i64().context("now")
    }

    /// Stripe's events not yet posted, in Stripe's order.
    pub fn unposted(&mut self) -> Result<Vec<StripeEvent>> {
        let events = self.stripe.events()?;
        let new = events[self.posted..].to_vec();
        self.posted = events.len();
        Ok(new)
    }

    /// Posts `event` to the Stripe source as Stripe does; the ingest's answer.
    pub fn post(&self, event: &StripeEvent) -> Result<Value> {
        let url = self.source["ingest_url"].as_str().context("ingest_url")?;
        let reply = send(
            "POST",
            url,
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("stripe-signature", &event.signature),
            ],
            event.payload.as_bytes(),
        )?;
        expect(reply, 200)
    }

    /// Posts every new event of Stripe's in order and runs the jobs that
    /// hand them to billing.
    pub fn sync(&mut self) -> Result<()> {
        for event in self.unposted()? {
            self.post(&event)?;
        }
        self.run_jobs()?;
        Ok(())
    }

    /// `POST /v1/admin/jobs/$run`: the report.
    pub fn run_jobs(&self) -> Result<Value> {
        let auth = format!("Bearer {OPERATOR}");
        let reply = send(
            "POST",
            &self.host.url("/v1/admin/jobs/$run"),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            b"{}",
        )?;
        expect(reply, 200)
    }

    /// A new org of `handle` with its admin.
    pub fn org(&self, handle: &str) -> Result<Org> {
        org(&self.host, &format!("admin@{handle}.test"), handle)
    }

    /// The org admin's checkout of `plan` with `seats`: the answer.
    pub fn checkout(&self, org: &Org, plan: &str, seats: i64) -> Result<Reply> {
        call(
            &self.host,
            "POST",
            "/v1/billing/checkout",
            Some(&json!({
                "plan": plan, "seats": seats,
                "success_url": "https://app.example/billing/done",
                "cancel_url": "https://app.example/billing",
            })),
            Some(&org.admin),
            &[],
        )
    }

    /// The org admin's `POST /v1/billing/subscription` with `body`.
    pub fn change(&self, org: &Org, body: &Value) -> Result<Reply> {
        call(
            &self.host,
            "POST",
            "/v1/billing/subscription",
            Some(body),
            Some(&org.admin),
            &[],
        )
    }

    /// Checks out `plan` with `seats` for `org` and pays: the
    /// subscription's id. Stripe's events are not posted yet.
    pub fn subscribe(&self, org: &Org, plan: &str, seats: i64) -> Result<String> {
        let session = expect(self.checkout(org, plan, seats)?, 201)?;
        let id = session["id"].as_str().context("session id")?;
        self.stripe.complete_checkout(id, "active")
    }

    /// `GET /v1/orgs/{org}/billing` as its admin.
    pub fn billing(&self, org: &Org) -> Result<Value> {
        let path = format!("/v1/orgs/{}/billing", org.id);
        expect(
            call(&self.host, "GET", &path, None, Some(&org.admin), &[])?,
            200,
        )
    }

    /// `GET /v1/entitlements` as `token`.
    pub fn entitlements(&self, token: &str) -> Result<Value> {
        expect(
            call(
                &self.host,
                "GET",
                "/v1/entitlements",
                None,
                Some(token),
                &[],
            )?,
            200,
        )
    }

    /// `POST /v1/entitlements/check` of `feature` (and `quantity`) as `token`.
    pub fn check(&self, token: &str, feature: &str, quantity: Option<i64>) -> Result<Value> {
        let mut body = json!({"feature": feature});
        if let Some(q) = quantity {
            body["quantity"] = json!(q);
        }
        expect(
            call(
                &self.host,
                "POST",
                "/v1/entitlements/check",
                Some(&body),
                Some(token),
                &[],
            )?,
            200,
        )
    }
}

/// A `customer.subscription.deleted` event Stripe never sent, for the
/// subscription of billing `state`, at `now`, signed by stripe-node with
/// `secret` (which an attacker would hold).
pub fn forged_cancellation(state: &Value, now: i64, secret: &str) -> Result<StripeEvent> {
    let payload = json!({
        "id": "evt_forged", "object": "event", "type": "customer.subscription.deleted", "created": now,
        "data": {"object": {"object": "subscription", "id": state["subscription_id"],
                 "customer": state["stripe_customer_id"], "status": "canceled", "items": {"data": []}}},
    })
    .to_string();
    let signed = gatehouse_tests::webhook_signers::run(json!([
        {"op": "stripe", "secret": secret, "payload": payload, "timestamp": now}
    ]))?;
    let headers = signed[0]["headers"].as_object().context("headers")?;
    let signature = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("stripe-signature"))
        .and_then(|(_, v)| v.as_str())
        .context("signature")?
        .to_string();
    Ok(StripeEvent {
        id: "evt_forged".into(),
        kind: "customer.subscription.deleted".into(),
        created: now,
        payload,
        signature,
    })
}

/// The fields of a billing state that Stripe's events decide.
pub fn synced(state: &Value) -> Value {
    json!({
        "plan": state["plan"],
        "status": state["status"],
        "seats": state["seats"]["bought"],
        "limit": state["seats"]["limit"],
        "cancel_at_period_end": state["cancel_at_period_end"],
        "subscription_id": state["subscription_id"],
        "access": state["entitlements"]["access"],
    })
}
