//! The depthwise op's arithmetic: input rows laid out so every tap reads contiguous values
//! ([`Layout`]), and output rows computed [`LANES`] points at a time with the vectors chosen at
//! start-up ([`super::super::lanes`]). [`super::super::bottleneck`] uses the same layout and row
//! kernel on rows it computes itself.

use super::Taps;
use crate::detect::ops::lanes::{Isa, LANES, Lanes, Portable};

/// How an input row is laid out so that tap `kx` of a kernel row reads output column `x` at
/// `reads[kx] + x`: at stride 1 the padded row itself, at stride 2 the padded row's even columns
/// followed by its odd ones. The padding is zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::detect) struct Layout {
    step: usize,
    /// Length of one laid-out row, a multiple of [`LANES`]: reads go whole lanes at a time, up
    /// to `LANES` past each read's start, and what they find past the row only reaches lanes
    /// that are never stored.
    pub len: usize,
    pub reads: [usize; 3],
    width: usize,
    pub out_width: usize,
    pad_left: usize,
    /// The padded row's length: `pad_left`, the row, then zeros.
    padded: usize,
}

impl Layout {
    pub fn new(
        step: usize,
        width: usize,
        out_width: usize,
        [pad_left, pad_right]: [usize; 2],
    ) -> Layout {
        let lanes = out_width.next_multiple_of(LANES);
        let (len, reads, padded) = if step == 1 {
            let padded = width + pad_left + pad_right;
            (padded.max(2 + lanes), [0, 1, 2], padded)
        } else {
            let half = out_width + 1;
            (
                (2 * half).max(half + lanes),
                [0, half, 1],
                (2 * half).max(pad_left + width),
            )
        };
        Layout {
            step,
            len: len.next_multiple_of(LANES),
            reads,
            width,
            out_width,
            pad_left,
            padded,
        }
    }

    /// Lays `row` out into `laid` (`len` long); `scratch` holds one padded row at stride 2 and
    /// must be zero outside the row, as [`Layout::scratch`] makes it.
    pub fn lay_out(&self, row: &[f32], laid: &mut [f32], scratch: &mut [f32]) {
        if self.step == 1 {
            laid[self.pad_left..][..self.width].copy_from_slice(row);
            return;
        }
        scratch[self.pad_left..][..self.width].copy_from_slice(row);
        // `reads[1]` is where the odd columns start.
        let (even, odd) = laid.split_at_mut(self.reads[1]);
        for ((pair, e), o) in scratch.chunks_exact(2).zip(even).zip(odd) {
            *e = pair[0];
            *o = pair[1];
        }
    }

    /// The scratch row [`Layout::lay_out`] needs.
    pub fn scratch(&self) -> Vec<f32> {
        if self.step == 1 {
            Vec::new()
        } else {
            vec![0.0; self.padded.next_multiple_of(2)]
        }
    }

    /// Where a laid-out row holds padding, which must read as zeros.
    pub fn padding(&self) -> Vec<usize> {
        let columns = self.pad_left..self.pad_left + self.width;
        let outside = (0..self.padded).filter(|p| !columns.contains(p));
        if self.step == 1 {
            outside.collect()
        } else {
            outside
                .map(|p| {
                    if p % 2 == 0 {
                        p / 2
                    } else {
                        self.reads[1] + p / 2
                    }
                })
                .filter(|&i| i < self.len)
                .collect()
        }
    }
}

/// The input rows one output row reads, laid out by a [`Layout`]. Three rows are kept, in a
/// ring, so each input row is laid out once and the work stays in the L1 cache.
pub(super) struct Rows {
    layout: Layout,
    height: usize,
    pad_top: usize,
    ring: Vec<f32>,
    /// The input row each slot of the ring holds, if any.
    held: [Option<usize>; 3],
    scratch: Vec<f32>,
}

impl Rows {
    pub(super) fn new(layout: Layout, height: usize, pad_top: usize) -> Rows {
        Rows {
            ring: vec![0.0; 3 * layout.len],
            scratch: layout.scratch(),
            layout,
            height,
            pad_top,
            held: [None; 3],
        }
    }

    /// For output row `y` of `plane`, the laid-out input rows of the three kernel rows, `None`
    /// where a kernel row falls on the padding.
    fn window(&mut self, plane: &[f32], y: usize) -> [Option<&[f32]>; 3] {
        let (len, width) = (self.layout.len, self.layout.width);
        let inputs = kernel_rows(self.layout.step, self.pad_top, self.height, y);
        for r in inputs.into_iter().flatten() {
            if self.held[r % 3] != Some(r) {
                let laid = &mut self.ring[(r % 3) * len..][..len];
                self.layout
                    .lay_out(&plane[r * width..][..width], laid, &mut self.scratch);
                self.held[r % 3] = Some(r);
            }
        }
        inputs.map(|r| r.map(|r| &self.ring[(r % 3) * len..][..len]))
    }

    /// Starts on another plane.
    fn clear(&mut self) {
        self.held = [None; 3];
    }
}

/// The input rows of output row `y`'s three kernel rows, `None` where one falls on the padding.
pub(in crate::detect) fn kernel_rows(
    step: usize,
    pad_top: usize,
    height: usize,
    y: usize,
) -> [Option<usize>; 3] {
    [0, 1, 2].map(|ky| (step * y + ky).checked_sub(pad_top).filter(|&r| r < height))
}

/// One channel's weights and what follows them.
pub(in crate::detect) struct Filter<'a> {
    pub taps: &'a Taps,
    pub bias: f32,
    pub relu: bool,
}

pub(super) type PlaneKernel = fn(&mut Rows, &[f32], &Filter, &mut [f32]);

/// The plane kernel for `isa`; ops are only built with an `isa` this CPU has (it comes from a
/// [`crate::detect::ops::lanes::Kernels`]).
pub(super) fn plane_kernel(isa: Isa) -> PlaneKernel {
    match isa {
        // SAFETY: this CPU has `isa` (see above).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => |rows, input, filter, out| unsafe { plane_avx512(rows, input, filter, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => |rows, input, filter, out| unsafe { plane_avx2(rows, input, filter, out) },
        _ => plane::<Portable>,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn plane_avx512(rows: &mut Rows, input: &[f32], filter: &Filter, out: &mut [f32]) {
    plane::<crate::detect::ops::lanes::Avx512>(rows, input, filter, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn plane_avx2(rows: &mut Rows, input: &[f32], filter: &Filter, out: &mut [f32]) {
    plane::<crate::detect::ops::lanes::Avx2>(rows, input, filter, out)
}

/// One output plane, a row at a time.
#[inline(always)]
fn plane<V: Lanes>(rows: &mut Rows, input: &[f32], filter: &Filter, out: &mut [f32]) {
    rows.clear();
    let reads = rows.layout.reads;
    for (y, out_row) in out.chunks_exact_mut(rows.layout.out_width).enumerate() {
        row::<V>(rows.window(input, y), reads, filter, out_row);
    }
}

/// One output row from the laid-out rows of its three kernel rows, [`LANES`] points at a time:
/// the bias, then the three taps of each kernel row that falls inside the input, then the ReLU
/// if the filter has one. A last partial step is stored only as far as `out` reaches.
#[inline(always)]
pub(in crate::detect) fn row<V: Lanes>(
    kernel_rows: [Option<&[f32]>; 3],
    reads: [usize; 3],
    filter: &Filter,
    out: &mut [f32],
) {
    let taps = filter.taps.map(V::splat);
    let bias = V::splat(filter.bias);
    for (x, out_lanes) in (0..).step_by(LANES).zip(out.chunks_mut(LANES)) {
        let mut sums = bias;
        for (ky, row) in kernel_rows.iter().enumerate() {
            let Some(row) = row else { continue };
            for (kx, read) in reads.into_iter().enumerate() {
                sums = sums.add_product(taps[3 * ky + kx], V::load(&row[read + x..]));
            }
        }
        if filter.relu {
            sums = sums.relu();
        }
        if out_lanes.len() == LANES {
            sums.store(out_lanes);
        } else {
            let mut last = [0.0; LANES];
            sums.store(&mut last);
            out_lanes.copy_from_slice(&last[..out_lanes.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plane kernels this CPU can run, widest first.
    fn kernels() -> Vec<(Isa, PlaneKernel)> {
        Isa::available()
            .into_iter()
            .map(|isa| (isa, plane_kernel(isa)))
            .collect()
    }

    #[test]
    fn every_kernel_this_cpu_has_gives_the_portable_result() {
        let (height, width) = (9, 21);
        let input: Vec<f32> = (0..height * width)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let taps: Taps = std::array::from_fn(|i| i as f32 * 0.25 - 1.0);
        let kernels = kernels();
        assert_eq!(kernels.last().map(|k| k.0), Some(Isa::Portable));
        for (step, out_width) in [(1, 21), (2, 11)] {
            let layout = Layout::new(step, width, out_width, [1, 1]);
            let mut rows = Rows::new(layout, height, 1);
            for relu in [false, true] {
                let filter = Filter {
                    taps: &taps,
                    bias: 0.5,
                    relu,
                };
                let out_height = if step == 1 { 9 } else { 5 };
                let run = |kernel: PlaneKernel, rows: &mut Rows| {
                    let mut out = vec![f32::NAN; out_height * out_width];
                    kernel(rows, &input, &filter, &mut out);
                    out
                };
                let portable = run(plane::<Portable>, &mut rows);
                assert!(portable.iter().all(|v| v.is_finite()));
                assert_eq!(relu, portable.iter().all(|&v| v >= 0.0));
                for (isa, kernel) in &kernels {
                    let out = run(*kernel, &mut rows);
                    assert_eq!(portable, out, "{isa:?}, stride {step}, relu {relu}");
                }
            }
        }
    }

    #[test]
    fn padding_is_where_a_laid_out_row_holds_no_column() {
        for (step, width, out_width, pads) in [
            (1, 7, 7, [1, 1]),
            (1, 6, 4, [0, 0]),
            (2, 7, 4, [1, 1]),
            (2, 8, 4, [1, 0]),
            (2, 9, 4, [0, 0]),
        ] {
            let layout = Layout::new(step, width, out_width, pads);
            let row: Vec<f32> = (1..=width).map(|v| v as f32).collect();
            let mut laid = vec![0.0; layout.len];
            layout.lay_out(&row, &mut laid, &mut layout.scratch());
            let padding = layout.padding();
            let case = format!("stride {step}, width {width}, pads {pads:?}");
            assert_eq!(
                padding.len(),
                layout.padded.next_multiple_of(step) - width,
                "{case}"
            );
            for i in padding {
                assert_eq!(laid[i], 0.0, "{case}: position {i}");
            }
            let mut columns: Vec<f32> = laid.iter().copied().filter(|&v| v != 0.0).collect();
            columns.sort_by(f32::total_cmp);
            assert_eq!(columns, row, "{case}: every column laid out once");
        }
    }
}
