//! Clients that send or read slowly hold at most a connection, never a worker or queue slot for
//! long: bodies are read before admission under their own deadline (408) and a budget of
//! buffered bytes (429), and a response nobody reads holds its slot and its bytes only until the
//! write times out.

use std::time::Duration;

use crate::support::{Running, eventually, post_head, read_all, send, settings, status_of};
use faas_server::settings::Settings;

#[tokio::test(flavor = "multi_thread")]
async fn a_response_nobody_reads_holds_its_slot_only_until_the_write_times_out() {
    let running = Running::start(Settings {
        write_timeout: Duration::from_millis(300),
        ..settings()
    })
    .await;
    // 64 MiB cannot fit in loopback socket buffers: the write stalls while nobody reads.
    let body = "big:67108864";
    let stalled = running.post_raw(body).await;
    assert!(running.finished(1).await);
    assert_eq!(running.in_flight(), 1.0, "counted until written");
    let refused = running.post("sleep:0").await;
    assert_eq!(
        refused.status(),
        429,
        "the unwritten response still holds the only slot"
    );

    assert!(
        eventually(Duration::from_secs(10), || running.in_flight() == 0.0).await,
        "the stalled write times out and frees the slot"
    );
    assert_eq!(running.post("sleep:0").await.status(), 200);
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_bodies_take_no_admission_slot_and_end_in_408() {
    let running = Running::start(Settings {
        body_timeout: Duration::from_millis(500),
        ..settings()
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut stream = running.connect().await;
        send(&mut stream, format!("{}s", post_head(100)).as_bytes()).await;
        slow.push(stream);
    }
    let served = running.post("sleep:0").await;
    assert_eq!(
        served.status(),
        200,
        "slow senders must not fill the only slot"
    );
    for mut stream in slow {
        let response = read_all(&mut stream, Duration::from_secs(5)).await;
        assert_eq!(status_of(&response), 408, "{response}");
        assert!(response.contains(r#""code":"body_timeout""#), "{response}");
        assert!(response.contains("PROBE_BODY_TIMEOUT"), "{response}");
    }
    assert_eq!(
        running.metric(r#"probe_requests_total{kind="unknown",status="408"} "#),
        3.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_declared_length_is_refused_before_any_body_arrives() {
    let running = Running::start(Settings {
        max_body_bytes: 1000,
        ..settings()
    })
    .await;
    let mut stream = running.connect().await;
    send(&mut stream, post_head(1 << 30).as_bytes()).await;
    let response = read_all(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(status_of(&response), 413, "{response}");
    assert!(response.contains("PROBE_MAX_BODY_BYTES"), "{response}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_beyond_the_buffered_bytes_budget_are_429() {
    let running = Running::start(Settings {
        max_buffered_bytes: 1000,
        queue: 4,
        ..settings()
    })
    .await;
    let mut holding = running.connect().await;
    // 800 of its 900 bytes have arrived: those are held while the rest is awaited.
    let partial = format!("{}{}", post_head(900), "s".repeat(800));
    send(&mut holding, partial.as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = running.post(&format!("sleep:{}", "0".repeat(300))).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let text = refused.text().await.expect("body");
    assert!(text.contains("PROBE_MAX_BUFFERED_BYTES"), "{text}");
    drop(holding);
    let mut served = 0;
    for _ in 0..100 {
        if running.post("sleep:0").await.status() == 200 {
            served += 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(served, 1, "the budget is released when the body is dropped");
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_nobody_reads_count_against_the_buffered_bytes_budget() {
    // `finished` counts a handler's return; the server asks for the answer's share of the
    // budget a moment later, and nothing the test can see says when. A request that comes in
    // between finds the budget not yet spent and is served once the waiting answer times out:
    // a race of the test (seen with every CPU busy), so the scenario gets three tries. A server
    // that lets new bodies in while an answer waits fails all three.
    for last in [false, false, true] {
        if budget_spent_while_an_answer_waits(last).await {
            return;
        }
        eprintln!("the third request came in before the second answer waited: again");
    }
}

/// The scenario of the test above; false (unless `last`) when the third request was not
/// refused, which the race or a broken budget cause alike.
async fn budget_spent_while_an_answer_waits(last: bool) -> bool {
    let running = Running::start(Settings {
        max_buffered_bytes: 100 << 20,
        write_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(2),
        queue: 4,
        ..settings()
    })
    .await;
    let body = "big:67108864";
    let unread = running.post_raw(body).await;
    assert!(running.finished(1).await);
    let second = running.post_in_background(body);
    assert!(running.finished(2).await);
    // The moment for the server to ask for the second answer's share (see above).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let third = running.post("sleep:0").await;
    if third.status() != 429 && !last {
        return false;
    }
    assert_eq!(
        third.status(),
        429,
        "while an answer waits for its share, new bodies find the budget spent"
    );
    assert!(
        third
            .text()
            .await
            .expect("body")
            .contains("PROBE_MAX_BUFFERED_BYTES")
    );
    let second = second.await.expect("join");
    assert_eq!(
        second.status(),
        504,
        "a second 64 MiB answer must wait while the first holds the budget unread"
    );
    drop(unread);
    let third = running.post(body).await;
    assert_eq!(
        third.status(),
        200,
        "the budget comes back with the connection"
    );
    assert_eq!(third.bytes().await.expect("body").len(), 67108864);
    true
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declared_length_alone_does_not_hold_the_budget() {
    let running = Running::start(Settings {
        max_buffered_bytes: 1000,
        ..settings()
    })
    .await;
    let mut claiming = running.connect().await;
    send(&mut claiming, post_head(900).as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(running.post("sleep:0").await.status(), 200);
    drop(claiming);
}
