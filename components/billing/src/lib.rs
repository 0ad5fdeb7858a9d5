//! The `billing` component: the deployment's plans sold through Stripe,
//! each org's subscription kept in step with Stripe's events, and what
//! it entitles the org to. Routes (see spin.toml):
//!
//! - `GET /v1/plans`: the plans and what each grants (public)
//! - `POST /v1/billing/checkout`, `POST /v1/billing/portal` (org admins):
//!   a Stripe Checkout Session for a plan and seats, a Customer Portal
//!   session; the org's Stripe customer is made on first need
//! - `POST /v1/billing/subscription` (org admins): the subscription's
//!   plan, seats or end at the period's end changed in place
//! - `GET /v1/orgs/{org}/billing` (the org's admins): its billing state
//! - `GET /v1/entitlements`, `POST /v1/entitlements/check`: what the
//!   caller's org may use, from its plan while paid for (and during the
//!   grace after a failed payment), else the default plan's
//! - `POST /stripe/events`, reached only as
//!   `http://billing.spin.internal/stripe/events` by the webhook handler
//!   jobs: Stripe's events, each a cue to read what Stripe holds now
//!   ([`sync`], [`take`])
//!
//! Seats are taken by the components that add members, through
//! `gatehouse-billing`, in the transaction that adds the member.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

#[cfg(target_arch = "wasm32")]
mod change;
#[cfg(target_arch = "wasm32")]
mod checkout;
#[cfg(target_arch = "wasm32")]
mod customer;
#[cfg(target_arch = "wasm32")]
mod entitlements;
#[cfg(target_arch = "wasm32")]
mod plans;
#[cfg(target_arch = "wasm32")]
mod state;
#[cfg(target_arch = "wasm32")]
mod sync;
#[cfg(target_arch = "wasm32")]
mod take;

#[cfg(target_arch = "wasm32")]
use gatehouse_http::router::{fallback, segments};
#[cfg(target_arch = "wasm32")]
use gatehouse_http::{Problem, Response, request_id};
#[cfg(target_arch = "wasm32")]
use spin_sdk::http::{IntoResponse, Request};

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let id = request_id::from_headers(req.headers());
    Ok(gatehouse_http::audit::serve(req, &id, |req| route(req, &id)).await)
}

#[cfg(target_arch = "wasm32")]
async fn route(req: Request, id: &str) -> Result<Response, Problem> {
    use http::Method;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let m = &method;
    match segments(&path).as_slice() {
        ["v1", "plans"] if *m == Method::GET => plans::list(id).await,
        ["v1", "billing", "checkout"] if *m == Method::POST => checkout::checkout(req, id).await,
        ["v1", "billing", "portal"] if *m == Method::POST => checkout::portal(req, id).await,
        ["v1", "billing", "subscription"] if *m == Method::POST => change::change(req, id).await,
        ["v1", "orgs", org, "billing"] if *m == Method::GET => state::get(req, org, id).await,
        ["v1", "entitlements"] if *m == Method::GET => entitlements::list(req, id).await,
        ["v1", "entitlements", "check"] if *m == Method::POST => entitlements::check(req, id).await,
        // No public route leads here (`/stripe/...` is not among the
        // component's routes): only another component calling
        // `http://billing.spin.internal/stripe/events`, and the handler
        // secret's signature decides.
        ["stripe", "events"] if *m == Method::POST => sync::receive(req, id).await,
        other => Err(fallback(allowed(other))),
    }
}

/// The methods a known path takes, for 405 answers.
#[cfg(target_arch = "wasm32")]
fn allowed(segments: &[&str]) -> Option<&'static [&'static str]> {
    Some(match segments {
        ["v1", "plans"] | ["v1", "entitlements"] | ["v1", "orgs", _, "billing"] => &["GET"],
        ["v1", "billing", "checkout" | "portal" | "subscription"]
        | ["v1", "entitlements", "check"] => &["POST"],
        _ => return None,
    })
}
