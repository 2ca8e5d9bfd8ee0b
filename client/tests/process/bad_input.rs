//! Bad input from the user: each gives a clear message and exit code, and touches no results.

use crate::support;

use std::path::Path;

use crate::support::{Results, client, client_plain, path_str, sample_video, text};

fn fails_with(args: &[&str], code: i32, message: &str) {
    let out = client(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(
        stderr.contains(message),
        "expected {message:?} in: {stderr}"
    );
}

/// `run --video VIDEO --out CSV` fails with exit code 1 and `message`.
fn run_fails_with(video: &Path, csv: &Path, message: &str) {
    let args = ["run", "--video", path_str(video), "--out", path_str(csv)];
    fails_with(&args, 1, message);
}

#[test]
fn missing_video_is_named() {
    let results = Results::new();
    run_fails_with(
        Path::new("/no/such/video.mp4"),
        &results.csv,
        "video file '/no/such/video.mp4' does not exist",
    );
    assert!(
        !results.csv.exists(),
        "no results file for a run that never started"
    );
    let out = client_plain(&[
        "frames",
        "--video",
        "/no/such/video.mp4",
        "-o",
        path_str(results.dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_file_that_is_not_a_video() {
    let results = Results::new();
    let fake = results.dir.path().join("notes.mp4");
    std::fs::write(&fake, "this is text, not a video\n").expect("write fake video");
    run_fails_with(&fake, &results.csv, "cannot open video");
    // A folder is not a video either.
    run_fails_with(results.dir.path(), &results.csv, "cannot open video");
}

#[test]
fn unreadable_video() {
    let results = Results::new();
    let video = results.dir.path().join("v.mp4");
    std::fs::copy(sample_video(), &video).expect("copy sample");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&video, std::fs::Permissions::from_mode(0o000)).expect("chmod video");
    if std::fs::read(&video).is_ok() {
        return; // root reads anything; the permission case cannot be shown here
    }
    run_fails_with(&video, &results.csv, "cannot open video");
}

#[test]
fn bad_options_are_explained() {
    let video = sample_video();
    let v = path_str(&video);
    fails_with(
        &["run", "--video", v, "--url", "localhost:8080"],
        2,
        "must start with http://",
    );
    fails_with(
        &["run", "--video", v, "--url", "http//x"],
        2,
        "is not a URL",
    );
    fails_with(
        &["run", "--video", v, "--think", "soon"],
        2,
        "is not a duration",
    );
    fails_with(
        &["run", "--video", v, "--wire", "xml"],
        2,
        "possible values: binary, json, seed",
    );
    // Options that clap accepts one by one but not together: told the same way, before any
    // request is sent.
    fails_with(
        &["run", "--video", v, "--timeout", "0"],
        2,
        "--timeout must be more than 0",
    );
    fails_with(
        &[
            "run",
            "--video",
            v,
            "--target",
            "a=http://127.0.0.1:1/",
            "--target",
            "b=http://127.0.0.1:2/",
        ],
        2,
        "run loads one target",
    );
    fails_with(&["sweep", "--video", v, "--users", "0,2"], 2, "at least 1");
    fails_with(
        &["sweep", "--video", v, "--loop"],
        2,
        "sweep --loop needs --frames or --duration",
    );
    fails_with(&["sweep", "--video", v, "--think=-1"], 2, "non-negative");
    fails_with(
        &["sweep", "--video", v, "--rate", "0"],
        2,
        "must be more than 0",
    );
    fails_with(
        &["sweep", "--video", v, "--target", "=http://127.0.0.1:1/"],
        2,
        "no target name",
    );
    fails_with(
        &["sweep", "--video", v, "--threshold", "p95 under 2s"],
        2,
        "is not a threshold rule",
    );
    fails_with(
        &["load", "--video", v, "--users", "1,2"],
        2,
        "load runs one cell",
    );
    fails_with(
        &[
            "sweep",
            "--video",
            v,
            "--workers",
            "2",
            "--worker-index",
            "2",
        ],
        2,
        "--worker-index 2 is not below --workers 2",
    );
    fails_with(
        &[
            "sweep",
            "--video",
            v,
            "--users",
            "1,2",
            "--start-at",
            "2030-01-01T00:00:00Z",
        ],
        2,
        "give --slot",
    );
    fails_with(
        &["sweep", "--video", v, "--rate", "2", "--smooth", "2"],
        2,
        "--smooth needs closed-loop users",
    );
    fails_with(
        &["run", "--video", v, "--wire", "seed", "--smooth", "1"],
        2,
        "the seed format has none",
    );
    fails_with(&["run", "--video", v, "--smooth", "x"], 2, "invalid value");
    fails_with(
        &[
            "run",
            "--video",
            v,
            "--async-target",
            "a=http://127.0.0.1:1/",
            "--url",
            "http://127.0.0.1:2/",
        ],
        2,
        "cannot be used with",
    );
    fails_with(&["run", "--video", v, "--async"], 2, "--url <URL>");
    fails_with(
        &[
            "sweep",
            "--video",
            v,
            "--async-target",
            "a=http://127.0.0.1:1/",
            "--callback-listen",
            "0.0.0.0:9000",
        ],
        2,
        "needs --callback-url",
    );
    fails_with(
        &[
            "sweep",
            "--video",
            v,
            "--target",
            "a=http://127.0.0.1:1/",
            "--async-target",
            "a=http://127.0.0.1:2/",
        ],
        2,
        "two targets are named 'a'",
    );
    fails_with(
        &["run", "--video", v, "--callback-url", "http://127.0.0.1:9/"],
        2,
        "need an asynchronous target",
    );
    fails_with(
        &["leaks", v, v, "--kept-above", "1.5"],
        2,
        "not a share between 0 (excluded) and 1",
    );
}

#[test]
fn a_sweep_goes_on_past_a_dead_target() {
    let function = support::start_function();
    let dead = support::RefusedPort::new();
    let results = Results::new();
    let out = results.dir.path().join("run");
    let args = support::grid_args(
        "sweep",
        &[("dead", &dead.url), ("alive", &function.url)],
        &out,
        &["--users", "1", "--think", "0", "--frames", "2"],
    );
    support::summary_of(&support::client(&args));
    let rows = support::run_folder(&out).rows;
    assert_eq!(rows.len(), 4);
    for row in &rows {
        match row.target.as_str() {
            "dead" => assert!(!row.ok && row.error.starts_with("connect error"), "{row:?}"),
            _ => support::assert_real_ok_row(row, true),
        }
    }
}

#[test]
fn a_foreign_results_file_is_left_alone() {
    let results = Results::new();
    std::fs::write(&results.csv, "name,value\nx,1\n").expect("write foreign csv");
    run_fails_with(&sample_video(), &results.csv, "has a different header");
    assert_eq!(
        std::fs::read_to_string(&results.csv).expect("read csv"),
        "name,value\nx,1\n"
    );
}
