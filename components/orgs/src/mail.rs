//! The mails orgs send: queued in the outbox on the connection that makes
//! the change they are about, then delivered by the `gatehouse-mail` crate.

use gatehouse_http::Problem;
use gatehouse_http::idempotency::unix_now;
use spin_sdk::sqlite::Connection;

async fn base_url() -> String {
    spin_sdk::variables::get("public_base_url")
        .await
        .map(|v| v.trim_end_matches('/').to_string())
        .unwrap_or_else(|_| "http://127.0.0.1:3000".to_string())
}

/// What an invitation mail says.
pub struct Invitation<'a> {
    /// The invited address.
    pub to: &'a str,
    /// The org's name.
    pub org_name: &'a str,
    /// Who invited.
    pub inviter: &'a str,
    /// The invitation token (`ginv_…`).
    pub token: &'a str,
}

/// Queues an invitation and delivers it at once; a delivery failure leaves
/// it queued for a retry and never fails the request.
pub async fn send_invitation(conn: &Connection, mail: Invitation<'_>) -> Result<(), Problem> {
    let base = base_url().await;
    let Invitation {
        to,
        org_name,
        inviter,
        token,
    } = mail;
    let body = format!(
        "{inviter} invited you to join {org_name} on Gatehouse.\n\nAccept: {base}/accept-invitation?token={token}\n\nOr send this token to POST /v1/invitations/accept: {token}\n\nThe invitation works once, for seven days.\n"
    );
    let subject = format!("Join {org_name} on Gatehouse");
    let now = unix_now();
    let id = gatehouse_mail::enqueue(conn, to, "invitation", &subject, &body, now).await?;
    gatehouse_mail::deliver(conn, &[id], now).await;
    Ok(())
}
