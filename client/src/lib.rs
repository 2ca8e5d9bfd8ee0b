//! slblur-client: turns a video into a stream of requests to the slblur function and records
//! what each one cost, one CSV row per request (schema: `client/SCHEMA.md`).
//!
//! The binary is a thin layer over these modules; later tools reuse [`record`] to read and
//! write the same CSV and [`summary`] for the statistics.

pub mod app;
pub mod cli;
pub mod jtl;
pub mod model;
pub mod progress;
pub mod record;
pub mod report;
pub mod runner;
pub mod savevideo;
pub mod summary;
pub mod video;
pub mod wire;
