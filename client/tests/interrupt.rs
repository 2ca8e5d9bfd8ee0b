//! Ctrl-C: the run stops, prints its summary for what finished, and the file keeps every row.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{FakeServer, Reply, client_command, rows, sample_video, text};

#[test]
fn sigint_stops_with_a_summary_and_intact_rows() {
    let server = FakeServer::start(Reply::EchoAfter(Duration::from_millis(50), "image/jpeg"));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("results.csv");
    let child = client_command(&[
        "run",
        "--url",
        &server.url,
        "--video",
        sample_video().to_str().unwrap(),
        "--loop",
        "--out",
        csv.to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) < 6 {
        assert!(Instant::now() < deadline, "no rows appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: plain kill(2) on our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "stderr: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["interrupted"], true);
    let rows = rows(&csv);
    assert!(rows.len() >= 5);
    assert_eq!(
        summary["cells"][0]["requests"].as_u64(),
        Some(rows.len() as u64)
    );
    assert!(rows.iter().all(|r| r.ok));
}
