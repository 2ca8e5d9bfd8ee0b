//! One frame, start to finish: (base64 →) decode → detect → anonymize → encode (→ base64),
//! timing each stage. Synchronous and CPU-bound; the server runs it on its worker pool, and it
//! stops between stages once nobody waits for the result.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use faas_server::Problem;

use crate::anonymize::anonymize;
use crate::codec::{self, Cause, CodecError, Frame};
use crate::detect::{Detector, Face, Inference, ModelError, Size};
use crate::options::{FrameOptions, ImageKind, Mode};
use slblur_protocol::boxes::{self, BoxPx};
pub use slblur_protocol::{Timings, ms};

/// A hint masked where it overlaps no detected face (or earlier hint) by this much: a face
/// detected again is masked once, not twice. The same overlap NMS treats as one face.
const HINT_OVERLAP: f32 = 0.3;

/// One frame as it arrived: the body, how it travels, and the boxes the request asks to mask
/// besides what the detector finds (checked by the wire format, clipped to the frame here).
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub body: &'a [u8],
    pub transport: Transport,
    pub hints: &'a [BoxPx],
}

impl<'a> Input<'a> {
    /// An image body without hints.
    pub fn raw(body: &'a [u8]) -> Self {
        Input {
            body,
            transport: Transport::Raw,
            hints: &[],
        }
    }
}

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
    /// The boxes masked: the detected faces, then the hints kept.
    pub faces: Vec<Face>,
    /// Regions replaced in the frame: every box of `faces`, or none with mode `none`.
    pub masked: usize,
    pub input: Size,
    pub inference: Inference,
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

impl Processed {
    /// Faces the detector found (the first of [`Processed::faces`]; the rest are hints).
    pub fn detected(&self) -> usize {
        self.faces
            .iter()
            .filter(|f| f.source == slblur_protocol::Source::Detected)
            .count()
    }
}

/// Processes one frame. `timings.queue` and `timings.total` are left for the caller.
pub fn process(
    detector: &Detector,
    input: Input<'_>,
    options: &FrameOptions,
    max_pixels: u64,
) -> Result<Processed, FrameError> {
    process_until(detector, input, options, max_pixels, &|| None)
}

/// [`process`], asking `interrupted` after decoding, detection and anonymization whether
/// anybody still waits for the result (see `faas_server::Context::interrupted`).
pub fn process_until(
    detector: &Detector,
    input: Input<'_>,
    options: &FrameOptions,
    max_pixels: u64,
    interrupted: &dyn Fn() -> Option<Problem>,
) -> Result<Processed, FrameError> {
    let checkpoint = || interrupted().map_or(Ok(()), |p| Err(FrameError::Interrupted(p)));
    let t0 = Instant::now();
    let (mut frame, input_kind) = decode(input.body, input.transport, max_pixels)?;
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
    let faces = with_hints(detection.faces, input.hints, frame.width, frame.height);
    anonymize(
        &mut frame,
        &faces,
        options.mode,
        options.mask,
        options.mask_scale,
    );
    checkpoint()?;
    let t3 = Instant::now();
    let kind = options.format.unwrap_or(input_kind);
    let image = encode(&frame, kind, options.quality, input.transport)?;
    let t4 = Instant::now();
    Ok(Processed {
        image,
        kind,
        masked: if options.mode == Mode::None {
            0
        } else {
            faces.len()
        },
        faces,
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

/// The detected faces, then each hint inside the frame (clipped to it) that no box before it
/// overlaps by [`HINT_OVERLAP`] or more.
fn with_hints(mut faces: Vec<Face>, hints: &[BoxPx], width: u32, height: u32) -> Vec<Face> {
    for &hint in hints {
        let Some(b) = boxes::within(hint, width, height) else {
            continue;
        };
        if faces.iter().all(|f| boxes::iou(f.bbox, b) < HINT_OVERLAP) {
            faces.push(Face::hint(b));
        }
    }
    faces
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

    #[test]
    fn hints_are_clipped_and_never_mask_a_face_twice() {
        let detected = Face {
            bbox: [10.0, 10.0, 50.0, 50.0],
            score: 0.9,
            landmarks: [0.0; 10],
            source: slblur_protocol::Source::Detected,
        };
        let hints = [
            [12.0, 11.0, 52.0, 49.0],  // the same face, seen again: masked once
            [80.0, -5.0, 140.0, 40.0], // a missed face, partly outside: clipped
            [200.0, 0.0, 220.0, 9.0],  // outside the frame: dropped
            [81.0, 0.0, 119.0, 40.0],  // the same hint twice: once
        ];
        let faces = with_hints(vec![detected.clone()], &hints, 120, 90);
        assert_eq!(faces, [detected, Face::hint([80.0, 0.0, 120.0, 40.0])]);
    }
}
