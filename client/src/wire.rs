//! The function's three wire formats: request bodies (built once per frame per run) and
//! response parsing into timings, face count, cold flag and the returned image.
//!
//! - binary: image body; timings in `Server-Timing`, faces in `X-Face-Count`.
//! - json: `{"image": "<base64>"}` in, JSON with `timings_ms`, `faces`, `cold` out.
//! - seed: the original Python system: base64 text in (no Content-Type), text lines out with
//!   seconds (`Elapsed ML time: 2.4`, `Total time: 3.6`) and `{'text': ..., 'img': '<base64>'}`.

use std::io::Cursor;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::cli::{ImageFormat, Wire};
use crate::video::RgbFrame;

/// Longest error text kept in a row: enough for the server's message, not for a whole page.
const MAX_ERROR_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot encode frame as {format:?}: {source}")]
    Encode {
        format: ImageFormat,
        source: image::ImageError,
    },
    #[error("cannot decode returned image: {0}")]
    Decode(String),
}

/// What a successful response told us. Unknown values stay `None`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reply {
    pub total_ms: Option<f64>,
    pub ml_ms: Option<f64>,
    pub queue_ms: Option<f64>,
    /// Which replica answered (`X-Slblur-Instance`, JSON `instance`).
    pub instance: Option<String>,
    pub faces: Option<u32>,
    pub cold: Option<bool>,
    pub image: Option<ReplyImage>,
}

/// The anonymized frame as it came back; decoded only if `--save-video` needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyImage {
    Raw(Bytes),
    Base64(String),
}

impl ReplyImage {
    pub fn decode(&self) -> Result<RgbFrame, WireError> {
        let bytes = match self {
            ReplyImage::Raw(b) => b.to_vec(),
            ReplyImage::Base64(s) => BASE64
                .decode(s.trim())
                .map_err(|e| WireError::Decode(e.to_string()))?,
        };
        decode_image(&bytes)
    }
}

/// A request body ready to send many times (cheap to clone).
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: Bytes,
    pub content_type: Option<&'static str>,
}

/// The format frames are sent in when `--format` is not given.
pub fn default_format(wire: Wire) -> ImageFormat {
    match wire {
        Wire::Seed => ImageFormat::Png,
        Wire::Binary | Wire::Json => ImageFormat::Jpeg,
    }
}

/// Encodes a frame as JPEG or PNG bytes.
pub fn encode_image(
    frame: &RgbFrame,
    format: ImageFormat,
    quality: u8,
) -> Result<Vec<u8>, WireError> {
    use image::ImageEncoder;
    let mut out = Vec::with_capacity(frame.data.len() / 8);
    let color = image::ExtendedColorType::Rgb8;
    let result = match format {
        ImageFormat::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .write_image(&frame.data, frame.width, frame.height, color),
        ImageFormat::Png => image::codecs::png::PngEncoder::new_with_quality(
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
        .map_err(|e| WireError::Decode(e.to_string()))?
        .decode()
        .map_err(|e| WireError::Decode(e.to_string()))?
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
    format: ImageFormat,
    quality: u8,
) -> Result<Body, WireError> {
    let image = encode_image(frame, format, quality)?;
    let mime = match format {
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::Png => "image/png",
    };
    Ok(match wire {
        Wire::Binary => Body {
            bytes: image.into(),
            content_type: Some(mime),
        },
        Wire::Json => {
            let json = serde_json::json!({ "image": BASE64.encode(&image) });
            Body {
                bytes: json.to_string().into(),
                content_type: Some("application/json"),
            }
        }
        // The original client sent the base64 text with no Content-Type at all.
        Wire::Seed => Body {
            bytes: BASE64.encode(&image).into(),
            content_type: None,
        },
    })
}

/// The original frame inside a request body (for `--save-video` when a request failed).
pub fn body_image(body: &Body, wire: Wire) -> Result<RgbFrame, WireError> {
    match wire {
        Wire::Binary => decode_image(&body.bytes),
        Wire::Seed => {
            ReplyImage::Base64(String::from_utf8_lossy(&body.bytes).into_owned()).decode()
        }
        Wire::Json => {
            let v: serde_json::Value = serde_json::from_slice(&body.bytes)
                .map_err(|e| WireError::Decode(e.to_string()))?;
            let b64 = v["image"]
                .as_str()
                .ok_or_else(|| WireError::Decode("no image field".into()))?;
            ReplyImage::Base64(b64.to_string()).decode()
        }
    }
}

/// Parses a 2xx response. `Err` is the row's error text (the body did not parse).
pub fn parse_reply(wire: Wire, headers: &HeaderMap, body: &Bytes) -> Result<Reply, String> {
    let mut reply = match wire {
        Wire::Binary => parse_binary(headers, body),
        Wire::Json => parse_json(body),
        Wire::Seed => parse_seed(body),
    }?;
    // Every format carries the timing and instance headers; the body's own values win.
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if reply.queue_ms.is_none() {
        reply.queue_ms = header("server-timing")
            .map(parse_server_timing)
            .and_then(|t| timing_of(&t, "queue"));
    }
    if reply.instance.is_none() {
        reply.instance = header("x-slblur-instance").map(str::to_string);
    }
    Ok(reply)
}

fn timing_of(timing: &[(String, f64)], name: &str) -> Option<f64> {
    timing
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, d)| d)
}

fn parse_binary(headers: &HeaderMap, body: &Bytes) -> Result<Reply, String> {
    let is_image = body.starts_with(&[0xFF, 0xD8, 0xFF]) || body.starts_with(b"\x89PNG\r\n\x1a\n");
    if !is_image {
        return Err(format!(
            "response body is not a JPEG or PNG image ({} bytes: {})",
            body.len(),
            snippet(body)
        ));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timing = header("server-timing")
        .map(parse_server_timing)
        .unwrap_or_default();
    Ok(Reply {
        total_ms: timing_of(&timing, "total"),
        ml_ms: timing_of(&timing, "ml"),
        queue_ms: timing_of(&timing, "queue"),
        instance: None,
        faces: header("x-face-count").and_then(|v| v.trim().parse().ok()),
        cold: header("x-slblur-cold").and_then(parse_bool),
        image: Some(ReplyImage::Raw(body.clone())),
    })
}

/// `queue;dur=0.01, ml;dur=150.2;desc="x"` → `[("queue", 0.01), ("ml", 150.2)]`.
pub fn parse_server_timing(value: &str) -> Vec<(String, f64)> {
    value
        .split(',')
        .filter_map(|metric| {
            let mut parts = metric.split(';').map(str::trim);
            let name = parts.next().filter(|n| !n.is_empty())?;
            let dur = parts.find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("dur")
                    .then(|| v.trim().trim_matches('"').parse::<f64>().ok())?
            })?;
            Some((name.to_string(), dur))
        })
        .collect()
}

fn parse_json(body: &Bytes) -> Result<Reply, String> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("response is not JSON ({e}): {}", snippet(body)))?;
    let image = v["image"]
        .as_str()
        .ok_or_else(|| format!("JSON response has no \"image\" string: {}", snippet(body)))?;
    let timings = &v["timings_ms"];
    Ok(Reply {
        total_ms: timings["total"].as_f64(),
        ml_ms: timings["ml"].as_f64(),
        queue_ms: timings["queue"].as_f64(),
        instance: v["instance"].as_str().map(str::to_string),
        faces: v["faces"]
            .as_array()
            .and_then(|f| u32::try_from(f.len()).ok()),
        cold: v["cold"].as_bool(),
        image: Some(ReplyImage::Base64(image.to_string())),
    })
}

fn parse_seed(body: &Bytes) -> Result<Reply, String> {
    let text = String::from_utf8_lossy(body);
    // Like the original regexes: find the label anywhere, take the number after it.
    let seconds = |label: &str| -> Option<f64> {
        let rest = &text[text.find(label)? + label.len()..];
        let rest = rest.trim_start_matches([':', ' ', '\t']);
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+')))
            .unwrap_or(rest.len());
        rest[..end].parse::<f64>().ok()
    };
    let ml = seconds("Elapsed ML time");
    let total = seconds("Total time");
    if ml.is_none() || total.is_none() {
        return Err(format!(
            "seed response lacks 'Elapsed ML time:' / 'Total time:' lines: {}",
            snippet(body)
        ));
    }
    let image = text.find("'img'").and_then(|at| {
        let rest = &text[at + 5..];
        let start = rest.find('\'')? + 1;
        let len = rest[start..].find('\'')?;
        Some(rest[start..start + len].to_string()).filter(|s| !s.is_empty())
    });
    Ok(Reply {
        total_ms: total.map(|s| s * 1000.0),
        ml_ms: ml.map(|s| s * 1000.0),
        queue_ms: None,
        instance: None,
        faces: None,
        cold: None,
        image: image.map(ReplyImage::Base64),
    })
}

/// The row's error text for a non-2xx response: status plus the server's message if any.
pub fn error_text(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> String {
    let mut text = format!("HTTP {}", status.as_u16());
    if let Some(reason) = status.canonical_reason() {
        text = format!("{text} {reason}");
    }
    if let Some(after) = headers.get("retry-after").and_then(|v| v.to_str().ok()) {
        text = format!("{text} (retry after {after})");
    }
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let err = &v["error"];
            match (err["code"].as_str(), err["message"].as_str(), err.as_str()) {
                (Some(code), Some(msg), _) => Some(format!("{code}: {msg}")),
                (None, Some(msg), _) | (_, None, Some(msg)) => Some(msg.to_string()),
                _ => None,
            }
        });
    // The status line carries header text too (Retry-After): cut it even without a body.
    match message.or_else(|| Some(snippet(body)).filter(|s| !s.is_empty())) {
        Some(m) => shorten(&format!("{text}: {m}")),
        None => shorten(&text),
    }
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
    fn server_timing_is_parsed_tolerantly() {
        let t = parse_server_timing(
            "queue;dur=0.01, decode;dur=3.1, ml;dur=150.2, blur;desc=\"b\";dur=1, total;dur=160.0, bad, x;dur=y",
        );
        assert_eq!(t[2], ("ml".to_string(), 150.2));
        assert_eq!(t[3], ("blur".to_string(), 1.0));
        assert_eq!(t.last().expect("test input"), &("total".to_string(), 160.0));
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn binary_reply() {
        let body = request_body(&frame(), Wire::Binary, ImageFormat::Jpeg, 90).expect("test input");
        assert_eq!(body.content_type, Some("image/jpeg"));
        let mut h = HeaderMap::new();
        h.insert(
            "server-timing",
            HeaderValue::from_static("ml;dur=150.2, total;dur=160"),
        );
        h.insert("x-face-count", HeaderValue::from_static("2"));
        h.insert("x-slblur-cold", HeaderValue::from_static("true"));
        let r = parse_reply(Wire::Binary, &h, &body.bytes).expect("test input");
        assert_eq!(
            (r.ml_ms, r.total_ms, r.faces, r.cold),
            (Some(150.2), Some(160.0), Some(2), Some(true))
        );
        let img = r.image.expect("test input").decode().expect("test input");
        assert_eq!((img.width, img.height), (32, 16));
        assert!(
            parse_reply(Wire::Binary, &h, &Bytes::from_static(b"<html>oops"))
                .unwrap_err()
                .contains("not a JPEG")
        );
    }

    #[test]
    fn json_round_trip() {
        let body = request_body(&frame(), Wire::Json, ImageFormat::Png, 90).expect("test input");
        assert_eq!(body_image(&body, Wire::Json).expect("test input"), frame());
        let v: serde_json::Value = serde_json::from_slice(&body.bytes).expect("test input");
        let reply = serde_json::json!({
            "image": v["image"], "faces": [{"box": [0, 0, 1, 1]}, {"box": [2, 2, 3, 3]}],
            "timings_ms": {"ml": 12.5, "total": 20.0}, "cold": false,
        });
        let r = parse_reply(Wire::Json, &HeaderMap::new(), &reply.to_string().into())
            .expect("test input");
        assert_eq!(
            (r.ml_ms, r.total_ms, r.faces, r.cold),
            (Some(12.5), Some(20.0), Some(2), Some(false))
        );
        assert_eq!(
            r.image.expect("test input").decode().expect("test input"),
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
        let body = request_body(&frame(), Wire::Seed, ImageFormat::Png, 90).expect("test input");
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
            r.image.expect("test input").decode().expect("test input"),
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
