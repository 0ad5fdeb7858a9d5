//! The `platform` component: health, the OpenAPI document, the app's own
//! migrations (`/v1/admin/migrations`, operator only), and problem
//! documents for every path no other component serves (it owns the
//! catch-all route `/...`).

use gatehouse_http::router::{fallback, segments};
use gatehouse_http::{Response, request_id, response};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

mod health;
mod migrations;
mod openapi;

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let id = request_id::from_headers(req.headers());
    let served = id.as_str();
    let answer =
        gatehouse_http::audit::serve(
            req,
            &id,
            move |req| async move { Ok(route(req, served).await) },
        );
    Ok(answer.await)
}

async fn route(req: Request, id: &str) -> Response {
    // HEAD is answered like GET; the server drops the body.
    let get = req.method() == http::Method::GET || req.method() == http::Method::HEAD;
    match (get, segments(req.uri().path()).as_slice()) {
        (true, ["v1", "health", "live"]) => health::live(id),
        (true, ["v1", "health"]) => health::ready(id).await,
        (true, ["v1", "openapi.json"]) => openapi::document(&req, id),
        (true, ["v1", "admin", "migrations"]) => {
            response::answer(migrations::list(&req, id).await, id)
        }
        (false, ["v1", "admin", "migrations"]) if req.method() == http::Method::POST => {
            response::answer(migrations::apply(&req, id).await, id)
        }
        (false, ["v1", "admin", "migrations"]) => {
            response::problem(fallback(Some(&["GET", "HEAD", "POST"])), id)
        }
        (false, ["v1", "health", "live"] | ["v1", "health"] | ["v1", "openapi.json"]) => {
            response::problem(fallback(Some(&["GET", "HEAD"])), id)
        }
        _ => response::problem(fallback(None), id),
    }
}
