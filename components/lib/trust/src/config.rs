//! Settings: Spin variables of the app a component serves, which it reads
//! because its entry in the app's manifest inherits `variables`. The guard
//! reads `guard_*`, the client component `gatehouse_*`, both beside the
//! shared `gatehouse_url`. They are read once per instance: Spin resolves
//! an app's variables when it starts, and an instance serves a bounded
//! number of requests (128 with `spin up`'s defaults), so a provider's
//! changed value takes effect with the next instance.

use gatehouse_http::{ErrorCode, Problem};
use spin_sdk::variables;
use std::cell::RefCell;
use std::rc::Rc;

thread_local! {
    /// The settings this instance read, one per prefix.
    static LOADED: RefCell<Vec<Rc<Settings>>> = const { RefCell::new(Vec::new()) };
}

/// How long a verdict from Gatehouse (API key, session) is reused when the
/// app does not say: a revoked key or session is refused at most this long
/// after its revocation.
pub const DEFAULT_CACHE_SECONDS: i64 = 30;
/// The longest cache bound accepted, so a typo cannot keep a
/// revoked credential working for days.
pub const MAX_CACHE_SECONDS: i64 = 300;

/// What the protected app configured.
pub struct Settings {
    /// The prefix of the variables these came from (`guard`, `gatehouse`).
    pub prefix: &'static str,
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
    /// Whether the guard hands the client's `Authorization` header on to
    /// the app (`<prefix>_forward_authorization = "true"`). By default it
    /// does not: the app gets the verified principal, never a bearer
    /// credential it could replay or log.
    pub forward_authorization: bool,
}

/// A variable's value; `None` when it is not declared for the component
/// or is empty (an optional setting left out); a variable that could not
/// be read is a 500, and nothing is kept of the settings then.
async fn optional(name: &str) -> Result<Option<String>, Problem> {
    match variables::get(name).await {
        Ok(value) => Ok(Some(value.trim().to_string()).filter(|v| !v.is_empty())),
        Err(variables::Error::Undefined(_)) => Ok(None),
        // A provider that failed is not a setting left out: answering as
        // if the permission or service key were unset would loosen a check.
        Err(e) => Err(misconfigured(&format!(
            "the variable {name} could not be read: {e:?}"
        ))),
    }
}

/// A misconfigured component answers 500 and says why in the log only.
fn misconfigured(why: &str) -> Problem {
    eprintln!("gatehouse: {why}");
    Problem::new(ErrorCode::Internal).detail("the request could not be completed")
}

impl Settings {
    /// The settings of this request's app, from `gatehouse_url` and the
    /// variables named `<prefix>_audience`, `_issuer`, `_permission`,
    /// `_meter`, `_cache_seconds`, `_service_key` and
    /// `_forward_authorization`.
    pub async fn load(prefix: &'static str) -> Result<Rc<Settings>, Problem> {
        let loaded = LOADED.with(|l| {
            l.borrow()
                .iter()
                .find(|s| s.prefix == prefix)
                .map(Rc::clone)
        });
        if let Some(settings) = loaded {
            return Ok(settings);
        }
        let settings = Rc::new(Settings::read(prefix).await?);
        LOADED.with(|l| l.borrow_mut().push(Rc::clone(&settings)));
        Ok(settings)
    }

    async fn read(prefix: &'static str) -> Result<Settings, Problem> {
        let var = |name: &str| format!("{prefix}_{name}");
        let gatehouse_url = optional("gatehouse_url")
            .await?
            .ok_or_else(|| misconfigured("the app declares no gatehouse_url variable"))?
            .trim_end_matches('/')
            .to_string();
        let issuer = optional(&var("issuer"))
            .await?
            .map(|v| v.trim_end_matches('/').to_string())
            .unwrap_or_else(|| gatehouse_url.clone());
        let cache_seconds = match optional(&var("cache_seconds")).await? {
            None => DEFAULT_CACHE_SECONDS,
            Some(text) => parse_cache_seconds(&text).ok_or_else(|| {
                misconfigured(&format!(
                    "{} is not a number of seconds from 0 to 300",
                    var("cache_seconds")
                ))
            })?,
        };
        let forward_authorization = match optional(&var("forward_authorization")).await? {
            None => false,
            Some(text) => parse_switch(&text).ok_or_else(|| {
                misconfigured(&format!(
                    "{} is neither \"true\" nor \"false\"",
                    var("forward_authorization")
                ))
            })?,
        };
        Ok(Settings {
            prefix,
            gatehouse_url,
            issuer,
            audience: optional(&var("audience")).await?,
            permission: optional(&var("permission")).await?,
            meter: optional(&var("meter")).await?,
            cache_seconds,
            service_key: optional(&var("service_key")).await?,
            forward_authorization,
        })
    }

    /// `path` on Gatehouse.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gatehouse_url)
    }
}

/// `<prefix>_cache_seconds` as a number within bounds.
pub fn parse_cache_seconds(text: &str) -> Option<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|s| (0..=MAX_CACHE_SECONDS).contains(s))
}

/// A yes/no setting: `true` or `false`, in any case.
pub fn parse_switch(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
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

    #[test]
    fn a_switch_is_true_or_false_and_nothing_else() {
        assert_eq!(parse_switch("true"), Some(true));
        assert_eq!(parse_switch("FALSE"), Some(false));
        assert_eq!(parse_switch("yes"), None);
        assert_eq!(parse_switch("1"), None);
    }
}
