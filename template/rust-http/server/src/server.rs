//! [`Server`]: the state every request shares, warm-up ([`Server::start_function`]), and the
//! router — `GET /_/health`, `GET /metrics`, and the function on every other path (OpenFaaS
//! forwards the full URI). The function route admits or refuses (429), reads the body within
//! its limit, waits for a worker and runs the handler off the runtime, all under the deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use crate::body::{discard, read_body};
use crate::invocation::{Context, ms, round_ms, server_timing};
use crate::metrics::Metrics;
use crate::settings::{Settings, env_prefix};
use crate::{ErrorStyle, Function, InitError, Invocation, Problem, Reply};

/// Everything the routes share.
pub struct Server {
    pub name: &'static str,
    pub settings: Settings,
    function: OnceLock<Arc<dyn Function>>,
    /// Requests admitted (working or queued); beyond it, 429.
    admission: Arc<Semaphore>,
    /// Requests handled at once.
    workers: Arc<Semaphore>,
    pub metrics: Metrics,
    instance: Arc<str>,
    /// Cleared by the first request handed to the function.
    cold: AtomicBool,
    /// Set on SIGTERM, so health fails while the replica is taken out of rotation.
    draining: AtomicBool,
}

impl Server {
    /// A server with no function yet: it answers 503 until [`Server::start_function`] succeeds.
    pub fn new(name: &'static str, settings: Settings) -> Arc<Server> {
        Arc::new(Server {
            name,
            admission: Arc::new(Semaphore::new(settings.capacity())),
            workers: Arc::new(Semaphore::new(settings.workers)),
            function: OnceLock::new(),
            metrics: Metrics::new(name),
            instance: Arc::from(settings.instance.as_str()),
            cold: AtomicBool::new(true),
            draining: AtomicBool::new(false),
            settings,
        })
    }

    /// Runs the function's initialiser (load and warm models, register metrics; blocking), then
    /// marks the function ready and creates the lock file.
    pub fn start_function<F, I, E>(&self, init: I) -> Result<(), InitError>
    where
        F: Function,
        I: FnOnce(&mut Registry) -> Result<F, E>,
        E: Into<InitError>,
    {
        let started = Instant::now();
        let function = self.metrics.register(init).map_err(Into::into)?;
        let _ = self.function.set(Arc::new(function));
        if let Some(lock) = &self.settings.lock_file
            && let Err(e) = std::fs::write(lock, b"")
        {
            tracing::error!(path = %lock.display(), error = %e, "cannot create the lock file");
        }
        tracing::info!(warm_up_ms = started.elapsed().as_millis() as u64, "ready");
        Ok(())
    }

    pub fn is_ready(&self) -> bool {
        self.function.get().is_some()
    }

    /// Health fails from now on; requests are still served.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.remove_lock_file();
    }

    pub fn remove_lock_file(&self) {
        if let Some(lock) = &self.settings.lock_file {
            let _ = std::fs::remove_file(lock);
        }
    }

    /// The application; tests drive it with `tower::ServiceExt::oneshot`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/_/health", get(health))
            .route("/metrics", get(metrics))
            .fallback(function_route)
            .with_state(self.clone())
    }

    fn variable(&self, suffix: &str) -> String {
        format!("{}_{suffix}", env_prefix(self.name))
    }
}

async fn health(State(server): State<Arc<Server>>) -> Response {
    if server.draining.load(Ordering::SeqCst) {
        Problem::draining().into_response()
    } else if !server.is_ready() {
        Problem::not_ready().into_response()
    } else {
        (StatusCode::OK, "OK\n").into_response()
    }
}

async fn metrics(State(server): State<Arc<Server>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        server.metrics.render(),
    )
        .into_response()
}

async fn function_route(
    State(server): State<Arc<Server>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = request_id(&headers);
    let mut body = Some(body);
    let result = admit_and_handle(&server, method, uri, &headers, &mut body, &request_id).await;
    if let Some(unread) = body {
        discard(unread).await;
    }
    let (kind, mut response) = match result {
        Ok(reply) => (reply.kind, respond(reply)),
        Err(problem) => {
            let style = match server.function.get() {
                Some(f) => f.error_style(&headers),
                None => ErrorStyle::Json,
            };
            let kind = problem.kind.unwrap_or("unknown");
            tracing::warn!(request_id, kind, status = problem.status.as_u16(), code = problem.code, message = %problem.message, "refused");
            (kind, problem.into_response_styled(style))
        }
    };
    server
        .metrics
        .record_request(kind, response.status().as_u16());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn admit_and_handle(
    server: &Arc<Server>,
    method: Method,
    uri: Uri,
    headers: &HeaderMap,
    body: &mut Option<Body>,
    request_id: &str,
) -> Result<Reply, Problem> {
    if method != Method::POST {
        return Err(Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{method} is not served here: POST to the function (GET /_/health and /metrics are)"
            ),
        ));
    }
    let function = server
        .function
        .get()
        .cloned()
        .ok_or_else(Problem::not_ready)?;
    let settings = &server.settings;
    let Ok(_admitted) = server.admission.clone().try_acquire_owned() else {
        return Err(Problem::overloaded(settings.capacity()));
    };
    server.metrics.in_flight.inc();
    let _in_flight = OnDrop(Some(|| {
        server.metrics.in_flight.dec();
    }));

    let deadline = settings.request_timeout;
    let deadline_at = Instant::now() + deadline;
    let work = async {
        let body = body
            .take()
            .ok_or_else(|| Problem::internal("internal", "the body was already read"))?;
        let limit = settings.max_body_bytes;
        let body = read_body(body, headers, limit)
            .await
            .map_err(|e| e.into_problem(limit, &server.variable("MAX_BODY_BYTES")))?;
        let received = Instant::now();
        let worker = server
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Problem::not_ready())?;
        let queued = received.elapsed();
        let invocation = Invocation {
            method,
            uri,
            headers: headers.clone(),
            body,
            context: Context {
                request_id: request_id.to_string(),
                instance: server.instance.clone(),
                cold: server.cold.swap(false, Ordering::SeqCst),
                received,
                queued,
                deadline: deadline_at,
                abandoned: Arc::default(),
            },
        };
        let mut reply = tokio::task::spawn_blocking(move || {
            let _worker = worker;
            function.handle(invocation)
        })
        .await
        .map_err(|e| Problem::internal("internal", format!("the handler failed: {e}")))??;
        reply.stages.insert(0, ("queue", ms(queued)));
        reply.stages.push(("total", ms(received.elapsed())));
        Ok(reply)
    };
    let reply = match tokio::time::timeout(deadline, work).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "the request was not done within {:.1} s ({})",
                    deadline.as_secs_f64(),
                    server.variable("TIMEOUT")
                ),
            ));
        }
    };
    server.metrics.record_stages(&reply.stages);
    tracing::info!(
        request_id,
        kind = reply.kind,
        status = reply.status.as_u16(),
        server_timing = %server_timing(&reply.stages),
        "handled"
    );
    Ok(reply)
}

fn respond(reply: Reply) -> Response {
    let timing = server_timing(
        &reply
            .stages
            .iter()
            .map(|(name, v)| (*name, round_ms(*v)))
            .collect::<Vec<_>>(),
    );
    let mut response = (reply.status, reply.headers, reply.body).into_response();
    if let Ok(v) = HeaderValue::from_str(&timing) {
        response.headers_mut().insert("server-timing", v);
    }
    response
}

/// The caller's request id (OpenFaaS sets `X-Call-Id`), or a new one.
fn request_id(headers: &HeaderMap) -> String {
    ["x-request-id", "x-call-id"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .find(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
}

/// Runs its closure when dropped, whichever way the route returns.
struct OnDrop<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
