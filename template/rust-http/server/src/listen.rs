//! Connections: accepting within the connection cap, HTTP/1.1 with a header-read timeout (which
//! also closes idle keep-alive connections) and a bounded head, a write timeout on every socket,
//! and the drain: stop accepting, let requests in flight finish, but never wait past the drain
//! deadline. At the cap a few more connections are let in for one quick request each, so that
//! health probes still get through while idle sockets hold every regular place; beyond those,
//! 503 and close.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;

use crate::Settings;

/// Largest request head (request line and headers); beyond it, 431.
pub const MAX_HEAD_BYTES: usize = 64 << 10;

/// Connections let in beyond the cap (the default cap leaves descriptors for them) …
pub const OVERFLOW_CONNECTIONS: usize = 32;
/// … each for one request whose head arrives within this.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// What a connection over the cap is told before it is closed.
const OVER_CAPACITY: &str = r#"{"error":{"code":"too_many_connections","message":"all connections are taken; retry shortly"}}"#;

fn over_capacity_response() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{OVER_CAPACITY}",
        OVER_CAPACITY.len()
    )
}

/// HTTP/1 settings for connections within the cap, and for the overflow ones: one request
/// whose head must arrive quickly, no keep-alive.
fn connection_builders(settings: &Settings) -> (http1::Builder, http1::Builder) {
    let mut regular = http1::Builder::new();
    regular
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .max_header_size(MAX_HEAD_BYTES);
    let mut quick = regular.clone();
    quick
        .header_read_timeout(OVERFLOW_HEADER_TIMEOUT.min(settings.header_timeout))
        .keep_alive(false);
    (regular, quick)
}

/// Serves `router` on `listener` until `stop` resolves, then drains as described above.
pub async fn run(
    listener: TcpListener,
    router: Router,
    settings: &Settings,
    stop: impl Future<Output = ()>,
) {
    let connections = Arc::new(Semaphore::new(settings.max_connections));
    let overflow = Arc::new(Semaphore::new(OVERFLOW_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let (regular, quick) = connection_builders(settings);
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (permit, http) = match connections.clone().try_acquire_owned() {
            Ok(permit) => (permit, &regular),
            Err(_) => match overflow.clone().try_acquire_owned() {
                Ok(permit) => (permit, &quick),
                Err(_) => {
                    tokio::spawn(refuse(stream));
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let mut timed = TimeoutStream::new(stream);
        timed.set_write_timeout(Some(settings.write_timeout));
        let io = TokioIo::new(Box::pin(timed));
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(settings.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            drain_timeout_s = settings.drain_timeout.as_secs_f64(),
            "requests still in flight at the drain deadline: stopping anyway"
        );
    }
}

async fn refuse(mut stream: TcpStream) {
    let write = async {
        let _ = stream.write_all(over_capacity_response().as_bytes()).await;
        let _ = stream.shutdown().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_over_capacity_answer_declares_its_length() {
        let text = over_capacity_response();
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let error: faas_protocol::ErrorBody = serde_json::from_str(body).expect("an error body");
        assert_eq!(error.error.code, "too_many_connections");
    }
}
