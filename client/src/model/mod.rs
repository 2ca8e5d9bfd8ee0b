//! The performance model: what response time and throughput the function should show for a
//! given load, so measurements can be checked against a prediction instead of eyeballed.
//!
//! - [`closed`] — N users with think time Z (the load rig's closed cells): exact load-dependent
//!   MVA for a station of c servers (replicas × workers per replica).
//! - [`open`] — Poisson arrivals at rate λ (open-loop cells): M/M/c, Erlang C.
//! - [`cold`] — share and cost of cold starts, scale-to-zero versus OpenFaaS CE.
//! - [`predict`] — a query over these (loads, station, target), what `slblur-client model`
//!   prints.

pub mod closed;
pub mod cold;
pub mod open;
pub mod predict;
