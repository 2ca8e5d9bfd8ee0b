//! slblur's integration tests that run the function inside this process: the server on an
//! ephemeral loopback port (or the router with `oneshot`), the real model and real fixtures.
//! Tests that start the `slblur` binary are in `tests/process`.

#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod detection;
mod hints;
mod int8;
mod interrupted;
mod metrics;
mod overload;
mod own_ops;
mod router;
mod variables;
mod wire_formats;
