//! The depthwise op's arithmetic: input rows laid out so every tap reads contiguous values
//! ([`Layout`]), and output rows computed [`LANES`] points at a time with the vectors chosen at
//! start-up ([`super::super::lanes`]). [`super::super::bottleneck`] uses the same layout and row
//! kernel on rows it computes itself. Narrow planes are computed whole instead ([`Flat`]).

use super::Taps;
use crate::detect::ops::lanes::{Isa, LANES, Lanes, Portable};

/// How an input row is laid out so that tap `kx` of a kernel row reads output column `x` at
/// `reads[kx] + x`: at stride 1 the padded row itself, at stride 2 the padded row's even columns
/// followed by its odd ones. The padding is zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::detect) struct Layout {
    pub step: usize,
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

    /// Lays `row` out into `laid` (`len` long), writing only the row's columns: the padding
    /// keeps what `laid` holds there, which must be zeros where a kernel reads them.
    pub fn lay_out(&self, row: &[f32], laid: &mut [f32]) {
        let pad_left = self.pad_left;
        if self.step == 1 {
            laid[pad_left..][..self.width].copy_from_slice(row);
            return;
        }
        // The odd columns start at `reads[1]`.
        let (even, odd) = laid.split_at_mut(self.reads[1]);
        deinterleave(row, pad_left, even, odd);
    }

    /// Where a laid-out row's first column is; at stride 1 the others follow in order.
    pub fn first_column(&self) -> usize {
        self.pad_left
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

/// Column `j` of `row` is padded column `pad_left + j`: the even ones go to `even`, the odd ones
/// to `odd`, each at its padded column / 2; straight from the row, in one pass, as far as
/// `even` and `odd` reach.
fn deinterleave(row: &[f32], pad_left: usize, even: &mut [f32], odd: &mut [f32]) {
    let (first, second) = if pad_left.is_multiple_of(2) {
        (even, odd)
    } else {
        (odd, even)
    };
    let first = first.get_mut(pad_left / 2..).unwrap_or_default();
    let second = second.get_mut(pad_left.div_ceil(2)..).unwrap_or_default();
    let pairs = row.chunks_exact(2);
    if let (&[last], Some(slot)) = (pairs.remainder(), first.get_mut(row.len() / 2)) {
        *slot = last;
    }
    for ((pair, a), b) in pairs.zip(first).zip(second) {
        *a = pair[0];
        *b = pair[1];
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
}

impl Rows {
    pub(super) fn new(layout: Layout, height: usize, pad_top: usize) -> Rows {
        Rows {
            ring: vec![0.0; 3 * layout.len],
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
                self.layout.lay_out(&plane[r * width..][..width], laid);
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
    /// Each tap as one fused multiply-add instead of tract's multiply then add: half the
    /// instructions, in plans that need not match tract exactly (int8's).
    pub fused: bool,
}

/// `sums + tap × values`, fused or rounded twice as `FUSED` says.
#[inline(always)]
fn tap<V: Lanes, const FUSED: bool>(sums: V, tap: V, values: V) -> V {
    if FUSED {
        sums.fused_add_product(tap, values)
    } else {
        sums.add_product(tap, values)
    }
}

/// Planes narrower than this are computed whole ([`Flat`]): on CenterFace's 40- and 20-point
/// rows, one row at a time spent more on each row's set-up and its last partial vector than on
/// the arithmetic (at stride 1, 0.46 ms for 576 planes of 24×40 on a Zen 5, 11 G/s; the eleven
/// narrow depthwise ops took 3.7 ms row by row, 2.0 with whole planes at stride 1 and 1.6 with
/// whole planes at stride 2 too).
const FLAT_BELOW: usize = 64;

/// A whole padded plane, its rows `row` apart: output point `(y, x)` is at `y × row + x` in the
/// sums, and each tap reads contiguous values from there on, so every vector of sixteen sums
/// spans rows and only the padding columns of each row are computed in vain.
///
/// At stride 1 the plane is the padded input, and tap `(ky, kx)` reads it `ky × row + kx`
/// further on. At stride 2 it is split by the parity of the padded row and column: `planes[a]`
/// holds the padded rows of parity `a`, their even columns, then from `half` on their odd ones,
/// so tap `(ky, kx)` reads `planes[ky % 2]` at `(ky / 2) × row` plus `0`, `half` or `1` for
/// `kx` = 0, 1, 2: [`Layout`]'s reads for a row, over the whole plane.
pub(super) struct Flat {
    step: usize,
    width: usize,
    out_width: usize,
    pad_top: usize,
    pad_left: usize,
    row: usize,
    /// At stride 2, where the odd columns start in each of `planes`.
    half: usize,
    /// The padded plane (stride 1: `planes[0]` only), or its rows by parity (stride 2); what
    /// is not an input point stays zero.
    planes: [Vec<f32>; 2],
    sums: Vec<f32>,
}

impl Flat {
    pub(super) fn new(
        step: usize,
        (height, width): (usize, usize),
        (out_height, out_width): (usize, usize),
        pad_top: usize,
        [pad_left, pad_right]: [usize; 2],
    ) -> Flat {
        // At stride 2, output column `x` reads columns `2x..=2x + 2`: halves `x` and `x + 1`.
        let row = if step == 1 {
            pad_left + width + pad_right
        } else {
            out_width + 1
        };
        let points = (out_height * row).next_multiple_of(LANES);
        let (half, planes) = if step == 1 {
            // The last vector reads two rows and two points further on.
            let len = (points + 2 * row + 2).max((pad_top + height + 2) * row);
            (0, [vec![0.0; len], Vec::new()])
        } else {
            // Each half holds rows `0..=out_height` (and the last vector of the even half reads
            // a row further on): `half / row` of them.
            let half = points + row;
            (half, [vec![0.0; 2 * half], vec![0.0; 2 * half]])
        };
        Flat {
            step,
            width,
            out_width,
            pad_top,
            pad_left,
            row,
            half,
            planes,
            sums: vec![0.0; points],
        }
    }

    /// Each kernel row's values and where its three taps read them.
    fn taps(&self) -> ([Option<&[f32]>; 3], [usize; 3]) {
        let row = self.row;
        if self.step == 1 {
            let rows = [0, 1, 2].map(|ky| Some(&self.planes[0][ky * row..]));
            (rows, [0, 1, 2])
        } else {
            let [even, odd] = &self.planes;
            (
                [Some(&even[..]), Some(&odd[..]), Some(&even[row..])],
                [0, self.half, 1],
            )
        }
    }

    /// Puts `input`'s points in the padded plane.
    fn lay_out(&mut self, input: &[f32]) {
        let (row, width) = (self.row, self.width);
        for (r, values) in input.chunks_exact(width).enumerate() {
            let p = r + self.pad_top;
            if self.step == 1 {
                self.planes[0][p * row + self.pad_left..][..width].copy_from_slice(values);
                continue;
            }
            if p / 2 >= self.half / row {
                continue; // below every output row's window
            }
            let (even, odd) = self.planes[p % 2].split_at_mut(self.half);
            let at = p / 2 * row;
            deinterleave(
                values,
                self.pad_left,
                &mut even[at..][..row],
                &mut odd[at..][..row],
            );
        }
    }
}

/// What a plane kernel keeps from plane to plane.
pub(super) enum Planes {
    Rows(Rows),
    Flat(Flat),
}

impl Planes {
    /// For planes of `size` at `layout`'s stride into `out_size`, padded as given.
    pub(super) fn new(
        layout: Layout,
        size: (usize, usize),
        out_size: (usize, usize),
        pad_top: usize,
        pad_columns: [usize; 2],
    ) -> Planes {
        if out_size.1 < FLAT_BELOW {
            Planes::Flat(Flat::new(layout.step, size, out_size, pad_top, pad_columns))
        } else {
            Planes::Rows(Rows::new(layout, size.0, pad_top))
        }
    }
}

pub(super) type PlaneKernel = fn(&mut Planes, &[f32], &Filter, &mut [f32]);

/// The plane kernel for `isa`; ops are only built with an `isa` this CPU has (it comes from a
/// [`crate::detect::ops::lanes::Kernels`]).
pub(super) fn plane_kernel(isa: Isa) -> PlaneKernel {
    match isa {
        // SAFETY: this CPU has `isa` (see above).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            |planes, input, filter, out| unsafe { plane_avx512(planes, input, filter, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => |planes, input, filter, out| unsafe { plane_avx2(planes, input, filter, out) },
        _ => plane::<Portable>,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn plane_avx512(planes: &mut Planes, input: &[f32], filter: &Filter, out: &mut [f32]) {
    plane::<crate::detect::ops::lanes::Avx512>(planes, input, filter, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn plane_avx2(planes: &mut Planes, input: &[f32], filter: &Filter, out: &mut [f32]) {
    plane::<crate::detect::ops::lanes::Avx2>(planes, input, filter, out)
}

/// One output plane.
#[inline(always)]
fn plane<V: Lanes>(planes: &mut Planes, input: &[f32], filter: &Filter, out: &mut [f32]) {
    match planes {
        Planes::Rows(rows) => by_rows::<V>(rows, input, filter, out),
        Planes::Flat(flat) => whole::<V>(flat, input, filter, out),
    }
}

/// One output plane, a row at a time.
#[inline(always)]
fn by_rows<V: Lanes>(rows: &mut Rows, input: &[f32], filter: &Filter, out: &mut [f32]) {
    rows.clear();
    let reads = rows.layout.reads;
    for (y, out_row) in out.chunks_exact_mut(rows.layout.out_width).enumerate() {
        row::<V>(rows.window(input, y), reads, filter, out_row);
    }
}

/// One output plane at stride 1, whole: the same sums as [`row`]'s, in the same order, with the
/// padding rows' zeros added where [`row`] skips them (which changes no sum).
#[inline(always)]
fn whole<V: Lanes>(flat: &mut Flat, input: &[f32], filter: &Filter, out: &mut [f32]) {
    if filter.fused {
        whole_with::<V, true>(flat, input, filter, out)
    } else {
        whole_with::<V, false>(flat, input, filter, out)
    }
}

#[inline(always)]
fn whole_with<V: Lanes, const FUSED: bool>(
    flat: &mut Flat,
    input: &[f32],
    filter: &Filter,
    out: &mut [f32],
) {
    flat.lay_out(input);
    // Out of `flat` while its planes are read.
    let mut sums = std::mem::take(&mut flat.sums);
    let (rows, reads) = flat.taps();
    row_with::<V, FUSED>(rows, reads, filter, &mut sums);
    flat.sums = sums;
    let row = flat.row;
    for (y, out_row) in out.chunks_exact_mut(flat.out_width).enumerate() {
        out_row.copy_from_slice(&flat.sums[y * row..][..flat.out_width]);
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
    if filter.fused {
        row_with::<V, true>(kernel_rows, reads, filter, out)
    } else {
        row_with::<V, false>(kernel_rows, reads, filter, out)
    }
}

#[inline(always)]
fn row_with<V: Lanes, const FUSED: bool>(
    kernel_rows: [Option<&[f32]>; 3],
    reads: [usize; 3],
    filter: &Filter,
    out: &mut [f32],
) {
    // Each vector's sum is a chain of nine dependent additions, so a vector at a time waits on
    // their latency: with AVX-512's 32 registers, five chains side by side keep the adders
    // busy (and CenterFace's 80-, 160- and 320-point rows are whole steps of five). With 16,
    // the nine taps alone fill more than half of them, and one vector at a time was faster.
    if V::MANY_REGISTERS {
        steps::<V, FUSED, 5>(kernel_rows, reads, filter, out)
    } else {
        steps::<V, FUSED, 1>(kernel_rows, reads, filter, out)
    }
}

/// [`row_with`], `SPAN` vectors a step, the rest in one step.
#[inline(always)]
fn steps<V: Lanes, const FUSED: bool, const SPAN: usize>(
    kernel_rows: [Option<&[f32]>; 3],
    reads: [usize; 3],
    filter: &Filter,
    out: &mut [f32],
) {
    let taps = filter.taps.map(V::splat);
    let mut x = 0;
    while x + SPAN * LANES <= out.len() {
        let sums = sums::<V, FUSED, SPAN>(&kernel_rows, reads, &taps, filter, x);
        for (j, sums) in sums.into_iter().enumerate() {
            sums.store(&mut out[x + j * LANES..]);
        }
        x += SPAN * LANES;
    }
    // The rest in one step (up to `SPAN` vectors, the last possibly partial).
    let rest = &mut out[x..];
    let (rows, taps) = (&kernel_rows, &taps);
    match rest.len().div_ceil(LANES) {
        0 => {}
        1 => store(sums::<V, FUSED, 1>(rows, reads, taps, filter, x), rest),
        2 => store(sums::<V, FUSED, 2>(rows, reads, taps, filter, x), rest),
        3 => store(sums::<V, FUSED, 3>(rows, reads, taps, filter, x), rest),
        4 => store(sums::<V, FUSED, 4>(rows, reads, taps, filter, x), rest),
        5 => store(sums::<V, FUSED, 5>(rows, reads, taps, filter, x), rest),
        more => unreachable!("{more} vectors left after steps of {SPAN}"),
    }
}

/// `sums` into `out`, as far as `out` reaches: the last vector may be partial.
#[inline(always)]
fn store<V: Lanes, const N: usize>(sums: [V; N], out: &mut [f32]) {
    for (sums, out) in sums.into_iter().zip(out.chunks_mut(LANES)) {
        if out.len() == LANES {
            sums.store(out);
        } else {
            let mut last = [0.0; LANES];
            sums.store(&mut last);
            out.copy_from_slice(&last[..out.len()]);
        }
    }
}

/// The sums of `N` vectors of output points from `x` on, with the ReLU applied.
#[inline(always)]
fn sums<V: Lanes, const FUSED: bool, const N: usize>(
    kernel_rows: &[Option<&[f32]>; 3],
    reads: [usize; 3],
    taps: &[V; 9],
    filter: &Filter,
    x: usize,
) -> [V; N] {
    let mut sums = [V::splat(filter.bias); N];
    for (ky, row) in kernel_rows.iter().enumerate() {
        let Some(row) = row else { continue };
        for (kx, read) in reads.into_iter().enumerate() {
            let values = &row[read + x..][..N * LANES];
            for (j, sum) in sums.iter_mut().enumerate() {
                *sum = tap::<V, FUSED>(*sum, taps[3 * ky + kx], V::load(&values[j * LANES..]));
            }
        }
    }
    if filter.relu {
        sums = sums.map(V::relu);
    }
    sums
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
    fn every_kernel_this_cpu_has_and_whole_planes_give_the_portable_rows_result_fused_or_not() {
        let taps: Taps = std::array::from_fn(|i| i as f32 * 0.25 - 1.0);
        let kernels = kernels();
        assert_eq!(kernels.last().map(|k| k.0), Some(Isa::Portable));
        // Rows of a vector or two, and of several steps of vectors with a partial one after.
        for (height, width) in [(9usize, 21usize), (5, 150)] {
            let input: Vec<f32> = (0..height * width)
                .map(|i| (i as f32 * 0.37).sin())
                .collect();
            for step in [1, 2] {
                let (out_height, out_width) = (height.div_ceil(step), width.div_ceil(step));
                let layout = Layout::new(step, width, out_width, [1, 1]);
                let rows = || Planes::Rows(Rows::new(layout.clone(), height, 1));
                let flat = Flat::new(step, (height, width), (out_height, out_width), 1, [1, 1]);
                let mut kept = vec![rows(), Planes::Flat(flat)];
                let mut unfused = Vec::new();
                for (fused, relu) in [(false, false), (false, true), (true, false), (true, true)] {
                    let filter = Filter {
                        taps: &taps,
                        bias: 0.5,
                        relu,
                        fused,
                    };
                    let run = |kernel: PlaneKernel, planes: &mut Planes| {
                        let mut out = vec![f32::NAN; out_height * out_width];
                        kernel(planes, &input, &filter, &mut out);
                        out
                    };
                    let portable = run(plane::<Portable>, &mut rows());
                    assert!(portable.iter().all(|v| v.is_finite()));
                    assert_eq!(relu, portable.iter().all(|&v| v >= 0.0));
                    if fused {
                        // Within rounding of the unfused sums, and exactly the same on every CPU.
                        let expected: &Vec<f32> = &unfused[usize::from(relu)];
                        for (a, b) in portable.iter().zip(expected) {
                            assert!((a - b).abs() <= 1e-5, "fused {a}, unfused {b}");
                        }
                    } else {
                        unfused.push(portable.clone());
                    }
                    for planes in &mut kept {
                        let whole = matches!(planes, Planes::Flat(_));
                        for (isa, kernel) in &kernels {
                            // Twice: what one plane leaves behind must not change the next.
                            for _ in 0..2 {
                                let out = run(*kernel, planes);
                                let case =
                                    format!("{isa:?}, stride {step}, relu {relu}, fused {fused}");
                                assert_eq!(portable, out, "{case}, whole plane {whole}");
                            }
                        }
                    }
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
            layout.lay_out(&row, &mut laid);
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
