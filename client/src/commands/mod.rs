//! The subcommands, one file each with its options (`Args`, parsed by [`crate::cli`]) and its
//! `run`. A command turns its options into what the domain modules take — for `run`, `load`
//! and `sweep` one checked [`crate::rig::plan::Plan`], before any request — calls them and
//! prints the outcome. Errors carry their causes; `main` prints the chain.

pub mod async_standin;
pub mod frames;
pub mod import_jtl;
pub mod leaks;
pub mod load;
pub mod merge;
pub mod model;
pub mod report;
pub mod run;
mod send;

pub use crate::rig::drive::Finish;
pub use send::{DEFAULT_TARGET, SendArgs};

/// Options that clap accepts one by one but not together (e.g. `load` with two cells): the
/// binary prints it as clap prints usage errors and exits with status 2, before any request.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The async runtime the load commands run on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
}
