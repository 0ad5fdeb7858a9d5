//! The `tools` component: an org's tools, which its members (and, through
//! later routes, its LLM runs) call by name. Routes (see spin.toml):
//!
//! - `POST /v1/tools`, `GET /v1/tools`: make one (org admins and holders
//!   of `tools:write`); list those the caller may see
//! - `GET`/`PATCH`/`DELETE /v1/tools/{name}`
//! - `POST /v1/tools/{name}/$call`: `{"arguments": {...}}` checked against
//!   the tool's input schema, then the tool run: `{"result", "is_error",
//!   "latency_ms"}`. A tool that fails (its endpoint times out or answers
//!   an error) is an answer with `is_error`, not a failed request.
//!
//! - `GET`/`PUT /v1/tool-settings`: where the org's runs go (an OpenAI
//!   chat-completions API, the model, the org secret holding its key)
//! - `POST`/`GET /v1/tool-runs`, `GET /v1/tool-runs/{id}`,
//!   `GET /v1/completions/{id}`: conversations sent to the model, which
//!   may call the org's tools (`runs` carries them out)
//! - `POST /v1/mcp`, `POST /v1/mcp/{server}`: the Model Context Protocol
//!   over stateless Streamable HTTP, the caller's tools or a named
//!   server's; `/v1/mcp-servers` (named and mounted servers) and the
//!   protected resource metadata under `/.well-known/oauth-protected-resource`
//!   ([`mcp`])
//!
//! Every call of a tool and every completion of a run holds quota on the
//! meters the tool settings name and is settled after ([`spend`]).
//! Who may do what: [`access`]. A tool is `static` (a JSON answer with
//! the arguments filled in) or `http` (one request to a URL the
//! deployment allows, secrets in its headers read by reference when it
//! is called): [`config`]. The call itself is [`execute`], which every
//! way of calling a tool goes through.

// The definitions, their checks and the templates are plain code,
// unit-tested natively; the handlers, the store and the calls reach
// Spin and build for wasm32 only.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
// `Result<_, Problem>` is a request's error path, taken at most once.
#![allow(clippy::result_large_err)]

pub mod access;
pub mod chat;
pub mod config;
pub mod definition;
pub mod mcp;
pub mod model;
pub mod redact;
pub mod run_model;
pub mod schema;
pub mod settings;
pub mod template;
pub mod url;

#[cfg(target_arch = "wasm32")]
pub mod execute;
#[cfg(target_arch = "wasm32")]
mod llm;
#[cfg(target_arch = "wasm32")]
mod policy;
#[cfg(target_arch = "wasm32")]
mod routes;
#[cfg(target_arch = "wasm32")]
mod run_routes;
#[cfg(target_arch = "wasm32")]
mod run_store;
#[cfg(target_arch = "wasm32")]
mod runs;
#[cfg(target_arch = "wasm32")]
mod settings_routes;
#[cfg(target_arch = "wasm32")]
pub mod spend;
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
        ["v1", "tools"] if *m == Method::POST => routes::create(req, id).await,
        ["v1", "tools"] if *m == Method::GET => routes::list(req, id).await,
        ["v1", "tools"] => Err(fallback(Some(&["GET", "POST"]))),
        ["v1", "tools", name, "$call"] if *m == Method::POST => routes::call(req, name, id).await,
        ["v1", "tools", _, "$call"] => Err(fallback(Some(&["POST"]))),
        ["v1", "tools", name] if *m == Method::GET => routes::get(req, name, id).await,
        ["v1", "tools", name] if *m == Method::PATCH => routes::update(req, name, id).await,
        ["v1", "tools", name] if *m == Method::DELETE => routes::delete(req, name, id).await,
        ["v1", "tools", _] => Err(fallback(Some(&["GET", "PATCH", "DELETE"]))),
        ["v1", "tool-settings"] if *m == Method::GET => settings_routes::get(req, id).await,
        ["v1", "tool-settings"] if *m == Method::PUT => settings_routes::put(req, id).await,
        ["v1", "tool-settings"] => Err(fallback(Some(&["GET", "PUT"]))),
        ["v1", "tool-runs"] if *m == Method::POST => run_routes::create(req, id).await,
        ["v1", "tool-runs"] if *m == Method::GET => run_routes::list(req, id).await,
        ["v1", "tool-runs"] => Err(fallback(Some(&["GET", "POST"]))),
        ["v1", "tool-runs", run] if *m == Method::GET => run_routes::get(req, run, id).await,
        ["v1", "tool-runs", _] => Err(fallback(Some(&["GET"]))),
        ["v1", "completions", c] if *m == Method::GET => run_routes::completion(req, c, id).await,
        ["v1", "completions", _] => Err(fallback(Some(&["GET"]))),
        ["v1", "mcp"] if *m == Method::POST => mcp::endpoint::post(req, None, id).await,
        // No stream is offered and no session is kept: GET and DELETE are
        // the methods the transport lets such a server refuse.
        ["v1", "mcp"] => Err(fallback(Some(&["POST"]))),
        ["v1", "mcp", s] if *m == Method::POST => mcp::endpoint::post(req, Some(s), id).await,
        ["v1", "mcp", _] => Err(fallback(Some(&["POST"]))),
        ["v1", "mcp-servers"] if *m == Method::POST => mcp::server_routes::create(req, id).await,
        ["v1", "mcp-servers"] if *m == Method::GET => mcp::server_routes::list(req, id).await,
        ["v1", "mcp-servers"] => Err(fallback(Some(&["GET", "POST"]))),
        ["v1", "mcp-servers", n] if *m == Method::GET => mcp::server_routes::get(req, n, id).await,
        ["v1", "mcp-servers", n] if *m == Method::PATCH => {
            mcp::server_routes::update(req, n, id).await
        }
        ["v1", "mcp-servers", n] if *m == Method::DELETE => {
            mcp::server_routes::delete(req, n, id).await
        }
        ["v1", "mcp-servers", _] => Err(fallback(Some(&["GET", "PATCH", "DELETE"]))),
        ["v1", "mcp-servers", n, "$refresh"] if *m == Method::POST => {
            mcp::server_routes::refresh(req, n, id).await
        }
        ["v1", "mcp-servers", _, "$refresh"] => Err(fallback(Some(&["POST"]))),
        [
            ".well-known",
            "oauth-protected-resource",
            "v1",
            "mcp",
            rest @ ..,
        ] if *m == Method::GET => match rest {
            [] => mcp::server_routes::resource_metadata(None, id).await,
            [s] => mcp::server_routes::resource_metadata(Some(s), id).await,
            _ => Err(fallback(None)),
        },
        [".well-known", "oauth-protected-resource", "v1", "mcp", ..] => {
            Err(fallback(Some(&["GET"])))
        }
        _ => Err(fallback(None)),
    }
}
