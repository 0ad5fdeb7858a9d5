//! Quotas through Gatehouse's `/v1/quotas/*` routes. Consuming takes
//! `quotas:consume`, which the callers of an app rarely hold, so it is done
//! with the app's own service key (`<prefix>_service_key`) on the caller's
//! behalf, naming the caller as the subject: quotas on the user or key then
//! apply, and the service key of one org meters only that org's callers.

use gatehouse_http::idempotency::unix_now;
use gatehouse_http::principal::{Principal, Subject};
use gatehouse_http::{ErrorCode, Problem};
use serde::Deserialize;
use serde_json::Value;

use crate::config::Settings;
use crate::gatehouse::{self, Answer};

/// Gatehouse's decision on a check, consume or reserve.
#[derive(Debug, Deserialize)]
pub struct Decision {
    /// Whether the use is allowed (and, for consume and reserve, counted).
    pub allowed: bool,
    /// What the tightest hard quota has left: units as a number, spend as
    /// a decimal string.
    #[serde(default)]
    pub remaining: Option<Value>,
    /// Unix seconds: when the deciding quota's period ends.
    #[serde(default)]
    pub reset_at: Option<i64>,
    /// The quota that decided, when one refused or is the tightest.
    #[serde(default)]
    pub blocking: Option<Value>,
    /// A reserve's reservation, when allowed.
    #[serde(default)]
    pub reservation_id: Option<String>,
    /// When that reservation stops holding, in Unix seconds.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// The subject a quota of the caller is set on (`user:…`, `key:…`).
pub fn subject(principal: &Principal) -> Option<String> {
    match &principal.subject {
        Subject::User { id } => Some(format!("user:{id}")),
        Subject::ApiKey { id, .. } => Some(format!("key:{id}")),
        Subject::Service { .. } | Subject::External { .. } => None,
    }
}

/// The refusal of a caller quotas are not kept for.
pub fn no_subject() -> Problem {
    Problem::new(ErrorCode::Forbidden).detail("this credential is not one quotas are kept for")
}

/// `POST <path>` with the service key and a JSON `body`; Gatehouse's answer
/// whatever its status. No service key is a misconfigured app (500).
pub async fn post(
    path: &str,
    body: &Value,
    idempotency_key: Option<&str>,
    settings: &Settings,
) -> Result<Answer, Problem> {
    let Some(service_key) = settings.service_key.as_deref() else {
        eprintln!(
            "gatehouse: quotas are asked for but {}_service_key is not set",
            settings.prefix
        );
        return Err(Problem::new(ErrorCode::Internal).detail("the request could not be completed"));
    };
    let headers: Vec<(&str, &str)> = idempotency_key
        .map(|key| ("idempotency-key", key))
        .into_iter()
        .collect();
    let what = format!("POST {path}");
    gatehouse::call(
        http::Method::POST,
        &settings.url(path),
        Some(service_key),
        &headers,
        Some(body),
        &what,
    )
    .await
}

/// Consumes one unit of `meter` for `principal`; a refusal is a 429 whose
/// `Retry-After` says when the blocking quota starts again. Any other
/// answer than a decision is Gatehouse failing or the app misconfigured,
/// and the request is not let through (503).
pub async fn consume_one(
    meter: &str,
    principal: &Principal,
    settings: &Settings,
) -> Result<(), Problem> {
    let what = "POST /v1/quotas/consume";
    let subject = subject(principal).ok_or_else(no_subject)?;
    let body = serde_json::json!({ "subject": subject, "meter": meter });
    let answer = post("/v1/quotas/consume", &body, None, settings).await?;
    if answer.status != 200 {
        eprintln!(
            "gatehouse: {what} answered {} ({p}_meter and {p}_service_key, with quotas:consume?)",
            answer.status,
            p = settings.prefix
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

    #[test]
    fn a_decision_reads_with_or_without_a_reservation() {
        let consumed: Decision = serde_json::from_str(
            r#"{"allowed":false,"remaining":0,"reset_at":60,"blocking":{"id":"q1"}}"#,
        )
        .unwrap();
        assert!(!consumed.allowed);
        assert_eq!(consumed.reset_at, Some(60));
        assert_eq!(consumed.reservation_id, None);
        let reserved: Decision = serde_json::from_str(
            r#"{"allowed":true,"remaining":"1.50","reset_at":null,"blocking":null,"reservation_id":"rsv_1","expires_at":9}"#,
        )
        .unwrap();
        assert_eq!(reserved.reservation_id.as_deref(), Some("rsv_1"));
        assert_eq!(reserved.remaining, Some(Value::String("1.50".into())));
    }
}
