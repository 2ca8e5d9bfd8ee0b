//! slblur-client's integration tests that need no process of their own: the wire contract
//! against the real function served in this process, the fuzzer's regressions, and `report`
//! on the committed sample dataset. Tests that run the `slblur-client` binary (or JMeter) are
//! in `tests/process`.

#[path = "../support/mod.rs"]
mod support;

mod contract;
mod fuzz_regressions;
mod report;
