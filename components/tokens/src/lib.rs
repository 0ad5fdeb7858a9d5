//! The `tokens` component: signed JWTs. Routes (see spin.toml):
//!
//! - `GET /.well-known/jwks.json`, `GET /.well-known/openid-configuration`
//! - `POST /v1/tokens`: a session or API key for a short-lived JWT
//! - `POST /v1/signing-keys/$rotate`: the operator rotates the signing key
//! - `POST`/`GET /v1/services`, `GET`/`DELETE /v1/services/{name}`,
//!   `POST`/`GET /v1/services/{name}/keys`, `POST …/keys/$challenge`,
//!   `DELETE …/keys/{kid}`: the registry of services that sign their own
//!   tokens, whose keys are registered with proof of possession
//!
//! Every component accepts these tokens through `gatehouse_auth::authenticate`.

use gatehouse_http::router::{fallback, segments};
use gatehouse_http::{Problem, Response, request_id};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

mod issue;
mod service_keys;
mod services;
mod signing;

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let id = request_id::from_headers(req.headers());
    Ok(gatehouse_http::audit::serve(req, &id, |req| route(req, &id)).await)
}

async fn route(req: Request, id: &str) -> Result<Response, Problem> {
    use http::Method;
    let get = req.method() == Method::GET;
    let post = req.method() == Method::POST;
    let delete = req.method() == Method::DELETE;
    let path = req.uri().path().to_string();
    match segments(&path).as_slice() {
        [".well-known", "jwks.json"] if get => signing::jwks(id).await,
        [".well-known", "openid-configuration"] if get => signing::discovery(id).await,
        ["v1", "tokens"] if post => issue::exchange(req, id).await,
        ["v1", "signing-keys", "$rotate"] if post => signing::rotate(req, id).await,
        ["v1", "services"] if post => services::create(req, id).await,
        ["v1", "services"] if get => services::list(req, id).await,
        ["v1", "services", name] if get => services::get(req, name, id).await,
        ["v1", "services", name] if delete => services::delete(req, name, id).await,
        ["v1", "services", name, "keys"] if post => service_keys::add_key(req, name, id).await,
        ["v1", "services", name, "keys"] if get => service_keys::keys(req, name, id).await,
        ["v1", "services", name, "keys", "$challenge"] if post => {
            service_keys::challenge(req, name, id).await
        }
        ["v1", "services", _, "keys", "$challenge"] => Err(fallback(Some(&["POST"]))),
        ["v1", "services", name, "keys", kid] if delete => {
            service_keys::revoke_key(req, name, kid, id).await
        }
        [".well-known", "jwks.json" | "openid-configuration"] => Err(fallback(Some(&["GET"]))),
        ["v1", "services"] | ["v1", "services", _, "keys"] => Err(fallback(Some(&["GET", "POST"]))),
        ["v1", "services", _] => Err(fallback(Some(&["GET", "DELETE"]))),
        ["v1", "services", _, "keys", _] => Err(fallback(Some(&["DELETE"]))),
        ["v1", "tokens"] | ["v1", "signing-keys", "$rotate"] => Err(fallback(Some(&["POST"]))),
        _ => Err(fallback(None)),
    }
}
