//! Image bytes to RGB frames and back: JPEG/PNG sniffing, the decompression-bomb guards
//! (pixels, metadata, scans), truncation checks, EXIF orientation, and fast codecs
//! (libjpeg-turbo for JPEG, see [`jpeg`]; fast deflate for PNG).

pub mod jpeg;

use std::io::Cursor;

use image::metadata::Orientation;
use image::{ImageDecoder, ImageReader};

use crate::options::ImageKind;

/// An 8-bit RGB image, rows top to bottom, no padding.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// What a decoder or encoder said went wrong (a library's error, or our own finding).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("the body is not a JPEG or PNG image (it starts with {0})")]
    NotAnImage(String),
    #[error("the image is {width}x{height} = {} pixels, above the limit of {max} pixels", *width as u64 * *height as u64)]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("the {kind} image is truncated or corrupt")]
    Corrupt {
        kind: &'static str,
        #[source]
        source: Cause,
    },
    #[error("this {kind} image is not supported")]
    Unsupported {
        kind: &'static str,
        #[source]
        source: Cause,
    },
    #[error("decoding the {kind} image needs more memory than allowed")]
    OverLimit {
        kind: &'static str,
        #[source]
        source: Cause,
    },
    #[error("could not encode the {kind} result")]
    Encode {
        kind: &'static str,
        #[source]
        source: Cause,
    },
}

/// Decodes a JPEG or PNG into RGB, refusing images above `max_pixels` before allocating them.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<(Frame, ImageKind), CodecError> {
    let kind =
        ImageKind::sniff(bytes).ok_or_else(|| CodecError::NotAnImage(describe_start(bytes)))?;
    let frame = match kind {
        ImageKind::Jpeg => jpeg::decode(bytes, max_pixels)?,
        ImageKind::Png => decode_png(bytes, max_pixels)?,
    };
    Ok((frame, kind))
}

pub(crate) fn check_size(
    width: u32,
    height: u32,
    max_pixels: u64,
    kind: &'static str,
) -> Result<(), CodecError> {
    if width as u64 * height as u64 > max_pixels {
        return Err(CodecError::TooManyPixels {
            width,
            height,
            max: max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(corrupt(kind, "the image has no pixels"));
    }
    Ok(())
}

pub(crate) fn corrupt(kind: &'static str, cause: impl Into<Cause>) -> CodecError {
    CodecError::Corrupt {
        kind,
        source: cause.into(),
    }
}

/// Metadata chunks a PNG decoder may hold (ICC profile, text), compressed and inflated, on
/// top of its row buffers: real profiles are well under 1 MB; a 1 GiB iCCP bomb stops here.
pub const PNG_METADATA_BYTES: u64 = 16 << 20;

/// Decodes a PNG with its limits set before the decoder reads any chunk: the image crate's
/// default (512 MiB) would otherwise let a metadata bomb inflate first. An iCCP chunk over
/// the limit is ignored by the decoder, as a broken one is; the pixels still decode.
fn decode_png(bytes: &[u8], max_pixels: u64) -> Result<Frame, CodecError> {
    let failed = |e: image::ImageError| match e {
        image::ImageError::Limits(l) => CodecError::OverLimit {
            kind: "PNG",
            source: l.into(),
        },
        image::ImageError::Unsupported(u) => CodecError::Unsupported {
            kind: "PNG",
            source: u.into(),
        },
        e => corrupt("PNG", e),
    };
    // IHDR comes first (8-byte signature, length, type): refuse by size before any decoder.
    let (width, height) = match bytes.get(12..24) {
        Some(h) if h.starts_with(b"IHDR") => (
            u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        ),
        _ => return Err(corrupt("PNG", "no image header (IHDR) first")),
    };
    check_size(width, height, max_pixels, "PNG")?;
    let mut limits = image::Limits::default();
    // Two rows of up to 8 bytes per pixel (RGBA, 16 bits) plus the metadata allowance.
    limits.max_alloc = Some(PNG_METADATA_BYTES + 16 * width as u64);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Png);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(failed)?;
    if decoder.dimensions() != (width, height) {
        return Err(corrupt("PNG", "the image header is not the first chunk"));
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    decoder.set_limits(limits).map_err(failed)?;
    let image = image::DynamicImage::from_decoder(decoder).map_err(failed)?;
    let frame = Frame {
        width,
        height,
        rgb: image.into_rgb8().into_raw(),
    };
    Ok(orient(frame, orientation))
}

/// Turns a frame the way its EXIF orientation says it is shown, so faces are found upright
/// and the answer (which carries no EXIF) looks as the client's viewer showed the input.
pub fn orient(frame: Frame, orientation: Orientation) -> Frame {
    if orientation == Orientation::NoTransforms {
        return frame;
    }
    let Some(buffer) = image::RgbImage::from_raw(frame.width, frame.height, frame.rgb) else {
        unreachable!("a frame's buffer matches its dimensions");
    };
    let mut image = image::DynamicImage::ImageRgb8(buffer);
    image.apply_orientation(orientation);
    let rgb = image.into_rgb8();
    Frame {
        width: rgb.width(),
        height: rgb.height(),
        rgb: rgb.into_raw(),
    }
}

/// Encodes an RGB frame. JPEG uses libjpeg-turbo (4:2:0); PNG the fastest deflate level, since
/// these frames are transient and latency matters more than size.
pub fn encode(frame: &Frame, kind: ImageKind, quality: u8) -> Result<Vec<u8>, CodecError> {
    match kind {
        ImageKind::Jpeg => {
            let image = turbojpeg::Image {
                pixels: frame.rgb.as_slice(),
                width: frame.width as usize,
                pitch: frame.width as usize * 3,
                height: frame.height as usize,
                format: turbojpeg::PixelFormat::RGB,
            };
            let jpeg = turbojpeg::compress(image, quality as i32, turbojpeg::Subsamp::Sub2x2)
                .map_err(|e| CodecError::Encode {
                    kind: "JPEG",
                    source: e.into(),
                })?;
            Ok(jpeg.to_vec())
        }
        ImageKind::Png => {
            use image::ImageEncoder;
            use image::codecs::png::{CompressionType, FilterType, PngEncoder};
            let mut out = Vec::with_capacity(frame.rgb.len() / 2);
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
                .write_image(
                    &frame.rgb,
                    frame.width,
                    frame.height,
                    image::ExtendedColorType::Rgb8,
                )
                .map_err(|e| CodecError::Encode {
                    kind: "PNG",
                    source: e.into(),
                })?;
            Ok(out)
        }
    }
}

fn describe_start(bytes: &[u8]) -> String {
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if head.is_empty() {
        "nothing".into()
    } else {
        format!("bytes {}", head.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> Frame {
        let rgb = (0..width * height)
            .flat_map(|i| {
                let (x, y) = (i % width, i / width);
                [(x * 255 / width) as u8, (y * 255 / height) as u8, 128]
            })
            .collect();
        Frame { width, height, rgb }
    }

    #[test]
    fn round_trips_png_exactly_and_jpeg_closely() {
        let f = gradient(64, 48);
        let png = encode(&f, ImageKind::Png, 90).expect("png");
        assert_eq!(
            decode(&png, 1 << 20).expect("decode png"),
            (f.clone(), ImageKind::Png)
        );
        let jpg = encode(&f, ImageKind::Jpeg, 95).expect("jpeg");
        let (back, kind) = decode(&jpg, 1 << 20).expect("decode jpeg");
        assert_eq!(kind, ImageKind::Jpeg);
        let max_diff = f
            .rgb
            .iter()
            .zip(&back.rgb)
            .map(|(a, b)| a.abs_diff(*b))
            .max();
        assert!(max_diff.is_some_and(|d| d < 16), "{max_diff:?}");
    }

    #[test]
    fn refuses_non_images_truncation_and_bombs() {
        assert!(matches!(
            decode(b"hello", 100),
            Err(CodecError::NotAnImage(_))
        ));
        assert!(matches!(decode(b"", 100), Err(CodecError::NotAnImage(_))));
        let jpg = encode(&gradient(64, 48), ImageKind::Jpeg, 90).expect("jpeg");
        let cut = &jpg[..jpg.len() * 2 / 3];
        assert!(matches!(
            decode(cut, 1 << 20),
            Err(CodecError::Corrupt { .. })
        ));
        let png = encode(&gradient(64, 48), ImageKind::Png, 90).expect("png");
        assert!(matches!(
            decode(&png[..png.len() / 2], 1 << 20),
            Err(CodecError::Corrupt { .. })
        ));
        let mut headless = png.clone();
        headless[12..16].copy_from_slice(b"tEXt");
        assert!(matches!(
            decode(&headless, 1 << 20),
            Err(CodecError::Corrupt { .. })
        ));
        let err = decode(&png, 64 * 47).expect_err("over the pixel limit");
        assert!(err.to_string().contains("64x48"), "{err}");
    }
}
