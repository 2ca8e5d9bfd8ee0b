//! What a handler receives — the request with its limit-checked body and a [`Context`] — and
//! what it returns: a [`Reply`] with its kind (a metrics label) and its own stage timings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};

use crate::Problem;
use faas_protocol::ms;

/// One request, as the handler sees it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub context: Context,
}

/// Facts about the request that the server knows and the handler may report.
#[derive(Debug, Clone)]
pub struct Context {
    /// The caller's `X-Request-Id` or `X-Call-Id` (OpenFaaS), or a new UUID.
    pub request_id: String,
    /// This replica's name (`HOSTNAME`).
    pub instance: Arc<str>,
    /// True for the first request this process handles.
    pub cold: bool,
    /// When the whole body was in hand.
    pub received: Instant,
    /// Time spent waiting for a worker.
    pub queued: Duration,
    /// Past this the client already has a 504: work after it is wasted.
    pub deadline: Instant,
    /// Set by the server when the client has gone (closed the connection, or its gateway gave
    /// up): nobody will read the answer.
    pub abandoned: Arc<AtomicBool>,
}

impl Context {
    /// Milliseconds since the body was in hand, rounded: the handler total so far. A handler
    /// that writes it into its body passes the same number to [`Reply::total`].
    pub fn elapsed_ms(&self) -> f64 {
        ms(self.received.elapsed())
    }

    /// Why the work should stop now, if it should: the client went away (499) or the deadline
    /// passed (504). Handlers call it between stages so no worker keeps busy for nobody.
    pub fn interrupted(&self) -> Option<Problem> {
        if self.abandoned.load(Ordering::Relaxed) {
            Some(Problem::abandoned())
        } else if Instant::now() >= self.deadline {
            Some(Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "the deadline passed while the request was being handled",
            ))
        } else {
            None
        }
    }
}

impl Invocation {
    /// An invocation as the server would build it, for handler unit tests.
    pub fn new(method: Method, uri: &str, headers: HeaderMap, body: impl Into<Bytes>) -> Self {
        let now = Instant::now();
        Invocation {
            method,
            uri: uri.parse().unwrap_or_default(),
            headers,
            body: body.into(),
            context: Context {
                request_id: "test".into(),
                instance: Arc::from("test"),
                cold: true,
                received: now,
                queued: Duration::ZERO,
                deadline: now + Duration::from_secs(25),
                abandoned: Arc::default(),
            },
        }
    }

    /// The query string without `?`, empty when there is none.
    pub fn query(&self) -> &str {
        self.uri.query().unwrap_or("")
    }
}

/// A handler's answer. The server adds `Server-Timing` (queue, the stages, total),
/// `X-Request-Id`, and counts the request under `kind`.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// A small, fixed set of names (a metrics label), e.g. the request's format.
    pub kind: &'static str,
    /// `(stage, milliseconds)` in the order they ran.
    pub stages: Vec<(&'static str, f64)>,
    /// The handler total this reply's body already reports ([`Context::elapsed_ms`]): the
    /// server's `Server-Timing` then gives the same number instead of measuring again.
    pub total: Option<f64>,
}

impl Reply {
    /// 200 with `body` as `content_type`.
    pub fn new(content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Reply {
            status: StatusCode::OK,
            headers,
            body: body.into(),
            kind: "function",
            stages: Vec::new(),
            total: None,
        }
    }

    pub fn kind(mut self, kind: &'static str) -> Reply {
        self.kind = kind;
        self
    }

    pub fn stage(mut self, name: &'static str, ms: f64) -> Reply {
        self.stages.push((name, ms));
        self
    }

    /// Says which handler total the body reports, so that `Server-Timing` agrees with it.
    pub fn total(mut self, ms: f64) -> Reply {
        self.total = Some(ms);
        self
    }

    /// Adds a header; values that are not valid header text are left out.
    pub fn header(mut self, name: &'static str, value: impl AsRef<str>) -> Reply {
        if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
            self.headers.insert(HeaderName::from_static(name), v);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_builder_sets_type_kind_stages_and_headers() {
        let r = Reply::new("text/plain", "hi")
            .kind("greeting")
            .stage("work", 1.0)
            .header("x-thing", "1")
            .header("x-bad", "line\nbreak");
        assert_eq!(r.headers[header::CONTENT_TYPE], "text/plain");
        assert_eq!(r.headers["x-thing"], "1");
        assert!(!r.headers.contains_key("x-bad"));
        assert_eq!((r.kind, r.stages.len()), ("greeting", 1));
    }
}
