//! [`SpinTransport`]: the client inside a Spin component, over Spin's
//! outbound HTTP. The component's manifest must allow Gatehouse's origin
//! (`allowed_outbound_hosts = ["https://auth.example.com"]`).

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use spin_sdk::http::{EmptyBody, FullBody};
use spin_sdk::wasip3::http::types::{ErrorCode, RequestOptions};
use spin_sdk::wasip3::http_compat::RequestOptionsExtension;

use crate::transport::{HttpResponse, Transport, TransportError};

/// The most of an answer that is read; Gatehouse's are far smaller.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Outbound timeouts, in nanoseconds: an unanswering Gatehouse fails the
/// call in seconds rather than holding the service's request.
const CONNECT_TIMEOUT_NS: u64 = 3_000_000_000;
const FIRST_BYTE_TIMEOUT_NS: u64 = 5_000_000_000;
const BETWEEN_BYTES_TIMEOUT_NS: u64 = 5_000_000_000;

/// A [`Transport`] over `spin_sdk::http::send`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpinTransport;

impl Transport for SpinTransport {
    async fn get(&self, url: &str) -> Result<HttpResponse, TransportError> {
        let mut request = http::Request::get(url)
            .header("accept", "application/json")
            .body(EmptyBody::new())
            .map_err(|_| TransportError::new("the request could not be built"))?;
        request
            .extensions_mut()
            .insert(RequestOptionsExtension(timeouts()));
        let response = spin_sdk::http::send(request).await.map_err(unsent)?;
        read(response).await
    }

    async fn post_json(
        &self,
        url: &str,
        bearer: &str,
        body: Vec<u8>,
    ) -> Result<HttpResponse, TransportError> {
        let mut request = http::Request::post(url)
            .header("accept", "application/json")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {bearer}"))
            .body(FullBody::new(Bytes::from(body)))
            .map_err(|_| TransportError::new("the request could not be built"))?;
        request
            .extensions_mut()
            .insert(RequestOptionsExtension(timeouts()));
        let response = spin_sdk::http::send(request).await.map_err(unsent)?;
        read(response).await
    }
}

fn unsent(code: ErrorCode) -> TransportError {
    let code = format!("{code:?}");
    TransportError::new(code.trim_start_matches("ErrorCode::"))
}

async fn read(response: spin_sdk::http::Response) -> Result<HttpResponse, TransportError> {
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| TransportError::new("the answer could not be read"))?
        .to_bytes()
        .to_vec();
    Ok(HttpResponse { status, body })
}

fn timeouts() -> RequestOptions {
    let options = RequestOptions::new();
    // A host that does not support a timeout keeps its own default.
    let _ = options.set_connect_timeout(Some(CONNECT_TIMEOUT_NS));
    let _ = options.set_first_byte_timeout(Some(FIRST_BYTE_TIMEOUT_NS));
    let _ = options.set_between_bytes_timeout(Some(BETWEEN_BYTES_TIMEOUT_NS));
    options
}
