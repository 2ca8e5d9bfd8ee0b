//! slblur-client: turns a video into a stream of requests to the slblur function and records
//! what each one cost, one CSV row per request (schema: `client/SCHEMA.md`).
//!
//! Layers, each using only those below it:
//! - [`cli`] parses the command line into [`commands`]' options; [`commands`] has one file per
//!   subcommand that turns its options into a call of the domain modules and prints the result.
//! - The load: [`rig`] (a checked plan of cells, driven with goose into run folders; merging
//!   workers' folders) over [`workload`] (a video's frames as request bodies, from [`video`]),
//!   [`wire`] (the function's formats), [`token`] (the optional bearer token) and [`progress`].
//! - The data: [`record`] (the CSV every tool shares) and [`summary`] (per-cell statistics);
//!   [`jtl`] turns JMeter's results into the same rows; [`trace`] reads function invocation
//!   traces to replay.
//! - The analysis: [`report`] (tables, plots, a page), [`model`] (the queueing model) and
//!   [`leaks`] (faces an anonymised video left unmasked).
//! - [`standin`]: a stand-in for OpenFaaS's asynchronous path, to try and test asynchronous
//!   targets without a cluster.

pub mod cli;
pub mod commands;
pub mod jtl;
pub mod leaks;
pub mod model;
pub mod progress;
pub mod record;
pub mod report;
pub mod rig;
pub mod standin;
pub mod summary;
pub mod token;
pub mod trace;
pub mod video;
pub mod wire;
pub mod workload;
