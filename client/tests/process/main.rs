//! slblur-client's integration tests that run the `slblur-client` binary (and JMeter) against
//! the real function, served in this process on an ephemeral port, or against small fake
//! servers: one module per feature.

#[path = "../support/mod.rs"]
mod support;

mod arrivals;
mod async_calls;
mod bad_input;
mod distributed;
mod frames;
mod interrupt;
mod jmeter;
mod killed_server;
mod misbehaving_server;
mod model;
mod open_loop;
mod resume;
mod save_video;
mod smoothing;
mod sweep;
mod think_time;
mod thresholds;
mod timeouts;
mod token;
mod wire_formats;
