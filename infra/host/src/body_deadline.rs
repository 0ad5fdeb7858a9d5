//! A request body that must arrive whole by a deadline. Past it the body
//! fails with [`BodyError::TimedOut`] wherever it is being read (by the
//! host buffering it, or by a component streaming it), and the request is
//! answered 408.
//!
//! The deadline runs from the end of the request's head, so a component
//! that reads a large streamed body only after long work of its own can
//! meet it too; Gatehouse's handlers parse their body before anything else.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Why a request body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body had not arrived whole by its deadline.
    TimedOut,
    /// The connection failed or the body was malformed.
    Read(hyper::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TimedOut => f.write_str("the request body did not arrive in time"),
            BodyError::Read(e) => write!(f, "reading the request body: {e}"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::TimedOut => None,
            BodyError::Read(e) => Some(e),
        }
    }
}

// A component reading the body sees the WASI error code a client that
// stopped sending would produce.
impl From<BodyError> for wasmtime_wasi_http::Error {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TimedOut => wasmtime_wasi_http::Error::ConnectionReadTimeout,
            BodyError::Read(e) => wasmtime_wasi_http::Error::from(e),
        }
    }
}

/// Whether a request's body missed its deadline, readable after whoever
/// read the body is done with it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expired(Arc<AtomicBool>);

impl Expired {
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `inner`, failing once `deadline` passes before its last frame.
pub(crate) struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    expired: Expired,
}

impl<B> DeadlineBody<B> {
    /// Wraps `inner`, which must arrive whole within `limit` from now.
    pub(crate) fn new(inner: B, limit: Duration) -> (DeadlineBody<B>, Expired) {
        let expired = Expired::default();
        let deadline = Instant::now().checked_add(limit).unwrap_or_else(far_future);
        let body = DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            expired: expired.clone(),
        };
        (body, expired)
    }

    fn time_out(&self) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.expired.0.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(BodyError::TimedOut)))
    }
}

/// A deadline that never comes, for a limit too large to add to the clock.
fn far_future() -> Instant {
    // About 30 years: tokio's own "never" is of this order.
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        // The deadline is checked only when the body waits on the client:
        // bytes that already arrived are delivered however late they are
        // read, and only a waiting body registers a timer.
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|r| r.map_err(BodyError::Read))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => this.time_out(),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
