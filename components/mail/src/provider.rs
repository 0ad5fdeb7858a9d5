//! The email APIs mail is handed to, and their wire formats: the request
//! each expects and how to read its reply. Pure: the Spin call that sends
//! the request lives in the delivery module.
//!
//! - Postmark: `POST {base}/email` with `X-Postmark-Server-Token`, a JSON
//!   body of `From`, `To`, `Subject`, `TextBody`, `MessageStream`; success
//!   is `{"ErrorCode": 0, "MessageID": ...}`, a refusal is 4xx with
//!   `{"ErrorCode": n, "Message": ...}`.
//! - Resend: `POST {base}/emails` with `Authorization: Bearer <key>`, a JSON
//!   body of `from`, `to` (an array), `subject`, `text`; success is
//!   `{"id": ...}`, a refusal is `{"statusCode", "name", "message"}`. The
//!   mail's id goes in `Idempotency-Key`, so Resend itself drops a
//!   duplicate of a send whose answer was lost.
//!
//! ```
//! use gatehouse_mail::provider::{Outcome, Outgoing, Settings};
//!
//! let settings = Settings::from_variables("postmark", "", "server-token", "Gatehouse <no-reply@example.com>")
//!     .unwrap()
//!     .expect("a provider is configured");
//! let mail = Outgoing { id: "mail_1", to: "ada@example.com", subject: "Hi", text: "Hello" };
//! let request = settings.request(&mail);
//! assert_eq!(request.url, "https://api.postmarkapp.com/email");
//! let outcome = settings.read_reply(200, br#"{"ErrorCode":0,"MessageID":"b7bc2f4a"}"#);
//! assert_eq!(outcome, Outcome::Sent { message_id: Some("b7bc2f4a".into()) });
//! ```

use serde_json::{Value, json};

/// `From` when `email_from` is not set.
pub const DEFAULT_FROM: &str = "Gatehouse <no-reply@localhost>";
/// Postmark's transactional stream.
pub const POSTMARK_STREAM: &str = "outbound";
/// The longest `last_error` kept, in characters: a mail's error is also
/// its `mail.send` job's, so the limit is the jobs table's.
pub use gatehouse_jobs::MAX_ERROR_CHARS;
/// Sent as `User-Agent` (some APIs refuse requests without one).
const USER_AGENT: &str = concat!("gatehouse-mail/", env!("CARGO_PKG_VERSION"));

/// An email API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Postmark (postmarkapp.com).
    Postmark,
    /// Resend (resend.com).
    Resend,
}

impl Provider {
    /// Parses the `email_provider` variable: `none` or empty means no
    /// provider.
    pub fn parse(name: &str) -> Result<Option<Provider>, ConfigError> {
        match name.trim() {
            "" | "none" => Ok(None),
            "postmark" => Ok(Some(Provider::Postmark)),
            "resend" => Ok(Some(Provider::Resend)),
            other => Err(ConfigError(format!(
                "email_provider `{other}` is not one of none, postmark, resend"
            ))),
        }
    }

    /// The name used in `email_provider` and stored with a sent mail.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Postmark => "postmark",
            Provider::Resend => "resend",
        }
    }

    /// The API's public base URL, used when `email_api_base_url` is empty.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::Postmark => "https://api.postmarkapp.com",
            Provider::Resend => "https://api.resend.com",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Provider::Postmark => "/email",
            Provider::Resend => "/emails",
        }
    }
}

/// The `email_*` variables do not describe a usable provider. The text
/// names the variable and never holds the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Where and as whom mail is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    provider: Provider,
    base_url: String,
    token: String,
    from: String,
}

// The token stays out of logs, even debug ones.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Settings from the variables' values; `Ok(None)` when no provider is
    /// chosen. An empty base URL means the provider's own, an empty `from`
    /// means [`DEFAULT_FROM`]; a provider without a token is an error.
    pub fn from_variables(
        provider: &str,
        base_url: &str,
        token: &str,
        from: &str,
    ) -> Result<Option<Settings>, ConfigError> {
        let Some(provider) = Provider::parse(provider)? else {
            return Ok(None);
        };
        let base_url = match base_url.trim().trim_end_matches('/') {
            "" => provider.default_base_url().to_string(),
            url if url.starts_with("https://") || url.starts_with("http://") => url.to_string(),
            _ => {
                return Err(ConfigError(
                    "email_api_base_url must start with https:// or http://".into(),
                ));
            }
        };
        // The base URL's default is Postmark's (it must be a valid outbound
        // host in spin.toml), so choosing Resend alone would send there.
        if let Some(other) = [Provider::Postmark, Provider::Resend]
            .into_iter()
            .find(|p| *p != provider && base_url == p.default_base_url())
        {
            return Err(ConfigError(format!(
                "email_api_base_url is {}'s API but email_provider is {}: set email_api_base_url to {}",
                other.name(),
                provider.name(),
                provider.default_base_url()
            )));
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(ConfigError(format!(
                "email_api_token is empty but email_provider is {}",
                provider.name()
            )));
        }
        let from = match from.trim() {
            "" => DEFAULT_FROM,
            from => from,
        };
        if from.chars().any(char::is_control) {
            return Err(ConfigError("email_from contains control characters".into()));
        }
        Ok(Some(Settings {
            provider,
            base_url,
            token: token.to_string(),
            from: from.to_string(),
        }))
    }

    /// The provider.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The request that hands `mail` to the provider.
    pub fn request(&self, mail: &Outgoing<'_>) -> ProviderRequest {
        let url = format!("{}{}", self.base_url, self.provider.path());
        let mut headers = vec![
            ("accept", "application/json".to_string()),
            ("content-type", "application/json".to_string()),
            ("user-agent", USER_AGENT.to_string()),
        ];
        let body = match self.provider {
            Provider::Postmark => {
                headers.push(("x-postmark-server-token", self.token.clone()));
                json!({
                    "From": self.from,
                    "To": mail.to,
                    "Subject": mail.subject,
                    "TextBody": mail.text,
                    "MessageStream": POSTMARK_STREAM,
                })
            }
            Provider::Resend => {
                headers.push(("authorization", format!("Bearer {}", self.token)));
                headers.push(("idempotency-key", mail.id.to_string()));
                json!({
                    "from": self.from,
                    "to": [mail.to],
                    "subject": mail.subject,
                    "text": mail.text,
                })
            }
        };
        let body = body.to_string().into_bytes();
        headers.push(("content-length", body.len().to_string()));
        ProviderRequest { url, headers, body }
    }

    /// What the provider's answer (`status`, `body`) means for the mail.
    pub fn read_reply(&self, status: u16, body: &[u8]) -> Outcome {
        let reply: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |key: &str| reply.get(key).and_then(Value::as_str).map(str::to_string);
        let outcome = match self.provider {
            Provider::Postmark => {
                let code = reply.get("ErrorCode").and_then(Value::as_i64).unwrap_or(0);
                if (200..300).contains(&status) && code == 0 {
                    return Outcome::Sent {
                        message_id: text("MessageID"),
                    };
                }
                let mut error = format!("postmark {status}");
                if code != 0 {
                    error.push_str(&format!(": error {code}"));
                }
                append(&mut error, text("Message"));
                // 406: the recipient bounced or complained before and
                // Postmark will not send to it. Every other refusal (bad
                // token, unconfirmed sender, rate limit, outage) is about the
                // account or the API and may pass later.
                if code == 406 {
                    Outcome::Undeliverable { error }
                } else {
                    Outcome::Retry { error }
                }
            }
            Provider::Resend => {
                if (200..300).contains(&status) {
                    return Outcome::Sent {
                        message_id: text("id"),
                    };
                }
                let mut error = format!("resend {status}");
                append(&mut error, text("name"));
                append(&mut error, text("message"));
                Outcome::Retry { error }
            }
        };
        outcome.cleaned(&self.token)
    }

    /// The outcome of a request that got no answer (refused, timed out,
    /// denied by the host).
    pub fn unreachable(&self, detail: &str) -> Outcome {
        Outcome::Retry {
            error: format!("{} unreachable: {detail}", self.provider.name()),
        }
        .cleaned(&self.token)
    }
}

fn append(error: &mut String, part: Option<String>) {
    if let Some(part) = part.filter(|p| !p.trim().is_empty()) {
        error.push_str(": ");
        error.push_str(&part);
    }
}

/// A mail as handed to a provider.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The outbox id (Resend's idempotency key).
    pub id: &'a str,
    /// The recipient's address.
    pub to: &'a str,
    /// The subject line.
    pub subject: &'a str,
    /// The plain-text body.
    pub text: &'a str,
}

/// An HTTP request to a provider: always a `POST` of a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    /// The absolute URL.
    pub url: String,
    /// Header names (lower case) and values; they include the credential.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted the mail, with its id for the message when
    /// it gave one.
    Sent {
        /// The provider's message id.
        message_id: Option<String>,
    },
    /// Not sent; worth another attempt later. Such failures are about the
    /// API or the account rather than this mail, so the mails after it
    /// wait for a later attempt too.
    Retry {
        /// A short description for `last_error`.
        error: String,
    },
    /// The provider will never deliver this mail.
    Undeliverable {
        /// A short description for `last_error`.
        error: String,
    },
}

impl Outcome {
    /// Keeps `last_error` free of the credential (a provider might echo
    /// what it was sent), then short and on one line as a job's error is.
    fn cleaned(self, secret: &str) -> Outcome {
        let clean = |error: String| {
            if secret.is_empty() {
                gatehouse_jobs::clean_error(&error)
            } else {
                gatehouse_jobs::clean_error(&error.replace(secret, "[redacted]"))
            }
        };
        match self {
            Outcome::Retry { error } => Outcome::Retry {
                error: clean(error),
            },
            Outcome::Undeliverable { error } => Outcome::Undeliverable {
                error: clean(error),
            },
            sent => sent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: Outgoing<'static> = Outgoing {
        id: "mail_0123",
        to: "ada@example.com",
        subject: "Confirm your email address",
        text: "Token: gvt_abc\n",
    };

    fn settings(provider: &str, base: &str) -> Settings {
        Settings::from_variables(
            provider,
            base,
            "tok-123",
            "Gatehouse <no-reply@example.com>",
        )
        .unwrap()
        .unwrap()
    }

    fn header<'a>(req: &'a ProviderRequest, name: &str) -> Option<&'a str> {
        req.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn none_or_empty_means_no_provider_and_unknown_names_are_errors() {
        assert_eq!(Settings::from_variables("none", "", "", ""), Ok(None));
        assert_eq!(Settings::from_variables(" ", "", "", ""), Ok(None));
        let err = Settings::from_variables("sendgrid", "", "t", "").unwrap_err();
        assert!(err.0.contains("`sendgrid`"), "{err}");
    }

    #[test]
    fn a_provider_needs_a_token_and_an_http_base_url() {
        let err = Settings::from_variables("postmark", "", " ", "").unwrap_err();
        assert!(err.0.contains("email_api_token"), "{err}");
        let err = Settings::from_variables("resend", "api.resend.com", "t", "").unwrap_err();
        assert!(err.0.contains("email_api_base_url"), "{err}");
        let err = Settings::from_variables("resend", "", "t", "A\r\nBcc: x").unwrap_err();
        assert!(err.0.contains("email_from"), "{err}");
    }

    #[test]
    fn one_providers_base_url_with_the_other_provider_is_an_error() {
        let err =
            Settings::from_variables("resend", "https://api.postmarkapp.com", "t", "").unwrap_err();
        assert!(err.0.contains("https://api.resend.com"), "{err}");
        assert!(Settings::from_variables("postmark", "https://api.resend.com/", "t", "").is_err());
    }

    #[test]
    fn defaults_fill_an_empty_base_url_and_sender() {
        let s = Settings::from_variables("resend", "", "t", "")
            .unwrap()
            .unwrap();
        let req = s.request(&MAIL);
        assert_eq!(req.url, "https://api.resend.com/emails");
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["from"], DEFAULT_FROM);
        let s = settings("postmark", "http://127.0.0.1:8025/");
        assert_eq!(s.request(&MAIL).url, "http://127.0.0.1:8025/email");
    }

    #[test]
    fn postmark_request_has_its_token_header_and_pascal_case_body() {
        let req = settings("postmark", "").request(&MAIL);
        assert_eq!(req.url, "https://api.postmarkapp.com/email");
        assert_eq!(header(&req, "x-postmark-server-token"), Some("tok-123"));
        assert_eq!(header(&req, "accept"), Some("application/json"));
        assert_eq!(header(&req, "content-type"), Some("application/json"));
        assert_eq!(header(&req, "authorization"), None);
        assert_eq!(
            header(&req, "content-length"),
            Some(req.body.len().to_string().as_str())
        );
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            json!({
                "From": "Gatehouse <no-reply@example.com>",
                "To": "ada@example.com",
                "Subject": "Confirm your email address",
                "TextBody": "Token: gvt_abc\n",
                "MessageStream": "outbound",
            })
        );
    }

    #[test]
    fn resend_request_has_a_bearer_key_an_idempotency_key_and_a_recipient_list() {
        let req = settings("resend", "").request(&MAIL);
        assert_eq!(req.url, "https://api.resend.com/emails");
        assert_eq!(header(&req, "authorization"), Some("Bearer tok-123"));
        assert_eq!(header(&req, "idempotency-key"), Some("mail_0123"));
        assert!(header(&req, "user-agent").is_some());
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            json!({
                "from": "Gatehouse <no-reply@example.com>",
                "to": ["ada@example.com"],
                "subject": "Confirm your email address",
                "text": "Token: gvt_abc\n",
            })
        );
    }

    #[test]
    fn postmark_replies_are_read_by_error_code() {
        let s = settings("postmark", "");
        assert_eq!(
            s.read_reply(
                200,
                br#"{"To":"ada@example.com","ErrorCode":0,"Message":"OK","MessageID":"0a129aee"}"#
            ),
            Outcome::Sent {
                message_id: Some("0a129aee".into())
            }
        );
        let inactive = s.read_reply(
            422,
            br#"{"ErrorCode":406,"Message":"You tried to send to recipient(s) that have been marked as inactive."}"#,
        );
        assert!(
            matches!(&inactive, Outcome::Undeliverable { error } if error.starts_with("postmark 422: error 406: You tried")),
            "{inactive:?}"
        );
        let unconfirmed = s.read_reply(
            422,
            br#"{"ErrorCode":400,"Message":"Sender signature not found"}"#,
        );
        assert!(matches!(unconfirmed, Outcome::Retry { .. }));
        assert_eq!(
            s.read_reply(503, b"<html>down</html>"),
            Outcome::Retry {
                error: "postmark 503".into()
            }
        );
        assert_eq!(
            s.read_reply(200, br#"{"ErrorCode":10,"Message":"Bad token"}"#),
            Outcome::Retry {
                error: "postmark 200: error 10: Bad token".into()
            }
        );
    }

    #[test]
    fn resend_replies_are_read_by_status() {
        let s = settings("resend", "");
        assert_eq!(
            s.read_reply(200, br#"{"id":"49a3999c-0ce1"}"#),
            Outcome::Sent {
                message_id: Some("49a3999c-0ce1".into())
            }
        );
        assert_eq!(
            s.read_reply(
                429,
                br#"{"statusCode":429,"name":"rate_limit_exceeded","message":"Too many requests"}"#
            ),
            Outcome::Retry {
                error: "resend 429: rate_limit_exceeded: Too many requests".into()
            }
        );
    }

    #[test]
    fn errors_are_short_single_line_and_never_hold_the_token() {
        let s = settings("postmark", "");
        let long = format!(
            r#"{{"ErrorCode":10,"Message":"token tok-123 is wrong\n{}"}}"#,
            "x".repeat(500)
        );
        let Outcome::Retry { error } = s.read_reply(401, long.as_bytes()) else {
            panic!("a bad token is worth a retry once fixed");
        };
        assert!(!error.contains("tok-123"), "{error}");
        assert!(error.contains("[redacted]"));
        assert!(!error.contains('\n'));
        assert_eq!(error.chars().count(), MAX_ERROR_CHARS + 1);
        let Outcome::Retry { error } = s.unreachable("ConnectionRefused") else {
            panic!("no answer is worth a retry");
        };
        assert_eq!(error, "postmark unreachable: ConnectionRefused");
    }

    #[test]
    fn debug_output_hides_the_token() {
        let shown = format!("{:?}", settings("resend", ""));
        assert!(!shown.contains("tok-123"), "{shown}");
    }
}
