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

use gatehouse_http::principal::Principal;
use gatehouse_http::{ErrorCode, Problem, Response};
use spin_sdk::http::Request;

mod principal_headers;

use gatehouse_trust::{Settings, authenticate, quota};

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
    "proxy-authenticate",
    "proxy-authorization",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// What the guard answers: the app's own response, passed through as the
/// app made it (status, headers and a body streamed, never read here), or
/// the guard's refusal.
enum Answer {
    Passed(spin_sdk::wasip3::http::types::Response),
    Refused(Response),
}

impl spin_sdk::http::IntoResponse for Answer {
    fn into_response(
        self,
    ) -> Result<spin_sdk::wasip3::http::types::Response, spin_sdk::wasip3::http::types::ErrorCode>
    {
        match self {
            Answer::Passed(answer) => Ok(answer),
            Answer::Refused(problem) => problem.into_response(),
        }
    }
}

// The export exists in the component only: a native build (the unit
// tests) cannot link a symbol named after a WIT interface.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_service]
async fn handle(req: Request) -> anyhow::Result<Answer> {
    use gatehouse_http::{request_id, response};
    // The client's request id, kept for a refusal; one is made only then.
    let sent = req
        .headers()
        .get(request_id::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(match guard(req).await {
        Ok(answer) => Answer::Passed(answer),
        Err(problem) => {
            let id = request_id::from_header(sent.as_deref());
            Answer::Refused(response::problem(problem, &id))
        }
    })
}

async fn guard(req: Request) -> Result<spin_sdk::wasip3::http::types::Response, Problem> {
    // Authenticate.
    let settings = Settings::load("guard").await?;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let principal = authenticate(header("authorization"), header("x-org"), &settings).await?;
    // Authorize.
    if let Some(permission) = settings.permission.as_deref()
        && !principal.has_permission(permission)
    {
        return Err(Problem::new(ErrorCode::Forbidden)
            .detail(format!("this route needs the {permission} permission")));
    }
    if let Some(meter) = settings.meter.as_deref() {
        quota::consume_one(meter, &principal, &settings).await?;
    }
    // Pass on.
    onward(req, &principal).await
}

/// Calls the app with the verified principal's headers; its answer as it is.
/// The request's body is handed on as the stream it arrived as, never read
/// here.
async fn onward(
    req: Request,
    principal: &Principal,
) -> Result<spin_sdk::wasip3::http::types::Response, Problem> {
    use spin_sdk::wasip3::http::types::{Fields, Request as Wasi};
    let failed = |what: &str| {
        eprintln!("guard: {what}");
        Problem::internal()
    };
    let (mut parts, mut body) = req.into_parts();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // The headers `Connection` names are for this hop only, too.
    let named: Vec<String> = parts
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    for name in named
        .iter()
        .map(String::as_str)
        .chain(HOP_BY_HOP.iter().copied())
    {
        parts.headers.remove(name);
    }
    principal_headers::strip(&mut parts.headers);
    principal_headers::set(&mut parts.headers, principal);
    let incoming = body
        .take_unstarted()
        .ok_or_else(|| failed("the request body was already read"))?;
    let (done, reader) = spin_sdk::wasip3::wit_future::new(|| Ok(()));
    let (contents, trailers) = Wasi::consume_body(incoming, reader);
    let headers: Fields = parts
        .headers
        .try_into()
        .map_err(|e| failed(&format!("the headers could not be passed on: {e:?}")))?;
    let (onward, sent) = Wasi::new(headers, Some(contents), trailers, None);
    // How the app's handling of the body ended is how the guard's did.
    spin_sdk::wit_bindgen::spawn(async move {
        let ended = sent.await;
        let _ = done.write(ended).await;
    });
    let authority = parts.uri.authority().map(|a| a.to_string()).or(host);
    let scheme = parts.uri.scheme().map(Into::into);
    let path = parts.uri.path_and_query().map(|pq| pq.as_str());
    onward
        .set_method(&parts.method.into())
        .and_then(|()| onward.set_scheme(scheme.as_ref()))
        .and_then(|()| onward.set_authority(authority.as_deref()))
        .and_then(|()| onward.set_path_with_query(path))
        .map_err(|()| failed("the request could not be passed on"))?;
    next::wasi::http::handler::handle(onward)
        .await
        .map_err(|e| failed(&format!("the app failed: {e:?}")))
}
