//! `--think`: the client sleeps before each request, measured from the rows it wrote.

mod common;

use std::time::{Duration, Instant};

use common::{
    assert_real_ok_row, client, rows, sample_video, start_function, started_at, summary_of,
};

#[test]
fn think_time_separates_requests() {
    let function = start_function();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("results.csv");
    let begin = Instant::now();
    let out = client(&[
        "run",
        "--url",
        &function.url,
        "--video",
        sample_video().to_str().unwrap(),
        "--frames",
        "3",
        "--think",
        "0.3",
        "--out",
        csv.to_str().unwrap(),
    ]);
    let wall = begin.elapsed();
    summary_of(&out);
    let rows = rows(&csv);
    assert_eq!(rows.len(), 3);
    for pair in rows.windows(2) {
        assert_real_ok_row(&pair[0], true);
        assert_eq!(pair[0].think_s, 0.3);
        // The next request starts no earlier than the previous round trip plus the think time
        // (1 ms slack for the millisecond timestamps).
        let gap = started_at(&pair[1])
            .duration_since(started_at(&pair[0]))
            .unwrap();
        let expected =
            Duration::from_secs_f64((pair[0].rtt_ms - 1.0) / 1000.0) + Duration::from_millis(300);
        assert!(gap >= expected, "gap {gap:?} < rtt + think {expected:?}");
    }
    // Three sleeps, the first before the first request, like client.py.
    assert!(
        wall >= Duration::from_millis(900),
        "whole run took only {wall:?}"
    );
}
