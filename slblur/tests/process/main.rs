//! slblur's integration tests that start the `slblur` binary as a child process: its lifecycle
//! (lock file, SIGTERM, start-up errors), the image's environment, memory bounds measured on
//! the child, and sustained overload. Each test holds the shared machine
//! ([`support::share_machine`]); the overload test, which measures throughput, holds it whole.

// Each test holds the machine's lock for its whole body, awaits included: the lock orders tests
// on different threads, and no task of a test's own runtime ever waits for it.
#![allow(clippy::await_holding_lock)]

#[path = "../support/mod.rs"]
mod support;

mod hostile_images;
mod image;
mod lifecycle;
mod overload_shed;
mod resource_bounds;
