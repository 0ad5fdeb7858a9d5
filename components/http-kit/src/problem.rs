//! RFC 9457 problem details. Each error has a stable machine `code` that
//! clients branch on; `detail` is for people and never carries internal
//! error text.

use serde::Serialize;

/// The stable error codes of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// No such resource (or not visible to the caller).
    NotFound,
    /// The path exists; the method does not.
    MethodNotAllowed,
    /// The body is not well-formed JSON.
    InvalidJson,
    /// The body's media type is not JSON.
    UnsupportedMediaType,
    /// The body is larger than the route accepts.
    PayloadTooLarge,
    /// The body is JSON but its fields are wrong.
    ValidationFailed,
    /// A query parameter is wrong.
    InvalidQuery,
    /// A request header is malformed (not visible ASCII, or not the shape the header takes).
    InvalidHeader,
    /// No valid credentials.
    Unauthenticated,
    /// Valid credentials, insufficient rights.
    Forbidden,
    /// A webhook delivery whose signature (or credentials) did not verify
    /// for its source; the reason is the problem's first field error.
    WebhookVerificationFailed,
    /// Valid credentials, but the route acts for a signed-in person and
    /// needs a session token (not a JWT or an API key).
    SessionRequired,
    /// The request conflicts with current state.
    Conflict,
    /// The `Idempotency-Key` header is malformed.
    IdempotencyKeyInvalid,
    /// The key was used before with a different request.
    IdempotencyKeyReused,
    /// The first request with this key is still running.
    IdempotencyInProgress,
    /// A precondition (`If-Match`) did not hold.
    PreconditionFailed,
    /// Too many requests.
    RateLimited,
    /// The request (its body, or the component's work) took longer than
    /// the server allows.
    RequestTimeout,
    /// An unexpected failure; details are in the server's log only.
    Internal,
    /// A dependency is unavailable; retry later.
    Unavailable,
    /// Every seat the organization's plan gives is taken.
    SeatLimitReached,
    /// A provider Gatehouse called on the caller's behalf (Stripe) refused
    /// the call or failed; the detail says which.
    UpstreamFailed,
    /// A quota of the organization refused the use; the problem names it.
    QuotaExceeded,
}

impl ErrorCode {
    /// Every code, so documents and tests can enumerate them.
    pub const ALL: [ErrorCode; 24] = {
        use ErrorCode::*;
        [
            NotFound,
            MethodNotAllowed,
            InvalidJson,
            UnsupportedMediaType,
            PayloadTooLarge,
            ValidationFailed,
            InvalidQuery,
            InvalidHeader,
            Unauthenticated,
            Forbidden,
            WebhookVerificationFailed,
            SessionRequired,
            Conflict,
            IdempotencyKeyInvalid,
            IdempotencyKeyReused,
            IdempotencyInProgress,
            PreconditionFailed,
            RateLimited,
            RequestTimeout,
            Internal,
            Unavailable,
            SeatLimitReached,
            UpstreamFailed,
            QuotaExceeded,
        ]
    };

    /// The code as it appears in problem documents.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            InvalidJson => "invalid_json",
            UnsupportedMediaType => "unsupported_media_type",
            PayloadTooLarge => "payload_too_large",
            ValidationFailed => "validation_failed",
            InvalidQuery => "invalid_query",
            InvalidHeader => "invalid_header",
            Unauthenticated => "unauthenticated",
            Forbidden => "forbidden",
            WebhookVerificationFailed => "webhook_verification_failed",
            SessionRequired => "session_required",
            Conflict => "conflict",
            IdempotencyKeyInvalid => "idempotency_key_invalid",
            IdempotencyKeyReused => "idempotency_key_reused",
            IdempotencyInProgress => "idempotency_in_progress",
            PreconditionFailed => "precondition_failed",
            RateLimited => "rate_limited",
            RequestTimeout => "request_timeout",
            Internal => "internal",
            Unavailable => "unavailable",
            SeatLimitReached => "seat_limit_reached",
            QuotaExceeded => "quota_exceeded",
            UpstreamFailed => "upstream_failed",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            NotFound => 404,
            MethodNotAllowed => 405,
            InvalidJson | InvalidQuery | InvalidHeader | IdempotencyKeyInvalid => 400,
            UnsupportedMediaType => 415,
            PayloadTooLarge => 413,
            ValidationFailed | IdempotencyKeyReused => 422,
            Unauthenticated | WebhookVerificationFailed => 401,
            Forbidden | SessionRequired => 403,
            Conflict | IdempotencyInProgress => 409,
            PreconditionFailed => 412,
            RateLimited => 429,
            RequestTimeout => 408,
            Internal => 500,
            Unavailable => 503,
            SeatLimitReached => 402,
            QuotaExceeded => 429,
            UpstreamFailed => 502,
        }
    }

    /// A short, human title.
    pub fn title(self) -> &'static str {
        use ErrorCode::*;
        match self {
            NotFound => "Not Found",
            MethodNotAllowed => "Method Not Allowed",
            InvalidJson => "Invalid JSON",
            UnsupportedMediaType => "Unsupported Media Type",
            PayloadTooLarge => "Payload Too Large",
            ValidationFailed => "Validation Failed",
            InvalidQuery => "Invalid Query",
            InvalidHeader => "Invalid Header",
            Unauthenticated => "Unauthenticated",
            Forbidden => "Forbidden",
            WebhookVerificationFailed => "Webhook Verification Failed",
            SessionRequired => "Session Required",
            Conflict => "Conflict",
            IdempotencyKeyInvalid => "Invalid Idempotency Key",
            IdempotencyKeyReused => "Idempotency Key Reused",
            IdempotencyInProgress => "Request In Progress",
            PreconditionFailed => "Precondition Failed",
            RateLimited => "Too Many Requests",
            RequestTimeout => "Request Timeout",
            Internal => "Internal Server Error",
            Unavailable => "Service Unavailable",
            SeatLimitReached => "Seat Limit Reached",
            QuotaExceeded => "Quota Exceeded",
            UpstreamFailed => "Upstream Failed",
        }
    }
}

/// One wrong field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON pointer to the field, e.g. `/email` or `/items/0/name`.
    pub pointer: String,
    /// Stable code, e.g. `required`, `invalid_type`, `too_long`.
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
}

impl FieldError {
    /// A field error at `pointer`.
    pub fn new(
        pointer: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> FieldError {
        FieldError {
            pointer: pointer.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// A problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `urn:gatehouse:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human title.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Stable machine code.
    pub code: &'static str,
    /// What happened, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Field-level errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extra headers to send (e.g. `Allow`); not part of the body.
    #[serde(skip)]
    pub headers: Vec<(&'static str, String)>,
}

impl Problem {
    /// A problem with the code's default status and title.
    pub fn new(code: ErrorCode) -> Problem {
        Problem {
            kind: format!("urn:gatehouse:problem:{}", code.as_str()),
            title: code.title().to_string(),
            status: code.status(),
            code: code.as_str(),
            detail: None,
            instance: None,
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Adds a human explanation.
    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = Some(detail.into());
        self
    }

    /// Adds field errors.
    pub fn errors(mut self, errors: Vec<FieldError>) -> Problem {
        self.errors = errors;
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Problem {
        self.headers.push((name, value.into()));
        self
    }

    /// Names the request the problem belongs to.
    pub fn instance(mut self, request_id: impl Into<String>) -> Problem {
        self.instance = Some(request_id.into());
        self
    }

    /// 404; the same answer whether the resource does not exist or the
    /// caller may not see it, so existence never leaks.
    pub fn not_found() -> Problem {
        Problem::new(ErrorCode::NotFound).detail("no such resource")
    }

    /// 405 with the methods the path allows.
    pub fn method_not_allowed(allowed: &[&str]) -> Problem {
        Problem::new(ErrorCode::MethodNotAllowed)
            .detail("this method is not supported on this path")
            .header("allow", allowed.join(", "))
    }

    /// 500 with a fixed text: internal error text never reaches a client.
    pub fn internal() -> Problem {
        Problem::new(ErrorCode::Internal).detail("the request could not be completed")
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| br#"{"code":"internal"}"#.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_serializes_rfc9457_members_and_omits_empty_ones() -> anyhow::Result<()> {
        let json: serde_json::Value =
            serde_json::from_slice(&Problem::not_found().instance("r1").to_json())?;
        assert_eq!(json["type"], "urn:gatehouse:problem:not_found");
        assert_eq!(json["status"], 404);
        assert_eq!(json["code"], "not_found");
        assert_eq!(json["instance"], "r1");
        assert!(json.get("errors").is_none());
        Ok(())
    }

    #[test]
    fn field_errors_are_listed() -> anyhow::Result<()> {
        let p = Problem::new(ErrorCode::ValidationFailed).errors(vec![FieldError::new(
            "/email",
            "required",
            "email is required",
        )]);
        let json: serde_json::Value = serde_json::from_slice(&p.to_json())?;
        assert_eq!(json["status"], 422);
        assert_eq!(json["errors"][0]["pointer"], "/email");
        Ok(())
    }

    #[test]
    fn codes_are_unique_snake_case_with_error_statuses() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!((400..=599).contains(&code.status()), "{s}");
            assert_eq!(
                Problem::new(code).kind,
                format!("urn:gatehouse:problem:{s}")
            );
        }
    }

    #[test]
    fn internal_problem_has_a_fixed_detail() {
        assert_eq!(
            Problem::internal().detail.as_deref(),
            Some("the request could not be completed")
        );
    }

    #[test]
    fn method_not_allowed_carries_allow_header() {
        let p = Problem::method_not_allowed(&["GET", "HEAD"]);
        assert_eq!(p.headers, vec![("allow", "GET, HEAD".to_string())]);
        assert_eq!(p.status, 405);
    }
}
