//! The HTTP front: accepts connections (at most a configured number at
//! once), hands each request to the runtime, logs one line per request, and
//! drains in-flight requests on shutdown. Clients that are slow to send a
//! request, silent, or slow to send a body are cut off by the limits in
//! [`ConnectionLimits`].

use anyhow::Result;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::body_deadline::{BodyError, DeadlineBody};
use crate::conn_clock::{ConnectionClock, TimedStream, ended_by_timeout};
use crate::limits::{ConnectionLimits, accept_backoff, accept_error_needs_backoff};
use crate::runtime::Runtime;

/// Serving options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Suppress the per-request log line (benchmarks).
    pub quiet: bool,
    /// Run the app's due background jobs this often (see
    /// [`crate::jobs_clock`]); never when `None`.
    pub jobs_every: Option<Duration>,
}

/// Serves with the default [`ConnectionLimits`] until `shutdown`
/// completes, then waits for open connections to finish their current
/// request.
pub async fn serve(
    runtime: Arc<Runtime>,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    serve_with_limits(
        runtime,
        listener,
        options,
        ConnectionLimits::default(),
        shutdown,
    )
    .await
}

/// Serves until `shutdown` completes, holding clients to `limits`, then
/// waits for open connections to finish their current request.
pub async fn serve_with_limits(
    runtime: Arc<Runtime>,
    listener: TcpListener,
    options: ServeOptions,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let jobs = options
        .jobs_every
        .map(|every| tokio::spawn(crate::jobs_clock::run_jobs_every(runtime.clone(), every)));
    // A cap of zero would never accept; one past the semaphore's range
    // cannot be counted.
    let max_connections = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut cap_noted: Option<Instant> = None;
    let mut accept_failures = 0u32;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot is taken before accepting, so at the cap the host stops
        // accepting and new connections queue in the listen backlog.
        let slot = tokio::select! {
            slot = take_slot(&slots, max_connections, &mut cap_noted) => slot,
            () = &mut shutdown => break,
        };
        let Some(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, client) = match accepted {
            Ok(pair) => {
                accept_failures = 0;
                pair
            }
            Err(e) if accept_error_needs_backoff(&e) => {
                accept_failures = accept_failures.saturating_add(1);
                let pause = accept_backoff(accept_failures);
                eprintln!("accept failed: {e}; retrying in {} ms", pause.as_millis());
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = &mut shutdown => break,
                }
            }
            // That one connection is gone; the next accept can go ahead.
            Err(_) => continue,
        };
        let conn = connection(&runtime, stream, client, options, limits);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // The slot is held for as long as the connection is open.
            let _slot = slot;
            if let Err(e) = conn.await
                && !e.is_incomplete_message()
                && !ended_by_timeout(&e)
            {
                eprintln!("connection from {client}: {e}");
            }
        });
    }
    drop(listener);
    if let Some(jobs) = jobs {
        jobs.abort();
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => eprintln!("shutdown: gave up waiting for open connections"),
    }
    Ok(())
}

/// One of `max` connection slots; waits when all are taken, saying so at
/// most once a minute (a full host stays full for a while, and a line per
/// queued connection would flood the log). `None` only if the semaphore
/// was closed, which nothing does.
async fn take_slot(
    slots: &Arc<Semaphore>,
    max: usize,
    noted: &mut Option<Instant>,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(slot) = slots.clone().try_acquire_owned() {
        return Some(slot);
    }
    if noted.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
        eprintln!("{max} connections open (--max-connections): new ones wait until one closes");
        *noted = Some(Instant::now());
    }
    slots.clone().acquire_owned().await.ok()
}

/// The HTTP/1 connection serving one accepted socket, with the idle,
/// header-read and body limits applied.
fn connection(
    runtime: &Arc<Runtime>,
    stream: TcpStream,
    client: SocketAddr,
    options: ServeOptions,
    limits: ConnectionLimits,
) -> impl hyper_util::server::graceful::GracefulConnection<Error = hyper::Error> + Send + 'static {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok();
    let clock = ConnectionClock::new(&limits);
    let io = TokioIo::new(TimedStream::new(stream, clock.clone()));
    let runtime = runtime.clone();
    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let runtime = runtime.clone();
        // Busy from the moment the head is complete until the response is
        // handed back: no connection timer runs while a component works.
        let in_flight = clock.request_started();
        async move {
            let response = respond(&runtime, req, client, local, options, limits.body).await;
            drop(in_flight);
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // hyper's timer runs from "ready for a request" to "head
        // complete": the idle wait plus the header read, which the
        // connection clock bounds separately. At their sum it never fires
        // first, and stays as a second line should the clock miss a case.
        .header_read_timeout(hyper_header_timeout(&limits))
        .serve_connection(io, service)
}

/// The bound given to hyper's own header timer (see [`connection`]):
/// none when the sum is too large for hyper to add to the clock.
fn hyper_header_timeout(limits: &ConnectionLimits) -> Option<Duration> {
    const LONGEST: Duration = Duration::from_secs(86_400 * 365);
    limits
        .header_read
        .checked_add(limits.idle)
        .filter(|d| *d <= LONGEST)
}

/// Bodies up to this size (by `Content-Length`) are read before the guest
/// runs.
const BUFFERED_BODY_LIMIT: u64 = 1024 * 1024;

type Body = http_body_util::combinators::BoxBody<bytes::Bytes, BodyError>;

type Response = http::Response<crate::runtime::Body>;

/// Reads a small request body in full before the guest runs, so the
/// connection never closes with unread request bytes in the socket (which
/// resets it, and can cut off a response still being read) when a
/// component answers without reading the body. Larger or chunked bodies
/// stream to the guest as they arrive.
async fn buffer_small_body(
    req: http::Request<DeadlineBody<hyper::body::Incoming>>,
) -> Result<http::Request<Body>, Response> {
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
        Err(BodyError::TimedOut) => Err(crate::problem::request_timeout()),
        // The client went away or sent less than it announced.
        Err(BodyError::Read(_)) => Err(crate::problem::bad_request(
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
    body_timeout: Duration,
) -> Response {
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
    let (parts, body) = req.into_parts();
    let (body, body_expired) = DeadlineBody::new(body, body_timeout);
    let req = match buffer_small_body(http::Request::from_parts(parts, body)).await {
        Ok(req) => req,
        Err(response) => return response,
    };
    // With `--controllable-clock` the host keeps this one path for itself;
    // without it the path is the app's, like any other.
    let handled = match runtime.clock() {
        Some(clock) if path == crate::clock::PATH => crate::clock::answer(clock, req).await,
        _ => runtime.handle(req, client, &origin).await,
    };
    // A body that ran out of time before the component answered leaves the
    // answer unsent: it is 408 (and the connection closed), whatever the
    // component made of the cut-off body. The components read a request's
    // body before they answer, so its deadline has always passed by now.
    let response = if body_expired.get() {
        crate::problem::request_timeout()
    } else {
        handled.response
    };
    if !options.quiet {
        eprintln!(
            "{method} {path} route={} component={} status={} duration_ms={:.3}",
            handled.route.as_deref().unwrap_or("-"),
            handled.component.as_deref().unwrap_or("-"),
            response.status().as_u16(),
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    response
}
