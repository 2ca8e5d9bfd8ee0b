//! The 1×1 convolutions the fused blocks do not cover (the narrow blocks' and the head's), with
//! their bias and ReLU, as one int8 op each ([`super::int8`]), in place of tract's float matrix
//! product, for `SLBLUR_PRECISION=int8`.
//!
//! A 1×1 convolution treats the plane as one row of points. Each thread takes a band of points
//! and works through it [`CHUNK`] points at a time: it quantises every input channel's chunk,
//! multiplies, and writes every output channel's chunk, so the quantised values and sums stay in
//! the cache.

use std::collections::HashMap;
use std::ops::Range;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::bands::{Output, in_bands};
use super::bottleneck::{biased, pointwise_weights};
use super::depthwise::{Depthwise3x3, relu_after};
use super::int8::{Activation, Dots, IntIsa, Portable, Quantized, product, quantize};
use super::lanes::LANES;
use super::pointwise::Strided;

/// Points one step of a band quantises and multiplies.
const CHUNK: usize = 128;

/// A 1×1 convolution over a channels-first tensor, in int8.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Pointwise {
    conv: Quantized,
    /// Whether the output has a batch axis (of one) before its channels, as the input may.
    batch: bool,
    /// The integer kernels it uses.
    pub(in crate::detect) isa: IntIsa,
}

impl Eq for Int8Pointwise {}

/// Replaces every 1×1 convolution of `model` (an `EinSum` with constant weights, the bias sum
/// after it, and the ReLU after that when there is one) whose input has a scale in `scales`
/// (keyed by the `EinSum`'s name) by an [`Int8Pointwise`] using `isa`; returns how many.
pub fn rewrite(
    model: &mut TypedModel,
    scales: &HashMap<String, Vec<Activation>>,
    isa: IntIsa,
) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(activation) = scales.get(&node.name) else {
            continue;
        };
        let Some((weights, input)) = pointwise_weights(model, node)? else {
            continue;
        };
        let Some(sum) = super::depthwise::sole_reader(model, OutletId::new(id, 0)) else {
            continue;
        };
        let Some((_, bias)) = biased(model, sum)? else {
            continue;
        };
        let relu = relu_after(model, sum.id)?;
        let output = OutletId::new(relu.unwrap_or(sum.id), 0);
        if !in_block(model, input, output) {
            continue;
        }
        let Some(conv) = Quantized::new(&weights, bias, relu.is_some(), activation) else {
            continue;
        };
        let batch = model.outlet_fact(output)?.rank() == 4;
        let op = Int8Pointwise { conv, batch, isa };
        let mut patch = TypedModelPatch::default();
        let tapped = patch.tap_model(model, input)?;
        let wired = patch.wire_node(&node.name, op, &[tapped])?[0];
        // `shunt_outside` checks that the new output's fact matches the one it replaces.
        patch.shunt_outside(model, output, wired)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// Whether a 1×1 convolution from `input` to `output` expands or projects an inverted-residual
/// block: its output goes to a depthwise op, or its input comes from one. The head's
/// convolutions stay in `f32`: in int8 they moved heatmap peaks by a cell on the sample video,
/// and boxes with them (IoU 0.89).
fn in_block(model: &TypedModel, input: OutletId, output: OutletId) -> bool {
    let depthwise = |node: &TypedNode| node.op_is::<Depthwise3x3>();
    let successors = &model.node(output.node).outputs[output.slot].successors;
    depthwise(model.node(input.node)) || successors.iter().any(|s| depthwise(model.node(s.node)))
}

impl Int8Pointwise {
    fn output_shape(&self, height: usize, width: usize) -> TVec<usize> {
        let shape = [self.conv.outputs, height, width];
        self.batch.then_some(1).into_iter().chain(shape).collect()
    }
}

impl Op for Int8Pointwise {
    fn name(&self) -> StaticName {
        "Int8Pointwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}→{} channels{}; {}",
            self.conv.inputs,
            self.conv.outputs,
            if self.conv.relu { ", then ReLU" } else { "" },
            self.isa,
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Int8Pointwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let (channels, height, width) = match *input.shape() {
            [1, c, h, w] | [c, h, w] => (c, h, w),
            ref shape => bail!("1×1 convolution input of shape {shape:?}"),
        };
        ensure!(
            channels == self.conv.inputs,
            "1×1 convolution input of {channels} channels, expected {}",
            self.conv.inputs
        );
        let points = height * width;
        // SAFETY: the bands together store every point of every output channel before anything
        // reads them.
        let mut output =
            unsafe { Tensor::uninitialized::<f32>(&self.output_shape(height, width))? };
        let mut view = output.try_as_plain_ram_mut()?;
        let out = Output::new(view.as_slice_mut::<f32>()?, 1, points);
        let input = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let kernel = band_kernel(self.isa);
        let chunks = points.div_ceil(CHUNK);
        in_bands(chunks, |band| {
            let points = band.start * CHUNK..(band.end * CHUNK).min(points);
            kernel(&self.conv, input, points, &out)
        });
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Int8Pointwise {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = &inputs[0].shape;
        let rank = shape.rank();
        ensure!(rank >= 3, "1×1 convolution input of rank {rank}");
        let (height, width) = (shape[rank - 2].to_usize()?, shape[rank - 1].to_usize()?);
        Ok(tvec!(f32::fact(self.output_shape(height, width))))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let points = self.output_facts(inputs)?[0].shape.volume() / self.conv.outputs;
        let products = points * self.conv.inputs * self.conv.outputs;
        Ok(tvec!((Cost::FMA(i32::datum_type()), products)))
    }
}

type BandKernel = fn(&Quantized, &[f32], Range<usize>, &Output);

/// The band kernel compiled for `isa`.
fn band_kernel(isa: IntIsa) -> BandKernel {
    match isa {
        // SAFETY: ops are built for an `IntIsa` this CPU has (`IntIsa::for_isa` of a
        // `Kernels`'s).
        #[cfg(target_arch = "x86_64")]
        IntIsa::Vnni => |conv, input, points, out| unsafe { band_vnni(conv, input, points, out) },
        #[cfg(target_arch = "x86_64")]
        IntIsa::Avx2 => |conv, input, points, out| unsafe { band_avx2(conv, input, points, out) },
        _ => band::<Portable, 1>,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn band_vnni(conv: &Quantized, input: &[f32], points: Range<usize>, out: &Output) {
    band::<super::int8::Vnni, 4>(conv, input, points, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn band_avx2(conv: &Quantized, input: &[f32], points: Range<usize>, out: &Output) {
    band::<super::int8::Avx2, 1>(conv, input, points, out)
}

/// Output points `points` of every channel, [`CHUNK`] at a time.
#[inline(always)]
fn band<D: Dots, const SPAN: usize>(
    conv: &Quantized,
    input: &[f32],
    points: Range<usize>,
    out: &Output,
) {
    let all = input.len() / conv.inputs;
    let mut quantized = vec![0u8; conv.inputs * CHUNK];
    let mut sums = vec![0.0; conv.outputs * CHUNK];
    // The last chunk's points, copied where the vectors may read past them.
    let mut last = Vec::new();
    for start in points.clone().step_by(CHUNK) {
        let end = (start + CHUNK).min(points.end);
        let len = (end - start).next_multiple_of(LANES);
        let rows = if start + len <= all {
            Strided {
                values: &input[start..],
                stride: all,
            }
        } else {
            last.resize(conv.inputs * len, 0.0);
            for (i, row) in last.chunks_exact_mut(len).enumerate() {
                row[..end - start].copy_from_slice(&input[i * all + start..][..end - start]);
            }
            Strided {
                values: &last,
                stride: len,
            }
        };
        let quantized = &mut quantized[..conv.inputs * len];
        quantize::<D, _>(conv, &rows, len, quantized);
        product::<D, SPAN>(conv, quantized, len, &mut sums, len);
        for (channel, sums) in sums.chunks_exact(len).take(conv.outputs).enumerate() {
            // SAFETY: these points belong to this band alone, and this is their only reference.
            let out = unsafe { out.part(channel, 0, start..end) };
            out.copy_from_slice(&sums[..end - start]);
        }
    }
}
