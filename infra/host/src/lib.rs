//! A local host for Spin apps, built on wasmtime: it runs the unmodified
//! components named by an unmodified `spin.toml` with Spin's semantics
//! (routing, private components and `*.spin.internal` chaining, store and
//! outbound grants, variables), so Gatehouse can be served, tested and
//! benchmarked where the Spin CLI is not available. Production runs on Spin.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use gatehouse_host::{LoadOptions, Runtime, ServeOptions, serve};
//! let opts = LoadOptions {
//!     manifest: "spin.toml".into(),
//!     runtime_config: None,
//!     state_dir: ".spin".into(),
//!     cache_dir: ".spin/cache".into(),
//!     env: Vec::new(),
//!     instances: Default::default(),
//!     request_timeout: None,
//!     controllable_clock: false,
//! };
//! let runtime = Runtime::load(&opts, &|name| std::env::var(name).ok()).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! serve(runtime, listener, ServeOptions::default(), std::future::pending()).await?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod body_deadline;
pub mod clock;
mod compose;
mod conn_clock;
pub mod dependencies;
mod hooks;
pub mod instances;
pub mod jobs_clock;
pub mod kv;
pub mod limits;
pub mod manifest;
pub mod migrate;
pub mod outbound;
mod problem;
pub mod routes;
pub mod runtime;
pub mod runtime_config;
pub mod server;
mod spin_apis;
pub mod sqlite_pool;
pub mod variables;
mod worker;

pub use limits::ConnectionLimits;
pub use runtime::{Body, LoadOptions, Runtime};
pub use server::{ServeOptions, serve, serve_with_limits};
