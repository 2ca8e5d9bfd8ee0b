//! JPEG decoding with libjpeg-turbo, after a walk over the file's markers that decides what
//! the decoder is asked to do: sample precision (only 8-bit is decoded), the scan count (a
//! progressive file with thousands of scans is a CPU bomb), Adobe's inverted CMYK, and the
//! EXIF orientation the picture is meant to be shown in.

use image::metadata::Orientation;
use turbojpeg::{Colorspace, PixelFormat};

use super::{CodecError, Frame, check_size, corrupt};

/// More scans than any encoder writes (libjpeg's progressive scripts use ≤ 10 per component);
/// libjpeg-turbo's own tools suggest a limit of this order against scan bombs.
pub const MAX_SCANS: usize = 256;

/// What the markers say, read before anything is decoded.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Markers {
    /// Bits per sample from the frame header (SOFn); 0 if there is none.
    pub precision: u8,
    /// Start-of-scan markers.
    pub scans: usize,
    /// An Adobe APP14 segment: CMYK samples are stored inverted.
    pub adobe: bool,
    /// The first EXIF orientation tag (APP1), if any.
    pub orientation: Option<Orientation>,
}

/// Walks the marker segments (skipping entropy-coded data) up to EOI or the end of the bytes.
/// Linear in the file size; a truncated file yields what was read so far.
pub fn markers(bytes: &[u8]) -> Markers {
    let mut found = Markers::default();
    let mut pos = 2; // after SOI
    while pos + 1 < bytes.len() {
        if bytes[pos] != 0xFF {
            pos += 1;
            continue;
        }
        let marker = bytes[pos + 1];
        pos += 2;
        match marker {
            0xFF => pos -= 1, // fill byte
            0x01 | 0xD0..=0xD7 | 0x00 => {}
            0xD9 => break,
            _ => {
                let Some(len) = bytes
                    .get(pos..pos + 2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]))
                else {
                    break;
                };
                let end = (pos + len as usize).min(bytes.len());
                let segment = bytes.get(pos + 2..end).unwrap_or_default();
                match marker {
                    0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                        found.precision = segment.first().copied().unwrap_or(0);
                    }
                    0xE1 if found.orientation.is_none() => {
                        if let Some(tiff) = segment.strip_prefix(b"Exif\0\0") {
                            found.orientation = Orientation::from_exif_chunk(tiff);
                        }
                    }
                    0xEE if segment.starts_with(b"Adobe") => found.adobe = true,
                    0xDA => {
                        found.scans += 1;
                        pos = skip_entropy_data(bytes, end);
                        continue;
                    }
                    _ => {}
                }
                pos = end;
            }
        }
    }
    found
}

/// The position of the next marker after entropy-coded data: an `FF` not followed by a
/// stuffed `00` or a restart marker.
fn skip_entropy_data(bytes: &[u8], mut pos: usize) -> usize {
    while pos + 1 < bytes.len() {
        if bytes[pos] == 0xFF && !matches!(bytes[pos + 1], 0x00 | 0xD0..=0xD7 | 0xFF) {
            return pos;
        }
        pos += 1;
    }
    bytes.len()
}

/// Decodes to RGB, upright: 8-bit YCbCr, greyscale, RGB, CMYK and YCCK files; anything else
/// is refused as unsupported before decoding starts.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<Frame, CodecError> {
    let found = markers(bytes);
    if found.precision != 8 && found.precision != 0 {
        return Err(CodecError::Unsupported {
            kind: "JPEG",
            source: format!(
                "{}-bit samples (only 8-bit JPEGs are decoded)",
                found.precision
            )
            .into(),
        });
    }
    if found.scans > MAX_SCANS {
        return Err(CodecError::Unsupported {
            kind: "JPEG",
            source: format!("{} scans, more than the {MAX_SCANS} allowed", found.scans).into(),
        });
    }
    let mut decompressor = turbojpeg::Decompressor::new().map_err(|e| corrupt("JPEG", e))?;
    decompressor
        .set_scan_limit(MAX_SCANS as u32)
        .map_err(|e| corrupt("JPEG", e))?;
    let header = decompressor
        .read_header(bytes)
        .map_err(|e| corrupt("JPEG", e))?;
    let (width, height) = (
        u32::try_from(header.width).unwrap_or(u32::MAX),
        u32::try_from(header.height).unwrap_or(u32::MAX),
    );
    check_size(width, height, max_pixels, "JPEG")?;
    if !is_complete(bytes) {
        return Err(corrupt(
            "JPEG",
            "no end-of-image marker after the last scan",
        ));
    }
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    // libjpeg-turbo does not convert CMYK to RGB: it hands over CMYK, converted here.
    let format = if cmyk {
        PixelFormat::CMYK
    } else {
        PixelFormat::RGB
    };
    let (w, h) = (header.width, header.height);
    let mut pixels = vec![0u8; w * h * format.size()];
    let image = turbojpeg::Image {
        pixels: pixels.as_mut_slice(),
        width: w,
        pitch: w * format.size(),
        height: h,
        format,
    };
    decompressor
        .decompress(bytes, image)
        .map_err(|e| corrupt("JPEG", e))?;
    let rgb = if cmyk {
        cmyk_to_rgb(&pixels, found.adobe)
    } else {
        pixels
    };
    let frame = Frame { width, height, rgb };
    Ok(match found.orientation {
        Some(o) => super::orient(frame, o),
        None => frame,
    })
}

/// Naive CMYK → RGB (no colour management): R = (1 − C)(1 − K) and so on. Adobe's files
/// (Photoshop, and libjpeg whenever it writes CMYK) store each sample inverted, 255 − ink.
pub fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let [c, m, y, k] = if inverted {
            [px[0], px[1], px[2], px[3]]
        } else {
            [255 - px[0], 255 - px[1], 255 - px[2], 255 - px[3]]
        };
        let k = k as u16;
        for v in [c, m, y] {
            rgb.push(((v as u16 * k + 127) / 255) as u8);
        }
    }
    rgb
}

/// Entropy-coded data never holds an unstuffed `FF D9`, so a complete JPEG has its
/// end-of-image marker after the last start-of-scan; decoders would silently grey-fill instead.
pub fn is_complete(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(sos) => bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_of_a_plain_jpeg() {
        let frame = Frame {
            width: 16,
            height: 8,
            rgb: vec![90; 16 * 8 * 3],
        };
        let jpeg = super::super::encode(&frame, crate::options::ImageKind::Jpeg, 90).expect("jpeg");
        let m = markers(&jpeg);
        assert_eq!((m.precision, m.scans, m.adobe), (8, 1, false));
        assert_eq!(m.orientation, None);
    }

    #[test]
    fn cmyk_conversion_handles_both_conventions() {
        assert_eq!(cmyk_to_rgb(&[255, 0, 128, 255], true), [255, 0, 128]);
        assert_eq!(cmyk_to_rgb(&[0, 255, 127, 0], false), [255, 0, 128]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255], false), [0, 0, 0]);
    }
}
