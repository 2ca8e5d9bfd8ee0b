//! faas-server: everything an OpenFaaS function needs around its handler, so a function crate
//! supplies only a [`Function`] (one blocking `handle`) and an initialiser.
//!
//! - [`settings`]: the generic `<NAME>_*` environment (address, limits, workers, queue, deadline,
//!   grace, lock file) with of-watchdog's own variables as fallbacks.
//! - [`invocation`]: what a handler receives ([`Invocation`], [`Context`]) and returns ([`Reply`]).
//! - [`problem`]: the error a client sees (status, code, message, `Retry-After`), JSON or text.
//! - [`server`]: the router (health, metrics, the function on every other path), admission and
//!   429, body limits, deadlines and 504, warm-up and the lock file.
//! - [`auth`]: the optional bearer token from a secret file.
//! - [`body`]: reading a body within its limit, and draining bodies that will not be used.
//! - [`listen`]: connections — the cap, header/idle and write timeouts, the drain deadline.
//! - [`metrics`]: Prometheus metrics shared by every function, plus the function's own.
//! - [`serve`]: serving until a signal, the SIGTERM grace, then the drain.
//! - [`process`]: the binary's `main`: `--help`/`--version`, logs, signals, exit codes.

pub mod auth;
pub mod body;
pub mod invocation;
pub mod listen;
pub mod metrics;
pub mod problem;
pub mod process;
pub mod serve;
pub mod server;
pub mod settings;

pub use axum::body::Bytes;
pub use axum::http;
pub use faas_protocol;
pub use invocation::{Context, Invocation, Reply};
pub use problem::{ErrorStyle, Problem};
pub use process::{About, run};
pub use prometheus_client;
pub use serve::{ServeError, serve};
pub use server::Server;
pub use settings::{Settings, Variable};
pub use tokio;
pub use tracing;

/// A function: the one thing a function crate implements.
pub trait Function: Send + Sync + 'static {
    /// Handles one request on a worker thread (blocking work is fine here). The body has been
    /// read within the limit; admission, deadline, metrics and errors are the server's.
    fn handle(&self, invocation: Invocation) -> Result<Reply, Problem>;

    /// How errors are written for a request the handler has not seen yet (refused before
    /// `handle`, or timed out): JSON unless the function's clients cannot read it.
    fn error_style(&self, _headers: &http::HeaderMap) -> ErrorStyle {
        ErrorStyle::Json
    }
}

/// An initialiser's failure, with its causes as its `source` chain.
pub type InitError = Box<dyn std::error::Error + Send + Sync>;

/// An error and its causes on one line, `outer: cause: cause`, as a log line or a message to a
/// client shows them (each error's own text names only itself).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
