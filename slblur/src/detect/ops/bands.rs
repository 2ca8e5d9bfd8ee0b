//! Output rows computed in bands, one band per inference thread, each writing rows of every
//! channel that no other band writes: how the fused ops share an inference's threads.

use std::ops::Range;

use rayon::prelude::*;
use tract_linalg::multithread::{Executor, current_tract_executor};

use super::depthwise::Layout;

/// The sizes one evaluation of a banded op works with: its input's, its output's width, and how
/// its input rows are laid out.
pub(super) struct Geometry {
    pub height: usize,
    pub width: usize,
    pub out_width: usize,
    pub layout: Layout,
}

/// A channels-first output tensor, written by several bands at once.
pub(super) struct Output {
    values: *mut f32,
    len: usize,
    height: usize,
    width: usize,
}

// SAFETY: bands write disjoint rows (see `Output::row`), and the tensor outlives them.
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

impl Output {
    /// Over `values`, planes of `height` rows of `width` points.
    pub fn new(values: &mut [f32], height: usize, width: usize) -> Output {
        Output {
            values: values.as_mut_ptr(),
            len: values.len(),
            height,
            width,
        }
    }

    /// Row `y` of channel `channel`, for the one band that computes row `y`.
    ///
    /// # Safety
    /// No other reference to that row may exist while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn row(&self, channel: usize, y: usize) -> &mut [f32] {
        // SAFETY: the caller's contract.
        unsafe { self.part(channel, y, 0..self.width) }
    }

    /// Points `points` of row `y` of channel `channel`, for the one band that computes them.
    ///
    /// # Safety
    /// No other reference to those points may exist while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn part(&self, channel: usize, y: usize, points: Range<usize>) -> &mut [f32] {
        let start = (channel * self.height + y) * self.width + points.start;
        assert!(
            y < self.height && points.end <= self.width && start + points.len() <= self.len,
            "points {points:?} of row {y} of channel {channel} are outside the output"
        );
        // SAFETY: in bounds (checked above); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.values.add(start), points.len()) }
    }
}

/// Runs `band` over output rows `0..rows`, split into one band per thread of the current tract
/// executor. Each band lays out (and the blocks expand) the input rows at its edges again, so
/// fewer, larger bands do less work twice.
pub(super) fn in_bands(rows: usize, band: impl Fn(Range<usize>) + Sync) {
    match current_tract_executor() {
        Executor::MultiThread(pool) if pool.current_num_threads() > 1 && rows > 1 => {
            let bands = pool.current_num_threads().min(rows);
            pool.install(|| {
                (0..bands)
                    .into_par_iter()
                    .for_each(|i| band(i * rows / bands..(i + 1) * rows / bands))
            });
        }
        _ => band(0..rows),
    }
}
