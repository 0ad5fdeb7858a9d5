//! The HTTP conventions every Gatehouse component uses.
//!
//! - [`problem`]: RFC 9457 problem documents with stable codes.
//! - [`request_id`]: the id every response carries and every problem names.
//! - [`json`]: typed, size-limited JSON bodies with field-level errors.
//! - [`operator`]: the operator token that deployment routes take.
//! - [`pagination`]: `limit`/`cursor` keyset pagination.
//! - [`idempotency`]: `Idempotency-Key` for creating POSTs.
//! - [`principal`]: who is calling, as authentication will establish it.
//! - [`response`]: JSON and problem responses, ETags.
//! - [`router`]: matching `(method, path)` inside a component.
//! - [`audit`]: the record every mutation leaves, before its answer.
//! - [`client_address`]: which address a request comes from.
//!
//! Everything here is plain Rust, unit-tested natively; only the SQLite
//! idempotency store touches Spin and is compiled for wasm32 alone.

#![deny(missing_docs)]
// `Result<_, Problem>` is the error path of a request, taken at most once per
// request; boxing every problem would cost an allocation for nothing.
#![allow(clippy::result_large_err)]

pub mod audit;
pub mod client_address;
pub mod idempotency;
pub mod json;
pub mod operator;
#[cfg(target_arch = "wasm32")]
pub mod outbound;
pub mod pagination;
pub mod principal;
pub mod problem;
pub mod request_id;
pub mod response;
pub mod router;
pub mod time;

pub use problem::{ErrorCode, FieldError, Problem};
pub use response::Response;
