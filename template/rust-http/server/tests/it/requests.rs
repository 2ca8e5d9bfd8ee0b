//! Requests the server refuses before the function: wrong methods on its own routes (405 with
//! the JSON body), encoded bodies it would take for plain bytes (415), a missing or wrong token
//! (401) — and client text in errors never forges log lines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Running, read_all, send, settings, status_of};
use faas_server::auth::Token;
use faas_server::settings::Settings;

#[tokio::test(flavor = "multi_thread")]
async fn wrong_methods_on_health_and_metrics_get_the_json_error() {
    let running = Running::start(settings()).await;
    for path in ["/_/health", "/metrics"] {
        let r = running
            .http
            .post(format!("{}{path}", running.url))
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), 405, "{path}");
        let v: serde_json::Value =
            serde_json::from_str(&r.text().await.expect("body")).expect("json");
        assert_eq!(v["error"]["code"], "method_not_allowed", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn encoded_bodies_are_415_not_taken_as_bytes() {
    let running = Running::start(settings()).await;
    let mut stream = running.connect().await;
    send(
        &mut stream,
        b"POST / HTTP/1.1\r\nhost: test\r\ntransfer-encoding: gzip, chunked\r\n\r\n7\r\nsleep:0\r\n0\r\n\r\n",
    )
    .await;
    let response = read_all(&mut stream, Duration::from_secs(3)).await;
    assert_eq!(status_of(&response), 415, "{response}");
    assert!(response.contains("unsupported_encoding"), "{response}");
    let r = running
        .http
        .post(format!("{}/", running.url))
        .header("content-encoding", "gzip")
        .body("sleep:0")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 415);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_guards_the_function_but_not_health_or_metrics() {
    let running = Running::start(Settings {
        token: Some(Token::new(b"s3cret-token").expect("valid")),
        ..settings()
    })
    .await;
    let url = format!("{}/", running.url);
    let missing = running.post("sleep:0").await;
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let v: serde_json::Value =
        serde_json::from_str(&missing.text().await.expect("body")).expect("json");
    assert_eq!(v["error"]["code"], "unauthorized");
    let plain = running
        .http
        .post(&url)
        .header("x-plain", "1")
        .header("authorization", "Bearer nope")
        .body("sleep:0")
        .send()
        .await
        .expect("answered");
    assert_eq!(plain.status(), 401);
    let text = plain.text().await.expect("text");
    assert!(text.starts_with("Error (unauthorized):"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    let admitted = running
        .http
        .post(&url)
        .bearer_auth("s3cret-token")
        .body("sleep:0")
        .send()
        .await
        .expect("answered");
    assert_eq!(admitted.status(), 200);
    assert_eq!(running.health().await, 200);
    let metrics = running
        .http
        .get(format!("{}/metrics", running.url))
        .send()
        .await
        .expect("answered");
    assert_eq!(metrics.status(), 200);
}

/// Collects what the log writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_text_cannot_forge_log_lines_or_grow_them_without_bound() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let running = Running::start(settings()).await;
    let huge = "y".repeat(8 << 20);
    for body in [
        "fail:x\nFORGED line=1 level=ERROR".to_string(),
        format!("fail:{huge}"),
    ] {
        let r = running.post(&body).await;
        assert_eq!(r.status(), 400);
        let text = r.text().await.expect("body");
        assert!(
            text.len() < 4096,
            "the error body is clipped: {} bytes",
            text.len()
        );
    }
    let log = String::from_utf8_lossy(&captured.0.lock().expect("log")).into_owned();
    assert!(log.contains(r"x\nFORGED"), "escaped in place: {log}");
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "no forged line: {log}"
    );
    assert!(log.lines().all(|l| l.len() < 8192), "log lines stay short");
}

/// A fault of the function (500) answers a generic message naming the request id; the detail,
/// which may be a library's internal text, is only in the log.
#[tokio::test(flavor = "multi_thread")]
async fn a_500_names_the_request_id_and_keeps_the_detail_out_of_the_answer() {
    let running = Running::start(settings()).await;
    let r = running
        .http
        .post(&running.url)
        .header("x-request-id", "req-500")
        .body("crash:tract node 17: shape mismatch")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 500);
    let text = r.text().await.expect("body");
    let body: faas_protocol::ErrorBody = serde_json::from_str(&text).expect("an error body");
    assert_eq!(body.error.code, "internal");
    assert!(body.error.message.contains("request id req-500"), "{text}");
    assert!(!text.contains("node 17"), "the detail leaked: {text}");
}
