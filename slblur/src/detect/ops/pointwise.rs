//! The register-blocked product both fused ops run: `out[o][x] = bias[o] + Σ_i w[o][i] ·
//! row_i[x]`, [`BLOCK`] output channels by `SPAN` vectors at a time. For a 1×1 convolution
//! ([`super::bottleneck`]) the rows are the input's channels; for a dense 3×3 convolution
//! ([`super::dense`]) they are each input channel's three kernel rows at each of their three
//! column offsets, read in place, so the convolution needs no copy of its input per tap.

use std::ops::Range;

use super::lanes::{LANES, Lanes};

/// Output channels a step computes together.
pub(super) const BLOCK: usize = 4;

/// The weights of a product, with its bias and optional ReLU.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pointwise {
    pub inputs: usize,
    pub outputs: usize,
    /// The weights, [`BLOCK`] output channels at a time: `[block][input][BLOCK]`, so that one
    /// step's weights are adjacent.
    packed: Vec<f32>,
    pub bias: Vec<f32>,
    pub relu: bool,
}

impl Pointwise {
    /// From `[outputs, inputs]` weights; `outputs` is a multiple of [`BLOCK`].
    pub fn new(weights: &[f32], bias: Vec<f32>, relu: bool) -> Pointwise {
        let (outputs, inputs) = (bias.len(), weights.len() / bias.len());
        assert_eq!(outputs % BLOCK, 0, "outputs in blocks of {BLOCK}");
        let mut packed = Vec::with_capacity(weights.len());
        for block in 0..outputs / BLOCK {
            for input in 0..inputs {
                for o in 0..BLOCK {
                    packed.push(weights[(block * BLOCK + o) * inputs + input]);
                }
            }
        }
        Pointwise {
            inputs,
            outputs,
            packed,
            bias,
            relu,
        }
    }

    /// The `[outputs, inputs]` weights it was made from.
    pub fn weights(&self) -> Vec<f32> {
        let mut weights = vec![0.0; self.packed.len()];
        for (i, &w) in self.packed.iter().enumerate() {
            let (o, block) = (i % BLOCK, i / (self.inputs * BLOCK));
            let input = i / BLOCK % self.inputs;
            weights[(block * BLOCK + o) * self.inputs + input] = w;
        }
        weights
    }
}

/// The rows a product reads, by input index.
pub(super) trait Source {
    /// Input `i`'s row, from its first point.
    fn row(&self, i: usize) -> &[f32];
}

/// Rows `stride` apart in one slice.
pub(super) struct Strided<'a> {
    pub values: &'a [f32],
    pub stride: usize,
}

impl Source for Strided<'_> {
    #[inline(always)]
    fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.stride..]
    }
}

/// Rows anywhere.
impl Source for [&[f32]] {
    #[inline(always)]
    fn row(&self, i: usize) -> &[f32] {
        self[i]
    }
}

/// Each `points`-long row of `input` in a row `len` long, zeros after it.
pub(super) fn pad_rows(input: &[f32], points: usize, len: usize) -> Vec<f32> {
    let mut padded = vec![0.0; input.len() / points * len];
    for (row, values) in padded.chunks_exact_mut(len).zip(input.chunks_exact(points)) {
        row[..points].copy_from_slice(values);
    }
    padded
}

/// `out[o][x] = bias[o] + Σ_i w[o][i] · input.row(i)[x]`, then the ReLU if `conv` has one, for
/// every `x < len` (a multiple of [`LANES`]); rows of `out` are `out_stride` apart.
#[inline(always)]
pub(super) fn pointwise<V: Lanes, const SPAN: usize, S: Source + ?Sized>(
    conv: &Pointwise,
    input: &S,
    len: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    let blocks = 0..conv.outputs / BLOCK;
    pointwise_blocks::<V, SPAN, S>(conv, blocks, input, 0..len, out, out_stride);
}

/// [`pointwise`] for the output channels of [`BLOCK`]s `blocks` at points `xs` (whole vectors),
/// into `out` from the first block's first channel, rows `out_stride` apart.
#[inline(always)]
pub(super) fn pointwise_blocks<V: Lanes, const SPAN: usize, S: Source + ?Sized>(
    conv: &Pointwise,
    blocks: Range<usize>,
    input: &S,
    xs: Range<usize>,
    out: &mut [f32],
    out_stride: usize,
) {
    let size = conv.inputs * BLOCK;
    for (i, block) in blocks.enumerate() {
        let weights = &conv.packed[block * size..][..size];
        let bias: &[f32; BLOCK] = conv.bias[block * BLOCK..][..BLOCK]
            .try_into()
            .expect("a block");
        let out = &mut out[i * BLOCK * out_stride..];
        let mut x = xs.start;
        while x + SPAN * LANES <= xs.end {
            step::<V, SPAN, S>(weights, bias, conv.relu, input, x, out, out_stride);
            x += SPAN * LANES;
        }
        // The rest in one step: a vector at a time, each input's four weights would be read
        // for one vector of products.
        match (xs.end - x) / LANES {
            0 => {}
            1 => step::<V, 1, S>(weights, bias, conv.relu, input, x, out, out_stride),
            2 => step::<V, 2, S>(weights, bias, conv.relu, input, x, out, out_stride),
            3 => step::<V, 3, S>(weights, bias, conv.relu, input, x, out, out_stride),
            rest => unreachable!("{rest} vectors left after steps of {SPAN}"),
        }
    }
}

/// [`BLOCK`] output channels at points `x..x + SPAN × LANES`: the products summed in input order
/// with fused multiply-adds from zero, then the bias, as tract's matrix kernels do.
#[inline(always)]
fn step<V: Lanes, const SPAN: usize, S: Source + ?Sized>(
    weights: &[f32],
    bias: &[f32; BLOCK],
    relu: bool,
    input: &S,
    x: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    let mut sums = [[V::splat(0.0); SPAN]; BLOCK];
    for (i, w) in weights.chunks_exact(BLOCK).enumerate() {
        let values = &input.row(i)[x..][..SPAN * LANES];
        let values: [V; SPAN] = std::array::from_fn(|j| V::load(&values[j * LANES..]));
        for (sums, &w) in sums.iter_mut().zip(w) {
            let w = V::splat(w);
            for (sum, &v) in sums.iter_mut().zip(&values) {
                *sum = sum.fused_add_product(w, v);
            }
        }
    }
    for (o, sums) in sums.into_iter().enumerate() {
        let bias = V::splat(bias[o]);
        let out = &mut out[o * out_stride + x..][..SPAN * LANES];
        for (j, sum) in sums.into_iter().enumerate() {
            let mut value = sum.add(bias);
            if relu {
                value = value.relu();
            }
            value.store(&mut out[j * LANES..]);
        }
    }
}
