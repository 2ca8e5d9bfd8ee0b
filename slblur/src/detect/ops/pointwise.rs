//! The register-blocked product slblur's float ops run: `out[o][x] = bias[o] + Σ_i w[o][i] ·
//! row_i[x]`, one or two [`BLOCK`]s of output channels by `SPAN` vectors at a time. For a 1×1
//! convolution ([`super::bottleneck`], [`super::conv1x1`]) the rows are the input's channels;
//! for a dense 3×3 convolution ([`super::dense`]) they are each input channel's three kernel
//! rows at each of their three column offsets, read in place, so the convolution needs no copy
//! of its input per tap.
//!
//! Two blocks by three 512-bit vectors (24 accumulators) load each input vector for eight
//! multiply-adds instead of four: on a Zen 5, 1×1 convolutions of 64 to 960 channels ran at
//! about 260 GFLOP/s from the cache, against 170–260 with one block by four vectors. Inside the
//! fused blocks, whose expansions have only 16 to 32 inputs, one block by four did as well.
use std::ops::Range;

use super::lanes::{LANES, Lanes};

/// Output channels whose weights are packed together.
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

/// `out[o][x] = bias[o] + Σ_i w[o][i] · input.row(i)[x]`, then the ReLU if `conv` has one, for
/// every `x < len` (a multiple of [`LANES`]); rows of `out` are `out_stride` apart. Each step
/// computes `PAIR` blocks (one or two) at `SPAN` vectors of points.
#[inline(always)]
pub(super) fn pointwise<V: Lanes, const SPAN: usize, const PAIR: usize, S: Source + ?Sized>(
    conv: &Pointwise,
    input: &S,
    len: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    let blocks = 0..conv.outputs / BLOCK;
    pointwise_blocks::<V, SPAN, PAIR, S>(conv, blocks, input, 0..len, out, out_stride);
}

/// [`pointwise`] for the output channels of [`BLOCK`]s `blocks` at points `xs` (whole vectors),
/// into `out` from the first block's first channel, rows `out_stride` apart.
#[inline(always)]
pub(super) fn pointwise_blocks<V: Lanes, const SPAN: usize, const PAIR: usize, S>(
    conv: &Pointwise,
    blocks: Range<usize>,
    input: &S,
    xs: Range<usize>,
    out: &mut [f32],
    out_stride: usize,
) where
    S: Source + ?Sized,
{
    let mut block = blocks.start;
    while block < blocks.end {
        let out = &mut out[(block - blocks.start) * BLOCK * out_stride..];
        if block + PAIR <= blocks.end {
            let blocks = Blocks::<PAIR>::at(conv, block);
            along::<V, SPAN, PAIR, S>(&blocks, input, xs.clone(), out, out_stride);
            block += PAIR;
        } else {
            let blocks = Blocks::<1>::at(conv, block);
            along::<V, SPAN, 1, S>(&blocks, input, xs.clone(), out, out_stride);
            block += 1;
        }
    }
}

/// The weights and biases of `N` adjacent [`BLOCK`]s, and whether a ReLU follows.
struct Blocks<'a, const N: usize> {
    weights: [&'a [f32]; N],
    bias: [&'a [f32]; N],
    relu: bool,
}

impl<'a, const N: usize> Blocks<'a, N> {
    #[inline(always)]
    fn at(conv: &'a Pointwise, first: usize) -> Self {
        let size = conv.inputs * BLOCK;
        Blocks {
            weights: std::array::from_fn(|b| &conv.packed[(first + b) * size..][..size]),
            bias: std::array::from_fn(|b| &conv.bias[(first + b) * BLOCK..][..BLOCK]),
            relu: conv.relu,
        }
    }
}

/// `blocks` at points `xs`, `SPAN` vectors a step; the rest in one step.
#[inline(always)]
fn along<V: Lanes, const SPAN: usize, const N: usize, S: Source + ?Sized>(
    blocks: &Blocks<N>,
    input: &S,
    xs: Range<usize>,
    out: &mut [f32],
    out_stride: usize,
) {
    let mut x = xs.start;
    while x + SPAN * LANES <= xs.end {
        step::<V, SPAN, N, S>(blocks, input, x, out, out_stride);
        x += SPAN * LANES;
    }
    // A vector at a time, each input's weights would be read for one vector of products.
    match (xs.end - x) / LANES {
        0 => {}
        1 => step::<V, 1, N, S>(blocks, input, x, out, out_stride),
        2 => step::<V, 2, N, S>(blocks, input, x, out, out_stride),
        3 => step::<V, 3, N, S>(blocks, input, x, out, out_stride),
        rest => unreachable!("{rest} vectors left after steps of {SPAN}"),
    }
}

/// `N` [`BLOCK`]s of output channels at points `x..x + SPAN × LANES`: the products summed in
/// input order with fused multiply-adds from zero, then the bias, as tract's matrix kernels do.
#[inline(always)]
fn step<V: Lanes, const SPAN: usize, const N: usize, S: Source + ?Sized>(
    blocks: &Blocks<N>,
    input: &S,
    x: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    let mut sums = [[[V::splat(0.0); SPAN]; BLOCK]; N];
    let inputs = blocks.weights[0].len() / BLOCK;
    for i in 0..inputs {
        let values = &input.row(i)[x..][..SPAN * LANES];
        let values: [V; SPAN] = std::array::from_fn(|j| V::load(&values[j * LANES..]));
        for (sums, weights) in sums.iter_mut().zip(blocks.weights) {
            let weights = &weights[i * BLOCK..][..BLOCK];
            for (sums, &w) in sums.iter_mut().zip(weights) {
                let w = V::splat(w);
                for (sum, &v) in sums.iter_mut().zip(&values) {
                    *sum = sum.fused_add_product(w, v);
                }
            }
        }
    }
    for (b, (sums, bias)) in sums.into_iter().zip(blocks.bias).enumerate() {
        for (o, (sums, &bias)) in sums.into_iter().zip(bias).enumerate() {
            let bias = V::splat(bias);
            let out = &mut out[(b * BLOCK + o) * out_stride + x..][..SPAN * LANES];
            for (j, sum) in sums.into_iter().enumerate() {
                let mut value = sum.add(bias);
                if blocks.relu {
                    value = value.relu();
                }
                value.store(&mut out[j * LANES..]);
            }
        }
    }
}
