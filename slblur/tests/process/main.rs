//! slblur's integration tests that start the `slblur` binary as a child process: its lifecycle
//! (lock file, SIGTERM, start-up errors), the image's environment, memory bounds measured on
//! the child, and sustained overload. Each test holds the shared machine
//! ([`support::share_machine`]); the overload test, which measures throughput, holds it whole.

#[path = "../support/mod.rs"]
mod support;

mod hostile_images;
mod image;
mod lifecycle;
mod overload_shed;
mod resource_bounds;
