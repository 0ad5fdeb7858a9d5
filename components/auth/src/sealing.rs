//! Keys that seal secrets at rest (TOTP secrets, signing keys, identity
//! provider client secrets), each derived from the `master_key` variable.

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
