//! The `slblur` binary as a process: ready → lock file; SIGTERM drains the request in flight and
//! exits 0; a missing or corrupt model or a bad variable is a clear start-up error, not a panic.

use crate::support;

use crate::support::{Function, listen_url, strip_ansi};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_the_request_in_flight_then_exits_zero() {
    let _machine = support::share_machine();
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
            .body(support::fixture("group_1280x720.jpg"))
            .send(),
    );
    support::wait_until_in_flight(&http, &url).await;
    support::sigterm(&f.child);

    let response = slow
        .await
        .expect("task")
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    let image = response.bytes().await.expect("body");
    assert_eq!(support::image_size(&image), (1280, 720));
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
    let _machine = support::share_machine();
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
    let _machine = support::share_machine();
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
    let _machine = support::share_machine();
    let log = startup_failure(&[("SLBLUR_WORKERS", "zero")]);
    assert!(log.contains("SLBLUR_WORKERS"), "{log}");
}

/// `SLBLUR_PRECISION=int8` calibrates at start and logs the scales' checksum and the int8
/// kernels; every reply says int8 served it, and the face is still masked.
#[tokio::test(flavor = "multi_thread")]
async fn int8_is_logged_and_named_in_every_reply() {
    let _machine = support::share_machine();
    let mut f = Function::spawn(&[("SLBLUR_PRECISION", "int8")]);
    let url = listen_url(&f.wait_for("listening"));
    let loaded = strip_ansi(&f.wait_for("model loaded"));
    assert!(loaded.contains("precision=int8"), "{loaded}");
    let sha = loaded
        .split("int8_scales_sha256=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|v| v.trim_matches('"'))
        .unwrap_or_default();
    assert_eq!(sha.len(), 64, "{loaded}");
    let kernels = strip_ansi(&f.wait_for("kernels"));
    assert!(
        !kernels.contains("int8=none") && kernels.contains("int8="),
        "{kernels}"
    );
    f.wait_for("ready");
    use base64::Engine;
    let image =
        base64::engine::general_purpose::STANDARD.encode(support::fixture("astronaut_640x360.jpg"));
    let http = reqwest::Client::new();
    let reply = http
        .post(&url)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "image": image }).to_string())
        .send()
        .await
        .expect("reply");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["x-slblur-precision"], "int8");
    let body: serde_json::Value = reply.json().await.expect("json");
    assert_eq!(body["inference"]["precision"], "int8");
    assert_eq!(
        body["faces"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        body["faces"]
    );
    support::sigterm(&f.child);
    assert!(f.wait_exit().success());
}

#[test]
fn unknown_precision_is_named_at_startup() {
    let _machine = support::share_machine();
    let log = startup_failure(&[("SLBLUR_PRECISION", "fp16")]);
    assert!(
        log.contains("SLBLUR_PRECISION") && log.contains("fp32 or int8"),
        "{log}"
    );
}

/// Behind of-watchdog stderr is a pipe that closes when the watchdog exits, often before the
/// function's last log lines: those writes fail, and must not panic (that exited 101).
#[test]
fn a_closed_log_pipe_does_not_panic_the_function() {
    let _machine = support::share_machine();
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_slblur"))
        .env_remove("RUST_LOG")
        .env("SLBLUR_ADDR", "127.0.0.1:0")
        .env("SLBLUR_MODEL", support::model_path())
        .env("SLBLUR_LOCK_FILE", "")
        .env("SLBLUR_ML_THREADS", "1")
        .env("SLBLUR_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the function");
    let mut log = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("\"ready\"") {
        line.clear();
        assert_ne!(
            log.read_line(&mut line).expect("log"),
            0,
            "exited before ready"
        );
    }
    // Both pipes closed, as when the watchdog has gone: every later log line fails to write.
    drop(log);
    drop(child.stdout.take());
    support::sigterm(&child);
    let status = child.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(0),
        "exit 0 with its log pipe closed, not a panic"
    );
}
