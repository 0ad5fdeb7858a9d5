//! The idle and header-read deadlines of one connection, enforced on the
//! socket itself: a read or write that would wait past the deadline of the
//! connection's current phase fails with `TimedOut`, which ends the
//! connection.
//!
//! hyper's own `header_read_timeout` runs from "ready for the next request"
//! to "head complete", so on a kept-alive connection it also counts the
//! wait for the next request: one number for two jobs, and a header limit
//! short enough to stop a slowloris client would also end every keep-alive
//! connection after that many seconds. Go's and Envoy's servers split the
//! two at the request's first byte; so does this clock.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::limits::ConnectionLimits;

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No request in flight and no byte of the next one yet.
    Idle { since: Instant },
    /// Part of the next request's head has arrived.
    Head { since: Instant },
    /// Requests are being handled; their bodies have their own deadline
    /// and the components' work is not the connection's to limit.
    Busy { requests: usize },
}

/// Where one connection is in its life, shared by its socket (which sees
/// bytes arrive) and its service (which sees requests start and end).
pub(crate) struct ConnectionClock {
    phase: Mutex<Phase>,
    idle: Duration,
    header_read: Duration,
}

impl ConnectionClock {
    /// A clock for a connection accepted now: idle until its first byte.
    pub(crate) fn new(limits: &ConnectionLimits) -> Arc<ConnectionClock> {
        Arc::new(ConnectionClock {
            phase: Mutex::new(Phase::Idle {
                since: Instant::now(),
            }),
            idle: limits.idle,
            header_read: limits.header_read,
        })
    }

    // A poisoned lock only means a panic elsewhere mid-update of a plain
    // enum; the value is still a valid phase.
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a request as handed to the service; the connection is busy
    /// until the returned guard is dropped (the response is ready or the
    /// request was abandoned).
    pub(crate) fn request_started(self: &Arc<Self>) -> RequestInFlight {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy { requests } => Phase::Busy {
                requests: requests + 1,
            },
            Phase::Idle { .. } | Phase::Head { .. } => Phase::Busy { requests: 1 },
        };
        RequestInFlight(self.clone())
    }

    fn request_finished(&self) {
        let mut phase = self.phase();
        if let Phase::Busy { requests } = *phase {
            *phase = if requests > 1 {
                Phase::Busy {
                    requests: requests - 1,
                }
            } else {
                Phase::Idle {
                    since: Instant::now(),
                }
            };
        }
    }

    fn bytes_arrived(&self) {
        let mut phase = self.phase();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Head {
                since: Instant::now(),
            };
        }
    }

    /// When the current phase runs out, if it can.
    fn deadline(&self) -> Option<Instant> {
        match *self.phase() {
            Phase::Idle { since } => since.checked_add(self.idle),
            Phase::Head { since } => since.checked_add(self.header_read),
            Phase::Busy { .. } => None,
        }
    }
}

/// A request in flight on a connection; dropping it makes the connection
/// idle again once no other request is in flight.
pub(crate) struct RequestInFlight(Arc<ConnectionClock>);

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A socket whose reads and writes fail once the connection's clock runs
/// out while they wait.
pub(crate) struct TimedStream<S> {
    inner: S,
    clock: Arc<ConnectionClock>,
    timer: Pin<Box<Sleep>>,
    armed_for: Option<Instant>,
}

impl<S> TimedStream<S> {
    pub(crate) fn new(inner: S, clock: Arc<ConnectionClock>) -> TimedStream<S> {
        TimedStream {
            inner,
            clock,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            armed_for: None,
        }
    }

    /// Called when the socket would wait: whether the phase's deadline has
    /// passed. Arms the timer first, so the task wakes when it passes even
    /// if the client never sends another byte.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.clock.deadline() else {
            return false;
        };
        if self.armed_for != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.armed_for = Some(deadline);
        }
        self.timer.as_mut().poll(cx).is_ready()
    }

    fn wait_or_expire<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if self.expired(cx) {
            Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client sent nothing in time",
            )))
        } else {
            Poll::Pending
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.wait_or_expire(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => this.wait_or_expire(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.wait_or_expire(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.wait_or_expire(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Whether a connection ended because a client took too long: the clock
/// above, or hyper's own header timer. Such ends are expected and not
/// logged.
pub(crate) fn ended_by_timeout(error: &hyper::Error) -> bool {
    if error.is_timeout() {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::TimedOut
        {
            return true;
        }
        source = e.source();
    }
    false
}
