//! Shared by the server's integration tests: a small function whose body says what to do, and a
//! server on a loopback port with a stop signal and access to its state.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use faas_server::http::{HeaderMap, StatusCode};
use faas_server::settings::Settings;
use faas_server::{ErrorStyle, Function, Invocation, Problem, Reply, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the [`Probe`] function has done, shared with the test.
#[derive(Default)]
pub struct Seen {
    /// Invocations started.
    pub started: AtomicUsize,
    /// Invocations that stopped early because `Context::interrupted` said so.
    pub interrupted: AtomicUsize,
    /// Invocations that ran to their end.
    pub finished: AtomicUsize,
}

/// Body `sleep:MS` sleeps in 5 ms steps, stopping when the server says the work is no longer
/// wanted; `big:BYTES` answers that many bytes; `fail:TEXT` fails quoting TEXT (400);
/// `crash:TEXT` is a fault of the function (500) whose message is TEXT.
pub struct Probe(pub Arc<Seen>);

impl Function for Probe {
    fn handle(&self, invocation: Invocation) -> Result<Reply, Problem> {
        self.0.started.fetch_add(1, Ordering::SeqCst);
        let text = String::from_utf8_lossy(&invocation.body).into_owned();
        let (verb, arg) = text.split_once(':').unwrap_or((&text, ""));
        let reply = match verb {
            "sleep" => {
                let ms: u64 = arg.trim().parse().unwrap_or(0);
                for _ in 0..ms / 5 {
                    if let Some(problem) = invocation.context.interrupted() {
                        self.0.interrupted.fetch_add(1, Ordering::SeqCst);
                        return Err(problem.kind("probe"));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Reply::new("text/plain", "slept")
            }
            "big" => Reply::new(
                "application/octet-stream",
                vec![b'x'; arg.trim().parse().unwrap_or(0)],
            ),
            "fail" => return Err(Problem::bad_request("failed", format!("cannot do {arg:?}"))),
            "crash" => return Err(Problem::internal("internal", arg.to_string())),
            _ => return Err(Problem::bad_request("unknown", "say sleep:, big: or fail:")),
        };
        self.0.finished.fetch_add(1, Ordering::SeqCst);
        Ok(reply.kind("probe"))
    }

    fn error_style(&self, headers: &HeaderMap) -> ErrorStyle {
        if headers.contains_key("x-plain") {
            ErrorStyle::PlainText
        } else {
            ErrorStyle::Json
        }
    }
}

/// One worker, no queue: the smallest server that shows admission.
pub fn settings() -> Settings {
    Settings {
        workers: 1,
        queue: 0,
        ..Settings::default()
    }
}

/// A [`Probe`] server on a loopback port.
pub struct Running {
    pub url: String,
    pub addr: std::net::SocketAddr,
    pub server: Arc<Server>,
    pub seen: Arc<Seen>,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub serving: tokio::task::JoinHandle<Result<(), faas_server::ServeError>>,
}

impl Running {
    pub async fn start(settings: Settings) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Server::new("probe", settings);
        let seen = Arc::new(Seen::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let function = Probe(seen.clone());
        let serving = tokio::spawn(faas_server::serve::serve_with(
            listener,
            server.clone(),
            move |_| Ok::<_, std::convert::Infallible>(function),
            async {
                let _ = stopped.await;
            },
        ));
        let running = Running {
            url: format!("http://{addr}"),
            addr,
            server,
            seen,
            http: reqwest::Client::new(),
            stop: Some(stop),
            serving,
        };
        while running.health().await != 200 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        running
    }

    /// `GET /_/health` on a new connection: its status, or 0 when there is no answer.
    pub async fn health(&self) -> u16 {
        let fresh = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        match fresh.get(format!("{}/_/health", self.url)).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    pub async fn post(&self, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/", self.url))
            .body(body.to_string())
            .send()
            .await
            .expect("answered")
    }

    /// [`Running::post`] on a task of its own, for requests that must be in flight meanwhile.
    pub fn post_in_background(
        &self,
        body: &'static str,
    ) -> tokio::task::JoinHandle<reqwest::Response> {
        let (http, url) = (self.http.clone(), format!("{}/", self.url));
        tokio::spawn(async move { http.post(url).body(body).send().await.expect("answered") })
    }

    pub fn metric(&self, line_start: &str) -> f64 {
        let text = self.server.metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    pub fn in_flight(&self) -> f64 {
        self.metric("probe_in_flight ")
    }

    /// Sends the shutdown signal (the grace is the settings').
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }

    /// `POST /` with `body` on a new connection, returned unread.
    pub async fn post_raw(&self, body: &str) -> TcpStream {
        let mut stream = self.connect().await;
        send(
            &mut stream,
            format!("{}{body}", post_head(body.len())).as_bytes(),
        )
        .await;
        stream
    }

    /// Waits until the function has started (or finished) `n` invocations.
    pub async fn started(&self, n: usize) -> bool {
        eventually(Duration::from_secs(10), || {
            self.seen.started.load(Ordering::SeqCst) == n
        })
        .await
    }

    pub async fn finished(&self, n: usize) -> bool {
        eventually(Duration::from_secs(10), || {
            self.seen.finished.load(Ordering::SeqCst) == n
        })
        .await
    }
}

/// The head of `POST /` declaring a body of `length` bytes.
pub fn post_head(length: usize) -> String {
    format!("POST / HTTP/1.1\r\nhost: test\r\ncontent-length: {length}\r\n\r\n")
}

/// Waits until `condition` holds, checking every 5 ms, for at most `limit`.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let until = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < until {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}

/// Everything the peer sends until it closes (or `limit` passes): the raw response text.
pub async fn read_all(stream: &mut TcpStream, limit: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// True when the peer has closed the connection (a read gives EOF or a reset) within `limit`.
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(limit, read).await.is_ok()
}

pub async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write");
}

/// A status from a raw HTTP/1.1 response.
pub fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn is(status: u16, expected: StatusCode) -> bool {
    status == expected.as_u16()
}
