//! `faas-protocol`: the part of the wire that the rust-http template's server owns, for any
//! function — the headers it sets, the `Server-Timing` stages it adds, and the error body it
//! answers failures with. The server writes with these types and functions; clients parse with
//! the same ones, so the two ends cannot drift apart.

pub mod error;
pub mod server_timing;

pub use error::{ErrorBody, ErrorDetail};

/// `text` cut to at most `max` bytes (on a character boundary), saying how long it was: how a
/// client's text appears in an error message or a log line.
pub fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len()).into()
}

/// Header names the server reads or writes (lower case, as HTTP/2 and `http` spell them).
pub mod header {
    /// The caller's request id, echoed in every answer (a new UUID when the caller sent none).
    pub const REQUEST_ID: &str = "x-request-id";
    /// OpenFaaS's name for the request id (the gateway and the queue worker set it).
    pub const CALL_ID: &str = "x-call-id";
    /// `queue`, the handler's own stages, then `total`, in milliseconds ([`crate::server_timing`]).
    pub const SERVER_TIMING: &str = "server-timing";
    /// Seconds to wait before retrying a 429 or 503.
    pub const RETRY_AFTER: &str = "retry-after";

    /// OpenFaaS's asynchronous path (`POST /async-function/NAME` answers 202 with
    /// [`CALL_ID`]; the queue worker later calls the function and posts its answer, with the
    /// function's own headers, to the caller's [`CALLBACK_URL`]).
    pub const CALLBACK_URL: &str = "x-callback-url";
    /// On the callback: the function's HTTP status (503 when the queue worker could not reach it).
    pub const FUNCTION_STATUS: &str = "x-function-status";
    /// On the callback: the function's name.
    pub const FUNCTION_NAME: &str = "x-function-name";
    /// Seconds the call took: from the watchdog on a function's answer, from the queue worker
    /// (taking the message to reading the function's answer) on a callback.
    pub const DURATION_SECONDS: &str = "x-duration-seconds";
}

/// Stage names the server adds around the handler's own in `Server-Timing`.
pub mod stage {
    /// Waiting for a worker, from the body in hand.
    pub const QUEUE: &str = "queue";
    /// From the body in hand to the answer ready: queue, the handler's stages and the rest.
    pub const TOTAL: &str = "total";
}

/// Milliseconds rounded to microseconds: what clients and logs need, without float noise. The
/// server rounds every duration it reports with this, once.
pub fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// A duration in rounded milliseconds ([`round_ms`]).
pub fn ms(d: std::time::Duration) -> f64 {
    round_ms(d.as_secs_f64() * 1000.0)
}
