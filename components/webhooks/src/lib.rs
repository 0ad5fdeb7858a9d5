//! The `webhooks` component: each org's incoming webhook sources and the
//! durable inbox of what they delivered. Routes (see spin.toml):
//!
//! - `POST`/`GET /v1/webhooks/sources`, `GET`/`PATCH`/`DELETE
//!   /v1/webhooks/sources/{id}` (org admins): a provider (Stripe, GitHub,
//!   Standard Webhooks, Jira Cloud, Microsoft Teams, Azure DevOps, Slack)
//!   and what verifies its deliveries, sealed at rest
//! - `POST /v1/hooks/{source}`: a delivery, verified by the provider's own
//!   rules on the raw body (`webhooks-core`), stored before the answer and
//!   deduplicated by the provider's id; refusals are counted per reason
//! - `GET /v1/webhooks/events`, `GET /v1/webhooks/events/{id}` (org
//!   admins): what the org's sources delivered; `POST
//!   /v1/webhooks/events/{id}/$replay` hands one to its handlers again
//!
//! - `POST`/`GET /v1/webhooks/endpoints`, `GET`/`PATCH`/`DELETE
//!   /v1/webhooks/endpoints/{id}`, `GET …/{id}/secret`, `POST
//!   …/{id}/secret/$rotate` (org admins): outgoing webhooks, the URLs the
//!   org's events are delivered to, signed as Standard Webhooks with a
//!   secret sealed at rest
//! - `GET /v1/webhooks/endpoints/{id}/messages[/{msg}]`, `POST
//!   …/messages/{msg}/$resend`, `POST …/{id}/$recover` (org admins): what
//!   was sent to an endpoint, each attempt, and sending failures again
//!   (`gatehouse-webhook-delivery` queues the jobs)
//!
//! Deliveries that the deployment's handlers (`webhook_handlers`) take are
//! handed to them by background jobs (`gatehouse-webhook-dispatch`),
//! queued with the event in one transaction.
//!
//! Everything but the ingest acts in the org of the caller's principal;
//! the ingest finds its org through the source.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod endpoint_input;
mod input;

#[cfg(target_arch = "wasm32")]
mod endpoint_secrets;
#[cfg(target_arch = "wasm32")]
mod endpoints;
#[cfg(target_arch = "wasm32")]
mod event_types;
#[cfg(target_arch = "wasm32")]
mod events;
#[cfg(target_arch = "wasm32")]
mod ingest;
#[cfg(target_arch = "wasm32")]
mod messages;
#[cfg(target_arch = "wasm32")]
mod sources;
#[cfg(target_arch = "wasm32")]
mod store;

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
        ["v1", "hooks", source] if *m == Method::POST => ingest::ingest(req, source, id).await,
        ["v1", "webhooks", "sources"] if *m == Method::POST => sources::create(req, id).await,
        ["v1", "webhooks", "sources"] if *m == Method::GET => sources::list(req, id).await,
        ["v1", "webhooks", "sources", s] if *m == Method::GET => sources::get(req, s, id).await,
        ["v1", "webhooks", "sources", s] if *m == Method::PATCH => sources::patch(req, s, id).await,
        ["v1", "webhooks", "sources", s] if *m == Method::DELETE => {
            sources::delete(req, s, id).await
        }
        ["v1", "webhooks", "event-types"] if *m == Method::GET => event_types::list(req, id).await,
        ["v1", "webhooks", "events"] if *m == Method::GET => events::list(req, id).await,
        ["v1", "webhooks", "events", e] if *m == Method::GET => events::get(req, e, id).await,
        ["v1", "webhooks", "events", e, "$replay"] if *m == Method::POST => {
            events::replay(req, e, id).await
        }
        ["v1", "webhooks", "endpoints"] if *m == Method::POST => endpoints::create(req, id).await,
        ["v1", "webhooks", "endpoints"] if *m == Method::GET => endpoints::list(req, id).await,
        ["v1", "webhooks", "endpoints", e] if *m == Method::GET => endpoints::get(req, e, id).await,
        ["v1", "webhooks", "endpoints", e] if *m == Method::PATCH => {
            endpoints::patch(req, e, id).await
        }
        ["v1", "webhooks", "endpoints", e] if *m == Method::DELETE => {
            endpoints::delete(req, e, id).await
        }
        ["v1", "webhooks", "endpoints", e, "secret"] if *m == Method::GET => {
            endpoint_secrets::get(req, e, id).await
        }
        ["v1", "webhooks", "endpoints", e, "secret", "$rotate"] if *m == Method::POST => {
            endpoint_secrets::rotate(req, e, id).await
        }
        ["v1", "webhooks", "endpoints", e, "$recover"] if *m == Method::POST => {
            messages::recover(req, e, id).await
        }
        ["v1", "webhooks", "endpoints", e, "messages"] if *m == Method::GET => {
            messages::list(req, e, id).await
        }
        ["v1", "webhooks", "endpoints", e, "messages", g] if *m == Method::GET => {
            messages::get(req, e, g, id).await
        }
        ["v1", "webhooks", "endpoints", e, "messages", g, "$resend"] if *m == Method::POST => {
            messages::resend(req, e, g, id).await
        }
        other => Err(fallback(allowed(other))),
    }
}

/// The methods a known path takes, for 405 answers.
#[cfg(target_arch = "wasm32")]
fn allowed(segments: &[&str]) -> Option<&'static [&'static str]> {
    Some(match segments {
        ["v1", "hooks", _] => &["POST"],
        ["v1", "webhooks", "sources"] => &["GET", "POST"],
        ["v1", "webhooks", "sources", _] => &["GET", "PATCH", "DELETE"],
        ["v1", "webhooks", "events"] | ["v1", "webhooks", "events", _] => &["GET"],
        ["v1", "webhooks", "event-types"] => &["GET"],
        ["v1", "webhooks", "events", _, "$replay"] => &["POST"],
        ["v1", "webhooks", "endpoints"] => &["GET", "POST"],
        ["v1", "webhooks", "endpoints", _] => &["GET", "PATCH", "DELETE"],
        ["v1", "webhooks", "endpoints", _, "secret"]
        | ["v1", "webhooks", "endpoints", _, "messages"]
        | ["v1", "webhooks", "endpoints", _, "messages", _] => &["GET"],
        ["v1", "webhooks", "endpoints", _, "secret", "$rotate"]
        | ["v1", "webhooks", "endpoints", _, "$recover"]
        | ["v1", "webhooks", "endpoints", _, "messages", _, "$resend"] => &["POST"],
        _ => return None,
    })
}
