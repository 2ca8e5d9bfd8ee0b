//! A server killed mid-run: the rows before stay, the rest are failed rows, the file is intact.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{assert_real_ok_row, client_command, rows, sample_video, start_function, summary_of};

#[test]
fn killing_the_function_mid_run_keeps_the_file_intact() {
    let mut function = start_function();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("results.csv");
    let child = client_command(&[
        "run",
        "--url",
        &function.url,
        "--video",
        sample_video().to_str().unwrap(),
        "--frames",
        "40",
        "--timeout",
        "5",
        "--out",
        csv.to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();

    // Kill once a few rows are on disk: flushed per row, so they are readable mid-run.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) < 4 {
        assert!(Instant::now() < deadline, "no rows appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    function.kill();

    let out = child.wait_with_output().unwrap();
    let summary = summary_of(&out);
    let rows = rows(&csv);
    assert_eq!(rows.len(), 40, "every frame has a row");
    let ok = rows.iter().take_while(|r| r.ok).count();
    assert!(ok >= 3, "rows before the kill succeeded: {ok}");
    rows[..ok].iter().for_each(|r| assert_real_ok_row(r, true));
    assert!(
        rows[ok..].iter().all(|r| !r.ok && !r.error.is_empty()),
        "after the kill every row failed"
    );
    assert!(
        rows[rows.len() - 1].error.starts_with("connect error:"),
        "{:?}",
        rows[rows.len() - 1]
    );
    assert_eq!(summary["cells"][0]["ok"].as_u64(), Some(ok as u64));
    let frames: Vec<u64> = rows.iter().map(|r| r.frame).collect();
    assert_eq!(frames, (0..40).collect::<Vec<_>>());
}
