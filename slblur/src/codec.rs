//! Image bytes to RGB frames and back: JPEG/PNG sniffing, the decompression-bomb guard,
//! truncation checks, and fast encoders (jpeg-encoder for JPEG, fast deflate for PNG).

use std::io::Cursor;

use image::{ImageDecoder, ImageReader};

use crate::options::ImageKind;

/// An 8-bit RGB image, rows top to bottom, no padding.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("the body is not a JPEG or PNG image (it starts with {0})")]
    NotAnImage(String),
    #[error("the image is {width}x{height} = {} pixels, above the limit of {max} pixels", *width as u64 * *height as u64)]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("the {kind} image is truncated or corrupt: {reason}")]
    Corrupt { kind: &'static str, reason: String },
    #[error("could not encode the {0} result: {1}")]
    Encode(&'static str, String),
}

/// Recognises JPEG and PNG by their signatures; content types are not trusted.
pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageKind::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageKind::Png)
    } else {
        None
    }
}

/// Decodes a JPEG or PNG into RGB, refusing images above `max_pixels` before allocating them.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<(Frame, ImageKind), CodecError> {
    let kind = sniff(bytes).ok_or_else(|| CodecError::NotAnImage(describe_start(bytes)))?;
    let name = kind_name(kind);
    let corrupt = |e: image::ImageError| CodecError::Corrupt {
        kind: name,
        reason: e.to_string(),
    };
    let format = match kind {
        ImageKind::Jpeg => image::ImageFormat::Jpeg,
        ImageKind::Png => image::ImageFormat::Png,
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .map_err(corrupt)?;
    let (width, height) = reader.dimensions();
    if width as u64 * height as u64 > max_pixels {
        return Err(CodecError::TooManyPixels {
            width,
            height,
            max: max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(CodecError::Corrupt {
            kind: name,
            reason: "the image has no pixels".into(),
        });
    }
    if kind == ImageKind::Jpeg && !jpeg_is_complete(bytes) {
        return Err(CodecError::Corrupt {
            kind: name,
            reason: "no end-of-image marker after the last scan".into(),
        });
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    reader.set_limits(limits).map_err(corrupt)?;
    let image = image::DynamicImage::from_decoder(reader).map_err(corrupt)?;
    let rgb = image.into_rgb8();
    Ok((
        Frame {
            width,
            height,
            rgb: rgb.into_raw(),
        },
        kind,
    ))
}

/// Encodes an RGB frame. JPEG uses jpeg-encoder (SIMD); PNG uses the fastest deflate level,
/// since these frames are transient and size matters less than latency.
pub fn encode(frame: &Frame, kind: ImageKind, quality: u8) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(frame.rgb.len() / 4);
    match kind {
        ImageKind::Jpeg => {
            let (w, h) = (to_u16(frame.width)?, to_u16(frame.height)?);
            jpeg_encoder::Encoder::new(&mut out, quality)
                .encode(&frame.rgb, w, h, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| CodecError::Encode("JPEG", e.to_string()))?;
        }
        ImageKind::Png => {
            use image::ImageEncoder;
            use image::codecs::png::{CompressionType, FilterType, PngEncoder};
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
                .write_image(
                    &frame.rgb,
                    frame.width,
                    frame.height,
                    image::ExtendedColorType::Rgb8,
                )
                .map_err(|e| CodecError::Encode("PNG", e.to_string()))?;
        }
    }
    Ok(out)
}

fn to_u16(n: u32) -> Result<u16, CodecError> {
    u16::try_from(n)
        .map_err(|_| CodecError::Encode("JPEG", format!("{n} pixels exceeds JPEG's 65535 limit")))
}

fn kind_name(kind: ImageKind) -> &'static str {
    match kind {
        ImageKind::Jpeg => "JPEG",
        ImageKind::Png => "PNG",
    }
}

/// Entropy-coded data never holds an unstuffed `FF D9`, so a complete JPEG has its
/// end-of-image marker after the last start-of-scan; decoders would silently grey-fill instead.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(sos) => bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
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
        let err = decode(&png, 64 * 47).expect_err("over the pixel limit");
        assert!(err.to_string().contains("64x48"), "{err}");
    }
}
