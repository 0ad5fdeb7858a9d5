//! Keys derived from the `master_key` variable for one purpose. The one
//! that matters is the key that seals data keys (`gatehouse_secrets`):
//! values at rest (secrets, TOTP secrets, signing keys, identity provider
//! and webhook secrets) are sealed with data keys, not with these.

use gatehouse_http::{ErrorCode, Problem};
use identity_core::sealed::SealingKey;

/// The key that seals secrets of one `purpose` at rest, derived from the
/// `master_key` variable; without a usable master key, 503 with `detail`
/// (what on this deployment is not configured).
pub async fn sealing_key(purpose: &str, detail: &str) -> Result<SealingKey, Problem> {
    let master = spin_sdk::variables::get("master_key")
        .await
        .unwrap_or_default();
    SealingKey::derive(&master, purpose).map_err(|_| {
        eprintln!("the master_key variable is not 32 bytes of base64 ({purpose})");
        Problem::new(ErrorCode::Unavailable).detail(detail.to_string())
    })
}
