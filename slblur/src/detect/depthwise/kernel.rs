//! The depthwise op's arithmetic: input rows laid out so every tap reads contiguous values, and
//! one output plane computed [`LANES`] points at a time, with explicit AVX-512 or AVX2 vectors
//! where the CPU has them and portable code elsewhere.

use std::sync::OnceLock;

use super::Taps;

/// The input rows one output row reads, each laid out (with its padding as zeros) so that tap
/// `kx` of a kernel row reads output column `x` at `reads[kx] + x`: at stride 1 the padded row
/// itself, at stride 2 the padded row's even columns followed by its odd ones. Three rows are
/// kept, in a ring, so each input row is laid out once and the work stays in the L1 cache.
pub(super) struct Rows {
    step: usize,
    /// Length of one laid-out row.
    stride: usize,
    reads: [usize; 3],
    height: usize,
    width: usize,
    out_width: usize,
    pad_top: usize,
    pad_left: usize,
    ring: Vec<f32>,
    /// The input row each slot of the ring holds, if any.
    held: [Option<usize>; 3],
    /// Scratch for one padded row at stride 2: zeros, then the row from `pad_left` on.
    padded: Vec<f32>,
}

impl Rows {
    pub(super) fn new(
        step: usize,
        (height, width): (usize, usize),
        out_width: usize,
        pad_top: usize,
        [pad_left, pad_right]: [usize; 2],
    ) -> Rows {
        // Reads go whole lanes at a time, up to `lanes` past each read's start; what they find
        // past the row only reaches lanes that are never stored.
        let lanes = out_width.next_multiple_of(LANES);
        let (stride, reads, padded) = if step == 1 {
            (
                (width + pad_left + pad_right).max(2 + lanes),
                [0, 1, 2],
                Vec::new(),
            )
        } else {
            let half = out_width + 1;
            let padded = vec![0.0; (2 * half).max(pad_left + width)];
            ((2 * half).max(half + lanes), [0, half, 1], padded)
        };
        Rows {
            step,
            stride,
            reads,
            height,
            width,
            out_width,
            pad_top,
            pad_left,
            ring: vec![0.0; 3 * stride],
            held: [None; 3],
            padded,
        }
    }

    /// For output row `y` of `plane`, the laid-out input rows of the three kernel rows, `None`
    /// where a kernel row falls on the padding.
    fn window(&mut self, plane: &[f32], y: usize) -> [Option<&[f32]>; 3] {
        let inputs = [0, 1, 2].map(|ky| {
            (self.step * y + ky)
                .checked_sub(self.pad_top)
                .filter(|&r| r < self.height)
        });
        for r in inputs.into_iter().flatten() {
            if self.held[r % 3] != Some(r) {
                self.lay_out(&plane[r * self.width..][..self.width], r % 3);
                self.held[r % 3] = Some(r);
            }
        }
        inputs.map(|r| r.map(|r| &self.ring[(r % 3) * self.stride..][..self.stride]))
    }

    fn lay_out(&mut self, row: &[f32], slot: usize) {
        let laid = &mut self.ring[slot * self.stride..][..self.stride];
        if self.step == 1 {
            laid[self.pad_left..][..self.width].copy_from_slice(row);
            return;
        }
        self.padded[self.pad_left..][..self.width].copy_from_slice(row);
        // `reads[1]` is where the odd columns start.
        let (even, odd) = laid.split_at_mut(self.reads[1]);
        for ((pair, e), o) in self.padded.chunks_exact(2).zip(even).zip(odd) {
            *e = pair[0];
            *o = pair[1];
        }
    }

    /// Starts on another plane.
    fn clear(&mut self) {
        self.held = [None; 3];
    }
}

/// One channel's weights and what follows them.
pub(super) struct Filter<'a> {
    pub taps: &'a Taps,
    pub bias: f32,
    pub relu: bool,
}

/// Output points computed together: one 512-bit vector, two of 256 bits, or sixteen scalars.
const LANES: usize = 16;

/// [`LANES`] floats in registers. The methods are only called from functions compiled with the
/// implementation's target features, on a CPU that has them.
trait Lanes: Copy {
    fn splat(value: f32) -> Self;
    /// `values[..LANES]`.
    fn load(values: &[f32]) -> Self;
    /// `self + tap * values`, rounded twice, as tract rounds it.
    fn add_product(self, tap: Self, values: Self) -> Self;
    fn relu(self) -> Self;
    /// Into `out[..LANES]`.
    fn store(self, out: &mut [f32]);
}

#[derive(Clone, Copy)]
struct Portable([f32; LANES]);

impl Lanes for Portable {
    #[inline(always)]
    fn splat(value: f32) -> Self {
        Portable([value; LANES])
    }
    #[inline(always)]
    fn load(values: &[f32]) -> Self {
        let mut lanes = [0.0; LANES];
        lanes.copy_from_slice(&values[..LANES]);
        Portable(lanes)
    }
    #[inline(always)]
    fn add_product(mut self, tap: Self, values: Self) -> Self {
        for ((sum, tap), value) in self.0.iter_mut().zip(tap.0).zip(values.0) {
            *sum += tap * value;
        }
        self
    }
    #[inline(always)]
    fn relu(mut self) -> Self {
        for sum in &mut self.0 {
            *sum = sum.max(0.0);
        }
        self
    }
    #[inline(always)]
    fn store(self, out: &mut [f32]) {
        out[..LANES].copy_from_slice(&self.0);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{LANES, Lanes};

    #[derive(Clone, Copy)]
    pub struct Avx512(__m512);

    // SAFETY (both impls): the slices are checked to hold `LANES` values before each unaligned
    // load or store, and the methods run inside functions compiled for the target feature, which
    // the dispatcher chooses only on CPUs that have it.
    impl Lanes for Avx512 {
        #[inline(always)]
        fn splat(value: f32) -> Self {
            Avx512(unsafe { _mm512_set1_ps(value) })
        }
        #[inline(always)]
        fn load(values: &[f32]) -> Self {
            let values = &values[..LANES];
            Avx512(unsafe { _mm512_loadu_ps(values.as_ptr()) })
        }
        #[inline(always)]
        fn add_product(self, tap: Self, values: Self) -> Self {
            Avx512(unsafe { _mm512_add_ps(self.0, _mm512_mul_ps(tap.0, values.0)) })
        }
        #[inline(always)]
        fn relu(self) -> Self {
            Avx512(unsafe { _mm512_max_ps(self.0, _mm512_setzero_ps()) })
        }
        #[inline(always)]
        fn store(self, out: &mut [f32]) {
            let out = &mut out[..LANES];
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), self.0) }
        }
    }

    #[derive(Clone, Copy)]
    pub struct Avx2(__m256, __m256);

    impl Lanes for Avx2 {
        #[inline(always)]
        fn splat(value: f32) -> Self {
            let v = unsafe { _mm256_set1_ps(value) };
            Avx2(v, v)
        }
        #[inline(always)]
        fn load(values: &[f32]) -> Self {
            let values = &values[..LANES];
            let p = values.as_ptr();
            unsafe { Avx2(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
        }
        #[inline(always)]
        fn add_product(self, tap: Self, values: Self) -> Self {
            unsafe {
                Avx2(
                    _mm256_add_ps(self.0, _mm256_mul_ps(tap.0, values.0)),
                    _mm256_add_ps(self.1, _mm256_mul_ps(tap.1, values.1)),
                )
            }
        }
        #[inline(always)]
        fn relu(self) -> Self {
            unsafe {
                let zero = _mm256_setzero_ps();
                Avx2(_mm256_max_ps(self.0, zero), _mm256_max_ps(self.1, zero))
            }
        }
        #[inline(always)]
        fn store(self, out: &mut [f32]) {
            let out = &mut out[..LANES];
            let p = out.as_mut_ptr();
            unsafe {
                _mm256_storeu_ps(p, self.0);
                _mm256_storeu_ps(p.add(8), self.1);
            }
        }
    }
}

pub(super) type PlaneKernel = fn(&mut Rows, &[f32], &Filter, &mut [f32]);

/// The plane kernels this CPU can run, widest first, by name.
fn kernels() -> Vec<(&'static str, PlaneKernel)> {
    let mut kernels: Vec<(&'static str, PlaneKernel)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: each is listed only on a CPU that has the features it is compiled for.
        if std::arch::is_x86_feature_detected!("avx512f") {
            kernels.push(("avx512", |rows, input, filter, out| unsafe {
                plane_avx512(rows, input, filter, out)
            }));
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            kernels.push(("avx2", |rows, input, filter, out| unsafe {
                plane_avx2(rows, input, filter, out)
            }));
        }
    }
    kernels.push(("portable", plane::<Portable>));
    kernels
}

/// The plane kernel for the widest vectors this CPU has.
pub(super) fn plane_kernel() -> PlaneKernel {
    static KERNEL: OnceLock<PlaneKernel> = OnceLock::new();
    *KERNEL.get_or_init(|| kernels()[0].1)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn plane_avx512(rows: &mut Rows, input: &[f32], filter: &Filter, out: &mut [f32]) {
    plane::<x86::Avx512>(rows, input, filter, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn plane_avx2(rows: &mut Rows, input: &[f32], filter: &Filter, out: &mut [f32]) {
    plane::<x86::Avx2>(rows, input, filter, out)
}

#[inline(always)]
fn plane<V: Lanes>(rows: &mut Rows, input: &[f32], filter: &Filter, out: &mut [f32]) {
    if filter.relu {
        plane_then::<V, true>(rows, input, filter, out)
    } else {
        plane_then::<V, false>(rows, input, filter, out)
    }
}

/// One output plane, [`LANES`] points at a time: the bias, then the three taps of each kernel
/// row that falls inside the input, then the ReLU if `RELU`.
#[inline(always)]
fn plane_then<V: Lanes, const RELU: bool>(
    rows: &mut Rows,
    input: &[f32],
    filter: &Filter,
    out: &mut [f32],
) {
    let (width, reads) = (rows.out_width, rows.reads);
    let taps = filter.taps.map(V::splat);
    let bias = V::splat(filter.bias);
    rows.clear();
    for (y, out_row) in out.chunks_exact_mut(width).enumerate() {
        let kernel_rows = rows.window(input, y);
        for (x, out_lanes) in (0..).step_by(LANES).zip(out_row.chunks_mut(LANES)) {
            let mut sums = bias;
            for (ky, row) in kernel_rows.iter().enumerate() {
                let Some(row) = row else { continue };
                for (kx, read) in reads.into_iter().enumerate() {
                    sums = sums.add_product(taps[3 * ky + kx], V::load(&row[read + x..]));
                }
            }
            if RELU {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_this_cpu_has_gives_the_portable_result() {
        let (height, width) = (9, 21);
        let input: Vec<f32> = (0..height * width)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let taps: Taps = std::array::from_fn(|i| i as f32 * 0.25 - 1.0);
        let kernels = kernels();
        assert_eq!(kernels.last().map(|k| k.0), Some("portable"));
        for (step, out_width) in [(1, 21), (2, 11)] {
            let mut rows = Rows::new(step, (height, width), out_width, 1, [1, 1]);
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
                for (name, kernel) in &kernels {
                    let out = run(*kernel, &mut rows);
                    assert_eq!(portable, out, "{name}, stride {step}, relu {relu}");
                }
            }
        }
    }
}
