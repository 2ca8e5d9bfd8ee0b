//! `--timeout`: a server that hangs gives failed rows, and the run goes on with the next frame.

use std::time::{Duration, Instant};

use crate::support::{FakeReply, FakeServer, Results, client, rows, run_args, summary_of};

#[test]
fn hanging_server_gives_timeout_rows() {
    let server = FakeServer::start(FakeReply::Hang);
    let results = Results::new();
    let extra = ["--frames", "3", "--timeout", "1"];
    let begin = Instant::now();
    let out = client(&run_args(&server.url, &results.csv, &extra));
    let summary = summary_of(&out);
    assert!(
        begin.elapsed() >= Duration::from_secs(3),
        "three 1 s timeouts took {:?}",
        begin.elapsed()
    );
    let rows = rows(&results.csv);
    assert_eq!(
        rows.iter().map(|r| r.frame).collect::<Vec<_>>(),
        [0, 1, 2],
        "the run went on after each timeout"
    );
    for row in &rows {
        assert!(!row.ok);
        assert_eq!(row.error, "timeout after 1s");
        assert_eq!(row.status, None);
        assert!(row.rtt_ms >= 990.0, "{row:?}");
        assert_eq!(
            (row.total_ms, row.ml_ms, row.faces, row.bytes_received),
            (None, None, None, 0)
        );
    }
    assert_eq!(summary["cells"][0]["success_rate"], 0.0);
    assert!(
        summary["cells"][0]["rtt_ms"].is_null(),
        "latency stats cover successes only"
    );
}

#[test]
fn body_that_never_ends_is_a_timeout_with_its_status() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n\xff\xd8\xff".to_vec();
    let server = FakeServer::start(FakeReply::RawThenHang(head));
    let results = Results::new();
    let extra = ["--frames", "2", "--timeout", "800ms"];
    summary_of(&client(&run_args(&server.url, &results.csv, &extra)));
    let rows = rows(&results.csv);
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert!(!row.ok);
        assert_eq!(
            row.status,
            Some(200),
            "the status line arrived before the timeout"
        );
        assert_eq!(row.error, "timeout after 800ms");
    }
}
