//! slblur-client: turns a video into a stream of requests to the slblur function and records
//! what each one cost, one CSV row per request (schema: `client/SCHEMA.md`).
//!
//! The binary is a thin layer over these modules: [`cli`] (options) → [`video`] and
//! [`workload`] (frames into request bodies) → [`wire`] (the function's formats) → [`rig`]
//! (goose drives the users; run folders, merge) → [`record`] (the CSV every tool shares) and
//! [`summary`] (the statistics) → [`app`] (the subcommands end to end). [`token`] is the
//! optional bearer token every request carries.

pub mod app;
pub mod cli;
pub mod jtl;
pub mod model;
pub mod progress;
pub mod record;
pub mod report;
pub mod rig;
pub mod savevideo;
pub mod summary;
pub mod token;
pub mod video;
pub mod wire;
pub mod workload;
