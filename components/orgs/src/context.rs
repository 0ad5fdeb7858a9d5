//! What every org route starts from: the signed-in caller, and the tenant
//! context of the org the path names.

use gatehouse_auth::access::Grants;
use gatehouse_auth::db;
use gatehouse_auth::membership::{self, Membership};
use gatehouse_auth::session::{Cache, SessionAuth, user_from};
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::sqlite;
use gatehouse_http::json::Validate;
use gatehouse_http::principal::{OrgRole, Subject};
use gatehouse_http::{ErrorCode, Problem, Response};
use serde::de::DeserializeOwned;
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;

/// The caller and an open database.
pub struct Caller {
    /// The caller's session, user and memberships. For an API key: its
    /// owner, and one membership, of the key's org, with the key's grants
    /// and no more than a member's rights. For a JWT: its user and the one
    /// org, role and grants it was issued with.
    pub auth: SessionAuth,
    /// Set when the caller is an API key (its id).
    pub api_key: Option<String>,
    /// Set when an admin acts as the user (`X-Act-As`, or a token with
    /// an `act` claim): the admin's user id.
    pub acting_for: Option<String>,
    /// The `default` database.
    pub conn: Connection,
}

impl Caller {
    /// Authenticates the request (a session token, an API key or a JWT)
    /// and opens the database.
    pub async fn of(req: &Request) -> Result<Caller, Problem> {
        let is_session = gatehouse_auth::bearer_token(req)
            .is_none_or(|t| t.starts_with(gatehouse_auth::session::SESSION_PREFIX));
        let acting = req
            .headers()
            .contains_key(gatehouse_auth::impersonation::ACT_AS_HEADER);
        if is_session && !acting {
            let auth = gatehouse_auth::authenticate_session(req).await?;
            let conn = db::open().await?;
            return Ok(Caller {
                auth,
                api_key: None,
                acting_for: None,
                conn,
            });
        }
        // An API key, a JWT, or an admin acting as a member: the principal
        // names one org, with its role and grants there.
        let principal = gatehouse_auth::authenticate(req).await?;
        let conn = db::open().await?;
        let (user_id, api_key) = match &principal.subject {
            Subject::User { id } => (id.clone(), None),
            Subject::ApiKey { id, owner_user_id } => {
                (owner_user_id.clone().unwrap_or_default(), Some(id.clone()))
            }
            Subject::Service { .. } | Subject::External { .. } => {
                return Err(
                    Problem::new(ErrorCode::Forbidden).detail("services cannot use the org routes")
                );
            }
        };
        let rows = db::query(
            &conn,
            "SELECT u.id, u.email, u.display_name, u.status, u.email_verified_at, u.created_at,
                    (SELECT o.handle FROM orgs o WHERE o.org_id = ?)
             FROM users u WHERE u.id = ?",
            vec![db::opt_text(principal.org_id.clone()), db::text(&user_id)],
        )
        .await?;
        let row = rows.first().ok_or_else(membership::unknown_org)?;
        let memberships = match (&principal.org_id, db::get_opt_text(row, 6)) {
            (Some(org_id), Some(handle)) => vec![Membership {
                org_id: org_id.clone(),
                org_handle: handle,
                role: principal.org_role.unwrap_or(OrgRole::Member),
                team_ids: principal.team_ids.clone(),
                grants: Grants {
                    roles: principal.roles.clone(),
                    permissions: principal.permissions.clone(),
                },
            }],
            _ => Vec::new(),
        };
        let auth = SessionAuth {
            session_id: String::new(),
            user: user_from(row),
            memberships,
        };
        Ok(Caller {
            auth,
            api_key,
            acting_for: principal
                .acting_as
                .as_ref()
                .map(|a| a.impersonator_user_id.clone()),
            conn,
        })
    }

    /// 403 for an API key, or an admin acting as the user, on routes that
    /// act for a person (creating an org, leaving one, one's own
    /// preferences).
    pub fn require_person(&self) -> Result<(), Problem> {
        if self.acting_for.is_some() {
            return Err(Problem::new(ErrorCode::Forbidden).detail(
                "this route acts for the signed-in person themself; not while acting as another",
            ));
        }
        match self.api_key {
            None => Ok(()),
            Some(_) => Err(Problem::new(ErrorCode::Forbidden)
                .detail("this route acts for a signed-in person; an API key cannot use it")),
        }
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
        let caller = match &self.api_key {
            Some(key) => format!("key:{key}"),
            None => format!("user:{}", self.user_id()),
        };
        sqlite::create_once(&self.conn, &caller, req, request_id, run).await
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
