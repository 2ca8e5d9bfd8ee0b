//! The callback receiver of asynchronous targets on this machine: how many callbacks per second
//! it takes and matches to waiting requests, and how long from a callback's post to its
//! request waking, with 1, 8 and 64 posters at once (each posts a callback the size of a
//! JPEG frame reply, with the headers OpenFaaS's queue worker sends, then the next).
//!
//! Run: `cargo bench -p slblur-client --bench callbacks` (prints a table).

use std::sync::Arc;
use std::time::{Duration, Instant};

use slblur_client::rig::callback::{Callbacks, Receiver};
use slblur_client::summary::Dist;
use slblur_protocol::header;

/// About a 640×360 JPEG frame's reply.
const BODY_BYTES: usize = 60_000;
const SECONDS_PER_POINT: u64 = 3;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let receiver = Receiver::start(([127, 0, 0, 1], 0).into(), None)
            .await
            .expect("listen");
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        println!(
            "callback receiver on {cores} cores (loopback, {BODY_BYTES} B bodies, {SECONDS_PER_POINT} s per line)"
        );
        println!(
            "{:<10} {:>12} {:>14} {:>14}",
            "posters", "callbacks/s", "wake p50 ms", "wake p99 ms"
        );
        for posters in [1usize, 8, 64] {
            let (rate, wake) = point(&receiver.callbacks, posters).await;
            println!(
                "{posters:<10} {rate:>12.0} {:>14.3} {:>14.3}",
                wake.median, wake.p99
            );
        }
        let counts = receiver.callbacks.counts();
        println!(
            "matched {}, refused {} (none expected)",
            counts.matched,
            counts.refused()
        );
    });
}

/// `posters` loops of expect → post → wait, for a few seconds: callbacks per second and the
/// time from each post's start to its request waking.
async fn point(callbacks: &Arc<Callbacks>, posters: usize) -> (f64, Dist) {
    let body = bytes::Bytes::from(vec![0xA5u8; BODY_BYTES]);
    let client = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(SECONDS_PER_POINT);
    let started = Instant::now();
    let tasks: Vec<_> = (0..posters)
        .map(|_| {
            let (callbacks, client, body) = (Arc::clone(callbacks), client.clone(), body.clone());
            tokio::spawn(async move {
                let mut wakes = Vec::new();
                while Instant::now() < until {
                    let mut expected = callbacks.expect();
                    let posted = Instant::now();
                    let post = client
                        .post(expected.url.clone())
                        .header(header::FUNCTION_STATUS, "200")
                        .header(header::DURATION_SECONDS, "0.020000")
                        .header(header::CALL_ID, "bench")
                        .header(header::SERVER_TIMING, "ml;dur=10, total;dur=20")
                        .body(body.clone())
                        .send();
                    let (sent, woke) = tokio::join!(post, expected.wait(Duration::from_secs(5)));
                    assert!(sent.is_ok() && woke.is_some(), "a callback was lost");
                    wakes.push(posted.elapsed().as_secs_f64() * 1000.0);
                }
                wakes
            })
        })
        .collect();
    let mut wakes = Vec::new();
    for task in tasks {
        wakes.extend(task.await.expect("poster"));
    }
    let rate = wakes.len() as f64 / started.elapsed().as_secs_f64();
    (rate, Dist::of(&wakes).expect("callbacks were posted"))
}
