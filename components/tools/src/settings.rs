//! An org's tool settings: where its runs are sent (an OpenAI
//! chat-completions API), which model, the org secret holding the API
//! key, and each run's limits. The key's value is never stored here nor
//! answered: the settings name the secret, read when a run starts.

use gatehouse_auth::oidc::OutboundPolicy;
use gatehouse_http::FieldError;
use gatehouse_metering::valid_meter_key;
use gatehouse_secrets::scope::{Scope, parse_reference};
use serde::{Deserialize, Serialize};

use crate::url::{PROVIDERS, refused};

/// The most completions a run may make, whatever the settings say.
pub const MAX_STEPS_LIMIT: i64 = 32;
/// A run's completions unless the settings say.
pub const MAX_STEPS_DEFAULT: i64 = 8;
/// The longest wait for one completion, in milliseconds.
pub const TIMEOUT_MAX_MS: i64 = 120_000;
/// The wait for one completion unless the settings say.
pub const TIMEOUT_DEFAULT_MS: i64 = 60_000;
/// The longest base URL, in bytes.
pub const BASE_URL_MAX: usize = 2048;
/// The longest model name, in bytes.
pub const MODEL_MAX: usize = 128;
/// Tokens held for a completion unless the settings say.
pub const RESERVE_TOKENS_DEFAULT: i64 = 4096;
/// The most tokens a completion may hold.
pub const RESERVE_TOKENS_MAX: i64 = 1_000_000;

/// The settings, as stored and answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// The API's base (`https://api.openai.com/v1`).
    pub base_url: String,
    /// The model every run asks.
    pub model: String,
    /// The org secret holding the API key (`org/NAME`).
    pub api_key_secret: String,
    /// The most completions a run makes.
    pub max_steps: i64,
    /// The longest wait for one completion.
    pub timeout_ms: i64,
    /// The org's `sum` meter counting completions' tokens; none: tokens
    /// are not metered.
    pub token_meter: Option<String>,
    /// The org's `count` meter counting tool calls; none: calls are not
    /// metered.
    pub tool_meter: Option<String>,
    /// Tokens held for each completion before it is sent.
    pub reserve_tokens: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Who set them.
    pub updated_by: String,
}

impl Settings {
    /// Where completions are posted.
    pub fn completions_url(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

fn max_steps_default() -> i64 {
    MAX_STEPS_DEFAULT
}

fn timeout_default() -> i64 {
    TIMEOUT_DEFAULT_MS
}

fn reserve_tokens_default() -> i64 {
    RESERVE_TOKENS_DEFAULT
}

/// `PUT /v1/tool-settings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSettings {
    /// The API's base.
    pub base_url: String,
    /// The model.
    pub model: String,
    /// The org secret holding the API key.
    pub api_key_secret: String,
    /// 1 to 32.
    #[serde(default = "max_steps_default")]
    pub max_steps: i64,
    /// 1 to 120,000.
    #[serde(default = "timeout_default")]
    pub timeout_ms: i64,
    /// A `sum` meter of the org.
    #[serde(default)]
    pub token_meter: Option<String>,
    /// A `count` meter of the org.
    #[serde(default)]
    pub tool_meter: Option<String>,
    /// 1 to 1,000,000.
    #[serde(default = "reserve_tokens_default")]
    pub reserve_tokens: i64,
}

impl PutSettings {
    /// Every failing field; `policy` is the deployment's for providers.
    pub fn check(&self, policy: &OutboundPolicy) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.base_url.len() > BASE_URL_MAX {
            errors.push(FieldError::new(
                "/base_url",
                "too_long",
                "a base URL is at most 2048 bytes",
            ));
        } else if self.base_url.contains(['?', '#']) {
            errors.push(FieldError::new(
                "/base_url",
                "invalid_url",
                "a base URL has no query or fragment: /chat/completions is appended to it",
            ));
        } else if let Err(refusal) = policy.check(&self.base_url) {
            errors.push(FieldError::new(
                "/base_url",
                "url_not_allowed",
                refused(&refusal, PROVIDERS),
            ));
        }
        let model_ok = !self.model.is_empty()
            && self.model.len() <= MODEL_MAX
            && self.model.bytes().all(|b| b.is_ascii_graphic());
        if !model_ok {
            errors.push(FieldError::new(
                "/model",
                "invalid",
                "a model is 1 to 128 visible ASCII characters",
            ));
        }
        if !matches!(parse_reference(&self.api_key_secret), Some((Scope::Org, _))) {
            errors.push(FieldError::new(
                "/api_key_secret",
                "invalid_reference",
                "the API key is an org secret, named org/NAME",
            ));
        }
        if !(1..=MAX_STEPS_LIMIT).contains(&self.max_steps) {
            errors.push(FieldError::new(
                "/max_steps",
                "out_of_range",
                "max_steps is 1 to 32",
            ));
        }
        if !(1..=TIMEOUT_MAX_MS).contains(&self.timeout_ms) {
            errors.push(FieldError::new(
                "/timeout_ms",
                "out_of_range",
                "timeout_ms is 1 to 120000",
            ));
        }
        for (pointer, meter) in [
            ("/token_meter", &self.token_meter),
            ("/tool_meter", &self.tool_meter),
        ] {
            if meter.as_deref().is_some_and(|m| !valid_meter_key(m)) {
                errors.push(FieldError::new(
                    pointer,
                    "invalid",
                    "a meter key is 1 to 64 lowercase letters, digits, _ or -",
                ));
            }
        }
        if !(1..=RESERVE_TOKENS_MAX).contains(&self.reserve_tokens) {
            errors.push(FieldError::new(
                "/reserve_tokens",
                "out_of_range",
                "reserve_tokens is 1 to 1000000",
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: serde_json::Value) -> anyhow::Result<PutSettings> {
        Ok(serde_json::from_value(value)?)
    }

    fn pointers(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.pointer.as_str()).collect()
    }

    #[test]
    fn good_settings_take_defaults_and_pass() -> anyhow::Result<()> {
        let open = OutboundPolicy::new("https://*:443", "false");
        let put = body(json!({
            "base_url": "https://api.openai.com/v1",
            "model": "gpt-4o-mini",
            "api_key_secret": "org/OPENAI_API_KEY"
        }))?;
        assert_eq!(
            (put.max_steps, put.timeout_ms, put.reserve_tokens),
            (8, 60_000, 4096)
        );
        assert_eq!((&put.token_meter, &put.tool_meter), (&None, &None));
        assert!(put.check(&open).is_empty());
        Ok(())
    }

    #[test]
    fn every_bad_field_is_named() -> anyhow::Result<()> {
        let closed = OutboundPolicy::new("https://*:443", "false");
        let put = body(json!({
            "base_url": "http://127.0.0.1:9/v1",
            "model": "",
            "api_key_secret": "user/u1/KEY",
            "max_steps": 33,
            "timeout_ms": 0,
            "token_meter": "Tokens!",
            "tool_meter": "",
            "reserve_tokens": 0
        }))?;
        let errors = put.check(&closed);
        assert_eq!(
            pointers(&errors),
            vec![
                "/base_url",
                "/model",
                "/api_key_secret",
                "/max_steps",
                "/timeout_ms",
                "/token_meter",
                "/tool_meter",
                "/reserve_tokens"
            ]
        );
        assert_eq!(errors[0].code, "url_not_allowed");
        let metadata = body(json!({
            "base_url": "http://169.254.169.254/v1", "model": "m", "api_key_secret": "org/K"
        }))?;
        let open = OutboundPolicy::new("http://*:*", "true");
        assert_eq!(pointers(&metadata.check(&open)), vec!["/base_url"]);
        Ok(())
    }
}
