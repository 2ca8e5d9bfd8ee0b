//! One frame, start to finish: (base64 →) decode → detect → anonymize → encode (→ base64),
//! timing each stage. Synchronous and CPU-bound; the server runs it on its worker pool, and it
//! stops between stages once nobody waits for the result.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use faas_server::Problem;

use crate::anonymize::anonymize;
use crate::codec::{self, Cause, CodecError, Frame};
use crate::detect::{Detector, Face, ModelError, Size};
use crate::options::{FrameOptions, ImageKind};
pub use slblur_protocol::{Timings, ms};

/// How the image travels: raw bytes, or base64 text (JSON and seed formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Raw,
    Base64,
}

/// The result of one frame.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The anonymized image, encoded (and base64-encoded if the transport says so).
    pub image: Vec<u8>,
    pub kind: ImageKind,
    pub faces: Vec<Face>,
    pub input: Size,
    pub inference: Size,
    pub timings: Timings,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the body is empty: send an image")]
    Empty,
    #[error("the image is not valid base64")]
    Base64(#[source] Cause),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The client went away or the deadline passed: the server's answer for it.
    #[error("{}", .0.message)]
    Interrupted(Problem),
}

/// Processes one frame. `timings.queue` and `timings.total` are left for the caller.
pub fn process(
    detector: &Detector,
    body: &[u8],
    transport: Transport,
    options: &FrameOptions,
    max_pixels: u64,
) -> Result<Processed, FrameError> {
    process_until(detector, body, transport, options, max_pixels, &|| None)
}

/// [`process`], asking `interrupted` after decoding, detection and anonymization whether
/// anybody still waits for the result (see `faas_server::Context::interrupted`).
pub fn process_until(
    detector: &Detector,
    body: &[u8],
    transport: Transport,
    options: &FrameOptions,
    max_pixels: u64,
    interrupted: &dyn Fn() -> Option<Problem>,
) -> Result<Processed, FrameError> {
    let checkpoint = || interrupted().map_or(Ok(()), |p| Err(FrameError::Interrupted(p)));
    let t0 = Instant::now();
    let (mut frame, input_kind) = decode(body, transport, max_pixels)?;
    checkpoint()?;
    let t1 = Instant::now();
    let detection = detector.detect(
        &frame,
        options.threshold,
        options.inference_width,
        options.max_inference_pixels,
    )?;
    checkpoint()?;
    let t2 = Instant::now();
    anonymize(
        &mut frame,
        &detection.faces,
        options.mode,
        options.mask,
        options.mask_scale,
    );
    checkpoint()?;
    let t3 = Instant::now();
    let kind = options.format.unwrap_or(input_kind);
    let image = encode(&frame, kind, options.quality, transport)?;
    let t4 = Instant::now();
    Ok(Processed {
        image,
        kind,
        faces: detection.faces,
        input: Size {
            width: frame.width,
            height: frame.height,
        },
        inference: detection.inference,
        timings: Timings {
            decode: ms(t1 - t0),
            ml: ms(t2 - t1),
            blur: ms(t3 - t2),
            encode: ms(t4 - t3),
            ..Timings::default()
        },
    })
}

/// The body (base64 first, if the transport says so) decoded into a frame.
fn decode(
    body: &[u8],
    transport: Transport,
    max_pixels: u64,
) -> Result<(Frame, ImageKind), FrameError> {
    let raw = match transport {
        Transport::Raw => std::borrow::Cow::Borrowed(body),
        Transport::Base64 => std::borrow::Cow::Owned(decode_base64(body)?),
    };
    if raw.is_empty() {
        return Err(FrameError::Empty);
    }
    Ok(codec::decode(&raw, max_pixels)?)
}

/// The frame encoded as `kind` (then base64, if the transport says so).
fn encode(
    frame: &Frame,
    kind: ImageKind,
    quality: u8,
    transport: Transport,
) -> Result<Vec<u8>, FrameError> {
    let image = codec::encode(frame, kind, quality)?;
    Ok(match transport {
        Transport::Raw => image,
        Transport::Base64 => BASE64.encode(&image).into_bytes(),
    })
}

/// Decodes base64 text, tolerating line breaks, surrounding quotes/space and a `data:` URL prefix.
pub fn decode_base64(text: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut text = text.trim_ascii();
    if text.starts_with(b"data:") {
        match text.iter().position(|&b| b == b',') {
            Some(comma) => text = &text[comma + 1..],
            None => return Err(FrameError::Base64("a data: URL without a comma".into())),
        }
    }
    let cleaned: Vec<u8>;
    if text.iter().any(|b| b.is_ascii_whitespace()) {
        cleaned = text
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        text = &cleaned;
    }
    BASE64
        .decode(text)
        .map_err(|e| FrameError::Base64(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_tolerates_wrapping_and_data_urls() {
        assert_eq!(decode_base64(b"aGVs\nbG8=\n").expect("wrapped"), b"hello");
        assert_eq!(
            decode_base64(b"data:image/png;base64,aGVsbG8=").expect("url"),
            b"hello"
        );
        let err = decode_base64(b"not base64!").expect_err("invalid");
        assert!(err.to_string().contains("base64"), "{err}");
    }
}
