//! Ctrl-C: the run stops, prints its summary for what finished, and the file keeps every row.

use std::time::Duration;

use crate::support::{FakeServer, Results, rows, run_args, spawn_client, text, wait_for_lines};

#[test]
fn sigint_stops_with_a_summary_and_intact_rows() {
    let server = FakeServer::echo(Duration::from_millis(50));
    let results = Results::new();
    let child = spawn_client(&run_args(&server.url, &results.csv, &["--loop"]));
    wait_for_lines(&results.csv, 6, Duration::from_secs(30));
    let pid = i32::try_from(child.id()).expect("pid fits i32");
    // SAFETY: plain kill(2) on our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().expect("wait for client");
    assert_eq!(
        out.status.code(),
        Some(130),
        "stderr: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().expect("summary line");
    let summary: serde_json::Value = serde_json::from_str(last).expect("summary JSON");
    assert_eq!(summary["interrupted"], true);
    let rows = rows(&results.csv);
    assert!(rows.len() >= 5);
    assert_eq!(
        summary["cells"][0]["requests"].as_u64(),
        Some(rows.len() as u64)
    );
    assert!(rows.iter().all(|r| r.ok));
}
