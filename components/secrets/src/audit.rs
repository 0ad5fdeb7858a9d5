//! The org's audit trail: each read of a secret's value, each refused
//! read and each change, written before the answer.

use gatehouse_auth::caller::OrgCaller;
use gatehouse_auth::db;
use gatehouse_http::Problem;
use gatehouse_http::idempotency::unix_now;
use gatehouse_http::principal::Credential;
use spin_sdk::http::Request;

/// What the request was, for the record.
pub struct Seen {
    method: String,
    path: String,
    request_id: Option<String>,
}

impl Seen {
    /// The request's method, path and the client's request id.
    pub fn of(req: &Request) -> Seen {
        Seen {
            method: req.method().as_str().to_string(),
            path: req.uri().path().chars().take(500).collect(),
            request_id: req
                .headers()
                .get(gatehouse_http::request_id::HEADER)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(128).collect()),
        }
    }
}

/// Records `action` (`secret.read`, `secret.read_denied`, `secret.write`,
/// `secret.delete`) by the caller in its org.
pub async fn record(caller: &OrgCaller, seen: &Seen, action: &str) -> Result<(), Problem> {
    let Some(org_id) = caller.principal.org_id.as_deref() else {
        return Ok(());
    };
    let credential = match caller.principal.credential {
        Credential::Session => "session",
        Credential::ApiKey => "api_key",
        Credential::Jwt => "jwt",
    };
    let impersonator = caller
        .principal
        .acting_as
        .as_ref()
        .map(|a| a.impersonator_user_id.clone());
    // An admin acting as a member is the actor; the member is the subject.
    let (actor, subject) = match impersonator {
        Some(admin) => (admin, Some(caller.actor_id())),
        None => (caller.actor_id(), None),
    };
    db::run(
        &caller.conn,
        "INSERT INTO audit_events (org_id, event_id, occurred_at, action, actor_user_id, subject_user_id, method, path, credential, request_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            db::text(org_id),
            db::text(db::new_id("aud_")),
            db::int(unix_now()),
            db::text(action),
            db::text(actor),
            db::opt_text(subject),
            db::text(&seen.method),
            db::text(&seen.path),
            db::text(credential),
            db::opt_text(seen.request_id.clone()),
        ],
    )
    .await
}
