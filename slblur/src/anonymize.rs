//! Face anonymization in place: deface's mask geometry (box grown by `mask_scale − 1` of its
//! size on each side, rounded, clipped), then blur, mosaic or solid fill inside an ellipse or box.

use crate::codec::Frame;
use crate::detect::Face;
use crate::options::{MaskShape, Mode};

/// Mosaic cell size in pixels (deface's default).
pub const MOSAIC_CELL: usize = 20;

/// A pixel rectangle `[x1, x2) × [y1, y2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x1: usize,
    pub y1: usize,
    pub x2: usize,
    pub y2: usize,
}

impl Rect {
    fn width(&self) -> usize {
        self.x2 - self.x1
    }
    fn height(&self) -> usize {
        self.y2 - self.y1
    }
}

/// deface's `scale_bb` + clipping: the region a face's mask covers, or `None` if empty.
pub fn mask_rect(face: &Face, mask_scale: f32, width: u32, height: u32) -> Option<Rect> {
    let [x1, y1, x2, y2] = face.bbox.map(|v| v.trunc());
    let s = mask_scale - 1.0;
    let (w, h) = (x2 - x1, y2 - y1);
    let round = |v: f32| v.round_ties_even() as i64;
    let (x1, x2) = (
        round(x1 - w * s).max(0),
        round(x2 + w * s).min(width as i64 - 1),
    );
    let (y1, y2) = (
        round(y1 - h * s).max(0),
        round(y2 + h * s).min(height as i64 - 1),
    );
    (x2 > x1 && y2 > y1).then_some(Rect {
        x1: x1 as usize,
        y1: y1 as usize,
        x2: x2 as usize,
        y2: y2 as usize,
    })
}

/// Replaces every face's region according to `mode` and `mask`.
pub fn anonymize(frame: &mut Frame, faces: &[Face], mode: Mode, mask: MaskShape, mask_scale: f32) {
    if mode == Mode::None {
        return;
    }
    for face in faces {
        if let Some(rect) = mask_rect(face, mask_scale, frame.width, frame.height) {
            let mut patch = extract(frame, rect);
            let (w, h) = (rect.width(), rect.height());
            match mode {
                Mode::Blur => box_blur(&mut patch, w, h, (w / 2).max(1), (h / 2).max(1)),
                Mode::Mosaic => mosaic(&mut patch, w, h, MOSAIC_CELL),
                Mode::Solid => patch.fill(0),
                Mode::None => {}
            }
            write_back(frame, rect, &patch, mask);
        }
    }
}

fn extract(frame: &Frame, r: Rect) -> Vec<u8> {
    let stride = frame.width as usize * 3;
    let mut patch = Vec::with_capacity(r.width() * r.height() * 3);
    for y in r.y1..r.y2 {
        patch.extend_from_slice(&frame.rgb[y * stride + r.x1 * 3..y * stride + r.x2 * 3]);
    }
    patch
}

/// Copies the patch back; with an ellipse mask only the pixels inside the inscribed ellipse
/// (skimage's `ellipse(h//2, w//2, h//2, w//2)`, as deface draws it).
fn write_back(frame: &mut Frame, r: Rect, patch: &[u8], mask: MaskShape) {
    let stride = frame.width as usize * 3;
    let (w, h) = (r.width(), r.height());
    let (cy, cx) = ((h / 2) as f32, (w / 2) as f32);
    let (ry, rx) = (cy.max(0.5), cx.max(0.5));
    for py in 0..h {
        let row = (r.y1 + py) * stride;
        for px in 0..w {
            let inside = match mask {
                MaskShape::Box => true,
                MaskShape::Ellipse => {
                    let (dy, dx) = ((py as f32 - cy) / ry, (px as f32 - cx) / rx);
                    dy * dy + dx * dx < 1.0
                }
            };
            if inside {
                let dst = row + (r.x1 + px) * 3;
                let src = (py * w + px) * 3;
                frame.rgb[dst..dst + 3].copy_from_slice(&patch[src..src + 3]);
            }
        }
    }
}

/// OpenCV's border rule `BORDER_REFLECT_101` (`gfedcb|abcdefgh|gfedcba`).
fn reflect101(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let n = n as isize;
    let mut i = i;
    while i < 0 || i >= n {
        i = if i < 0 { -i } else { 2 * n - 2 - i };
    }
    i as usize
}

/// Normalised box filter like `cv2.blur(img, (kw, kh))`: anchor at the kernel centre,
/// reflect-101 borders, running sums so the cost does not depend on the kernel size.
pub fn box_blur(rgb: &mut [u8], w: usize, h: usize, kw: usize, kh: usize) {
    let mut sums = vec![0u32; w * h * 3];
    let mut line = vec![0u32; w.max(h) * 3];
    for y in 0..h {
        for x in 0..w {
            line[x * 3..x * 3 + 3].copy_from_slice(&[
                rgb[(y * w + x) * 3] as u32,
                rgb[(y * w + x) * 3 + 1] as u32,
                rgb[(y * w + x) * 3 + 2] as u32,
            ]);
        }
        running_sum(&line[..w * 3], kw, &mut sums[y * w * 3..(y + 1) * w * 3], 3);
    }
    let area = (kw * kh) as u32;
    let mut column = vec![0u32; h * 3];
    for x in 0..w {
        for y in 0..h {
            line[y * 3..y * 3 + 3].copy_from_slice(&sums[(y * w + x) * 3..(y * w + x) * 3 + 3]);
        }
        running_sum(&line[..h * 3], kh, &mut column, 3);
        for y in 0..h {
            for c in 0..3 {
                rgb[(y * w + x) * 3 + c] = ((column[y * 3 + c] + area / 2) / area) as u8;
            }
        }
    }
}

/// Sums of a `k`-wide window over interleaved `channels`, anchor `k / 2`, reflect-101 borders.
fn running_sum(src: &[u32], k: usize, dst: &mut [u32], channels: usize) {
    let n = src.len() / channels;
    let anchor = (k / 2) as isize;
    for c in 0..channels {
        let at = |i: isize| src[reflect101(i, n) * channels + c];
        let mut sum: u32 = (0..k as isize).map(|j| at(j - anchor)).sum();
        for i in 0..n as isize {
            dst[i as usize * channels + c] = sum;
            sum = sum + at(i + k as isize - anchor) - at(i - anchor);
        }
    }
}

/// Cells of `cell`×`cell` pixels replaced by their mean colour.
fn mosaic(rgb: &mut [u8], w: usize, h: usize, cell: usize) {
    for cy in (0..h).step_by(cell) {
        for cx in (0..w).step_by(cell) {
            let (ys, xs) = (cy..(cy + cell).min(h), cx..(cx + cell).min(w));
            let count = (ys.len() * xs.len()) as u32;
            let mut sum = [0u32; 3];
            for y in ys.clone() {
                for x in xs.clone() {
                    for c in 0..3 {
                        sum[c] += rgb[(y * w + x) * 3 + c] as u32;
                    }
                }
            }
            let mean = sum.map(|s| ((s + count / 2) / count) as u8);
            for y in ys {
                for x in xs.clone() {
                    rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&mean);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(bbox: [f32; 4]) -> Face {
        Face {
            bbox,
            score: 0.9,
            landmarks: [0.0; 10],
            source: slblur_protocol::Source::Detected,
        }
    }

    /// A checkerboard: maximal detail, so any smoothing shows.
    fn checker(width: u32, height: u32) -> Frame {
        let rgb = (0..width * height)
            .flat_map(|i| {
                if (i % width + i / width).is_multiple_of(2) {
                    [255u8; 3]
                } else {
                    [0u8; 3]
                }
            })
            .collect();
        Frame { width, height, rgb }
    }

    #[test]
    fn mask_rect_follows_deface_scale_bb() {
        // 100×50 box grown by 0.3 of its size on each side, rounded.
        let r = mask_rect(&face([100.7, 100.2, 200.9, 150.0]), 1.3, 1000, 1000).expect("rect");
        assert_eq!(
            r,
            Rect {
                x1: 70,
                y1: 85,
                x2: 230,
                y2: 165
            }
        );
        let r = mask_rect(&face([0.0, 0.0, 50.0, 50.0]), 1.3, 40, 40).expect("clipped");
        assert_eq!(
            r,
            Rect {
                x1: 0,
                y1: 0,
                x2: 39,
                y2: 39
            }
        );
        assert_eq!(
            mask_rect(&face([10.0, 10.0, 10.0, 10.0]), 1.3, 40, 40),
            None
        );
    }

    #[test]
    fn reflect101_matches_opencv() {
        let idx: Vec<usize> = (-3..8).map(|i| reflect101(i, 5)).collect();
        assert_eq!(idx, vec![3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
    }

    #[test]
    fn box_blur_equals_a_direct_average() {
        let (w, h, kw, kh) = (7usize, 5usize, 3usize, 2usize);
        let src: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
        let mut fast = src.clone();
        box_blur(&mut fast, w, h, kw, kh);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut sum = 0u32;
                    for dy in 0..kh as isize {
                        for dx in 0..kw as isize {
                            let yy = reflect101(y as isize + dy - (kh / 2) as isize, h);
                            let xx = reflect101(x as isize + dx - (kw / 2) as isize, w);
                            sum += src[(yy * w + xx) * 3 + c] as u32;
                        }
                    }
                    let want = ((sum + (kw * kh / 2) as u32) / (kw * kh) as u32) as u8;
                    assert_eq!(fast[(y * w + x) * 3 + c], want, "at {x},{y},{c}");
                }
            }
        }
    }

    #[test]
    fn every_mode_destroys_the_detail_inside_and_nothing_outside() {
        for mode in [Mode::Blur, Mode::Mosaic, Mode::Solid] {
            for mask in [MaskShape::Ellipse, MaskShape::Box] {
                let original = checker(100, 100);
                let mut frame = original.clone();
                anonymize(
                    &mut frame,
                    &[face([40.0, 40.0, 60.0, 60.0])],
                    mode,
                    mask,
                    1.3,
                );
                let px = |f: &Frame, x: usize, y: usize| f.rgb[(y * 100 + x) * 3];
                // Neighbouring pixels at the centre differed by 255; now they are close.
                let centre_contrast = px(&frame, 50, 50).abs_diff(px(&frame, 51, 50));
                assert!(centre_contrast < 40, "{mode:?}/{mask:?}: {centre_contrast}");
                assert_eq!(px(&frame, 5, 5), px(&original, 5, 5));
                assert_eq!(px(&frame, 95, 95), px(&original, 95, 95));
                // The mask's corner is kept by an ellipse and replaced by a box.
                let corner_kept = px(&frame, 35, 35) == px(&original, 35, 35)
                    && px(&frame, 36, 35) == px(&original, 36, 35);
                assert_eq!(corner_kept, mask == MaskShape::Ellipse, "{mode:?}/{mask:?}");
            }
        }
    }
}
