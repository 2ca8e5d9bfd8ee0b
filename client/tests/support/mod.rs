//! Shared by the integration tests: the real function on an ephemeral port, small fake servers
//! for misbehaving-server cases, and running the `slblur-client` binary.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use slblur_client::record::{Row, read_rows};
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_slblur-client");

/// The Cargo workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The 40-frame, 10 fps, 640×360 sample with two faces per frame and AAC audio.
pub fn sample_video() -> PathBuf {
    workspace().join("samples/astronaut.mp4")
}

/// The face-detection model the real function loads.
pub fn model() -> PathBuf {
    workspace().join("models/centerface.onnx")
}

/// The real slblur function, served by its own tokio runtime so a test can kill it abruptly.
pub struct TestFunction {
    pub url: String,
    pub addr: std::net::SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Starts the function on 127.0.0.1:0 and waits until `/_/health` answers 200.
pub fn start_function() -> TestFunction {
    start_function_with(&[])
}

/// [`start_function`] with these `SLBLUR_*` variables set (as the process environment would).
pub fn start_function_with(vars: &[(&str, &str)]) -> TestFunction {
    let model = model();
    assert!(
        model.exists(),
        "model missing at {} (run scripts/fetch-model)",
        model.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("test-function")
        .build()
        .expect("function runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    // No lock file unless asked for: tests run side by side.
    let lookup = |name: &str| {
        let set = vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string());
        set.or_else(|| (name == "SLBLUR_LOCK_FILE").then(String::new))
    };
    let base = if vars.is_empty() {
        slblur::Config::default()
    } else {
        slblur::Config::from_lookup(&lookup).expect("valid test variables")
    };
    let config = slblur::Config { model, ..base };
    runtime.spawn(async move {
        if let Err(e) = slblur::serve(listener, config, std::future::pending()).await {
            eprintln!("test function stopped: {e}");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while http_get_status(addr, "/_/health") != Some(200) {
        assert!(Instant::now() < deadline, "function did not become healthy");
        thread::sleep(Duration::from_millis(50));
    }
    TestFunction {
        url: format!("http://{addr}/"),
        addr,
        runtime: Some(runtime),
    }
}

impl TestFunction {
    /// Kills the server abruptly: its tasks and open connections are dropped, not drained.
    pub fn kill(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for TestFunction {
    fn drop(&mut self) {
        self.kill();
    }
}

fn http_get_status(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// `slblur-client async-standin` in front of `function`, with `extra` options (faults); killed
/// when dropped.
pub struct Standin {
    /// `http://127.0.0.1:PORT`: add `/async-function/slblur` or `/function/slblur`.
    pub base: String,
    child: Child,
}

impl Standin {
    pub fn start(function: &str, extra: &[&str]) -> Standin {
        let mut child = Command::new(BIN)
            .args(["async-standin", "--function", function])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn async-standin");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).expect("read the stand-in's address") == 1 && byte[0] != b'\n'
        {
            line.push(byte[0]);
        }
        let base = String::from_utf8(line).expect("UTF-8 address");
        assert!(
            base.starts_with("http://"),
            "no address from async-standin: {base:?}"
        );
        Standin { base, child }
    }

    pub fn async_url(&self) -> String {
        format!("{}/async-function/slblur", self.base)
    }

    pub fn sync_url(&self) -> String {
        format!("{}/function/slblur", self.base)
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port where every connection is refused: bound but never listening, and held for
/// the test's life, so no other socket (another test's server, an outgoing connection) can take
/// it meanwhile, as a port bound and then released could be.
pub struct RefusedPort {
    _socket: tokio::net::TcpSocket,
    pub url: String,
}

impl RefusedPort {
    #[allow(clippy::new_without_default)] // each call takes a new port
    pub fn new() -> RefusedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("bind a loopback port");
        let addr = socket.local_addr().expect("local addr");
        RefusedPort {
            _socket: socket,
            url: format!("http://{addr}/"),
        }
    }
}

/// What a fake server does with each request it has read.
#[derive(Clone)]
pub enum FakeReply {
    /// Write these bytes, then close.
    Raw(Vec<u8>),
    /// Write these bytes (e.g. headers only), then hold the connection open.
    RawThenHang(Vec<u8>),
    /// Wait this long, then answer 200 with the request body echoed as the image.
    EchoAfter(Duration, &'static str),
    /// Never answer (held for a minute).
    Hang,
    /// Close without a word.
    Close,
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0 that misbehaves on purpose.
pub struct FakeServer {
    pub url: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl FakeServer {
    /// Starts a server that answers every request with `reply`.
    pub fn start(reply: FakeReply) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let reply = reply.clone();
                thread::spawn(move || serve_fake(conn, reply));
            }
        });
        FakeServer {
            url: format!("http://{addr}/"),
            stop,
            addr,
        }
    }

    /// A server that echoes each request body back as a JPEG after `delay`.
    pub fn echo(delay: Duration) -> FakeServer {
        FakeServer::start(FakeReply::EchoAfter(delay, "image/jpeg"))
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

fn serve_fake(mut conn: TcpStream, reply: FakeReply) {
    // Keep-alive: answer every request on the connection the same way.
    while let Some(body) = read_request(&mut conn) {
        match &reply {
            FakeReply::Raw(bytes) => {
                let _ = conn.write_all(bytes);
                let _ = conn.shutdown(Shutdown::Both);
                return;
            }
            FakeReply::RawThenHang(bytes) => {
                let _ = conn.write_all(bytes);
                thread::sleep(Duration::from_secs(60));
                return;
            }
            FakeReply::EchoAfter(delay, content_type) => {
                thread::sleep(*delay);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if conn
                    .write_all(head.as_bytes())
                    .and_then(|()| conn.write_all(&body))
                    .is_err()
                {
                    return;
                }
            }
            FakeReply::Hang => {
                thread::sleep(Duration::from_secs(60));
                return;
            }
            FakeReply::Close => return,
        }
    }
}

/// Reads one request (head and Content-Length body); `None` at end of stream.
fn read_request(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).ok()?;
    Some(body)
}

/// An HTTP response with a body, as raw bytes.
pub fn http_response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A temporary folder and the results CSV path inside it (not created yet).
pub struct Results {
    pub dir: TempDir,
    pub csv: PathBuf,
}

impl Results {
    /// A fresh temporary folder with `results.csv` as the results path.
    #[allow(clippy::new_without_default)] // each call makes a new temporary folder
    pub fn new() -> Results {
        let dir = tempfile::tempdir().expect("temp dir");
        let csv = dir.path().join("results.csv");
        Results { dir, csv }
    }
}

/// A path as `&str`, for the command line.
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// `COMMAND --url URL --video <sample> EXTRA... --out CSV`, the shape of every `run`/`sweep`.
pub fn bench_args(command: &str, url: &str, csv: &Path, extra: &[&str]) -> Vec<String> {
    let video = sample_video();
    let mut args = vec![command, "--url", url, "--video", path_str(&video)];
    args.extend_from_slice(extra);
    args.extend(["--out", path_str(csv)]);
    args.into_iter().map(String::from).collect()
}

/// `run` arguments for the sample video against `url`, writing `csv`, with `extra` options.
pub fn run_args(url: &str, csv: &Path, extra: &[&str]) -> Vec<String> {
    bench_args("run", url, csv, extra)
}

/// `sweep` arguments for the sample video against `url`, into the run folder `out`, with
/// `extra` options (users start at once unless `extra` says otherwise).
pub fn sweep_args(url: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    grid_args("sweep", &[("default", url)], out, extra)
}

/// `load`/`sweep` arguments over named targets (`NAME=URL`), into the run folder `out`.
pub fn grid_args(
    command: &str,
    targets: &[(&str, &str)],
    out: &Path,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        command.into(),
        "--video".into(),
        path_str(&sample_video()).into(),
    ];
    for (name, url) in targets {
        args.extend(["--target".into(), format!("{name}={url}")]);
    }
    if !extra.iter().any(|a| a.starts_with("--ramp")) {
        args.extend(["--ramp-up".into(), "0".into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["--out".into(), path_str(out).into()]);
    args
}

/// The run folder's results, cells.csv rows and run.json.
pub struct RunFolder {
    pub rows: Vec<Row>,
    pub summary: Vec<csv::StringRecord>,
    pub manifest: serde_json::Value,
}

/// Reads a `load`/`sweep` run folder.
pub fn run_folder(out: &Path) -> RunFolder {
    let mut reader = csv::Reader::from_path(out.join("cells.csv")).expect("cells.csv");
    let summary = reader
        .records()
        .collect::<Result<_, _>>()
        .expect("summary rows");
    let manifest = std::fs::read_to_string(out.join("run.json")).expect("run.json");
    RunFolder {
        rows: rows(&out.join("results.csv")),
        summary,
        manifest: serde_json::from_str(&manifest).expect("run.json is JSON"),
    }
}

/// Waits until `csv` has at least `n` lines (header included), failing after `timeout`.
pub fn wait_for_lines(csv: &Path, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::fs::read_to_string(csv).map_or(0, |t| t.lines().count()) < n {
        assert!(Instant::now() < deadline, "no rows appeared");
        thread::sleep(Duration::from_millis(20));
    }
}

/// The client binary with a clean environment and no progress bar.
pub fn client_command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--no-progress").env_remove("SLBLUR_URL");
    cmd
}

/// Runs a `run`/`sweep` (adds `--no-progress`) and returns its output.
pub fn client<S: AsRef<OsStr>>(args: &[S]) -> Output {
    client_command(args).output().expect("run slblur-client")
}

/// Starts a `run`/`sweep` in the background with its stdout and stderr captured.
pub fn spawn_client<S: AsRef<OsStr>>(args: &[S]) -> Child {
    client_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn slblur-client")
}

/// Runs a command that takes no `--no-progress` (e.g. `frames`).
pub fn client_plain(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SLBLUR_URL")
        .output()
        .expect("run slblur-client")
}

/// Output bytes as text, lossily.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success and returns the parsed JSON summary (the last stdout line).
pub fn summary_of(out: &Output) -> serde_json::Value {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "client failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last stdout line is not JSON ({e}): {last}"))
}

/// The rows of a results file.
pub fn rows(csv: &Path) -> Vec<Row> {
    read_rows(csv).unwrap_or_else(|e| panic!("results file unreadable: {e}"))
}

/// When the row's request started.
pub fn started_at(row: &Row) -> SystemTime {
    humantime::parse_rfc3339(&row.started_at)
        .unwrap_or_else(|e| panic!("bad started_at {:?}: {e}", row.started_at))
}

/// Checks what every successful row against the real function must show.
pub fn assert_real_ok_row(row: &Row, expect_faces: bool) {
    assert!(row.ok, "row not ok: {row:?}");
    assert_eq!(row.status, Some(200), "{row:?}");
    assert!(row.error.is_empty(), "{row:?}");
    let (total, ml) = (row.total_ms.expect("total_ms"), row.ml_ms.expect("ml_ms"));
    assert!(ml > 0.0, "{row:?}");
    assert!(total >= ml, "total < ml: {row:?}");
    assert!(row.rtt_ms >= total, "rtt < total: {row:?}");
    assert!(
        row.bytes_sent > 1000 && row.bytes_received > 1000,
        "{row:?}"
    );
    if expect_faces {
        assert!(row.faces.is_some_and(|f| f >= 1), "no face found: {row:?}");
    }
    started_at(row);
}
