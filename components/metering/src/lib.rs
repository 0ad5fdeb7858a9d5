//! The `metering` component: the routes of `gatehouse-metering` (meters,
//! usage events, expenditure, quotas, reservations), each request
//! recorded by the audit trail where its route is.

#[cfg(target_arch = "wasm32")]
use gatehouse_http::request_id;
#[cfg(target_arch = "wasm32")]
use spin_sdk::http::{IntoResponse, Request};

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let id = request_id::from_headers(req.headers());
    Ok(gatehouse_http::audit::serve(req, &id, |req| gatehouse_metering::route(req, &id)).await)
}
