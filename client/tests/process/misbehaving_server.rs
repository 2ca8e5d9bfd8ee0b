//! Servers that refuse, answer garbage, fail or close: every request becomes a failed row with
//! a specific error, the run completes and the results file stays parseable.

use crate::support;

use std::time::Duration;

use crate::support::{
    FakeReply, FakeServer, Results, client, http_response, rows, run_args, summary_of, text,
};
use slblur_client::record::Row;

/// Runs 3 frames against `url` and returns the rows and stderr.
fn run_against(url: &str, wire: &str) -> (Vec<Row>, String) {
    let results = Results::new();
    let extra = ["--frames", "3", "--timeout", "5", "--wire", wire];
    let out = client(&run_args(url, &results.csv, &extra));
    let summary = summary_of(&out);
    let rows = rows(&results.csv);
    assert_eq!(rows.len(), 3, "one row per frame, failures included");
    assert_eq!(summary["cells"][0]["failed"], 3);
    assert!(
        rows.iter().all(|r| !r.ok && !r.error.is_empty()),
        "{rows:?}"
    );
    (rows, text(&out.stderr))
}

#[test]
fn refused_connections() {
    let refused = support::RefusedPort::new();
    let (rows, stderr) = run_against(&refused.url, "binary");
    assert!(
        rows[0].error.starts_with("connect error:"),
        "{}",
        rows[0].error
    );
    assert!(rows[0].error.contains("refused"), "{}", rows[0].error);
    assert_eq!(rows[0].status, None);
    assert!(
        stderr.contains("no request succeeded; is the function running"),
        "{stderr}"
    );
}

#[test]
fn garbage_instead_of_http() {
    let server = FakeServer::start(FakeReply::Raw(b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()));
    let (rows, _) = run_against(&server.url, "binary");
    assert!(
        rows[0].error.starts_with("request error:"),
        "{}",
        rows[0].error
    );
    assert_eq!(rows[0].status, None);
}

#[test]
fn server_errors_keep_status_and_message() {
    let body = br#"{"error": {"code": "inference_failed", "message": "the model crashed"}}"#;
    let server = FakeServer::start(FakeReply::Raw(http_response(
        "500 Internal Server Error",
        &[("Content-Type", "application/json")],
        body,
    )));
    let (rows, _) = run_against(&server.url, "json");
    assert_eq!(rows[0].status, Some(500));
    assert_eq!(
        rows[0].error,
        "HTTP 500 Internal Server Error: inference_failed: the model crashed"
    );
    assert_eq!(rows[0].bytes_received, body.len() as u64);
}

#[test]
fn overload_shows_retry_after() {
    let server = FakeServer::start(FakeReply::Raw(http_response(
        "429 Too Many Requests",
        &[("Retry-After", "2")],
        b"queue full\n",
    )));
    let (rows, _) = run_against(&server.url, "seed");
    assert_eq!(rows[0].status, Some(429));
    assert_eq!(
        rows[0].error,
        "HTTP 429 Too Many Requests (retry after 2): queue full"
    );
}

#[test]
fn ok_status_with_a_body_that_does_not_parse() {
    let server = FakeServer::start(FakeReply::Raw(http_response(
        "200 OK",
        &[("Content-Type", "text/html")],
        b"<html>welcome to nginx</html>",
    )));
    let (rows, _) = run_against(&server.url, "binary");
    assert_eq!(rows[0].status, Some(200));
    assert!(
        rows[0].error.contains("not a JPEG or PNG image"),
        "{}",
        rows[0].error
    );
    let (rows, _) = run_against(&server.url, "json");
    assert!(
        rows[0].error.starts_with("response is not JSON"),
        "{}",
        rows[0].error
    );
    let (rows, _) = run_against(&server.url, "seed");
    assert!(
        rows[0].error.contains("lacks 'Elapsed ML time:'"),
        "{}",
        rows[0].error
    );
}

#[test]
fn connection_closed_without_answer() {
    let server = FakeServer::start(FakeReply::Close);
    let (rows, _) = run_against(&server.url, "binary");
    assert!(
        rows[0].error.starts_with("request error:"),
        "{}",
        rows[0].error
    );
    assert!(
        rows[0].rtt_ms < 5000.0,
        "failed fast, not by timeout: {:?}",
        rows[0]
    );
}

#[test]
fn an_echo_server_without_timings_is_ok_with_unknowns() {
    // Not slblur, but it answers with an image: the row is ok and the timings stay empty.
    let server = FakeServer::echo(Duration::from_millis(10));
    let results = Results::new();
    summary_of(&client(&run_args(
        &server.url,
        &results.csv,
        &["--frames", "2"],
    )));
    let rows = rows(&results.csv);
    assert!(rows.iter().all(|r| r.ok
        && r.total_ms.is_none()
        && r.ml_ms.is_none()
        && r.faces.is_none()
        && r.cold.is_none()));
    assert!(rows.iter().all(|r| r.bytes_received == r.bytes_sent));
}
