//! The callback receiver for asynchronous targets. OpenFaaS's `POST /async-function/NAME`
//! answers `202 Accepted` at once; its queue worker calls the function later and posts the
//! function's answer (body and headers, plus `X-Function-Status`, `X-Duration-Seconds` and
//! `X-Call-Id`) to the `X-Callback-Url` the caller gave. Each request gets its own callback URL
//! (`…/slblur-callback/<id>`, the id also sent as `X-Request-Id`), so a callback is matched to
//! its request whatever else it carries.
//!
//! A request [`Callbacks::expect`]s its callback before it is sent (the answer can come before
//! the 202 is read) and then waits for it. What is not a first callback for a waiting request
//! is counted and refused, never a crash: an unknown id (404), one that comes after its request
//! gave up (410), a second one (409, and a failed row for the request), a body over
//! [`MAX_CALLBACK_BYTES`] (413) or anything else (400).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::record::Row;

use super::exchange::Outcome;

/// The largest callback body read: a full-HD PNG frame in JSON, with room to spare.
pub const MAX_CALLBACK_BYTES: usize = 32 << 20;

/// The largest message OpenFaaS's queue (NATS) takes by default.
pub const QUEUE_MESSAGE_LIMIT: usize = 1 << 20;

/// About how large a request body is once the gateway has queued it: base64-encoded inside a
/// JSON message with the request's headers.
pub fn queued_bytes(body: usize) -> usize {
    body.div_ceil(3) * 4 + 2048
}

/// The path segment before each request's id.
const SEGMENT: &str = "slblur-callback";

/// How long an answered or abandoned request is remembered, to tell a duplicate or a late
/// callback from an unknown one.
const REMEMBER: Duration = Duration::from_secs(600);

/// One callback, as it arrived.
#[derive(Debug)]
pub struct Callback {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Callbacks the receiver took and refused, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackCounts {
    /// First callbacks of waiting requests.
    pub matched: u64,
    /// Second (or later) callbacks for one request.
    pub duplicate: u64,
    /// Callbacks for requests that had already given up (timeout, Ctrl-C).
    pub late: u64,
    /// Ids this run never sent.
    pub unknown: u64,
    /// Bodies over the limit.
    pub oversized: u64,
    /// Anything else: another method, a path without an id, an unreadable body.
    pub malformed: u64,
}

impl CallbackCounts {
    /// Counts since `before`.
    pub fn since(self, before: CallbackCounts) -> CallbackCounts {
        CallbackCounts {
            matched: self.matched - before.matched,
            duplicate: self.duplicate - before.duplicate,
            late: self.late - before.late,
            unknown: self.unknown - before.unknown,
            oversized: self.oversized - before.oversized,
            malformed: self.malformed - before.malformed,
        }
    }

    pub fn refused(&self) -> u64 {
        self.duplicate + self.late + self.unknown + self.oversized + self.malformed
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen for callbacks on {addr}")]
pub struct ListenError {
    addr: SocketAddr,
    #[source]
    source: std::io::Error,
}

/// What a request still waiting for its callback left behind, and what became of it.
#[derive(Default)]
struct Book {
    waiting: HashMap<u64, oneshot::Sender<Callback>>,
    /// Answered requests: when, and their row and the cell's writer once the request has
    /// finished it (a duplicate then becomes a failed row of the request).
    answered: HashMap<u64, Answered>,
    /// Requests that gave up waiting, and when.
    abandoned: HashMap<u64, Instant>,
    /// Insertions since the last sweep of old entries.
    since_sweep: usize,
}

struct Answered {
    at: Instant,
    row: Option<(Row, mpsc::UnboundedSender<Outcome>)>,
    /// Duplicates that came before the row was known.
    early_duplicates: u32,
}

impl Book {
    /// Forgets answered and abandoned requests older than [`REMEMBER`], now and then.
    fn sweep(&mut self) {
        self.since_sweep += 1;
        if self.since_sweep < 1024 {
            return;
        }
        self.since_sweep = 0;
        let now = Instant::now();
        self.answered.retain(|_, a| now - a.at < REMEMBER);
        self.abandoned.retain(|_, at| now - *at < REMEMBER);
    }
}

/// The run's callback receiver: an HTTP server on `--callback-listen` and the book of
/// requests waiting for their callbacks.
pub struct Callbacks {
    /// The URL callbacks are posted to, before each request's own path.
    base: Url,
    next_id: AtomicU64,
    book: Mutex<Book>,
    counts: Mutex<CallbackCounts>,
}

impl std::fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks")
            .field("base", &self.base)
            .finish()
    }
}

/// The receiver's server; stops when dropped.
pub struct Receiver {
    pub callbacks: Arc<Callbacks>,
    pub local_addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    /// Listens on `listen`; callbacks are posted to `public` (the address the platform
    /// reaches this machine by), or to the address listened on.
    pub async fn start(listen: SocketAddr, public: Option<Url>) -> Result<Receiver, ListenError> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| ListenError {
                addr: listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ListenError {
            addr: listen,
            source,
        })?;
        let mut base = public.unwrap_or_else(|| {
            Url::parse(&format!("http://{local_addr}/")).expect("a socket address is a valid host")
        });
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let callbacks = Arc::new(Callbacks {
            base,
            next_id: AtomicU64::new(1),
            book: Mutex::new(Book::default()),
            counts: Mutex::new(CallbackCounts::default()),
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&callbacks));
        let server = tokio::spawn(async move {
            // The server only ends with the run (the task is aborted).
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver {
            callbacks,
            local_addr,
            server,
        })
    }
}

impl Callbacks {
    /// Registers a new request; its callback URL and id are in the returned [`Expected`].
    pub fn expect(self: &Arc<Self>) -> Expected {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.book().waiting.insert(id, tx);
        let url = self.url_for(&format!("{id:x}"));
        Expected {
            id,
            url,
            callbacks: Arc::clone(self),
            rx: Some(rx),
        }
    }

    /// The callback URL of the request with this (hex) id.
    pub fn url_for(&self, id: &str) -> Url {
        self.base
            .join(&format!("{SEGMENT}/{id}"))
            .expect("an id is a valid path segment")
    }

    pub fn counts(&self) -> CallbackCounts {
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        // A panic elsewhere cannot leave the book half-written: every change is one insert
        // or remove.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, f: impl FnOnce(&mut CallbackCounts)) {
        f(&mut self.counts.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Takes one callback for request `id`; the status to answer it with.
    fn take(&self, id: u64, callback: Callback) -> StatusCode {
        let at = callback.at;
        let mut book = self.book();
        if let Some(tx) = book.waiting.remove(&id) {
            if tx.send(callback).is_ok() {
                book.answered.insert(
                    id,
                    Answered {
                        at,
                        row: None,
                        early_duplicates: 0,
                    },
                );
                book.sweep();
                drop(book);
                self.count(|c| c.matched += 1);
                return StatusCode::OK;
            }
            // The request gave up between its timeout and taking the callback.
            book.abandoned.insert(id, at);
        }
        if let Some(answered) = book.answered.get_mut(&id) {
            let first = answered.at;
            match &answered.row {
                Some((row, writer)) => {
                    let _ = writer.send(Outcome::failed(duplicate_row(row, first, at)));
                }
                None => answered.early_duplicates += 1,
            }
            drop(book);
            self.count(|c| c.duplicate += 1);
            return StatusCode::CONFLICT;
        }
        if book.abandoned.contains_key(&id) {
            drop(book);
            self.count(|c| c.late += 1);
            return StatusCode::GONE;
        }
        drop(book);
        self.count(|c| c.unknown += 1);
        StatusCode::NOT_FOUND
    }
}

/// The row a second callback for a request becomes: the request's, failed, saying so, its
/// round trip running to the second callback.
fn duplicate_row(row: &Row, first: Instant, again: Instant) -> Row {
    let gap_ms = again.saturating_duration_since(first).as_secs_f64() * 1000.0;
    let mut dup = row.clone();
    dup.ok = false;
    dup.rtt_ms = crate::record::round_ms(row.rtt_ms + gap_ms);
    dup.error = format!(
        "duplicate callback{}, {gap_ms:.0} ms after the first",
        call_id_note(&row.call_id)
    );
    dup
}

/// ` for X-Call-Id ID`, or nothing when the platform sent none.
pub fn call_id_note(call_id: &str) -> String {
    if call_id.is_empty() {
        String::new()
    } else {
        format!(" for X-Call-Id {call_id}")
    }
}

/// A request's claim on its callback.
pub struct Expected {
    pub id: u64,
    /// Where the callback must be posted (`X-Callback-Url`).
    pub url: Url,
    callbacks: Arc<Callbacks>,
    rx: Option<oneshot::Receiver<Callback>>,
}

impl Expected {
    /// The id as sent in `X-Request-Id`.
    pub fn request_id(&self) -> String {
        format!("{:x}", self.id)
    }

    /// The callback, or `None` when none came within `limit`.
    pub async fn wait(&mut self, limit: Duration) -> Option<Callback> {
        let rx = self.rx.as_mut()?;
        let callback = tokio::time::timeout(limit, rx).await.ok()?.ok();
        if callback.is_some() {
            self.rx = None;
        }
        callback
    }

    /// The request finished with `row`: a duplicate of its callback from now on becomes a
    /// failed row, sent to `writer` (the cell's), and one that came already does so now.
    pub fn settle(self, row: &Row, writer: &mpsc::UnboundedSender<Outcome>) {
        let mut book = self.callbacks.book();
        if let Some(answered) = book.answered.get_mut(&self.id) {
            for _ in 0..answered.early_duplicates {
                let _ = writer.send(Outcome::failed(duplicate_row(
                    row,
                    answered.at,
                    Instant::now(),
                )));
            }
            answered.early_duplicates = 0;
            answered.row = Some((row.clone(), writer.clone()));
        }
    }
}

impl Drop for Expected {
    /// A request that stops waiting (no callback in time, an error, Ctrl-C) is remembered as
    /// abandoned, so its callback, if it ever comes, is counted as late.
    fn drop(&mut self) {
        if self.rx.is_some() {
            let mut book = self.callbacks.book();
            if book.waiting.remove(&self.id).is_some() {
                book.abandoned.insert(self.id, Instant::now());
                book.sweep();
            }
        }
    }
}

/// Every request to the receiver: a callback for `…/slblur-callback/<id>`, or refused.
async fn receive(State(callbacks): State<Arc<Callbacks>>, request: Request) -> StatusCode {
    let at = Instant::now();
    let id = callback_id(request.uri().path());
    let (Some(id), &Method::POST) = (id, request.method()) else {
        callbacks.count(|c| c.malformed += 1);
        return StatusCode::BAD_REQUEST;
    };
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_CALLBACK_BYTES as u64) {
        callbacks.count(|c| c.oversized += 1);
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_CALLBACK_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            let too_big = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_big {
                callbacks.count(|c| c.oversized += 1);
                return StatusCode::PAYLOAD_TOO_LARGE;
            }
            callbacks.count(|c| c.malformed += 1);
            return StatusCode::BAD_REQUEST;
        }
    };
    let callback = Callback {
        at,
        headers: parts.headers,
        body,
    };
    callbacks.take(id, callback)
}

/// The id after the last `slblur-callback/` of a path (the public URL may add a prefix).
fn callback_id(path: &str) -> Option<u64> {
    let (_, rest) = path.rsplit_once(&format!("{SEGMENT}/"))?;
    let id = rest.trim_end_matches('/');
    (!id.is_empty() && id.len() <= 16)
        .then(|| u64::from_str_radix(id, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_last_segment() {
        assert_eq!(callback_id("/slblur-callback/1f"), Some(0x1f));
        assert_eq!(callback_id("/prefix/slblur-callback/a/"), Some(10));
        assert_eq!(callback_id("/slblur-callback/"), None);
        assert_eq!(callback_id("/slblur-callback/zz"), None);
        assert_eq!(callback_id("/other/1"), None);
        assert_eq!(
            callback_id(&format!("/slblur-callback/{}", "f".repeat(17))),
            None
        );
    }
}
