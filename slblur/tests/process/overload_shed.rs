//! Sustained overload on the real process: after measuring its saturation throughput closed
//! loop, requests arrive open loop at three times that rate for a fixed time. The function must
//! shed the excess at once (429 + `Retry-After`), keep the admitted requests' latency bounded by
//! its queue, keep its memory flat, and serve normally as soon as the load stops.

use crate::support;

use std::time::{Duration, Instant};

use crate::support::{Function, listen_url};

const WORKERS: usize = 1;
const QUEUE: usize = 16;
/// Closed-loop clients used to find the saturation throughput (more than the workers, so the
/// worker never waits for a request, fewer than the capacity, so nothing is shed).
const CLOSED_LOOP_CLIENTS: usize = 8;
const SATURATION_TIME: Duration = Duration::from_secs(3);
/// A first run of the same overload, as long as the measured one, so the allocator has reached
/// its working size at full concurrency before memory is compared (a shorter burst left 20–65 MB
/// steps to the measured run on a busy machine) …
const WARM_UP_TIME: Duration = Duration::from_secs(8);
/// … with its peak after the measured overload, and after one more overload as long. The peak
/// may step up once, when the process first meets a new high of bodies and frames in flight:
/// glibc keeps its high-water mark, and on a machine whose CPUs are busy with other work a
/// stalled client sends in bursts (steps of 15–33 MB seen under load, none in most runs). A leak
/// grows it in both overloads, by more than 10 % or 32 MB on a small process each time (a leak
/// of 0.2 MB per request would).
const OVERLOAD_TIME: Duration = Duration::from_secs(8);
const OVERLOAD_FACTOR: f64 = 3.0;
/// Saturation measurements and overloads, when the machine's speed changed in between.
const ATTEMPTS: u32 = 3;

/// One answer: status, `Retry-After` present, latency from the intended send time.
struct Answer {
    status: u16,
    retry_after: bool,
    code: Option<String>,
    latency: Duration,
}

async fn send(http: &reqwest::Client, url: &str, frame: &[u8]) -> Result<Answer, reqwest::Error> {
    let started = Instant::now();
    let response = http
        .post(format!("{url}/"))
        .header("content-type", "image/jpeg")
        .body(frame.to_vec())
        .send()
        .await?;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    let body = response.bytes().await?;
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
    Ok(Answer {
        status,
        retry_after,
        code,
        latency,
    })
}

/// A process's resident memory now (`VmRSS`) or at its peak (`VmHWM`), in MB.
fn memory_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    kb / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Requests per second the function completes with `CLOSED_LOOP_CLIENTS` always waiting.
async fn saturation_throughput(http: &reqwest::Client, url: &str, frame: &[u8]) -> f64 {
    let started = Instant::now();
    let loops: Vec<_> = (0..CLOSED_LOOP_CLIENTS)
        .map(|_| {
            let (http, url, frame) = (http.clone(), url.to_string(), frame.to_vec());
            tokio::spawn(async move {
                let mut done = 0u32;
                while started.elapsed() < SATURATION_TIME {
                    let a = send(&http, &url, &frame).await.expect("closed-loop send");
                    assert_eq!(a.status, 200, "below capacity nothing is shed");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for l in loops {
        done += l.await.expect("closed loop");
    }
    f64::from(done) / started.elapsed().as_secs_f64()
}

/// Sends at `rate` per second for `time`, each request at its planned time whatever became of
/// the earlier ones (open loop), and returns every answer.
async fn open_loop(
    http: &reqwest::Client,
    url: &str,
    frame: &[u8],
    rate: f64,
    time: Duration,
) -> Vec<Answer> {
    let planned = (time.as_secs_f64() * rate).round() as usize;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = Vec::with_capacity(planned);
    for _ in 0..planned {
        ticks.tick().await;
        let (http, url, frame) = (http.clone(), url.to_string(), frame.to_vec());
        sent.push(tokio::spawn(async move { send(&http, &url, &frame).await }));
    }
    let mut answers = Vec::with_capacity(planned);
    for s in sent {
        answers.push(s.await.expect("task").expect("every request is answered"));
    }
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn three_times_saturation_is_shed_fast_with_bounded_latency_and_flat_memory() {
    let _machine = support::whole_machine();
    let (workers, queue) = (WORKERS.to_string(), QUEUE.to_string());
    let mut f = Function::spawn(&[
        ("SLBLUR_WORKERS", &workers),
        ("SLBLUR_QUEUE", &queue),
        ("SLBLUR_ML_THREADS", "2"),
    ]);
    let url = listen_url(&f.wait_for("listening"));
    let pid = f.child.id();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let frame = support::fixture("astronaut_640x360.jpg");
    for _ in 0..600 {
        if http
            .get(format!("{url}/_/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        let warm = send(&http, &url, &frame).await.expect("warm-up");
        assert_eq!(warm.status, 200);
    }

    // A better estimate of the saturation from an earlier attempt (see below).
    let mut faster: Option<f64> = None;
    for attempt in 1..=ATTEMPTS {
        let measured = saturation_throughput(&http, &url, &frame).await;
        let saturation = faster.map_or(measured, |f: f64| f.max(measured));
        let service = Duration::from_secs_f64(1.0 / saturation);
        let rss_cold = memory_mb(pid, "VmRSS:");

        let rate = OVERLOAD_FACTOR * saturation;
        open_loop(&http, &url, &frame, rate, WARM_UP_TIME).await;
        let peak_before = memory_mb(pid, "VmHWM:");
        let answers = open_loop(&http, &url, &frame, rate, OVERLOAD_TIME).await;
        let peak_after = memory_mb(pid, "VmHWM:");
        let rss_after = memory_mb(pid, "VmRSS:");

        // Right after: normal service.
        let after = send(&http, &url, &frame).await.expect("send after");

        // Once more, for memory alone.
        open_loop(&http, &url, &frame, rate, OVERLOAD_TIME).await;
        let peak_again = memory_mb(pid, "VmHWM:");

        let mut shed: Vec<Duration> = Vec::new();
        let mut admitted: Vec<Duration> = Vec::new();
        for a in &answers {
            match a.status {
                200 => admitted.push(a.latency),
                429 => {
                    assert!(a.retry_after, "a 429 carries Retry-After");
                    assert_eq!(a.code.as_deref(), Some("overloaded"));
                    shed.push(a.latency);
                }
                other => panic!("only 200 or 429 under overload, got {other} ({:?})", a.code),
            }
        }
        shed.sort();
        admitted.sort();
        // A full queue ahead of each admitted request, with room for a shared, busy machine;
        // without shedding the queue would grow all along the overload and this would be passed
        // many times.
        let bound = service.mul_f64(((WORKERS + QUEUE) as f64) * 4.0) + Duration::from_secs(1);
        println!(
            "overload: saturation {saturation:.1} req/s (service {:.0} ms); offered {rate:.1} \
             req/s for {:?}: {} requests, {} admitted ({:.1} req/s), {} shed",
            ms(service),
            OVERLOAD_TIME,
            answers.len(),
            admitted.len(),
            admitted.len() as f64 / OVERLOAD_TIME.as_secs_f64(),
            shed.len()
        );
        if !shed.is_empty() {
            println!(
                "overload: shed answer median {:.1} ms, p99 {:.1} ms",
                ms(percentile(&shed, 0.5)),
                ms(percentile(&shed, 0.99))
            );
        }
        if !admitted.is_empty() {
            println!(
                "overload: admitted p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (bound {:.0} ms)",
                ms(percentile(&admitted, 0.5)),
                ms(percentile(&admitted, 0.99)),
                ms(admitted[admitted.len() - 1]),
                ms(bound)
            );
        }
        println!(
            "overload: RSS before any overload {rss_cold:.1} MB; peak after the {WARM_UP_TIME:?} \
             burst {peak_before:.1} MB, after the {OVERLOAD_TIME:?} overload {peak_after:.1} MB \
             (RSS then {rss_after:.1} MB); right after: {} in {:.0} ms; peak after one more \
             overload {peak_again:.1} MB",
            after.status,
            ms(after.latency)
        );

        // The test's premise: the machine ran as fast during the overload as when its saturation
        // was measured. Other work on the same CPUs can start or stop in between; then the offered
        // rate was no overload (it got faster) or the server could not keep up (it got slower).
        // Measure again and repeat: a function that does not shed, or whose throughput collapses
        // under overload, fails every attempt.
        let admitted_rate = admitted.len() as f64 / OVERLOAD_TIME.as_secs_f64();
        let overloaded = shed.len() * 4 >= answers.len();
        let held = admitted_rate >= 0.5 * saturation;
        if !(overloaded && held) && attempt < ATTEMPTS {
            println!(
                "overload: attempt {attempt}: {admitted_rate:.1} req/s admitted against \
                 {saturation:.1} measured: the machine's speed changed, again"
            );
            faster = (!overloaded).then_some(admitted_rate.max(saturation));
            continue;
        }
        assert!(
            shed.len() * 4 >= answers.len(),
            "at 3x saturation about two in three are shed (a quarter allows for a noisy machine)"
        );
        assert!(
            percentile(&shed, 0.5) < Duration::from_millis(100),
            "shedding is immediate"
        );
        assert!(held, "throughput holds under overload");
        assert!(
            percentile(&admitted, 0.99) < bound,
            "admitted latency is bounded by the queue"
        );
        let grew = |from: f64, to: f64| to > from + (from * 0.10).max(32.0);
        assert!(
            !(grew(peak_before, peak_after) && grew(peak_after, peak_again)),
            "memory stays flat under sustained overload: the peak grew in both overloads"
        );
        assert_eq!(after.status, 200, "normal service right after");
        assert!(after.latency < Duration::from_secs(2), "and promptly");
        return;
    }
}
