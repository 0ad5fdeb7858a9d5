//! Text messages through an HTTP provider speaking Twilio's Messages API:
//! `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, a form of
//! `To`, `From` and `Body`, HTTP Basic authentication with the account sid
//! and the auth token. The Spin variables `sms_api_base_url`,
//! `sms_account_sid`, `sms_auth_token` (secret) and `sms_from` configure
//! it; without a sid, token or sender the channel is off.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Why the SMS channel is off, as the kinds listing and deliveries say.
pub const OFF: &str = "no SMS provider is configured (sms_account_sid, sms_auth_token, sms_from)";

/// The provider, from the variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    base_url: String,
    account_sid: String,
    auth_token: String,
    from: String,
}

impl Provider {
    /// The provider the variables name; `None` when one is empty (the
    /// channel is off).
    pub fn from_variables(base_url: &str, sid: &str, token: &str, from: &str) -> Option<Provider> {
        let [base_url, sid, token, from] = [base_url, sid, token, from].map(str::trim);
        if [base_url, sid, token, from].iter().any(|v| v.is_empty()) {
            return None;
        }
        Some(Provider {
            base_url: base_url.trim_end_matches('/').to_string(),
            account_sid: sid.to_string(),
            auth_token: token.to_string(),
            from: from.to_string(),
        })
    }

    /// The request that sends `body` to `to`.
    pub fn request(&self, to: &str, body: &str) -> SmsRequest {
        let sid: String = form_urlencoded::byte_serialize(self.account_sid.as_bytes()).collect();
        let credentials = STANDARD.encode(format!("{}:{}", self.account_sid, self.auth_token));
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("To", to)
            .append_pair("From", &self.from)
            .append_pair("Body", body)
            .finish();
        SmsRequest {
            url: format!("{}/2010-04-01/Accounts/{sid}/Messages.json", self.base_url),
            authorization: format!("Basic {credentials}"),
            body: form,
        }
    }
}

/// One message, as the provider takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsRequest {
    /// Where it is POSTed.
    pub url: String,
    /// The `Authorization` header.
    pub authorization: String,
    /// The form, `application/x-www-form-urlencoded`.
    pub body: String,
}

/// How the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Accepted; the message's sid, when the answer held one.
    Sent(Option<String>),
    /// Refused for good (a bad number, a bad sender): never sent.
    Refused(String),
    /// Not now (rate limited, the provider failing, no answer).
    Retry(String),
}

/// What a provider's `status` and JSON body mean.
pub fn answer(status: u16, body: &[u8]) -> Answer {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match status {
        200..=299 => Answer::Sent(json["sid"].as_str().map(str::to_string)),
        429 | 500..=599 => Answer::Retry(format!("the SMS provider answered {status}")),
        _ => {
            // Twilio's errors carry a numeric code and a message; neither
            // holds a credential.
            let code = json["code"]
                .as_i64()
                .map(|c| format!(" (code {c})"))
                .unwrap_or_default();
            Answer::Refused(format!(
                "the SMS provider refused the message: {status}{code}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_a_form_post_with_basic_auth_of_the_account() {
        let provider =
            Provider::from_variables("http://127.0.0.1:9/", "AC123", "tok", "+15550001111")
                .expect("configured");
        let req = provider.request("+15552223333", "Hello & welcome");
        assert_eq!(
            req.url,
            "http://127.0.0.1:9/2010-04-01/Accounts/AC123/Messages.json"
        );
        assert_eq!(
            req.authorization,
            format!("Basic {}", STANDARD.encode("AC123:tok"))
        );
        assert_eq!(
            req.body,
            "To=%2B15552223333&From=%2B15550001111&Body=Hello+%26+welcome"
        );
    }

    #[test]
    fn any_empty_variable_turns_the_channel_off() {
        assert!(Provider::from_variables("https://api.twilio.com", "", "t", "+1555").is_none());
        assert!(Provider::from_variables("https://api.twilio.com", "AC1", " ", "+1555").is_none());
        assert!(Provider::from_variables("https://api.twilio.com", "AC1", "t", "").is_none());
    }

    #[test]
    fn answers_are_sent_retried_or_refused() {
        assert_eq!(
            answer(201, br#"{"sid": "SM1", "status": "queued"}"#),
            Answer::Sent(Some("SM1".into()))
        );
        assert!(matches!(answer(503, b""), Answer::Retry(_)));
        assert!(matches!(answer(429, b"{}"), Answer::Retry(_)));
        assert_eq!(
            answer(400, br#"{"code": 21211, "message": "Invalid 'To'"}"#),
            Answer::Refused("the SMS provider refused the message: 400 (code 21211)".into())
        );
    }
}
