//! The register-blocked product both fused ops run: `out[o][x] = bias[o] + Σ_i w[o][i] ·
//! row_i[x]`, [`BLOCK`] output channels by `SPAN` vectors at a time. For a 1×1 convolution
//! ([`super::bottleneck`]) the rows are the input's channels; for a dense 3×3 convolution
//! ([`super::dense`]) they are each input channel's three kernel rows at each of their three
//! column offsets, read in place, so the convolution needs no copy of its input per tap.

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
    let blocks = conv.packed.chunks_exact(conv.inputs * BLOCK);
    for (block, weights) in blocks.enumerate() {
        let bias: &[f32; BLOCK] = conv.bias[block * BLOCK..][..BLOCK]
            .try_into()
            .expect("a block");
        let out = &mut out[block * BLOCK * out_stride..];
        let mut x = 0;
        while x + SPAN * LANES <= len {
            step::<V, SPAN, S>(weights, bias, conv.relu, input, x, out, out_stride);
            x += SPAN * LANES;
        }
        while x < len {
            step::<V, 1, S>(weights, bias, conv.relu, input, x, out, out_stride);
            x += LANES;
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
