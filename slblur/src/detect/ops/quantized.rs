//! The inverted-residual blocks' 1×1 convolutions that the fused blocks do not cover (the narrow
//! blocks'), with their bias and ReLU, as one int8 op each ([`super::int8`]), in place of tract's
//! float matrix product, for `SLBLUR_PRECISION=int8`.
//!
//! A 1×1 convolution treats the plane as one row of points. The input is quantised once, groups
//! of channels shared among the threads; then each thread multiplies blocks of output channels
//! over every point, straight into the output (its quantised input, at most a few hundred
//! kilobytes, stays in the L2 cache). Writing through a scratch of sums first cost about 1 ms of
//! a 16 ms int8 inference in copies.

use std::collections::HashMap;
use std::ops::Range;

use super::bands::in_row_bands;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::conv1x1::{InputRows, Matched, plane};
use super::depthwise::Depthwise3x3;
use super::int8::{
    Activation, BLOCK, Dots, GROUP, IntIsa, Portable, Quantized, product_blocks, quantize,
};
use super::pointwise::Strided;

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

/// Replaces every 1×1 convolution of `model` ([`Matched`]) whose input has a scale in `scales`
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
        let Some(matched) = Matched::at(model, id)? else {
            continue;
        };
        if !in_block(model, matched.input, matched.output) {
            continue;
        }
        let Some(conv) = Quantized::new(&matched.weights, matched.bias, matched.relu, activation)
        else {
            continue;
        };
        let op = Int8Pointwise {
            conv,
            batch: matched.batch,
            isa,
        };
        let name = node.name.clone();
        super::replace(model, matched.input, &name, op, matched.output)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// Whether a 1×1 convolution from `input` to `output` expands or projects an inverted-residual
/// block: its output goes to a depthwise op, or its input comes from one. The head's
/// convolutions stay in `f32`: they make the heatmap and boxes themselves, with no later layer
/// to average int8's rounding out.
fn in_block(model: &TypedModel, input: OutletId, output: OutletId) -> bool {
    let depthwise = |node: &TypedNode| node.op_is::<Depthwise3x3>();
    let successors = &model.node(output.node).outputs[output.slot].successors;
    depthwise(model.node(input.node)) || successors.iter().any(|s| depthwise(model.node(s.node)))
}

impl Int8Pointwise {
    fn output_shape(&self, height: usize, width: usize) -> TVec<usize> {
        super::output_shape(self.batch, self.conv.outputs, height, width)
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
        let conv = &self.conv;
        // Rows of whole vectors: the quantiser reads up to `len` points of each.
        let planes = InputRows::of(&input, conv.inputs)?;
        let (height, width, points, len) = (planes.height, planes.width, planes.points, planes.len);
        let rows = &planes.rows[..];
        let (quantize, product) = kernels(self.isa);
        let work = conv.inputs * conv.outputs * points;
        // The input quantised once, a group of channels per task...
        let mut quantized = vec![0u8; conv.inputs * len];
        in_row_bands(&mut quantized, GROUP * len, work, |group, chunk| {
            let first = group * GROUP;
            quantize(conv, first, &rows[first * len..], len, chunk);
            Ok(())
        })?;
        // ... then every output channel written in place, a block of channels per task.
        // SAFETY: every point of every output channel is stored before anything reads it.
        let mut output =
            unsafe { Tensor::uninitialized::<f32>(&self.output_shape(height, width))? };
        let mut view = output.try_as_plain_ram_mut()?;
        in_row_bands(
            view.as_slice_mut::<f32>()?,
            BLOCK * points,
            work,
            |block, chunk| {
                let blocks = block..block + chunk.len() / (BLOCK * points);
                product(conv, blocks, &quantized, len, points, chunk);
                Ok(())
            },
        )?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Int8Pointwise {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (height, width) = plane(inputs[0])?;
        Ok(tvec!(f32::fact(self.output_shape(height, width))))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let points = self.output_facts(inputs)?[0].shape.volume() / self.conv.outputs;
        let products = points * self.conv.inputs * self.conv.outputs;
        Ok(tvec!((Cost::FMA(i32::datum_type()), products)))
    }
}

/// Quantises the groups of input channels that `out` holds, from channel `first` (the start of
/// the rows, `len` apart).
type QuantizeKernel = fn(&Quantized, usize, &[f32], usize, &mut [u8]);
/// The output channels of some blocks ([`super::int8::product_blocks`]).
type ProductKernel = fn(&Quantized, Range<usize>, &[u8], usize, usize, &mut [f32]);

/// The kernels compiled for `isa`.
fn kernels(isa: IntIsa) -> (QuantizeKernel, ProductKernel) {
    match isa {
        // SAFETY: ops are built for an `IntIsa` this CPU has (`IntIsa::for_isa` of a
        // `Kernels`'s).
        #[cfg(target_arch = "x86_64")]
        IntIsa::Vnni => (
            |conv, first, rows, len, out| unsafe { quantize_vnni(conv, first, rows, len, out) },
            |conv, blocks, values, len, points, out| unsafe {
                product_vnni(conv, blocks, values, len, points, out)
            },
        ),
        #[cfg(target_arch = "x86_64")]
        IntIsa::Avx2 => (
            |conv, first, rows, len, out| unsafe { quantize_avx2(conv, first, rows, len, out) },
            |conv, blocks, values, len, points, out| unsafe {
                product_avx2(conv, blocks, values, len, points, out)
            },
        ),
        _ => (
            |conv, first, rows, len, out| quantize_groups::<Portable>(conv, first, rows, len, out),
            |conv, blocks, values, len, points, out| {
                product_blocks::<Portable, 1>(conv, blocks, values, (len, points), out, points)
            },
        ),
    }
}

/// [`quantize`] of the groups `out` holds, channel `first` at the start of `rows`.
#[inline(always)]
fn quantize_groups<D: Dots>(
    conv: &Quantized,
    first: usize,
    rows: &[f32],
    len: usize,
    out: &mut [u8],
) {
    let rows = Strided {
        values: rows,
        stride: len,
    };
    quantize::<D, _>(conv, first, &rows, len, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn quantize_vnni(conv: &Quantized, first: usize, rows: &[f32], len: usize, out: &mut [u8]) {
    quantize_groups::<super::int8::Vnni>(conv, first, rows, len, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn product_vnni(
    conv: &Quantized,
    blocks: Range<usize>,
    values: &[u8],
    len: usize,
    points: usize,
    out: &mut [f32],
) {
    product_blocks::<super::int8::Vnni, 4>(conv, blocks, values, (len, points), out, points)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn quantize_avx2(conv: &Quantized, first: usize, rows: &[f32], len: usize, out: &mut [u8]) {
    quantize_groups::<super::int8::Avx2>(conv, first, rows, len, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn product_avx2(
    conv: &Quantized,
    blocks: Range<usize>,
    values: &[u8],
    len: usize,
    points: usize,
    out: &mut [f32],
) {
    product_blocks::<super::int8::Avx2, 1>(conv, blocks, values, (len, points), out, points)
}
