//! The `orgs` component: tenants. Routes (see spin.toml):
//!
//! - `POST`/`GET /v1/orgs`, `GET`/`PATCH`/`DELETE /v1/orgs/{org}`
//! - `GET /v1/orgs/{org}/members`, `PATCH`/`DELETE /v1/orgs/{org}/members/{user}`
//! - `GET /v1/orgs/{org}/audit-events`: the org's audit trail, for admins;
//!   `GET /v1/admin/audit-events`: the deployment's, for the operator
//! - `GET`/`POST /v1/orgs/{org}/teams`, `GET`/`PATCH`/`DELETE /v1/orgs/{org}/teams/{team}`,
//!   `GET /v1/orgs/{org}/teams/{team}/subtree`, `GET …/teams/{team}/members`,
//!   `PUT`/`DELETE …/teams/{team}/members/{user}`
//! - `GET`/`POST /v1/orgs/{org}/invitations`, `DELETE /v1/orgs/{org}/invitations/{id}`,
//!   `POST /v1/invitations/accept`
//! - `GET`/`PUT /v1/orgs/{org}/preferences`, `…/teams/{team}/preferences`,
//!   `/v1/me/preferences`; `GET /v1/orgs/{org}/preferences/effective`
//!
//! `{org}` is an org's id or handle. Every org route answers 404 for an org
//! the caller is not a member of, and for another org's teams, members and
//! invitations, exactly as for ones that do not exist.

use gatehouse_http::router::{fallback, segments};
use gatehouse_http::{Problem, Response, request_id, response};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

mod audit;
mod context;
mod fields;
mod invitations;
mod mail;
mod member_events;
mod members;
mod orgs;
mod preferences;
mod teams;
mod time_zone;

use preferences::Scope;

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
        ["v1", "orgs"] if *m == post => orgs::create(req, id).await,
        ["v1", "orgs"] if *m == get => orgs::list(req, id).await,
        ["v1", "orgs", org] if *m == get => orgs::get(req, org, id).await,
        ["v1", "orgs", org] if *m == patch => orgs::update(req, org, id).await,
        ["v1", "orgs", org] if *m == delete => orgs::delete(req, org, id).await,

        ["v1", "orgs", org, "members"] if *m == get => members::list(req, org, id).await,
        ["v1", "orgs", org, "audit-events"] if *m == get => audit::list(req, org, id).await,
        ["v1", "admin", "audit-events"] if *m == get => audit::list_all(req, id).await,
        ["v1", "orgs", org, "members", user] if *m == patch => {
            members::change_role(req, org, user, id).await
        }
        ["v1", "orgs", org, "members", user] if *m == delete => {
            members::remove(req, org, user, id).await
        }

        ["v1", "orgs", org, "teams"] if *m == post => teams::create(req, org, id).await,
        ["v1", "orgs", org, "teams"] if *m == get => teams::list(req, org, id).await,
        ["v1", "orgs", org, "teams", team] if *m == get => teams::get(req, org, team, id).await,
        ["v1", "orgs", org, "teams", team] if *m == patch => {
            teams::update(req, org, team, id).await
        }
        ["v1", "orgs", org, "teams", team] if *m == delete => {
            teams::delete(req, org, team, id).await
        }
        ["v1", "orgs", org, "teams", team, "subtree"] if *m == get => {
            teams::subtree(req, org, team, id).await
        }
        ["v1", "orgs", org, "teams", team, "members"] if *m == get => {
            teams::members(req, org, team, id).await
        }
        ["v1", "orgs", org, "teams", team, "members", user] if *m == put => {
            teams::add_member(req, org, team, user, id).await
        }
        ["v1", "orgs", org, "teams", team, "members", user] if *m == delete => {
            teams::remove_member(req, org, team, user, id).await
        }
        ["v1", "orgs", org, "teams", team, "preferences"] if *m == get => {
            preferences::get(req, org, Scope::Team(team), id).await
        }
        ["v1", "orgs", org, "teams", team, "preferences"] if *m == put => {
            preferences::put(req, org, Scope::Team(team), id).await
        }

        ["v1", "orgs", org, "invitations"] if *m == post => invitations::create(req, org, id).await,
        ["v1", "orgs", org, "invitations"] if *m == get => invitations::list(req, org, id).await,
        ["v1", "orgs", org, "invitations", invitation] if *m == delete => {
            invitations::revoke(req, org, invitation, id).await
        }
        ["v1", "invitations", "accept"] if *m == post => invitations::accept(req, id).await,

        ["v1", "orgs", org, "preferences"] if *m == get => {
            preferences::get(req, org, Scope::Org, id).await
        }
        ["v1", "orgs", org, "preferences"] if *m == put => {
            preferences::put(req, org, Scope::Org, id).await
        }
        ["v1", "orgs", org, "preferences", "effective"] if *m == get => {
            preferences::effective(req, org, id).await
        }
        ["v1", "me", "preferences"] if *m == get => preferences::get_mine(req, id).await,
        ["v1", "me", "preferences"] if *m == put => preferences::put_mine(req, id).await,

        other => Err(fallback(allowed(other))),
    }
}

/// The methods a known path takes, for 405 answers.
fn allowed(segments: &[&str]) -> Option<&'static [&'static str]> {
    Some(match segments {
        ["v1", "orgs"] => &["GET", "POST"],
        ["v1", "orgs", _] => &["GET", "PATCH", "DELETE"],
        ["v1", "orgs", _, "members"]
        | ["v1", "orgs", _, "audit-events"]
        | ["v1", "admin", "audit-events"] => &["GET"],
        ["v1", "orgs", _, "members", _] => &["PATCH", "DELETE"],
        ["v1", "orgs", _, "teams" | "invitations"] => &["GET", "POST"],
        ["v1", "orgs", _, "teams", _] => &["GET", "PATCH", "DELETE"],
        ["v1", "orgs", _, "teams", _, "subtree" | "members"] => &["GET"],
        ["v1", "orgs", _, "teams", _, "members", _] => &["PUT", "DELETE"],
        ["v1", "orgs", _, "invitations", _] => &["DELETE"],
        ["v1", "invitations", "accept"] => &["POST"],
        ["v1", "orgs", _, "preferences", "effective"] => &["GET"],
        ["v1", "orgs", _, "preferences"]
        | ["v1", "orgs", _, "teams", _, "preferences"]
        | ["v1", "me", "preferences"] => &["GET", "PUT"],
        _ => return None,
    })
}

/// `204 No Content` with the request id.
pub(crate) fn no_content(request_id: &str) -> Result<Response, Problem> {
    Ok(response::no_content(request_id))
}
