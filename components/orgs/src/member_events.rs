//! `member.added` and `member.removed`: the org events (with their webhook
//! deliveries) a membership's start and end publish, in the transaction
//! that makes the change.

use gatehouse_auth::tenant::Tenant;
use gatehouse_http::Problem;
use gatehouse_http::principal::OrgRole;
use gatehouse_webhook_delivery::catalog::{MEMBER_ADDED, MEMBER_REMOVED};
use serde_json::json;
use spin_sdk::sqlite::Connection;

use crate::members::role_text;

/// Who the member is, as both events tell it.
pub struct Member<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub role: OrgRole,
}

impl Member<'_> {
    fn json(&self) -> serde_json::Value {
        json!({"user_id": self.user_id, "email": self.email, "role": role_text(self.role)})
    }
}

/// How a membership came about.
#[derive(Clone, Copy)]
pub enum Via {
    /// The user accepted an invitation.
    Invitation,
    /// The user created the org.
    OrgCreated,
}

/// Publishes `member.added` in the tenant's org, on its connection `conn`.
pub async fn added(
    tenant: &Tenant<'_>,
    conn: &Connection,
    member: &Member<'_>,
    via: Via,
    now: i64,
) -> Result<(), Problem> {
    let via = match via {
        Via::Invitation => "invitation",
        Via::OrgCreated => "org_created",
    };
    let data = json!({"member": member.json(), "via": via});
    gatehouse_webhook_delivery::publish(tenant, conn, MEMBER_ADDED, &data, now)
        .await
        .map(|_| ())
}

/// Publishes `member.removed` in the tenant's org, on its connection
/// `conn`: `by` ended the membership (the member themselves when they left).
pub async fn removed(
    tenant: &Tenant<'_>,
    conn: &Connection,
    member: &Member<'_>,
    by: &str,
    now: i64,
) -> Result<(), Problem> {
    let reason = if by == member.user_id {
        "left"
    } else {
        "removed"
    };
    let data = json!({"member": member.json(), "reason": reason, "removed_by": by});
    gatehouse_webhook_delivery::publish(tenant, conn, MEMBER_REMOVED, &data, now)
        .await
        .map(|_| ())
}
