//! Real Apache JMeter (jmeter/install) running the slblur plans against the real function on
//! loopback: the HTTP and client plans locally, a distributed run on two `jmeter-server`s, and
//! a client run that fails. Each JMeter start costs a JVM, so runs are 1–2 users × 2–3 frames.

use std::collections::{BTreeSet, HashMap};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::*;
use slblur_client::record::Row;

/// A small heap per JVM: several may run at once on a 2-core machine.
const JVM_HEAP: &str = "-Xms128m -Xmx512m";

fn jmeter_script(name: &str) -> PathBuf {
    workspace().join("jmeter").join(name)
}

/// `jmeter/run ARGS` with this build's client; fails the test when it fails.
fn jmeter_run(args: &[String]) -> Output {
    let out = Command::new(jmeter_script("run"))
        .args(args)
        .args(["--client", BIN])
        .env("HEAP", JVM_HEAP)
        .output()
        .expect("start jmeter/run");
    assert!(
        out.status.success(),
        "jmeter/run failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// `jmeter/run` arguments: `users` users × the first `frames` frames of the sample video
/// against `url` into `out`, think 0, plus `extra`; users start at once (the default ramp-up
/// would start one every 4 s).
fn plan_args(plan: &str, url: &str, out: &Path, cell: (u32, u32), extra: &[&str]) -> Vec<String> {
    let (users, frames) = (cell.0.to_string(), cell.1.to_string());
    let video = sample_video();
    let mut args = vec!["--plan", plan, "--url", url, "--video", path_str(&video)];
    args.extend(["--out", path_str(out), "--ramp-rate", "100", "--think", "0"]);
    args.extend(["--users", &users, "--frames", &frames]);
    args.extend_from_slice(extra);
    args.into_iter().map(String::from).collect()
}

/// Runs a plan (see [`plan_args`]) into a fresh temporary folder: the folder (deleted when
/// dropped) and the run's results folder inside it.
fn run_plan(plan: &str, url: &str, cell: (u32, u32), extra: &[&str]) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    jmeter_run(&plan_args(plan, url, &out, cell, extra));
    (dir, out)
}

/// A JTL's lines as column name → value.
fn jtl_samples(jtl: &Path) -> Vec<HashMap<String, String>> {
    csv::Reader::from_path(jtl)
        .expect("JTL written")
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("JTL is CSV")
}

/// Every (user_id, frame) pair, sorted.
fn user_frames(rows: &[Row]) -> BTreeSet<(u32, u64)> {
    rows.iter().map(|r| (r.user_id, r.frame)).collect()
}

fn all_pairs(users: u32, frames: u64) -> BTreeSet<(u32, u64)> {
    (0..users)
        .flat_map(|u| (0..frames).map(move |f| (u, f)))
        .collect()
}

#[test]
fn http_plan_posts_every_frame_of_every_user() {
    let function = start_function();
    let (_dir, out) = run_plan("http", &function.url, (2, 3), &["--target", "lab"]);

    let rows = rows(&out.join("results.csv"));
    assert_eq!(rows.len(), 6, "{rows:#?}");
    assert_eq!(user_frames(&rows), all_pairs(2, 3));
    for row in &rows {
        assert_real_ok_row(row, true);
        assert_eq!((row.users, row.think_s, row.iteration), (2, 0.0, 0));
        assert_eq!((row.target.as_str(), row.worker), ("lab", 0));
        assert!(row.queue_ms.is_some() && row.cold.is_some(), "{row:?}");
        assert!(!row.instance.is_empty(), "{row:?}");
        assert_eq!(
            row.precision,
            Some(slblur_protocol::Precision::Fp32),
            "{row:?}"
        );
        // The body sent is the frame file itself (JMeter's own count would add headers).
        let frame_file = out.join(format!("frames/frame_{:06}.jpg", row.frame));
        let file_size = std::fs::metadata(&frame_file).expect("frame file").len();
        assert_eq!(row.bytes_sent, file_size, "{row:?}");
    }
    let run_ids: BTreeSet<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(run_ids.len(), 1);
    // The JTL has one line per frame, and JMeter's dashboard was generated from it.
    assert_eq!(jtl_samples(&out.join("results.jtl")).len(), 6);
    assert!(out.join("dashboard/index.html").is_file());
    assert_eq!(
        std::fs::read_to_string(out.join("frames/frames.csv")).expect("frame list"),
        "0,frame_000000.jpg\n1,frame_000001.jpg\n2,frame_000002.jpg\n"
    );
}

#[test]
fn client_plan_runs_the_client_once_per_user() {
    let function = start_function();
    let (_dir, out) = run_plan("client", &function.url, (2, 2), &["--no-dashboard"]);

    // One sample per client run, successful, with the client's summary parsed into it.
    let jtl = jtl_samples(&out.join("results.jtl"));
    assert_eq!(jtl.len(), 2, "{jtl:#?}");
    for s in &jtl {
        assert_eq!(
            (&*s["label"], &*s["responseCode"], &*s["success"]),
            ("video", "0", "true")
        );
        let summary = (
            &*s["client_requests"],
            &*s["client_ok"],
            &*s["client_failed"],
        );
        assert_eq!(summary, ("2", "2", "0"), "{s:?}");
        assert!(
            s["bytes"].parse::<u32>().expect("bytes") < 2000,
            "response kept small: {s:?}"
        );
    }
    // The dataset has the clients' own rows, with the JMeter run's identity.
    let rows = rows(&out.join("results.csv"));
    assert_eq!(rows.len(), 4, "{rows:#?}");
    assert_eq!(user_frames(&rows), all_pairs(2, 2));
    for row in &rows {
        assert_real_ok_row(row, true);
        assert_eq!((row.users, row.target.as_str()), (2, "default"));
    }
    assert!(out.join("client/w0-u0-i0.csv").is_file());
    assert!(out.join("client/w0-u1-i0.csv").is_file());
}

#[test]
fn client_plan_fails_samples_of_failed_frames_and_crashed_clients() {
    // Nothing listens here: the client runs, but every frame fails.
    let closed = RefusedPort::new();
    let (dir, out) = run_plan("client", &closed.url, (1, 2), &["--no-dashboard"]);
    let jtl = jtl_samples(&out.join("results.jtl"));
    assert_eq!(jtl.len(), 1);
    assert_eq!(jtl[0]["success"], "false", "{jtl:?}");
    assert!(
        jtl[0]["failureMessage"].starts_with("2 of 2 frames failed"),
        "{jtl:?}"
    );
    let rows = rows(&out.join("results.csv"));
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|r| !r.ok && r.error.contains("connect")),
        "{rows:#?}"
    );

    // A client that exits non-zero (its video is missing) fails the sample with its message,
    // and the converter reports that line instead of dropping it.
    let jmeter_home = text(
        &Command::new(jmeter_script("install"))
            .arg("--print-home")
            .output()
            .expect("jmeter/install")
            .stdout,
    );
    let crashed = dir.path().join("crashed");
    std::fs::create_dir_all(&crashed).expect("dir");
    let jtl = crashed.join("results.jtl");
    let status = Command::new(Path::new(jmeter_home.trim()).join("bin/jmeter"))
        .args(["-n", "-t"])
        .arg(jmeter_script("client.jmx"))
        .arg("-q")
        .arg(jmeter_script("master.properties"))
        .args([
            &format!("-Jclient={BIN}"),
            &format!("-Jout_dir={}", path_str(&crashed)),
            "-Jvideo=/nonexistent/video.mp4",
            "-Jframes=1",
            "-l",
            path_str(&jtl),
            "-j",
            path_str(&crashed.join("jmeter.log")),
        ])
        .env("HEAP", JVM_HEAP)
        .stdout(Stdio::null())
        .status()
        .expect("run jmeter");
    assert!(status.success());
    let samples = jtl_samples(&jtl);
    assert_eq!(samples.len(), 1);
    let sample = &samples[0];
    assert_eq!(
        (&*sample["responseCode"], &*sample["success"]),
        ("1", "false")
    );
    let message = &sample["responseMessage"];
    assert!(
        message.starts_with("slblur-client exited with 1: error: "),
        "{message}"
    );
    assert!(message.contains("/nonexistent/video.mp4"), "{message}");
    let import = client_plain(&["import-jtl", path_str(&jtl), "--out", path_str(&crashed)]);
    assert!(import.status.success(), "{}", text(&import.stderr));
    let report = text(&import.stderr);
    assert!(report.contains("results.jtl:2: "), "{report}");
    assert!(report.contains("skipped 1 "), "{report}");
}

/// Ports for the JMeter processes: each one the OS gives out (in its ephemeral range), and no
/// port twice in this test (a port bound and released can be given out again). It is released
/// before JMeter binds it, so something else may take it meanwhile: `jmeter/server` and
/// `jmeter/run` exit 3 when a port they need is taken, and the test then retries with new ones.
#[derive(Default)]
struct Ports(BTreeSet<u16>);

impl Ports {
    fn next(&mut self) -> u16 {
        loop {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a port from the OS")
                .port();
            if self.0.insert(port) {
                return port;
            }
        }
    }

    /// A port whose next one is unused here too, for `jmeter/run --rmi-port` (PORT and PORT+1).
    fn pair(&mut self) -> u16 {
        loop {
            let port = self.next();
            if port < 65534 && self.0.insert(port + 1) {
                return port;
            }
        }
    }
}

/// Exit status of `jmeter/server` and `jmeter/run` when a port they need is in use.
const PORT_IN_USE: i32 = 3;
/// Attempts with new ports before a test gives up.
const PORT_ATTEMPTS: u32 = 5;

/// A `jmeter/server` child, killed when dropped.
struct JmeterServer {
    child: Child,
    address: String,
    stderr: PathBuf,
    worker: u32,
}

impl JmeterServer {
    /// Starts `jmeter/server` on two new ports; [`JmeterServer::wait_ready`] waits for it.
    fn start(dir: &Path, worker: u32, ports: &mut Ports) -> JmeterServer {
        let (port, rmi_port) = (ports.next(), ports.next());
        let stderr = dir.join(format!("server-{worker}-{port}.stderr"));
        let child = Command::new(jmeter_script("server"))
            .args(["--port", &port.to_string()])
            .args(["--rmi-port", &rmi_port.to_string()])
            .args(["--worker", &worker.to_string()])
            .arg("--log")
            .arg(dir.join(format!("server-{worker}-{port}.log")))
            .env("HEAP", JVM_HEAP)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start jmeter/server");
        JmeterServer {
            child,
            address: format!("127.0.0.1:{port}"),
            stderr,
            worker,
        }
    }

    /// Waits until the server says it is ready (bound to its own registry); when one of its
    /// ports was taken (exit 3), starts it again on new ones.
    fn wait_ready(&mut self, dir: &Path, ports: &mut Ports) {
        for attempt in 1..=PORT_ATTEMPTS {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let said = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                if said.contains("jmeter/server: ready") {
                    return;
                }
                if let Some(status) = self.child.try_wait().expect("try_wait") {
                    assert_eq!(
                        (status.code(), attempt < PORT_ATTEMPTS),
                        (Some(PORT_IN_USE), true),
                        "jmeter-server {} exited before it was ready:\n{said}",
                        self.address
                    );
                    eprintln!(
                        "jmeter-server {}: a port was taken, new ports",
                        self.address
                    );
                    *self = JmeterServer::start(dir, self.worker, ports);
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "jmeter-server {} not ready after 120 s:\n{said}",
                    self.address
                );
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

impl Drop for JmeterServer {
    /// SIGTERM, which jmeter/server passes on to its JVM (SIGKILL would orphan the JVM).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn distributed_run_collects_both_servers() {
    let function = start_function();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ports = Ports::default();
    // Workers numbered against their order below, to show the master's list decides.
    let mut servers = [
        JmeterServer::start(dir.path(), 7, &mut ports),
        JmeterServer::start(dir.path(), 8, &mut ports),
    ];
    for server in &mut servers {
        server.wait_ready(dir.path(), &mut ports);
    }
    let remote = format!("{},{}", servers[0].address, servers[1].address);
    let out = dir.path().join("run");
    // The master's own RMI ports are pinned, as a firewall needs them, to two the OS gave out.
    for attempt in 1..=PORT_ATTEMPTS {
        let rmi_port = ports.pair().to_string();
        let extra = [
            "--remote",
            &remote,
            "--no-dashboard",
            "--rmi-port",
            &rmi_port,
        ];
        let args = plan_args("http", &function.url, &out, (1, 2), &extra);
        let run = Command::new(jmeter_script("run"))
            .args(&args)
            .args(["--client", BIN])
            .env("HEAP", JVM_HEAP)
            .output()
            .expect("start jmeter/run");
        if run.status.code() == Some(PORT_IN_USE) && attempt < PORT_ATTEMPTS {
            eprintln!(
                "jmeter/run: a port was taken, new ports:\n{}",
                text(&run.stderr)
            );
            let _ = std::fs::remove_dir_all(&out); // a fresh results folder for the next try
            continue;
        }
        assert!(
            run.status.success(),
            "jmeter/run failed: {:?}\nstdout:\n{}\nstderr:\n{}",
            run.status,
            text(&run.stdout),
            text(&run.stderr)
        );
        break;
    }

    // Both servers' samples reached the master's JTL, named after the server.
    let jtl = jtl_samples(&out.join("results.jtl"));
    assert_eq!(jtl.len(), 4, "{jtl:#?}");
    for server in &servers {
        let thread = format!("{}-users 1-1", server.address);
        let from = jtl.iter().filter(|s| s["threadName"] == thread);
        assert_eq!(from.count(), 2, "{jtl:#?}");
    }
    // users = threads × servers; each server is a worker with its own user.
    let rows = rows(&out.join("results.csv"));
    assert_eq!(rows.len(), 4);
    assert_eq!(user_frames(&rows), all_pairs(2, 2));
    for row in &rows {
        assert_real_ok_row(row, true);
        assert_eq!(row.users, 2);
        assert_eq!(row.worker, row.user_id, "{row:?}");
    }
}

#[test]
fn ports_in_use_are_named_before_jmeter_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Held for the whole test: one listening, one the local end of an outgoing connection
    // (which nothing listens on, as an ephemeral port taken by a connection).
    let listening = TcpListener::bind("0.0.0.0:0").expect("bind");
    let taken = listening.local_addr().expect("addr").port();
    let outgoing = TcpStream::connect(("127.0.0.1", taken)).expect("connect");
    let outgoing_port = outgoing.local_addr().expect("addr").port();
    let function_url = "http://127.0.0.1:9/";

    // The master: --rmi-port PORT needs PORT and PORT+1, so either being taken stops the run.
    for (rmi_port, named) in [(taken, taken), (outgoing_port - 1, outgoing_port)] {
        let out = dir.path().join(format!("run-{rmi_port}"));
        let extra = [
            "--remote",
            "127.0.0.1:1099",
            "--rmi-port",
            &rmi_port.to_string(),
        ];
        let run = Command::new(jmeter_script("run"))
            .args(plan_args("client", function_url, &out, (1, 1), &extra))
            .args(["--client", BIN])
            .output()
            .expect("start jmeter/run");
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(PORT_IN_USE), "{stderr}");
        // "port A[, B] is in use on this machine": the other port may happen to be taken too.
        let listed = stderr
            .split_once("error: port ")
            .and_then(|(_, rest)| rest.split_once(" is in use on this machine"))
            .map(|(ports, _)| ports.split(", ").collect::<Vec<_>>())
            .unwrap_or_default();
        assert!(listed.contains(&&*named.to_string()), "{stderr}");
        assert!(stderr.contains("--rmi-port PORT"), "{stderr}");
        assert!(
            !stderr.contains("cell users="),
            "JMeter never started: {stderr}"
        );
    }

    // A server: each of its two ports.
    let free = Ports::default().next();
    for (args, option) in [
        (
            [
                "--port",
                &taken.to_string(),
                "--rmi-port",
                &free.to_string(),
            ],
            "--port",
        ),
        (
            [
                "--port",
                &free.to_string(),
                "--rmi-port",
                &taken.to_string(),
            ],
            "--rmi-port",
        ),
    ] {
        let server = Command::new(jmeter_script("server"))
            .args(args)
            .arg("--log")
            .arg(dir.path().join("server.log"))
            .output()
            .expect("start jmeter/server");
        let stderr = text(&server.stderr);
        assert_eq!(server.status.code(), Some(PORT_IN_USE), "{stderr}");
        assert!(
            stderr.contains(&format!("port {taken} ({option}) is already in use")),
            "{stderr}"
        );
    }
}

#[test]
fn both_plans_send_the_token_file_and_only_then() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token = dir.path().join("token");
    std::fs::write(&token, "jm-7c0e55a1\n").expect("token file");
    let token = path_str(&token);
    let function = start_function_with(&[("SLBLUR_TOKEN_FILE", token)]);
    for plan in ["http", "client"] {
        let extra = ["--no-dashboard", "--token-file", token];
        let (_dir, out) = run_plan(plan, &function.url, (1, 2), &extra);
        let rows = rows(&out.join("results.csv"));
        assert_eq!(rows.len(), 2, "{plan}: {rows:#?}");
        for row in &rows {
            assert_real_ok_row(row, true);
        }
    }
    // Without --token-file the HTTP plan sends no Authorization header: every frame is a 401.
    let (_dir, out) = run_plan("http", &function.url, (1, 2), &["--no-dashboard"]);
    let rows = rows(&out.join("results.csv"));
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(
        rows.iter().all(|r| !r.ok && r.status == Some(401)),
        "{rows:#?}"
    );
}
