//! The `gatehouse:client@0.1.0` component (wit/client): what a component of
//! another Spin app imports to trust its callers, plugged in by the app's
//! manifest (`[component.x.dependencies]`, inheriting `variables`,
//! `allowed_outbound_hosts` and `key_value_stores`):
//!
//! - `verify`: the caller's credential as a principal, as the guard verifies
//!   it (`gatehouse_trust`), configured by `gatehouse_url`,
//!   `gatehouse_audience`, `gatehouse_issuer` and `gatehouse_cache_seconds`;
//! - `authz`: `POST /v1/authz/check` and `/v1/authz/filter` through the
//!   `gatehouse-client` crate, for a member, with the app's service key
//!   (`gatehouse_service_key`, holding `authz:check`);
//! - `quota`: consume, reserve, commit and release with the same key
//!   (holding `quotas:consume`).
//!
//! A refusal comes back as a problem record the importer can answer as is;
//! Gatehouse refusing the app's own service key is the app misconfigured,
//! logged and answered as a 500 without the reason.

// The exports build for wasm32 only; the conversions are unit-tested natively.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod convert;

#[cfg(target_arch = "wasm32")]
mod serve;

spin_sdk::wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    world: "client",
    path: "../../wit/client",
});
