//! The JSON format's bodies: [`JsonRequest`] in, [`JsonReply`] out. The function writes the reply
//! with these types and the client reads it with them; every field is always present.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::ImageKind;

/// The Content-Type of both bodies.
pub const CONTENT_TYPE: &str = "application/json";

/// The name of the request's image field; every other field is an option (`mode`,
/// `threshold`, …, the same names as the query parameters).
pub const IMAGE_FIELD: &str = "image";

/// `{"image": "<base64 JPEG or PNG>"}`. The function reads requests field by field (so that a
/// hostile value is refused at its first byte) and takes options beside `image`; a client that
/// sends only the frame writes this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonRequest<'a> {
    #[serde(borrow)]
    pub image: Cow<'a, str>,
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
    /// The network's input size (multiples of 32).
    pub inference: Size,
    /// True for the first request this replica served.
    pub cold: bool,
    /// The replica that answered.
    #[serde(borrow)]
    pub instance: Cow<'a, str>,
    #[serde(borrow)]
    pub request_id: Cow<'a, str>,
}

/// One detected face, in the coordinates of the full-resolution frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// `[x1, y1, x2, y2]` in pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub score: f32,
    /// Five `(x, y)` points: eyes, nose, mouth corners.
    pub landmarks: [f32; 10],
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
            faces: vec![Face {
                bbox: [1.0, 2.0, 30.5, 40.0],
                score: 0.9,
                landmarks: [0.0; 10],
            }],
            timings_ms: Timings {
                ml: 12.5,
                total: 20.0,
                ..Timings::default()
            },
            input: Size {
                width: 64,
                height: 48,
            },
            inference: Size {
                width: 64,
                height: 64,
            },
            cold: true,
            instance: "slblur-1".into(),
            request_id: "r1".into(),
        };
        let text = serde_json::to_string(&reply).expect("serializable");
        assert!(
            text.contains(r#""format":"png""#) && text.contains(r#""box":[1.0,2.0,30.5,40.0]"#)
        );
        assert_eq!(serde_json::from_str::<JsonReply>(&text).ok(), Some(reply));
    }
}
