//! [`serve`]: binds nothing itself (the caller hands it a listener), warms the function up in
//! the background, and on the shutdown signal follows of-watchdog's SIGTERM sequence: health
//! fails and the lock file goes at once (of-watchdog with `suppress_lock=true` removes it itself;
//! the function then only creates it), requests are still accepted and served for the grace
//! (the watchdog keeps forwarding for its `healthcheck_interval`), then the listener closes and
//! the requests in flight finish within the drain deadline ([`crate::listen`]).

use std::future::Future;
use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::{Function, InitError, Server, Settings, chain};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the function could not start")]
    Init(#[source] InitError),
}

/// Serves the function called `name` on `listener` until `shutdown` resolves, then drains as
/// described above and returns. `init` runs on a blocking thread while health answers 503; if
/// it fails, the server stops and the error is returned.
pub async fn serve<F, I, E>(
    listener: TcpListener,
    name: &'static str,
    settings: Settings,
    init: I,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError>
where
    F: Function,
    I: FnOnce(&mut Registry) -> Result<F, E> + Send + 'static,
    E: Into<InitError>,
{
    let server = Server::new(name, settings);
    serve_with(listener, server, init, shutdown).await
}

/// [`serve`] for a [`Server`] the caller made (to reach its state in tests).
pub async fn serve_with<F, I, E>(
    listener: TcpListener,
    server: Arc<Server>,
    init: I,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError>
where
    F: Function,
    I: FnOnce(&mut Registry) -> Result<F, E> + Send + 'static,
    E: Into<InitError>,
{
    // A lock left by an earlier process would tell of-watchdog we are ready before we are.
    server.remove_lock_file();
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<InitError>();
    let starting = server.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = starting.start_function(init) {
            let _ = failed_tx.send(e);
        }
    });

    let failure = Arc::new(Mutex::new(None));
    let failure_slot = failure.clone();
    let stopping = server.clone();
    let stop = async move {
        let init_failed = async {
            match failed_rx.await {
                Ok(e) => e,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown => {
                let grace = stopping.settings.grace;
                // Health fails before the log says so, so a reader of the log never sees a 200.
                stopping.start_draining();
                tracing::info!(grace_s = grace.as_secs_f64(), "shutting down: health fails, still serving for the grace");
                tokio::time::sleep(grace).await;
                tracing::info!("grace over: finishing requests in flight");
            }
            e = init_failed => {
                tracing::error!(error = %chain(e.as_ref()), "the function could not start");
                if let Ok(mut slot) = failure_slot.lock() {
                    *slot = Some(e);
                }
                stopping.start_draining();
            }
        }
    };
    crate::listen::run(listener, server.router(), &server.settings, stop).await;
    match failure.lock().ok().and_then(|mut slot| slot.take()) {
        Some(e) => Err(ServeError::Init(e)),
        None => Ok(()),
    }
}
