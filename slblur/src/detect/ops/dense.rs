//! CenterFace's dense 3×3 convolutions (the first layer, 3 to 32 channels at stride 2, and one of
//! 24 channels in the head), with the ReLU after each, as one tract op of our own.
//!
//! tract runs them with a direct kernel that computes the points at the edge of each row one at
//! a time: the two took 6.0 ms of a 32.5 ms inference on one thread of a Zen 5 (133 M
//! multiply-adds, 22 G/s). Here each input row is laid out as the depthwise op lays it out
//! ([`super::depthwise::Layout`]), so that each of the nine taps of each input channel reads
//! contiguous values, and the convolution is the register-blocked product of
//! [`super::pointwise`] over those `9 × inputs` rows, read in place. Output rows are computed in
//! bands, one per thread ([`super::bands`]).
//!
//! The sums run over the taps in another order than tract's, so the outputs differ from tract's
//! in the last bits; the tests bound the difference. In an int8 plan the first layer, which reads
//! the pixels, runs the same taps through [`super::int8`]'s kernels ([`Dense3x3::on_pixels`]):
//! 0.6 ms less of an 18.5 ms int8 inference on one Zen 4 thread.

use std::ops::Range;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::bands::{Geometry, Output, in_bands};
use super::depthwise::{Layout, Window, constants, kernel_rows};
use super::int8::{Activation, Dots, GROUP, Quantized, product, quantize};
use super::lanes::{Isa, Kernels, LANES, Lanes, Portable};
use super::pointwise::{BLOCK, Pointwise, pointwise};

/// A dense 3×3 convolution, channels first, on `f32`, optionally followed by a ReLU.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense3x3 {
    window: Window,
    inputs: usize,
    /// `[outputs, inputs × 9]` weights: each input channel's taps, row-major.
    conv: Pointwise,
    /// Whether the output has a batch axis (of one) before its channels, as the input may.
    batch: bool,
    /// The vectors its kernel uses.
    pub(in crate::detect) isa: Isa,
}

impl Eq for Dense3x3 {}

impl Dense3x3 {
    /// The op for a `Conv` node of `model`, when it is one this op computes: a [`Window`] with
    /// one group and output channels in blocks of [`BLOCK`].
    fn for_conv(model: &TypedModel, node: &TypedNode, isa: Isa) -> TractResult<Option<Self>> {
        let Some((window, conv)) = Window::of_conv(model, node, |_| 1)? else {
            return Ok(None);
        };
        let (inputs, outputs) = (
            conv.pool_spec.input_channels,
            conv.pool_spec.output_channels,
        );
        if outputs % BLOCK != 0 {
            return Ok(None);
        }
        let Some((kernel, bias)) = constants(model, node, outputs * inputs * 9, outputs)? else {
            return Ok(None);
        };
        let batch = model.outlet_fact(OutletId::new(node.id, 0))?.rank() == 4;
        Ok(Some(Dense3x3 {
            window,
            inputs,
            conv: Pointwise::new(&kernel, bias, false),
            batch,
            isa,
        }))
    }

    fn output_shape(&self, height: usize, width: usize) -> TVec<usize> {
        super::output_shape(self.batch, self.conv.outputs, height, width)
    }

    pub(super) fn inputs(&self) -> usize {
        self.inputs
    }

    pub(super) fn outputs(&self) -> usize {
        self.conv.outputs
    }

    pub(super) fn window(&self) -> &Window {
        &self.window
    }

    /// The geometry of a `height`×`width` input, and the output's height.
    pub(super) fn geometry(&self, height: usize, width: usize) -> TractResult<(Geometry, usize)> {
        let (out_height, out_width) = self.window.output_size(height, width)?;
        let layout = Layout::new(
            self.window.stride,
            width,
            out_width,
            self.window.pad_columns,
        );
        let geometry = Geometry {
            height,
            width,
            out_width,
            layout,
        };
        Ok((geometry, out_height))
    }

    /// Output row `y`, all channels, into `out` (rows `out_stride` apart, each written for
    /// `out_width` rounded up to whole vectors), from `input` of `g`'s geometry; `rows` keeps the
    /// laid-out input rows from one output row to the next.
    #[inline(always)]
    pub(super) fn row<V: Lanes>(
        &self,
        g: &Geometry,
        input: &[f32],
        y: usize,
        rows: &mut Rows,
        out: &mut [f32],
        out_stride: usize,
    ) {
        let taps = rows.taps(self, g, input, y, 0);
        let points = g.out_width.next_multiple_of(LANES);
        if V::MANY_REGISTERS {
            // Three vectors by eight channels: 24 of the 32 registers accumulate.
            pointwise::<V, 3, 2, [&[f32]]>(&self.conv, &taps, points, out, out_stride);
        } else {
            // One (AVX2: two 256-bit vectors) by four channels: eight of 16 registers.
            pointwise::<V, 1, 1, [&[f32]]>(&self.conv, &taps, points, out, out_stride);
        }
    }

    /// This convolution in int8 ([`super::int8`]) when its input is the network's: pixels,
    /// whole values in 0..=255, which a scale of 1 and a zero point of 0 quantise exactly. Its
    /// `9 × inputs` taps are padded with zeros to whole groups.
    pub(super) fn on_pixels(&self) -> Option<Quantized> {
        let taps = 9 * self.inputs;
        let padded = taps.next_multiple_of(GROUP);
        let mut weights = vec![0.0; self.conv.outputs * padded];
        for (padded, row) in weights
            .chunks_exact_mut(padded)
            .zip(self.conv.weights().chunks_exact(taps))
        {
            padded[..taps].copy_from_slice(row);
        }
        let pixels = Activation {
            scale: 1.0,
            zero: 0,
        };
        Quantized::new(
            &weights,
            self.conv.bias.clone(),
            self.conv.relu,
            &vec![pixels; padded],
        )
    }

    /// [`Dense3x3::row`] in int8, with `conv` from [`Dense3x3::on_pixels`]; `quantized` holds
    /// the quantised taps.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn row_int8<D: Dots, const SPAN: usize>(
        &self,
        conv: &Quantized,
        g: &Geometry,
        input: &[f32],
        y: usize,
        rows: &mut Rows,
        quantized: &mut Vec<u8>,
        out: &mut [f32],
        out_stride: usize,
    ) {
        let padding = conv.inputs - 9 * self.inputs;
        let taps = rows.taps(self, g, input, y, padding);
        let points = g.out_width.next_multiple_of(LANES);
        let size = conv.inputs * points;
        if quantized.len() < size {
            quantized.resize(size, 0);
        }
        let quantized = &mut quantized[..size];
        quantize::<D, [&[f32]]>(conv, 0, &taps, points, quantized);
        product::<D, SPAN>(conv, quantized, points, out, out_stride);
    }
}

/// What [`Dense3x3::row`] keeps from one output row to the next: the laid-out input rows of the
/// last three kernel rows, all channels, in a ring; what a layout leaves as padding stays zero.
pub(super) struct Rows {
    ring: Vec<f32>,
    held: [Option<usize>; 3],
    zeros: Vec<f32>,
}

impl Rows {
    pub(super) fn new(op: &Dense3x3, g: &Geometry) -> Rows {
        let len = g.layout.len;
        Rows {
            ring: vec![0.0; 3 * op.inputs * len],
            held: [None; 3],
            zeros: vec![0.0; len],
        }
    }

    /// The rows output row `y` multiplies, after laying out the input rows it needs that the
    /// ring does not hold: each input channel's three kernel rows at their three taps' offsets,
    /// then `padding` rows of zeros.
    #[inline(always)]
    fn taps(
        &mut self,
        op: &Dense3x3,
        g: &Geometry,
        input: &[f32],
        y: usize,
        padding: usize,
    ) -> Vec<&[f32]> {
        let (layout, window) = (&g.layout, &op.window);
        let (inputs, len) = (op.inputs, layout.len);
        let kernel_rows = kernel_rows(window.stride, window.pad_rows[0], g.height, y);
        for r in kernel_rows.into_iter().flatten() {
            if self.held[r % 3] == Some(r) {
                continue;
            }
            let slot = &mut self.ring[(r % 3) * inputs * len..][..inputs * len];
            for (channel, laid) in slot.chunks_exact_mut(len).enumerate() {
                let row = &input[(channel * g.height + r) * g.width..][..g.width];
                layout.lay_out(row, laid);
            }
            self.held[r % 3] = Some(r);
        }
        let mut taps: Vec<&[f32]> = Vec::with_capacity(inputs * 9 + padding);
        for channel in 0..inputs {
            for r in kernel_rows {
                let laid = r.map_or(&self.zeros[..], |r| {
                    &self.ring[((r % 3) * inputs + channel) * len..][..len]
                });
                taps.extend(layout.reads.map(|read| &laid[read..]));
            }
        }
        taps.extend(std::iter::repeat_n(&self.zeros[..], padding));
        taps
    }
}

/// Replaces every convolution of `model` that [`Dense3x3`] computes, with the ReLU that follows
/// it when it is the convolution's only reader, by ops whose kernel uses `kernels`; returns how
/// many. Does nothing with the portable kernels, which a CPU without fused multiply-add gets.
pub fn rewrite(model: &mut TypedModel, kernels: Kernels) -> TractResult<usize> {
    let Some(isa) = kernels.fused() else {
        return Ok(0);
    };
    super::replace_convs(model, |model, node, relu| {
        let op = Dense3x3::for_conv(model, node, isa)?;
        Ok(op.map(|mut op| {
            op.conv.relu = relu;
            op
        }))
    })
}

impl Op for Dense3x3 {
    fn name(&self) -> StaticName {
        "Dense3x3".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let w = &self.window;
        Ok(vec![format!(
            "{}→{} channels, stride {}, padding rows {:?}, columns {:?}{}; {}",
            self.inputs,
            self.conv.outputs,
            w.stride,
            w.pad_rows,
            w.pad_columns,
            if self.conv.relu { ", then ReLU" } else { "" },
            self.isa,
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Dense3x3 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let (channels, height, width) = match *input.shape() {
            [1, c, h, w] | [c, h, w] => (c, h, w),
            ref shape => bail!("convolution input of shape {shape:?}"),
        };
        ensure!(
            channels == self.inputs,
            "convolution input of {channels} channels, expected {}",
            self.inputs
        );
        let (geometry, out_height) = self.geometry(height, width)?;
        let out_width = geometry.out_width;
        // SAFETY: the bands together store every row of every output channel before anything
        // reads them.
        let mut output =
            unsafe { Tensor::uninitialized::<f32>(&self.output_shape(out_height, out_width))? };
        let mut view = output.try_as_plain_ram_mut()?;
        let out = Output::new(view.as_slice_mut::<f32>()?, out_height, out_width);
        let input = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let kernel = band_kernel(self.isa);
        in_bands(out_height, |rows| {
            kernel(self, &geometry, input, rows, &out)
        });
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Dense3x3 {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let ((out_height, out_width), _) = self.window.output_plane(&inputs[0].shape)?;
        Ok(tvec!(f32::fact(self.output_shape(out_height, out_width))))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let points = self.output_facts(inputs)?[0].shape.volume();
        Ok(tvec!((
            Cost::FMA(f32::datum_type()),
            points * self.inputs * 9
        )))
    }
}

type BandKernel = fn(&Dense3x3, &Geometry, &[f32], Range<usize>, &Output);

/// The band kernel compiled for `isa`.
fn band_kernel(isa: Isa) -> BandKernel {
    match isa {
        // SAFETY: ops are built for an `Isa` this CPU has (a `Kernels`'s, or in tests one of
        // `Isa::available`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => |op, g, input, rows, out| unsafe { band_avx512(op, g, input, rows, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => |op, g, input, rows, out| unsafe { band_avx2(op, g, input, rows, out) },
        _ => band::<Portable>,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn band_avx512(op: &Dense3x3, g: &Geometry, input: &[f32], rows: Range<usize>, out: &Output) {
    band::<super::lanes::Avx512>(op, g, input, rows, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn band_avx2(op: &Dense3x3, g: &Geometry, input: &[f32], rows: Range<usize>, out: &Output) {
    band::<super::lanes::Avx2>(op, g, input, rows, out)
}

/// Output rows `rows`, all channels.
#[inline(always)]
fn band<V: Lanes>(op: &Dense3x3, g: &Geometry, input: &[f32], rows: Range<usize>, out: &Output) {
    let mut laid = Rows::new(op, g);
    let out_len = g.out_width.next_multiple_of(LANES);
    let mut sums = vec![0.0; op.conv.outputs * out_len];
    for y in rows {
        op.row::<V>(g, input, y, &mut laid, &mut sums, out_len);
        for (channel, sums) in sums.chunks_exact(out_len).enumerate() {
            // SAFETY: row `y` belongs to this band alone, and this is its only reference.
            let out = unsafe { out.row(channel, y) };
            out.copy_from_slice(&sums[..g.out_width]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ops::int8::IntIsa;
    use crate::detect::ops::testing::{self, run, values};
    use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::nn::DataFormat;

    /// One convolution over `[1, inputs, height, width]`, with a ReLU after it if `relu`.
    fn conv_model(
        (inputs, outputs): (usize, usize),
        (height, width): (usize, usize),
        stride: usize,
        pads: ([usize; 2], [usize; 2]),
        relu: bool,
    ) -> TypedModel {
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([1, inputs, height, width]))
            .expect("source");
        let weights =
            Tensor::from_shape(&[outputs, inputs, 3, 3], &values(outputs * inputs * 9, 1))
                .expect("weights");
        let bias = Tensor::from_shape(&[outputs], &values(outputs, 7)).expect("bias");
        let weights = model.add_const("w", weights).expect("w");
        let bias = model.add_const("b", bias).expect("b");
        let op = Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![3, 3],
                padding: PaddingSpec::Explicit(pads.0[..].into(), pads.1[..].into()),
                dilations: None,
                strides: Some(tvec![stride, stride]),
                input_channels: inputs,
                output_channels: outputs,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        let mut y = model
            .wire_node("conv", op, &[x, weights, bias])
            .expect("conv")[0];
        if relu {
            y = testing::relu(&mut model, "relu", y);
        }
        model.select_output_outlets(&[y]).expect("outputs");
        model
    }

    #[test]
    fn matches_tract_within_rounding_for_every_stride_padding_and_vector_width() {
        let cases = [
            ((3, 32), (12, 40), 2, ([1, 1], [1, 1]), true),
            ((3, 8), (9, 33), 2, ([1, 0], [0, 1]), false),
            ((24, 24), (6, 20), 1, ([1, 1], [1, 1]), true),
            ((5, 4), (7, 70), 1, ([0, 0], [0, 0]), false),
            ((2, 12), (3, 3), 1, ([2, 2], [1, 0]), true),
        ];
        for (channels, size, stride, pads, relu) in cases {
            let case = format!("{channels:?}, {size:?}, stride {stride}, {pads:?}");
            let model = conv_model(channels, size, stride, pads, relu);
            let x = Tensor::from_shape(
                &[1, channels.0, size.0, size.1],
                &values(channels.0 * size.0 * size.1, 11),
            )
            .expect("input");
            let tracts = run(model.clone(), &x, 1);
            for isa in Isa::available() {
                let mut ours = model.clone();
                let kernels = Kernels::available()
                    .into_iter()
                    .find(|k| k.isa() == isa)
                    .expect("kernels");
                let replaced = rewrite(&mut ours, kernels).expect("rewrite");
                if isa == Isa::Portable {
                    assert_eq!(replaced, 0, "{case}: tract's op without fused multiply-add");
                    continue;
                }
                assert_eq!(replaced, 1, "{case}");
                let names: Vec<_> = ours.nodes().iter().map(|n| n.op.name()).collect();
                assert!(
                    !names.iter().any(|n| n == "Conv" || n == "Max"),
                    "{names:?}"
                );
                for threads in [1, 2] {
                    let out = run(ours.clone(), &x, threads);
                    assert_eq!(out.len(), tracts.len(), "{case}");
                    // Each output sums up to 216 products of values below 1 in magnitude.
                    let worst = out
                        .iter()
                        .zip(&tracts)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f32::max);
                    assert!(worst <= 1e-5, "{case}, {isa}, {threads} thread(s): {worst}");
                    if relu {
                        assert!(out.iter().all(|&v| v >= 0.0), "{case}: ReLU");
                    }
                }
            }
        }
    }

    /// Every output row of `op` in int8 on `pixels` by the integer kernels `D`.
    fn int8_rows<D: Dots>(
        op: &Dense3x3,
        conv: &Quantized,
        pixels: &[f32],
        size: (usize, usize),
    ) -> Vec<f32> {
        let (g, out_height) = op.geometry(size.0, size.1).expect("geometry");
        let points = g.out_width.next_multiple_of(LANES);
        let (mut rows, mut quantized) = (Rows::new(op, &g), Vec::new());
        let mut out = vec![0.0; out_height * op.outputs() * points];
        for (y, out) in out.chunks_exact_mut(op.outputs() * points).enumerate() {
            op.row_int8::<D, 1>(conv, &g, pixels, y, &mut rows, &mut quantized, out, points);
        }
        out
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn int8_rows_vnni(
        op: &Dense3x3,
        conv: &Quantized,
        pixels: &[f32],
        size: (usize, usize),
    ) -> Vec<f32> {
        int8_rows::<crate::detect::ops::int8::Vnni>(op, conv, pixels, size)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn int8_rows_avx2(
        op: &Dense3x3,
        conv: &Quantized,
        pixels: &[f32],
        size: (usize, usize),
    ) -> Vec<f32> {
        int8_rows::<crate::detect::ops::int8::Avx2>(op, conv, pixels, size)
    }

    #[test]
    fn on_pixels_every_integer_kernel_gives_the_same_rows_within_the_weights_rounding() {
        let (size, channels) = ((9, 70), (3, 32));
        let mut model = conv_model(channels, size, 2, ([1, 1], [1, 1]), true);
        assert_eq!(rewrite(&mut model, Kernels::best()).expect("rewrite"), 1);
        let op = model
            .nodes()
            .iter()
            .find_map(|n| n.op_as::<Dense3x3>())
            .expect("dense op")
            .clone();
        let conv = op.on_pixels().expect("int8");
        assert_eq!(conv.inputs, 28, "27 taps and a zero");
        let pixels: Vec<f32> = (0..channels.0 * size.0 * size.1)
            .map(|i| (i * 7919 % 256) as f32)
            .collect();
        let ints = int8_rows::<crate::detect::ops::int8::Portable>(&op, &conv, &pixels, size);
        // The float rows, and each output channel's bound: the pixels are quantised exactly,
        // each weight is off by at most half its channel's step (largest / 63).
        let (g, out_height) = op.geometry(size.0, size.1).expect("geometry");
        let points = g.out_width.next_multiple_of(LANES);
        let mut rows = Rows::new(&op, &g);
        let weights = op.conv.weights();
        for y in 0..out_height {
            let mut floats = vec![0.0; op.outputs() * points];
            op.row::<Portable>(&g, &pixels, y, &mut rows, &mut floats, points);
            let taps = rows.taps(&op, &g, &pixels, y, 0);
            for (o, w) in weights.chunks_exact(27).enumerate() {
                let step = w.iter().fold(0f32, |m, w| m.max(w.abs())) / 63.0;
                for x in 0..g.out_width {
                    let bound: f32 = taps.iter().map(|t| t[x] * step / 2.0).sum();
                    let (int, float) = (
                        ints[(y * op.outputs() + o) * points + x],
                        floats[o * points + x],
                    );
                    assert!(
                        (int - float).abs() <= bound * 1.001 + 1e-3,
                        "{y}, {o}, {x}: {int} vs {float} (bound {bound})"
                    );
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        for isa in testing::integer_kernels() {
            // SAFETY: this CPU has the features (`IntIsa::for_isa`).
            let got = unsafe {
                match isa {
                    IntIsa::Vnni => int8_rows_vnni(&op, &conv, &pixels, size),
                    _ => int8_rows_avx2(&op, &conv, &pixels, size),
                }
            };
            assert!(got == ints, "{isa}: rows differ from the portable kernels'");
        }
    }

    #[test]
    fn leaves_other_convolutions_to_tract() {
        let mut odd = conv_model((3, 6), (8, 8), 1, ([1, 1], [1, 1]), true);
        assert_eq!(rewrite(&mut odd, Kernels::best()).expect("rewrite"), 0);
        let mut strided = conv_model((3, 8), (8, 8), 3, ([1, 1], [1, 1]), true);
        assert_eq!(rewrite(&mut strided, Kernels::best()).expect("rewrite"), 0);
    }
}
