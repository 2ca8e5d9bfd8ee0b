//! What the ops' unit tests share: small models, their values, and running them as plans.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec, PoolSpec};
use tract_onnx::tract_core::ops::math::max;
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::Isa;
use super::int8::IntIsa;

/// `max(x, 0)` wired after `x`.
pub fn relu(model: &mut TypedModel, name: &str, x: OutletId) -> OutletId {
    let zero = Tensor::from_shape(&[1, 1, 1, 1], &[0f32]).expect("zero");
    let zero = model.add_const(format!("{name}.zero"), zero).expect("zero");
    model.wire_node(name, max(), &[x, zero]).expect("relu")[0]
}

/// The model's first output for `input`, optimised and run on `threads` threads.
pub fn run(model: TypedModel, input: &Tensor, threads: usize) -> Vec<f32> {
    run_all(model, std::slice::from_ref(input), threads)
}

/// The model's first output for `inputs`, optimised and run on `threads` threads.
pub fn run_all(model: TypedModel, inputs: &[Tensor], threads: usize) -> Vec<f32> {
    let options = RunOptions {
        executor: Some(crate::runtime::threads::executor(threads).expect("executor")),
        ..RunOptions::default()
    };
    let plan = model
        .into_optimized()
        .and_then(|m| m.into_runnable_with_options(&options))
        .expect("plan");
    let inputs = inputs.iter().map(|t| t.clone().into()).collect();
    let outputs = plan.run(inputs).expect("run");
    outputs[0]
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>().map(<[f32]>::to_vec))
        .expect("f32")
}

/// Values in [-1, 1) that vary with `seed`.
pub fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i + seed) * 7919 % 1009) as f32 - 504.0) / 509.0)
        .collect()
}

/// A 1×1 convolution of `x`, or a `kernel`×`kernel` depthwise one padded to keep the size at
/// stride 1, with weights and bias from [`values`].
pub fn conv(
    model: &mut TypedModel,
    name: &str,
    x: OutletId,
    channels: (usize, usize),
    kernel: usize,
    stride: usize,
) -> OutletId {
    let group = if kernel == 1 { 1 } else { channels.0 };
    grouped_conv(model, name, x, channels, (kernel, stride), group)
}

/// A `kernel`×`kernel` convolution of `x` in `group` groups, padded to keep the size at stride 1,
/// with weights and bias from [`values`].
pub fn grouped_conv(
    model: &mut TypedModel,
    name: &str,
    x: OutletId,
    (input, output): (usize, usize),
    (kernel, stride): (usize, usize),
    group: usize,
) -> OutletId {
    let weights = Tensor::from_shape(
        &[output, input / group, kernel, kernel],
        &values(output * input / group * kernel * kernel, name.len()),
    )
    .expect("weights");
    let bias = Tensor::from_shape(&[output], &values(output, 3 * name.len())).expect("bias");
    let weights = model.add_const(format!("{name}.w"), weights).expect("w");
    let bias = model.add_const(format!("{name}.b"), bias).expect("b");
    let pad = kernel / 2;
    let op = Conv {
        pool_spec: PoolSpec {
            data_format: DataFormat::NCHW,
            kernel_shape: tvec![kernel, kernel],
            padding: PaddingSpec::Explicit(tvec![pad, pad], tvec![pad, pad]),
            dilations: None,
            strides: Some(tvec![stride, stride]),
            input_channels: input,
            output_channels: output,
        },
        kernel_fmt: KernelFormat::OIHW,
        group,
        q_params: None,
    };
    model
        .wire_node(name, op, &[x, weights, bias])
        .expect("conv")[0]
}

/// The integer kernels this CPU runs besides the portable ones, which the tests hold them to.
pub fn integer_kernels() -> impl Iterator<Item = IntIsa> {
    let best = IntIsa::for_isa(Isa::best());
    [IntIsa::Vnni, IntIsa::Avx2]
        .into_iter()
        .filter(move |&isa| isa >= best)
}
