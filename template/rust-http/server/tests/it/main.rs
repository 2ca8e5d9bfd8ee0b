//! The template server's integration tests: the server around small functions, in this
//! process, over loopback HTTP — one module per feature.

#[path = "../support/mod.rs"]
mod support;

mod abandoned;
mod connections;
mod requests;
mod server;
mod slow_clients;
