//! The client address of a request, resolved once by the router (see
//! [`identity_core::client_address`] for which address is believed).

pub use identity_core::client_address::peer;

/// The client address a request carries, once the router has resolved it
/// (a request extension, so handlers stay synchronous about it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub Option<String>);

#[cfg(target_arch = "wasm32")]
pub use store::resolve;

#[cfg(target_arch = "wasm32")]
mod store {
    use super::ClientAddress;
    use identity_core::client_address::{from_proxy_header, peer};
    use spin_sdk::http::Request;

    /// Resolves the request's client address and keeps it on the request.
    pub async fn resolve(mut req: Request) -> Request {
        let header = spin_sdk::variables::get("client_address_header")
            .await
            .map(|h| h.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let value = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let address = if header.is_empty() {
            peer(value("spin-client-addr").as_deref())
        } else {
            value(&header).and_then(|v| from_proxy_header(&header, &v))
        };
        req.extensions_mut().insert(ClientAddress(address));
        req
    }
}
