//! `POST /v1/admin/jobs/{id}/$retry` (operator): a dead job back to
//! pending, due now, with all its attempts ahead of it again: for when
//! what killed it is fixed (a provider configured, an account unblocked).

use gatehouse_http::idempotency::unix_now;
use gatehouse_http::{ErrorCode, Problem, Response, response};
use gatehouse_jobs::Retried;
use spin_sdk::http::Request;

use crate::{internal, open};

/// `POST /v1/admin/jobs/{id}/$retry`: the job as it is now; 404 for no
/// such job, 409 for one that is not dead.
pub async fn retry(req: &Request, job_id: &str, request_id: &str) -> Result<Response, Problem> {
    gatehouse_http::operator::require(req).await?;
    let conn = open().await?;
    match gatehouse_jobs::retry(&conn, job_id, unix_now())
        .await
        .map_err(internal)?
    {
        Retried::Pending(job) => Ok(response::json(200, &job, request_id)),
        Retried::NotDead(state) => Err(Problem::new(ErrorCode::Conflict).detail(format!(
            "only a dead job can be retried; this one is {}",
            state.as_str()
        ))),
        Retried::NotFound => Err(Problem::not_found()),
    }
}
