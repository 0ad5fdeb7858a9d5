//! Outbound HTTP policy for one guest: the `allowed_outbound_hosts` check,
//! and `http://<component>.spin.internal` requests dispatched in-process.

use http_body_util::BodyExt;
use std::sync::{Arc, Weak};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::outbound::{HostPattern, internal_component, is_allowed};
use crate::runtime::Runtime;

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>;

/// The outbound hooks of one instance. An instance may serve several
/// requests at once, so nothing here belongs to any one of them: like
/// Spin, a chained request reaches its component from the chained-request
/// address, not the original client's.
pub struct OutboundHooks {
    /// The app, for internal dispatch.
    pub runtime: Weak<Runtime>,
    /// Id of the calling component (for log lines).
    pub component: String,
    /// The caller's `allowed_outbound_hosts`.
    pub allowed: Arc<Vec<HostPattern>>,
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
            let call = self
                .runtime
                .upgrade()
                .and_then(|runtime| runtime.call_internal(target, request));
            let Some(call) = call else {
                eprintln!(
                    "component `{}`: internal request to {target} refused (too many in flight)",
                    self.component
                );
                return Box::new(async { Err(Error::HttpRequestDenied) });
            };
            return Box::new(async move {
                Ok((
                    call.await,
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
