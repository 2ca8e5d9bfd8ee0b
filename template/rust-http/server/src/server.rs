//! [`Server`]: the state every request shares, warm-up ([`Server::start_function`]), and the
//! router — `GET /_/health`, `GET /metrics`, and the function on every other path (OpenFaaS
//! forwards the full URI). The function route checks the method, the token and the encoding,
//! reads the body (within its size limit, its deadline and the buffered-bytes budget), then
//! admits or refuses (429), waits for a worker and runs the handler off the runtime under the
//! request deadline. An admitted request holds its slot until its response is written, and a
//! request whose client leaves is logged, counted (499) and stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::body::{BodyError, Received, check_encoding, discard, read_body};
use crate::invocation::Context;
use crate::metrics::Metrics;
use crate::problem::{clip, for_log};
use crate::settings::{Settings, Variable, var};
use crate::{ErrorStyle, Function, InitError, Invocation, Problem, Reply};
use faas_protocol::{header as wire_header, ms, server_timing, stage};

/// Everything the routes share.
pub struct Server {
    pub name: &'static str,
    pub settings: Settings,
    function: OnceLock<Arc<dyn Function>>,
    /// Requests admitted (working or queued); beyond it, 429.
    admission: Arc<Semaphore>,
    /// Requests handled at once.
    workers: Arc<Semaphore>,
    /// Bytes of request bodies held at once.
    buffered: Arc<Semaphore>,
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
            buffered: Arc::new(Semaphore::new(settings.max_buffered_bytes)),
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

    /// Health fails from now on; requests are still served. The lock file goes too, unless
    /// of-watchdog removes it itself.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        if !self.settings.watchdog_removes_lock {
            self.remove_lock_file();
        }
    }

    /// Removes the lock file; at start, so a lock an earlier process left behind cannot say
    /// "ready" before this one is.
    pub fn remove_lock_file(&self) {
        if let Some(lock) = &self.settings.lock_file {
            let _ = std::fs::remove_file(lock);
        }
    }

    /// The application; tests drive it with `tower::ServiceExt::oneshot`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/_/health", get(health).fallback(only_get))
            .route("/metrics", get(metrics).fallback(only_get))
            .fallback(function_route)
            .with_state(self.clone())
    }

    fn variable(&self, variable: Variable) -> String {
        variable.for_function(self.name)
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

async fn only_get(method: Method) -> Response {
    Problem::method_not_allowed(&method, "GET it").into_response()
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
    let mut watch = Watch::new(&server, request_id(&headers));
    let mut body = Some(body);
    let result = handle(&server, method, uri, &headers, &mut body, &watch).await;
    if let Some(unread) = body {
        discard(unread).await;
    }
    watch.answered = true;
    let request_id = watch.request_id.as_str();
    let (kind, mut response) = match result {
        Ok((reply, held)) => (reply.kind, respond(reply, held)),
        Err(problem) => {
            let style = match server.function.get() {
                Some(f) => f.error_style(&headers),
                None => ErrorStyle::Json,
            };
            let kind = problem.kind.unwrap_or("unknown");
            tracing::warn!(request_id, kind, status = problem.status.as_u16(), code = problem.code, message = %for_log(&problem.message), "refused");
            (
                kind,
                problem.for_client(request_id).into_response_styled(style),
            )
        }
    };
    server
        .metrics
        .record_request(kind, response.status().as_u16());
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(wire_header::REQUEST_ID, v);
    }
    response
}

/// Checks, reads the body, admits, waits for a worker and runs the handler, under the deadline.
async fn handle(
    server: &Arc<Server>,
    method: Method,
    uri: Uri,
    headers: &HeaderMap,
    body: &mut Option<Body>,
    watch: &Watch,
) -> Result<(Reply, Held), Problem> {
    let request = Request {
        server,
        method,
        uri,
        headers,
        watch,
        deadline_at: Instant::now() + server.settings.request_timeout,
    };
    let function = request.precheck()?;
    let received = request.receive(body).await?;
    let slot = request.admit()?;
    let (reply, answer_budget) = request.run_in_time(function, received, &slot).await?;
    Ok(request.answer(reply, slot, answer_budget))
}

/// One request on the function route, as [`handle`] takes it through its steps.
struct Request<'a> {
    server: &'a Arc<Server>,
    method: Method,
    uri: Uri,
    headers: &'a HeaderMap,
    watch: &'a Watch,
    /// The head's arrival plus the request timeout.
    deadline_at: Instant,
}

impl Request<'_> {
    /// Method, token, readiness and encoding: what is refused before the body is read.
    fn precheck(&self) -> Result<Arc<dyn Function>, Problem> {
        let server = self.server;
        if self.method != Method::POST {
            return Err(Problem::method_not_allowed(
                &self.method,
                "POST to the function",
            ));
        }
        if let Some(token) = &server.settings.token
            && !token.admits(self.headers)
        {
            return Err(Problem::unauthorized(&server.variable(var::TOKEN_FILE)));
        }
        let function = server
            .function
            .get()
            .cloned()
            .ok_or_else(Problem::not_ready)?;
        check_encoding(self.headers).map_err(|e| server.body_problem(e))?;
        Ok(function)
    }

    /// Reads the body before admission, so clients that send slowly hold a connection (under
    /// the body deadline and the buffered-bytes budget), never a worker or queue slot.
    async fn receive(&self, body: &mut Option<Body>) -> Result<Received, Problem> {
        let settings = &self.server.settings;
        let unread = body
            .take()
            .ok_or_else(|| Problem::internal("internal", "the body was already read"))?;
        let timeout = settings.body_timeout.min(settings.request_timeout);
        read_body(
            unread,
            self.headers,
            settings.max_body_bytes,
            &self.server.buffered,
            timeout,
        )
        .await
        .map_err(|e| self.server.body_problem(e))
    }

    /// A place among the workers and the queue, or 429.
    fn admit(&self) -> Result<Arc<Slot>, Problem> {
        let Ok(admitted) = self.server.admission.clone().try_acquire_owned() else {
            return Err(Problem::overloaded(self.server.settings.capacity()));
        };
        Ok(Arc::new(Slot::new(self.server, admitted)))
    }

    /// [`Request::run`] within what is left of the deadline, else 504.
    async fn run_in_time(
        &self,
        function: Arc<dyn Function>,
        received: Received,
        slot: &Arc<Slot>,
    ) -> Result<(Reply, OwnedSemaphorePermit), Problem> {
        let remaining = self.deadline_at.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, self.run(function, received, slot)).await {
            Ok(result) => result,
            Err(_) => Err(Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "the request was not done within {:.1} s ({})",
                    self.server.settings.request_timeout.as_secs_f64(),
                    self.server.variable(var::TIMEOUT)
                ),
            )),
        }
    }

    /// Queues the request for a worker ([`Server::work`], off the runtime) and returns its
    /// reply and the answer's share of the buffered-bytes budget.
    async fn run(
        &self,
        function: Arc<dyn Function>,
        received: Received,
        slot: &Arc<Slot>,
    ) -> Result<(Reply, OwnedSemaphorePermit), Problem> {
        let received_at = Instant::now();
        // This future holds the only strong reference: if it is dropped first (the client left,
        // or the deadline passed), the body, its budget and the slot go at once, and the worker
        // that reaches the job finds nothing to do.
        let job = Arc::new(Mutex::new(Some(Job {
            function,
            invocation: self.invocation(received.bytes, received_at),
            body_budget: received.budget,
            slot: slot.clone(),
        })));
        let queued = Arc::downgrade(&job);
        let server = self.server.clone();
        let runtime = tokio::runtime::Handle::current();
        let worked =
            tokio::task::spawn_blocking(move || server.work(&runtime, &queued, received_at))
                .await
                .map_err(|e| Problem::internal("internal", format!("the handler failed: {e}")));
        drop(job);
        match worked?? {
            Worked::Answered(reply, answer_budget) => Ok((reply, answer_budget)),
            Worked::Waiting(reply, worker) => {
                // Here the wait ends with the request if it goes first.
                let share = self.server.answer_share(&reply);
                let answer_budget = self.server.buffered.clone().acquire_many_owned(share).await;
                drop(worker);
                Ok((reply, answer_budget.map_err(|_| Problem::not_ready())?))
            }
        }
    }

    /// What the handler is given; the worker fills in the time queued and whether it is cold.
    fn invocation(&self, body: Bytes, received: Instant) -> Invocation {
        let server = self.server;
        Invocation {
            method: self.method.clone(),
            uri: self.uri.clone(),
            headers: self.headers.clone(),
            body,
            context: Context {
                request_id: self.watch.request_id.clone(),
                instance: server.instance.clone(),
                cold: false,
                received,
                queued: Duration::ZERO,
                deadline: self.deadline_at,
                abandoned: self.watch.abandoned.clone(),
            },
        }
    }

    /// Records and logs the reply; the slot and the budget go with the response.
    fn answer(&self, reply: Reply, slot: Arc<Slot>, budget: OwnedSemaphorePermit) -> (Reply, Held) {
        self.server.metrics.record_stages(&reply.stages);
        tracing::info!(
            request_id = self.watch.request_id,
            kind = reply.kind,
            status = reply.status.as_u16(),
            server_timing = %server_timing::write(&reply.stages),
            "handled"
        );
        let held = Held {
            _slot: slot,
            _budget: budget,
        };
        (reply, held)
    }
}

impl Server {
    fn body_problem(&self, error: BodyError) -> Problem {
        let limit = self.settings.max_body_bytes;
        match error {
            BodyError::TooLarge => {
                Problem::body_too_large(limit, &self.variable(var::MAX_BODY_BYTES))
            }
            BodyError::TimedOut => Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the body did not arrive within {:.1} s ({})",
                    self.settings.body_timeout.as_secs_f64(),
                    self.variable(var::BODY_TIMEOUT)
                ),
            ),
            BodyError::Busy => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "overloaded",
                format!(
                    "the server holds its limit of {} bytes of request bodies ({}); retry shortly",
                    self.settings.max_buffered_bytes,
                    self.variable(var::MAX_BUFFERED_BYTES)
                ),
            )
            .retry_after(1),
            BodyError::Encoding { header, value } => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!(
                    "{header}: {} is not supported: send the body unencoded (chunked transfer is fine)",
                    clip(&value, 64)
                ),
            ),
            BodyError::Read(e) => {
                Problem::bad_request("body_read_failed", format!("could not read the body: {e}"))
            }
        }
    }
}

/// A request waiting for a worker: what [`Server::work`] takes once it has one.
struct Job {
    function: Arc<dyn Function>,
    invocation: Invocation,
    body_budget: OwnedSemaphorePermit,
    /// The slot goes with the work: a request whose client left still counts until the worker
    /// is free again.
    slot: Arc<Slot>,
}

impl Server {
    /// One queued request, on a blocking thread: waits there for a worker, so a worker that
    /// finishes hands its place to the next request with no runtime thread to wake in between.
    /// In the function's process the blocking threads are the workers ([`crate::process`]), and
    /// the thread that finishes takes the next queued request itself. Measured with slblur at
    /// saturation on a 2-vCPU VM (640x360), against the worker taken on the runtime: two workers
    /// of one thread did 11–13 % more frames/s, in 15–24 MB less memory.
    ///
    /// The worker stays taken until the answer has its share of the budget: answers nobody
    /// reads cannot pile up, and neither can answers computed while waiting for that share.
    /// When the share is not there at once, the worker goes back to the request with the answer,
    /// to wait where the request's end (its client leaving, its deadline) ends the wait too.
    fn work(
        &self,
        runtime: &tokio::runtime::Handle,
        job: &Weak<Mutex<Option<Job>>>,
        received_at: Instant,
    ) -> Result<Worked, Problem> {
        let worker = runtime
            .block_on(self.workers.clone().acquire_owned())
            .map_err(|_| Problem::not_ready())?;
        let queued = received_at.elapsed();
        let taken = job.upgrade().and_then(|job| job.lock().ok()?.take());
        let Some(Job {
            function,
            mut invocation,
            body_budget,
            slot: _working,
        }) = taken
        else {
            // Its request is gone: nobody waits for the answer.
            return Err(Problem::abandoned());
        };
        invocation.context.queued = queued;
        invocation.context.cold = self.cold.swap(false, Ordering::SeqCst);
        let handled = function.handle(invocation);
        drop(body_budget);
        let mut reply = handled?;
        // Measured once: the total the handler's body reports, else now.
        let total = reply.total.unwrap_or_else(|| ms(received_at.elapsed()));
        reply.stages.insert(0, (stage::QUEUE, ms(queued)));
        reply.stages.push((stage::TOTAL, total));
        match self
            .buffered
            .clone()
            .try_acquire_many_owned(self.answer_share(&reply))
        {
            Ok(answer_budget) => Ok(Worked::Answered(reply, answer_budget)),
            Err(_) => Ok(Worked::Waiting(reply, worker)),
        }
    }

    /// The answer's share of the buffered-bytes budget.
    fn answer_share(&self, reply: &Reply) -> u32 {
        let share = reply.body.len().min(self.settings.max_buffered_bytes);
        u32::try_from(share).unwrap_or(u32::MAX)
    }
}

/// A handler's answer, with its share of the budget, or with the worker still taken while the
/// share is awaited.
enum Worked {
    Answered(Reply, OwnedSemaphorePermit),
    Waiting(Reply, OwnedSemaphorePermit),
}

/// An admitted request: its admission slot and its place in `in_flight`, held until both the
/// worker and the response write are done.
struct Slot {
    server: Arc<Server>,
    admitted: Option<OwnedSemaphorePermit>,
}

impl Slot {
    fn new(server: &Arc<Server>, admitted: OwnedSemaphorePermit) -> Slot {
        server.metrics.in_flight.inc();
        Slot {
            server: server.clone(),
            admitted: Some(admitted),
        }
    }
}

/// What a response holds until it is written: the request's slot and the answer's share of
/// the buffered-bytes budget.
struct Held {
    _slot: Arc<Slot>,
    _budget: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The slot is free before the gauge says so, so a client that sees no request in
        // flight is admitted.
        drop(self.admitted.take());
        self.server.metrics.in_flight.dec();
    }
}

/// Follows a request from its head to its answer. Dropped before the answer (the client closed
/// the connection, e.g. a gateway that timed out), it flags the work as abandoned — queued work
/// is dropped with the future, running work stops at its next stage — and logs and counts it
/// as 499.
struct Watch {
    server: Arc<Server>,
    request_id: String,
    abandoned: Arc<AtomicBool>,
    answered: bool,
}

impl Watch {
    fn new(server: &Arc<Server>, request_id: String) -> Watch {
        Watch {
            server: server.clone(),
            request_id,
            abandoned: Arc::default(),
            answered: false,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        self.abandoned.store(true, Ordering::SeqCst);
        let problem = Problem::abandoned();
        self.server
            .metrics
            .record_request("unknown", problem.status.as_u16());
        tracing::warn!(
            request_id = self.request_id,
            status = problem.status.as_u16(),
            code = problem.code,
            "abandoned: the client went away before the answer"
        );
    }
}

/// The reply as a response whose body holds the request's slot until it is written or dropped.
fn respond(reply: Reply, held: Held) -> Response {
    let timing = server_timing::write(&reply.stages);
    let bytes = Bytes::from_owner(Answer {
        bytes: reply.body,
        _held: held,
    });
    let mut response = (reply.status, reply.headers, bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&timing) {
        response.headers_mut().insert(wire_header::SERVER_TIMING, v);
    }
    response
}

/// The caller's request id (OpenFaaS sets `X-Call-Id`), or a new one.
fn request_id(headers: &HeaderMap) -> String {
    [wire_header::REQUEST_ID, wire_header::CALL_ID]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .find(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
}

/// Response bytes that keep what they hold until hyper has written them or given up: the body
/// itself ends as soon as hyper has taken its bytes, which may still wait to be written.
struct Answer {
    bytes: Bytes,
    _held: Held,
}

impl AsRef<[u8]> for Answer {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}
