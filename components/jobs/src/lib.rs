//! The `jobs` component: the runner of the app's background jobs
//! (`gatehouse-jobs`) and the operator routes around it. Spin components
//! live for requests, so the runner is a route that a schedule calls: the
//! local host on an interval, a Kubernetes CronJob or Spin's cron trigger
//! in production (infra/jobs/README.md). Routes, operator only (the
//! `operator_token` variable as a bearer token; empty turns them off):
//!
//! - `POST /v1/admin/jobs/$run`: runs due jobs for a bounded time
//! - `GET /v1/admin/jobs`: lists jobs by state and kind, newest first
//! - `POST /v1/admin/jobs/{id}/$retry`: puts a dead job back to pending

use gatehouse_http::router::{fallback, segments};
use gatehouse_http::{Problem, Response, request_id};
use gatehouse_jobs::JobError;
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;
use spin_sdk::sqlite::Connection;

mod handlers;
mod listing;
mod retry;
mod run;

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let id = request_id::from_headers(req.headers());
    Ok(gatehouse_http::audit::serve(req, &id, |req| route(req, &id)).await)
}

async fn route(req: Request, id: &str) -> Result<Response, Problem> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // HEAD is answered like GET; the server drops the body.
    let get = method == http::Method::GET || method == http::Method::HEAD;
    let post = method == http::Method::POST;
    match segments(&path).as_slice() {
        ["v1", "admin", "jobs"] if get => listing::list(&req, id).await,
        ["v1", "admin", "jobs", "$run"] if post => run::run(req, id).await,
        ["v1", "admin", "jobs", job, "$retry"] if post => {
            let job = (*job).to_string();
            retry::retry(&req, &job, id).await
        }
        ["v1", "admin", "jobs"] => Err(fallback(Some(&["GET", "HEAD"]))),
        ["v1", "admin", "jobs", "$run"] | ["v1", "admin", "jobs", _, "$retry"] => {
            Err(fallback(Some(&["POST"])))
        }
        _ => Err(fallback(None)),
    }
}

/// Opens the `default` database.
pub(crate) async fn open() -> Result<Connection, Problem> {
    Connection::open_default().await.map_err(|e| {
        eprintln!("jobs: database open failed: {e:?}");
        Problem::internal()
    })
}

/// A database failure as the client sees it; the cause was logged where
/// it happened.
pub(crate) fn internal(_: JobError) -> Problem {
    Problem::internal()
}
