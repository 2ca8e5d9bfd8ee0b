//! The `slblur` binary as a process: ready → lock file; SIGTERM drains the request in flight and
//! exits 0; a missing or corrupt model or a bad variable is a clear start-up error, not a panic.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Function {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Function {
    fn spawn(env: &[(&str, &str)]) -> Function {
        let mut command = Command::new(env!("CARGO_BIN_EXE_slblur"));
        command
            .env("SLBLUR_ADDR", "127.0.0.1:0")
            .env("SLBLUR_MODEL", common::model_path())
            .env("SLBLUR_LOCK_FILE", "")
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn slblur");
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
    fn wait_for(&mut self, needle: &str) -> String {
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

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("the process did not exit");
    }

    fn rest_of_log(&mut self) -> String {
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

fn strip_ansi(s: &str) -> String {
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

fn listen_url(line: &str) -> String {
    let line = strip_ansi(line);
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .expect("addr= in the listening line");
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_the_request_in_flight_then_exits_zero() {
    let lock = std::env::temp_dir().join(format!("slblur-test-{}.lock", std::process::id()));
    std::fs::write(&lock, b"stale").expect("stale lock");
    let mut f = Function::spawn(&[("SLBLUR_LOCK_FILE", lock.to_str().expect("utf-8"))]);
    let url = listen_url(&f.wait_for("listening"));
    f.wait_for("ready");
    assert!(lock.exists(), "the lock file exists once ready");
    assert!(
        std::fs::read(&lock).expect("lock").is_empty(),
        "the stale lock was replaced"
    );

    let http = reqwest::Client::new();
    let slow = tokio::spawn(
        http.post(format!("{url}/?inference_width=0"))
            .header("content-type", "image/jpeg")
            .body(common::fixture("group_1280x720.jpg"))
            .send(),
    );
    common::wait_until_in_flight(&http, &url).await;
    // SAFETY: kill(2) with a child's pid we own and a valid signal number.
    let sent = unsafe { libc::kill(f.child.id() as i32, libc::SIGTERM) };
    assert_eq!(sent, 0);

    let response = slow
        .await
        .expect("task")
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    let image = response.bytes().await.expect("body");
    assert_eq!(common::image_size(&image), (1280, 720));
    let status = tokio::task::spawn_blocking(move || {
        let status = f.wait_exit();
        let log = f.rest_of_log();
        (status, log)
    })
    .await
    .expect("join");
    assert!(
        status.0.success(),
        "exit status {:?}; log:\n{}",
        status.0,
        status.1
    );
    assert!(status.1.contains("shutting down"), "{}", status.1);
    assert!(!lock.exists(), "the lock file is removed on shutdown");
    assert!(
        http.get(format!("{url}/_/health")).send().await.is_err(),
        "nothing listens any more"
    );
}

fn startup_failure(env: &[(&str, &str)]) -> String {
    let mut f = Function::spawn(env);
    let status = f.wait_exit();
    let log = strip_ansi(&f.rest_of_log());
    assert!(!status.success(), "must fail; log:\n{log}");
    assert!(
        !log.contains("panicked"),
        "a clear error, not a panic:\n{log}"
    );
    log
}

#[test]
fn missing_model_is_a_clear_startup_error() {
    let log = startup_failure(&[("SLBLUR_MODEL", "/nonexistent/centerface.onnx")]);
    assert!(
        log.contains("cannot read the model file /nonexistent/centerface.onnx"),
        "{log}"
    );
    assert!(
        log.contains("scripts/fetch-model"),
        "says how to fix it: {log}"
    );
}

#[test]
fn corrupt_model_is_a_clear_startup_error() {
    let path =
        std::env::temp_dir().join(format!("slblur-corrupt-model-{}.onnx", std::process::id()));
    std::fs::write(&path, b"definitely not an onnx protobuf").expect("write");
    let log = startup_failure(&[("SLBLUR_MODEL", path.to_str().expect("utf-8"))]);
    assert!(
        log.contains("is not a usable CenterFace ONNX model"),
        "{log}"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn bad_variable_is_named_at_startup() {
    let log = startup_failure(&[("SLBLUR_WORKERS", "zero")]);
    assert!(log.contains("SLBLUR_WORKERS"), "{log}");
}
