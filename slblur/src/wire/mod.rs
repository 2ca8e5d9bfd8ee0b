//! The three wire formats on one route: which one a request uses ([`Wire::detect`]) and how
//! each answers ([`binary`], [`json`], [`seed`]).

pub mod binary;
pub mod json;
pub mod seed;

use faas_server::http::{HeaderMap, StatusCode, header};
use faas_server::{Context, Problem, Reply};
pub use slblur_protocol::Wire;
use slblur_protocol::{Declared, header as wire_header, stage};

use crate::pipeline::Processed;
use slblur_protocol::boxes::{self, BoxPx, MAX_HINTS};

/// The boxes of `X-Slblur-Hints`, checked (none without the header).
pub fn header_hints(headers: &HeaderMap) -> Result<Vec<BoxPx>, Problem> {
    let Some(value) = headers.get(wire_header::HINTS) else {
        return Ok(Vec::new());
    };
    let text = value
        .to_str()
        .map_err(|_| invalid_hints("X-Slblur-Hints must be ASCII: x1,y1,x2,y2;…".into()))?;
    boxes::parse(text).map_err(|why| invalid_hints(format!("X-Slblur-Hints: {why}")))
}

/// The header's hints and the body's together, at most [`MAX_HINTS`].
pub fn join_hints(mut hints: Vec<BoxPx>, more: Vec<BoxPx>) -> Result<Vec<BoxPx>, Problem> {
    hints.extend(more);
    if hints.len() > MAX_HINTS {
        return Err(invalid_hints(format!(
            "{} hints in the header and the body together, more than {MAX_HINTS}",
            hints.len()
        )));
    }
    Ok(hints)
}

pub fn invalid_hints(message: String) -> Problem {
    Problem::bad_request("invalid_hints", message)
}

/// What the headers alone say; untyped bodies are told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireHint {
    Known(Wire),
    /// See [`Declared::Untyped`].
    Untyped,
}

impl WireHint {
    pub fn from_headers(headers: &HeaderMap) -> Result<WireHint, Problem> {
        let value = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or(""));
        match Wire::declared(value) {
            Declared::Wire(wire) => Ok(WireHint::Known(wire)),
            Declared::Untyped => Ok(WireHint::Untyped),
            Declared::Unsupported => {
                let essence = value.unwrap_or("").split(';').next().unwrap_or("").trim();
                Err(Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!(
                        "Content-Type {:?} is not supported: send image/jpeg, image/png, \
                         application/json, or base64 text with no Content-Type",
                        essence.to_ascii_lowercase()
                    ),
                ))
            }
        }
    }

    /// Errors before the body is read are plain text when the client may be a seed client.
    pub fn plain_text_errors(self) -> bool {
        self == WireHint::Untyped
    }

    pub fn resolve(self, body: &[u8]) -> Wire {
        match self {
            WireHint::Known(wire) => wire,
            WireHint::Untyped => Wire::of_untyped(body),
        }
    }
}

/// Renders a processed frame in its wire format; every format also carries the stage timings
/// (the server adds queue and the same total to `Server-Timing`), the detected face count, the
/// boxes masked and how many, the network input size (`x-slblur-inference: WxH`) and precision
/// (`x-slblur-precision`), the cold flag and the replica's name (the load rig tells instances
/// apart by it).
pub fn respond(wire: Wire, processed: Processed, context: &Context) -> Result<Reply, Problem> {
    let t = processed.timings;
    let faces = processed.detected();
    let masked = processed.masked;
    let masked_boxes: Vec<BoxPx> = processed.faces.iter().map(|f| f.bbox).collect();
    let inference = processed.inference;
    let reply = match wire {
        Wire::Binary => binary::respond(processed),
        Wire::Json => json::respond(processed, context)?,
        Wire::Seed => seed::respond(processed),
    };
    Ok(reply
        .kind(wire.name())
        .stage(stage::DECODE, t.decode)
        .stage(stage::ML, t.ml)
        .stage(stage::BLUR, t.blur)
        .stage(stage::ENCODE, t.encode)
        .total(t.total)
        .header(wire_header::FACE_COUNT, faces.to_string())
        .header(wire_header::MASKED, masked.to_string())
        .header(wire_header::BOXES, boxes::render(&masked_boxes))
        .header(
            wire_header::INFERENCE,
            format!("{}x{}", inference.width, inference.height),
        )
        .header(wire_header::PRECISION, inference.precision.name())
        .header(
            wire_header::COLD,
            if context.cold { "true" } else { "false" },
        )
        .header(wire_header::INSTANCE, &*context.instance))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(content_type: Option<&str>) -> Result<WireHint, Problem> {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert(header::CONTENT_TYPE, ct.parse().expect("header"));
        }
        WireHint::from_headers(&h)
    }

    #[test]
    fn content_types_map_to_wires() {
        assert_eq!(
            hint(Some("image/png")).ok(),
            Some(WireHint::Known(Wire::Binary))
        );
        assert_eq!(
            hint(Some("Application/JSON; charset=utf-8")).ok(),
            Some(WireHint::Known(Wire::Json))
        );
        assert_eq!(hint(None).ok(), Some(WireHint::Untyped));
        assert_eq!(hint(Some("text/plain")).ok(), Some(WireHint::Untyped));
        let err = hint(Some("video/mp4")).expect_err("415");
        assert_eq!(err.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn untyped_bodies_are_sniffed() {
        assert_eq!(
            WireHint::Untyped.resolve(b"\x89PNG\r\n\x1a\nrest"),
            Wire::Binary
        );
        assert_eq!(WireHint::Untyped.resolve(b"iVBORw0KGgo="), Wire::Seed);
    }
}
