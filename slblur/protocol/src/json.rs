//! The JSON format's bodies: [`JsonRequest`] in, [`JsonReply`] out. The function writes the reply
//! with these types and the client reads it with them; every field is always present.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::ImageKind;
use crate::boxes::BoxPx;

/// The Content-Type of both bodies.
pub const CONTENT_TYPE: &str = "application/json";

/// The name of the request's image field; every other field is an option (`mode`,
/// `threshold`, …, the same names as the query parameters).
pub const IMAGE_FIELD: &str = "image";
/// The request field of boxes to mask besides the detector's.
pub const HINTS_FIELD: &str = "hints";

/// `{"image": "<base64 JPEG or PNG>"}`. The function reads requests field by field (so that a
/// hostile value is refused at its first byte) and takes options beside `image`; a client that
/// sends only the frame writes this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonRequest<'a> {
    #[serde(borrow)]
    pub image: Cow<'a, str>,
    /// Boxes to mask besides what the detector finds ([`crate::boxes`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<BoxPx>,
}

/// The JSON reply: the anonymized frame and what the function found and measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonReply<'a> {
    /// The anonymized frame, base64.
    #[serde(borrow)]
    pub image: Cow<'a, str>,
    pub format: ImageKind,
    pub faces: Vec<Face>,
    pub timings_ms: Timings,
    /// The frame's size as sent.
    pub input: Size,
    /// The network's input for this frame: its size and the precision it ran at.
    pub inference: Inference,
    /// True for the first request this replica served.
    pub cold: bool,
    /// The replica that answered.
    #[serde(borrow)]
    pub instance: Cow<'a, str>,
    #[serde(borrow)]
    pub request_id: Cow<'a, str>,
}

/// The network's input for one frame: its size (multiples of 32), and the arithmetic of its 1×1
/// convolutions (`SLBLUR_PRECISION`), so a load test can tell replicas at either apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inference {
    pub width: u32,
    pub height: u32,
    /// Absent in replies from before it existed, which were all fp32.
    #[serde(default)]
    pub precision: Precision,
}

/// The arithmetic of the network's 1×1 convolutions, where nearly all of its multiply-adds are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    /// 8-bit integers, with activation scales calibrated at start.
    Int8,
}

impl Precision {
    /// The name `SLBLUR_PRECISION`, the JSON reply and `X-Slblur-Precision` use.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Precision, String> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "int8" => Ok(Precision::Int8),
            _ => Err("expected fp32 or int8".into()),
        }
    }
}

/// One masked face, in the coordinates of the full-resolution frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// `[x1, y1, x2, y2]` in pixels.
    #[serde(rename = "box")]
    pub bbox: BoxPx,
    /// The detector's score; 0 for a hint.
    pub score: f32,
    /// Five `(x, y)` points: eyes, nose, mouth corners; zeros for a hint.
    pub landmarks: [f32; 10],
    #[serde(default)]
    pub source: Source,
}

impl Face {
    /// A hint's box, masked like a face the detector found.
    pub fn hint(bbox: BoxPx) -> Face {
        Face {
            bbox,
            score: 0.0,
            landmarks: [0.0; 10],
            source: Source::Hint,
        }
    }
}

/// Where a masked box came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The detector found it in this frame.
    #[default]
    Detected,
    /// The request's hints carried it (e.g. from an earlier frame).
    Hint,
}

/// Width and height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

/// Milliseconds per stage, rounded to microseconds ([`crate::round_ms`]). `queue` and `total`
/// are the server's numbers, the same ones its `Server-Timing` header gives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Waiting for a worker.
    pub queue: f64,
    /// Base64 and image decoding.
    pub decode: f64,
    /// Detection: resize, tensor, inference, post-processing and NMS.
    pub ml: f64,
    /// Anonymization.
    pub blur: f64,
    /// Image encoding and base64.
    pub encode: f64,
    /// Handler total: from the request body in hand to the response ready.
    pub total: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_reads_back_as_written() {
        let reply = JsonReply {
            image: "aGk=".into(),
            format: ImageKind::Png,
            faces: vec![
                Face {
                    bbox: [1.0, 2.0, 30.5, 40.0],
                    score: 0.9,
                    landmarks: [0.0; 10],
                    source: Source::Detected,
                },
                Face::hint([5.0, 6.0, 7.0, 8.0]),
            ],
            timings_ms: Timings {
                ml: 12.5,
                total: 20.0,
                ..Timings::default()
            },
            input: Size {
                width: 64,
                height: 48,
            },
            inference: Inference {
                width: 64,
                height: 64,
                precision: Precision::Int8,
            },
            cold: true,
            instance: "slblur-1".into(),
            request_id: "r1".into(),
        };
        let text = serde_json::to_string(&reply).expect("serializable");
        assert!(
            text.contains(r#""format":"png""#) && text.contains(r#""box":[1.0,2.0,30.5,40.0]"#)
        );
        assert!(text.contains(r#""inference":{"width":64,"height":64,"precision":"int8"}"#));
        assert_eq!(serde_json::from_str::<JsonReply>(&text).ok(), Some(reply));
        let before = text.replace(r#","precision":"int8""#, "");
        let old: JsonReply = serde_json::from_str(&before).expect("a reply without precision");
        assert_eq!(old.inference.precision, Precision::Fp32);
    }
}
