//! The `notifications` component: what a user was notified of, and how
//! they are notified. Routes (see spin.toml):
//!
//! - `GET /v1/me/notifications[?unread=true]`: the caller's in-app
//!   notifications, newest first, a page at a time
//! - `GET /v1/me/notifications/unread-count`
//! - `POST /v1/me/notifications/{id}/$read`, `POST
//!   /v1/me/notifications/$read-all`, `DELETE /v1/me/notifications/{id}`
//! - `GET /v1/notification-kinds`: the kinds, their channels, defaults and
//!   whether they are critical; which channels this deployment has
//! - `GET /v1/me/notification-preferences`: the caller's channels for each
//!   kind, resolved over the org the request acts in (X-Org), the
//!   caller's teams and the caller's own preferences
//!
//! Notifications are made by other components (`gatehouse-notify`) and
//! delivered by jobs; preferences are written with the preferences routes
//! of orgs, which validate their `notifications` key. A user sees only
//! their own notifications: another's id is not found.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

#[cfg(target_arch = "wasm32")]
mod inbox;
#[cfg(target_arch = "wasm32")]
mod settings;

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
    let get = method == Method::GET;
    let post = method == Method::POST;
    let delete = method == Method::DELETE;
    match segments(&path).as_slice() {
        ["v1", "me", "notifications"] if get => inbox::list(req, id).await,
        ["v1", "me", "notifications", "unread-count"] if get => inbox::unread_count(req, id).await,
        ["v1", "me", "notifications", "$read-all"] if post => inbox::read_all(req, id).await,
        ["v1", "me", "notifications", notification, "$read"] if post => {
            let notification = (*notification).to_string();
            inbox::read(req, &notification, id).await
        }
        // Before the fallbacks below: an id is any segment, and no
        // notification is named `unread-count` or `$read-all` (404).
        ["v1", "me", "notifications", notification] if delete => {
            let notification = (*notification).to_string();
            inbox::delete(req, &notification, id).await
        }
        ["v1", "me", "notifications", "unread-count"] => Err(fallback(Some(&["GET"]))),
        ["v1", "me", "notifications", "$read-all"] => Err(fallback(Some(&["POST"]))),
        ["v1", "notification-kinds"] if get => settings::kinds(req, id).await,
        ["v1", "me", "notification-preferences"] if get => settings::effective(req, id).await,
        ["v1", "me", "notifications"]
        | ["v1", "notification-kinds"]
        | ["v1", "me", "notification-preferences"] => Err(fallback(Some(&["GET"]))),
        ["v1", "me", "notifications", _, "$read"] => Err(fallback(Some(&["POST"]))),
        ["v1", "me", "notifications", _] => Err(fallback(Some(&["DELETE"]))),
        _ => Err(fallback(None)),
    }
}
