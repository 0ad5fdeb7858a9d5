//! The `identity` component: accounts, email verification, login, logout
//! and the signed-in user. Routes (see spin.toml):
//!
//! - `POST /v1/auth/register`, `POST /v1/auth/verify-email`
//! - `POST /v1/auth/login`, `POST /v1/auth/logout`
//! - `GET /v1/auth/mfa`, `POST /v1/auth/mfa` (complete a login challenge),
//!   `POST`/`DELETE /v1/auth/mfa/totp`, `POST /v1/auth/mfa/totp/confirm`,
//!   `POST /v1/auth/mfa/recovery-codes`
//! - `POST /v1/auth/password/forgot`, `POST /v1/auth/password/reset`
//! - `GET`/`PATCH`/`DELETE /v1/me` (delete: deactivate), `GET /v1/auth/whoami` (the caller's principal)
//! - `GET /v1/sessions`, `DELETE /v1/sessions`, `DELETE /v1/sessions/{id}`
//! - `POST`/`GET /v1/oidc/providers`, `GET`/`PATCH`/`DELETE
//!   /v1/oidc/providers/{name}`: the org's own OpenID Connect providers
//! - `GET /v1/oidc/{provider}/start`, `GET /v1/oidc/{provider}/callback`:
//!   sign-in through one of them
//! - `GET /v1/dev/outbox` (only with the `dev_outbox` variable enabled)

use gatehouse_http::router::{fallback, segments};
use gatehouse_http::{Problem, Response, request_id, response};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

use crate::outbox::Outbox;

mod accounts;
mod attempts;
mod config;
mod devices;
mod mfa;
mod mfa_guard;
mod oidc;
mod outbox;
mod password_reset;
mod problems;
mod sessions;

/// SQLite helpers, shared with the other components.
pub(crate) use gatehouse_auth::db;

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let id = request_id::from_headers(req.headers());
    let outbox = Outbox::new();
    let response = gatehouse_http::audit::serve(req, &id, |req| route(req, &id, &outbox)).await;
    // The request's writes are done: mail it queued goes out now. A mail
    // that cannot be sent stays queued and never changes the answer.
    outbox.deliver().await;
    Ok(response)
}

async fn route(req: Request, id: &str, outbox: &Outbox) -> Result<Response, Problem> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let post = method == http::Method::POST;
    let get = method == http::Method::GET;
    let patch = method == http::Method::PATCH;
    let delete = method == http::Method::DELETE;
    match segments(&path).as_slice() {
        ["v1", "auth", "register"] if post => accounts::register(req, id, outbox).await,
        ["v1", "auth", "verify-email"] if post => accounts::verify_email(req, id).await,
        ["v1", "auth", "login"] if post => sessions::login(req, id, outbox).await,
        ["v1", "auth", "mfa"] if post => mfa::complete(req, id, outbox).await,
        ["v1", "auth", "mfa"] if get => mfa::status(req, id).await,
        ["v1", "auth", "mfa", "totp"] if post => mfa::enroll(req, id).await,
        ["v1", "auth", "mfa", "totp"] if delete => mfa::disable(req, id).await,
        ["v1", "auth", "mfa", "totp", "confirm"] if post => mfa::confirm(req, id).await,
        ["v1", "auth", "mfa", "recovery-codes"] if post => mfa::regenerate(req, id).await,
        ["v1", "auth", "logout"] if post => sessions::logout(req, id).await,
        ["v1", "auth", "password", "forgot"] if post => {
            password_reset::forgot(req, id, outbox).await
        }
        ["v1", "auth", "password", "reset"] if post => password_reset::reset(req, id).await,
        ["v1", "me"] if get => sessions::me(req, id).await,
        ["v1", "auth", "whoami"] if get => sessions::whoami(req, id).await,
        ["v1", "me"] if patch => accounts::update_me(req, id).await,
        ["v1", "me"] if delete => accounts::deactivate(req, id).await,
        ["v1", "sessions"] if get => devices::list(req, id).await,
        ["v1", "sessions"] if delete => devices::revoke_others(req, id).await,
        ["v1", "sessions", session] if delete => {
            let session = (*session).to_string();
            devices::revoke(req, &session, id).await
        }
        ["v1", "dev", "outbox"] if get => outbox::list_for_development(id).await,
        ["v1", "oidc", "providers"] if post => oidc::create(req, id).await,
        ["v1", "oidc", "providers"] if get => oidc::list(req, id).await,
        ["v1", "oidc", "providers", name] if get => {
            let name = (*name).to_string();
            oidc::get(req, &name, id).await
        }
        ["v1", "oidc", "providers", name] if patch => {
            let name = (*name).to_string();
            oidc::update(req, &name, id).await
        }
        ["v1", "oidc", "providers", name] if delete => {
            let name = (*name).to_string();
            oidc::delete(req, &name, id).await
        }
        ["v1", "oidc", provider, "start"] if get => {
            let provider = (*provider).to_string();
            oidc::start(req, &provider, id).await
        }
        ["v1", "oidc", provider, "callback"] if get => {
            let provider = (*provider).to_string();
            oidc::callback(req, &provider, id, outbox).await
        }
        ["v1", "oidc", "providers"] => Err(fallback(Some(&["GET", "POST"]))),
        ["v1", "oidc", "providers", _] => Err(fallback(Some(&["GET", "PATCH", "DELETE"]))),
        ["v1", "oidc", _, "start" | "callback"] => Err(fallback(Some(&["GET"]))),
        [
            "v1",
            "auth",
            "register" | "verify-email" | "login" | "logout",
        ]
        | ["v1", "auth", "password", "forgot" | "reset"] => Err(fallback(Some(&["POST"]))),
        ["v1", "me"] => Err(fallback(Some(&["GET", "PATCH", "DELETE"]))),
        ["v1", "auth", "mfa"] => Err(fallback(Some(&["GET", "POST"]))),
        ["v1", "auth", "mfa", "totp"] => Err(fallback(Some(&["POST", "DELETE"]))),
        ["v1", "auth", "mfa", "totp", "confirm"] | ["v1", "auth", "mfa", "recovery-codes"] => {
            Err(fallback(Some(&["POST"])))
        }
        ["v1", "auth", "whoami"] => Err(fallback(Some(&["GET"]))),
        ["v1", "sessions"] => Err(fallback(Some(&["GET", "DELETE"]))),
        ["v1", "sessions", _] => Err(fallback(Some(&["DELETE"]))),
        ["v1", "dev", "outbox"] => Err(fallback(Some(&["GET"]))),
        _ => Err(fallback(None)),
    }
}

/// `204 No Content` with the request id.
pub(crate) fn no_content(request_id: &str) -> Result<Response, Problem> {
    Ok(response::no_content(request_id))
}
