//! CenterFace's seventeen 3×3 depthwise convolutions, and the ReLU after each, as one tract op
//! of our own, and the graph rewrite that puts it in place of tract's `Conv` and `Max`.
//!
//! tract's depthwise kernel is vectorised only for an input stride of 1: at stride 2 it walks one
//! output point at a time, and CenterFace's four stride-2 layers took 30 % of the inference on one
//! thread. Here each input row is first laid out so that each of a kernel row's three taps reads
//! contiguous values: at stride 1 the row with its padding, at stride 2 its even and then its odd
//! columns. Every tap is then one vector multiply-add per sixteen output points, with the widest
//! vectors the CPU has or those `SLBLUR_KERNELS` names, chosen at start-up ([`kernel`]). The ReLU
//! that follows is applied while the sums are in registers, instead of in a pass of its own.
//!
//! The arithmetic is tract's, in tract's order: the bias, then for each tap in row-major order one
//! multiply and one add, never fused. The outputs are therefore identical to tract's own, which the
//! tests check exactly.

mod kernel;

pub(in crate::detect) use kernel::{Filter, Layout, kernel_rows, row};
use kernel::{Planes, plane_kernel};

use super::lanes::{Isa, Kernels};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Taps of one channel's 3×3 kernel, row-major.
pub(in crate::detect) type Taps = [f32; 9];

/// Where a 3×3 convolution's kernel reads: its stride (1 or 2) and the zeros around its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::detect) struct Window {
    pub stride: usize,
    /// Rows of zeros above and below the input, columns left and right of it.
    pub pad_rows: [usize; 2],
    pub pad_columns: [usize; 2],
}

impl Window {
    /// The window of a `Conv` node of `model` that slblur's ops compute, and the op: 3×3, equal
    /// strides of 1 or 2, no dilation, channels first, float, with constant weights and bias (or
    /// none), and `groups` groups.
    pub(in crate::detect) fn of_conv<'a>(
        model: &TypedModel,
        node: &'a TypedNode,
        groups: impl Fn(&Conv) -> usize,
    ) -> TractResult<Option<(Window, &'a Conv)>> {
        let Some(conv) = node.op_as::<Conv>() else {
            return Ok(None);
        };
        let spec = &conv.pool_spec;
        let strides = spec.strides();
        let fits = conv.q_params.is_none()
            && conv.kernel_fmt == KernelFormat::OIHW
            && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
            && spec.kernel_shape.as_slice() == [3, 3]
            && matches!(strides.as_ref(), [1, 1] | [2, 2])
            && spec.dilations().as_ref() == [1, 1]
            && conv.group == groups(conv)
            && matches!(node.inputs.len(), 2 | 3);
        let input = model.outlet_fact(node.inputs[0])?;
        if !fits || input.datum_type != f32::datum_type() {
            return Ok(None);
        }
        let shape = spec.data_format.shape(input.shape.to_tvec())?;
        let padding = spec.computed_padding(shape.hw_dims());
        let pads = |axis: usize| -> TractResult<[usize; 2]> {
            Ok([
                padding[axis].pad_before.to_usize()?,
                padding[axis].pad_after.to_usize()?,
            ])
        };
        let (Ok(pad_rows), Ok(pad_columns)) = (pads(0), pads(1)) else {
            return Ok(None);
        };
        let window = Window {
            stride: strides[0],
            pad_rows,
            pad_columns,
        };
        Ok(Some((window, conv)))
    }

    /// The output's height and width for an input of `shape` (its last two axes), and the
    /// input's rank.
    pub(in crate::detect) fn output_plane(
        &self,
        shape: &ShapeFact,
    ) -> TractResult<((usize, usize), usize)> {
        let rank = shape.rank();
        ensure!(rank >= 3, "3×3 convolution input of rank {rank}");
        let (height, width) = (shape[rank - 2].to_usize()?, shape[rank - 1].to_usize()?);
        Ok((self.output_size(height, width)?, rank))
    }

    /// The output's height and width for an input's.
    pub(in crate::detect) fn output_size(
        &self,
        height: usize,
        width: usize,
    ) -> TractResult<(usize, usize)> {
        let size = |input: usize, [before, after]: [usize; 2]| {
            (input + before + after)
                .checked_sub(3)
                .map(|span| span / self.stride + 1)
                .with_context(|| {
                    format!("a 3×3 kernel does not fit {input} padded by {before}+{after}")
                })
        };
        Ok((size(height, self.pad_rows)?, size(width, self.pad_columns)?))
    }
}

/// A convolution's constant weights and bias as `f32` (zeros without a bias), when it has them
/// and they hold `weights` and `outputs` values.
pub(in crate::detect) fn constants(
    model: &TypedModel,
    node: &TypedNode,
    weights: usize,
    outputs: usize,
) -> TractResult<Option<(Vec<f32>, Vec<f32>)>> {
    let constant = |i: usize| -> TractResult<Option<Vec<f32>>> {
        let Some(k) = model.outlet_fact(node.inputs[i])?.konst.clone() else {
            return Ok(None);
        };
        if k.datum_type() != f32::datum_type() {
            return Ok(None);
        }
        Ok(Some(k.try_as_plain_ram()?.as_slice::<f32>()?.to_vec()))
    };
    let Some(kernel) = constant(1)?.filter(|k| k.len() == weights) else {
        return Ok(None);
    };
    let bias = match node.inputs.len() {
        2 => vec![0.0; outputs],
        _ => match constant(2)? {
            Some(b) if b.len() == outputs || b.len() == 1 => {
                (0..outputs).map(|c| b[c % b.len()]).collect()
            }
            _ => return Ok(None),
        },
    };
    Ok(Some((kernel, bias)))
}

/// A 3×3 depthwise convolution with stride 1 or 2, channels first, on `f32`, optionally followed
/// by a ReLU.
#[derive(Debug, Clone, PartialEq)]
pub struct Depthwise3x3 {
    pub(in crate::detect) window: Window,
    pub(in crate::detect) taps: Vec<Taps>,
    pub(in crate::detect) bias: Vec<f32>,
    pub(in crate::detect) relu: bool,
    /// Fused multiply-adds ([`Filter::fused`]).
    pub(in crate::detect) fused: bool,
    /// The vectors its kernel uses.
    pub(in crate::detect) isa: Isa,
}

impl Eq for Depthwise3x3 {}

impl Depthwise3x3 {
    /// The op for a `Conv` node of `model`, when it is one this op computes: a [`Window`] with
    /// one group per channel.
    fn for_conv(model: &TypedModel, node: &TypedNode) -> TractResult<Option<Self>> {
        let Some((window, conv)) = Window::of_conv(model, node, |c| c.pool_spec.input_channels)?
        else {
            return Ok(None);
        };
        let channels = conv.pool_spec.input_channels;
        if conv.pool_spec.output_channels != channels {
            return Ok(None);
        }
        let Some((kernel, bias)) = constants(model, node, channels * 9, channels)? else {
            return Ok(None);
        };
        let taps = kernel
            .chunks_exact(9)
            .map(|k| k.try_into().expect("chunks of nine"))
            .collect();
        Ok(Some(Depthwise3x3 {
            window,
            taps,
            bias,
            relu: false,
            fused: false,
            isa: Isa::Portable,
        }))
    }
}

/// Replaces every convolution of `model` that [`Depthwise3x3`] computes, with the ReLU that
/// follows it when it is the convolution's only reader, by ops whose kernel uses `kernels`, with
/// fused multiply-adds if `fused` (then no longer exactly tract's); returns how many.
pub fn rewrite(model: &mut TypedModel, kernels: Kernels, fused: bool) -> TractResult<usize> {
    super::replace_convs(model, |model, node, relu| {
        Ok(Depthwise3x3::for_conv(model, node)?.map(|op| Depthwise3x3 {
            relu,
            fused,
            isa: kernels.isa(),
            ..op
        }))
    })
}

/// The node computing `max(x, 0)` of node `id`'s output, when it is that output's only reader.
pub(in crate::detect) fn relu_after(model: &TypedModel, id: usize) -> TractResult<Option<usize>> {
    let outlet = OutletId::new(id, 0);
    let Some(next) = sole_reader(model, outlet) else {
        return Ok(None);
    };
    let same_shape = next.outputs[0].fact.shape == model.outlet_fact(outlet)?.shape;
    Ok((relu_input(model, next)? == Some(outlet) && same_shape).then_some(next.id))
}

/// The node reading `outlet`, when it is the only one and `outlet` is not a model output.
pub(in crate::detect) fn sole_reader(model: &TypedModel, outlet: OutletId) -> Option<&TypedNode> {
    let successors = &model.node(outlet.node).outputs[outlet.slot].successors;
    (successors.len() == 1 && !model.outputs.contains(&outlet))
        .then(|| model.node(successors[0].node))
}

/// `x` when `node` computes `max(x, 0)`, a ReLU, in either order.
pub(in crate::detect) fn relu_input(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<OutletId>> {
    if node.op.name() != "Max" || node.inputs.len() != 2 || node.outputs.len() != 1 {
        return Ok(None);
    }
    for (value, other) in [(0, 1), (1, 0)] {
        let zero = model
            .outlet_fact(node.inputs[other])?
            .konst
            .as_ref()
            .is_some_and(|k| {
                k.datum_type() == f32::datum_type()
                    && k.try_as_plain_ram()
                        .and_then(|v| v.as_slice::<f32>().map(|s| s.iter().all(|&v| v == 0.0)))
                        .unwrap_or(false)
            });
        if zero {
            return Ok(Some(node.inputs[value]));
        }
    }
    Ok(None)
}

impl Op for Depthwise3x3 {
    fn name(&self) -> StaticName {
        "Depthwise3x3".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} channels, stride {}, padding rows {:?}, columns {:?}{}; {}{}",
            self.bias.len(),
            self.window.stride,
            self.window.pad_rows,
            self.window.pad_columns,
            if self.relu { ", then ReLU" } else { "" },
            self.isa,
            if self.fused {
                ", fused multiply-add"
            } else {
                ""
            },
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Depthwise3x3 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let rank = input.rank();
        ensure!(rank >= 3, "depthwise input of rank {rank}");
        let (height, width) = (input.shape()[rank - 2], input.shape()[rank - 1]);
        let (out_height, out_width) = self.window.output_size(height, width)?;
        let mut shape: TVec<usize> = input.shape().into();
        shape[rank - 2] = out_height;
        shape[rank - 1] = out_width;
        // SAFETY: the kernel stores every point of every output plane, sixteen at a time and
        // the rest of each row from a full vector, before anything reads them; zeroing first
        // cost 1.5 % of the inference in memory traffic alone.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        let (in_plane, out_plane) = (height * width, out_height * out_width);
        let input = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let total = output.len();
        let channels = self.bias.len();
        let kernel = plane_kernel(self.isa);
        let mut view = output.try_as_plain_ram_mut()?;
        super::bands::in_row_bands(
            view.as_slice_mut::<f32>()?,
            out_plane,
            total,
            |first, planes| {
                let window = &self.window;
                let layout = Layout::new(window.stride, width, out_width, window.pad_columns);
                let mut kept = Planes::new(
                    layout,
                    (height, width),
                    (out_height, out_width),
                    window.pad_rows[0],
                    window.pad_columns,
                );
                for (i, out) in planes.chunks_exact_mut(out_plane).enumerate() {
                    let plane = first + i;
                    let channel = plane % channels;
                    let filter = Filter {
                        taps: &self.taps[channel],
                        bias: self.bias[channel],
                        relu: self.relu,
                        fused: self.fused,
                    };
                    kernel(
                        &mut kept,
                        &input[plane * in_plane..][..in_plane],
                        &filter,
                        out,
                    );
                }
                Ok(())
            },
        )?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Depthwise3x3 {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = &inputs[0].shape;
        let ((out_height, out_width), rank) = self.window.output_plane(shape)?;
        let mut dims: TVec<TDim> = shape.to_tvec();
        dims[rank - 2] = out_height.into();
        dims[rank - 1] = out_width.into();
        Ok(tvec!(f32::fact(dims)))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let points = self.output_facts(inputs)?[0].shape.volume();
        Ok(tvec!((Cost::FMA(f32::datum_type()), points * 9)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::cnn::{PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::math::max;

    /// How the test model reads the convolution's output.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Then {
        Output,
        Relu,
        /// A ReLU, with the convolution's output a model output as well.
        ReluAndOutput,
    }

    /// A model of one depthwise convolution over `[1, channels, height, width]`.
    fn conv_model(
        channels: usize,
        (height, width): (usize, usize),
        (before, after): ([usize; 2], [usize; 2]),
        strides: [usize; 2],
        then: Then,
    ) -> TypedModel {
        let mut model = TypedModel::default();
        let value = |i: usize| ((i * 7919 % 1009) as f32 - 504.0) / 97.0;
        let kernel = Tensor::from_shape(
            &[channels, 1, 3, 3],
            &(0..channels * 9).map(value).collect::<Vec<_>>(),
        )
        .expect("kernel");
        let bias = Tensor::from_shape(
            &[channels],
            &(0..channels).map(|c| value(c + 5)).collect::<Vec<_>>(),
        )
        .expect("bias");
        let input = model
            .add_source("input", f32::fact([1, channels, height, width]))
            .expect("source");
        let kernel = model.add_const("kernel", kernel).expect("kernel");
        let bias = model.add_const("bias", bias).expect("bias");
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![3, 3],
                padding: PaddingSpec::Explicit(
                    before.iter().copied().collect(),
                    after.iter().copied().collect(),
                ),
                dilations: None,
                strides: Some(strides.iter().copied().collect()),
                input_channels: channels,
                output_channels: channels,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: channels,
            q_params: None,
        };
        let conv = model
            .wire_node("conv", conv, &[input, kernel, bias])
            .expect("conv")[0];
        let zero = Tensor::from_shape(&[1, 1, 1, 1], &[0f32]).expect("zero");
        let zero = model.add_const("zero", zero).expect("zero");
        let outputs = match then {
            Then::Output => vec![conv],
            Then::Relu => model
                .wire_node("relu", max(), &[conv, zero])
                .expect("relu")
                .to_vec(),
            Then::ReluAndOutput => {
                let relu = model.wire_node("relu", max(), &[zero, conv]).expect("relu")[0];
                vec![relu, conv]
            }
        };
        model.select_output_outlets(&outputs).expect("outputs");
        model
    }

    fn run(model: TypedModel, input: &Tensor) -> Vec<Vec<f32>> {
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .expect("plan");
        let outputs = plan.run(tvec!(input.clone().into())).expect("run");
        outputs
            .iter()
            .map(|t| {
                t.try_as_plain_ram()
                    .and_then(|v| v.as_slice::<f32>().map(<[f32]>::to_vec))
                    .expect("f32")
            })
            .collect()
    }

    fn input(channels: usize, height: usize, width: usize) -> Tensor {
        let values: Vec<f32> = (0..channels * height * width)
            .map(|i| ((i * 104729 % 2003) as f32 - 1001.0) / 113.0)
            .collect();
        Tensor::from_shape(&[1, channels, height, width], &values).expect("input")
    }

    fn ops(model: &TypedModel, name: &str) -> usize {
        model.nodes().iter().filter(|n| n.op.name() == name).count()
    }

    #[test]
    fn matches_tract_exactly_for_every_stride_padding_parity_and_vector_width() {
        for stride in [1, 2] {
            for (height, width) in [(8, 8), (9, 7), (5, 12), (3, 3), (16, 33)] {
                for pads in [
                    ([1, 1], [1, 1]),
                    ([0, 0], [0, 0]),
                    ([1, 0], [0, 1]),
                    ([0, 1], [1, 0]),
                    ([2, 2], [1, 0]),
                ] {
                    for then in [Then::Output, Then::Relu, Then::ReluAndOutput] {
                        let case = format!("stride {stride}, {height}x{width}, {pads:?}, {then:?}");
                        let model = conv_model(5, (height, width), pads, [stride, stride], then);
                        let x = input(5, height, width);
                        let expected = run(model.clone(), &x);
                        for kernels in Kernels::available() {
                            let case = format!("{case}, {kernels}");
                            let mut rewritten = model.clone();
                            let replaced =
                                rewrite(&mut rewritten, kernels, false).expect("rewrite");
                            assert_eq!(replaced, 1, "{case}");
                            assert_eq!(ops(&rewritten, "Conv"), 0, "{case}");
                            let unfused = usize::from(then == Then::ReluAndOutput);
                            assert_eq!(ops(&rewritten, "Max"), unfused, "{case}");
                            assert_eq!(run(rewritten, &x), expected, "{case}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn leaves_other_convolutions_alone() {
        for strides in [[2, 1], [3, 3]] {
            let mut model = conv_model(4, (8, 8), ([1, 1], [1, 1]), strides, Then::Relu);
            let replaced = rewrite(&mut model, Kernels::best(), false).expect("rewrite");
            assert_eq!(replaced, 0, "{strides:?}");
        }
    }
}
