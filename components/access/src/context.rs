//! What every access route starts from: the authenticated principal (a
//! member's session or an API key), acting in one org, and the tenant
//! context of that org.

use access_core::facts::SubjectKind;
use gatehouse_auth::db;
use gatehouse_auth::tenant::Tenant;
use gatehouse_http::idempotency::sqlite;
use gatehouse_http::json::Validate;
use gatehouse_http::principal::{Principal, Subject};
use gatehouse_http::{ErrorCode, Problem, Response};
use serde::de::DeserializeOwned;
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;

/// The authenticated caller, acting in an org, and an open database.
pub struct Caller {
    /// Who, in which org, with which roles and permissions.
    pub principal: Principal,
    /// The `default` database.
    pub conn: Connection,
}

impl Caller {
    /// Authenticates the request (session or API key; `X-Org` picks among a
    /// member's orgs) and opens the database. 403 when the request acts in
    /// no org, 404 when `X-Org` names one the caller is not in.
    pub async fn of(req: &Request) -> Result<Caller, Problem> {
        let principal = gatehouse_auth::authenticate(req).await?;
        principal.require_org()?;
        let conn = db::open().await?;
        Ok(Caller { principal, conn })
    }

    /// The tenant context of the caller's org.
    pub fn tenant(&self) -> Result<Tenant<'_>, Problem> {
        Tenant::for_principal(&self.conn, &self.principal)
    }

    /// What the caller is, as role grants and decisions name it.
    pub fn subject(&self) -> Result<(SubjectKind, &str), Problem> {
        match &self.principal.subject {
            Subject::User { id } => Ok((SubjectKind::User, id)),
            Subject::ApiKey { id, .. } => Ok((SubjectKind::ApiKey, id)),
            Subject::Service { .. } | Subject::External { .. } => {
                Err(Problem::new(ErrorCode::Forbidden)
                    .detail("access routes answer members and API keys"))
            }
        }
    }

    /// The caller's user id, when the caller is a member's session.
    pub fn user_id(&self) -> Option<&str> {
        match &self.principal.subject {
            Subject::User { id } => Some(id),
            _ => None,
        }
    }

    /// 403 unless the caller administers the org.
    pub fn require_admin(&self) -> Result<(), Problem> {
        if self.principal.is_org_admin() {
            Ok(())
        } else {
            Err(Problem::new(ErrorCode::Forbidden)
                .detail("only an admin of this organization may do this"))
        }
    }

    /// 403 unless the caller administers the org or holds `permission`.
    pub fn require_admin_or(&self, permission: &str) -> Result<(), Problem> {
        if self.principal.is_org_admin() || self.principal.has_permission(permission) {
            Ok(())
        } else {
            Err(Problem::new(ErrorCode::Forbidden).detail(format!(
                "only an admin of this organization or a holder of {permission} may do this"
            )))
        }
    }

    /// Runs a creating request once per `Idempotency-Key`, scoped to the
    /// org, the caller, the method and the path.
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
        let (kind, id) = self.subject()?;
        let org = self.principal.require_org()?;
        let kind = match kind {
            SubjectKind::User => "user",
            SubjectKind::ApiKey => "api_key",
        };
        let caller = format!("org:{org}/{kind}:{id}");
        sqlite::create_once(&self.conn, &caller, req, request_id, run).await
    }
}
