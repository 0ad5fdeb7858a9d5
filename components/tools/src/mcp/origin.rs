//! The `Origin` check both Streamable HTTP revisions ask of a server
//! (against DNS rebinding: a page of another site driving a browser to
//! this endpoint).
//!
//! What is decided here: a request without `Origin` is no browser's
//! cross-site request and is served (agents and SDK clients send none);
//! one with `Origin` is served only when it is the deployment's own
//! origin, the scheme, host and port of `public_base_url` (default ports
//! spelled or not, case aside). Anything else, `null` included, is 403.
//! A deployment whose browser clients live on another origin would need a
//! list of allowed origins; none is configured today.

/// `(scheme, host, port)` of a URL or an origin, lower case, the
/// default port filled in.
fn parts(url: &str) -> Option<(String, String, u16)> {
    let uri: http::Uri = url.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = match (uri.port_u16(), scheme.as_str()) {
        (Some(port), _) => port,
        (None, "https") => 443,
        (None, "http") => 80,
        _ => return None,
    };
    Some((scheme, host, port))
}

/// Whether a request whose `Origin` header is `origin` may be served by
/// the deployment at `public_base_url`.
pub fn allowed(origin: Option<&str>, public_base_url: &str) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    match (parts(origin), parts(public_base_url)) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_deployments_own_origin_is_served() {
        let base = "https://gatehouse.example.com";
        assert!(allowed(None, base));
        assert!(allowed(Some("https://gatehouse.example.com"), base));
        assert!(allowed(Some("https://Gatehouse.Example.com:443"), base));
        assert!(!allowed(Some("https://evil.example"), base));
        assert!(!allowed(Some("http://gatehouse.example.com"), base));
        assert!(!allowed(Some("https://gatehouse.example.com:8443"), base));
        assert!(!allowed(Some("null"), base));
        assert!(allowed(
            Some("http://127.0.0.1:3000"),
            "http://127.0.0.1:3000/"
        ));
    }
}
