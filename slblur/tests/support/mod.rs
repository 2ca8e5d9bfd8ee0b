//! Shared test helpers: the model and fixture paths, the real server on an ephemeral port, and
//! the function binary as a child process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use slblur::Config;
use slblur::options::DEFAULT_MAX_INFERENCE_PIXELS;

pub fn model_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/centerface.onnx"
    ))
}

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A config for tests: the real model, no lock file, two ML threads.
pub fn test_config() -> Config {
    Config {
        model: model_path(),
        ml_threads: 2,
        ..Config::default()
    }
}

/// The real function, serving on 127.0.0.1 with an ephemeral port.
pub struct TestServer {
    pub url: String,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), slblur::ServeError>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts with a modified [`test_config`] and waits until health says ready.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config();
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(slblur::serve(listener, config, async {
            let _ = stopped.await;
        }));
        let server = TestServer {
            url,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        for _ in 0..600 {
            if let Ok(r) = self.http.get(format!("{}/_/health", self.url)).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the function did not become ready within 30 s");
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.url))
    }

    /// POSTs `body` as `content_type` to `path` and returns the response.
    pub async fn send(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let request = self
            .post(path)
            .header("content-type", content_type)
            .body(body);
        request.send().await.expect("send")
    }

    pub async fn metrics(&self) -> String {
        let r = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("metrics");
        r.text().await.expect("metrics text")
    }

    /// Stops the server the graceful way and returns how `serve` ended.
    pub async fn stop(mut self) -> Result<(), slblur::ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("serve task")
    }
}

/// Decodes an image response and returns its size.
pub fn image_size(bytes: &[u8]) -> (u32, u32) {
    let (frame, _) = slblur::codec::decode(bytes, u64::MAX).expect("a decodable image");
    (frame.width, frame.height)
}

/// Runs the real detector on an image and counts confident faces (score ≥ 0.5; unblurred faces
/// in the fixtures score above 0.8), to check that anonymization worked.
pub fn confident_faces(bytes: &[u8]) -> usize {
    let detector = slblur::detect::Detector::load(&model_path(), 2).expect("model");
    let (frame, _) = slblur::codec::decode(bytes, u64::MAX).expect("decodable");
    let faces = detector
        .detect(&frame, 0.2, 640, DEFAULT_MAX_INFERENCE_PIXELS)
        .expect("detect")
        .faces;
    faces.iter().filter(|f| f.score >= 0.5).count()
}

/// The value of the first sample in Prometheus text whose line starts with `prefix`.
pub fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{prefix} in\n{text}"))
}

/// Polls the function's metrics until a request is in flight (admitted, not yet answered).
pub async fn wait_until_in_flight(http: &reqwest::Client, url: &str) {
    wait_for_in_flight(http, url, "no request came in flight", |n| n >= 1.0).await
}

/// Waits until the server at `url` has no request in flight (its admission slots are free).
pub async fn wait_until_idle(http: &reqwest::Client, url: &str) {
    wait_for_in_flight(http, url, "requests stayed in flight", |n| n == 0.0).await
}

async fn wait_for_in_flight(
    http: &reqwest::Client,
    url: &str,
    timed_out: &str,
    done: impl Fn(f64) -> bool,
) {
    for _ in 0..5000 {
        let text = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .expect("metrics");
        if done(metric(
            &text.text().await.expect("text"),
            "slblur_in_flight ",
        )) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("{timed_out}");
}

/// A function binary running as a child process, its stderr read line by line.
pub struct Function {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Function {
    /// The workspace's `slblur` on an ephemeral port with the real model and no lock file.
    pub fn spawn(env: &[(&str, &str)]) -> Function {
        let mut command = Command::new(env!("CARGO_BIN_EXE_slblur"));
        command
            .env("SLBLUR_ADDR", "127.0.0.1:0")
            .env("SLBLUR_MODEL", model_path())
            .env("SLBLUR_LOCK_FILE", "");
        for (k, v) in env {
            command.env(k, v);
        }
        Function::start(command)
    }

    /// Starts `command` with stderr captured.
    pub fn start(mut command: Command) -> Function {
        command
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        let mut child = command.spawn().expect("spawn the function");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Function {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with {needle:?}; log so far:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("the process did not exit");
    }

    pub fn rest_of_log(&mut self) -> String {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.log.push(line);
        }
        self.log.join("\n")
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The URL in the "listening" log line, text (`addr=…`) or JSON (`"addr":"…"`).
pub fn listen_url(line: &str) -> String {
    let line = strip_ansi(line);
    let addr = match serde_json::from_str::<serde_json::Value>(&line) {
        Ok(json) => json["fields"]["addr"]
            .as_str()
            .expect("addr in the JSON listening line")
            .to_string(),
        Err(_) => line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .expect("addr= in the listening line")
            .to_string(),
    };
    format!("http://{addr}")
}

/// Sends SIGTERM, as Kubernetes and of-watchdog do.
pub fn sigterm(child: &Child) {
    // SAFETY: kill(2) with a child's pid we own and a valid signal number.
    let sent = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(sent, 0);
}

/// A process's peak resident memory so far (`VmHWM`), in MB.
pub fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status");
    kb / 1024.0
}

/// A `width`×`height` JPEG of a smooth gradient with some texture.
pub fn gradient_jpeg(width: u32, height: u32) -> Vec<u8> {
    let rgb = (0..width as u64 * height as u64)
        .flat_map(|i| {
            let (x, y) = ((i % width as u64) as u32, (i / width as u64) as u32);
            [(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8]
        })
        .collect();
    let frame = slblur::codec::Frame { width, height, rgb };
    slblur::codec::encode(&frame, slblur::options::ImageKind::Jpeg, 80).expect("encode")
}

/// One PNG chunk: length, type, data and CRC, for hand-made (and hand-broken) PNGs.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut typed = kind.to_vec();
    typed.extend_from_slice(data);
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&typed);
    out.extend_from_slice(&crc32(&typed).to_be_bytes());
    out
}

/// PNG's CRC-32 (ISO 3309), bit by bit: test inputs are small.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The machine the process tests share: each holds [`share_machine`], and a test that measures
/// the function's throughput takes it whole ([`whole_machine`]), so no other test's inference
/// changes the speed it measured.
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

pub fn share_machine() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn whole_machine() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
