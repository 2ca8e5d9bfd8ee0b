//! What the ops' unit tests share: small models run as plans.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::math::max;

/// `max(x, 0)` wired after `x`.
pub fn relu(model: &mut TypedModel, name: &str, x: OutletId) -> OutletId {
    let zero = Tensor::from_shape(&[1, 1, 1, 1], &[0f32]).expect("zero");
    let zero = model.add_const(format!("{name}.zero"), zero).expect("zero");
    model.wire_node(name, max(), &[x, zero]).expect("relu")[0]
}

/// The model's first output for `input`, optimised and run on `threads` threads.
pub fn run(model: TypedModel, input: &Tensor, threads: usize) -> Vec<f32> {
    let options = RunOptions {
        executor: Some(crate::runtime::threads::executor(threads).expect("executor")),
        ..RunOptions::default()
    };
    let plan = model
        .into_optimized()
        .and_then(|m| m.into_runnable_with_options(&options))
        .expect("plan");
    let outputs = plan.run(tvec!(input.clone().into())).expect("run");
    outputs[0]
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>().map(<[f32]>::to_vec))
        .expect("f32")
}
