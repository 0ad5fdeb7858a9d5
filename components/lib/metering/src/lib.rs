//! Metering: meters, usage events and quotas of an org. The `metering`
//! component serves these routes (see spin.toml) through [`route`]:
//!
//! - `POST`/`GET /v1/meters`, `GET`/`PATCH`/`DELETE /v1/meters/{key}` (org
//!   admins); a meter may have a price
//! - `POST /v1/expenditure`: spend records written directly (one, or up to
//!   1,000); `GET /v1/expenditure`: spend by entity, item and calendar
//!   bucket in exact decimals, with a forecast of the month
//! - `POST /v1/usage/events`: a JSON array of up to 1,000 CloudEvents-shaped
//!   events; duplicates by `(source, id)` recognised for good
//! - `POST`/`GET /v1/quotas`, `GET`/`PATCH`/`DELETE /v1/quotas/{id}`, and
//!   `POST`/`GET /v1/quotas/{id}/overrides`, `DELETE …/overrides/{id}`:
//!   limits on a meter's units or on spend, per calendar period in the
//!   org's time zone, rolling window or lifetime, for every item or one;
//!   managed by org admins, and by team admins within the org's
//! - `GET /v1/usage`: a meter's usage in hourly buckets, or daily, weekly
//!   or monthly ones of the org's time zone
//! - `GET /v1/metering/stats`: an entity's usage, spend and quotas in
//!   buckets of the org's calendar, for dashboards
//! - `GET /v1/metering/alerts` and `GET /v1/org-events` (org admins): the
//!   alerts that fired, and the org's events
//! - `POST /v1/quotas/check`, `POST /v1/quotas/consume`: the decision over
//!   every applicable quota; consume counts atomically
//! - `POST /v1/quotas/reserve`, `POST /v1/quotas/reservations/{id}/commit`
//!   and `…/release`: an amount held until the actual use is known; an
//!   expired reservation holds nothing, without a background runner
//!
//! Everything acts in the org the caller's principal acts in: another
//! org's meters, quotas, members and teams are not found here.

// The rules (periods, subjects, decisions, event checks) are plain code,
// unit-tested natively; the handlers reach Spin's stores and build for
// wasm32 only.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod alerts;
mod batch;
pub mod decision;
mod expenditure_groups;
mod expenditure_input;
mod expenditure_query;
mod expenditure_sql;
mod forecast;
mod model;
mod money;
mod period;
mod price;
mod reservation;
mod stats_query;
mod subject;
mod usage_query;

#[cfg(target_arch = "wasm32")]
mod caller;
#[cfg(target_arch = "wasm32")]
mod check;
#[cfg(target_arch = "wasm32")]
mod decided;
#[cfg(target_arch = "wasm32")]
mod events;
#[cfg(target_arch = "wasm32")]
mod expenditure;
#[cfg(target_arch = "wasm32")]
mod expenditure_read;
#[cfg(target_arch = "wasm32")]
mod expenditure_write;
#[cfg(target_arch = "wasm32")]
pub mod holding;
#[cfg(target_arch = "wasm32")]
mod holds;
#[cfg(target_arch = "wasm32")]
mod meters;
#[cfg(target_arch = "wasm32")]
mod org_events;
#[cfg(target_arch = "wasm32")]
mod quotas;
#[cfg(target_arch = "wasm32")]
mod reserve;
#[cfg(target_arch = "wasm32")]
mod stats;
#[cfg(target_arch = "wasm32")]
mod store;
#[cfg(target_arch = "wasm32")]
mod usage;

pub use model::valid_key as valid_meter_key;

#[cfg(target_arch = "wasm32")]
use gatehouse_http::router::{fallback, segments};
#[cfg(target_arch = "wasm32")]
use gatehouse_http::{Problem, Response};
#[cfg(target_arch = "wasm32")]
use spin_sdk::http::Request;

/// Answers one request to a metering route; `id` is its request id.
#[cfg(target_arch = "wasm32")]
pub async fn route(req: Request, id: &str) -> Result<Response, Problem> {
    use http::Method;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let m = &method;
    match segments(&path).as_slice() {
        ["v1", "meters"] if *m == Method::POST => meters::create(req, id).await,
        ["v1", "meters"] if *m == Method::GET => meters::list(req, id).await,
        ["v1", "meters", key] if *m == Method::GET => meters::get(req, key, id).await,
        ["v1", "meters", key] if *m == Method::PATCH => meters::update(req, key, id).await,
        ["v1", "meters", key] if *m == Method::DELETE => meters::delete(req, key, id).await,
        ["v1", "usage", "events"] if *m == Method::POST => events::ingest(req, id).await,
        ["v1", "expenditure"] if *m == Method::POST => expenditure_write::create(req, id).await,
        ["v1", "expenditure"] if *m == Method::GET => expenditure_read::read(req, id).await,
        ["v1", "usage"] if *m == Method::GET => usage::usage(req, id).await,
        ["v1", "metering", "stats"] if *m == Method::GET => stats::stats(req, id).await,
        ["v1", "metering", "alerts"] if *m == Method::GET => alerts::listing::list(req, id).await,
        ["v1", "org-events"] if *m == Method::GET => org_events::list(req, id).await,
        ["v1", "quotas", "check"] if *m == Method::POST => check::check(req, id).await,
        ["v1", "quotas", "consume"] if *m == Method::POST => check::consume(req, id).await,
        ["v1", "quotas", "reserve"] if *m == Method::POST => reserve::reserve(req, id).await,
        ["v1", "quotas", "reservations", r, "commit"] if *m == Method::POST => {
            reserve::commit(req, r, id).await
        }
        ["v1", "quotas", "reservations", r, "release"] if *m == Method::POST => {
            reserve::release(req, r, id).await
        }
        ["v1", "quotas"] if *m == Method::POST => quotas::create(req, id).await,
        ["v1", "quotas"] if *m == Method::GET => quotas::list(req, id).await,
        ["v1", "quotas", quota] if *m == Method::GET => quotas::get(req, quota, id).await,
        ["v1", "quotas", quota] if *m == Method::PATCH => quotas::patch(req, quota, id).await,
        ["v1", "quotas", quota] if *m == Method::DELETE => quotas::delete(req, quota, id).await,
        ["v1", "quotas", quota, "overrides"] if *m == Method::POST => {
            quotas::create_override(req, quota, id).await
        }
        ["v1", "quotas", quota, "overrides"] if *m == Method::GET => {
            quotas::list_overrides(req, quota, id).await
        }
        ["v1", "quotas", quota, "overrides", o] if *m == Method::DELETE => {
            quotas::delete_override(req, quota, o, id).await
        }
        other => Err(fallback(allowed(other))),
    }
}

/// The methods a known path takes, for 405 answers.
#[cfg(target_arch = "wasm32")]
fn allowed(segments: &[&str]) -> Option<&'static [&'static str]> {
    Some(match segments {
        ["v1", "meters" | "quotas"] => &["GET", "POST"],
        ["v1", "usage", "events"]
        | ["v1", "quotas", "check" | "consume" | "reserve"]
        | ["v1", "quotas", "reservations", _, "commit" | "release"] => &["POST"],
        ["v1", "usage"] => &["GET"],
        ["v1", "metering", "stats" | "alerts"] | ["v1", "org-events"] => &["GET"],
        ["v1", "quotas", _, "overrides"] => &["GET", "POST"],
        ["v1", "quotas", _, "overrides", _] => &["DELETE"],
        ["v1", "quotas", _] => &["GET", "PATCH", "DELETE"],
        ["v1", "meters", _] => &["GET", "PATCH", "DELETE"],
        ["v1", "expenditure"] => &["GET", "POST"],
        _ => return None,
    })
}
