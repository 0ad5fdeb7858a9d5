//! Reads of secrets' values in the org's audit trail: each read and each
//! refused read, written before the answer. Changes are recorded for
//! every route alike (`gatehouse_http::audit`).

use gatehouse_auth::caller::OrgCaller;
use gatehouse_http::Problem;
use gatehouse_http::audit::Entry;
use spin_sdk::http::Request;

/// Records `action` (`secret.read`, `secret.read_denied`) on the secret
/// `name` by the caller in its org, with the status about to be answered.
pub async fn record(
    req: &Request,
    caller: &OrgCaller,
    action: &'static str,
    name: &str,
    outcome: u16,
    request_id: &str,
) -> Result<(), Problem> {
    let entry = Entry::by(
        &caller.principal,
        caller.principal.org_id.as_deref(),
        action,
        Some(name.to_string()),
        Some(outcome),
    );
    gatehouse_http::audit::record(req, &entry, Some(request_id)).await
}
