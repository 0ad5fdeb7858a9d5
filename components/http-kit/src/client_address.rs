//! Where a request comes from, for sign-in throttling, device history and
//! the audit trail.
//!
//! By default that is the connection's peer (`spin-client-addr`): a
//! header a client can set itself is never believed. Behind a reverse
//! proxy every request would then come from the proxy, so the deployment
//! names the one header its proxy sets (Spin variable
//! `client_address_header`, e.g. `x-forwarded-for` or `forwarded`); the
//! address the proxy appended last is taken, since every earlier entry is
//! whatever the client sent.

use std::net::IpAddr;

/// An address without port or brackets, if it is one.
fn address(text: &str) -> Option<String> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    // `[v6]:port`, `[v6]`, `v4:port`.
    let host = match text.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map(|(h, _)| h)?,
        None => text.rsplit_once(':').map_or(text, |(h, _)| h),
    };
    host.parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

/// The peer address Spin reports (`ip:port`).
pub fn peer(spin_client_addr: Option<&str>) -> Option<String> {
    spin_client_addr.and_then(address)
}

/// The address a trusted proxy's header names: the last entry of
/// `X-Forwarded-For`, the last `for=` of `Forwarded` (RFC 7239), or the
/// whole value of any other header.
pub fn from_proxy_header(header: &str, value: &str) -> Option<String> {
    match header.to_ascii_lowercase().as_str() {
        "x-forwarded-for" => value.rsplit(',').next().and_then(address),
        "forwarded" => value
            .rsplit(',')
            .next()?
            .split(';')
            .find_map(|pair| {
                let (name, v) = pair.split_once('=')?;
                name.trim().eq_ignore_ascii_case("for").then_some(v)
            })
            .and_then(address),
        _ => address(value),
    }
}

/// The request's client address: the connection's peer, or the last
/// entry of the header the `client_address_header` variable names (a
/// component without that variable believes the peer).
#[cfg(target_arch = "wasm32")]
pub async fn of<B>(req: &http::Request<B>) -> Option<String> {
    let header = spin_sdk::variables::get("client_address_header")
        .await
        .map(|h| h.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let value = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if header.is_empty() {
        peer(value("spin-client-addr"))
    } else {
        value(&header).and_then(|v| from_proxy_header(&header, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_address_loses_its_port_and_brackets() {
        assert_eq!(peer(Some("127.0.0.1:5123")).as_deref(), Some("127.0.0.1"));
        assert_eq!(peer(Some("[::1]:5123")).as_deref(), Some("::1"));
        assert_eq!(peer(Some("not an address")), None);
        assert_eq!(peer(None), None);
    }

    #[test]
    fn only_the_entry_the_proxy_appended_counts() {
        let xff = "6.6.6.6, 10.0.0.1, 203.0.113.7";
        assert_eq!(
            from_proxy_header("X-Forwarded-For", xff).as_deref(),
            Some("203.0.113.7")
        );
        let forwarded = "for=6.6.6.6;proto=https, for=\"[2001:db8::1]:443\";by=10.0.0.1";
        assert_eq!(
            from_proxy_header("forwarded", forwarded).as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            from_proxy_header("x-real-ip", " 198.51.100.2 ").as_deref(),
            Some("198.51.100.2")
        );
        assert_eq!(from_proxy_header("x-forwarded-for", "1.2.3.4, junk"), None);
    }
}
