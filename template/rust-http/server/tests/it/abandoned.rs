//! A client that leaves before its answer (of-watchdog does this at `exec_timeout`) is logged and
//! counted as 499; queued work is dropped, running work stops at its next check, and `in_flight`
//! keeps counting the request until its worker is free.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::{Running, eventually, settings};
use faas_server::settings::Settings;

const ABANDONED: &str = r#"probe_requests_total{kind="unknown",status="499"} "#;

#[tokio::test(flavor = "multi_thread")]
async fn running_work_of_a_client_that_left_stops_and_counts_until_it_does() {
    let running = Running::start(settings()).await;
    let client = running.post_raw("sleep:5000").await;
    assert!(running.started(1).await);
    let seen = running.seen.clone();
    drop(client);

    let mut in_flight_lied = false;
    let stopped = eventually(Duration::from_secs(4), || {
        let worker_busy = seen.interrupted.load(Ordering::SeqCst) == 0;
        in_flight_lied |= worker_busy && running.in_flight() == 0.0;
        !worker_busy
    })
    .await;
    assert!(stopped, "the work stops at its next check");
    assert!(
        !in_flight_lied,
        "in_flight counts the request while its worker is busy"
    );
    assert!(eventually(Duration::from_secs(2), || running.in_flight() == 0.0).await);
    assert_eq!(running.metric(ABANDONED), 1.0);
    assert_eq!(seen.finished.load(Ordering::SeqCst), 0);
    assert_eq!(
        running.post("sleep:0").await.status(),
        200,
        "the worker is free again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_request_whose_client_left_never_runs() {
    let running = Running::start(Settings {
        queue: 1,
        ..settings()
    })
    .await;
    let busy = running.post_in_background("sleep:800");
    assert!(running.started(1).await);
    let queued = running.post_raw("sleep:0").await;
    assert!(eventually(Duration::from_secs(5), || running.in_flight() == 2.0).await);
    drop(queued);
    assert!(eventually(Duration::from_secs(5), || running.metric(ABANDONED) == 1.0).await);
    assert_eq!(running.in_flight(), 1.0, "the queued one is gone at once");
    let answered = busy.await.expect("join");
    assert_eq!(answered.status(), 200);
    let started = running.seen.started.load(Ordering::SeqCst);
    assert_eq!(started, 1, "it never ran");
}
