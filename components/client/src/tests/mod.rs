//! A fake Gatehouse in memory: a JWKS that can change or fail, canned
//! answers for POSTs, and a record of every request.

mod authz;
mod verifier;

use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use crate::transport::{HttpResponse, Transport, TransportError};

/// What the fake answers, and what it was asked.
#[derive(Default)]
struct Fake {
    /// The answer to every GET; `None` fails it.
    jwks: Mutex<Option<HttpResponse>>,
    /// The answer to every POST.
    reply: Mutex<Option<HttpResponse>>,
    /// URLs of the GETs.
    gets: Mutex<Vec<String>>,
    /// URL, bearer and body of the POSTs.
    posts: Mutex<Vec<(String, String, serde_json::Value)>>,
}

impl Fake {
    fn serving(jwks: serde_json::Value) -> Fake {
        let fake = Fake::default();
        fake.publish(jwks);
        fake
    }

    fn publish(&self, jwks: serde_json::Value) {
        *self.jwks.lock().unwrap() = Some(ok(jwks));
    }

    fn fail_gets(&self) {
        *self.jwks.lock().unwrap() = None;
    }

    fn answer(&self, status: u16, body: serde_json::Value) {
        *self.reply.lock().unwrap() = Some(HttpResponse {
            status,
            body: body.to_string().into_bytes(),
        });
    }

    fn get_count(&self) -> usize {
        self.gets.lock().unwrap().len()
    }
}

fn ok(body: serde_json::Value) -> HttpResponse {
    HttpResponse {
        status: 200,
        body: body.to_string().into_bytes(),
    }
}

impl Transport for Fake {
    async fn get(&self, url: &str) -> Result<HttpResponse, TransportError> {
        self.gets.lock().unwrap().push(url.to_string());
        self.jwks
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| TransportError::new("connection refused"))
    }

    async fn post_json(
        &self,
        url: &str,
        bearer: &str,
        body: Vec<u8>,
    ) -> Result<HttpResponse, TransportError> {
        let json = serde_json::from_slice(&body).map_err(|e| TransportError::new(e.to_string()))?;
        self.posts
            .lock()
            .unwrap()
            .push((url.to_string(), bearer.to_string(), json));
        self.reply
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| TransportError::new("connection refused"))
    }
}

/// Runs a future that never waits (the fake answers at once).
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the fake transport never waits"),
    }
}
