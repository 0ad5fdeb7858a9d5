//! The bodies of the outgoing endpoint routes (`POST`/`PATCH
//! /v1/webhooks/endpoints…`, `…/secret/$rotate`, `…/$recover`), checked
//! before anything is stored. The URL is checked by the deployment's
//! [`UrlPolicy`], which the handler reads, so these bodies are checked
//! with it rather than by [`Validate`] alone.

use gatehouse_http::FieldError;
use gatehouse_http::json::Validate;
use gatehouse_webhook_delivery::url::UrlPolicy;
use serde::{Deserialize, Deserializer};
use webhooks_core::SigningSecret;

/// The most live endpoints an org holds.
pub const MAX_ENDPOINTS: i64 = 50;
/// The longest description, in characters.
const MAX_DESCRIPTION: usize = 500;
/// The most entries of `event_types`.
const MAX_EVENT_TYPES: usize = 100;
/// How far back a recovery may reach: messages older than this are not
/// sent again (the receiver has moved on, and the window bounds the work).
pub const RECOVER_WINDOW_SECONDS: i64 = 14 * 24 * 60 * 60;
/// The most messages one recovery queues; a larger backlog is recovered by
/// calling again with the same `since` (the recovered ones are no longer
/// failed). A recovery queues its jobs in one write transaction, which
/// holds the database's write lock: a thousand keeps that to a moment.
pub const MAX_RECOVERED: i64 = 1_000;

/// `POST /v1/webhooks/endpoints`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    pub url: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Types and patterns (`quota.*`); none takes every type.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Also sign with Ed25519 (`v1a`).
    #[serde(default)]
    pub v1a: Option<bool>,
}

/// `PATCH /v1/webhooks/endpoints/{id}`: each field present replaces the
/// stored one; `null` clears `description`, and `event_types: null` takes
/// every type again.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchEndpoint {
    /// `Some(None)` (null) is refused: an endpoint always has a URL.
    #[serde(default, deserialize_with = "present")]
    pub url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub v1a: Option<bool>,
}

/// A field that is present, even as null: `Some(None)`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `POST …/secret/$rotate`: a secret of the admin's choosing, or none for
/// a new random one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    #[serde(default)]
    pub secret: Option<String>,
    /// End a previous secret that still signs now, rather than refuse
    /// the rotation.
    #[serde(default)]
    pub expire_previous_now: Option<bool>,
}

/// A time as unix seconds or an RFC 3339 date-time.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Instant {
    Seconds(i64),
    Text(String),
}

impl Instant {
    /// The instant in unix seconds, if it is one.
    fn seconds(&self) -> Option<i64> {
        match self {
            Instant::Seconds(s) => Some(*s),
            Instant::Text(t) => t.parse::<jiff::Timestamp>().ok().map(|t| t.as_second()),
        }
    }
}

/// `POST /v1/webhooks/endpoints/{id}/$recover`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recover {
    pub since: Instant,
    #[serde(default)]
    pub until: Option<Instant>,
}

impl Recover {
    /// The window `[since, until)` in unix seconds at `now` (`until`
    /// defaults to, and is cut at, the moment after `now`); every problem
    /// with it otherwise.
    pub fn window(&self, now: i64) -> Result<(i64, i64), Vec<FieldError>> {
        let unreadable = |pointer: &str| {
            FieldError::new(
                pointer,
                "invalid_time",
                "a time is unix seconds or an RFC 3339 date-time (2027-01-15T08:00:00Z)",
            )
        };
        let since = self
            .since
            .seconds()
            .ok_or_else(|| vec![unreadable("/since")])?;
        let until = match &self.until {
            Some(until) => until.seconds().ok_or_else(|| vec![unreadable("/until")])?,
            None => now + 1,
        };
        let mut errors = Vec::new();
        if since < now - RECOVER_WINDOW_SECONDS {
            errors.push(FieldError::new(
                "/since",
                "since_too_old",
                format!(
                    "messages are recovered for {} days at most",
                    RECOVER_WINDOW_SECONDS / 86_400
                ),
            ));
        } else if since > now {
            errors.push(FieldError::new(
                "/since",
                "since_in_future",
                "since is a time in the past",
            ));
        }
        if until <= since {
            errors.push(FieldError::new(
                "/until",
                "until_before_since",
                "until is after since",
            ));
        }
        if errors.is_empty() {
            Ok((since, until.min(now + 1)))
        } else {
            Err(errors)
        }
    }
}

/// Every problem with `url` under `policy`.
fn check_url(url: &str, policy: &UrlPolicy, errors: &mut Vec<FieldError>) {
    if let Err(refusal) = policy.check(url) {
        errors.push(FieldError::new("/url", refusal.code(), refusal.to_string()));
    }
}

fn check_description(description: Option<&str>, errors: &mut Vec<FieldError>) {
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        errors.push(FieldError::new(
            "/description",
            "too_long",
            format!("description is at most {MAX_DESCRIPTION} characters"),
        ));
    }
}

fn check_event_types(types: Option<&[String]>, errors: &mut Vec<FieldError>) {
    let Some(types) = types else {
        return;
    };
    if types.is_empty() {
        errors.push(FieldError::new(
            "/event_types",
            "empty",
            "name at least one type, or leave event_types out (null) to take every type",
        ));
    }
    if types.len() > MAX_EVENT_TYPES {
        errors.push(FieldError::new(
            "/event_types",
            "too_many",
            format!("event_types holds at most {MAX_EVENT_TYPES} entries"),
        ));
        return;
    }
    for (i, name) in types.iter().enumerate() {
        if !gatehouse_webhook_delivery::catalog::known_pattern(name) {
            errors.push(FieldError::new(
                format!("/event_types/{i}"),
                "unknown_event_type",
                "not an event type of GET /v1/webhooks/event-types, nor a pattern (quota.*) of one",
            ));
        }
    }
}

/// `types` without repeats, in their first order.
pub fn distinct(types: Vec<String>) -> Vec<String> {
    let mut seen = Vec::with_capacity(types.len());
    for t in types {
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    seen
}

impl CreateEndpoint {
    /// Every problem with the body under `policy`.
    pub fn check(&self, policy: &UrlPolicy) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_url(&self.url, policy, &mut errors);
        check_description(self.description.as_deref(), &mut errors);
        check_event_types(self.event_types.as_deref(), &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl PatchEndpoint {
    /// Every problem with the body under `policy`.
    pub fn check(&self, policy: &UrlPolicy) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        match &self.url {
            Some(Some(url)) => check_url(url, policy, &mut errors),
            Some(None) => errors.push(FieldError::new(
                "/url",
                "invalid",
                "url cannot be null: an endpoint always has one",
            )),
            None => {}
        }
        if let Some(description) = &self.description {
            check_description(description.as_deref(), &mut errors);
        }
        if let Some(types) = &self.event_types {
            check_event_types(types.as_deref(), &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl RotateSecret {
    /// The chosen secret, checked: `whsec_` and base64 of 24 to 64 bytes
    /// (what the Standard Webhooks specification allows a sender to use).
    pub fn chosen(&self) -> Result<Option<SigningSecret>, Vec<FieldError>> {
        let Some(text) = &self.secret else {
            return Ok(None);
        };
        let refused = || {
            vec![FieldError::new(
                "/secret",
                "invalid_secret",
                "a secret is whsec_ and the base64 of 24 to 64 random bytes",
            )]
        };
        // The prefix is required: a bare base64 string may be anything.
        if !text.starts_with(SigningSecret::PREFIX) {
            return Err(refused());
        }
        SigningSecret::parse_for_signing(text)
            .map(Some)
            .map_err(|_| refused())
    }
}

// Each of these is checked by the handler, with the deployment's URL
// policy or the time of the request.
impl Validate for CreateEndpoint {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

impl Validate for PatchEndpoint {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

impl Validate for RotateSecret {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        self.chosen().map(|_| ())
    }
}

impl Validate for Recover {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}
