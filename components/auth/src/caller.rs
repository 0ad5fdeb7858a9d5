//! The caller of an org-scoped route: the authenticated principal, which
//! must act in an org, and an open database, with the tenant context of
//! that org.

use gatehouse_http::principal::Principal;
use gatehouse_http::{ErrorCode, Problem};
use spin_sdk::http::Request;
use spin_sdk::sqlite::Connection;

use crate::tenant::Tenant;

/// An authenticated caller acting in an org.
pub struct OrgCaller {
    /// Who is calling, in which org.
    pub principal: Principal,
    /// The `default` database.
    pub conn: Connection,
}

impl OrgCaller {
    /// Authenticates the request (403 when it acts in no org, or for a
    /// subject of an identity provider that is not a linked member) and
    /// opens the database.
    pub async fn of(req: &Request) -> Result<OrgCaller, Problem> {
        let principal = crate::authenticate(req).await?;
        principal.require_org()?;
        if let gatehouse_http::principal::Subject::External { .. } = principal.subject {
            return Err(Problem::new(ErrorCode::Forbidden)
                .detail("an identity provider's own subjects cannot use these routes"));
        }
        let conn = crate::db::open().await?;
        Ok(OrgCaller { principal, conn })
    }

    /// The caller as the scope of an `Idempotency-Key`: its org and who
    /// it is, so equal keys of two callers never meet.
    pub fn idempotency_scope(&self) -> String {
        use gatehouse_http::principal::Subject;
        let org = self.principal.org_id.as_deref().unwrap_or_default();
        let who = match &self.principal.subject {
            Subject::User { id } => format!("user:{id}"),
            Subject::ApiKey { id, .. } => format!("key:{id}"),
            Subject::Service { name } => format!("service:{name}"),
            Subject::External { provider, sub } => format!("external:{provider}:{sub}"),
        };
        format!("org:{org}/{who}")
    }

    /// Who the caller is, for the record of what it made: the user, a
    /// key's owner (or the key), the service, or the provider's subject.
    pub fn actor_id(&self) -> String {
        use gatehouse_http::principal::Subject;
        match &self.principal.subject {
            Subject::User { id } => id.clone(),
            Subject::ApiKey { id, owner_user_id } => {
                owner_user_id.clone().unwrap_or_else(|| id.clone())
            }
            Subject::Service { name } => name.clone(),
            Subject::External { provider, sub } => format!("{provider}:{sub}"),
        }
    }

    /// Whether `org` (an id or a handle, as a path spells it) names the
    /// org the caller acts in: routes under `/v1/orgs/{org}` answer 404
    /// for any other, whether it exists or not.
    pub async fn acts_in(&self, org: &str) -> Result<bool, Problem> {
        if self.principal.org_id.as_deref() == Some(org) {
            return Ok(true);
        }
        let named = self
            .tenant()?
            .query(
                // Handles are stored in lower case and matched without
                // regard to case, as X-Org matches them.
                "SELECT 1 FROM orgs WHERE org_id = ?1 AND handle = ?2",
                vec![crate::db::text(org.to_ascii_lowercase())],
            )
            .await?;
        Ok(!named.is_empty())
    }

    /// The tenant context of the caller's org.
    pub fn tenant(&self) -> Result<Tenant<'_>, Problem> {
        Tenant::for_principal(&self.conn, &self.principal)
    }

    /// 403 unless the caller administers the org; `what` completes "only
    /// an admin of this organization may change its …".
    pub fn require_admin(&self, what: &str) -> Result<(), Problem> {
        if self.principal.is_org_admin() {
            Ok(())
        } else {
            Err(Problem::new(ErrorCode::Forbidden).detail(format!(
                "only an admin of this organization may change its {what}"
            )))
        }
    }
}
