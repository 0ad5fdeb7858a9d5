//! Outbound HTTP policy for one guest: the `allowed_outbound_hosts` check,
//! and `http://<component>.spin.internal` requests dispatched in-process.

use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::outbound::{HostPattern, internal_component, is_allowed};
use crate::runtime::Runtime;

/// How deep `*.spin.internal` calls may nest before they are refused.
const MAX_INTERNAL_DEPTH: u8 = 8;

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>;

/// The hooks of one running request.
pub struct OutboundHooks {
    /// The app, for internal dispatch.
    pub runtime: Arc<Runtime>,
    /// Id of the calling component (for log lines).
    pub component: String,
    /// The caller's `allowed_outbound_hosts`.
    pub allowed: Arc<Vec<HostPattern>>,
    /// Address of the original client, passed along internal calls.
    pub client: SocketAddr,
    /// `scheme://authority` of the original request.
    pub origin: String,
    /// Nesting of internal calls that led here.
    pub depth: u8,
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        _ = fut;
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("https").to_string();
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16();
        if !is_allowed(&self.allowed, &scheme, &host, port) {
            eprintln!(
                "component `{}`: outbound request to {scheme}://{host} denied (not in allowed_outbound_hosts)",
                self.component
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        if let Some(target) = internal_component(&host) {
            if self.depth >= MAX_INTERNAL_DEPTH {
                return Box::new(async { Err(Error::HttpRequestDenied) });
            }
            let runtime = self.runtime.clone();
            let fut = runtime.execute(
                target.to_string(),
                request,
                None,
                self.client,
                self.origin.clone(),
                self.depth + 1,
            );
            // The callee runs in its own store; wasmtime does not allow a
            // store's event loop to be driven from inside another's, so it
            // gets its own task.
            let task = tokio::spawn(fut);
            return Box::new(async move {
                let response = task
                    .await
                    .map_err(|_| Error::InternalError(Some("internal call failed".into())))?;
                let response =
                    response.map(|body| body.map_err(|never| match never {}).boxed_unsync());
                Ok((
                    response,
                    Box::new(async { Ok(()) })
                        as Box<dyn Future<Output = Result<(), Error>> + Send>,
                ))
            });
        }
        Box::new(async move {
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(|b| b.boxed_unsync()),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}
