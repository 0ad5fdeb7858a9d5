//! The org's tools to agents over the Model Context Protocol: the
//! Streamable HTTP endpoint (`POST /v1/mcp`, and `/v1/mcp/{server}` for a
//! named server of chosen tools), stateless, speaking the 2026-07-28
//! revision and the 2025-11-25 one ([`era`]); the named servers
//! (`/v1/mcp-servers`), composed of the org's tools or mounting a remote
//! MCP server ([`mount`]); the protected resource metadata a client finds
//! through a `401`'s challenge.
//!
//! Listing shows the tools the caller may run; a call takes the path
//! `$call` takes (held on the org's tool meter, run by [`crate::execute`])
//! and leaves the same audit record.

pub mod era;
pub mod metadata;
pub mod mount;
pub mod origin;
pub mod rpc;
pub mod servers;
pub mod shape;
pub mod wire;

#[cfg(target_arch = "wasm32")]
pub mod endpoint;
#[cfg(target_arch = "wasm32")]
mod listing;
#[cfg(target_arch = "wasm32")]
mod remote;
#[cfg(target_arch = "wasm32")]
pub mod server_routes;
#[cfg(target_arch = "wasm32")]
mod server_store;
