//! Bad input from the user: each gives a clear message and exit code, and touches no results.

mod common;

use common::{client, client_plain, sample_video, text};

fn fails_with(args: &[&str], code: i32, message: &str) {
    let out = client(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(
        stderr.contains(message),
        "expected {message:?} in: {stderr}"
    );
}

#[test]
fn missing_video_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("r.csv");
    fails_with(
        &[
            "run",
            "--video",
            "/no/such/video.mp4",
            "--out",
            csv.to_str().unwrap(),
        ],
        1,
        "video file '/no/such/video.mp4' does not exist",
    );
    assert!(
        !csv.exists(),
        "no results file for a run that never started"
    );
    let out = client_plain(&[
        "frames",
        "--video",
        "/no/such/video.mp4",
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_file_that_is_not_a_video() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("notes.mp4");
    std::fs::write(&fake, "this is text, not a video\n").unwrap();
    let csv = dir.path().join("r.csv");
    fails_with(
        &[
            "run",
            "--video",
            fake.to_str().unwrap(),
            "--out",
            csv.to_str().unwrap(),
        ],
        1,
        "cannot open video",
    );
    // A folder is not a video either.
    fails_with(
        &[
            "run",
            "--video",
            dir.path().to_str().unwrap(),
            "--out",
            csv.to_str().unwrap(),
        ],
        1,
        "cannot open video",
    );
}

#[test]
fn unreadable_video() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v.mp4");
    std::fs::copy(sample_video(), &video).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&video, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&video).is_ok() {
        return; // root reads anything; the permission case cannot be shown here
    }
    fails_with(
        &[
            "run",
            "--video",
            video.to_str().unwrap(),
            "--out",
            dir.path().join("r.csv").to_str().unwrap(),
        ],
        1,
        "cannot open video",
    );
}

#[test]
fn bad_options_are_explained() {
    let video = sample_video();
    let v = video.to_str().unwrap();
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
    fails_with(&["sweep", "--video", v, "--users", "0,2"], 2, "at least 1");
    fails_with(
        &["sweep", "--video", v, "--loop"],
        1,
        "sweep --loop needs --frames or --duration",
    );
}

#[test]
fn a_foreign_results_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("other.csv");
    std::fs::write(&csv, "name,value\nx,1\n").unwrap();
    fails_with(
        &[
            "run",
            "--video",
            sample_video().to_str().unwrap(),
            "--out",
            csv.to_str().unwrap(),
        ],
        1,
        "has a different header",
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "name,value\nx,1\n");
}
