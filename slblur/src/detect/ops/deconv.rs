//! The feature pyramid's 2×2, stride-2 transposed convolutions, with what follows each one in
//! CenterFace (a batch normalisation, a ReLU, and the sum with the lateral branch), as one op.
//!
//! tract multiplies the input into four planes per output channel, one per kernel tap, packing
//! the input first, then scatters the planes into the output in a pass of its own, and applies
//! the normalisation, the ReLU and the sum in a third: at 640×384, 1.1 ms of an 18 ms inference
//! on one thread of a Zen 5, for products worth a tenth of that. Here each output channel's four
//! tap planes are multiplied a chunk of points at a time into a buffer in the L1 cache, then
//! written straight to their places in the output with the rest applied on the way.
//!
//! Taps never overlap (kernel and stride both 2), so each output point is one product, summed
//! as tract sums it (inputs in order with fused multiply-adds from zero, then the bias), and the
//! steps after it are tract's, one rounding each. The outputs are identical to tract's, which the
//! tests check exactly; as for the 1×1 convolutions, that holds where tract's matrix kernels fuse
//! their multiply-adds, so the rewrite happens only on such CPUs.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Deconv, PaddingSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::bands::in_row_bands;
use super::bottleneck::per_channel;
use super::conv1x1::InputRows;
use super::depthwise::{relu_input, sole_reader};
use super::lanes::{Isa, Kernels, Lanes};
use super::pointwise::{BLOCK, Pointwise, Strided, pointwise_blocks};

/// Points of one input plane multiplied before they are written out: the four tap rows of
/// [`CHUNK`] points are 1.5 kB, and the chunk's input at most 24 × 384 bytes.
const CHUNK: usize = 96;

/// A 2×2 transposed convolution with stride 2, then optionally a per-channel scale, a
/// per-channel shift, a ReLU and the sum with a second input of the output's shape, in that
/// order.
#[derive(Debug, Clone, PartialEq)]
pub struct Deconv2x2 {
    /// The products, a [`BLOCK`] per output channel: its taps `(0, 0), (0, 1), (1, 0), (1, 1)`,
    /// each with the channel's bias.
    taps: Pointwise,
    scale: Option<Vec<f32>>,
    shift: Option<Vec<f32>>,
    relu: bool,
    /// Whether the op reads a second input to add.
    lateral: bool,
    /// The vectors its kernel uses.
    pub(in crate::detect) isa: Isa,
}

impl Eq for Deconv2x2 {}

/// Replaces every 2×2 stride-2 transposed convolution of `model` (with what follows it, as
/// [`Deconv2x2`] computes it) by one using `kernels`; returns how many. Does nothing with the
/// portable kernels, which a CPU without fused multiply-add gets.
pub fn rewrite(model: &mut TypedModel, kernels: Kernels) -> TractResult<usize> {
    let Some(isa) = kernels.fused() else {
        return Ok(0);
    };
    let mut replaced = 0;
    for id in model.eval_order()? {
        let Some(taps) = taps(model, model.node(id))? else {
            continue;
        };
        let mut op = Deconv2x2 {
            taps,
            scale: None,
            shift: None,
            relu: false,
            lateral: false,
            isa,
        };
        let (input, name) = (model.node(id).inputs[0], model.node(id).name.clone());
        let (output, lateral) = op.take_what_follows(model, OutletId::new(id, 0))?;
        let mut patch = TypedModelPatch::default();
        let mut inputs = vec![patch.tap_model(model, input)?];
        if let Some(other) = lateral {
            inputs.push(patch.tap_model(model, other)?);
        }
        let wired = patch.wire_node(name, op, &inputs)?[0];
        patch.shunt_outside(model, output, wired)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// When `node` is a transposed convolution this op computes (2×2, stride 2, no padding,
/// dilation or output adjustment, one group, channels first, constant `f32` weights and bias):
/// its products, a block of taps per output channel.
fn taps(model: &TypedModel, node: &TypedNode) -> TractResult<Option<Pointwise>> {
    let Some(deconv) = node.op_as::<Deconv>() else {
        return Ok(None);
    };
    let spec = &deconv.pool_spec;
    let unpadded = match &spec.padding {
        PaddingSpec::Valid => true,
        PaddingSpec::Explicit(before, after) => before.iter().chain(after).all(|&p| p == 0),
        _ => false,
    };
    let fits = spec.kernel_shape.as_slice() == [2, 2]
        && spec.strides().as_ref() == [2, 2]
        && spec.dilations().as_ref() == [1, 1]
        && unpadded
        && deconv.adjustments.iter().all(|&a| a == 0)
        && deconv.group == 1
        && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        && node.inputs.len() == 3
        && model.outlet_fact(node.inputs[0])?.datum_type == f32::datum_type();
    let constant = |i: usize| -> TractResult<Option<Arc<Tensor>>> {
        let fact = model.outlet_fact(node.inputs[i])?;
        Ok(fact
            .konst
            .clone()
            .filter(|k| k.datum_type() == f32::datum_type()))
    };
    let (Some(kernel), Some(bias)) = (constant(1)?, constant(2)?) else {
        return Ok(None);
    };
    let (inputs, outputs) = (spec.input_channels, spec.output_channels);
    let bias_fits = matches!(bias.len(), 0 | 1) || bias.len() == outputs;
    if !fits || kernel.len() != inputs * outputs * 4 || !bias_fits {
        return Ok(None);
    }
    // `[group, outputs, inputs, taps]`, taps row-major.
    let kernel = deconv.kernel_format.kernel_as_group_o_i_hw(&kernel, 1)?;
    let kernel = kernel.try_as_plain_ram()?;
    let kernel = kernel.as_slice::<f32>()?;
    let bias = bias.try_as_plain_ram()?;
    let bias = bias.as_slice::<f32>()?;
    let mut weights = Vec::with_capacity(kernel.len());
    let mut biases = Vec::with_capacity(outputs * BLOCK);
    for o in 0..outputs {
        for tap in 0..BLOCK {
            weights.extend((0..inputs).map(|i| kernel[(o * inputs + i) * BLOCK + tap]));
            biases.push(bias.get(o % bias.len().max(1)).copied().unwrap_or(0.0));
        }
    }
    Ok(Some(Pointwise::new(&weights, biases, false)))
}

/// When the sole reader of `outlet` is `op` (`Mul` or `Add`) with a constant per-channel
/// operand of `channels` values: its outlet, and those values.
fn affine(
    model: &TypedModel,
    outlet: OutletId,
    op: &str,
    channels: usize,
) -> TractResult<Option<(OutletId, Vec<f32>)>> {
    let Some(next) = sole_reader(model, outlet) else {
        return Ok(None);
    };
    Ok(match per_channel(model, next, op)? {
        Some((input, values)) if input == outlet && values.len() == channels => {
            Some((OutletId::new(next.id, 0), values))
        }
        _ => None,
    })
}

/// When the sole reader of `outlet` adds another tensor of the same shape to it: its outlet,
/// and that tensor.
fn sum(model: &TypedModel, outlet: OutletId) -> TractResult<Option<(OutletId, OutletId)>> {
    let Some(next) = sole_reader(model, outlet) else {
        return Ok(None);
    };
    if next.op.name() != "Add" || next.inputs.len() != 2 {
        return Ok(None);
    }
    let other = if next.inputs[0] == outlet {
        next.inputs[1]
    } else {
        next.inputs[0]
    };
    let (ours, theirs) = (model.outlet_fact(outlet)?, model.outlet_fact(other)?);
    let same = ours.shape == theirs.shape && theirs.datum_type == f32::datum_type();
    Ok(same.then_some((OutletId::new(next.id, 0), other)))
}

impl Deconv2x2 {
    fn channels(&self) -> usize {
        self.taps.outputs / BLOCK
    }

    /// Takes in the scale, shift, ReLU and sum that follow the convolution's `output`, each
    /// when it is there and the previous step's only reader; returns the last outlet taken in,
    /// and the sum's other input.
    fn take_what_follows(
        &mut self,
        model: &TypedModel,
        mut output: OutletId,
    ) -> TractResult<(OutletId, Option<OutletId>)> {
        let channels = self.channels();
        if let Some((next, scale)) = affine(model, output, "Mul", channels)? {
            (output, self.scale) = (next, Some(scale));
        }
        if let Some((next, shift)) = affine(model, output, "Add", channels)? {
            (output, self.shift) = (next, Some(shift));
        }
        if let Some(next) = sole_reader(model, output)
            && relu_input(model, next)? == Some(output)
        {
            (output, self.relu) = (OutletId::new(next.id, 0), true);
        }
        let Some((next, other)) = sum(model, output)? else {
            return Ok((output, None));
        };
        self.lateral = true;
        Ok((next, Some(other)))
    }
}

impl Op for Deconv2x2 {
    fn name(&self) -> StaticName {
        "Deconv2x2".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let then: Vec<&str> = [
            (self.scale.is_some(), "scale"),
            (self.shift.is_some(), "shift"),
            (self.relu, "ReLU"),
            (self.lateral, "lateral sum"),
        ]
        .into_iter()
        .filter_map(|(has, name)| has.then_some(name))
        .collect();
        Ok(vec![format!(
            "{}→{} channels, then {}; {}",
            self.taps.inputs,
            self.channels(),
            then.join(", "),
            self.isa,
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Deconv2x2 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let planes = InputRows::of(&inputs[0], self.taps.inputs)?;
        let (height, width, len) = (planes.height, planes.width, planes.len);
        let shape = self.output_shape(inputs[0].rank(), height, width);
        let lateral = match inputs.get(1) {
            Some(lateral) => {
                ensure!(
                    lateral.shape() == &*shape,
                    "lateral input of shape {:?}, expected {shape:?}",
                    lateral.shape()
                );
                Some(lateral.try_as_plain_ram()?.as_slice::<f32>()?)
            }
            None => None,
        };
        // SAFETY: every point of every output channel is stored before anything reads it.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        let mut view = output.try_as_plain_ram_mut()?;
        let out = view.as_slice_mut::<f32>()?;
        let rows = Strided {
            values: &planes.rows,
            stride: len,
        };
        let plane = 4 * height * width;
        let work = self.taps.inputs * self.taps.outputs * height * width;
        let kernel = kernel(self.isa);
        in_row_bands(out, plane, work, |first, planes| {
            for (i, out) in planes.chunks_exact_mut(plane).enumerate() {
                let channel = first + i;
                let task = Task {
                    input: &rows,
                    len,
                    channel,
                    width,
                    points: height * width,
                    lateral: lateral.map(|l| &l[channel * plane..][..plane]),
                };
                kernel(self, &task, out);
            }
            Ok(())
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl Deconv2x2 {
    fn output_shape(&self, rank: usize, height: usize, width: usize) -> TVec<usize> {
        super::output_shape(rank == 4, self.channels(), 2 * height, 2 * width)
    }
}

impl TypedOp for Deconv2x2 {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (height, width) = super::conv1x1::plane(inputs[0])?;
        let shape = self.output_shape(inputs[0].rank(), height, width);
        Ok(tvec!(f32::fact(shape)))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let (height, width) = super::conv1x1::plane(inputs[0])?;
        let products = height * width * self.taps.inputs * self.taps.outputs;
        Ok(tvec!((Cost::FMA(f32::datum_type()), products.into())))
    }
}

/// One output channel's plane to write: the input's rows (`len` long, `points` of them the
/// plane's, rows of `width`), the channel, and the lateral input's plane to add if any.
struct Task<'a> {
    input: &'a Strided<'a>,
    len: usize,
    channel: usize,
    width: usize,
    points: usize,
    lateral: Option<&'a [f32]>,
}

/// Writes a task's output plane.
type Kernel = fn(&Deconv2x2, &Task, &mut [f32]);

/// The kernel compiled for `isa`.
fn kernel(isa: Isa) -> Kernel {
    match isa {
        // SAFETY: ops are built for an `Isa` this CPU has (a `Kernels`'s, or in tests one of
        // `Isa::available`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => |op, task, out| unsafe { channel_avx512(op, task, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => |op, task, out| unsafe { channel_avx2(op, task, out) },
        _ => channel::<super::lanes::Portable>,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn channel_avx512(op: &Deconv2x2, task: &Task, out: &mut [f32]) {
    channel::<super::lanes::Avx512>(op, task, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn channel_avx2(op: &Deconv2x2, task: &Task, out: &mut [f32]) {
    channel::<super::lanes::Avx2>(op, task, out)
}

/// One output channel, [`CHUNK`] input points at a time: the four taps' products into a buffer,
/// then each point's four values to their places.
#[inline(always)]
fn channel<V: Lanes>(op: &Deconv2x2, task: &Task, out: &mut [f32]) {
    let Task {
        input,
        len,
        channel,
        width,
        points,
        lateral,
    } = *task;
    let mut taps = [0.0; BLOCK * CHUNK];
    let zeros = [0.0; 2 * CHUNK];
    let after = After {
        scale: op.scale.as_ref().map_or(1.0, |s| s[channel]),
        shift: op.shift.as_ref().map_or(0.0, |s| s[channel]),
    };
    for start in (0..len).step_by(CHUNK) {
        // The chunk's points from column 0 of `taps`.
        let chunk = Strided {
            values: &input.values[start..],
            stride: input.stride,
        };
        let end = (start + CHUNK).min(len);
        let blocks = channel..channel + 1;
        pointwise_blocks::<V, 3, 1, _>(&op.taps, blocks, &chunk, 0..end - start, &mut taps, CHUNK);
        let end = end.min(points);
        // Each input row's part in the chunk, written to two output rows.
        let mut p = start;
        while p < end {
            let (y, x) = (p / width, p % width);
            let run = (width - x).min(end - p);
            for dy in 0..2 {
                let row = (2 * y + dy) * 2 * width + 2 * x;
                let out = &mut out[row..][..2 * run];
                let even = &taps[2 * dy * CHUNK + p - start..][..run];
                let odd = &taps[(2 * dy + 1) * CHUNK + p - start..][..run];
                let lateral = &lateral.map_or(&zeros[..], |lateral| &lateral[row..])[..2 * run];
                match op.relu {
                    true => finish::<true>(&after, even, odd, lateral, out),
                    false => finish::<false>(&after, even, odd, lateral, out),
                }
            }
            p += run;
        }
    }
}

/// One output channel's scale and shift, one and zero when the op has none: multiplying by one
/// leaves every value as it is, and adding zero every value but a negative zero.
struct After {
    scale: f32,
    shift: f32,
}

/// Two output rows' worth of points, `out` interleaving the products `even` and `odd`: each
/// scaled, shifted, through the ReLU if `RELU`, then added to `lateral`'s (zeros when the op
/// has no lateral input: adding them changes no value but a negative zero's sign).
#[inline(always)]
fn finish<const RELU: bool>(
    after: &After,
    even: &[f32],
    odd: &[f32],
    lateral: &[f32],
    out: &mut [f32],
) {
    let value = |product: f32| {
        let value = product * after.scale + after.shift;
        if RELU { value.max(0.0) } else { value }
    };
    for (i, (&e, &o)) in even.iter().zip(odd).enumerate() {
        out[2 * i] = value(e) + lateral[2 * i];
        out[2 * i + 1] = value(o) + lateral[2 * i + 1];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ops::testing::{run_all, values};
    use tract_onnx::tract_core::ops::cnn::{KernelFormat, PoolSpec};
    use tract_onnx::tract_core::ops::math::{add, max, mul};

    /// What the test model does after the transposed convolution.
    #[derive(Debug, Clone, Copy)]
    struct Then {
        normalise: bool,
        relu: bool,
        lateral: bool,
    }

    /// A 2×2 stride-2 transposed convolution of `[1, inputs, height, width]` into `outputs`
    /// channels, then what `then` says; the lateral tensor is a second input.
    fn deconv_model(
        (inputs, outputs): (usize, usize),
        (height, width): (usize, usize),
        then: Then,
    ) -> TypedModel {
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([1, inputs, height, width]))
            .expect("source");
        let lateral = model
            .add_source("lateral", f32::fact([1, outputs, 2 * height, 2 * width]))
            .expect("source");
        let tensor = |shape: &[usize], seed: usize| {
            let len = shape.iter().product();
            Tensor::from_shape(shape, &values(len, seed)).expect("tensor")
        };
        let kernel = model
            .add_const("kernel", tensor(&[outputs, inputs, 2, 2], 3))
            .expect("kernel");
        let bias = model
            .add_const("bias", tensor(&[outputs], 5))
            .expect("bias");
        let deconv = Deconv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![2, 2],
                padding: PaddingSpec::Valid,
                dilations: None,
                strides: Some(tvec![2, 2]),
                input_channels: inputs,
                output_channels: outputs,
            },
            kernel_format: KernelFormat::OIHW,
            adjustments: tvec![0, 0],
            group: 1,
        };
        let mut y = model
            .wire_node("deconv", deconv, &[x, kernel, bias])
            .expect("deconv")[0];
        if then.normalise {
            let scale = model
                .add_const("scale", tensor(&[1, outputs, 1, 1], 7))
                .expect("scale");
            let shift = model
                .add_const("shift", tensor(&[1, outputs, 1, 1], 9))
                .expect("shift");
            y = model.wire_node("mul", mul(), &[y, scale]).expect("mul")[0];
            y = model.wire_node("add", add(), &[y, shift]).expect("add")[0];
        }
        if then.relu {
            let zero = Tensor::from_shape(&[1, 1, 1, 1], &[0f32]).expect("zero");
            let zero = model.add_const("zero", zero).expect("zero");
            y = model.wire_node("relu", max(), &[y, zero]).expect("relu")[0];
        }
        if then.lateral {
            y = model.wire_node("sum", add(), &[lateral, y]).expect("sum")[0];
        }
        model.select_output_outlets(&[y]).expect("outputs");
        model.into_decluttered().expect("declutter")
    }

    #[test]
    fn matches_tract_exactly_with_every_vector_width_and_thread_count() {
        let all = Then {
            normalise: true,
            relu: true,
            lateral: true,
        };
        let cases = [
            ((24, 24), (12, 20), all),
            ((24, 24), (6, 40), all),
            ((5, 3), (7, 9), all),
            (
                (8, 6),
                (3, 50),
                Then {
                    lateral: false,
                    ..all
                },
            ),
            (
                (16, 8),
                (4, 16),
                Then {
                    normalise: false,
                    relu: false,
                    lateral: false,
                },
            ),
        ];
        for (channels, (height, width), then) in cases {
            let model = deconv_model(channels, (height, width), then);
            let x = Tensor::from_shape(
                &[1, channels.0, height, width],
                &values(channels.0 * height * width, 11),
            )
            .expect("input");
            let lateral_len = channels.1 * 4 * height * width;
            let lateral = Tensor::from_shape(
                &[1, channels.1, 2 * height, 2 * width],
                &values(lateral_len, 13),
            )
            .expect("lateral");
            for kernels in Kernels::available() {
                let mut ours = model.clone();
                let replaced = rewrite(&mut ours, kernels).expect("rewrite");
                let case = format!("{channels:?}, {height}x{width}, {then:?}, {kernels:?}");
                if kernels.isa() == Isa::Portable {
                    assert_eq!(replaced, 0, "{case}: tract's op without fused multiply-add");
                    continue;
                }
                assert_eq!(replaced, 1, "{case}");
                let op = ours
                    .nodes()
                    .iter()
                    .find_map(|n| n.op_as::<Deconv2x2>())
                    .expect("the op");
                let took = (op.scale.is_some(), op.shift.is_some(), op.relu, op.lateral);
                let (n, r, l) = (then.normalise, then.relu, then.lateral);
                assert_eq!(took, (n, n, r, l), "{case}: what the op took in");
                for threads in [1, 2] {
                    let inputs = [x.clone(), lateral.clone()];
                    let (ours, tracts) = (
                        run_all(ours.clone(), &inputs, threads),
                        run_all(model.clone(), &inputs, threads),
                    );
                    assert_eq!(ours.len(), tracts.len(), "{case}");
                    let differ = ours.iter().zip(&tracts).filter(|(a, b)| a != b).count();
                    assert_eq!(differ, 0, "{case}, {threads} thread(s): values differ");
                }
            }
        }
    }
}
