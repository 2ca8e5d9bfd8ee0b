//! How slblur's ops share an inference's threads: one band of the output per thread, the same
//! band on the same thread in every op. The fused ops take bands of rows of every channel
//! ([`in_bands`], [`Output`]); the 1×1, depthwise and transposed convolutions bands of whole
//! channels ([`in_row_bands`]).

use std::ops::Range;
use std::sync::Mutex;

use tract_linalg::multithread::{
    Executor, current_threading_element_threshold, current_tract_executor,
};
use tract_onnx::prelude::TractResult;

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

/// Runs `part(i, n)` for each of the current tract executor's `n` threads, part `i` on thread
/// `i`, and returns what each part returned, in order.
///
/// The pool's threads are pinned one per CPU when they can be ([`crate::runtime::threads`]),
/// so every op that splits its work this way gives each CPU the same share of the channels or
/// rows: where an op reads channel by channel what the one before wrote (a depthwise
/// convolution after a 1×1), each thread reads its own band from its own cache. Split by work
/// stealing, either half of each op landed on either thread.
fn on_each_thread<R: Send>(part: impl Fn(usize, usize) -> R + Sync) -> Vec<R> {
    match current_tract_executor() {
        Executor::MultiThread(pool) if pool.current_num_threads() > 1 => {
            pool.broadcast(|thread| part(thread.index(), thread.num_threads()))
        }
        _ => vec![part(0, 1)],
    }
}

/// Runs `band` over output rows `0..rows`, split into one band per thread of the current tract
/// executor. Each band lays out (and the blocks expand) the input rows at its edges again, so
/// fewer, larger bands do less work twice.
pub(super) fn in_bands(rows: usize, band: impl Fn(Range<usize>) + Sync) {
    on_each_thread(|i, threads| {
        let bands = threads.min(rows);
        if i < bands {
            band(i * rows / bands..(i + 1) * rows / bands);
        }
    });
}

/// Runs `f(first, rows)` over `values`, rows of `row_len` values, split into one band of whole
/// rows per thread of the current tract executor (as [`in_bands`]); `first` is the band's first
/// row. Below tract's threading threshold of `work` multiply-adds it runs on the calling thread
/// alone.
pub(super) fn in_row_bands<T: Send>(
    values: &mut [T],
    row_len: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) -> TractResult<()> + Sync,
) -> TractResult<()> {
    let rows = values.len() / row_len;
    let bands = threads().min(rows);
    if work < current_threading_element_threshold() || bands < 2 {
        return f(0, values);
    }
    // Each thread takes the band of its own index.
    let mut rest = values;
    let taken: Vec<Taken<T>> = (0..bands)
        .map(|i| {
            let band = i * rows / bands..(i + 1) * rows / bands;
            let (values, after) = std::mem::take(&mut rest).split_at_mut(band.len() * row_len);
            rest = after;
            Mutex::new(Some((band.start, values)))
        })
        .collect();
    let take = |i: usize| taken.get(i)?.lock().ok()?.take();
    on_each_thread(|i, _| take(i).map_or(Ok(()), |(first, band)| f(first, band)))
        .into_iter()
        .collect()
}

/// A band of [`in_row_bands`] and its first row, until its thread takes it.
type Taken<'a, T> = Mutex<Option<(usize, &'a mut [T])>>;

/// The current tract executor's threads.
fn threads() -> usize {
    match current_tract_executor() {
        Executor::MultiThread(pool) => pool.current_num_threads(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::threads::{executor, run_on};
    use tract_linalg::multithread::multithread_tract_scope;

    #[test]
    fn row_bands_write_every_row_once_with_its_index_on_any_thread_count() {
        for threads in 1..=3 {
            for rows in [1, 2, 7, 64] {
                let pool = executor(threads).expect("pool");
                let mut values = vec![usize::MAX; rows * 5];
                run_on(&pool, || {
                    multithread_tract_scope(pool.clone(), || {
                        in_row_bands(&mut values, 5, usize::MAX, |first, band| {
                            for (i, v) in band.iter_mut().enumerate() {
                                assert_eq!(*v, usize::MAX, "written twice");
                                *v = first * 5 + i;
                            }
                            Ok(())
                        })
                    })
                })
                .expect("bands");
                let expected: Vec<usize> = (0..rows * 5).collect();
                assert_eq!(values, expected, "{threads} threads, {rows} rows");
            }
        }
    }

    #[test]
    fn a_failing_band_fails_the_whole() {
        let pool = executor(2).expect("pool");
        let mut values = vec![0u8; 64];
        let result = multithread_tract_scope(pool, || {
            in_row_bands(&mut values, 1, usize::MAX, |first, _| match first {
                0 => Ok(()),
                _ => Err(anyhow::anyhow!("band at {first}")),
            })
        });
        assert!(result.is_err());
    }
}
