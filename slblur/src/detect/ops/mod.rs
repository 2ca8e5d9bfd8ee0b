//! slblur's own tract ops, where tract's are slow on this network: [`depthwise`] computes the
//! depthwise convolutions (and their ReLUs) faster than tract's kernel, and [`bottleneck`] runs
//! each wide inverted-residual block as one op so its large intermediate tensors never reach
//! memory; both on the vectors of `lanes` (AVX-512, AVX2 or portable). Each op's output is
//! identical to tract's own, which the tests check exactly.

pub mod bottleneck;
pub mod depthwise;
mod lanes;
