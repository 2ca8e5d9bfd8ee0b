//! A server killed mid-run: the rows before stay, the rest are failed rows, the file is intact.

use std::time::Duration;

use crate::support::{
    Results, assert_real_ok_row, rows, run_args, spawn_client, start_function, summary_of,
    wait_for_lines,
};

#[test]
fn killing_the_function_mid_run_keeps_the_file_intact() {
    let mut function = start_function();
    let results = Results::new();
    let extra = ["--frames", "40", "--timeout", "5"];
    let child = spawn_client(&run_args(&function.url, &results.csv, &extra));

    // Kill once a few rows are on disk: flushed per row, so they are readable mid-run.
    wait_for_lines(&results.csv, 4, Duration::from_secs(60));
    function.kill();

    let out = child.wait_with_output().expect("wait for client");
    let summary = summary_of(&out);
    let rows = rows(&results.csv);
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
