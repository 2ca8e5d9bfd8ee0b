//! The function binary run as the image runs it: with the environment the template's Dockerfile
//! sets (of-watchdog's variables included), the lock file in `$TMPDIR`, JSON logs. Health is 503
//! before warm-up and 200 after, a frame makes the round trip, and after SIGTERM the function
//! keeps serving for the grace (the Dockerfile's `healthcheck_interval`) with health failing,
//! then drains and exits 0.
//!
//! `SLBLUR_IMAGE_BINARY` points the test at another build of the binary: scripts/check-build-context
//! runs it against the one compiled from the assembled faas-cli build context.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Function, listen_url};

fn binary() -> PathBuf {
    std::env::var_os("SLBLUR_IMAGE_BINARY").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_slblur")),
        PathBuf::from,
    )
}

fn dockerfile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../template/rust-http/Dockerfile")
}

/// `ENV` instructions of a Dockerfile (`key="value"` pairs, continued over `\` lines).
fn dockerfile_env(text: &str) -> Vec<(String, String)> {
    let joined = text.replace("\\\n", " ");
    let mut pairs = Vec::new();
    for line in joined.lines() {
        let Some(rest) = line.trim().strip_prefix("ENV ") else {
            continue;
        };
        for word in rest.split_whitespace() {
            let (key, value) = word.split_once('=').expect("ENV key=value");
            pairs.push((key.to_string(), value.trim_matches('"').to_string()));
        }
    }
    pairs
}

fn seconds(go_duration: &str) -> f64 {
    go_duration
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a duration in whole seconds: {go_duration}"))
}

#[test]
fn dockerfile_env_is_read_as_docker_reads_it() {
    let _machine = support::share_machine();
    let env = dockerfile_env("FROM x\nENV a=\"1\" \\\n    b=\"two\"\nENV c=3\n");
    assert_eq!(
        env,
        [
            ("a".into(), "1".into()),
            ("b".into(), "two".into()),
            ("c".into(), "3".into())
        ]
    );
}

#[test]
fn help_and_version_start_no_server() {
    let _machine = support::share_machine();
    let version = Command::new(binary())
        .arg("--version")
        .output()
        .expect("run --version");
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("slblur "));
    let help = Command::new(binary())
        .arg("--help")
        .output()
        .expect("run --help");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    // --help is made from the variable lists, so it names every variable the function reads.
    let variables = faas_server::settings::SERVER_VARIABLES
        .iter()
        .chain(slblur::config::var::ALL);
    for variable in variables.map(|v| v.for_function(slblur::config::NAME)) {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{variable} ")));
        assert!(
            line.is_some_and(|l| l.contains("(default: ")),
            "--help lists {variable}:\n{text}"
        );
    }
    let bad = Command::new(binary()).arg("--serve").output().expect("run");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--serve"));
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_with_the_template_environment_and_drains_after_the_grace() {
    let _machine = support::share_machine();
    let text = std::fs::read_to_string(dockerfile()).expect("the template's Dockerfile");
    let env = dockerfile_env(&text);
    let get = |key: &str| {
        env.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the Dockerfile sets {key}"))
    };
    assert_eq!(get("suppress_lock"), "true");
    assert_eq!(get("prefix_logs"), "false");
    let grace = Duration::from_secs_f64(seconds(&get("healthcheck_interval")));

    let tmp = std::env::temp_dir().join(format!("slblur-image-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let lock = tmp.join(".lock");
    let mut command = Command::new(binary());
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command
        .env_remove("SLBLUR_LOCK_FILE")
        .env_remove("SLBLUR_GRACE")
        .env("TMPDIR", &tmp)
        // Everything as in the image, except a free port.
        .env("SLBLUR_ADDR", "127.0.0.1:0")
        // A 1280×736 warm-up keeps the function unready long enough to see it.
        .env("SLBLUR_INFERENCE_WIDTH", "0")
        .env("SLBLUR_ML_THREADS", "1");
    // The image runs with no SLBLUR_MODEL: the model is in assets/ beside the binary. A binary
    // built in the workspace has none there, so it gets the repository's.
    let beside = binary().with_file_name("assets").join("centerface.onnx");
    if beside.is_file() {
        command.env_remove("SLBLUR_MODEL");
    } else {
        command.env("SLBLUR_MODEL", support::model_path());
    }
    let mut f = Function::start(command);
    let listening = f.wait_for("listening");
    assert!(listening.starts_with('{'), "JSON log lines: {listening}");
    let url = listen_url(&listening);
    let http = reqwest::Client::new();
    let health = || async {
        let r = http.get(format!("{url}/_/health")).send().await;
        r.map(|r| r.status().as_u16()).unwrap_or(0)
    };
    assert_eq!(health().await, 503, "not ready while warming up");
    assert!(!lock.exists(), "no lock file before ready");

    let loaded = f.wait_for("model loaded");
    if beside.is_file() {
        assert!(
            loaded.contains(&*beside.to_string_lossy()),
            "the model beside the binary: {loaded}"
        );
    }
    f.wait_for("\"ready\"");
    assert_eq!(health().await, 200);
    assert!(lock.exists(), "the lock file is in $TMPDIR once ready");
    let frame = || {
        http.post(format!("{url}/function/slblur"))
            .header("content-type", "image/jpeg")
            .body(support::fixture("astronaut_640x360.jpg"))
            .send()
    };
    let r = frame().await.expect("a frame");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-face-count"], "1");
    assert_eq!(
        support::image_size(&r.bytes().await.expect("body")),
        (640, 360)
    );

    support::sigterm(&f.child);
    let signalled = Instant::now();
    f.wait_for("shutting down");
    assert_eq!(health().await, 503, "health fails during the grace");
    // of-watchdog (suppress_lock=true) removes the lock itself at SIGTERM: the function only
    // creates it, so the two never race to remove it.
    assert!(
        lock.exists(),
        "the function leaves the lock to the watchdog"
    );
    let r = frame()
        .await
        .expect("a request sent during the grace is served");
    assert_eq!(r.status(), 200);
    assert!(
        signalled.elapsed() < grace,
        "the check ran within the grace; raise healthcheck_interval if this machine is slow"
    );
    assert!(
        f.child.try_wait().expect("wait").is_none(),
        "still running during the grace"
    );

    let (status, log) = tokio::task::spawn_blocking(move || {
        let status = f.wait_exit();
        (status, f.rest_of_log())
    })
    .await
    .expect("join");
    assert!(status.success(), "exit 0 after the drain; log:\n{log}");
    assert!(signalled.elapsed() >= grace, "served for the whole grace");
    assert!(log.contains("grace over"), "{log}");
    assert_eq!(health().await, 0, "nothing listens any more");
    let _ = std::fs::remove_dir_all(&tmp);
}
