//! One request through goose: post a frame, read the whole response body, turn the outcome
//! into a row, and give goose the round trip and the server's own times as custom requests,
//! so its reports show them per cell.
//!
//! goose times a request to its response headers; the round trip here runs until the last
//! body byte, which is what a user of the function waits for.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use goose::prelude::*;
use slblur_protocol::boxes::{self, BoxPx};
use slblur_protocol::header;

use crate::record::{Row, round_ms, timestamp};
use crate::video::VideoInfo;
use crate::wire::{self, ReplyImage, RequestBody};

use super::CellContext;

/// The name goose reports every frame request under (`POST frame`, `rtt frame`, …).
pub const REQUEST_NAME: &str = "frame";

/// How often a waiting user looks at goose's kill switch (Ctrl-C).
const KILLSWITCH_POLL: Duration = Duration::from_millis(50);

/// A finished request: its row, the returned image when `--save-video` wants it, and the
/// faces the reply detected (for `--smooth`).
#[derive(Debug)]
pub struct Outcome {
    pub row: Row,
    pub image: Option<ReplyImage>,
    pub detected: Vec<BoxPx>,
}

impl Outcome {
    /// A request that failed: the row says why.
    pub fn failed(row: Row) -> Outcome {
        Outcome {
            row,
            image: None,
            detected: Vec::new(),
        }
    }
}

/// The share of the frame the reply masked: its boxes' union, 0 when it masked nothing
/// (`mode=none`); unknown when the format lists no boxes (seed).
fn masked_area(reply: &wire::ParsedReply, frame: &VideoInfo) -> Option<f64> {
    let masked = reply.masked?;
    let share = match masked {
        0 => 0.0,
        _ => boxes::union_share(&reply.boxes, frame.width, frame.height),
    };
    Some((share * 10_000.0).round() / 10_000.0)
}

/// What one request sends: a frame's body and the boxes to mask besides the detector's.
pub struct Request<'a> {
    pub body: &'a RequestBody,
    pub hints: &'a [BoxPx],
}

/// Sends the request and completes `row`. `intended` is an open-loop arrival's scheduled time:
/// the round trip then counts from it. `None` when the run is being stopped (Ctrl-C): the
/// request was abandoned and leaves no row.
pub async fn exchange(
    user: &mut GooseUser,
    cell: &CellContext,
    request: Request<'_>,
    mut row: Row,
    intended: Option<(Instant, SystemTime)>,
) -> Option<Outcome> {
    let body = request.body;
    let started_at = SystemTime::now();
    let start = Instant::now();
    let measured_from = intended.map_or(start, |(at, _)| at);
    row.started_at = timestamp(started_at);
    if let Some((_, at)) = intended {
        row.intended_at = timestamp(at);
    }
    row.bytes_sent = body.bytes.len() as u64;
    row.hints = request.hints.len() as u32;
    let outcome = tokio::select! {
        outcome = send(user, cell, request, row, measured_from) => outcome,
        () = killed() => return None,
    };
    record_in_goose(user, &outcome.row).await;
    Some(outcome)
}

async fn send(
    user: &mut GooseUser,
    cell: &CellContext,
    request: Request<'_>,
    mut row: Row,
    measured_from: Instant,
) -> Outcome {
    let body = request.body;
    let elapsed_ms = || round_ms(measured_from.elapsed().as_secs_f64() * 1000.0);
    let builder = match user.get_request_builder(&GooseMethod::Post, cell.url.as_str()) {
        Ok(b) => b,
        Err(e) => {
            row.error = wire::shorten(&format!("request error: {e}"));
            return Outcome::failed(row);
        }
    };
    let mut builder = builder.timeout(cell.timeout).body(body.bytes.clone());
    if let Some(ct) = body.content_type {
        builder = builder.header(reqwest::header::CONTENT_TYPE, ct);
    }
    if let Some(token) = &cell.token {
        builder = builder.header(reqwest::header::AUTHORIZATION, token.header_value().clone());
    }
    if !request.hints.is_empty() {
        builder = builder.header(header::HINTS, boxes::render(request.hints));
    }
    let goose_request = GooseRequest::builder()
        .name(REQUEST_NAME)
        .set_request_builder(builder)
        .build();
    let response = match user.request(goose_request).await {
        Ok(goose) => goose.response,
        Err(e) => {
            row.rtt_ms = elapsed_ms();
            row.error = wire::shorten(&format!("request error: {e}"));
            return Outcome::failed(row);
        }
    };
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            row.rtt_ms = elapsed_ms();
            row.error = transport_error(&e, cell.timeout);
            return Outcome::failed(row);
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    row.status = Some(status.as_u16());
    let bytes: Result<Bytes, _> = response.bytes().await;
    row.rtt_ms = elapsed_ms();
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            row.error = transport_error(&e, cell.timeout);
            return Outcome::failed(row);
        }
    };
    row.bytes_received = bytes.len() as u64;
    if !status.is_success() {
        row.error = wire::error_text(status, &headers, &bytes);
        return Outcome::failed(row);
    }
    match wire::parse_reply(cell.wire, &headers, &bytes) {
        Ok(reply) => {
            row.total_ms = reply.total_ms.map(round_ms);
            row.ml_ms = reply.ml_ms.map(round_ms);
            row.queue_ms = reply.queue_ms.map(round_ms);
            row.faces = reply.faces;
            row.masked = reply.masked;
            row.masked_area = masked_area(&reply, &cell.workload.info);
            row.cold = reply.cold;
            let detected = reply.detected().to_vec();
            row.instance = reply.instance.unwrap_or_default();
            row.ok = true;
            Outcome {
                row,
                image: reply.image,
                detected,
            }
        }
        Err(text) => {
            row.error = text;
            Outcome::failed(row)
        }
    }
}

/// The round trip, and the handler's total and ML time of a success, as goose custom requests
/// (`rtt frame`, `total frame`, `ml frame` in its reports; thresholds judge `rtt frame`).
async fn record_in_goose(user: &mut GooseUser, row: &Row) {
    let ms = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1000.0);
    let error = (!row.ok).then_some(row.error.as_str());
    // A metrics channel that is already closed (the run is ending) is not the request's fault.
    let _ = user
        .record_custom_request_duration(
            "rtt",
            REQUEST_NAME,
            ms(row.rtt_ms),
            row.ok,
            row.status,
            error,
        )
        .await;
    for (method, value) in [("total", row.total_ms), ("ml", row.ml_ms)] {
        if let Some(v) = value {
            let _ = user
                .record_custom_request_duration(method, REQUEST_NAME, ms(v), true, row.status, None)
                .await;
        }
    }
}

/// Resolves once goose's kill switch is set (the first Ctrl-C).
pub async fn killed() {
    while !goose::is_killswitch_triggered() {
        tokio::time::sleep(KILLSWITCH_POLL).await;
    }
}

/// Sleeps `duration`, or less when the run is being stopped; `false` if it was.
pub async fn pause(duration: Duration) -> bool {
    if duration.is_zero() {
        return !goose::is_killswitch_triggered();
    }
    tokio::select! {
        () = tokio::time::sleep(duration) => !goose::is_killswitch_triggered(),
        () = killed() => false,
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
