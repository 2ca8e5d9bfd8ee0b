//! The load itself: a user loop (think, send a frame, record) and a cell of concurrent users.
//!
//! `run` is one cell with one user; `sweep` runs cells one after another. Users are tokio tasks
//! sharing one HTTP client and the request bodies built once per run; their outcomes flow
//! through a channel to the single place that writes the CSV, so rows never interleave.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::Url;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::cli::{ImageFormat, Wire};
use crate::progress::Progress;
use crate::record::{CsvSink, RecordError, Row, round_ms, timestamp};
use crate::summary::{CellStats, CellSummary};
use crate::video::{self, DecodeOptions, VideoError, VideoInfo};
use crate::wire::{self, Body, ReplyImage};

/// The frames of one video, encoded once into request bodies.
#[derive(Debug)]
pub struct Workload {
    pub wire: Wire,
    pub format: ImageFormat,
    pub bodies: Vec<Body>,
    pub info: VideoInfo,
}

impl Workload {
    /// Decodes `path` and encodes every frame for `wire` (in parallel, off the request path).
    pub fn prepare(
        path: &Path,
        opts: DecodeOptions,
        wire: Wire,
        format: ImageFormat,
        quality: u8,
    ) -> Result<Self, VideoError> {
        let bodies: Mutex<Vec<Option<Body>>> = Mutex::new(Vec::new());
        let info = video::for_each_frame_parallel(path, opts, |index, frame| {
            let body = wire::request_body(&frame, wire, format, quality)
                .map_err(|e| VideoError::Frame(e.to_string()))?;
            let mut all = bodies
                .lock()
                .map_err(|_| VideoError::Frame("frame encoder panicked".into()))?;
            let i =
                usize::try_from(index).map_err(|_| VideoError::Frame("too many frames".into()))?;
            if all.len() <= i {
                all.resize(i + 1, None);
            }
            all[i] = Some(body);
            Ok(())
        })?;
        let bodies: Vec<Body> = bodies
            .into_inner()
            .map_err(|_| VideoError::Frame("frame encoder panicked".into()))?
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(|| VideoError::Frame("a frame was decoded but not encoded".into()))?;
        Ok(Self {
            wire,
            format,
            bodies,
            info,
        })
    }

    pub fn mean_body_bytes(&self) -> u64 {
        let total: usize = self.bodies.iter().map(|b| b.bytes.len()).sum();
        (total / self.bodies.len().max(1)) as u64
    }
}

/// Where and how requests go.
#[derive(Debug, Clone)]
pub struct Target {
    pub client: reqwest::Client,
    pub url: Url,
    pub timeout: Duration,
}

impl Target {
    pub fn new(url: Url, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .user_agent(concat!("slblur-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            url,
            timeout,
        })
    }
}

/// One cell: this many users, each with this think time and request budget.
#[derive(Debug, Clone)]
pub struct CellSpec {
    pub users: u32,
    pub think: Duration,
    /// Requests per user; `None` = until the video ends (or forever with `looping`).
    pub requests: Option<u64>,
    pub looping: bool,
    pub duration: Option<Duration>,
    pub ramp_up: Duration,
}

impl CellSpec {
    /// Requests each user will send, if bounded.
    pub fn requests_per_user(&self, frames: u64) -> Option<u64> {
        match (self.requests, self.looping) {
            (Some(n), true) => Some(n),
            (Some(n), false) => Some(n.min(frames)),
            (None, false) => Some(frames),
            (None, true) => None,
        }
    }
}

/// A finished request: its row, and the returned image when `--save-video` wants it.
#[derive(Debug)]
pub struct Outcome {
    pub row: Row,
    pub image: Option<ReplyImage>,
}

/// Everything the users of a run share.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub run_id: String,
    pub target: Target,
    pub workload: Arc<Workload>,
    /// Keep the returned images of user 0's first pass (for `--save-video`).
    pub keep_images: bool,
}

/// How a cell ended.
#[derive(Debug)]
pub struct CellResult {
    pub summary: CellSummary,
    pub interrupted: bool,
}

/// A future that resolves when the run should stop (Ctrl-C), shared across cells.
pub type Interrupt = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs one cell to the end (or until `interrupt`), writing every row to `sink` as it arrives.
/// Returned images (if kept) land in `images` by frame index.
pub async fn run_cell(
    ctx: &RunContext,
    spec: &CellSpec,
    sink: &mut CsvSink,
    images: &mut [Option<ReplyImage>],
    progress: &Progress,
    interrupt: &mut Interrupt,
) -> Result<CellResult, RecordError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Outcome>();
    let mut users = JoinSet::new();
    let started = Instant::now();
    for user_id in 0..spec.users {
        let delay = spec
            .ramp_up
            .mul_f64(f64::from(user_id) / f64::from(spec.users));
        users.spawn(user_loop(
            ctx.clone(),
            spec.clone(),
            user_id,
            delay,
            tx.clone(),
        ));
    }
    drop(tx);
    let mut stats = CellStats::new(spec.users, spec.think);
    let mut interrupted = false;
    loop {
        tokio::select! {
            outcome = rx.recv() => {
                let Some(outcome) = outcome else { break };
                sink.write(&outcome.row)?;
                stats.add(&outcome.row);
                progress.record(&outcome.row, stats.ok(), stats.failed());
                let frame = usize::try_from(outcome.row.frame).ok();
                if let Some(image) = outcome.image
                    && let Some(slot) = frame.and_then(|i| images.get_mut(i))
                {
                    *slot = Some(image);
                }
            }
            () = &mut *interrupt => {
                interrupted = true;
                break;
            }
        }
    }
    // Dropping the set aborts users still in flight (only after an interrupt).
    users.abort_all();
    progress.finish();
    Ok(CellResult {
        summary: stats.finish(started.elapsed()),
        interrupted,
    })
}

/// One user: think, send, report; until its budget, deadline or the video runs out.
async fn user_loop(
    ctx: RunContext,
    spec: CellSpec,
    user_id: u32,
    delay: Duration,
    tx: mpsc::UnboundedSender<Outcome>,
) {
    tokio::time::sleep(delay).await;
    let frames = ctx.workload.bodies.len() as u64;
    let budget = spec.requests_per_user(frames);
    let deadline = spec.duration.map(|d| Instant::now() + d);
    let mut sent: u64 = 0;
    while budget.is_none_or(|b| sent < b) && frames > 0 {
        // Like client.py: the think time comes before every request, the first one too.
        tokio::time::sleep(spec.think).await;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let (frame, iteration) = (sent % frames, sent / frames);
        let body = &ctx.workload.bodies[frame as usize];
        let think_s = spec.think.as_secs_f64();
        let row = Row::pending(&ctx.run_id, spec.users, think_s, user_id, frame, iteration);
        let mut outcome = send(&ctx, body, row).await;
        if !(ctx.keep_images && user_id == 0 && iteration == 0) {
            outcome.image = None;
        }
        if tx.send(outcome).is_err() {
            break;
        }
        sent += 1;
    }
}

/// Sends one body and measures the round trip until the whole response body is read; the
/// outcome completes `row`.
async fn send(ctx: &RunContext, body: &Body, mut row: Row) -> Outcome {
    let target = &ctx.target;
    let mut request = target
        .client
        .post(target.url.clone())
        .timeout(target.timeout)
        .body(body.bytes.clone());
    if let Some(ct) = body.content_type {
        request = request.header(reqwest::header::CONTENT_TYPE, ct);
    }
    let started_at = SystemTime::now();
    let start = Instant::now();
    row.started_at = timestamp(started_at);
    row.bytes_sent = body.bytes.len() as u64;
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            row.rtt_ms = round_ms(start.elapsed().as_secs_f64() * 1000.0);
            row.error = transport_error(&e, target.timeout);
            return Outcome { row, image: None };
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    row.status = Some(status.as_u16());
    let bytes: Result<Bytes, _> = response.bytes().await;
    row.rtt_ms = round_ms(start.elapsed().as_secs_f64() * 1000.0);
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            row.error = transport_error(&e, target.timeout);
            return Outcome { row, image: None };
        }
    };
    row.bytes_received = bytes.len() as u64;
    if !status.is_success() {
        row.error = wire::error_text(status, &headers, &bytes);
        return Outcome { row, image: None };
    }
    match wire::parse_reply(ctx.workload.wire, &headers, &bytes) {
        Ok(reply) => {
            (row.total_ms, row.ml_ms, row.faces, row.cold) = (
                reply.total_ms.map(round_ms),
                reply.ml_ms.map(round_ms),
                reply.faces,
                reply.cold,
            );
            row.ok = true;
            Outcome {
                row,
                image: reply.image,
            }
        }
        Err(text) => {
            row.error = text;
            Outcome { row, image: None }
        }
    }
}

/// A short, specific text for a request that got no (complete) response.
fn transport_error(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timeout after {}", humantime::format_duration(timeout));
    }
    // The innermost cause says what happened ("Connection refused", "connection closed ...").
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let kind = if e.is_connect() {
        "connect error"
    } else if e.is_body() || e.is_decode() {
        "response body error"
    } else {
        "request error"
    };
    wire::shorten(&format!("{kind}: {cause}"))
}
