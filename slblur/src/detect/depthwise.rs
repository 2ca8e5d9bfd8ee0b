//! CenterFace's four stride-2 3×3 depthwise convolutions as a tract op of our own, and the graph
//! rewrite that puts it in place of tract's `Conv`.
//!
//! tract's depthwise kernel is vectorised only for an input stride of 1: at stride 2 it walks one
//! output point at a time, and those four layers took 30 % of the inference on one thread. Here
//! each input row is first split into its even and odd columns (with the padding as zeros), so
//! every tap becomes a contiguous multiply-add over a whole output row, which the compiler
//! vectorises for the widest instructions the CPU has, chosen at run time.
//!
//! The arithmetic is tract's, in tract's order: the bias, then for each tap in row-major order one
//! multiply and one add, never fused. The outputs are therefore identical to tract's own, which the
//! tests check exactly.

use std::sync::OnceLock;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Taps of one channel's 3×3 kernel, row-major.
type Taps = [f32; 9];

/// A 3×3 depthwise convolution with stride 2, channels first, on `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct StrideTwoDepthwise {
    /// Rows of zeros above and below the input, columns left and right of it.
    pad_rows: [usize; 2],
    pad_columns: [usize; 2],
    taps: Vec<Taps>,
    bias: Vec<f32>,
}

impl Eq for StrideTwoDepthwise {}

impl StrideTwoDepthwise {
    /// The op for a `Conv` node of `model`, when it is one this op computes: 3×3, stride 2, no
    /// dilation, one group per channel, channels first, float, with constant weights and bias.
    fn for_conv(model: &TypedModel, node: &TypedNode) -> TractResult<Option<Self>> {
        let Some(conv) = node.op_as::<Conv>() else {
            return Ok(None);
        };
        let spec = &conv.pool_spec;
        let channels = spec.input_channels;
        let fits = conv.q_params.is_none()
            && conv.kernel_fmt == KernelFormat::OIHW
            && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
            && spec.kernel_shape.as_slice() == [3, 3]
            && spec.strides().as_ref() == [2, 2]
            && spec.dilations().as_ref() == [1, 1]
            && conv.group == channels
            && spec.output_channels == channels
            && node.inputs.len() == 3;
        if !fits {
            return Ok(None);
        }
        let input = model.outlet_fact(node.inputs[0])?;
        let (Some(kernel), Some(bias)) = (
            model.outlet_fact(node.inputs[1])?.konst.clone(),
            model.outlet_fact(node.inputs[2])?.konst.clone(),
        ) else {
            return Ok(None);
        };
        if input.datum_type != f32::datum_type()
            || kernel.datum_type() != f32::datum_type()
            || kernel.len() != channels * 9
            || bias.datum_type() != f32::datum_type()
            || !(bias.len() == channels || bias.len() == 1)
        {
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
        let taps = kernel
            .try_as_plain_ram()?
            .as_slice::<f32>()?
            .chunks_exact(9)
            .map(|k| k.try_into().expect("chunks of nine"))
            .collect();
        let bias = bias.try_as_plain_ram()?.as_slice::<f32>()?;
        let bias = (0..channels).map(|c| bias[c % bias.len()]).collect();
        Ok(Some(StrideTwoDepthwise {
            pad_rows,
            pad_columns,
            taps,
            bias,
        }))
    }

    /// The output's height and width for an input's.
    fn output_size(&self, height: usize, width: usize) -> TractResult<(usize, usize)> {
        let size = |input: usize, [before, after]: [usize; 2]| {
            (input + before + after)
                .checked_sub(3)
                .map(|span| span / 2 + 1)
                .with_context(|| {
                    format!("a 3×3 kernel does not fit {input} padded by {before}+{after}")
                })
        };
        Ok((size(height, self.pad_rows)?, size(width, self.pad_columns)?))
    }
}

/// Replaces every convolution of `model` that [`StrideTwoDepthwise`] computes; returns how many.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(op) = StrideTwoDepthwise::for_conv(model, node)? else {
            continue;
        };
        // The patch checks that the new op's output fact matches the convolution's.
        TypedModelPatch::replace_single_op(model, node, &node.inputs[..1], op)?.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

impl Op for StrideTwoDepthwise {
    fn name(&self) -> StaticName {
        "StrideTwoDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} channels, padding rows {:?}, columns {:?}",
            self.bias.len(),
            self.pad_rows,
            self.pad_columns
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for StrideTwoDepthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let rank = input.rank();
        ensure!(rank >= 3, "depthwise input of rank {rank}");
        let (height, width) = (input.shape()[rank - 2], input.shape()[rank - 1]);
        let (out_height, out_width) = self.output_size(height, width)?;
        let mut shape: TVec<usize> = input.shape().into();
        shape[rank - 2] = out_height;
        shape[rank - 1] = out_width;
        let mut output = Tensor::zero::<f32>(&shape)?;
        let (in_plane, out_plane) = (height * width, out_height * out_width);
        let input = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let total = output.len();
        let channels = self.bias.len();
        let kernel = plane_kernel();
        let mut view = output.try_as_plain_ram_mut()?;
        tract_linalg::multithread::par_chunks_mut(
            view.as_slice_mut::<f32>()?,
            out_plane,
            total,
            |first, planes| {
                let mut phases = Phases::new(height, width, out_width, self.pad_columns[0]);
                for (i, out) in planes.chunks_exact_mut(out_plane).enumerate() {
                    let plane = first + i;
                    let channel = plane % channels;
                    let source = &input[plane * in_plane..][..in_plane];
                    phases.split(source);
                    kernel(
                        &phases,
                        out,
                        out_width,
                        self.pad_rows[0],
                        &self.taps[channel],
                        self.bias[channel],
                    );
                }
                Ok(())
            },
        )?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for StrideTwoDepthwise {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = &inputs[0].shape;
        let rank = shape.rank();
        ensure!(rank >= 3, "depthwise input of rank {rank}");
        let (height, width) = (shape[rank - 2].to_usize()?, shape[rank - 1].to_usize()?);
        let (out_height, out_width) = self.output_size(height, width)?;
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

/// One channel's input, each row split by column parity with the padding as zeros: in padded
/// coordinates, `even[j]` is column `2j` and `odd[j]` column `2j + 1`, so output column `x` reads
/// `even[x]`, `odd[x]` and `even[x + 1]`. Both hold `stride` columns per row.
struct Phases {
    even: Vec<f32>,
    odd: Vec<f32>,
    stride: usize,
    /// Columns of the input.
    width: usize,
    /// One input row with its padding: zeros, then the row from `pad_left` on.
    padded: Vec<f32>,
    pad_left: usize,
}

impl Phases {
    fn new(height: usize, width: usize, out_width: usize, pad_left: usize) -> Phases {
        let stride = out_width + 1;
        Phases {
            even: vec![0.0; height * stride],
            odd: vec![0.0; height * stride],
            stride,
            width,
            padded: vec![0.0; (2 * stride).max(pad_left + width)],
            pad_left,
        }
    }

    fn split(&mut self, plane: &[f32]) {
        for ((row, even), odd) in plane
            .chunks_exact(self.width)
            .zip(self.even.chunks_exact_mut(self.stride))
            .zip(self.odd.chunks_exact_mut(self.stride))
        {
            self.padded[self.pad_left..][..row.len()].copy_from_slice(row);
            for ((pair, e), o) in self.padded.chunks_exact(2).zip(even).zip(odd) {
                *e = pair[0];
                *o = pair[1];
            }
        }
    }

    fn rows(&self) -> usize {
        self.even.len() / self.stride
    }
}

type PlaneKernel = fn(&Phases, &mut [f32], usize, usize, &Taps, f32);

/// The plane kernel compiled for the widest vectors this CPU has.
fn plane_kernel() -> PlaneKernel {
    static KERNEL: OnceLock<PlaneKernel> = OnceLock::new();
    *KERNEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return |p, o, w, t, k, b| unsafe { plane_avx512(p, o, w, t, k, b) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return |p, o, w, t, k, b| unsafe { plane_avx2(p, o, w, t, k, b) };
            }
        }
        plane
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn plane_avx512(p: &Phases, o: &mut [f32], w: usize, top: usize, k: &Taps, b: f32) {
    plane(p, o, w, top, k, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn plane_avx2(p: &Phases, o: &mut [f32], w: usize, top: usize, k: &Taps, b: f32) {
    plane(p, o, w, top, k, b)
}

/// One output plane: each output row is the bias plus, for each of the three kernel rows that
/// fall inside the input, its three taps over that row's phases.
#[inline(always)]
fn plane(
    phases: &Phases,
    out: &mut [f32],
    out_width: usize,
    pad_top: usize,
    taps: &Taps,
    bias: f32,
) {
    let (stride, rows) = (phases.stride, phases.rows());
    for (y, out_row) in out.chunks_exact_mut(out_width).enumerate() {
        out_row.fill(bias);
        for ky in 0..3 {
            let Some(row) = (2 * y + ky).checked_sub(pad_top).filter(|&r| r < rows) else {
                continue;
            };
            let even = &phases.even[row * stride..][..stride];
            let odd = &phases.odd[row * stride..][..stride];
            let [k0, k1, k2] = [taps[3 * ky], taps[3 * ky + 1], taps[3 * ky + 2]];
            for (((o, &left), &middle), &right) in out_row
                .iter_mut()
                .zip(&even[..out_width])
                .zip(odd)
                .zip(&even[1..])
            {
                *o = *o + k0 * left + k1 * middle + k2 * right;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::cnn::{PaddingSpec, PoolSpec};

    /// A model of one depthwise convolution over `[1, channels, height, width]`.
    fn conv_model(
        channels: usize,
        (height, width): (usize, usize),
        (before, after): ([usize; 2], [usize; 2]),
        strides: [usize; 2],
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
        let output = model
            .wire_node("conv", conv, &[input, kernel, bias])
            .expect("conv");
        model.select_output_outlets(&output).expect("outputs");
        model
    }

    fn run(model: TypedModel, input: &Tensor) -> Tensor {
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .expect("plan");
        let outputs = plan.run(tvec!(input.clone().into())).expect("run");
        outputs[0].clone().into_tensor()
    }

    fn input(channels: usize, height: usize, width: usize) -> Tensor {
        let values: Vec<f32> = (0..channels * height * width)
            .map(|i| ((i * 104729 % 2003) as f32 - 1001.0) / 113.0)
            .collect();
        Tensor::from_shape(&[1, channels, height, width], &values).expect("input")
    }

    #[test]
    fn matches_tract_exactly_for_every_padding_and_parity() {
        for (height, width) in [(8, 8), (9, 7), (5, 12), (3, 3), (16, 33)] {
            for pads in [
                ([1, 1], [1, 1]),
                ([0, 0], [0, 0]),
                ([1, 0], [0, 1]),
                ([0, 1], [1, 0]),
                ([2, 2], [1, 0]),
            ] {
                let channels = 5;
                let model = conv_model(channels, (height, width), pads, [2, 2]);
                let mut rewritten = model.clone();
                assert_eq!(rewrite(&mut rewritten).expect("rewrite"), 1);
                let x = input(channels, height, width);
                let (ours, theirs) = (run(rewritten, &x), run(model, &x));
                assert_eq!(ours.shape(), theirs.shape(), "{height}x{width} {pads:?}");
                let view = |t: &Tensor| {
                    t.try_as_plain_ram()
                        .expect("plain")
                        .as_slice::<f32>()
                        .expect("f32")
                        .to_vec()
                };
                assert_eq!(view(&ours), view(&theirs), "{height}x{width} {pads:?}");
            }
        }
    }

    #[test]
    fn leaves_other_convolutions_alone() {
        let mut stride_one = conv_model(4, (8, 8), ([1, 1], [1, 1]), [1, 1]);
        assert_eq!(rewrite(&mut stride_one).expect("rewrite"), 0);
        let mut uneven = conv_model(4, (8, 8), ([1, 1], [1, 1]), [2, 1]);
        assert_eq!(rewrite(&mut uneven).expect("rewrite"), 0);
    }

    #[test]
    fn every_kernel_this_cpu_has_gives_the_portable_result() {
        let (height, width, out_width) = (9, 11, 6);
        let plane_in: Vec<f32> = (0..height * width)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let mut phases = Phases::new(height, width, out_width, 1);
        phases.split(&plane_in);
        let taps: Taps = std::array::from_fn(|i| i as f32 * 0.25 - 1.0);
        let mut portable = vec![0.0; 5 * out_width];
        plane(&phases, &mut portable, out_width, 1, &taps, 0.5);
        let mut dispatched = vec![0.0; 5 * out_width];
        plane_kernel()(&phases, &mut dispatched, out_width, 1, &taps, 0.5);
        assert_eq!(portable, dispatched);
    }
}
