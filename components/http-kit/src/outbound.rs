//! Timeouts for calls components make to other services (mail providers,
//! identity providers, webhook handlers): one that does not answer delays
//! the request by about ten seconds at most; and how a call that got no
//! answer is told.

use spin_sdk::wasip3::http::types::RequestOptions;
use spin_sdk::wasip3::http_compat::RequestOptionsExtension;

/// Connecting, in nanoseconds.
pub const CONNECT_TIMEOUT_NS: u64 = 3_000_000_000;
/// Until the first byte of the answer, in nanoseconds.
pub const FIRST_BYTE_TIMEOUT_NS: u64 = 8_000_000_000;
/// Between two bytes of the answer, in nanoseconds.
pub const BETWEEN_BYTES_TIMEOUT_NS: u64 = 3_000_000_000;

/// The timeouts above, as a request extension for `spin_sdk::http::send`.
/// A host that does not support a timeout keeps its own default.
pub fn timeouts() -> RequestOptionsExtension {
    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(CONNECT_TIMEOUT_NS));
    let _ = options.set_first_byte_timeout(Some(FIRST_BYTE_TIMEOUT_NS));
    let _ = options.set_between_bytes_timeout(Some(BETWEEN_BYTES_TIMEOUT_NS));
    RequestOptionsExtension(options)
}

/// Why a call got no answer, in words fit for a log or a job's last
/// error: the WASI error code's name (`ConnectionRefused`, …).
pub fn failure(code: &impl std::fmt::Debug) -> String {
    format!("{code:?}")
        .trim_start_matches("ErrorCode::")
        .to_string()
}
