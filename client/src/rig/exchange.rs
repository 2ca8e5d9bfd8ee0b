//! One request through goose: post a frame, read the whole response body (for an asynchronous
//! target: the `202 Accepted`, then wait for the function's answer at the callback), turn the
//! outcome into a row, and give goose the round trip and the server's own times as custom
//! requests, so its reports show them per cell.
//!
//! goose times a request to its response headers; the round trip here runs until the last
//! body byte, which is what a user of the function waits for.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use goose::prelude::*;
use slblur_protocol::boxes::{self, BoxPx};
use slblur_protocol::header;

use reqwest::header::HeaderMap;

use crate::record::{Row, round_ms, timestamp};
use crate::video::VideoInfo;
use crate::wire::{self, ReplyImage, RequestBody};

use super::CellContext;
use super::callback::{Callback, Callbacks, call_id_note};

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
/// the round trip then counts from it. `None` when the run is being stopped (Ctrl-C) before
/// the request was taken: it was abandoned and leaves no row. (An asynchronous request the
/// platform accepted is a failed row then: it is in the platform's queue.)
pub async fn exchange(
    user: &mut GooseUser,
    cell: &CellContext,
    request: Request<'_>,
    mut row: Row,
    intended: Option<(Instant, SystemTime)>,
) -> Option<Outcome> {
    let started_at = SystemTime::now();
    let start = Instant::now();
    let measured_from = intended.map_or(start, |(at, _)| at);
    row.started_at = timestamp(started_at);
    if let Some((_, at)) = intended {
        row.intended_at = timestamp(at);
    }
    row.bytes_sent = request.body.bytes.len() as u64;
    row.hints = request.hints.len() as u32;
    let outcome = match &cell.callbacks {
        None => tokio::select! {
            outcome = call(user, cell, request, row, measured_from) => outcome,
            () = killed() => return None,
        },
        Some(callbacks) => call_async(user, cell, callbacks, request, row, measured_from).await?,
    };
    record_in_goose(user, &outcome.row).await;
    Some(outcome)
}

/// A response, read to its last byte.
struct Answer {
    status: reqwest::StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// A synchronous call: the response is the function's answer.
async fn call(
    user: &mut GooseUser,
    cell: &CellContext,
    request: Request<'_>,
    mut row: Row,
    measured_from: Instant,
) -> Outcome {
    let answer = post(user, cell, &request, &[], &mut row).await;
    row.rtt_ms = elapsed_ms(measured_from);
    match answer {
        Ok(answer) => read_answer(cell, row, answer),
        Err(()) => Outcome::failed(row),
    }
}

/// An asynchronous call: `202 Accepted` with `X-Call-Id`, then the function's answer at the
/// callback. `None` only when stopped before the platform took the request.
async fn call_async(
    user: &mut GooseUser,
    cell: &CellContext,
    callbacks: &std::sync::Arc<Callbacks>,
    request: Request<'_>,
    mut row: Row,
    measured_from: Instant,
) -> Option<Outcome> {
    let mut expected = callbacks.expect();
    let headers = [
        (header::CALLBACK_URL, expected.url.to_string()),
        (header::REQUEST_ID, expected.request_id()),
    ];
    let posted = tokio::select! {
        posted = post(user, cell, &request, &headers, &mut row) => posted,
        () = killed() => return None,
    };
    row.rtt_ms = elapsed_ms(measured_from);
    row.accepted_ms = Some(row.rtt_ms);
    let Ok(accepted) = posted else {
        return Some(Outcome::failed(row));
    };
    row.call_id = header_text(&accepted.headers, header::CALL_ID).to_string();
    if accepted.status != reqwest::StatusCode::ACCEPTED {
        row.error = not_accepted(&accepted);
        return Some(Outcome::failed(row));
    }
    let left = cell.timeout.saturating_sub(measured_from.elapsed());
    let callback = tokio::select! {
        callback = expected.wait(left) => callback,
        () = killed() => {
            row.rtt_ms = elapsed_ms(measured_from);
            row.error = format!("stopped before the callback came{}", call_id_note(&row.call_id));
            return Some(Outcome::failed(row));
        }
    };
    let Some(callback) = callback else {
        row.rtt_ms = elapsed_ms(measured_from);
        row.error = format!(
            "no callback within {}{}",
            humantime::format_duration(cell.timeout),
            call_id_note(&row.call_id)
        );
        return Some(Outcome::failed(row));
    };
    let outcome = read_callback(cell, row, callback, measured_from);
    expected.settle(&outcome.row, cell.writer());
    Some(outcome)
}

/// The function's answer carried by a callback: its status in `X-Function-Status`, its own
/// headers and body as the function sent them.
fn read_callback(
    cell: &CellContext,
    mut row: Row,
    callback: Callback,
    measured_from: Instant,
) -> Outcome {
    let at = callback.at.saturating_duration_since(measured_from);
    row.rtt_ms = round_ms(at.as_secs_f64() * 1000.0);
    let headers = callback.headers;
    if let Ok(worker_s) = header_text(&headers, header::DURATION_SECONDS)
        .trim()
        .parse::<f64>()
    {
        row.async_queue_ms = Some(round_ms((row.rtt_ms - worker_s * 1000.0).max(0.0)));
    }
    let status = header_text(&headers, header::FUNCTION_STATUS)
        .trim()
        .parse::<u16>()
        .ok()
        .and_then(|s| reqwest::StatusCode::from_u16(s).ok());
    let Some(status) = status else {
        row.error = format!(
            "callback without a valid X-Function-Status{}",
            call_id_note(&row.call_id)
        );
        return Outcome::failed(row);
    };
    let answer = Answer {
        status,
        headers,
        body: callback.body,
    };
    read_answer(cell, row, answer)
}

/// What to say of an asynchronous target's answer that is not `202 Accepted`.
fn not_accepted(answer: &Answer) -> String {
    if answer.status.is_success() {
        return format!(
            "expected 202 Accepted from an asynchronous target, got {}: is the URL OpenFaaS's /async-function/NAME?",
            answer.status
        );
    }
    wire::error_text(answer.status, &answer.headers, &answer.body)
}

/// A header's text, empty when missing.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    wire::header_text(headers, name).unwrap_or_default()
}

fn elapsed_ms(from: Instant) -> f64 {
    round_ms(from.elapsed().as_secs_f64() * 1000.0)
}

/// Posts the frame (with `extra` headers) and reads the whole response. `Err` when no
/// complete response came; `row.error` then says why. Sets the status and the bytes received.
async fn post(
    user: &mut GooseUser,
    cell: &CellContext,
    request: &Request<'_>,
    extra: &[(&str, String)],
    row: &mut Row,
) -> Result<Answer, ()> {
    let body = request.body;
    let builder = match user.get_request_builder(&GooseMethod::Post, cell.url.as_str()) {
        Ok(b) => b,
        Err(e) => {
            row.error = wire::shorten(&format!("request error: {e}"));
            return Err(());
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
    for (name, value) in extra {
        builder = builder.header(*name, value);
    }
    let goose_request = GooseRequest::builder()
        .name(REQUEST_NAME)
        .set_request_builder(builder)
        .build();
    let response = match user.request(goose_request).await {
        Ok(goose) => goose.response,
        Err(e) => {
            row.error = wire::shorten(&format!("request error: {e}"));
            return Err(());
        }
    };
    let response = response.map_err(|e| row.error = transport_error(&e, cell.timeout))?;
    let (status, headers) = (response.status(), response.headers().clone());
    row.status = Some(status.as_u16());
    let body = response
        .bytes()
        .await
        .map_err(|e| row.error = transport_error(&e, cell.timeout))?;
    row.bytes_received = body.len() as u64;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The row of a complete answer: the function's timings, faces and image, or why it failed.
fn read_answer(cell: &CellContext, mut row: Row, answer: Answer) -> Outcome {
    let Answer {
        status,
        headers,
        body,
    } = answer;
    row.status = Some(status.as_u16());
    if !status.is_success() {
        row.error = wire::error_text(status, &headers, &body);
        return Outcome::failed(row);
    }
    match wire::parse_reply(cell.wire, &headers, &body) {
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
            row.precision = reply.precision;
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
