//! The 1×1 convolutions that the fused blocks do not cover (the narrow blocks', the feature
//! pyramid's and the head's), with their bias and ReLU, as one op each in place of tract's matrix
//! product; and what it shares with the int8 one ([`super::quantized`]): finding such a
//! convolution ([`Matched`]) and reading its input ([`InputRows`]).
//!
//! tract packs each one's input into panels before multiplying: at 640×384 the packing alone
//! took 1.4 ms of a 25 ms inference on one thread of a Zen 5. Here the plane is one row of points
//! per channel, read in place by [`super::pointwise`]'s register-blocked product, and the output
//! is written in place. Each thread takes some blocks of output channels; it runs them over a
//! chunk of points at a time, so the chunk's input stays in the L2 cache while every block reads
//! it.
//!
//! The sums are tract's, in tract's order (inputs in order with fused multiply-adds from zero,
//! then the bias, then the ReLU), so the outputs are identical to tract's own, which the tests
//! check exactly. As for the blocks, that holds where tract's matrix kernels fuse their
//! multiply-adds, so the rewrite happens only on such CPUs.

use super::bands::in_row_bands;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::bottleneck::{biased, pointwise_weights};
use super::depthwise::{relu_after, sole_reader};
use super::lanes::{Isa, Kernels, LANES, Lanes};
use super::pointwise::{BLOCK, Pointwise, Strided, pointwise_blocks};

/// Points multiplied by all of a thread's blocks before the next: a chunk of up to 960 input
/// channels is at most 369 kB, within a Zen 5's 1 MB L2 cache. Two steps of three vectors.
const CHUNK: usize = 96;

/// A 1×1 convolution over a channels-first tensor, with its bias and optional ReLU.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv1x1 {
    /// The weights, with rows of zeros up to whole [`BLOCK`]s.
    conv: Pointwise,
    /// The output channels, without those rows.
    outputs: usize,
    /// Whether the output has a batch axis (of one) before its channels, as the input may.
    batch: bool,
    /// The vectors its kernel uses.
    pub(in crate::detect) isa: Isa,
}

impl Eq for Conv1x1 {}

/// Replaces every 1×1 convolution of `model` ([`Matched`]) by a [`Conv1x1`] using `kernels`;
/// returns how many. Output channels not in whole [`BLOCK`]s (the head's 2 and 10) are computed
/// with rows of zeros up to whole blocks. Does nothing with the portable kernels, which a CPU
/// without fused multiply-add gets.
pub fn rewrite(model: &mut TypedModel, kernels: Kernels) -> TractResult<usize> {
    let Some(isa) = kernels.fused() else {
        return Ok(0);
    };
    let mut replaced = 0;
    for id in model.eval_order()? {
        let Some(matched) = Matched::at(model, id)? else {
            continue;
        };
        let outputs = matched.bias.len();
        let (weights, bias) = in_blocks(matched.weights, matched.bias);
        let op = Conv1x1 {
            conv: Pointwise::new(&weights, bias, matched.relu),
            outputs,
            batch: matched.batch,
            isa,
        };
        let name = model.node(id).name.clone();
        super::replace(model, matched.input, &name, op, matched.output)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// A 1×1 convolution as tract declutters one: an `EinSum` with constant `[outputs, inputs]`
/// weights, the bias sum after it, and the ReLU after that when there is one.
pub(super) struct Matched {
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub relu: bool,
    pub input: OutletId,
    /// The sum's outlet, or the ReLU's.
    pub output: OutletId,
    /// Whether the output has a batch axis (of one) before its channels.
    pub batch: bool,
}

impl Matched {
    /// The convolution whose product is node `id`, if it is one.
    pub(super) fn at(model: &TypedModel, id: usize) -> TractResult<Option<Matched>> {
        let Some((weights, input)) = pointwise_weights(model, model.node(id))? else {
            return Ok(None);
        };
        let Some(sum) = sole_reader(model, OutletId::new(id, 0)) else {
            return Ok(None);
        };
        let Some((_, bias)) = biased(model, sum)? else {
            return Ok(None);
        };
        let relu = relu_after(model, sum.id)?;
        let output = OutletId::new(relu.unwrap_or(sum.id), 0);
        let batch = model.outlet_fact(output)?.rank() == 4;
        Ok(Some(Matched {
            weights,
            bias,
            relu: relu.is_some(),
            input,
            output,
            batch,
        }))
    }
}

/// The height and width of a 1×1 convolution's input.
pub(super) fn plane(input: &TypedFact) -> TractResult<(usize, usize)> {
    let (shape, rank) = (&input.shape, input.rank());
    ensure!(rank >= 3, "1×1 convolution input of rank {rank}");
    Ok((shape[rank - 2].to_usize()?, shape[rank - 1].to_usize()?))
}

/// A 1×1 convolution's input of `inputs` channels, checked, as rows of whole vectors.
pub(super) struct InputRows<'a> {
    pub height: usize,
    pub width: usize,
    /// Points per channel.
    pub points: usize,
    /// `points` rounded up to whole vectors: the length of each of `rows`.
    pub len: usize,
    /// The input, each channel's points followed by zeros up to `len` when `len` is more.
    pub rows: std::borrow::Cow<'a, [f32]>,
}

impl InputRows<'_> {
    pub(super) fn of(input: &Tensor, inputs: usize) -> TractResult<InputRows<'_>> {
        let (channels, height, width) = match *input.shape() {
            [1, c, h, w] | [c, h, w] => (c, h, w),
            ref shape => bail!("1×1 convolution input of shape {shape:?}"),
        };
        ensure!(
            channels == inputs,
            "1×1 convolution input of {channels} channels, expected {inputs}"
        );
        let points = height * width;
        let len = points.next_multiple_of(LANES);
        let input = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let rows = if len == points {
            input.into()
        } else {
            pad_rows(input, points, len).into()
        };
        Ok(InputRows {
            height,
            width,
            points,
            len,
            rows,
        })
    }
}

/// `[outputs, inputs]` weights and their bias with rows of zeros up to whole [`BLOCK`]s.
fn in_blocks(mut weights: Vec<f32>, mut bias: Vec<f32>) -> (Vec<f32>, Vec<f32>) {
    let inputs = weights.len() / bias.len();
    let outputs = bias.len().next_multiple_of(BLOCK);
    weights.resize(outputs * inputs, 0.0);
    bias.resize(outputs, 0.0);
    (weights, bias)
}

/// Each `points`-long row of `input` in a row `len` long, zeros after it.
fn pad_rows(input: &[f32], points: usize, len: usize) -> Vec<f32> {
    let mut padded = vec![0.0; input.len() / points * len];
    for (row, values) in padded.chunks_exact_mut(len).zip(input.chunks_exact(points)) {
        row[..points].copy_from_slice(values);
    }
    padded
}

impl Conv1x1 {
    fn output_shape(&self, height: usize, width: usize) -> TVec<usize> {
        super::output_shape(self.batch, self.outputs, height, width)
    }
}

impl Op for Conv1x1 {
    fn name(&self) -> StaticName {
        "Conv1x1".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}→{} channels{}; {}",
            self.conv.inputs,
            self.outputs,
            if self.conv.relu { ", then ReLU" } else { "" },
            self.isa,
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Conv1x1 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let conv = &self.conv;
        let planes = InputRows::of(&input, conv.inputs)?;
        let (height, width, points, len) = (planes.height, planes.width, planes.points, planes.len);
        // Rows of whole vectors, in and out: the product reads and writes `len` points.
        let rows = Strided {
            values: &planes.rows,
            stride: len,
        };
        // SAFETY: every point of every output channel is stored before anything reads it.
        let mut output =
            unsafe { Tensor::uninitialized::<f32>(&self.output_shape(height, width))? };
        let mut view = output.try_as_plain_ram_mut()?;
        let out = view.as_slice_mut::<f32>()?;
        let kernel = kernel(self.isa);
        let work = conv.inputs * conv.outputs * points;
        let run = |out: &mut [f32]| {
            in_row_bands(out, BLOCK * len, work, |block, chunk| {
                kernel(conv, block, &rows, len, chunk);
                Ok(())
            })
        };
        if len == points && conv.outputs == self.outputs {
            run(out)?;
        } else {
            let mut sums = vec![0.0; conv.outputs * len];
            run(&mut sums)?;
            for (out, sums) in out.chunks_exact_mut(points).zip(sums.chunks_exact(len)) {
                out.copy_from_slice(&sums[..points]);
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Conv1x1 {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (height, width) = plane(inputs[0])?;
        Ok(tvec!(f32::fact(self.output_shape(height, width))))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let points = self.output_facts(inputs)?[0].shape.volume() / self.outputs;
        let products = points * self.conv.inputs * self.conv.outputs;
        Ok(tvec!((Cost::FMA(f32::datum_type()), products)))
    }
}

/// Computes the output channels that `out` holds, from block `first` on, at every point of
/// `input`'s rows (`len` long, as `out`'s are).
type Kernel = fn(&Pointwise, usize, &Strided, usize, &mut [f32]);

/// The kernel compiled for `isa`.
fn kernel(isa: Isa) -> Kernel {
    match isa {
        // SAFETY: ops are built for an `Isa` this CPU has (a `Kernels`'s, or in tests one of
        // `Isa::available`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            |conv, first, input, len, out| unsafe { blocks_avx512(conv, first, input, len, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            |conv, first, input, len, out| unsafe { blocks_avx2(conv, first, input, len, out) }
        }
        _ => blocks::<super::lanes::Portable, 1, 1>,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn blocks_avx512(conv: &Pointwise, first: usize, input: &Strided, len: usize, out: &mut [f32]) {
    // Three vectors by eight channels: 24 of the 32 registers accumulate.
    blocks::<super::lanes::Avx512, 3, 2>(conv, first, input, len, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn blocks_avx2(conv: &Pointwise, first: usize, input: &Strided, len: usize, out: &mut [f32]) {
    // Two 256-bit vectors by four channels: eight of the 16 registers accumulate.
    blocks::<super::lanes::Avx2, 1, 1>(conv, first, input, len, out)
}

/// The blocks `out` holds from block `first` on, [`CHUNK`] points at a time.
#[inline(always)]
fn blocks<V: Lanes, const SPAN: usize, const PAIR: usize>(
    conv: &Pointwise,
    first: usize,
    input: &Strided,
    len: usize,
    out: &mut [f32],
) {
    let blocks = first..first + out.len() / (BLOCK * len);
    for x in (0..len).step_by(CHUNK) {
        let xs = x..(x + CHUNK).min(len);
        pointwise_blocks::<V, SPAN, PAIR, _>(conv, blocks.clone(), input, xs, out, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ops::testing::{self, conv, run, values};

    /// One 1×1 convolution over `[1, inputs, height, width]`, with a ReLU after it if `relu`.
    fn conv_model(
        channels: (usize, usize),
        (height, width): (usize, usize),
        relu: bool,
    ) -> TypedModel {
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([1, channels.0, height, width]))
            .expect("source");
        let mut y = conv(&mut model, "conv", x, channels, 1, 1);
        if relu {
            y = testing::relu(&mut model, "relu", y);
        }
        model.select_output_outlets(&[y]).expect("outputs");
        model.into_decluttered().expect("declutter")
    }

    #[test]
    fn matches_tract_exactly_with_every_vector_width_and_thread_count() {
        // InputRows of whole vectors and not, wider than a chunk, one block and many.
        let cases = [
            ((96, 24), (24, 40), true),
            ((24, 96), (12, 20), false),
            ((7, 4), (5, 9), true),
            ((40, 8), (3, 150), false),
            // Output channels not in whole blocks, as the head's.
            ((24, 10), (6, 20), false),
            ((8, 6), (4, 16), true),
        ];
        for (channels, size, relu) in cases {
            let model = conv_model(channels, size, relu);
            let x = Tensor::from_shape(
                &[1, channels.0, size.0, size.1],
                &values(channels.0 * size.0 * size.1, 11),
            )
            .expect("input");
            for kernels in Kernels::available() {
                let mut ours = model.clone();
                let replaced = rewrite(&mut ours, kernels).expect("rewrite");
                let case = format!("{channels:?}, {size:?}, relu {relu}, {kernels:?}");
                if kernels.isa() == Isa::Portable {
                    assert_eq!(replaced, 0, "{case}: tract's op without fused multiply-add");
                    continue;
                }
                assert_eq!(replaced, 1, "{case}");
                for threads in [1, 2] {
                    let (ours, tracts) = (
                        run(ours.clone(), &x, threads),
                        run(model.clone(), &x, threads),
                    );
                    assert_eq!(ours.len(), tracts.len(), "{case}");
                    let differ = ours.iter().zip(&tracts).filter(|(a, b)| a != b).count();
                    assert_eq!(differ, 0, "{case}, {threads} thread(s): values differ");
                }
            }
        }
    }
}
