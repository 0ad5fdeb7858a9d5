//! Who may do what here. Meters and quotas are the org's settings: its
//! admins manage them. Sending usage and checking or consuming quota is
//! what an org's own services do: admins may, and so may holders of the
//! permission for it (an API key with a role that grants it, say).
//! Reading usage is open to every member for their own subject.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_http::{ErrorCode, Problem};
use spin_sdk::http::Request;

/// The permission that sends usage events.
pub const INGEST: &str = "usage:write";
/// The permission that reads any subject's usage in the org.
pub const READ: &str = "usage:read";
/// The permission that checks and consumes quota.
pub const CONSUME: &str = "quotas:consume";
/// The permission that makes a team's member its team admin for quotas:
/// setting quotas of the team, the teams below it and their members,
/// within the org's.
pub const MANAGE_TEAM: &str = "quotas:manage_team";

/// An admin of the org the request acts in.
pub async fn admin(req: &Request, what: &str) -> Result<OrgCaller, Problem> {
    let caller = OrgCaller::of(req).await?;
    caller.require_admin(what)?;
    Ok(caller)
}

/// A caller that is an admin of its org or holds `permission`.
pub async fn holding(req: &Request, permission: &str) -> Result<OrgCaller, Problem> {
    let caller = OrgCaller::of(req).await?;
    if caller.principal.is_org_admin() || caller.principal.has_permission(permission) {
        Ok(caller)
    } else {
        Err(Problem::new(ErrorCode::Forbidden).detail(format!(
            "this needs an admin of the organization or the {permission} permission"
        )))
    }
}

/// The user id that created something, for the record.
pub fn actor_id(caller: &OrgCaller) -> String {
    caller.actor_id()
}
