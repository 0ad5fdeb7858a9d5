//! The deployment's retry policy, from Spin variables.

use crate::schedule::Policy;

async fn variable(name: &str) -> String {
    spin_sdk::variables::get(name).await.unwrap_or_default()
}

thread_local! {
    /// The policy this instance read: a deployment's variables do not
    /// change under a running instance's feet in any way that matters
    /// here, and an instance serves a bounded number of requests, so the
    /// next one reads them again.
    static READ: std::cell::Cell<Option<Policy>> = const { std::cell::Cell::new(None) };
}

/// The policy the component's `job_retry_base_seconds` and
/// `job_max_attempts` variables set. A component without them gets the
/// defaults; an unusable value is logged and its default used, so a typo
/// in a deployment never stops the work.
pub async fn policy() -> Policy {
    if let Some(policy) = READ.with(std::cell::Cell::get) {
        return policy;
    }
    let policy = read().await;
    READ.with(|read| read.set(Some(policy)));
    policy
}

async fn read() -> Policy {
    let base = variable("job_retry_base_seconds").await;
    let max_attempts = variable("job_max_attempts").await;
    Policy::from_variables(&base, &max_attempts).unwrap_or_else(|e| {
        eprintln!("jobs: {e}; its default is used");
        let defaults = Policy::default();
        Policy {
            retry_base_seconds: Policy::from_variables(&base, "")
                .map_or(defaults.retry_base_seconds, |p| p.retry_base_seconds),
            max_attempts: Policy::from_variables("", &max_attempts)
                .map_or(defaults.max_attempts, |p| p.max_attempts),
            ..defaults
        }
    })
}
