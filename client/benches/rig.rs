//! Rig overhead: how many requests per second the goose driver sends on this machine, and how
//! much latency it adds per request, against a trivial loopback endpoint (a fixed tiny JPEG
//! with a Server-Timing header). The reference is a raw hyper client on the same endpoint in
//! the same run: the rig's median round trip minus hyper's is what the rig adds.
//!
//! Then open-loop Poisson cells at rising rates against the same endpoint: how late the
//! generator sends each arrival (send time − intended time, from the rows' `late_ms`) and the
//! share answered, which shows the highest rate the rig holds on this machine.
//!
//! Run: `cargo bench -p slblur-client --bench rig` (prints tables; goals: ≥ 5,000 requests/s
//! on 2 cores, < 1 ms added).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use slblur_client::record::CsvSink;
use slblur_client::rig::arrivals::Process;
use slblur_client::rig::plan::TargetSpec;
use slblur_client::rig::plan::{Budget, Cell, Limits, Load, Share};
use slblur_client::rig::{Ramp, Rig, run_cell};
use slblur_client::summary::Dist;
use slblur_client::video::VideoInfo;
use slblur_client::wire::RequestBody;
use slblur_client::workload::Workload;
use slblur_protocol::{ImageKind, Wire, header};

/// A 1×1 baseline JPEG: the smallest body the binary wire format accepts as an image.
const TINY_JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x43, 0x00, 0x08, 0x06, 0x06, 0x07, 0x06, 0x05, 0x08, 0x07, 0x07,
    0x07, 0x09, 0x09, 0x08, 0x0A, 0x0C, 0x14, 0x0D, 0x0C, 0x0B, 0x0B, 0x0C, 0x19, 0x12, 0x13, 0x0F,
    0x14, 0x1D, 0x1A, 0x1F, 0x1E, 0x1D, 0x1A, 0x1C, 0x1C, 0x20, 0x24, 0x2E, 0x27, 0x20, 0x22, 0x2C,
    0x23, 0x1C, 0x1C, 0x28, 0x37, 0x29, 0x2C, 0x30, 0x31, 0x34, 0x34, 0x34, 0x1F, 0x27, 0x39, 0x3D,
    0x38, 0x32, 0x3C, 0x2E, 0x33, 0x34, 0x32, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x01, 0x00, 0x01,
    0x01, 0x01, 0x11, 0x00, 0xFF, 0xC4, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0xFF, 0xC4, 0x00, 0x14,
    0x10, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0xD2, 0xCF, 0x20, 0xFF,
    0xD9,
];

const RAW_REQUESTS: usize = 3_000;
const THROUGHPUT_USERS: u32 = 16;
const THROUGHPUT_REQUESTS_PER_USER: u64 = 1_500;
const LATENCY_REQUESTS: u64 = 3_000;
/// Open-loop rates tried, each for this long with this many requests outstanding at most.
const OPEN_RATES: [f64; 4] = [500.0, 1_000.0, 2_000.0, 4_000.0];
const OPEN_SECONDS: f64 = 3.0;
const OPEN_OUTSTANDING: u32 = 256;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let addr = serve().await;
        let raw = raw_hyper_latency(addr).await;
        let single = rig_cell(addr, 1, LATENCY_REQUESTS).await;
        let many = rig_cell(addr, THROUGHPUT_USERS, THROUGHPUT_REQUESTS_PER_USER).await;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        println!(
            "rig overhead on {cores} cores (loopback, {} B JPEG reply)",
            TINY_JPEG.len()
        );
        println!("{:<34} {:>10} {:>12}", "", "median ms", "requests/s");
        println!(
            "{:<34} {:>10.3} {:>12.0}",
            "raw hyper client, 1 connection", raw.0, raw.1
        );
        println!(
            "{:<34} {:>10.3} {:>12.0}",
            "goose rig, 1 user", single.0, single.1
        );
        println!(
            "{:<34} {:>10.3} {:>12.0}",
            format!("goose rig, {THROUGHPUT_USERS} users"),
            many.0,
            many.1
        );
        println!(
            "added per request (rig 1 user − raw): {:.3} ms   [goal < 1 ms]",
            single.0 - raw.0
        );
        println!(
            "rig throughput with {THROUGHPUT_USERS} users: {:.0} requests/s   [goal ≥ 5000]",
            many.1
        );
        // Outside the measured round trip: goose's metrics, the row's CSV write and flush.
        println!(
            "cycle per request, 1 user (1 / rate): rig {:.3} ms, raw {:.3} ms",
            1000.0 / single.1,
            1000.0 / raw.1
        );
        println!(
            "open loop (Poisson, {OPEN_SECONDS} s each, ≤ {OPEN_OUTSTANDING} outstanding): lateness = send time − intended time"
        );
        println!("{:>10} {:>14} {:>14} {:>10}", "rate /s", "late p50 ms", "late p99 ms", "answered");
        for rate in OPEN_RATES {
            let (p50, p99, answered) = open_cell(addr, rate).await;
            println!(
                "{rate:>10.0} {p50:>14.3} {p99:>14.3} {:>9.1}%",
                answered * 100.0
            );
        }
    });
}

/// The trivial endpoint: every request gets the tiny JPEG and a Server-Timing header.
async fn serve() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", "image/jpeg")
                            .header(
                                header::SERVER_TIMING,
                                "queue;dur=0.001, ml;dur=0.010, total;dur=0.020",
                            )
                            .header(header::FACE_COUNT, "0")
                            .body(Full::new(Bytes::from_static(TINY_JPEG)))
                            .expect("response"),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Median round trip and rate of sequential POSTs through a raw hyper client.
async fn raw_hyper_latency(addr: SocketAddr) -> (f64, f64) {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let uri: hyper::Uri = format!("http://{addr}/").parse().expect("uri");
    let mut times = Vec::with_capacity(RAW_REQUESTS);
    let started = Instant::now();
    for _ in 0..RAW_REQUESTS {
        let request = Request::post(uri.clone())
            .header("content-type", "image/jpeg")
            .body(Full::new(Bytes::from_static(TINY_JPEG)))
            .expect("request");
        let t = Instant::now();
        let response = client.request(request).await.expect("raw request");
        let _ = response.into_body().collect().await.expect("raw body");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let rate = RAW_REQUESTS as f64 / started.elapsed().as_secs_f64();
    (Dist::of(&times).expect("samples").median, rate)
}

/// One goose cell of `users` with no think time: median round trip (from the rows) and rate.
async fn rig_cell(addr: SocketAddr, users: u32, per_user: u64) -> (f64, f64) {
    let load = Load::Closed {
        users,
        think_s: 0.0,
    };
    let (summary, _) = cell(addr, load, per_user, 1).await;
    assert_eq!(
        summary.ok,
        u64::from(users) * per_user,
        "every request succeeded"
    );
    let median = summary.rtt_ms.expect("round trips").median;
    (median, summary.ok as f64 / summary.wall_s)
}

/// An open-loop Poisson cell at `rate` for `OPEN_SECONDS`: the generator's lateness (intended
/// time to send, p50 and p99, from the rows' `late_ms`) and the share of arrivals answered.
async fn open_cell(addr: SocketAddr, rate: f64) -> (f64, f64, f64) {
    let load = Load::Open {
        rate_per_s: rate,
        process: Process::Poisson,
    };
    let arrivals = (rate * OPEN_SECONDS) as u64;
    let (summary, rows) = cell(addr, load, arrivals, OPEN_OUTSTANDING).await;
    let late: Vec<f64> = rows.iter().filter_map(|r| r.late_ms).collect();
    let late = Dist::of(&late).expect("arrivals were sent");
    (late.median, late.p99, summary.ok as f64 / arrivals as f64)
}

/// One cell against the endpoint: its summary and its rows.
async fn cell(
    addr: SocketAddr,
    load: Load,
    requests: u64,
    max_outstanding: u32,
) -> (
    slblur_client::summary::CellSummary,
    Vec<slblur_client::record::Row>,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("results.csv");
    let mut sink = CsvSink::open(&csv).expect("csv");
    let workload = Workload {
        wire: Wire::Binary,
        format: ImageKind::Jpeg,
        bodies: vec![RequestBody {
            bytes: Bytes::from_static(TINY_JPEG),
            content_type: Some("image/jpeg"),
        }],
        info: VideoInfo {
            path: PathBuf::from("tiny.jpg"),
            width: 1,
            height: 1,
            source_width: 1,
            source_height: 1,
            fps_num: 1,
            fps_den: 1,
            frames: 1,
            has_audio: false,
            codec: "mjpeg".into(),
        },
    };
    let rig = Rig {
        run_id: "bench".into(),
        wire: Wire::Binary,
        timeout: Duration::from_secs(10),
        workload: Arc::new(workload),
        budget: Budget {
            requests: Some(requests),
            duration: None,
        },
        share: Share::WHOLE,
        ramp: Ramp::Over(Duration::ZERO),
        max_outstanding,
        seed: 0,
        thresholds: Vec::new(),
        reports_dir: None,
        keep_images: false,
        smooth: slblur_client::rig::Smoothing::OFF,
        show_progress: false,
        token: None,
        callbacks: None,
        limits: Limits {
            frames: Some(requests),
            looping: true,
            duration: None,
        },
        trace: None,
    };
    let cell = Cell {
        index: 0,
        target: TargetSpec {
            name: "bench".into(),
            url: format!("http://{addr}/").parse().expect("url"),
            invocation: slblur_client::record::Invocation::Sync,
        },
        load,
    };
    let outcome = run_cell(&rig, &cell, &mut sink, &mut [])
        .await
        .expect("cell");
    drop(sink);
    let rows = slblur_client::record::read_rows(&csv).expect("rows");
    (outcome.summary, rows)
}
