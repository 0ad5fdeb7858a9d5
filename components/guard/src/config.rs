//! The guard's settings: Spin variables of the app it protects, which the
//! guard reads because its middleware entry inherits `variables`. They are
//! read on every request (a variable lookup is a host call, not I/O) so a
//! changed value takes effect without a restart.

use gatehouse_http::{ErrorCode, Problem};
use spin_sdk::variables;

/// How long a verdict from Gatehouse (API key, session) is reused when the
/// app does not say: a revoked key or session is refused at most this long
/// after its revocation.
pub const DEFAULT_CACHE_SECONDS: i64 = 30;
/// The longest cache bound the guard accepts, so a typo cannot keep a
/// revoked credential working for days.
pub const MAX_CACHE_SECONDS: i64 = 300;

/// What the protected app configured.
pub struct Settings {
    /// Gatehouse's base URL, without a trailing slash.
    pub gatehouse_url: String,
    /// The exact `iss` of Gatehouse's JWTs: its `public_base_url`.
    pub issuer: String,
    /// The `aud` a JWT must carry to be accepted here; `None` refuses JWTs.
    pub audience: Option<String>,
    /// A permission every caller must hold.
    pub permission: Option<String>,
    /// A meter of which each request consumes one unit.
    pub meter: Option<String>,
    /// Seconds a verdict from Gatehouse is reused.
    pub cache_seconds: i64,
    /// The app's own API key at Gatehouse: verifies API keys and consumes
    /// quota on the caller's behalf.
    pub service_key: Option<String>,
}

/// A variable's value; `None` when it is not declared for the component
/// or is empty (an optional setting left out).
async fn optional(name: &str) -> Option<String> {
    variables::get(name)
        .await
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A misconfigured guard answers 500 and says why in the log only.
fn misconfigured(why: &str) -> Problem {
    eprintln!("guard: {why}");
    Problem::new(ErrorCode::Internal).detail("the request could not be completed")
}

impl Settings {
    /// The settings of this request's app.
    pub async fn load() -> Result<Settings, Problem> {
        let gatehouse_url = optional("gatehouse_url")
            .await
            .ok_or_else(|| misconfigured("the app declares no gatehouse_url variable"))?
            .trim_end_matches('/')
            .to_string();
        let issuer = optional("guard_issuer")
            .await
            .map(|v| v.trim_end_matches('/').to_string())
            .unwrap_or_else(|| gatehouse_url.clone());
        let cache_seconds = match optional("guard_cache_seconds").await {
            None => DEFAULT_CACHE_SECONDS,
            Some(text) => parse_cache_seconds(&text).ok_or_else(|| {
                misconfigured("guard_cache_seconds is not a number of seconds from 0 to 300")
            })?,
        };
        Ok(Settings {
            gatehouse_url,
            issuer,
            audience: optional("guard_audience").await,
            permission: optional("guard_permission").await,
            meter: optional("guard_meter").await,
            cache_seconds,
            service_key: optional("guard_service_key").await,
        })
    }

    /// `path` on Gatehouse.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gatehouse_url)
    }
}

/// `guard_cache_seconds` as a number within bounds.
pub fn parse_cache_seconds(text: &str) -> Option<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|s| (0..=MAX_CACHE_SECONDS).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_bound_is_whole_seconds_up_to_five_minutes() {
        assert_eq!(parse_cache_seconds("0"), Some(0));
        assert_eq!(parse_cache_seconds("30"), Some(30));
        assert_eq!(parse_cache_seconds("300"), Some(300));
        assert_eq!(parse_cache_seconds("301"), None);
        assert_eq!(parse_cache_seconds("-1"), None);
        assert_eq!(parse_cache_seconds("1.5"), None);
    }
}
