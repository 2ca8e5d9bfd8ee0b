//! How inference uses the machine: [`memory`] sets the allocator up for its large, short-lived
//! tensors, and [`threads`] runs one inference on several CPUs (pinned when the process owns
//! exactly that many).

pub mod memory;
pub mod threads;
