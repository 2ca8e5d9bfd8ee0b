//! The router: `GET /_/health`, `GET /metrics`, and the function on every other path (OpenFaaS
//! forwards the full URI). The function handler admits or refuses (429), reads the body within
//! its limit, picks the wire format, waits for a worker and processes the frame off the runtime,
//! all under the request deadline (504).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::BodyExt;

use super::{AppError, AppState};
use crate::options::{FrameOptions, ImageKind};
use crate::pipeline::{Transport, ms, process};
use crate::wire::{self, Reply, Wire, WireHint};

/// Builds the application; tests drive it with `tower::ServiceExt::oneshot`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/_/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(function)
        .with_state(state)
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    if state.draining.load(Ordering::SeqCst) {
        AppError::new(StatusCode::SERVICE_UNAVAILABLE, "draining", "shutting down").into_response()
    } else if state.detector().is_none() {
        AppError::not_ready().into_response()
    } else {
        (StatusCode::OK, "OK\n").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        state.metrics.render(),
    )
        .into_response()
}

/// What a request was, for metrics and the log line.
struct Outcome {
    wire: Option<Wire>,
    result: Result<Response, AppError>,
}

async fn function(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let request_id = request_id(&headers);
    let hint = WireHint::from_headers(&headers);
    let plain_text = hint.as_ref().is_ok_and(|h| h.plain_text_errors());
    let mut body = Some(body);
    let Outcome { wire, result } = handle(
        &state,
        method,
        &headers,
        query.as_deref(),
        &mut body,
        hint,
        &request_id,
    )
    .await;
    if let Some(unread) = body {
        discard(unread).await;
    }
    let wire_name = wire.map_or("unknown", Wire::name);
    let mut response = match result {
        Ok(response) => response,
        Err(e) => {
            let plain = wire.map_or(plain_text, |w| w == Wire::Seed);
            tracing::warn!(request_id, wire = wire_name, status = e.status.as_u16(), code = e.code, message = %e.message, "rejected");
            e.plain_text(plain).into_response()
        }
    };
    state
        .metrics
        .record_request(wire_name, response.status().as_u16());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn handle(
    state: &Arc<AppState>,
    method: Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &mut Option<Body>,
    hint: Result<WireHint, AppError>,
    request_id: &str,
) -> Outcome {
    let fail = |wire, e| Outcome {
        wire,
        result: Err(e),
    };
    if method != Method::POST {
        let e = AppError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not served here: POST a frame (GET /_/health and /metrics are)"),
        );
        return fail(None, e);
    }
    let hint = match hint {
        Ok(h) => h,
        Err(e) => return fail(None, e),
    };
    let Some(detector) = state.detector().cloned() else {
        return fail(None, AppError::not_ready());
    };
    let config = &state.config;
    let Ok(_admitted) = state.admission.clone().try_acquire_owned() else {
        return fail(None, AppError::overloaded(config.workers + config.queue));
    };
    state.metrics.in_flight.inc();
    let _in_flight = scopeguard(|| {
        state.metrics.in_flight.dec();
    });

    let mut options = FrameOptions::from_config(config);
    if let Err(e) = options.apply_query(query.unwrap_or("")) {
        return fail(None, e.into());
    }
    let deadline = config.request_timeout;
    let resolved = std::sync::OnceLock::new();
    let work = async {
        let body = body.take().ok_or_else(|| {
            AppError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the body was already read",
            )
        })?;
        let body = read_body(body, headers, config.max_body_bytes).await?;
        let received = Instant::now();
        let wire = hint.resolve(&body);
        let _ = resolved.set(wire);
        let image = match wire {
            Wire::Json => Bytes::from(wire::json::parse_request(&body, &mut options)?),
            Wire::Binary | Wire::Seed => body,
        };
        if wire == Wire::Seed && options.format.is_none() {
            options.format = Some(ImageKind::Png);
        }
        let transport = if wire == Wire::Binary {
            Transport::Raw
        } else {
            Transport::Base64
        };
        let worker = state
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::not_ready())?;
        let queued = received.elapsed();
        let max_pixels = config.max_pixels;
        let mut processed = tokio::task::spawn_blocking(move || {
            let _worker = worker;
            process(&detector, &image, transport, &options, max_pixels)
        })
        .await
        .map_err(|e| {
            AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
        processed.timings.queue = ms(queued);
        processed.timings.total = ms(received.elapsed());
        processed.timings = processed.timings.rounded();
        Ok::<_, AppError>((wire, processed))
    };
    let (wire, processed) = match tokio::time::timeout(deadline, work).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return fail(resolved.get().copied(), e),
        Err(_) => {
            let e = AppError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "the frame was not done within {:.1} s (SLBLUR_TIMEOUT)",
                    deadline.as_secs_f64()
                ),
            );
            return fail(resolved.get().copied(), e);
        }
    };
    let t = processed.timings;
    state.metrics.record_frame(processed.faces.len(), &t);
    tracing::info!(
        request_id,
        wire = wire.name(),
        faces = processed.faces.len(),
        width = processed.input.width,
        height = processed.input.height,
        queue_ms = t.queue,
        decode_ms = t.decode,
        ml_ms = t.ml,
        blur_ms = t.blur,
        encode_ms = t.encode,
        total_ms = t.total,
        "frame"
    );
    let reply = Reply {
        processed,
        cold: state.cold.swap(false, Ordering::SeqCst),
        instance: &state.config.instance,
        request_id,
    };
    Outcome {
        wire: Some(wire),
        result: Ok(wire::respond(wire, reply)),
    }
}

/// At most this much of a body that will not be used is read and thrown away …
const LINGER_BYTES: usize = 64 << 20;
/// … for at most this long.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Reads the whole body, refusing it as soon as it passes `limit` (declared or streamed:
/// of-watchdog forwards bodies chunked).
async fn read_body(mut body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, AppError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        discard(body).await;
        return Err(AppError::body_too_large(limit));
    }
    let mut data = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            AppError::new(
                StatusCode::BAD_REQUEST,
                "body_read_failed",
                format!("could not read the body: {e}"),
            )
        })?;
        if let Ok(chunk) = frame.into_data() {
            if data.len() + chunk.len() > limit {
                discard(body).await;
                return Err(AppError::body_too_large(limit));
            }
            data.extend_from_slice(&chunk);
        }
    }
    Ok(data.into())
}

/// Reads and drops the rest of a body the function will not use ("lingering close"): a server
/// that answers early and closes makes most clients report a broken pipe instead of the answer.
async fn discard(mut body: Body) {
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > LINGER_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// The caller's request id (OpenFaaS sets `X-Call-Id`), or a new one.
fn request_id(headers: &HeaderMap) -> String {
    ["x-request-id", "x-call-id"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .find(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
}

/// Runs `f` when dropped, whichever way the handler returns.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
