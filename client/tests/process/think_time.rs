//! `--think`: the client sleeps before each request, measured from the rows it wrote.

use std::time::{Duration, Instant};

use crate::support::{
    Results, assert_real_ok_row, client, rows, run_args, start_function, started_at, summary_of,
};

#[test]
fn think_time_separates_requests() {
    let function = start_function();
    let results = Results::new();
    let extra = ["--frames", "3", "--think", "0.3"];
    let begin = Instant::now();
    let out = client(&run_args(&function.url, &results.csv, &extra));
    let wall = begin.elapsed();
    summary_of(&out);
    let rows = rows(&results.csv);
    assert_eq!(rows.len(), 3);
    for pair in rows.windows(2) {
        assert_real_ok_row(&pair[0], true);
        assert_eq!(pair[0].think_s, 0.3);
        // The next request starts no earlier than the previous round trip plus the think time
        // (1 ms slack for the millisecond timestamps).
        let gap = started_at(&pair[1])
            .duration_since(started_at(&pair[0]))
            .expect("requests in order");
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
