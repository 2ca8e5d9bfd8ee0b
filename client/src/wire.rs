//! The client's end of the function's three wire formats ([`slblur_protocol`]): request bodies
//! (built once per frame per run) and replies read into a result row's facts — timings, face
//! count, cold flag, instance and the returned image.
//!
//! - binary: image body; timings in `Server-Timing`, faces in `X-Face-Count`, the masked
//!   boxes in `X-Slblur-Boxes` (the detected ones first).
//! - json: [`JsonRequest`] in, [`JsonReply`] out.
//! - seed: the original Python system: base64 text in (no Content-Type), [`seed`] text out.

use std::io::Cursor;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use slblur_protocol::boxes::{self, BoxPx};
use slblur_protocol::{
    ErrorBody, Face, ImageKind, JsonReply, JsonRequest, Precision, Source, Wire, header, seed,
    server_timing, stage,
};

use crate::video::RgbFrame;

/// Longest error text kept in a row: enough for the server's message, not for a whole page.
const MAX_ERROR_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot encode frame as {}", .format.name())]
    Encode {
        format: ImageKind,
        #[source]
        source: image::ImageError,
    },
    #[error("cannot decode returned image")]
    Decode(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What a successful response told us. Unknown values stay `None`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ParsedReply {
    pub total_ms: Option<f64>,
    pub ml_ms: Option<f64>,
    pub queue_ms: Option<f64>,
    /// Which replica answered (`X-Slblur-Instance`, JSON `instance`).
    pub instance: Option<String>,
    /// The precision it ran the network at (`X-Slblur-Precision`, JSON `inference.precision`).
    pub precision: Option<Precision>,
    pub faces: Option<u32>,
    /// The boxes the reply lists as masked, in pixels of the frame sent: the detected faces
    /// first (as many as `faces`), then the hints kept.
    pub boxes: Vec<BoxPx>,
    /// Regions masked: detected faces and the hints kept (0 with `mode=none`).
    pub masked: Option<u32>,
    pub cold: Option<bool>,
    pub image: Option<ReplyImage>,
}

impl ParsedReply {
    /// The detected faces' boxes (`--smooth` sends them back as hints).
    pub fn detected(&self) -> &[BoxPx] {
        let faces = self.faces.unwrap_or(0) as usize;
        &self.boxes[..faces.min(self.boxes.len())]
    }
}

/// The anonymized frame as it came back; decoded only if `--save-video` needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyImage {
    Raw(Bytes),
    Base64(String),
}

impl ReplyImage {
    /// The image as RGB pixels.
    pub fn to_frame(&self) -> Result<RgbFrame, WireError> {
        let bytes = match self {
            ReplyImage::Raw(b) => b.to_vec(),
            ReplyImage::Base64(s) => BASE64
                .decode(s.trim())
                .map_err(|e| WireError::Decode(e.into()))?,
        };
        decode_image(&bytes)
    }
}

/// A request body ready to send many times (cheap to clone).
#[derive(Debug, Clone)]
pub struct RequestBody {
    pub bytes: Bytes,
    pub content_type: Option<&'static str>,
}

/// Encodes a frame as JPEG or PNG bytes.
pub fn encode_image(
    frame: &RgbFrame,
    format: ImageKind,
    quality: u8,
) -> Result<Vec<u8>, WireError> {
    use image::ImageEncoder;
    let mut out = Vec::with_capacity(frame.data.len() / 8);
    let color = image::ExtendedColorType::Rgb8;
    let result = match format {
        ImageKind::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .write_image(&frame.data, frame.width, frame.height, color),
        ImageKind::Png => image::codecs::png::PngEncoder::new_with_quality(
            &mut out,
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Adaptive,
        )
        .write_image(&frame.data, frame.width, frame.height, color),
    };
    result.map_err(|source| WireError::Encode { format, source })?;
    Ok(out)
}

/// Decodes JPEG or PNG bytes into an RGB frame.
pub fn decode_image(bytes: &[u8]) -> Result<RgbFrame, WireError> {
    let img = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| WireError::Decode(e.into()))?
        .decode()
        .map_err(|e| WireError::Decode(e.into()))?
        .into_rgb8();
    let (width, height) = img.dimensions();
    Ok(RgbFrame {
        width,
        height,
        data: img.into_raw(),
    })
}

/// Builds the request body for one frame in the given wire format.
pub fn request_body(
    frame: &RgbFrame,
    wire: Wire,
    format: ImageKind,
    quality: u8,
) -> Result<RequestBody, WireError> {
    let image = encode_image(frame, format, quality)?;
    let bytes: Bytes = match wire {
        Wire::Binary => image.into(),
        Wire::Json => {
            let request = JsonRequest {
                image: BASE64.encode(&image).into(),
                hints: Vec::new(),
            };
            // Serializing a string and an empty list cannot fail.
            serde_json::to_vec(&request).unwrap_or_default().into()
        }
        Wire::Seed => BASE64.encode(&image).into(),
    };
    Ok(RequestBody {
        bytes,
        content_type: wire.request_content_type(format),
    })
}

/// The original frame inside a request body (for `--save-video` when a request failed).
pub fn body_image(body: &RequestBody, wire: Wire) -> Result<RgbFrame, WireError> {
    match wire {
        Wire::Binary => decode_image(&body.bytes),
        Wire::Seed => {
            ReplyImage::Base64(String::from_utf8_lossy(&body.bytes).into_owned()).to_frame()
        }
        Wire::Json => {
            let request: JsonRequest =
                serde_json::from_slice(&body.bytes).map_err(|e| WireError::Decode(e.into()))?;
            ReplyImage::Base64(request.image.into_owned()).to_frame()
        }
    }
}

/// Parses a 2xx response. `Err` is the row's error text (the body did not parse).
pub fn parse_reply(wire: Wire, headers: &HeaderMap, body: &Bytes) -> Result<ParsedReply, String> {
    let mut reply = match wire {
        Wire::Binary => parse_binary(headers, body),
        Wire::Json => parse_json(body),
        Wire::Seed => parse_seed(body),
    }?;
    // Every format carries the timing and instance headers; the body's own values win.
    if reply.queue_ms.is_none() {
        reply.queue_ms = server_timing::find(&timing(headers), stage::QUEUE);
    }
    if reply.instance.is_none() {
        reply.instance = header_text(headers, header::INSTANCE).map(str::to_string);
    }
    if reply.precision.is_none() {
        reply.precision = header_text(headers, header::PRECISION).and_then(|v| v.parse().ok());
    }
    Ok(reply)
}

/// A header's value as text (`None` when missing or not text).
pub(crate) fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The reply's `Server-Timing` stages (none when it has no such header).
fn timing(headers: &HeaderMap) -> Vec<(String, f64)> {
    header_text(headers, header::SERVER_TIMING)
        .map(server_timing::parse)
        .unwrap_or_default()
}

fn parse_binary(headers: &HeaderMap, body: &Bytes) -> Result<ParsedReply, String> {
    if ImageKind::sniff(body).is_none() {
        return Err(format!(
            "response body is not a JPEG or PNG image ({} bytes: {})",
            body.len(),
            snippet(body)
        ));
    }
    let timing = timing(headers);
    Ok(ParsedReply {
        total_ms: server_timing::find(&timing, stage::TOTAL),
        ml_ms: server_timing::find(&timing, stage::ML),
        queue_ms: server_timing::find(&timing, stage::QUEUE),
        instance: None,
        precision: None,
        faces: header_text(headers, header::FACE_COUNT).and_then(|v| v.trim().parse().ok()),
        // The detected faces come first, as many as X-Face-Count; the rest are kept hints.
        boxes: header_text(headers, header::BOXES)
            .and_then(|v| boxes::parse(v).ok())
            .unwrap_or_default(),
        masked: header_text(headers, header::MASKED).and_then(|v| v.trim().parse().ok()),
        cold: header_text(headers, header::COLD).and_then(parse_bool),
        image: Some(ReplyImage::Raw(body.clone())),
    })
}

fn parse_json(body: &Bytes) -> Result<ParsedReply, String> {
    let reply: JsonReply = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            format!(
                "JSON response is not the function's reply ({e}): {}",
                snippet(body)
            )
        } else {
            format!("response is not JSON ({e}): {}", snippet(body))
        }
    })?;
    let t = reply.timings_ms;
    // The detected faces first, then the request's hints.
    let (detected, hints): (Vec<&Face>, Vec<&Face>) = reply
        .faces
        .iter()
        .partition(|f| f.source == Source::Detected);
    Ok(ParsedReply {
        total_ms: Some(t.total),
        ml_ms: Some(t.ml),
        queue_ms: Some(t.queue),
        instance: Some(reply.instance.into_owned()),
        precision: Some(reply.inference.precision),
        faces: u32::try_from(detected.len()).ok(),
        boxes: detected.iter().chain(&hints).map(|f| f.bbox).collect(),
        masked: u32::try_from(reply.faces.len()).ok(),
        cold: Some(reply.cold),
        image: Some(ReplyImage::Base64(reply.image.into_owned())),
    })
}

fn parse_seed(body: &Bytes) -> Result<ParsedReply, String> {
    let text = String::from_utf8_lossy(body);
    let reply = seed::parse(&text).ok_or_else(|| {
        format!(
            "seed response lacks 'Elapsed ML time:' / 'Total time:' lines: {}",
            snippet(body)
        )
    })?;
    Ok(ParsedReply {
        total_ms: Some(reply.total_ms),
        ml_ms: Some(reply.ml_ms),
        queue_ms: None,
        instance: None,
        precision: None,
        faces: None,
        boxes: Vec::new(),
        masked: None,
        cold: None,
        image: reply.image.map(|b64| ReplyImage::Base64(b64.to_string())),
    })
}

/// The row's error text for a non-2xx response: status plus the server's message if any.
pub fn error_text(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> String {
    let mut text = format!("HTTP {}", status.as_u16());
    if let Some(reason) = status.canonical_reason() {
        text = format!("{text} {reason}");
    }
    if let Some(after) = header_text(headers, header::RETRY_AFTER) {
        text = format!("{text} (retry after {after})");
    }
    let message = server_message(body);
    // The status line carries header text too (Retry-After): cut it even without a body.
    match message.or_else(|| Some(snippet(body)).filter(|s| !s.is_empty())) {
        Some(m) => shorten(&format!("{text}: {m}")),
        None => shorten(&text),
    }
}

/// The message of the server's JSON [`ErrorBody`] as `code: message`, or
/// of another server's `{"error": "..."}` / `{"error": {"message": "..."}}`.
fn server_message(body: &[u8]) -> Option<String> {
    if let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) {
        return Some(format!("{}: {}", error.code, error.message));
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let err = &v["error"];
    err["message"].as_str().or(err.as_str()).map(str::to_string)
}

/// First line of a body, printable and short, for error texts.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_CHARS * 4)]);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let clean: String = line
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    shorten(&clean)
}

/// Cuts text to [`MAX_ERROR_CHARS`] characters.
pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn frame() -> RgbFrame {
        let data = (0..32 * 16 * 3).map(|i| (i % 251) as u8).collect();
        RgbFrame {
            width: 32,
            height: 16,
            data,
        }
    }

    #[test]
    fn binary_reply() {
        let body = request_body(&frame(), Wire::Binary, ImageKind::Jpeg, 90).expect("test input");
        assert_eq!(body.content_type, Some("image/jpeg"));
        let mut h = HeaderMap::new();
        h.insert(
            "server-timing",
            HeaderValue::from_static("ml;dur=150.2, total;dur=160"),
        );
        h.insert("x-face-count", HeaderValue::from_static("2"));
        h.insert("x-slblur-masked", HeaderValue::from_static("3"));
        h.insert(
            "x-slblur-boxes",
            HeaderValue::from_static("1,2,3,4;5,6,7,8;9,9,12,12"),
        );
        h.insert("x-slblur-cold", HeaderValue::from_static("true"));
        let r = parse_reply(Wire::Binary, &h, &body.bytes).expect("test input");
        assert_eq!(
            (r.ml_ms, r.total_ms, r.faces, r.masked, r.cold),
            (Some(150.2), Some(160.0), Some(2), Some(3), Some(true))
        );
        assert_eq!(r.detected(), [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]);
        assert_eq!(r.boxes.len(), 3);
        let img = r.image.expect("test input").to_frame().expect("test input");
        assert_eq!((img.width, img.height), (32, 16));
        assert!(
            parse_reply(Wire::Binary, &h, &Bytes::from_static(b"<html>oops"))
                .unwrap_err()
                .contains("not a JPEG")
        );
    }

    #[test]
    fn json_round_trip() {
        let body = request_body(&frame(), Wire::Json, ImageKind::Png, 90).expect("test input");
        assert_eq!(body_image(&body, Wire::Json).expect("test input"), frame());
        let request: JsonRequest = serde_json::from_slice(&body.bytes).expect("test input");
        let face = |x: f32| slblur_protocol::Face {
            bbox: [x, x, x + 1.0, x + 1.0],
            score: 0.9,
            landmarks: [x; 10],
            source: Source::Detected,
        };
        let reply = serde_json::to_string(&JsonReply {
            image: request.image,
            format: ImageKind::Png,
            faces: vec![
                face(0.0),
                face(2.0),
                slblur_protocol::Face::hint([1.0, 1.0, 4.0, 4.0]),
            ],
            timings_ms: slblur_protocol::Timings {
                ml: 12.5,
                total: 20.0,
                ..Default::default()
            },
            input: slblur_protocol::Size {
                width: 32,
                height: 16,
            },
            inference: slblur_protocol::Inference {
                width: 32,
                height: 32,
                precision: slblur_protocol::Precision::Fp32,
            },
            cold: false,
            instance: "a".into(),
            request_id: "r".into(),
        })
        .expect("test input");
        let r = parse_reply(Wire::Json, &HeaderMap::new(), &reply.into()).expect("test input");
        assert_eq!(
            (r.ml_ms, r.total_ms, r.faces, r.masked, r.cold),
            (Some(12.5), Some(20.0), Some(2), Some(3), Some(false))
        );
        assert_eq!(r.detected(), [[0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]]);
        assert_eq!(
            r.image.expect("test input").to_frame().expect("test input"),
            frame()
        );
        assert!(parse_reply(Wire::Json, &HeaderMap::new(), &Bytes::from_static(b"{}")).is_err());
        assert!(
            parse_reply(
                Wire::Json,
                &HeaderMap::new(),
                &Bytes::from_static(b"garbage")
            )
            .is_err()
        );
    }

    #[test]
    fn seed_like_the_original() {
        let body = request_body(&frame(), Wire::Seed, ImageKind::Png, 90).expect("test input");
        assert_eq!(body.content_type, None);
        assert_eq!(body_image(&body, Wire::Seed).expect("test input"), frame());
        let b64 = String::from_utf8(body.bytes.to_vec()).expect("test input");
        let text = format!(
            "Elapsed ML time: 2.45\nTotal time:3.6\n{{'text': 'serveRR', 'img': '{b64}'}}\n"
        );
        let r = parse_reply(Wire::Seed, &HeaderMap::new(), &text.into()).expect("test input");
        assert_eq!(
            (r.ml_ms, r.total_ms, r.faces, r.cold),
            (Some(2450.0), Some(3600.0), None, None)
        );
        assert_eq!(
            r.image.expect("test input").to_frame().expect("test input"),
            frame()
        );
        // The original system's final version returned an empty img.
        let empty = "Elapsed ML time: 1e-1\nTotal time: 0.2\n{'text': 'serveRR', 'img': ''}";
        let r = parse_reply(Wire::Seed, &HeaderMap::new(), &empty.into()).expect("test input");
        assert_eq!((r.ml_ms, r.image), (Some(100.0), None));
        assert!(parse_reply(Wire::Seed, &HeaderMap::new(), &Bytes::from_static(b"hello")).is_err());
    }

    #[test]
    fn error_texts_carry_the_server_message() {
        let mut h = HeaderMap::new();
        let body = Bytes::from_static(
            br#"{"error": {"code": "overloaded", "message": "too many requests in flight"}}"#,
        );
        h.insert("retry-after", HeaderValue::from_static("1"));
        assert_eq!(
            error_text(StatusCode::TOO_MANY_REQUESTS, &h, &body),
            "HTTP 429 Too Many Requests (retry after 1): overloaded: too many requests in flight"
        );
        let plain = Bytes::from_static(b"\n upstream down\nmore");
        assert_eq!(
            error_text(StatusCode::BAD_GATEWAY, &HeaderMap::new(), &plain),
            "HTTP 502 Bad Gateway: upstream down"
        );
        assert_eq!(
            error_text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &HeaderMap::new(),
                &Bytes::new()
            ),
            "HTTP 500 Internal Server Error"
        );
        assert!(shorten(&"x".repeat(500)).chars().count() <= MAX_ERROR_CHARS + 1);
    }
}
