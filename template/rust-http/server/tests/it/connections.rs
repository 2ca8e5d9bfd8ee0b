//! Connections cannot pile up: request heads must arrive within the header timeout (which also
//! closes idle keep-alive connections), heads are bounded (431), connections beyond the cap get
//! one quick request each (so health probes pass) and beyond those 503, and the drain after the
//! grace has a hard deadline.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::{Running, closed_within, read_all, send, settings, status_of};
use faas_server::settings::Settings;

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_half_sent_connections_are_closed_after_the_header_timeout() {
    let running = Running::start(Settings {
        header_timeout: Duration::from_millis(300),
        ..settings()
    })
    .await;
    let mut idle = running.connect().await;
    let mut half = running.connect().await;
    send(&mut half, b"POST / HTTP/1.1\r\nhost: test\r\nx-slow: ").await;
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
    assert!(closed_within(&mut half, Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_head_beyond_its_limit_is_431() {
    let running = Running::start(settings()).await;
    let mut stream = running.connect().await;
    let filler = "a".repeat(faas_server::listen::MAX_HEAD_BYTES + 1024);
    let head = format!("POST / HTTP/1.1\r\nhost: test\r\nx-filler: {filler}\r\n\r\n");
    send(&mut stream, head.as_bytes()).await;
    let response = read_all(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(status_of(&response), 431, "{response}");
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_cap_health_still_gets_through_and_beyond_the_overflow_it_is_503() {
    let running = Running::start(Settings {
        max_connections: 4,
        header_timeout: Duration::from_secs(30),
        ..settings()
    })
    .await;
    // The health checks of start-up closed their connections; let the server see that first,
    // so that these four take every regular place.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut regular = Vec::new();
    for _ in 0..4 {
        regular.push(running.connect().await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        running.health().await,
        200,
        "idle sockets holding every place do not fail the health probe"
    );
    let mut overflow = Vec::new();
    for _ in 0..faas_server::listen::OVERFLOW_CONNECTIONS {
        overflow.push(running.connect().await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut extra = running.connect().await;
    send(&mut extra, b"GET /_/health HTTP/1.1\r\nhost: test\r\n\r\n").await;
    let response = read_all(&mut extra, Duration::from_secs(5)).await;
    assert_eq!(status_of(&response), 503, "{response}");
    assert!(response.contains("too_many_connections"), "{response}");
    for stream in &mut overflow {
        assert!(
            closed_within(stream, Duration::from_secs(5)).await,
            "an idle connection let in over the cap is closed quickly"
        );
    }
    assert_eq!(
        running.health().await,
        200,
        "served again once they are gone"
    );
    drop(regular);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_drain_stops_waiting_at_its_deadline() {
    let mut running = Running::start(Settings {
        drain_timeout: Duration::from_millis(200),
        request_timeout: Duration::from_secs(60),
        ..settings()
    })
    .await;
    let _stuck = running.post_raw("sleep:6000").await;
    assert!(running.started(1).await);
    let seen = running.seen.clone();
    // A second connection that never finishes its head must not hold the exit either.
    let mut half = running.connect().await;
    send(&mut half, b"POST / HTTP/1.1\r\n").await;
    running.stop();
    let serving = &mut running.serving;
    let stopped = tokio::time::timeout(Duration::from_secs(4), serving).await;
    assert!(
        stopped.is_ok(),
        "the server returns at the drain deadline, not when the 6 s request ends"
    );
    assert_eq!(seen.finished.load(Ordering::SeqCst), 0);
}
