//! `GET /v1/admin/jobs` (operator): jobs newest first, by state and kind,
//! a page at a time. Payloads hold ids only, so they are shown.

use gatehouse_http::pagination::{PageRequest, json_position};
use gatehouse_http::{ErrorCode, FieldError, Problem, Response, response};
use gatehouse_jobs::{Filter, State, valid_kind};
use spin_sdk::http::Request;

use crate::{internal, open};

fn invalid(pointer: &str, message: &str) -> Problem {
    Problem::new(ErrorCode::InvalidQuery)
        .detail(message.to_string())
        .errors(vec![FieldError::new(pointer, "invalid", message)])
}

/// `state` and `kind` from the query (the page's `limit` and `cursor` are
/// read by [`PageRequest`]).
fn filter(query: Option<&str>) -> Result<(Option<State>, Option<String>), Problem> {
    let (mut state, mut kind) = (None, None);
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "state" => {
                state = Some(State::parse(&value).ok_or_else(|| {
                    invalid(
                        "/state",
                        "state must be one of pending, running, done, dead",
                    )
                })?);
            }
            "kind" => {
                if !valid_kind(&value) {
                    return Err(invalid(
                        "/kind",
                        "kind must be 1 to 64 lower-case letters, digits, '.', '_' or '-'",
                    ));
                }
                kind = Some(value.into_owned());
            }
            _ => {}
        }
    }
    Ok((state, kind))
}

/// `GET /v1/admin/jobs`.
pub async fn list(req: &Request, request_id: &str) -> Result<Response, Problem> {
    gatehouse_http::operator::require(req).await?;
    let query = req.uri().query();
    let page = PageRequest::from_query(query)?;
    let (state, kind) = filter(query)?;
    let after: Option<(i64, String)> = page.json_cursor()?;
    let conn = open().await?;
    let jobs = gatehouse_jobs::list(
        &conn,
        &Filter {
            state,
            kind,
            after,
            limit: page.fetch_count(),
        },
    )
    .await
    .map_err(internal)?;
    let page = page.page(jobs, |job| {
        json_position(&(job.created_at, job.id.as_str()))
    });
    Ok(response::json(200, &page, request_id))
}
