//! The `keys` component: API keys v2. Routes (see spin.toml):
//!
//! - `POST`/`GET /v1/keys`, `GET`/`PATCH`/`DELETE /v1/keys/{name}` (delete
//!   revokes; revoked keys stay listed for audit)
//! - `GET`/`PUT`/`DELETE /v1/keys/{name}/roles/{role}`
//! - `POST /v1/keys/{name}/$rotate`: a new secret; the old one works for
//!   the grace period the request gives, then stops
//! - `POST /v1/keys/$import`: keys from another system, by SHA-256 digest
//! - `POST /v1/keys/verify`: the hot path
//!
//! Keys act in the org the caller's principal acts in. Org admins, and
//! holders of the `keys:manage` permission, manage every key of the org;
//! other members manage the keys they created. Verifying takes
//! `keys:verify` (or `keys:manage`, or being an org admin), and a key of
//! another org verifies exactly like a key that does not exist.

use access_core::names::decode_segment;
use gatehouse_http::router::{fallback, segments};
use gatehouse_http::{Problem, Response, request_id};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

mod grants;
mod manage;
mod model;
mod verify;

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let id = request_id::from_headers(req.headers());
    Ok(gatehouse_http::audit::serve(req, &id, |req| route(req, &id)).await)
}

async fn route(req: Request, id: &str) -> Result<Response, Problem> {
    use http::Method;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let m = &method;
    match segments(&path).as_slice() {
        ["v1", "keys", "verify"] if *m == Method::POST => verify::verify(req, id).await,
        ["v1", "keys", "$import"] if *m == Method::POST => manage::import(req, id).await,
        ["v1", "keys"] if *m == Method::POST => manage::create(req, id).await,
        ["v1", "keys"] if *m == Method::GET => manage::list(req, id).await,
        ["v1", "keys", name] if *m == Method::GET => manage::get(req, name, id).await,
        ["v1", "keys", name] if *m == Method::PATCH => manage::update(req, name, id).await,
        ["v1", "keys", name] if *m == Method::DELETE => manage::revoke(req, name, id).await,
        ["v1", "keys", name, "$rotate"] if *m == Method::POST => {
            manage::rotate(req, name, id).await
        }
        ["v1", "keys", name, "roles", role]
            if [Method::GET, Method::PUT, Method::DELETE].contains(m) =>
        {
            // Role names may hold `:` (groups), which clients percent-encode.
            let role =
                decode_segment(role).ok_or_else(|| Problem::not_found().detail("no such role"))?;
            match *m {
                Method::GET => grants::get(req, name, &role, id).await,
                Method::PUT => grants::put(req, name, &role, id).await,
                _ => grants::delete(req, name, &role, id).await,
            }
        }
        other => Err(fallback(allowed(other))),
    }
}

/// The methods a known path takes, for 405 answers.
fn allowed(segments: &[&str]) -> Option<&'static [&'static str]> {
    Some(match segments {
        ["v1", "keys"] => &["GET", "POST"],
        ["v1", "keys", "verify" | "$import"] => &["POST"],
        ["v1", "keys", _] => &["GET", "PATCH", "DELETE"],
        ["v1", "keys", _, "$rotate"] => &["POST"],
        ["v1", "keys", _, "roles", _] => &["GET", "PUT", "DELETE"],
        _ => return None,
    })
}
