//! `Idempotency-Key` for creating POSTs, as Stripe clients expect.
//!
//! The first request with a key claims it and runs; its response is stored
//! and replayed (with `idempotent-replayed: true`) for every retry carrying
//! the same key and the same request. The same key with a different request
//! is refused (422), a retry while the first is still running is refused
//! (409), and a 5xx outcome releases the key so the client may retry.
//! Records expire after [`TTL_SECONDS`].
//!
//! Keys are scoped: callers must build the scope from the tenant and the
//! caller (e.g. `org:<id>/user:<id>/POST /v1/keys`) so that one tenant's key
//! can never replay another tenant's response.

use sha2::{Digest, Sha256};

use crate::problem::{ErrorCode, Problem};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The header marking a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a key is remembered.
pub const TTL_SECONDS: i64 = 24 * 60 * 60;

/// Now, in unix seconds, as stores expect it. On wasm32-wasip2 the clock is
/// the host's wall clock.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// A validated key: 1..=255 visible ASCII characters.
pub fn parse_key(value: &str) -> Result<String, Problem> {
    if (1..=255).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value.to_string())
    } else {
        Err(Problem::new(ErrorCode::IdempotencyKeyInvalid)
            .detail("Idempotency-Key must be 1 to 255 visible ASCII characters"))
    }
}

/// What identifies "the same request": method, path and body.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

/// A stored outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// The result of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use: run the request, then `complete` or `release`.
    Fresh,
    /// Done before with the same request: send this again.
    Replay(StoredResponse),
    /// Used before with a different request.
    Mismatch,
    /// The first request with this key has not finished.
    InProgress,
}

impl Claim {
    /// The problem to answer with, for `Mismatch` and `InProgress`.
    pub fn problem(&self) -> Option<Problem> {
        match self {
            Claim::Mismatch => Some(
                Problem::new(ErrorCode::IdempotencyKeyReused)
                    .detail("this Idempotency-Key was used with a different request"),
            ),
            Claim::InProgress => Some(
                Problem::new(ErrorCode::IdempotencyInProgress)
                    .detail("a request with this Idempotency-Key is still being processed"),
            ),
            Claim::Fresh | Claim::Replay(_) => None,
        }
    }
}

/// Where idempotency records live.
///
/// `scope` must name the tenant and the caller as well as the route, so
/// that equal keys from different tenants never meet.
// Stores are used as generic parameters, never as `dyn`, so the futures'
// missing `Send` bound (which the lint warns about) costs nothing; Spin
// guests are single-threaded anyway.
#[allow(async_fn_in_trait)]
pub trait IdempotencyStore {
    /// The store's error.
    type Error;
    /// Claims `(scope, key)` for a request with `fingerprint` at `now` (unix seconds).
    async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<Claim, Self::Error>;
    /// Records the outcome of a fresh claim.
    async fn complete(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), Self::Error>;
    /// Forgets a claim so the client may retry (after a server error).
    async fn release(&self, scope: &str, key: &str) -> Result<(), Self::Error>;
}

/// Decides a claim from the existing record, if any (shared by stores).
fn decide(existing: Option<(&str, Option<&StoredResponse>)>, fingerprint: &str) -> Claim {
    match existing {
        None => Claim::Fresh,
        Some((fp, _)) if fp != fingerprint => Claim::Mismatch,
        Some((_, Some(done))) => Claim::Replay(done.clone()),
        Some((_, None)) => Claim::InProgress,
    }
}

/// An in-process store for tests and single-instance tools.
#[derive(Default)]
pub struct MemoryStore {
    records: std::sync::Mutex<std::collections::HashMap<(String, String), MemoryRecord>>,
}

struct MemoryRecord {
    fingerprint: String,
    response: Option<StoredResponse>,
    expires_at: i64,
}

impl IdempotencyStore for MemoryStore {
    type Error = std::convert::Infallible;

    async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<Claim, Self::Error> {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let id = (scope.to_string(), key.to_string());
        if records.get(&id).is_some_and(|r| r.expires_at <= now) {
            records.remove(&id);
        }
        let claim = decide(
            records
                .get(&id)
                .map(|r| (r.fingerprint.as_str(), r.response.as_ref())),
            fingerprint,
        );
        if claim == Claim::Fresh {
            records.insert(
                id,
                MemoryRecord {
                    fingerprint: fingerprint.to_string(),
                    response: None,
                    expires_at: now + TTL_SECONDS,
                },
            );
        }
        Ok(claim)
    }

    async fn complete(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), Self::Error> {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = records.get_mut(&(scope.to_string(), key.to_string())) {
            r.response = Some(response.clone());
        }
        Ok(())
    }

    async fn release(&self, scope: &str, key: &str) -> Result<(), Self::Error> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(scope.to_string(), key.to_string()));
        Ok(())
    }
}

/// Finishes a fresh claim: server errors release the key, anything else is stored.
pub async fn settle<S: IdempotencyStore>(
    store: &S,
    scope: &str,
    key: &str,
    response: &StoredResponse,
) -> Result<(), S::Error> {
    if response.status >= 500 {
        store.release(scope, key).await
    } else {
        store.complete(scope, key, response).await
    }
}

/// Runs a creating request at most once per `Idempotency-Key`: without a
/// key it simply runs; with one, a retry of the same request gets the first
/// outcome again (marked replayed), a different request with the key gets
/// 422, a retry while the first runs gets 409. Server errors release the
/// key. `fingerprint` comes from [`fingerprint`] over the request as read.
pub async fn once<S, F, Fut>(
    store: &S,
    scope: &str,
    key: Option<&str>,
    fingerprint: &str,
    now: i64,
    request_id: &str,
    run: F,
) -> crate::Response
where
    S: IdempotencyStore,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<crate::Response, Problem>>,
{
    use http_body_util::BodyExt;
    let answer = |result: Result<crate::Response, Problem>| {
        result.unwrap_or_else(|problem| crate::response::problem(problem, request_id))
    };
    let Some(key) = key else {
        return answer(run().await);
    };
    let key = match parse_key(key) {
        Ok(key) => key,
        Err(problem) => return crate::response::problem(problem, request_id),
    };
    let claim = match store.claim(scope, &key, fingerprint, now).await {
        Ok(claim) => claim,
        Err(_) => {
            let problem = Problem::new(ErrorCode::Unavailable)
                .detail("the request could not be checked against its Idempotency-Key; retry");
            return crate::response::problem(problem, request_id);
        }
    };
    match claim {
        Claim::Fresh => {}
        Claim::Replay(stored) => return crate::response::replay(&stored, request_id),
        other => {
            let problem = other.problem().unwrap_or_else(Problem::internal);
            return crate::response::problem(problem, request_id);
        }
    }
    let (parts, body) = answer(run().await).into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        body: bytes.to_vec(),
    };
    // A record that cannot be completed must not block retries for a day.
    if settle(store, scope, &key, &stored).await.is_err() {
        let _ = store.release(scope, &key).await;
    }
    http::Response::from_parts(parts, http_body_util::Full::new(bytes))
}

/// The SQLite store on Spin's `default` database (table `idempotency_keys`,
/// created by migration 0001).
#[cfg(target_arch = "wasm32")]
pub mod sqlite {
    use super::{Claim, IdempotencyStore, StoredResponse, TTL_SECONDS, decide};
    use spin_sdk::sqlite::{Connection, Error, Value};

    /// Idempotency records in SQLite.
    pub struct SqliteStore<'a> {
        conn: &'a Connection,
    }

    impl<'a> SqliteStore<'a> {
        /// Uses an open connection.
        pub fn new(conn: &'a Connection) -> Self {
            SqliteStore { conn }
        }
    }

    /// Runs a creating request once per `Idempotency-Key`, scoped to
    /// `caller` (who is asking, in which tenant), the method and the path:
    /// reads the JSON body, then hands `run` the validated `T`. A retry
    /// gets the first outcome again; see [`once`](super::once).
    pub async fn create_once<T, F, Fut, B>(
        conn: &Connection,
        caller: &str,
        req: http::Request<B>,
        request_id: &str,
        run: F,
    ) -> Result<crate::Response, crate::Problem>
    where
        T: serde::de::DeserializeOwned + crate::json::Validate,
        F: FnOnce(T) -> Fut,
        Fut: std::future::Future<Output = Result<crate::Response, crate::Problem>>,
        B: http_body::Body<Data = bytes::Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let limit = crate::json::DEFAULT_LIMIT;
        create_once_up_to(conn, caller, req, request_id, limit, run).await
    }

    /// [`create_once`] for a body of up to `limit` bytes.
    pub async fn create_once_up_to<T, F, Fut, B>(
        conn: &Connection,
        caller: &str,
        req: http::Request<B>,
        request_id: &str,
        limit: usize,
        run: F,
    ) -> Result<crate::Response, crate::Problem>
    where
        T: serde::de::DeserializeOwned + crate::json::Validate,
        F: FnOnce(T) -> Fut,
        Fut: std::future::Future<Output = Result<crate::Response, crate::Problem>>,
        B: http_body::Body<Data = bytes::Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        use crate::json;
        let (parts, bytes) = json::read_raw(req, limit).await?;
        let method = parts.method.as_str();
        let path = parts.uri.path();
        let scope = format!("{caller}/{method} {path}");
        let key = parts
            .headers
            .get(super::HEADER)
            .and_then(|v| v.to_str().ok());
        // Without a key there is nothing to compare a retry with.
        let fingerprint = match key {
            Some(_) => super::fingerprint(method, path, &bytes),
            None => String::new(),
        };
        let store = SqliteStore::new(conn);
        let run = || async {
            let body: T = json::parse_valid(json::content_type(&parts.headers), &bytes)?;
            run(body).await
        };
        let now = super::unix_now();
        Ok(super::once(&store, &scope, key, &fingerprint, now, request_id, run).await)
    }

    fn text(v: &Value) -> Option<String> {
        match v {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    }

    impl IdempotencyStore for SqliteStore<'_> {
        type Error = Error;

        async fn claim(
            &self,
            scope: &str,
            key: &str,
            fingerprint: &str,
            now: i64,
        ) -> Result<Claim, Error> {
            let id = || vec![Value::Text(scope.into()), Value::Text(key.into())];
            // Expired records count as absent.
            let mut params = id();
            params.push(Value::Integer(now));
            self.conn
                .execute(
                    "DELETE FROM idempotency_keys WHERE scope = ? AND idem_key = ? AND expires_at <= ?",
                    params,
                )
                .await?
                .collect()
                .await?;
            // The insert is the atomic claim: only one request wins it.
            let mut params = id();
            params.extend([
                Value::Text(fingerprint.into()),
                Value::Integer(now),
                Value::Integer(now + TTL_SECONDS),
            ]);
            self.conn
                .execute(
                    "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, state, created_at, expires_at) VALUES (?, ?, ?, 'running', ?, ?) ON CONFLICT(scope, idem_key) DO NOTHING",
                    params,
                )
                .await?
                .collect()
                .await?;
            if self.conn.changes().await == 1 {
                return Ok(Claim::Fresh);
            }
            let rows = self
                .conn
                .execute("SELECT fingerprint, state, status, content_type, body FROM idempotency_keys WHERE scope = ? AND idem_key = ?", id())
                .await?
                .collect()
                .await?;
            let Some(row) = rows.first() else {
                // Released between our insert and read: the client may retry.
                return Ok(Claim::InProgress);
            };
            let fp = row.values.first().and_then(text).unwrap_or_default();
            let done = match (
                row.values.get(1).and_then(text).as_deref(),
                row.values.get(2),
                row.values.get(4),
            ) {
                // A backend may hand an empty blob back as NULL.
                (Some("done"), Some(Value::Integer(status)), body) => Some(StoredResponse {
                    status: u16::try_from(*status).unwrap_or(500),
                    content_type: row.values.get(3).and_then(text).unwrap_or_default(),
                    body: match body {
                        Some(Value::Blob(b)) => b.clone(),
                        _ => Vec::new(),
                    },
                }),
                _ => None,
            };
            Ok(decide(Some((&fp, done.as_ref())), fingerprint))
        }

        async fn complete(
            &self,
            scope: &str,
            key: &str,
            response: &StoredResponse,
        ) -> Result<(), Error> {
            let params = vec![
                Value::Integer(i64::from(response.status)),
                Value::Text(response.content_type.clone()),
                Value::Blob(response.body.clone()),
                Value::Text(scope.into()),
                Value::Text(key.into()),
            ];
            self.conn
                .execute("UPDATE idempotency_keys SET state = 'done', status = ?, content_type = ?, body = ? WHERE scope = ? AND idem_key = ?", params)
                .await?
                .collect()
                .await?;
            Ok(())
        }

        async fn release(&self, scope: &str, key: &str) -> Result<(), Error> {
            self.conn
                .execute(
                    "DELETE FROM idempotency_keys WHERE scope = ? AND idem_key = ?",
                    vec![Value::Text(scope.into()), Value::Text(key.into())],
                )
                .await?
                .collect()
                .await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {

    fn created(body: &'static str) -> crate::Response {
        crate::response::json(201, &serde_json::json!({"id": body}), "req")
    }

    fn body_of(res: crate::Response) -> Vec<u8> {
        use http_body_util::BodyExt;
        block_on(res.into_body().collect())
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn once_runs_the_first_request_and_replays_it_for_retries() {
        let store = MemoryStore::default();
        let runs = std::cell::Cell::new(0);
        let call = |fp: &str| {
            block_on(once(&store, "s", Some("k1"), fp, 100, "req", || async {
                runs.set(runs.get() + 1);
                Ok(created("a"))
            }))
        };
        let first = call("fp");
        assert_eq!(first.status(), 201);
        assert!(first.headers().get(REPLAYED_HEADER).is_none());
        let retry = call("fp");
        assert_eq!(
            retry.headers().get(REPLAYED_HEADER).map(|v| v.as_bytes()),
            Some(&b"true"[..])
        );
        assert_eq!(
            (retry.status().as_u16(), body_of(retry)),
            (201, body_of(first))
        );
        assert_eq!(runs.get(), 1, "the work happened once");
        assert_eq!(call("other").status(), 422, "same key, different request");
    }

    #[test]
    fn once_without_a_key_always_runs_and_a_bad_key_is_refused() {
        let store = MemoryStore::default();
        let runs = std::cell::Cell::new(0);
        for _ in 0..2 {
            block_on(once(&store, "s", None, "fp", 100, "req", || async {
                runs.set(runs.get() + 1);
                Ok(created("a"))
            }));
        }
        assert_eq!(runs.get(), 2);
        let bad = block_on(once(
            &store,
            "s",
            Some("has space"),
            "fp",
            100,
            "req",
            || async { Ok(created("a")) },
        ));
        assert_eq!(bad.status(), 400);
    }

    #[test]
    fn once_releases_the_key_after_a_server_error_and_stores_client_errors() {
        let store = MemoryStore::default();
        let failed = block_on(once(&store, "s", Some("k"), "fp", 100, "req", || async {
            Err(Problem::internal())
        }));
        assert_eq!(failed.status(), 500);
        let retried = block_on(once(&store, "s", Some("k"), "fp", 100, "req", || async {
            Ok(created("b"))
        }));
        assert_eq!(retried.status(), 201, "a 5xx does not stick to the key");
        let refused = block_on(once(&store, "s", Some("k2"), "fp", 100, "req", || async {
            Err(Problem::new(ErrorCode::Conflict))
        }));
        assert_eq!(refused.status(), 409);
        let again = block_on(once(&store, "s", Some("k2"), "fp", 100, "req", || async {
            Ok(created("c"))
        }));
        assert_eq!(
            again.status(),
            409,
            "a 4xx outcome is the answer for this key"
        );
    }

    use super::*;
    use futures::executor::block_on;

    fn ok(status: u16) -> StoredResponse {
        StoredResponse {
            status,
            content_type: "application/json".into(),
            body: b"{\"id\":1}".to_vec(),
        }
    }

    #[test]
    fn keys_are_validated() {
        assert!(parse_key("abc-123").is_ok());
        for bad in ["", "has space", "tab\t", &"k".repeat(256)] {
            assert_eq!(parse_key(bad).unwrap_err().code, "idempotency_key_invalid");
        }
    }

    #[test]
    fn same_request_replays_the_stored_response() {
        let store = MemoryStore::default();
        let fp = fingerprint("POST", "/v1/keys", b"{}");
        assert_eq!(
            block_on(store.claim("org:a", "k", &fp, 0)),
            Ok(Claim::Fresh)
        );
        assert_eq!(
            block_on(store.claim("org:a", "k", &fp, 1)),
            Ok(Claim::InProgress)
        );
        block_on(settle(&store, "org:a", "k", &ok(201))).ok();
        assert_eq!(
            block_on(store.claim("org:a", "k", &fp, 2)),
            Ok(Claim::Replay(ok(201)))
        );
    }

    #[test]
    fn different_request_with_the_same_key_is_refused() {
        let store = MemoryStore::default();
        block_on(store.claim("s", "k", &fingerprint("POST", "/v1/keys", b"{\"a\":1}"), 0)).ok();
        let claim =
            block_on(store.claim("s", "k", &fingerprint("POST", "/v1/keys", b"{\"a\":2}"), 1));
        assert_eq!(claim, Ok(Claim::Mismatch));
        assert_eq!(Claim::Mismatch.problem().map(|p| p.status), Some(422));
        assert_eq!(Claim::InProgress.problem().map(|p| p.status), Some(409));
    }

    #[test]
    fn server_errors_release_the_key() {
        let store = MemoryStore::default();
        let fp = fingerprint("POST", "/x", b"");
        block_on(store.claim("s", "k", &fp, 0)).ok();
        block_on(settle(&store, "s", "k", &ok(503))).ok();
        assert_eq!(block_on(store.claim("s", "k", &fp, 1)), Ok(Claim::Fresh));
    }

    #[test]
    fn fingerprints_tell_method_path_and_body_apart() {
        let base = fingerprint("POST", "/v1/keys", b"{}");
        assert_eq!(base.len(), 64);
        assert_eq!(base, fingerprint("POST", "/v1/keys", b"{}"));
        assert_ne!(base, fingerprint("PUT", "/v1/keys", b"{}"));
        assert_ne!(base, fingerprint("POST", "/v1/key", b"{}"));
        assert_ne!(base, fingerprint("POST", "/v1/keys", b"{ }"));
        // The separator keeps "ab"+"c" apart from "a"+"bc".
        assert_ne!(
            fingerprint("POST", "/ab", b"c"),
            fingerprint("POST", "/a", b"bc")
        );
    }

    #[test]
    fn a_running_claim_expires_too() {
        let store = MemoryStore::default();
        let fp = fingerprint("POST", "/x", b"");
        block_on(store.claim("s", "k", &fp, 0)).ok();
        assert_eq!(
            block_on(store.claim("s", "k", &fp, TTL_SECONDS - 1)),
            Ok(Claim::InProgress)
        );
        assert_eq!(
            block_on(store.claim("s", "k", &fp, TTL_SECONDS)),
            Ok(Claim::Fresh)
        );
    }

    #[test]
    fn client_errors_are_stored_and_replayed() {
        let store = MemoryStore::default();
        let fp = fingerprint("POST", "/x", b"");
        block_on(store.claim("s", "k", &fp, 0)).ok();
        block_on(settle(&store, "s", "k", &ok(409))).ok();
        assert_eq!(
            block_on(store.claim("s", "k", &fp, 1)),
            Ok(Claim::Replay(ok(409)))
        );
    }

    #[test]
    fn the_clock_is_past_2020() {
        assert!(unix_now() > 1_577_836_800);
    }

    #[test]
    fn scopes_isolate_tenants_and_records_expire() {
        let store = MemoryStore::default();
        let fp = fingerprint("POST", "/x", b"");
        block_on(store.claim("org:a", "k", &fp, 0)).ok();
        block_on(settle(&store, "org:a", "k", &ok(200))).ok();
        assert_eq!(
            block_on(store.claim("org:b", "k", &fp, 1)),
            Ok(Claim::Fresh)
        );
        assert_eq!(
            block_on(store.claim("org:a", "k", &fp, TTL_SECONDS + 1)),
            Ok(Claim::Fresh)
        );
    }
}
