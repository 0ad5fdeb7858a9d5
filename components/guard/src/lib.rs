//! The Gatehouse guard: an HTTP middleware (Spin 4.1 `dependencies.middleware`)
//! that puts Gatehouse in front of any Spin app's routes. Per request, in
//! this order:
//!
//! 1. every `x-gatehouse-*` header the client sent is removed;
//! 2. the `Authorization: Bearer` credential is verified: a Gatehouse JWT
//!    offline against the published keys ([`jwt`]), an API key or session
//!    token by asking Gatehouse, the answer cached for at most
//!    `guard_cache_seconds` ([`remote`]);
//! 3. `guard_permission`, when set, must be held (else 403);
//! 4. `guard_meter`, when set, has one unit consumed (else 429);
//! 5. the request goes on to the app with the verified principal in
//!    `x-gatehouse-subject`, `-org`, `-roles`, `-permissions`, `-credential`.
//!
//! Every refusal is an RFC 9457 problem document. See docs/guard.md.

// The request path builds for wasm32 only; the pure parts are unit-tested natively.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
// `Result<_, Problem>` is a request's error path, taken at most once.
#![allow(clippy::result_large_err)]

use bytes::Bytes;
use gatehouse_http::principal::Principal;
use gatehouse_http::{ErrorCode, Problem, Response};
use http_body_util::{BodyExt, Full};
use spin_sdk::http::{FromResponse, IntoRequest, Request};

mod cache;
mod config;
mod gatehouse;
mod jwt;
mod meter;
mod principal_headers;
mod remote;

use cache::Cache;
use config::Settings;

/// The next handler in the chain: the `wasi:http/handler@0.3.0` import.
mod next {
    spin_sdk::wit_bindgen::generate!({
        runtime_path: "::spin_sdk::wit_bindgen::rt",
        world: "spin:sdk/spin-sdk-middleware",
        path: "../../wit",
        with: { "wasi:http/types@0.3.0": spin_sdk::wasip3::http::types },
        generate_all,
    });
}

/// Headers a request built in a guest may not carry (the host owns them).
const HOP_BY_HOP: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

// The export exists in the component only: a native build (the unit
// tests) cannot link a symbol named after a WIT interface.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_service]
async fn handle(req: Request) -> anyhow::Result<impl spin_sdk::http::IntoResponse> {
    use gatehouse_http::{request_id, response};
    let id = request_id::from_headers(req.headers());
    Ok(guard(req, &id)
        .await
        .unwrap_or_else(|problem| response::problem(problem, &id)))
}

async fn guard(req: Request, request_id: &str) -> Result<Response, Problem> {
    // Authenticate.
    let settings = Settings::load().await?;
    let principal = authenticate(&req, &settings).await?;
    // Authorize.
    if let Some(permission) = settings.permission.as_deref()
        && !principal.has_permission(permission)
    {
        return Err(Problem::new(ErrorCode::Forbidden)
            .detail(format!("this route needs the {permission} permission")));
    }
    if let Some(meter) = settings.meter.as_deref() {
        meter::consume(meter, &principal, &settings).await?;
    }
    // Pass on.
    onward(req, &principal, request_id).await
}

/// The bearer credential of `Authorization`, if there is one.
fn bearer(req: &Request) -> Option<&str> {
    bearer_token(req.headers().get("authorization")?.to_str().ok()?)
}

/// The credential of an `Authorization` value of the Bearer scheme (any case).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unauthenticated(detail: &str, challenge: &'static str) -> Problem {
    Problem::new(ErrorCode::Unauthenticated)
        .detail(detail)
        .header("www-authenticate", challenge)
}

async fn authenticate(req: &Request, settings: &Settings) -> Result<Principal, Problem> {
    let Some(token) = bearer(req) else {
        return Err(unauthenticated(
            "this route needs a Gatehouse credential: Authorization: Bearer <token>",
            "Bearer",
        ));
    };
    let cache = Cache::open().await;
    let principal = if gatehouse_auth::jwt::looks_like_jwt(token) {
        jwt::verify(token, settings, &cache).await?
    } else {
        let org = req.headers().get("x-org").and_then(|v| v.to_str().ok());
        remote::verify(token, org, settings, &cache).await?
    };
    principal.ok_or_else(|| {
        unauthenticated(
            "the credential is not valid",
            "Bearer error=\"invalid_token\"",
        )
    })
}

/// Calls the app with the verified principal's headers; its answer, read whole.
async fn onward(
    req: Request,
    principal: &Principal,
    request_id: &str,
) -> Result<Response, Problem> {
    let failed = |what: &str| {
        eprintln!("guard: {what}");
        Problem::internal()
    };
    let (mut parts, body) = req.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(*name);
    }
    principal_headers::strip(&mut parts.headers);
    principal_headers::set(&mut parts.headers, principal);
    let body = body
        .collect()
        .await
        .map_err(|_| failed("the request body could not be read"))?
        .to_bytes();
    let onward = http::Request::from_parts(parts, Full::new(body))
        .into_request()
        .map_err(|e| failed(&format!("the request could not be passed on: {e:?}")))?;
    let answer = next::wasi::http::handler::handle(onward)
        .await
        .map_err(|e| failed(&format!("the app failed: {e:?}")))?;
    let answer = spin_sdk::http::Response::from_response(answer)
        .map_err(|e| failed(&format!("the app's answer could not be read: {e:?}")))?;
    let (mut parts, body) = answer.into_parts();
    let body: Bytes = body
        .collect()
        .await
        .map_err(|_| failed("the app's answer body could not be read"))?
        .to_bytes();
    // The whole body is here: say its length, so clients need not wait for the end of a chunked one.
    parts.headers.remove("transfer-encoding");
    parts
        .headers
        .insert(http::header::CONTENT_LENGTH, body.len().into());
    if !parts.headers.contains_key("x-request-id")
        && let Ok(value) = http::HeaderValue::from_str(request_id)
    {
        parts.headers.insert("x-request-id", value);
    }
    Ok(http::Response::from_parts(parts, Full::new(body)))
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn only_a_non_empty_bearer_credential_is_taken() {
        assert_eq!(bearer_token("Bearer gk_abc"), Some("gk_abc"));
        assert_eq!(bearer_token("bearer  a.b.c "), Some("a.b.c"));
        assert_eq!(bearer_token("Basic YWRhOnB3"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
