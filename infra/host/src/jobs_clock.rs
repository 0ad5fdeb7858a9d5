//! Runs the app's due background jobs on an interval, as a schedule does
//! in production (a Kubernetes CronJob or Spin's cron trigger calling
//! `POST /v1/admin/jobs/$run`): locally the host is that schedule.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};

use crate::runtime::Runtime;

/// The route that runs due jobs for a bounded time.
pub const RUN_PATH: &str = "/v1/admin/jobs/$run";

/// Calls [`RUN_PATH`] every `every` with the app's operator token, for as
/// long as the returned future is polled. Without an operator token the
/// route is off, and this says so once and stops.
pub async fn run_jobs_every(runtime: Arc<Runtime>, every: Duration) {
    let token = runtime
        .variable("operator_token")
        .unwrap_or_default()
        .to_string();
    if token.is_empty() {
        eprintln!("background jobs: not run (operator_token is not set)");
        return;
    }
    let mut failures_noted = false;
    loop {
        tokio::time::sleep(every).await;
        let request = http::Request::post(RUN_PATH)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Empty::<Bytes>::new());
        let Ok(request) = request else { return };
        let client = SocketAddr::from(([127, 0, 0, 1], 0));
        let handled = runtime.handle(request, client, "http://127.0.0.1").await;
        let status = handled.response.status();
        // Drain the answer so the instance finishes the request.
        let _ = handled.response.into_body().collect().await;
        if status.is_success() {
            failures_noted = false;
        } else if !failures_noted {
            eprintln!("background jobs: {RUN_PATH} answered {status}; retrying every {every:?}");
            failures_noted = true;
        }
    }
}
