//! Calls to Stripe's API: form-encoded requests with the secret key from
//! the `stripe_secret_key` variable, to the `stripe_api_base_url`
//! (`https://api.stripe.com` in production), pinned to one API version so
//! the objects' shapes do not move under Gatehouse with the account's
//! default. Every creating call carries an `Idempotency-Key`, so a retry
//! after a lost answer makes nothing twice.

use bytes::Bytes;
use gatehouse_http::{ErrorCode, Problem};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;
use spin_sdk::http::FullBody;

/// The API version requests are made in: the one stripe-node 23 (whose
/// objects the tests check against) is written for.
pub const API_VERSION: &str = "2026-10-28.endive";

/// The most of an answer read.
const ANSWER_LIMIT: usize = 1024 * 1024;

/// Stripe, as configured.
pub struct Stripe {
    base: String,
    key: String,
}

/// Why a call did not give an object.
#[derive(Debug)]
pub enum Failure {
    /// No answer (refused, timed out) or one that is not Stripe's JSON.
    Unreachable(String),
    /// Stripe answered with an error.
    Refused {
        /// The HTTP status.
        status: u16,
        /// Stripe's error type and code, e.g. `invalid_request_error/resource_missing`.
        kind: String,
        /// Stripe's message, for the log.
        message: String,
        /// The parameter Stripe refused, if it named one.
        param: Option<String>,
    },
}

impl Failure {
    /// The problem a caller is answered with: Stripe's error type and code
    /// (its message goes to the log only).
    pub fn problem(&self, what: &str) -> Problem {
        match self {
            Failure::Unreachable(why) => {
                eprintln!("billing: {what}: Stripe did not answer: {why}");
                Problem::new(ErrorCode::Unavailable)
                    .detail(format!("Stripe did not answer ({what}); try again"))
            }
            Failure::Refused {
                status,
                kind,
                message,
                ..
            } => {
                eprintln!("billing: {what}: Stripe answered {status} {kind}: {message}");
                Problem::new(ErrorCode::UpstreamFailed)
                    .detail(format!("Stripe refused to {what} ({kind})"))
            }
        }
    }

    /// Whether Stripe refused an idempotency key reused with other
    /// parameters.
    pub fn is_idempotency_conflict(&self) -> bool {
        matches!(self, Failure::Refused { status: 400, kind, .. } if kind.starts_with("idempotency_error"))
    }

    /// The parameter Stripe refused as invalid (a `400` naming one).
    pub fn refused_param(&self) -> Option<&str> {
        match self {
            Failure::Refused {
                status: 400,
                param: Some(param),
                ..
            } => Some(param),
            _ => None,
        }
    }

    /// Whether Stripe said the object does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self, Failure::Refused { status: 404, .. })
    }
}

/// The `Idempotency-Key` sent to Stripe for a caller's own key on a
/// route: the route, the org and a digest of the caller's key, so any key
/// the caller may send (up to 255 characters) fits Stripe's limit and two
/// orgs' keys never meet.
pub fn caller_key(route: &str, org_id: &str, key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("gatehouse-{route}-{org_id}-{hex}")
}

/// The problem for a caller's `Idempotency-Key` that Stripe saw with other
/// parameters: the key was used before for another request.
pub fn key_reused() -> Problem {
    Problem::new(ErrorCode::IdempotencyKeyReused)
        .detail("this Idempotency-Key was used before with a different request")
}

impl Stripe {
    /// Stripe as the deployment configures it: `503` when no secret key
    /// is set (billing is off).
    pub async fn open() -> Result<Stripe, Problem> {
        let key = spin_sdk::variables::get("stripe_secret_key")
            .await
            .unwrap_or_default();
        let key = key.trim().to_string();
        if key.is_empty() {
            return Err(Problem::new(ErrorCode::Unavailable)
                .detail("billing is not configured on this deployment (no Stripe secret key)"));
        }
        let base = spin_sdk::variables::get("stripe_api_base_url")
            .await
            .unwrap_or_default();
        let base = base.trim().trim_end_matches('/').to_string();
        // The secret key goes with every call: plain http only to this
        // machine (a local stand-in), never across a network.
        let local = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
            .iter()
            .any(|prefix| base.starts_with(prefix));
        if !(base.starts_with("https://") || local) {
            eprintln!("billing: stripe_api_base_url is neither https nor a loopback http URL");
            return Err(Problem::internal());
        }
        Ok(Stripe { base, key })
    }

    /// `POST path` with `params` form-encoded.
    pub async fn post(
        &self,
        path: &str,
        params: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<Value, Failure> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in params {
            form.append_pair(name, value);
        }
        let body = form.finish().into_bytes();
        self.call(http::Method::POST, path, Some((body, idempotency_key)))
            .await
    }

    /// `GET path` (with its query).
    pub async fn get(&self, path_and_query: &str) -> Result<Value, Failure> {
        self.call(http::Method::GET, path_and_query, None).await
    }

    async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Value, Failure> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.key))
            .header("stripe-version", API_VERSION)
            .header("accept", "application/json");
        let bytes = match body {
            Some((bytes, key)) => {
                req = req
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("idempotency-key", key);
                bytes
            }
            None => Vec::new(),
        };
        let mut req = req
            .body(FullBody::new(Bytes::from(bytes)))
            .map_err(|_| Failure::Unreachable("the request could not be built".into()))?;
        req.extensions_mut()
            .insert(gatehouse_http::outbound::timeouts());
        let res = spin_sdk::http::send(req)
            .await
            .map_err(|code| Failure::Unreachable(gatehouse_http::outbound::failure(&code)))?;
        let status = res.status().as_u16();
        let bytes = Limited::new(res.into_body(), ANSWER_LIMIT)
            .collect()
            .await
            .map_err(|_| Failure::Unreachable("the answer could not be read".into()))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|_| Failure::Unreachable(format!("an answer ({status}) that is not JSON")))?;
        if (200..300).contains(&status) {
            return Ok(value);
        }
        // Stripe's own trouble, its rate limit, or a request with the same
        // idempotency key (or on the same object) still running: worth
        // trying again later.
        if status >= 500 || status == 429 || status == 409 {
            return Err(Failure::Unreachable(format!("Stripe answered {status}")));
        }
        let error = &value["error"];
        let text = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or_default();
        let kind = match text("code") {
            "" => text("type").to_string(),
            code => format!("{}/{code}", text("type")),
        };
        Err(Failure::Refused {
            status,
            kind,
            message: text("message").to_string(),
            param: error
                .get("param")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}
