//! One unit of the app's meter per request, through Gatehouse's
//! `POST /v1/quotas/consume`. Consuming takes `quotas:consume`, which the
//! callers of an app rarely hold, so the guard consumes with the app's own
//! service key (`guard_service_key`) on the caller's behalf, naming the
//! caller as the subject: quotas on the user or key then apply, and the
//! service key of one org meters only that org's callers.

use gatehouse_http::idempotency::unix_now;
use gatehouse_http::principal::{Principal, Subject};
use gatehouse_http::{ErrorCode, Problem};
use serde::Deserialize;

use crate::config::Settings;
use crate::gatehouse;

/// The parts of Gatehouse's decision the guard reads.
#[derive(Deserialize)]
struct Decision {
    allowed: bool,
    reset_at: Option<i64>,
}

/// The subject a quota of the caller is set on (`user:…`, `key:…`).
pub fn subject(principal: &Principal) -> Option<String> {
    match &principal.subject {
        Subject::User { id } => Some(format!("user:{id}")),
        Subject::ApiKey { id, .. } => Some(format!("key:{id}")),
        Subject::Service { .. } | Subject::External { .. } => None,
    }
}

/// Consumes one unit of `meter` for `principal`; a refusal is a 429 whose
/// `Retry-After` says when the blocking quota starts again.
pub async fn consume(
    meter: &str,
    principal: &Principal,
    settings: &Settings,
) -> Result<(), Problem> {
    let what = "POST /v1/quotas/consume";
    let Some(service_key) = settings.service_key.as_deref() else {
        eprintln!("guard: guard_meter is set but guard_service_key is not");
        return Err(Problem::new(ErrorCode::Internal).detail("the request could not be completed"));
    };
    let Some(subject) = subject(principal) else {
        return Err(Problem::new(ErrorCode::Forbidden)
            .detail("this credential is not one quotas are kept for"));
    };
    let answer = gatehouse::call(
        http::Method::POST,
        &settings.url("/v1/quotas/consume"),
        Some(service_key),
        &[],
        Some(&serde_json::json!({ "subject": subject, "meter": meter })),
        what,
    )
    .await?;
    if answer.status != 200 {
        eprintln!(
            "guard: {what} answered {} (guard_meter and guard_service_key, with quotas:consume?)",
            answer.status
        );
        return Err(gatehouse::unavailable(what));
    }
    let decision: Decision =
        serde_json::from_slice(&answer.body).map_err(|_| gatehouse::unavailable(what))?;
    if decision.allowed {
        return Ok(());
    }
    Err(Problem::new(ErrorCode::QuotaExceeded)
        .detail("the quota for this route is used up")
        .header(
            "retry-after",
            retry_after(decision.reset_at, unix_now()).to_string(),
        ))
}

/// Seconds until `reset_at`, at least one; a quota that never resets asks
/// for an hour.
pub fn retry_after(reset_at: Option<i64>, now: i64) -> i64 {
    reset_at.map_or(3600, |at| (at - now).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_the_wait_until_the_reset_and_never_zero() {
        assert_eq!(retry_after(Some(1_000), 940), 60);
        assert_eq!(retry_after(Some(1_000), 1_000), 1);
        assert_eq!(retry_after(Some(1_000), 1_200), 1);
        assert_eq!(retry_after(None, 1_000), 3600);
    }
}
