//! The `secrets` component: secrets of an org, its teams and its members,
//! sealed by envelope encryption (`gatehouse-secrets`). Routes (see
//! spin.toml):
//!
//! - `GET /v1/orgs/{org}/secrets`, `PUT`/`GET`/`DELETE
//!   /v1/orgs/{org}/secrets/{name}`: the org's
//! - `GET /v1/orgs/{org}/teams/{team}/secrets`, `PUT`/`GET`/`DELETE
//!   …/teams/{team}/secrets/{name}`: a team's
//! - `GET /v1/me/secrets`, `PUT`/`GET`/`DELETE /v1/me/secrets/{name}`: the
//!   caller's own, in the org it acts in
//!
//! - `POST /v1/orgs/{org}/secrets/$rotate-key` (org admins): a new data
//!   key version; a job seals the older values again with it
//! - `POST /v1/admin/secrets/$rewrap` (the operator): every data key
//!   sealed under the current master key, after a master key rotation
//!
//! Org and team secrets are written and deleted by the org's admins; a
//! user's by the user. Listing shows names and metadata, never values.
//! Reading a value takes the `secrets:read` permission, explicitly granted
//! (an admin's role alone does not give it; for a team's, the reader is
//! also in the team or an org admin), or being the user for a user's own.
//! Every read, every refused read and every change is written to the
//! org's audit trail before the answer.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

#[cfg(target_arch = "wasm32")]
mod audit;
#[cfg(target_arch = "wasm32")]
mod routes;

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
    use routes::Place;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let segments = segments(&path);
    match segments.as_slice() {
        ["v1", "orgs", org, "secrets", "$rotate-key"] if method == Method::POST => {
            return routes::rotate_key(req, org, id).await;
        }
        ["v1", "admin", "secrets", "$rewrap"] if method == Method::POST => {
            return routes::rewrap(req, id).await;
        }
        ["v1", "orgs", _, "secrets", "$rotate-key"] | ["v1", "admin", "secrets", "$rewrap"] => {
            return Err(fallback(Some(&["POST"])));
        }
        _ => {}
    }
    let (place, name) = match segments.as_slice() {
        ["v1", "orgs", org, "secrets"] => (Place::Org(org.to_string()), None),
        ["v1", "orgs", org, "secrets", name] => {
            (Place::Org(org.to_string()), Some(name.to_string()))
        }
        ["v1", "orgs", org, "teams", team, "secrets"] => {
            (Place::Team(org.to_string(), team.to_string()), None)
        }
        ["v1", "orgs", org, "teams", team, "secrets", name] => (
            Place::Team(org.to_string(), team.to_string()),
            Some(name.to_string()),
        ),
        ["v1", "me", "secrets"] => (Place::Me, None),
        ["v1", "me", "secrets", name] => (Place::Me, Some(name.to_string())),
        _ => return Err(fallback(None)),
    };
    match (name, method) {
        (None, m) if m == Method::GET => routes::list(req, place, id).await,
        (Some(name), m) if m == Method::PUT => routes::put(req, place, &name, id).await,
        (Some(name), m) if m == Method::GET => routes::get(req, place, &name, id).await,
        (Some(name), m) if m == Method::DELETE => routes::delete(req, place, &name, id).await,
        (None, _) => Err(fallback(Some(&["GET"]))),
        (Some(_), _) => Err(fallback(Some(&["GET", "PUT", "DELETE"]))),
    }
}
