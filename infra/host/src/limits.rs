//! How long the host waits for a client, how many clients it holds at once,
//! and how the accept loop backs off when the process runs out of
//! resources. Without these a handful of slow or silent clients would hold
//! sockets, tasks and file descriptors for as long as they liked.

use std::io;
use std::time::Duration;

/// Per-connection time limits and the connection cap.
///
/// The phases of a connection and the limit that bounds each:
///
/// ```text
/// accept ──idle──▶ first byte ──header_read──▶ head complete ──body──▶ body complete … response sent ──idle──▶ …
/// ```
///
/// While a request is being handled no connection timer runs (its body has
/// its own deadline); once its response is handed to the connection the
/// idle timer starts again, so a client that does not read its response is
/// bounded by the idle timeout too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time from the first byte of a request to the end of its headers.
    ///
    /// 10 s: a real client writes its whole head at once, so even a slow
    /// mobile link with large cookies needs well under a second; 10 s
    /// leaves room for a congested network while a client trickling a
    /// header line at a time ("slowloris") frees its slot quickly.
    pub header_read: Duration,
    /// Time a connection may sit with no request in flight: before its
    /// first request, between keep-alive requests, and while the client
    /// does not read a finished response.
    ///
    /// 30 s: keep-alive pays off across a burst of requests (a page, a
    /// test suite, a script), which reuses a connection within
    /// milliseconds; 30 s covers human-paced use too, and reclaims a flood
    /// of silent connections in well under a minute. Clients whose pools
    /// keep connections longer (90 s is common) see a closed connection
    /// and reconnect, which every HTTP client handles.
    pub idle: Duration,
    /// Time from the end of a request's headers to the end of its body.
    ///
    /// 30 s: Gatehouse's request bodies are small JSON documents (the host
    /// buffers up to 1 MiB), so 30 s allows ~35 KB/s for the largest one,
    /// far below any real link, while a body sent a byte at a time ends.
    /// A whole-body deadline rather than a per-read one: a per-read timer
    /// is reset by every byte, which is exactly what a trickling client
    /// sends.
    pub body: Duration,
    /// The most connections open at once. Above it the host stops
    /// accepting: new connections wait in the kernel's listen backlog
    /// (tokio's default of 1024) and are accepted, in order, as open ones
    /// close — back-pressure, the way tokio's own servers limit
    /// connections, rather than accepting and closing at once, which turns
    /// a burst into errors that clients retry immediately.
    ///
    /// 1024: each connection holds a task, buffers and a file descriptor;
    /// 1024 is far more than a development or test workload opens, and
    /// with the idle and header limits above a slow client holds a slot
    /// for seconds, not forever. The process's descriptor limit
    /// (`ulimit -n`) must exceed it by the stores' own files and sockets.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            body: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// How long the accept loop sleeps after `consecutive_failures` accept
/// errors in a row that call for a pause (see [`accept_error_needs_backoff`]).
///
/// Starts at 10 ms, doubles, and stops growing at 1 s. Running out of file
/// descriptors (`EMFILE`) is the usual cause: retrying at once fails again
/// and spins a core, while the condition clears as soon as an open
/// connection closes — which the idle and header limits make happen within
/// seconds — so the pause starts short and never grows past a second. The
/// loop never exits on an accept error: that would stop a server that is
/// merely busy.
pub fn accept_backoff(consecutive_failures: u32) -> Duration {
    const FIRST_MS: u64 = 10;
    const MAX_MS: u64 = 1000;
    let doublings = consecutive_failures.saturating_sub(1).min(16);
    Duration::from_millis((FIRST_MS << doublings).min(MAX_MS))
}

/// Whether an accept error is about the host's resources (descriptors,
/// memory, buffers) and so calls for a pause, rather than about the one
/// connection that failed (reset or aborted before it was accepted), after
/// which the next accept can proceed at once.
pub fn accept_error_needs_backoff(error: &io::Error) -> bool {
    !matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}
