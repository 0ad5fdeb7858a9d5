//! Settings from Spin variables, with the defaults spin.toml declares.

use spin_sdk::variables;

async fn number(name: &str, default: i64) -> i64 {
    match variables::get(name).await {
        Ok(v) => v.trim().parse().unwrap_or(default),
        Err(_) => default,
    }
}

/// Seconds a session survives at most, however much it is used.
pub async fn session_absolute_ttl() -> i64 {
    number("session_absolute_ttl_seconds", 30 * 24 * 3600).await
}

/// Where links in mails point.
pub async fn public_base_url() -> String {
    variables::get("public_base_url")
        .await
        .map(|v| v.trim_end_matches('/').to_string())
        .unwrap_or_else(|_| "http://127.0.0.1:3000".to_string())
}

/// Whether the development-only outbox listing is served. Off unless the
/// deployment says otherwise: mails carry live tokens.
pub async fn dev_outbox_enabled() -> bool {
    variables::get("dev_outbox")
        .await
        .is_ok_and(|v| v == "enabled")
}
