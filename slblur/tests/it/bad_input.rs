//! Every kind of bad input gets a precise error with the right status — JSON for JSON and
//! binary clients, plain text for seed clients — and the server keeps serving valid frames.

use crate::support;

use crate::support::TestServer;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

struct Bad {
    name: &'static str,
    content_type: Option<&'static str>,
    path: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn jpeg() -> Vec<u8> {
    support::fixture("astronaut_640x360.jpg")
}

/// A well-formed PNG whose header claims 100000×100000 pixels (a decompression bomb: 30 GB
/// decoded) over a body of a few dozen bytes.
fn bomb_png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&100_000u32.to_be_bytes());
    header.extend_from_slice(&100_000u32.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &header);
    // A zlib stream holding one empty stored block.
    chunk(
        &mut png,
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01,
        ],
    );
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend(support::png_chunk(kind, data));
}

fn cases() -> Vec<Bad> {
    let bad = |name, content_type, body: Vec<u8>, status, code| Bad {
        name,
        content_type,
        path: "/",
        body,
        status,
        code,
    };
    let full = jpeg();
    vec![
        bad(
            "empty binary body",
            Some("image/jpeg"),
            vec![],
            400,
            "empty_body",
        ),
        bad("empty seed body", None, vec![], 400, "empty_body"),
        bad(
            "invalid base64 (seed)",
            None,
            b"this is not base64 %%%".to_vec(),
            400,
            "invalid_base64",
        ),
        bad(
            "invalid base64 (json)",
            Some("application/json"),
            br#"{"image": "@@@"}"#.to_vec(),
            400,
            "invalid_base64",
        ),
        bad(
            "truncated JPEG",
            Some("image/jpeg"),
            full[..full.len() / 2].to_vec(),
            400,
            "corrupt_image",
        ),
        bad(
            "corrupt PNG",
            Some("image/png"),
            {
                let mut png = support::fixture("astronaut.png");
                png.truncate(4000);
                png
            },
            400,
            "corrupt_image",
        ),
        bad(
            "non-image bytes",
            Some("image/png"),
            b"GIF89a not what you think".to_vec(),
            400,
            "not_an_image",
        ),
        bad(
            "base64 of non-image bytes (seed)",
            None,
            BASE64.encode(b"plain text").into_bytes(),
            400,
            "not_an_image",
        ),
        bad(
            "decompression bomb",
            Some("image/png"),
            bomb_png(),
            413,
            "image_too_large",
        ),
        bad(
            "body over the limit",
            Some("image/jpeg"),
            vec![0xFF; 3 << 20],
            413,
            "body_too_large",
        ),
        bad(
            "malformed JSON",
            Some("application/json"),
            br#"{"image": "#.to_vec(),
            400,
            "invalid_json",
        ),
        bad(
            "JSON without image",
            Some("application/json"),
            br#"{"mode": "blur"}"#.to_vec(),
            400,
            "invalid_json",
        ),
        bad(
            "JSON array",
            Some("application/json"),
            b"[1, 2]".to_vec(),
            400,
            "invalid_json",
        ),
        bad(
            "unknown option value",
            Some("application/json"),
            serde_json::json!({"image": BASE64.encode(jpeg()), "mode": "pixelate"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_option",
        ),
        bad(
            "unknown option name",
            Some("application/json"),
            serde_json::json!({"image": BASE64.encode(jpeg()), "colour": "red"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_option",
        ),
        Bad {
            path: "/?threshold=7",
            ..bad(
                "option out of range in the query",
                Some("image/jpeg"),
                jpeg(),
                400,
                "invalid_option",
            )
        },
        bad(
            "unsupported Content-Type",
            Some("video/mp4"),
            jpeg(),
            415,
            "unsupported_media_type",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn each_bad_input_is_refused_precisely_and_serving_goes_on() {
    let server = TestServer::start_with(|c| {
        c.server.max_body_bytes = 2 << 20;
        c.max_pixels = 4096 * 4096;
    })
    .await;
    for case in cases() {
        let mut request = server.post(case.path).body(case.body.clone());
        if let Some(ct) = case.content_type {
            request = request.header("content-type", ct);
        }
        let r = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(r.status().as_u16(), case.status, "{}", case.name);
        let seed = case.content_type.is_none();
        let text = r.text().await.expect("error body");
        if seed {
            assert!(
                text.starts_with(&format!("Error ({}):", case.code)),
                "{}: {text}",
                case.name
            );
        } else {
            let v: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("{}: {text}", case.name));
            assert_eq!(v["error"]["code"], case.code, "{}: {text}", case.name);
            let message = v["error"]["message"].as_str().unwrap_or("");
            assert!(
                message.len() > 10,
                "{}: a helpful message, got {text}",
                case.name
            );
        }

        // The server still serves a valid frame after each bad one.
        let ok = server.send("/", "image/jpeg", jpeg()).await;
        assert_eq!(ok.status(), 200, "after {}", case.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_name_the_problem() {
    let server = TestServer::start().await;
    let r = server.send("/?mode=pixelate", "image/jpeg", jpeg()).await;
    let v: serde_json::Value = r.json().await.expect("json");
    let message = v["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("mode") && message.contains("pixelate") && message.contains("mosaic"),
        "{message}"
    );

    let r = server.send("/", "image/png", bomb_png()).await;
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("100000x100000")),
        "{v}"
    );

    let r = server
        .http
        .get(format!("{}/", server.url))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 405);
}

/// of-watchdog forwards bodies chunked, with no Content-Length: the limit must hold while
/// streaming, and the client must still get the 413 (not a reset connection).
#[tokio::test(flavor = "multi_thread")]
async fn chunked_body_over_the_limit_is_refused_with_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(|c| c.server.max_body_bytes = 1 << 20).await;
    let addr = server.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = "POST /function/slblur HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![0xFFu8; 64 << 10];
    for _ in 0..24 {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .expect("size");
        stream.write_all(&chunk).await.expect("chunk");
        stream.write_all(b"\r\n").await.expect("crlf");
    }
    stream.write_all(b"0\r\n\r\n").await.expect("end");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.200}");
    assert!(answer.contains("\"code\":\"body_too_large\""), "{answer}");
}
