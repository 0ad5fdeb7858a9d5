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
//!    `x-gatehouse-subject`, `-org`, `-roles`, `-permissions`, `-credential`,
//!    and without the client's `Authorization` header unless
//!    `guard_forward_authorization` is `true`.
//!
//! Every refusal is an RFC 9457 problem document. See docs/guard.md.

// The request path builds for wasm32 only; the pure parts are unit-tested natively.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code, unused_imports))]
// `Result<_, Problem>` is a request's error path, taken at most once.
#![allow(clippy::result_large_err)]

use gatehouse_http::principal::Principal;
use gatehouse_http::{ErrorCode, Problem};

mod principal_headers;

use gatehouse_trust::{Settings, authenticate, quota};
use principal_headers::Header;

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

/// The value of the first header called `name` (any case), if it is text.
fn value<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// Removes the headers that are for this hop only: the fixed list and
/// those the request's `Connection` headers name.
fn drop_hop_by_hop(headers: &mut Vec<Header>) {
    let named: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    headers.retain(|(name, _)| {
        !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
            && !named.iter().any(|h| name.eq_ignore_ascii_case(h))
    });
}

/// Removes the client's credential: what the app gets instead is the
/// principal it verified as.
fn drop_authorization(headers: &mut Vec<Header>) {
    headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
}

/// Whether the request declares a body (RFC 9112 §6.3: a request has one
/// only by `Content-Length` or `Transfer-Encoding`).
fn declares_body(headers: &[Header]) -> bool {
    headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        || value(headers, "content-length").is_some_and(|n| n.trim() != "0")
}

// The export exists in the component only: a native build (the unit
// tests) cannot link a symbol named after a WIT interface. The handler
// takes the request as the host hands it over: its headers are read once
// as a list and the onward request is made from that list, with no
// conversion to other types and back.
#[cfg(target_arch = "wasm32")]
mod serve {
    use spin_sdk::wasip3::http::types::{ErrorCode as WasiError, Request, Response};

    struct Guard;
    spin_sdk::wasip3::http::service::export!(Guard);

    impl spin_sdk::wasip3::exports::http::handler::Guest for Guard {
        async fn handle(req: Request) -> Result<Response, WasiError> {
            use gatehouse_http::{request_id, response};
            let headers = req.get_headers().copy_all();
            // The client's request id, kept for a refusal; one is made only then.
            let sent = super::value(&headers, request_id::HEADER).map(str::to_string);
            match super::guard(req, headers).await {
                Ok(answer) => Ok(answer),
                Err(problem) => {
                    let id = request_id::from_header(sent.as_deref());
                    spin_sdk::http::IntoResponse::into_response(response::problem(problem, &id))
                }
            }
        }
    }
}

#[cfg(target_arch = "wasm32")]
async fn guard(
    req: spin_sdk::wasip3::http::types::Request,
    mut headers: Vec<Header>,
) -> Result<spin_sdk::wasip3::http::types::Response, Problem> {
    // Authenticate.
    let settings = Settings::load("guard").await?;
    let principal = authenticate(
        value(&headers, "authorization"),
        value(&headers, "x-org"),
        &settings,
    )
    .await?;
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
    if !settings.forward_authorization {
        drop_authorization(&mut headers);
    }
    onward(req, headers, &principal).await
}

/// Calls the app with the verified principal's headers; its answer as it is
/// (status, headers and a body streamed, never read here). A request's
/// body, when it declares one, is handed on as the stream it arrived as.
#[cfg(target_arch = "wasm32")]
async fn onward(
    req: spin_sdk::wasip3::http::types::Request,
    mut headers: Vec<Header>,
    principal: &Principal,
) -> Result<spin_sdk::wasip3::http::types::Response, Problem> {
    use spin_sdk::wasip3::http::types::{Fields, Method, Request as Wasi};
    let failed = |what: &str| {
        eprintln!("guard: {what}");
        Problem::internal()
    };
    // The authority travels apart from the headers; a request that came
    // with only a Host header keeps it as its authority.
    let authority = req
        .get_authority()
        .or_else(|| value(&headers, "host").map(str::to_string));
    let with_body = declares_body(&headers);
    drop_hop_by_hop(&mut headers);
    principal_headers::strip(&mut headers);
    principal_headers::set(&mut headers, principal);
    let fields = Fields::from_list(&headers)
        .map_err(|e| failed(&format!("the headers could not be passed on: {e:?}")))?;
    let method = req.get_method();
    let scheme = req.get_scheme();
    let path = req.get_path_with_query();
    let onward = if with_body {
        // The body is handed on as the stream it arrived as. How the app's
        // handling of it ended is how the guard's did: a task of its own
        // waits for that and hands it back.
        let (done, reader) = spin_sdk::wasip3::wit_future::new(|| Ok(()));
        let (contents, trailers) = Wasi::consume_body(req, reader);
        let (onward, sent) = Wasi::new(fields, Some(contents), trailers, None);
        spin_sdk::wit_bindgen::spawn(async move {
            let ended = sent.await;
            let _ = done.write(ended).await;
        });
        onward
    } else {
        // A request that declares no body goes on with none. Its trailers
        // are resolved (to none) by dropping their writer: the app's SDK
        // waits for them, so the writer must be dropped, never forgotten.
        drop(req);
        let (no_trailers, trailers) = spin_sdk::wasip3::wit_future::new(|| Ok(None));
        drop(no_trailers);
        Wasi::new(fields, None, trailers, None).0
    };
    // A new request is a GET with no scheme, authority or path: only what
    // differs is set, each setter being a call into the host.
    let set = (|| {
        if !matches!(method, Method::Get) {
            onward.set_method(&method)?;
        }
        if scheme.is_some() {
            onward.set_scheme(scheme.as_ref())?;
        }
        if authority.is_some() {
            onward.set_authority(authority.as_deref())?;
        }
        if path.is_some() {
            onward.set_path_with_query(path.as_deref())?;
        }
        Ok(())
    })();
    set.map_err(|()| failed("the request could not be passed on"))?;
    next::wasi::http::handler::handle(onward)
        .await
        .map_err(|e| failed(&format!("the app failed: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use principal_headers::tests::header;

    #[test]
    fn headers_for_this_hop_go_with_those_connection_names() {
        let mut headers = vec![
            header("Host", "app.example"),
            header("Connection", "keep-alive, X-Trace-Hop"),
            header("connection", "close"),
            header("x-trace-hop", "1"),
            header("Keep-Alive", "timeout=5"),
            header("Transfer-Encoding", "chunked"),
            header("Accept", "*/*"),
            header("Authorization", "Bearer gk_1"),
        ];
        drop_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(left, ["Accept", "Authorization"]);
    }

    #[test]
    fn the_credential_goes_in_any_case_and_the_rest_stays() {
        let mut headers = vec![
            header("Authorization", "Bearer a"),
            header("accept", "*/*"),
            header("AUTHORIZATION", "Bearer b"),
            header("x-authorization-hint", "kept"),
        ];
        drop_authorization(&mut headers);
        let left: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(left, ["accept", "x-authorization-hint"]);
    }

    #[test]
    fn a_body_is_declared_by_a_length_above_zero_or_a_transfer_coding() {
        assert!(!declares_body(&[header("Accept", "*/*")]));
        assert!(!declares_body(&[header("Content-Length", "0")]));
        assert!(declares_body(&[header("Content-Length", "12")]));
        assert!(declares_body(&[header("transfer-encoding", "chunked")]));
    }

    #[test]
    fn the_first_value_of_a_header_is_read_whatever_its_case() {
        let headers = vec![
            header("AUTHORIZATION", "Bearer a"),
            header("authorization", "Bearer b"),
        ];
        assert_eq!(value(&headers, "authorization"), Some("Bearer a"));
        assert_eq!(value(&headers, "x-org"), None);
    }
}
