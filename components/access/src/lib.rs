//! The `access` component: roles, groups, grants, ownership, policies and
//! decisions. Routes (see spin.toml):
//!
//! - `GET`/`POST /v1/roles`, `GET`/`PATCH`/`DELETE /v1/roles/{name}`,
//!   `POST /v1/roles/{name}/$copy`
//! - `GET /v1/roles/{name}/members`, `PUT`/`DELETE /v1/roles/{name}/members/{user}`
//! - `GET /v1/authz/grants`, `GET`/`POST /v1/authz/grants/{service}/{collection}/{role}`
//! - `GET /v1/authz/resources/{service}/{collection}/{id}`,
//!   `PUT`/`DELETE …/{id}/owners/{user|team|org}/{owner}`
//! - `GET /v1/authz/policies`, `GET`/`PUT`/`DELETE /v1/authz/policies/{name}`,
//!   `GET /v1/authz/policies/{name}/versions`
//! - `POST /v1/authz/check`, `POST /v1/authz/filter`
//!
//! Every route acts in the org of the caller's principal (`X-Org`, or the
//! caller's only org; an API key's own org). Who may do what:
//!
//! - members (and API keys) read roles, holders, grants, owners, policies,
//!   and ask checks and filters for themselves;
//! - org admins create, change, copy and delete roles, grant and revoke any
//!   role to members, write policies, manage resource grants and owners, and
//!   ask checks and filters for any member;
//! - a holder of `add-user` / `remove-user` through a role of group G (a
//!   role named `G:…`) grants / revokes G's roles to members;
//! - a holder of `authz:resources` manages resource grants and owners; a
//!   holder of `authz:check` asks checks and filters for any member.
//!
//! Another org's roles, members, teams, resources and policies answer 404
//! exactly like ones that do not exist.

use gatehouse_http::router::{fallback, segments};
use gatehouse_http::{Problem, Response, request_id};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

mod authz;
mod context;
mod facts;
mod fields;
mod grants;
mod holders;
mod policies;
mod resources;
mod roles;

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let id = request_id::from_headers(req.headers());
    Ok(gatehouse_http::audit::serve(req, &id, |req| route(req, &id)).await)
}

async fn route(req: Request, id: &str) -> Result<Response, Problem> {
    use http::Method;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let segments = segments(&path);
    let (m, get, post, patch, put, delete) = (
        &method,
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::PUT,
        Method::DELETE,
    );
    match segments.as_slice() {
        ["v1", "roles"] if *m == post => roles::create(req, id).await,
        ["v1", "roles"] if *m == get => roles::list(req, id).await,
        ["v1", "roles", name] if *m == get => roles::get(req, name, id).await,
        ["v1", "roles", name] if *m == patch => roles::update(req, name, id).await,
        ["v1", "roles", name] if *m == delete => roles::delete(req, name, id).await,
        ["v1", "roles", name, "$copy"] if *m == post => roles::copy(req, name, id).await,
        ["v1", "roles", name, "members"] if *m == get => holders::list(req, name, id).await,
        ["v1", "roles", name, "members", user] if *m == put => {
            holders::grant(req, name, user, id).await
        }
        ["v1", "roles", name, "members", user] if *m == delete => {
            holders::revoke(req, name, user, id).await
        }

        ["v1", "authz", "grants"] if *m == get => grants::list(req, id).await,
        ["v1", "authz", "grants", s, c, role] if *m == get => {
            grants::get(req, (s, c, role), id).await
        }
        ["v1", "authz", "grants", s, c, role] if *m == post => {
            grants::change(req, (s, c, role), id).await
        }

        ["v1", "authz", "resources", s, c, r] if *m == get => {
            resources::get(req, (s, c, r), id).await
        }
        ["v1", "authz", "resources", s, c, r, "owners", kind, owner] if *m == put => {
            resources::add_owner(req, (s, c, r), (kind, owner), id).await
        }
        ["v1", "authz", "resources", s, c, r, "owners", kind, owner] if *m == delete => {
            resources::remove_owner(req, (s, c, r), (kind, owner), id).await
        }

        ["v1", "authz", "policies"] if *m == get => policies::list(req, id).await,
        ["v1", "authz", "policies", name] if *m == get => policies::get(req, name, id).await,
        ["v1", "authz", "policies", name] if *m == put => policies::put(req, name, id).await,
        ["v1", "authz", "policies", name] if *m == delete => policies::delete(req, name, id).await,
        ["v1", "authz", "policies", name, "versions"] if *m == get => {
            policies::versions(req, name, id).await
        }

        ["v1", "authz", "check"] if *m == post => authz::check(req, id).await,
        ["v1", "authz", "filter"] if *m == post => authz::filter(req, id).await,

        other => Err(fallback(allowed(other))),
    }
}

/// The methods a known path takes, for 405 answers.
fn allowed(segments: &[&str]) -> Option<&'static [&'static str]> {
    Some(match segments {
        ["v1", "roles"] => &["GET", "POST"],
        ["v1", "roles", _] => &["GET", "PATCH", "DELETE"],
        ["v1", "roles", _, "$copy"] => &["POST"],
        ["v1", "roles", _, "members"] => &["GET"],
        ["v1", "roles", _, "members", _] => &["PUT", "DELETE"],
        ["v1", "authz", "grants"] => &["GET"],
        ["v1", "authz", "grants", _, _, _] => &["GET", "POST"],
        ["v1", "authz", "resources", _, _, _] => &["GET"],
        ["v1", "authz", "resources", _, _, _, "owners", _, _] => &["PUT", "DELETE"],
        ["v1", "authz", "policies"] => &["GET"],
        ["v1", "authz", "policies", _] => &["GET", "PUT", "DELETE"],
        ["v1", "authz", "policies", _, "versions"] => &["GET"],
        ["v1", "authz", "check" | "filter"] => &["POST"],
        _ => return None,
    })
}
