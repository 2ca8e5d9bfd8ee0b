//! `slblur-protocol`: everything the face-blur function and its clients must agree on, in one
//! place. The function writes its answers with these types and functions, the client, the
//! JMeter importer and the fuzz targets read them with the same ones.
//!
//! - [`Wire`]: the three request/response formats and how a request's headers and first bytes
//!   tell them apart;
//! - [`ImageKind`]: JPEG or PNG, their MIME names and their magic bytes;
//! - [`json`]: the JSON request and reply bodies, with [`Face`], [`Size`], [`Inference`]
//!   (with its [`Precision`]) and [`Timings`];
//! - [`seed`]: the original Python system's text reply, written and read;
//! - [`boxes`]: the header syntax of hint boxes (`X-Slblur-Hints`) and masked boxes
//!   (`X-Slblur-Boxes`);
//! - [`header`] and [`stage`]: header and `Server-Timing` stage names;
//! - from the template ([`faas_protocol`]): [`server_timing`], the [`ErrorBody`], [`round_ms`].

pub mod boxes;
mod image;
pub mod json;
pub mod seed;
mod wire;

pub use faas_protocol::{self, ErrorBody, ErrorDetail, ms, round_ms, server_timing};
pub use image::ImageKind;
pub use json::{Face, Inference, JsonReply, JsonRequest, Precision, Size, Source, Timings};
pub use wire::{Declared, Wire};

/// Header names, lower case: the server's own ([`faas_protocol::header`]) and the function's.
pub mod header {
    pub use faas_protocol::header::*;

    /// Faces the detector found in this frame (hints not counted).
    pub const FACE_COUNT: &str = "x-face-count";
    /// Request: boxes to mask besides the detector's, in [`crate::boxes`] syntax.
    pub const HINTS: &str = "x-slblur-hints";
    /// Reply: the boxes masked, detected ones first (as many as `X-Face-Count`), then hints.
    pub const BOXES: &str = "x-slblur-boxes";
    /// Reply: how many regions were masked (detected faces and hints kept).
    pub const MASKED: &str = "x-slblur-masked";
    /// The network's input size for this frame, `WxH`.
    pub const INFERENCE: &str = "x-slblur-inference";
    /// The precision the network ran at for this frame: `fp32` or `int8`.
    pub const PRECISION: &str = "x-slblur-precision";
    /// `true` for the first request a replica served.
    pub const COLD: &str = "x-slblur-cold";
    /// The replica that answered (its `HOSTNAME`), so a load test can tell instances apart.
    pub const INSTANCE: &str = "x-slblur-instance";
}

/// `Server-Timing` stage names: the server's `queue` and `total` around the function's own.
pub mod stage {
    pub use faas_protocol::stage::*;

    /// Base64 and image decoding.
    pub const DECODE: &str = "decode";
    /// Detection: resize, tensor, inference, post-processing and NMS.
    pub const ML: &str = "ml";
    /// Anonymization.
    pub const BLUR: &str = "blur";
    /// Image encoding and base64.
    pub const ENCODE: &str = "encode";
}
