//! The client address of a request, read only where a handler needs it
//! (sign-in throttling and device history); see
//! [`identity_core::client_address`] for which address is believed.

use identity_core::client_address::{from_proxy_header, peer};
use spin_sdk::http::Request;

/// The request's client address: the connection's peer, or the last
/// entry of the header `client_address_header` names.
pub async fn of(req: &Request) -> Option<String> {
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
