//! Hints: boxes a request asks to mask besides what the detector finds (`X-Slblur-Hints`, JSON
//! `hints`), masked like faces, clipped to the frame, never masking a face twice, reported back
//! (`X-Slblur-Boxes`, `X-Slblur-Masked`, JSON faces with their source); bad hints are 400s.

use crate::support;

use crate::support::TestServer;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use slblur_protocol::{JsonReply, Source, boxes};

fn jpeg() -> Vec<u8> {
    support::fixture("astronaut_640x360.jpg")
}

/// The RGB pixel at (x, y) of an encoded image.
fn pixel(image: &[u8], x: u32, y: u32) -> [u8; 3] {
    let (frame, _) = slblur::codec::decode(image, u64::MAX).expect("decodable");
    let i = ((y * frame.width + x) * 3) as usize;
    [frame.rgb[i], frame.rgb[i + 1], frame.rgb[i + 2]]
}

fn header<'r>(r: &'r reqwest::Response, name: &str) -> &'r str {
    r.headers()[name].to_str().expect("ascii")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hint_masks_what_the_detector_did_not_find() {
    let server = TestServer::start().await;
    let path = "/?mode=solid&mask=box&mask_scale=1&format=png";
    let plain = server.send(path, "image/jpeg", jpeg()).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(header(&plain, "x-slblur-masked"), "1");
    let detected = boxes::parse(header(&plain, "x-slblur-boxes")).expect("boxes");
    assert_eq!(detected.len(), 1);
    let untouched = plain.bytes().await.expect("body");
    assert_ne!(pixel(&untouched, 40, 300), [0, 0, 0]);

    // A hint in the lower left corner, partly outside the frame, and one on the face itself.
    let hints = format!("-20,280,80,400;{}", boxes::render(&detected));
    let r = server
        .post(path)
        .header("content-type", "image/jpeg")
        .header("x-slblur-hints", hints)
        .body(jpeg())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-face-count"), "1", "detected faces only");
    assert_eq!(
        header(&r, "x-slblur-masked"),
        "2",
        "the face once, the hint once"
    );
    let masked = boxes::parse(header(&r, "x-slblur-boxes")).expect("boxes");
    assert_eq!(masked[0], detected[0], "detected first");
    assert_eq!(masked[1], [0.0, 280.0, 80.0, 360.0], "the hint, clipped");
    let image = r.bytes().await.expect("body");
    assert_eq!(pixel(&image, 40, 300), [0, 0, 0], "masked under the hint");
    assert_eq!(
        pixel(&image, 600, 20),
        pixel(&untouched, 600, 20),
        "elsewhere untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_hints_come_back_as_faces_with_their_source() {
    let server = TestServer::start().await;
    let body = serde_json::json!({
        "image": BASE64.encode(jpeg()),
        "hints": [[0, 0, 64, 64], [600.5, 300, 700, 400]],
    });
    let r = server.send("/", "application/json", body.to_string()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-face-count"), "1");
    assert_eq!(header(&r, "x-slblur-masked"), "3");
    let text = r.text().await.expect("body");
    let reply: JsonReply = serde_json::from_str(&text).expect("a reply");
    let sources: Vec<Source> = reply.faces.iter().map(|f| f.source).collect();
    assert_eq!(sources, [Source::Detected, Source::Hint, Source::Hint]);
    assert_eq!(reply.faces[1].bbox, [0.0, 0.0, 64.0, 64.0]);
    assert_eq!(reply.faces[2].bbox, [600.5, 300.0, 640.0, 360.0]);
    assert_eq!(reply.faces[2].score, 0.0);

    // Without hints the reply is as before: detected faces only.
    let plain = serde_json::json!({"image": BASE64.encode(jpeg())});
    let r = server
        .send("/", "application/json", plain.to_string())
        .await;
    let text = r.text().await.expect("body");
    let reply: JsonReply = serde_json::from_str(&text).expect("reply");
    assert_eq!(reply.faces.len(), 1);
    assert_eq!(reply.faces[0].source, Source::Detected);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_hints_are_400s_that_say_what_is_wrong() {
    let server = TestServer::start().await;
    let too_many = vec!["0,0,1,1"; boxes::MAX_HINTS + 1].join(";");
    let headers: [(&[u8], &str); 6] = [
        (b"1,2,3", "box 1 has 3 numbers"),
        (b"1,2,3,4;5,6,x,8", "box 2: \"x\" is not a number"),
        (b"5,2,3,4", "x1 must be below x2"),
        (b"1,2,3,1e39", "finite"),
        (too_many.as_bytes(), "more than 64 boxes"),
        (b"1,2,3,\xff", "must be ASCII"),
    ];
    for (value, message) in headers {
        let r = server
            .post("/")
            .header("content-type", "image/jpeg")
            .header(
                "x-slblur-hints",
                reqwest::header::HeaderValue::from_bytes(value).expect("header"),
            )
            .body(jpeg())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 400, "{message}");
        let v: serde_json::Value = r.json().await.expect("error body");
        assert_eq!(v["error"]["code"], "invalid_hints");
        let text = v["error"]["message"].as_str().expect("message");
        assert!(text.contains(message), "{text:?} lacks {message:?}");
    }
    let image = BASE64.encode(jpeg());
    let bodies = [
        (
            serde_json::json!({"image": image, "hints": [[1, 2, 3]]}),
            "length 3",
        ),
        (
            serde_json::json!({"image": image, "hints": "0,0,1,1"}),
            "a list of",
        ),
        (
            serde_json::json!({"image": image, "hints": [[4, 0, 1, 1]]}),
            "box 1: x1",
        ),
        (
            serde_json::json!({"image": image, "hints": vec![[0, 0, 1, 1]; 65]}),
            "more than 64",
        ),
    ];
    for (body, message) in bodies {
        let r = server.send("/", "application/json", body.to_string()).await;
        assert_eq!(r.status(), 400, "{message}");
        let v: serde_json::Value = r.json().await.expect("error body");
        assert_eq!(v["error"]["code"], "invalid_hints");
        let text = v["error"]["message"].as_str().expect("message");
        assert!(text.contains(message), "{text:?} lacks {message:?}");
    }
    // Header and body together are bounded too.
    let body = serde_json::json!({"image": image, "hints": vec![[0, 0, 1, 1]; 40]});
    let r = server
        .post("/")
        .header("content-type", "application/json")
        .header("x-slblur-hints", vec!["0,0,1,1"; 40].join(";"))
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    // The server keeps serving.
    let r = server.send("/", "image/jpeg", jpeg()).await;
    assert_eq!(r.status(), 200);
}
