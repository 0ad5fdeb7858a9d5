//! The HTTP front: accepts connections, hands each request to the runtime,
//! logs one line per request, and drains in-flight requests on shutdown.

use anyhow::Result;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

use crate::runtime::Runtime;

/// Serving options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Suppress the per-request log line (benchmarks).
    pub quiet: bool,
}

/// Serves until `shutdown` completes, then waits for open connections to
/// finish their current request.
pub async fn serve(
    runtime: Arc<Runtime>,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let runtime = runtime.clone();
        let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let runtime = runtime.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    respond(&runtime, req, client, local, options).await,
                )
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await
                && !e.is_incomplete_message()
            {
                eprintln!("connection from {client}: {e}");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(std::time::Duration::from_secs(30)) => eprintln!("shutdown: gave up waiting for open connections"),
    }
    Ok(())
}

/// Bodies up to this size (by `Content-Length`) are read before the guest
/// runs.
const BUFFERED_BODY_LIMIT: u64 = 1024 * 1024;

type Body = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;

/// Reads a small request body in full before the guest runs, so the
/// connection never closes with unread request bytes in the socket (which
/// resets it, and can cut off a response still being read) when a
/// component answers without reading the body. Larger or chunked bodies
/// stream to the guest as they arrive.
async fn buffer_small_body(
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Request<Body>, http::Response<http_body_util::Full<bytes::Bytes>>> {
    use http_body_util::BodyExt;
    let small = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= BUFFERED_BODY_LIMIT);
    let (parts, body) = req.into_parts();
    if !small {
        return Ok(http::Request::from_parts(parts, body.boxed()));
    }
    match body.collect().await {
        Ok(collected) => {
            let full = http_body_util::Full::new(collected.to_bytes())
                .map_err(|never| match never {})
                .boxed();
            Ok(http::Request::from_parts(parts, full))
        }
        // The client went away or sent less than it announced.
        Err(_) => Err(crate::problem::bad_request(
            "the request body could not be read",
        )),
    }
}

async fn respond(
    runtime: &Arc<Runtime>,
    req: http::Request<hyper::body::Incoming>,
    client: SocketAddr,
    local: Option<SocketAddr>,
    options: ServeOptions,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let authority = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| local.map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    let origin = format!("http://{authority}");
    let req = match buffer_small_body(req).await {
        Ok(req) => req,
        Err(response) => return response,
    };
    let handled = runtime.handle(req, client, &origin).await;
    if !options.quiet {
        eprintln!(
            "{method} {path} route={} component={} status={} duration_ms={:.3}",
            handled.route.as_deref().unwrap_or("-"),
            handled.component.as_deref().unwrap_or("-"),
            handled.response.status().as_u16(),
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    handled.response
}
