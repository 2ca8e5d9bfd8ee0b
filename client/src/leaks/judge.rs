//! Whether a face is masked in an anonymised frame, judged against the original frame in the
//! middle half of the face's box (the part a box interpolated between frames still covers).
//! An unmasked face keeps the original's detail (mean luma gradient) and looks like the
//! original rather than like the original blurred; re-encoding a video keeps both. A blur or
//! mosaic makes the region look like the blurred original, and a fill removes the detail, so a
//! mask fails at least one. Detail alone is not enough: in a frame already blurred (motion,
//! focus) a blur removes little detail, yet the region now looks like its blur.

use slblur_protocol::boxes::{self, BoxPx};

use crate::video::RgbFrame;

/// Below this mean luma gradient (levels per pixel) the original's box is too flat to tell
/// masked from unmasked; such a face is not judged.
const MIN_DETAIL: f64 = 1.0;

/// What was kept of the original in a face's box, each 0 (nothing) … about 1 (all).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// The output's mean luma gradient over the original's.
    pub detail_kept: f64,
    /// d(output, blurred original) / (d(output, original) + d(output, blurred original)),
    /// d the mean absolute luma difference: 1 when the output is the original, 0 when it is
    /// the original blurred with a box of half the face's size.
    pub like_original: f64,
}

impl Judgement {
    /// Unmasked: both measures at least `kept_above`.
    pub fn unmasked(&self, kept_above: f64) -> bool {
        self.detail_kept >= kept_above && self.like_original >= kept_above
    }
}

/// The judgement of `face`, or `None` when the original is too flat there to judge, the box is
/// outside the frame or the frames differ in size.
pub fn judge(original: &RgbFrame, output: &RgbFrame, face: BoxPx) -> Option<Judgement> {
    if (original.width, original.height) != (output.width, output.height) {
        return None;
    }
    let (w, h) = (face[2] - face[0], face[3] - face[1]);
    let middle = [
        face[0] + w / 4.0,
        face[1] + h / 4.0,
        face[2] - w / 4.0,
        face[3] - h / 4.0,
    ];
    let region = Region::of(boxes::within(middle, original.width, original.height)?);
    let before = Luma::of(original, region, 0, 0);
    let detail_before = before.detail(region)?;
    if detail_before < MIN_DETAIL {
        return None;
    }
    let after = Luma::of(output, region, 0, 0);
    let detail_kept = after.detail(region)? / detail_before;
    let (kx, ky) = (((w / 4.0) as usize).max(1), ((h / 4.0) as usize).max(1));
    let blurred = Luma::of(original, region, kx, ky).box_blur(region, kx, ky);
    let to_original = after.mean_difference(&before, region);
    let to_blurred = after.mean_difference(&blurred, region);
    let like_original = match to_original + to_blurred {
        0.0 => 1.0,
        sum => to_blurred / sum,
    };
    Some(Judgement {
        detail_kept,
        like_original,
    })
}

/// Whole pixels `x1..x2`, `y1..y2`.
#[derive(Debug, Clone, Copy)]
struct Region {
    x1: usize,
    y1: usize,
    x2: usize,
    y2: usize,
}

impl Region {
    fn of(b: BoxPx) -> Region {
        let [x1, y1, x2, y2] = b.map(|v| v as usize);
        Region { x1, y1, x2, y2 }
    }
}

/// A frame's luma in a window around a region (the region grown by a margin, clipped).
struct Luma {
    x0: usize,
    y0: usize,
    width: usize,
    values: Vec<i32>,
}

impl Luma {
    fn of(frame: &RgbFrame, r: Region, mx: usize, my: usize) -> Luma {
        let (fw, fh) = (frame.width as usize, frame.height as usize);
        let (x0, y0) = (r.x1.saturating_sub(mx), r.y1.saturating_sub(my));
        let (x1, y1) = ((r.x2 + mx + 1).min(fw), (r.y2 + my + 1).min(fh));
        let mut values = Vec::with_capacity((x1 - x0) * (y1 - y0));
        for y in y0..y1 {
            for x in x0..x1 {
                let i = (y * fw + x) * 3;
                let p = &frame.data[i..i + 3];
                values.push(
                    (77 * i32::from(p[0]) + 150 * i32::from(p[1]) + 29 * i32::from(p[2])) >> 8,
                );
            }
        }
        Luma {
            x0,
            y0,
            width: x1 - x0,
            values,
        }
    }

    fn rows(&self) -> usize {
        self.values.len() / self.width.max(1)
    }

    fn at(&self, x: usize, y: usize) -> i32 {
        self.values[(y - self.y0) * self.width + (x - self.x0)]
    }

    /// Mean absolute difference to the right and below neighbours, over `r`.
    fn detail(&self, r: Region) -> Option<f64> {
        let (x_end, y_end) = (self.x0 + self.width - 1, self.y0 + self.rows() - 1);
        let (mut sum, mut n) = (0i64, 0i64);
        for y in r.y1..r.y2.min(y_end) {
            for x in r.x1..r.x2.min(x_end) {
                let here = self.at(x, y);
                sum +=
                    i64::from((self.at(x + 1, y) - here).abs() + (self.at(x, y + 1) - here).abs());
                n += 2;
            }
        }
        (n > 0).then(|| sum as f64 / n as f64)
    }

    /// Mean absolute difference to `other` over `r`.
    fn mean_difference(&self, other: &Luma, r: Region) -> f64 {
        let (mut sum, mut n) = (0i64, 0i64);
        for y in r.y1..r.y2 {
            for x in r.x1..r.x2 {
                sum += i64::from((self.at(x, y) - other.at(x, y)).abs());
                n += 1;
            }
        }
        if n == 0 { 0.0 } else { sum as f64 / n as f64 }
    }

    /// Each pixel of `r` replaced by the mean of the (2kx+1)×(2ky+1) window around it, clipped
    /// to this window (an integral image: constant work per pixel).
    fn box_blur(&self, r: Region, kx: usize, ky: usize) -> Luma {
        let (w, h) = (self.width, self.rows());
        let mut sums = vec![0i64; (w + 1) * (h + 1)];
        for y in 0..h {
            let mut row = 0i64;
            for x in 0..w {
                row += i64::from(self.values[y * w + x]);
                sums[(y + 1) * (w + 1) + x + 1] = sums[y * (w + 1) + x + 1] + row;
            }
        }
        let mut values = self.values.clone();
        for y in r.y1 - self.y0..r.y2 - self.y0 {
            for x in r.x1 - self.x0..r.x2 - self.x0 {
                let (xa, xb) = (x.saturating_sub(kx), (x + kx + 1).min(w));
                let (ya, yb) = (y.saturating_sub(ky), (y + ky + 1).min(h));
                let total =
                    sums[yb * (w + 1) + xb] - sums[ya * (w + 1) + xb] - sums[yb * (w + 1) + xa]
                        + sums[ya * (w + 1) + xa];
                values[y * w + x] = (total / ((xb - xa) * (yb - ya)) as i64) as i32;
            }
        }
        Luma { values, ..*self }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A frame of `width`×`height` with a checkerboard of 2 px squares (lots of detail).
    pub fn textured(width: u32, height: u32) -> RgbFrame {
        let data = (0..width * height)
            .flat_map(|i| {
                let (x, y) = (i % width, i / width);
                let v = if (x / 2 + y / 2) % 2 == 0 { 40 } else { 200 };
                [v, v, v]
            })
            .collect();
        RgbFrame {
            width,
            height,
            data,
        }
    }

    /// `frame` with `region` changed pixel by pixel by `f(x, y, value)`.
    pub fn changed(frame: &RgbFrame, region: BoxPx, f: impl Fn(u32, u32, u8) -> u8) -> RgbFrame {
        let mut out = frame.clone();
        let [x1, y1, x2, y2] = region.map(|v| v as u32);
        for y in y1..y2 {
            for x in x1..x2 {
                let i = ((y * frame.width + x) * 3) as usize;
                let v = f(x, y, out.data[i]);
                out.data[i..i + 3].copy_from_slice(&[v, v, v]);
            }
        }
        out
    }

    #[test]
    fn an_untouched_face_is_unmasked_and_a_filled_or_blurred_one_is_not() {
        let original = textured(64, 48);
        let face = [10.0, 10.0, 30.0, 30.0];
        let same = judge(&original, &original, face).expect("judged");
        assert_eq!(
            same,
            Judgement {
                detail_kept: 1.0,
                like_original: 1.0
            }
        );
        assert!(same.unmasked(0.5));
        // A little noise, as re-encoding adds: still unmasked.
        let noisy = changed(&original, face, |x, y, v| {
            v.saturating_add(((x * 7 + y * 3) % 5) as u8)
        });
        assert!(
            judge(&original, &noisy, face)
                .expect("judged")
                .unmasked(0.5)
        );
        let filled = changed(&original, [6.0, 6.0, 34.0, 34.0], |_, _, _| 120);
        let judged = judge(&original, &filled, face).expect("judged");
        assert_eq!(judged.detail_kept, 0.0);
        assert!(!judged.unmasked(0.5));
        let blurred = changed(&original, [6.0, 6.0, 34.0, 34.0], |x, y, _| {
            if (x + y) % 2 == 0 { 119 } else { 121 }
        });
        assert!(
            !judge(&original, &blurred, face)
                .expect("judged")
                .unmasked(0.5)
        );
    }

    #[test]
    fn a_blurred_face_in_an_already_blurry_frame_is_masked() {
        // A soft original (little detail per pixel); the output is it blurred over 21×21 plus
        // a little noise, which keeps more than half of the small gradient.
        let soft = |x: u32, y: u32| 128.0 + 60.0 * (x as f64 / 6.0).sin() * (y as f64 / 7.0).cos();
        let original = changed(&textured(96, 96), [0.0, 0.0, 96.0, 96.0], |x, y, _| {
            soft(x, y) as u8
        });
        let blurred = changed(&original, [0.0, 0.0, 96.0, 96.0], |x, y, _| {
            let (xs, ys) = (
                x.saturating_sub(10)..(x + 11).min(96),
                y.saturating_sub(10)..(y + 11).min(96),
            );
            let n = (xs.len() * ys.len()) as f64;
            let mean = ys
                .flat_map(|v| xs.clone().map(move |u| soft(u, v)))
                .sum::<f64>()
                / n;
            (mean + [0.0, 3.0, -2.0, 4.0][((x * 3 + y * 5) % 4) as usize]) as u8
        });
        let judged = judge(&original, &blurred, [28.0, 28.0, 68.0, 68.0]).expect("judged");
        assert!(judged.detail_kept > 0.5, "{judged:?}");
        assert!(
            judged.like_original < 0.5 && !judged.unmasked(0.5),
            "{judged:?}"
        );
    }

    #[test]
    fn flat_boxes_and_boxes_outside_are_not_judged() {
        let original = textured(64, 48);
        let flat = changed(&original, [0.0, 0.0, 64.0, 48.0], |_, _, _| 120);
        assert_eq!(judge(&flat, &flat, [10.0, 10.0, 30.0, 30.0]), None);
        assert_eq!(
            judge(&original, &original, [100.0, 100.0, 120.0, 120.0]),
            None
        );
    }
}
