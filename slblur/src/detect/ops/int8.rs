//! 1×1 convolutions in 8-bit integers (`SLBLUR_PRECISION=int8`): activations quantised to `u8`
//! per input channel, with a scale and zero point calibrated on real frames
//! ([`crate::detect::calibration`]); the channel's scale is folded into its weights, which are
//! quantised per output channel to 7-bit signed values; products are summed in `i32` and turned
//! back into `f32` with the bias (and ReLU) before the next op. MobileNet's channels differ in
//! range by orders of magnitude: a scale per channel gives the narrow ones their own resolution,
//! at no cost per product. The first layer's dense 3×3 convolution runs on the same kernels,
//! its 27 taps as the rows ([`super::dense::Dense3x3::on_pixels`]).
//!
//! Activations are laid out four input channels per point (`[channel / 4][point][4]`), so one
//! instruction multiplies sixteen points by four channels: `vpdpbusd` where the CPU has
//! AVX-512 VNNI, `vpmaddubsw` and `vpmaddwd` with AVX2. The weights keep to −63..63 so that the
//! AVX2 pair sums (at most 2 × 255 × 63 = 32 130) never saturate their 16 bits: every CPU then
//! computes the same integers, and the same outputs.

use std::ops::Range;

use super::lanes::{Isa, LANES};
use super::pointwise::Source;

/// Output channels a step computes together.
pub(super) const BLOCK: usize = 4;
/// Input channels one multiply covers per point.
pub(super) const GROUP: usize = 4;
/// The largest weight magnitude (7 bits; see the module's note).
const WEIGHT_MAX: f32 = 63.0;

/// How a channel's values are quantised: `q = round(x / scale + zero)`, clamped to 0..=255.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Activation {
    pub scale: f32,
    pub zero: u8,
}

impl Activation {
    /// For values seen between `min` and `max`: 0..=255 spans the range widened to include
    /// zero, so a ReLU's output gets a zero point of 0.
    pub fn for_range(min: f32, max: f32) -> Activation {
        let (min, max) = (min.min(0.0), max.max(0.0));
        let scale = ((max - min) / 255.0).max(f32::MIN_POSITIVE);
        Activation {
            scale,
            zero: (-min / scale).round().clamp(0.0, 255.0) as u8,
        }
    }
}

/// A 1×1 convolution's weights in 8 bits, with what turns its sums back into `f32`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Quantized {
    pub inputs: usize,
    pub outputs: usize,
    /// Per input channel: `1 / scale` and the zero point, to quantise with.
    inverses: Vec<f32>,
    zeros: Vec<f32>,
    /// `[block][group][BLOCK][GROUP]`: one step's weights for one group are adjacent.
    packed: Vec<i8>,
    /// Per output channel: `Σ zero × weight`, taken from the sums.
    corrections: Vec<i32>,
    /// Per output channel: the weights' scale (the inputs' are folded into the weights).
    scales: Vec<f32>,
    pub bias: Vec<f32>,
    pub relu: bool,
}

/// Whether a 1×1 convolution with `outputs` output channels has int8 kernels: whole
/// [`BLOCK`]s of them.
pub(in crate::detect) fn quantizable(outputs: usize) -> bool {
    outputs.is_multiple_of(BLOCK)
}

impl Quantized {
    /// From `[outputs, inputs]` weights and each input channel's quantisation; `outputs` a
    /// multiple of [`BLOCK`], `inputs` of [`GROUP`].
    pub fn new(
        weights: &[f32],
        bias: Vec<f32>,
        relu: bool,
        input: &[Activation],
    ) -> Option<Quantized> {
        let outputs = bias.len();
        let inputs = input.len();
        if !quantizable(outputs)
            || !inputs.is_multiple_of(GROUP)
            || inputs * outputs != weights.len()
        {
            return None;
        }
        let mut quantized = vec![0i8; weights.len()];
        let mut corrections = Vec::with_capacity(outputs);
        let mut scales = Vec::with_capacity(outputs);
        for (o, row) in weights.chunks_exact(inputs).enumerate() {
            // Each weight times its input's scale: the products of quantised inputs.
            let row: Vec<f32> = row.iter().zip(input).map(|(w, a)| w * a.scale).collect();
            let largest = row.iter().fold(0f32, |m, w| m.max(w.abs()));
            let scale = if largest > 0.0 {
                largest / WEIGHT_MAX
            } else {
                1.0
            };
            let q = &mut quantized[o * inputs..][..inputs];
            for (q, w) in q.iter_mut().zip(&row) {
                *q = (w / scale).round_ties_even() as i8;
            }
            let zeros = q.iter().zip(input);
            corrections.push(zeros.map(|(&w, a)| i32::from(w) * i32::from(a.zero)).sum());
            scales.push(scale);
        }
        let mut packed = Vec::with_capacity(weights.len());
        for block in 0..outputs / BLOCK {
            for group in 0..inputs / GROUP {
                for o in 0..BLOCK {
                    let row = (block * BLOCK + o) * inputs + group * GROUP;
                    packed.extend_from_slice(&quantized[row..][..GROUP]);
                }
            }
        }
        Some(Quantized {
            inputs,
            outputs,
            inverses: input.iter().map(|a| 1.0 / a.scale).collect(),
            zeros: input.iter().map(|a| f32::from(a.zero)).collect(),
            packed,
            corrections,
            scales,
            bias,
            relu,
        })
    }
}

/// Sixteen points' `i32` sums, and the multiply that adds four channels' products to them.
pub(super) trait Dots: Copy {
    /// Sixteen points' four channels: 64 bytes.
    type Values: Copy;
    /// Four weights, for every point.
    type Weights: Copy;
    fn zero() -> Self;
    fn load(values: &[u8]) -> Self::Values;
    fn weights(four: [i8; GROUP]) -> Self::Weights;
    /// `self[p] += Σ_j values[p][j] · weights[j]`.
    fn dot(self, values: Self::Values, weights: Self::Weights) -> Self;
    /// `(self − correction) · scale + bias`, then the ReLU if asked, into `out[..LANES]`.
    fn finish(self, correction: i32, scale: f32, bias: f32, relu: bool, out: &mut [f32]);
    /// [`quantize`]'s work for sixteen points of four channels, each with its `1 / scale` and
    /// zero point.
    fn quantize(rows: [&[f32]; GROUP], inverse: [f32; GROUP], zero: [f32; GROUP], out: &mut [u8]);
}

/// The sums without vectors: the reference the others match exactly.
#[derive(Clone, Copy)]
pub(super) struct Portable([i32; LANES]);

/// One value's quantisation, as every implementation computes it.
#[inline(always)]
fn quantize_one(x: f32, inverse: f32, zero: f32) -> u8 {
    (x * inverse + zero).clamp(0.0, 255.0).round_ties_even() as u8
}

impl Dots for Portable {
    type Values = [u8; LANES * GROUP];
    type Weights = [i8; GROUP];
    #[inline(always)]
    fn zero() -> Self {
        Portable([0; LANES])
    }
    #[inline(always)]
    fn load(values: &[u8]) -> Self::Values {
        values[..LANES * GROUP].try_into().expect("64 bytes")
    }
    #[inline(always)]
    fn weights(four: [i8; GROUP]) -> Self::Weights {
        four
    }
    #[inline(always)]
    fn dot(mut self, values: Self::Values, weights: Self::Weights) -> Self {
        for (sum, values) in self.0.iter_mut().zip(values.chunks_exact(GROUP)) {
            for (&v, &w) in values.iter().zip(&weights) {
                *sum += i32::from(v) * i32::from(w);
            }
        }
        self
    }
    #[inline(always)]
    fn finish(self, correction: i32, scale: f32, bias: f32, relu: bool, out: &mut [f32]) {
        for (out, sum) in out[..LANES].iter_mut().zip(self.0) {
            let value = (sum - correction) as f32 * scale + bias;
            *out = if relu { value.max(0.0) } else { value };
        }
    }
    #[inline(always)]
    fn quantize(rows: [&[f32]; GROUP], inverse: [f32; GROUP], zero: [f32; GROUP], out: &mut [u8]) {
        for (p, point) in out[..LANES * GROUP].chunks_exact_mut(GROUP).enumerate() {
            for (j, q) in point.iter_mut().enumerate() {
                *q = quantize_one(rows[j][p], inverse[j], zero[j]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use x86::{Avx2, Vnni};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Dots, GROUP, LANES};

    /// AVX-512 with VNNI: one `vpdpbusd` per sixteen points and four channels.
    #[derive(Clone, Copy)]
    pub struct Vnni(__m512i);

    /// Sixteen floats as sixteen quantised values in `i32` lanes.
    #[inline(always)]
    unsafe fn quantize_512(row: &[f32], inverse: __m512, zero: __m512) -> __m512i {
        let row = &row[..LANES];
        unsafe {
            let x = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(row.as_ptr()), inverse), zero);
            let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_setzero_ps()), _mm512_set1_ps(255.0));
            // Rounds to the nearest, ties to even (the default rounding mode), as
            // `round_ties_even` does.
            _mm512_cvtps_epi32(x)
        }
    }

    // SAFETY (both impls): slices are checked to hold what each unaligned load or store reads
    // or writes, and the methods run inside functions compiled for the target features
    // (AVX-512F, BW and VNNI; AVX2 and FMA), which the dispatchers choose only on CPUs that
    // have them.
    impl Dots for Vnni {
        type Values = __m512i;
        type Weights = __m512i;
        #[inline(always)]
        fn zero() -> Self {
            Vnni(unsafe { _mm512_setzero_si512() })
        }
        #[inline(always)]
        fn load(values: &[u8]) -> __m512i {
            let values = &values[..LANES * GROUP];
            unsafe { _mm512_loadu_si512(values.as_ptr().cast()) }
        }
        #[inline(always)]
        fn weights(four: [i8; GROUP]) -> __m512i {
            unsafe { _mm512_set1_epi32(i32::from_le_bytes(four.map(|w| w as u8))) }
        }
        #[inline(always)]
        fn dot(self, values: __m512i, weights: __m512i) -> Self {
            Vnni(unsafe { _mm512_dpbusd_epi32(self.0, values, weights) })
        }
        #[inline(always)]
        fn finish(self, correction: i32, scale: f32, bias: f32, relu: bool, out: &mut [f32]) {
            let out = &mut out[..LANES];
            unsafe {
                let sums = _mm512_sub_epi32(self.0, _mm512_set1_epi32(correction));
                let value = _mm512_mul_ps(_mm512_cvtepi32_ps(sums), _mm512_set1_ps(scale));
                let mut value = _mm512_add_ps(value, _mm512_set1_ps(bias));
                if relu {
                    value = _mm512_max_ps(value, _mm512_setzero_ps());
                }
                _mm512_storeu_ps(out.as_mut_ptr(), value);
            }
        }
        #[inline(always)]
        fn quantize(
            rows: [&[f32]; GROUP],
            inverse: [f32; GROUP],
            zero: [f32; GROUP],
            out: &mut [u8],
        ) {
            let out = &mut out[..LANES * GROUP];
            unsafe {
                // Channel j's value of point p goes to byte 4p + j.
                let mut points = _mm512_setzero_si512();
                for (j, row) in rows.into_iter().enumerate() {
                    let (inverse, zero) = (_mm512_set1_ps(inverse[j]), _mm512_set1_ps(zero[j]));
                    let q = quantize_512(row, inverse, zero);
                    let shifted = _mm512_sllv_epi32(q, _mm512_set1_epi32(8 * j as i32));
                    points = _mm512_or_si512(points, shifted);
                }
                _mm512_storeu_si512(out.as_mut_ptr().cast(), points);
            }
        }
    }

    /// AVX2: `vpmaddubsw` sums two channels' products in 16 bits, `vpmaddwd` the pairs in 32;
    /// two 256-bit halves per sixteen points.
    #[derive(Clone, Copy)]
    pub struct Avx2(__m256i, __m256i);

    impl Dots for Avx2 {
        type Values = (__m256i, __m256i);
        type Weights = __m256i;
        #[inline(always)]
        fn zero() -> Self {
            unsafe { Avx2(_mm256_setzero_si256(), _mm256_setzero_si256()) }
        }
        #[inline(always)]
        fn load(values: &[u8]) -> (__m256i, __m256i) {
            let values = &values[..LANES * GROUP];
            let p = values.as_ptr().cast::<__m256i>();
            unsafe { (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1))) }
        }
        #[inline(always)]
        fn weights(four: [i8; GROUP]) -> __m256i {
            unsafe { _mm256_set1_epi32(i32::from_le_bytes(four.map(|w| w as u8))) }
        }
        #[inline(always)]
        fn dot(self, values: (__m256i, __m256i), weights: __m256i) -> Self {
            unsafe {
                let ones = _mm256_set1_epi16(1);
                let half = |sums, values| {
                    let pairs = _mm256_maddubs_epi16(values, weights);
                    _mm256_add_epi32(sums, _mm256_madd_epi16(pairs, ones))
                };
                Avx2(half(self.0, values.0), half(self.1, values.1))
            }
        }
        #[inline(always)]
        fn finish(self, correction: i32, scale: f32, bias: f32, relu: bool, out: &mut [f32]) {
            let out = &mut out[..LANES];
            unsafe {
                let correction = _mm256_set1_epi32(correction);
                let (scale, bias) = (_mm256_set1_ps(scale), _mm256_set1_ps(bias));
                for (half, sums) in [self.0, self.1].into_iter().enumerate() {
                    let sums = _mm256_cvtepi32_ps(_mm256_sub_epi32(sums, correction));
                    let mut value = _mm256_add_ps(_mm256_mul_ps(sums, scale), bias);
                    if relu {
                        value = _mm256_max_ps(value, _mm256_setzero_ps());
                    }
                    _mm256_storeu_ps(out.as_mut_ptr().add(8 * half), value);
                }
            }
        }
        #[inline(always)]
        fn quantize(
            rows: [&[f32]; GROUP],
            inverse: [f32; GROUP],
            zero: [f32; GROUP],
            out: &mut [u8],
        ) {
            let out = &mut out[..LANES * GROUP];
            unsafe {
                let (low, high) = (_mm256_setzero_ps(), _mm256_set1_ps(255.0));
                for half in 0..2 {
                    let mut points = _mm256_setzero_si256();
                    for (j, row) in rows.into_iter().enumerate() {
                        let (inverse, zero) = (_mm256_set1_ps(inverse[j]), _mm256_set1_ps(zero[j]));
                        let row = &row[8 * half..][..8];
                        let x = _mm256_mul_ps(_mm256_loadu_ps(row.as_ptr()), inverse);
                        let x = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(x, zero), low), high);
                        let q = _mm256_cvtps_epi32(x);
                        let shifted = _mm256_sllv_epi32(q, _mm256_set1_epi32(8 * j as i32));
                        points = _mm256_or_si256(points, shifted);
                    }
                    let p = out.as_mut_ptr().add(32 * half).cast::<__m256i>();
                    _mm256_storeu_si256(p, points);
                }
            }
        }
    }
}

/// Which integer kernels this CPU runs for the float kernels `isa`: VNNI's when it has AVX-512
/// VNNI and BW, else AVX2's on any x86-64 with AVX2, else the portable ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IntIsa {
    Vnni,
    Avx2,
    Portable,
}

impl IntIsa {
    pub fn for_isa(isa: Isa) -> IntIsa {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512
                if std::arch::is_x86_feature_detected!("avx512vnni")
                    && std::arch::is_x86_feature_detected!("avx512bw") =>
            {
                IntIsa::Vnni
            }
            Isa::Avx512 | Isa::Avx2 => IntIsa::Avx2,
            Isa::Portable => IntIsa::Portable,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IntIsa::Vnni => "avx512-vnni",
            IntIsa::Avx2 => "avx2",
            IntIsa::Portable => "portable",
        }
    }
}

impl std::fmt::Display for IntIsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Quantises input channels `first..` of `conv` from `rows` (`rows.row(0)` is channel `first`;
/// each read at `0..len`, `len` a multiple of [`LANES`]) into `out`, laid out
/// `[group][point][GROUP]`, `len × GROUP` bytes per group, as many groups as `out` holds.
#[inline(always)]
pub(super) fn quantize<D: Dots, S: Source + ?Sized>(
    conv: &Quantized,
    first: usize,
    rows: &S,
    len: usize,
    out: &mut [u8],
) {
    for (group, out) in out.chunks_exact_mut(len * GROUP).enumerate() {
        let four: [&[f32]; GROUP] = std::array::from_fn(|j| rows.row(group * GROUP + j));
        let channel = first + group * GROUP;
        let inverse = conv.inverses[channel..][..GROUP].try_into().expect("four");
        let zero = conv.zeros[channel..][..GROUP].try_into().expect("four");
        for x in (0..len).step_by(LANES) {
            D::quantize(
                four.map(|row| &row[x..]),
                inverse,
                zero,
                &mut out[x * GROUP..],
            );
        }
    }
}

/// `out[o][x]` for every output channel and `x < len` (a multiple of [`LANES`]) from
/// `values`, quantised by [`quantize`] with the same `len`; rows of `out` are `out_stride`
/// apart.
#[inline(always)]
pub(super) fn product<D: Dots, const SPAN: usize>(
    conv: &Quantized,
    values: &[u8],
    len: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    let blocks = 0..conv.outputs / BLOCK;
    product_blocks::<D, SPAN>(conv, blocks, values, (len, len), out, out_stride);
}

/// The output channels of [`BLOCK`]s `blocks` at points `0..points` from `values`, quantised
/// by [`quantize`] with rows `len` long (`points` rounded up to [`LANES`]), into `out`: rows
/// `out_stride` apart from the first block's first channel. A last partial vector goes through
/// a scratch, so `out` needs no room past the points.
#[inline(always)]
pub(super) fn product_blocks<D: Dots, const SPAN: usize>(
    conv: &Quantized,
    blocks: Range<usize>,
    values: &[u8],
    (len, points): (usize, usize),
    out: &mut [f32],
    out_stride: usize,
) {
    let size = conv.inputs / GROUP * BLOCK * GROUP;
    let whole = points - points % LANES;
    for (i, block) in blocks.enumerate() {
        let weights = &conv.packed[block * size..][..size];
        let out = &mut out[i * BLOCK * out_stride..];
        let first = block * BLOCK;
        let mut x = 0;
        while x + SPAN * LANES <= whole {
            step::<D, SPAN>(
                conv,
                first,
                weights,
                values,
                len,
                x,
                &mut out[x..],
                out_stride,
            );
            x += SPAN * LANES;
        }
        while x < whole {
            step::<D, 1>(
                conv,
                first,
                weights,
                values,
                len,
                x,
                &mut out[x..],
                out_stride,
            );
            x += LANES;
        }
        if whole < points {
            let mut last = [0.0; BLOCK * LANES];
            step::<D, 1>(conv, first, weights, values, len, x, &mut last, LANES);
            let rest = points - whole;
            for (o, last) in last.chunks_exact(LANES).enumerate() {
                out[o * out_stride + whole..][..rest].copy_from_slice(&last[..rest]);
            }
        }
    }
}

/// [`BLOCK`] output channels from `first` at points `x..x + SPAN × LANES`, into `out` from its
/// start, rows `out_stride` apart.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step<D: Dots, const SPAN: usize>(
    conv: &Quantized,
    first: usize,
    weights: &[i8],
    values: &[u8],
    len: usize,
    x: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    let mut sums = [[D::zero(); SPAN]; BLOCK];
    for (group, w) in weights.chunks_exact(BLOCK * GROUP).enumerate() {
        let values = &values[(group * len + x) * GROUP..][..SPAN * LANES * GROUP];
        let values: [D::Values; SPAN] =
            std::array::from_fn(|j| D::load(&values[j * LANES * GROUP..]));
        for (sums, w) in sums.iter_mut().zip(w.chunks_exact(GROUP)) {
            let w = D::weights(w.try_into().expect("four weights"));
            for (sum, &v) in sums.iter_mut().zip(&values) {
                *sum = sum.dot(v, w);
            }
        }
    }
    for (o, sums) in sums.into_iter().enumerate() {
        let c = first + o;
        let out = &mut out[o * out_stride..][..SPAN * LANES];
        for (j, sum) in sums.into_iter().enumerate() {
            let (correction, scale) = (conv.corrections[c], conv.scales[c]);
            sum.finish(
                correction,
                scale,
                conv.bias[c],
                conv.relu,
                &mut out[j * LANES..],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i + seed) * 7919 % 1009) as f32 - 504.0) / 200.0)
            .collect()
    }

    /// The quantised rows and the products with each implementation this CPU has.
    fn run<D: Dots>(conv: &Quantized, input: &[f32], len: usize) -> (Vec<u8>, Vec<f32>) {
        let mut q = vec![0u8; conv.inputs * len];
        let rows = crate::detect::ops::pointwise::Strided {
            values: input,
            stride: len,
        };
        quantize::<D, _>(conv, 0, &rows, len, &mut q);
        let mut out = vec![f32::NAN; conv.outputs * len];
        product::<D, 2>(conv, &q, len, &mut out, len);
        (q, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn run_vnni(conv: &Quantized, input: &[f32], len: usize) -> (Vec<u8>, Vec<f32>) {
        run::<Vnni>(conv, input, len)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2(conv: &Quantized, input: &[f32], len: usize) -> (Vec<u8>, Vec<f32>) {
        run::<Avx2>(conv, input, len)
    }

    #[test]
    fn every_implementation_computes_the_same_integers_and_floats_close_to_fp32() {
        let (inputs, outputs, len) = (24, 8, 48);
        let weights = values(inputs * outputs, 3);
        let bias = values(outputs, 9);
        for relu in [false, true] {
            // Channels of ranges a hundredfold apart; all positive after a ReLU.
            let input: Vec<f32> = values(inputs * len, 5)
                .iter()
                .enumerate()
                .map(|(i, v)| v * 10f32.powi((i / len % 3) as i32 - 1))
                .map(|v| if relu { v.abs() } else { v })
                .collect();
            let activations: Vec<Activation> = input
                .chunks_exact(len)
                .map(|c| {
                    let (min, max) = c
                        .iter()
                        .fold((0f32, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
                    Activation::for_range(min, max)
                })
                .collect();
            assert_eq!(activations[0].zero == 0, relu);
            let conv = Quantized::new(&weights, bias.clone(), relu, &activations).expect("conv");
            let (q, portable) = run::<Portable>(&conv, &input, len);
            // Within the worst case of rounding each scaled input u = x / s by half a step and
            // each folded weight w·s by half its channel's step.
            for o in 0..outputs {
                let row = &weights[o * inputs..][..inputs];
                let folded: Vec<f32> = row
                    .iter()
                    .zip(&activations)
                    .map(|(w, a)| w * a.scale)
                    .collect();
                let step = folded.iter().fold(0f32, |m, w| m.max(w.abs())) / WEIGHT_MAX;
                for x in 0..len {
                    let (mut exact, mut bound) = (bias[o], 0.0);
                    for (i, (w, a)) in row.iter().zip(&activations).enumerate() {
                        let v = input[i * len + x];
                        exact += w * v;
                        let u = v / a.scale;
                        bound += step / 2.0 * u.abs() + (w * a.scale).abs() / 2.0 + step / 4.0;
                    }
                    let exact = if relu { exact.max(0.0) } else { exact };
                    let got = portable[o * len + x];
                    assert!(
                        (got - exact).abs() <= bound * 1.01 + 1e-5,
                        "{o}, {x}: {got} vs {exact} (bound {bound})"
                    );
                }
            }
            #[cfg(target_arch = "x86_64")]
            for isa in crate::detect::ops::testing::integer_kernels() {
                // SAFETY: this CPU has the features (`IntIsa::for_isa`).
                let got = unsafe {
                    match isa {
                        IntIsa::Vnni => run_vnni(&conv, &input, len),
                        _ => run_avx2(&conv, &input, len),
                    }
                };
                assert_eq!(got.0, q, "{isa}: quantised values");
                assert_eq!(got.1, portable, "{isa}: outputs");
            }
        }
    }
}
