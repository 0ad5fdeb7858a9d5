//! What every org route starts from: the signed-in caller, and the tenant
//! context of the org the path names.

use gatehouse_auth::db;
use gatehouse_auth::membership;
use gatehouse_auth::session::{Cache, SessionAuth};
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::{self, sqlite::SqliteStore, unix_now};
use gatehouse_http::json::{self, Validate};
use gatehouse_http::{Problem, Response};
use serde::de::DeserializeOwned;
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;

/// The signed-in caller and an open database.
pub struct Caller {
    /// The caller's session, user and memberships.
    pub auth: SessionAuth,
    /// The `default` database.
    pub conn: Connection,
}

impl Caller {
    /// Authenticates the request (session token) and opens the database.
    pub async fn of(req: &Request) -> Result<Caller, Problem> {
        let auth = gatehouse_auth::authenticate_session(req).await?;
        let conn = db::open().await?;
        Ok(Caller { auth, conn })
    }

    /// The tenant context of the org `reference` names (id or handle): 404
    /// when the caller is not a member, exactly as for an org that does not
    /// exist.
    pub fn tenant(&self, reference: &str) -> Result<Tenant<'_>, Problem> {
        let membership = membership::find(&self.auth.memberships, reference)?;
        Ok(Tenant::for_member(
            &self.conn,
            &self.auth.user.id,
            membership,
        ))
    }

    /// Runs a creating request once per `Idempotency-Key` (scoped to the
    /// caller, the method and the path): reads the JSON body, then hands
    /// `run` the validated `T`. A retry gets the first outcome again.
    pub async fn create_once<T, F, Fut>(
        &self,
        req: Request,
        request_id: &str,
        run: F,
    ) -> Result<Response, Problem>
    where
        T: DeserializeOwned + Validate,
        F: FnOnce(T) -> Fut,
        Fut: std::future::Future<Output = Result<Response, Problem>>,
    {
        let (parts, bytes) = json::read_raw(req, json::DEFAULT_LIMIT).await?;
        let method = parts.method.as_str();
        let path = parts.uri.path();
        let scope = format!("user:{}/{method} {path}", self.user_id());
        let fingerprint = idempotency::fingerprint(method, path, &bytes);
        let key = parts
            .headers
            .get(idempotency::HEADER)
            .and_then(|v| v.to_str().ok());
        let store = SqliteStore::new(&self.conn);
        let run = || async {
            let body: T = json::parse_valid(json::content_type(&parts.headers), &bytes)?;
            run(body).await
        };
        Ok(idempotency::once(
            &store,
            &scope,
            key,
            &fingerprint,
            unix_now(),
            request_id,
            run,
        )
        .await)
    }

    /// The caller's user id.
    pub fn user_id(&self) -> &str {
        &self.auth.user.id
    }
}

/// Makes every cached session of these users re-read their memberships.
/// Call after the database change.
pub async fn memberships_changed<I, S>(user_ids: I) -> Result<(), Problem>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let cache = Cache::open().await;
    for user_id in user_ids {
        cache.invalidate_user(user_id.as_ref()).await?;
    }
    Ok(())
}
