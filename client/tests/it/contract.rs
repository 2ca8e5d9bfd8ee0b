//! The wire contract between the function and the client: every kind of reply the real function
//! gives — each wire format with each image format, and its JSON and plain-text errors — read
//! by the client's parser says exactly what the function sent. Both ends use slblur-protocol;
//! this proves they use it the same way, and that every `total` a client sees is one number.

use crate::support;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use slblur_client::wire::{self, ParsedReply};
use slblur_protocol::{ErrorBody, ImageKind, JsonReply, Wire, header, server_timing, stage};

/// A POST to the function: status, headers, body.
async fn post(url: &str, content_type: Option<&str>, body: Bytes) -> (u16, HeaderMap, Bytes) {
    let mut request = reqwest::Client::new().post(url).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.expect("the function answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.expect("a body"))
}

fn text<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("the reply has no {name} header"))
}

/// What the reply's headers (and, for JSON, its body) say, compared with the client's reading.
fn check_reply(
    wire: Wire,
    headers: &HeaderMap,
    body: &Bytes,
    read: &ParsedReply,
    sent: (u32, u32),
) {
    let timing = server_timing::parse(text(headers, header::SERVER_TIMING));
    let stage_ms = |name| server_timing::find(&timing, name).expect(name);
    let label = wire.name();
    assert_eq!(
        read.queue_ms,
        Some(stage_ms(stage::QUEUE)),
        "{label}: queue"
    );
    assert_eq!(
        read.instance.as_deref(),
        Some(text(headers, header::INSTANCE))
    );
    assert_eq!(
        read.precision.map(|p| p.name()),
        Some(text(headers, header::PRECISION))
    );
    match wire {
        // The seed format writes seconds with six decimals: microseconds, as rounded.
        Wire::Seed => {
            for (read, name) in [(read.total_ms, stage::TOTAL), (read.ml_ms, stage::ML)] {
                let read = read.expect(name);
                assert!((read - stage_ms(name)).abs() < 1e-6, "seed {name}: {read}");
            }
            assert_eq!((read.faces, read.cold), (None, None), "seed says neither");
        }
        Wire::Binary | Wire::Json => {
            assert_eq!(
                read.total_ms,
                Some(stage_ms(stage::TOTAL)),
                "{label}: total"
            );
            assert_eq!(read.ml_ms, Some(stage_ms(stage::ML)), "{label}: ml");
            let faces = text(headers, header::FACE_COUNT).parse().ok();
            assert_eq!(read.faces, faces, "{label}: faces");
            assert_eq!(read.cold, Some(text(headers, header::COLD) == "true"));
        }
    }
    if wire == Wire::Json {
        let reply: JsonReply = serde_json::from_slice(body).expect("the protocol's JSON reply");
        assert_eq!(reply.request_id, text(headers, header::REQUEST_ID));
        assert_eq!(Some(reply.timings_ms.queue), read.queue_ms);
    }
    let image = read
        .image
        .as_ref()
        .expect("an image")
        .to_frame()
        .expect("it decodes");
    assert_eq!(
        (image.width, image.height),
        sent,
        "{label}: the frame's size"
    );
}

/// The function runs on its own runtime ([`support::start_function`]); requests go from this one.
fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a runtime")
}

#[test]
fn every_reply_the_function_gives_reads_back_in_the_client() {
    let function = support::start_function();
    client_runtime().block_on(replies_read_back(&function.url));
}

async fn replies_read_back(url: &str) {
    let fixture = support::workspace().join("slblur/tests/fixtures/astronaut_640x360.jpg");
    let frame = wire::decode_image(&std::fs::read(fixture).expect("fixture")).expect("a JPEG");
    for wire in Wire::ALL {
        for kind in ImageKind::ALL {
            let body = wire::request_body(&frame, wire, kind, 90).expect("a request body");
            let (status, headers, bytes) = post(url, body.content_type, body.bytes.clone()).await;
            assert_eq!(
                status,
                200,
                "{wire} {kind}: {}",
                String::from_utf8_lossy(&bytes)
            );
            let read = wire::parse_reply(wire, &headers, &bytes).expect("the client reads it");
            check_reply(wire, &headers, &bytes, &read, (frame.width, frame.height));
        }
    }
}

#[test]
fn every_error_the_function_gives_reads_back_in_the_client() {
    let function = support::start_function();
    client_runtime().block_on(errors_read_back(&function.url));
}

async fn errors_read_back(url: &str) {
    let json_option = Bytes::from_static(br#"{"image": "aGk=", "mode": "pixelate"}"#);
    let cases: [(Option<&str>, Bytes, u16, &str); 4] = [
        (Some("application/json"), json_option, 400, "invalid_option"),
        (
            Some("application/json"),
            Bytes::from_static(b"{"),
            400,
            "invalid_json",
        ),
        (
            Some("video/mp4"),
            Bytes::from_static(b"x"),
            415,
            "unsupported_media_type",
        ),
        (
            Some("image/png"),
            Bytes::from_static(b"\x89PNG\r\n\x1a\nbad"),
            400,
            "corrupt_image",
        ),
    ];
    for (content_type, body, want_status, want_code) in cases {
        let (status, headers, bytes) = post(url, content_type, body).await;
        assert_eq!(status, want_status, "{want_code}");
        let sent: ErrorBody = serde_json::from_slice(&bytes).expect("the protocol's error body");
        assert_eq!(sent.error.code, want_code);
        let read = wire::error_text(
            reqwest::StatusCode::from_u16(status).expect("a status"),
            &headers,
            &bytes,
        );
        // The row's text is cut short; the start of the message is in it.
        let start: String = sent.error.message.chars().take(40).collect();
        let prefix = format!("HTTP {status} ");
        assert!(read.starts_with(&prefix), "{read}");
        assert!(read.contains(&format!("{want_code}: {start}")), "{read}");
    }
    // A seed client gets its error as a line of text, which the row keeps as it came.
    let (status, headers, bytes) = post(url, None, Bytes::from_static(b"!!!")).await;
    assert_eq!(status, 400);
    let line = String::from_utf8_lossy(&bytes);
    assert!(line.starts_with("Error (invalid_base64): "), "{line}");
    let read = wire::error_text(reqwest::StatusCode::BAD_REQUEST, &headers, &bytes);
    assert_eq!(
        read,
        wire::shorten(&format!("HTTP 400 Bad Request: {}", line.trim()))
    );
}
