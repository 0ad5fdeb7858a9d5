//! How the client reaches Gatehouse: a [`Transport`] the service implements
//! over its own HTTP stack, so this crate depends on none.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

/// An HTTP answer, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// No answer: the request could not be sent, or its reply not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    message: String,
}

impl TransportError {
    /// A failure described by `message` (for logs; never a credential).
    pub fn new(message: impl Into<String>) -> TransportError {
        TransportError {
            message: message.into(),
        }
    }

    /// The description.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no answer from Gatehouse: {}", self.message)
    }
}

impl std::error::Error for TransportError {}

/// Sends HTTP requests to Gatehouse. Every status is an answer; only a
/// request that got none is an error.
///
/// The futures need not be `Send`, so Spin's single-threaded outbound HTTP
/// fits; when an implementation's futures are `Send`, so are those of
/// [`Verifier`](crate::Verifier) and [`AuthzClient`](crate::AuthzClient).
pub trait Transport {
    /// `GET url`.
    fn get(&self, url: &str) -> impl Future<Output = Result<HttpResponse, TransportError>>;

    /// `POST url` with `Authorization: Bearer <bearer>`,
    /// `Content-Type: application/json` and `body`.
    fn post_json(
        &self,
        url: &str,
        bearer: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>>;
}

impl<T: Transport> Transport for &T {
    fn get(&self, url: &str) -> impl Future<Output = Result<HttpResponse, TransportError>> {
        (**self).get(url)
    }

    fn post_json(
        &self,
        url: &str,
        bearer: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> {
        (**self).post_json(url, bearer, body)
    }
}

impl<T: Transport> Transport for Arc<T> {
    fn get(&self, url: &str) -> impl Future<Output = Result<HttpResponse, TransportError>> {
        (**self).get(url)
    }

    fn post_json(
        &self,
        url: &str,
        bearer: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> {
        (**self).post_json(url, bearer, body)
    }
}
