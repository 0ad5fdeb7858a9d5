//! Typed JSON request bodies.
//!
//! The order of checks is fixed so clients get the most useful error:
//! media type (415), size (413, from `Content-Length` before reading and
//! counted while reading), syntax (400 `invalid_json` with line and
//! column), then shape (422 `validation_failed` with a JSON pointer), then
//! the type's own [`Validate`] rules (422 with every failing field).

use bytes::Bytes;
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use crate::problem::{ErrorCode, FieldError, Problem};

/// The default body limit: generous for API payloads, small for memory.
pub const DEFAULT_LIMIT: usize = 64 * 1024;

/// Rules a request type checks beyond what its shape says.
pub trait Validate {
    /// Every failing field, or `Ok`.
    fn validate(&self) -> Result<(), Vec<FieldError>>;
}

/// Whether `content_type` is JSON (`application/json` or `application/*+json`).
pub fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The `charset` parameter of a media type, lower-cased and unquoted.
fn charset(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    })
}

/// Parses `bytes` as `T`, mapping every failure to a problem. JSON is
/// UTF-8 (RFC 8259): a body declared in any other charset is refused
/// rather than read as if it were UTF-8.
pub fn parse<T: DeserializeOwned>(content_type: Option<&str>, bytes: &[u8]) -> Result<T, Problem> {
    if !is_json(content_type) {
        return Err(not_json());
    }
    if let Some(charset) = content_type.and_then(charset)
        && charset != "utf-8"
        && charset != "utf8"
    {
        return Err(
            Problem::new(ErrorCode::UnsupportedMediaType).detail(format!(
                "send the body as UTF-8 JSON; charset {charset} is not supported"
            )),
        );
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(de);
    result.map_err(|e| {
        let pointer = pointer_of(e.path());
        let inner = e.into_inner();
        use serde_json::error::Category;
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => Problem::new(ErrorCode::InvalidJson)
                .detail(format!(
                    "malformed JSON at line {} column {}",
                    inner.line(),
                    inner.column()
                )),
            Category::Data => Problem::new(ErrorCode::ValidationFailed)
                .detail("the request body has invalid fields")
                .errors(vec![field_error(pointer, &inner.to_string())]),
        }
    })
}

/// Parses then validates.
pub fn parse_valid<T: DeserializeOwned + Validate>(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<T, Problem> {
    let value: T = parse(content_type, bytes)?;
    value.validate().map_err(invalid_fields)?;
    Ok(value)
}

fn invalid_fields(errors: Vec<FieldError>) -> Problem {
    Problem::new(ErrorCode::ValidationFailed)
        .detail("the request body has invalid fields")
        .errors(errors)
}

fn not_json() -> Problem {
    Problem::new(ErrorCode::UnsupportedMediaType).detail("send the body as application/json")
}

/// Turns a serde data error into a field error. serde reports a missing
/// field at its parent's path, so its name (from the message) is appended
/// to point at the field itself.
fn field_error(parent_pointer: String, serde_message: &str) -> FieldError {
    // The pointer says where; serde's " at line X column Y" would repeat it.
    let message = match serde_message.rfind(" at line ") {
        Some(i) => &serde_message[..i],
        None => serde_message,
    };
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let pointer = format!("{parent_pointer}/{}", escape_pointer_token(name));
        return FieldError::new(pointer, "required", message);
    }
    let code = if message.starts_with("unknown field") {
        "unknown_field"
    } else {
        "invalid"
    };
    FieldError::new(parent_pointer, code, message)
}

/// RFC 6901: `~` and `/` inside a key are escaped.
fn escape_pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{}", escape_pointer_token(key))),
            Segment::Enum { variant } => out.push_str(&format!("/{variant}")),
            Segment::Unknown => {}
        }
    }
    out
}

/// Reads a whole body, refusing more than `limit` bytes.
pub async fn read_body<B>(
    headers: &http::HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, Problem>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let too_large = || {
        Problem::new(ErrorCode::PayloadTooLarge)
            .detail(format!("the body may be at most {limit} bytes"))
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(_) => Err(Problem::new(ErrorCode::InvalidJson).detail("the body could not be read")),
    }
}

/// Reads and parses a request's JSON body into a validated `T`: what a
/// handler normally wants.
pub async fn read_json<T, B>(req: http::Request<B>, limit: usize) -> Result<T, Problem>
where
    T: DeserializeOwned + Validate,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let value: T = read_unvalidated(req, limit).await?;
    value.validate().map_err(invalid_fields)?;
    Ok(value)
}

/// Reads and parses a request's JSON body into `T` without [`Validate`]
/// rules, for types whose shape is the whole contract.
pub async fn read_unvalidated<T, B>(req: http::Request<B>, limit: usize) -> Result<T, Problem>
where
    T: DeserializeOwned,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, bytes) = read_raw(req, limit).await?;
    parse(content_type(&parts.headers), &bytes)
}

/// Reads a JSON request's body whole, after checking its media type, for
/// handlers that need the bytes themselves (an idempotency fingerprint)
/// before parsing them with [`parse_valid`].
pub async fn read_raw<B>(
    req: http::Request<B>,
    limit: usize,
) -> Result<(http::request::Parts, Bytes), Problem>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = req.into_parts();
    // The media type is checked before reading so a wrong one costs nothing.
    if !is_json(content_type(&parts.headers)) {
        return Err(not_json());
    }
    let bytes = read_body(&parts.headers, body, limit).await?;
    if let Some(trail) = crate::audit::Trail::of(&parts.extensions) {
        trail.set_fields(&bytes);
    }
    Ok((parts, bytes))
}

/// The `Content-Type` header, if readable.
pub fn content_type(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Signup {
        email: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    impl Validate for Signup {
        fn validate(&self) -> Result<(), Vec<FieldError>> {
            if self.email.contains('@') {
                Ok(())
            } else {
                Err(vec![FieldError::new(
                    "/email",
                    "invalid_format",
                    "email must contain @",
                )])
            }
        }
    }

    #[derive(Debug, Deserialize)]
    struct Team {
        #[allow(dead_code)]
        owner: Signup,
    }

    const JSON: Option<&str> = Some("application/json; charset=utf-8");

    #[test]
    fn accepts_json_media_types_only() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("application/merge-patch+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
        assert_eq!(
            parse::<Signup>(Some("text/plain"), b"{}")
                .unwrap_err()
                .status,
            415
        );
    }

    #[test]
    fn bodies_in_a_charset_other_than_utf8_are_unsupported() {
        let utf16 = b"\xff\xfe{\x00}\x00";
        for declared in [
            "application/json; charset=utf-16",
            "application/json;charset=\"UTF-16LE\"",
            "application/json; Charset=latin1",
        ] {
            let p = parse::<Signup>(Some(declared), utf16).unwrap_err();
            assert_eq!(
                (p.status, p.code),
                (415, "unsupported_media_type"),
                "{declared}"
            );
        }
        for fine in [
            "application/json; charset=UTF-8",
            "application/json; charset=\"utf8\"",
        ] {
            let p = parse::<Signup>(Some(fine), b"{}").unwrap_err();
            assert_eq!(p.status, 422, "{fine} is read");
        }
    }

    #[test]
    fn syntax_errors_are_invalid_json_with_position() {
        let p = parse::<Signup>(JSON, b"{\"email\": ").unwrap_err();
        assert_eq!((p.status, p.code), (400, "invalid_json"));
        assert!(p.detail.unwrap_or_default().contains("line 1"));
    }

    #[test]
    fn shape_errors_point_at_the_field() {
        let p = parse::<Signup>(JSON, br#"{"email": "a@b", "tags": ["x", 3]}"#).unwrap_err();
        assert_eq!((p.status, p.code), (422, "validation_failed"));
        assert_eq!(p.errors[0].pointer, "/tags/1");
        let p = parse::<Signup>(JSON, br#"{"email": "a@b", "admin": true}"#).unwrap_err();
        assert_eq!(p.errors[0].code, "unknown_field");
        assert_eq!(p.errors[0].pointer, "/admin");
    }

    #[test]
    fn missing_fields_point_at_the_field_not_its_parent() {
        let p = parse::<Signup>(JSON, br#"{"tags": []}"#).unwrap_err();
        assert_eq!(p.errors[0].code, "required");
        assert_eq!(p.errors[0].pointer, "/email");
        assert_eq!(p.errors[0].message, "missing field `email`");
        let p = parse::<Team>(JSON, br#"{"owner": {}}"#).unwrap_err();
        assert_eq!(p.errors[0].pointer, "/owner/email");
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let p =
            parse::<std::collections::HashMap<String, u8>>(JSON, br#"{"a/b~c": "x"}"#).unwrap_err();
        assert_eq!(p.errors[0].pointer, "/a~1b~0c");
    }

    #[test]
    fn validation_rules_run_after_parsing() {
        let p = parse_valid::<Signup>(JSON, br#"{"email": "nope"}"#).unwrap_err();
        assert_eq!(p.errors[0].code, "invalid_format");
        let ok = parse_valid::<Signup>(JSON, br#"{"email": "a@b", "tags": ["x"]}"#).map(|s| s.tags);
        assert_eq!(ok.ok(), Some(vec!["x".to_string()]));
    }

    fn request(
        body: &'static [u8],
        content_length: Option<&str>,
    ) -> http::Request<http_body_util::Full<Bytes>> {
        let mut builder = http::Request::post("/").header("content-type", "application/json");
        if let Some(n) = content_length {
            builder = builder.header("content-length", n);
        }
        builder
            .body(http_body_util::Full::new(Bytes::from_static(body)))
            .expect("valid request")
    }

    #[test]
    fn oversized_bodies_are_refused_by_header_and_by_count() {
        let declared =
            futures::executor::block_on(read_json::<Signup, _>(request(b"{}", Some("999999")), 16))
                .unwrap_err();
        assert_eq!(declared.status, 413);
        let counted = futures::executor::block_on(read_json::<Signup, _>(
            request(br#"{"email": "someone@example.com"}"#, None),
            16,
        ))
        .unwrap_err();
        assert_eq!(counted.status, 413);
    }

    #[test]
    fn wrong_media_type_is_refused_before_the_body_is_read() {
        let req = http::Request::post("/")
            .header("content-type", "text/plain")
            .header("content-length", "999999")
            .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
            .expect("valid request");
        let p = futures::executor::block_on(read_json::<Signup, _>(req, 16)).unwrap_err();
        assert_eq!((p.status, p.code), (415, "unsupported_media_type"));
    }

    #[test]
    fn read_json_applies_validation_rules_and_read_unvalidated_does_not() -> anyhow::Result<()> {
        let body = br#"{"email": "nope"}"#;
        let p = futures::executor::block_on(read_json::<Signup, _>(request(body, None), 64))
            .unwrap_err();
        assert_eq!(p.errors[0].pointer, "/email");
        let s = futures::executor::block_on(read_unvalidated::<Signup, _>(request(body, None), 64))
            .map_err(|p| anyhow::anyhow!("{p:?}"))?;
        assert_eq!(s.email, "nope");
        Ok(())
    }

    #[test]
    fn reads_a_valid_body() -> anyhow::Result<()> {
        let s = futures::executor::block_on(read_json::<Signup, _>(
            request(br#"{"email": "a@b"}"#, None),
            DEFAULT_LIMIT,
        ))
        .map_err(|p| anyhow::anyhow!("{p:?}"))?;
        assert_eq!(s.email, "a@b");
        Ok(())
    }
}
