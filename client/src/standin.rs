//! A **stand-in** for OpenFaaS's asynchronous path, for trying and testing asynchronous
//! targets without a cluster: it is not OpenFaaS. It answers the gateway's routes in front of
//! one function URL:
//!
//! - `POST /async-function/NAME`: `202 Accepted` with a new `X-Call-Id` at once, and the
//!   request queued (a message over NATS's default limit once base64-encoded in JSON, as the
//!   gateway queues it, is refused with a 500, as NATS refuses it);
//! - `POST /function/NAME`: the function called at once, its answer passed back with
//!   `X-Duration-Seconds` and `X-Call-Id`;
//!
//! and runs a queue worker: `workers` calls at a time (OpenFaaS CE's queue worker runs one),
//! each posted to the function with the request's headers, its answer then posted to the
//! request's `X-Callback-Url` with the function's headers plus `X-Duration-Seconds` (from
//! taking the message to reading the answer), `X-Function-Status` (503 when the function could
//! not be reached), `X-Function-Name` and `X-Call-Id`, as the queue worker does.
//!
//! [`Faults`] pick accepted calls (numbered from 1 in the order they were accepted) whose
//! callback is lost, posted twice, posted late, or reports a failure, and calls that also post
//! stray callbacks (to an unknown id, oversized, malformed), so a client's handling of each
//! can be tested.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::Url;
use slblur_protocol::header;
use tokio::sync::{Mutex, mpsc};

use crate::rig::callback::{QUEUE_MESSAGE_LIMIT, queued_bytes};

/// Calls (numbered from 1 in the order they were accepted) whose callback misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// The callback never comes.
    pub lose: BTreeSet<u64>,
    /// The callback comes twice.
    pub duplicate: BTreeSet<u64>,
    /// The callback comes `late_by` after the answer.
    pub late: BTreeSet<u64>,
    pub late_by: Duration,
    /// The callback reports a failed function (`X-Function-Status: 500`) without calling it.
    pub fail: BTreeSet<u64>,
    /// Stray posts beside the callback: to an id nobody asked for, with an oversized body,
    /// and a `GET` to the callback URL.
    pub stray: BTreeSet<u64>,
}

/// What the stand-in fronts.
#[derive(Debug, Clone)]
pub struct Standin {
    pub function: Url,
    /// Calls at a time by the queue worker.
    pub workers: usize,
    pub faults: Faults,
}

/// What it did, for its closing line.
#[derive(Debug, Default)]
pub struct Tally {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub callbacks: AtomicU64,
    pub sync_calls: AtomicU64,
}

struct Queued {
    number: u64,
    call_id: String,
    function: String,
    headers: HeaderMap,
    body: Bytes,
}

struct Front {
    standin: Standin,
    client: reqwest::Client,
    queue: mpsc::UnboundedSender<Queued>,
    tally: Arc<Tally>,
}

/// Serves the stand-in on `listener` until the future is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    standin: Standin,
    tally: Arc<Tally>,
) -> std::io::Result<()> {
    let (queue, messages) = mpsc::unbounded_channel();
    let front = Arc::new(Front {
        standin,
        client: reqwest::Client::new(),
        queue,
        tally,
    });
    let messages = Arc::new(Mutex::new(messages));
    for _ in 0..front.standin.workers.max(1) {
        tokio::spawn(queue_worker(Arc::clone(&front), Arc::clone(&messages)));
    }
    let app = axum::Router::new()
        .route("/async-function/{name}", axum::routing::post(accept))
        .route("/function/{name}", axum::routing::post(call_now))
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(front);
    axum::serve(listener, app).await
}

/// `POST /async-function/NAME`: queue the call, answer 202 with its id.
async fn accept(
    State(front): State<Arc<Front>>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if queued_bytes(body.len()) > QUEUE_MESSAGE_LIMIT {
        front.tally.refused.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "nats: maximum payload exceeded",
        )
            .into_response();
    }
    let number = front.tally.accepted.fetch_add(1, Ordering::Relaxed) + 1;
    let call_id = format!("standin-{number}");
    let queued = Queued {
        number,
        call_id: call_id.clone(),
        function,
        headers,
        body,
    };
    if front.queue.send(queued).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "queue closed").into_response();
    }
    (StatusCode::ACCEPTED, [(header::CALL_ID, call_id)]).into_response()
}

/// `POST /function/NAME`: call the function now and pass its answer back.
async fn call_now(
    State(front): State<Arc<Front>>,
    mut headers: HeaderMap,
    body: Bytes,
) -> Response {
    let number = front.tally.sync_calls.fetch_add(1, Ordering::Relaxed) + 1;
    insert(
        &mut headers,
        header::CALL_ID,
        &format!("standin-sync-{number}"),
    );
    let started = Instant::now();
    let answer = front.call(&headers, body).await;
    let mut out = answer.headers;
    insert(
        &mut out,
        header::DURATION_SECONDS,
        &seconds(started.elapsed()),
    );
    (answer.status, out, answer.body).into_response()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Front {
    /// Posts to the function with the caller's headers; a 503 when it cannot be reached.
    async fn call(&self, headers: &HeaderMap, body: Bytes) -> Answer {
        let mut request = self.client.post(self.standin.function.clone()).body(body);
        for (name, value) in without_framing(headers) {
            request = request.header(name, value);
        }
        let unreachable = || Answer {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        let Ok(response) = request.send().await else {
            return unreachable();
        };
        let status = StatusCode::from_u16(response.status().as_u16())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers: HeaderMap = without_framing(response.headers()).collect();
        match response.bytes().await {
            Ok(body) => Answer {
                status,
                headers,
                body,
            },
            Err(_) => unreachable(),
        }
    }

    /// One queued call: invoke the function, then post its answer to the callback URL, with
    /// the faults asked for.
    async fn work(self: &Arc<Self>, message: Queued) {
        let faults = &self.standin.faults;
        let n = message.number;
        let started = Instant::now();
        let answer = if faults.fail.contains(&n) {
            Answer {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                headers: HeaderMap::new(),
                body: Bytes::from_static(b"the function failed (a fault the stand-in injected)"),
            }
        } else {
            self.call(&message.headers, message.body.clone()).await
        };
        let duration = started.elapsed();
        let Some(url) = message
            .headers
            .get(header::CALLBACK_URL)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Url::parse(v).ok())
        else {
            return;
        };
        if faults.lose.contains(&n) {
            return;
        }
        let mut headers = answer.headers;
        insert(&mut headers, header::DURATION_SECONDS, &seconds(duration));
        insert(
            &mut headers,
            header::FUNCTION_STATUS,
            answer.status.as_str(),
        );
        insert(&mut headers, header::FUNCTION_NAME, &message.function);
        insert(&mut headers, header::CALL_ID, &message.call_id);
        if faults.stray.contains(&n) {
            let (front, url) = (Arc::clone(self), url.clone());
            tokio::spawn(async move { front.stray(&url).await });
        }
        let times = if faults.duplicate.contains(&n) { 2 } else { 1 };
        let post = {
            let front = Arc::clone(self);
            let late_by = faults.late.contains(&n).then_some(faults.late_by);
            async move {
                if let Some(delay) = late_by {
                    tokio::time::sleep(delay).await;
                }
                for _ in 0..times {
                    front.post(&url, &headers, answer.body.clone()).await;
                }
            }
        };
        if faults.late.contains(&n) {
            // A late callback must not hold up the calls behind it.
            tokio::spawn(post);
        } else {
            post.await;
        }
    }

    async fn post(&self, url: &Url, headers: &HeaderMap, body: Bytes) {
        let mut request = self.client.post(url.clone()).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        // The queue worker only logs a callback that fails.
        if request.send().await.is_ok() {
            self.tally.callbacks.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Posts that a callback receiver must refuse: a GET, an unknown id, an oversized body.
    async fn stray(&self, url: &Url) {
        let _ = self.client.get(url.clone()).send().await;
        let mut unknown = url.clone();
        if let Ok(mut segments) = unknown.path_segments_mut() {
            segments.pop().push("ffffffffffff");
        }
        let _ = self.client.post(unknown).body("stray").send().await;
        // Last: the receiver stops reading it at its limit and the connection is lost.
        let big = Bytes::from(vec![b'x'; 33 << 20]);
        let _ = self.client.post(url.clone()).body(big).send().await;
    }
}

async fn queue_worker(front: Arc<Front>, messages: Arc<Mutex<mpsc::UnboundedReceiver<Queued>>>) {
    loop {
        let message = messages.lock().await.recv().await;
        let Some(message) = message else { return };
        front.work(message).await;
    }
}

/// Headers without those that describe one hop's framing (the body is re-sent whole).
fn without_framing(headers: &HeaderMap) -> impl Iterator<Item = (HeaderName, HeaderValue)> + '_ {
    headers
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "host" | "content-length" | "transfer-encoding" | "connection"
            )
        })
        .map(|(n, v)| (n.clone(), v.clone()))
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// Seconds as the queue worker prints them (`%f`).
fn seconds(d: Duration) -> String {
    format!("{:.6}", d.as_secs_f64())
}
