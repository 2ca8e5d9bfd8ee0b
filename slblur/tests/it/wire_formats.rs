//! The three wire formats over real HTTP on loopback, on any path: binary (image + Server-Timing),
//! JSON (image + faces + timings), and the original function's seed text format.

use crate::support;

use crate::support::TestServer;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use slblur_protocol::server_timing;

#[tokio::test(flavor = "multi_thread")]
async fn binary_jpeg_in_jpeg_out_with_timings() {
    let server = TestServer::start().await;
    let body = support::fixture("astronaut_640x360.jpg");
    let r = server.send("/function/slblur", "image/jpeg", body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["x-face-count"], "1");
    assert_eq!(r.headers()["x-slblur-cold"], "true");
    assert_eq!(r.headers()["x-slblur-inference"], "640x384");
    assert_eq!(r.headers()["x-slblur-precision"], "fp32");
    let instance = r.headers()["x-slblur-instance"].to_str().expect("ascii");
    assert!(instance.starts_with("slblur-"), "{instance}");
    let timing = server_timing::parse(r.headers()["server-timing"].to_str().expect("ascii"));
    let names: Vec<&str> = timing.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["queue", "decode", "ml", "blur", "encode", "total"]);
    let get = |n: &str| {
        timing
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| *v)
            .expect(n)
    };
    assert!(get("ml") > 0.0 && get("total") >= get("ml") + get("decode") + get("encode"));
    let image = r.bytes().await.expect("body");
    assert_eq!(support::image_size(&image), (640, 360));
    assert_eq!(
        support::confident_faces(&image),
        0,
        "the face must be unrecognisable"
    );

    // The second request of the process is warm; PNG in, PNG out, on the root path.
    let r = server
        .send("/", "image/png", support::fixture("astronaut.png"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["x-slblur-cold"], "false");
    assert_eq!(
        support::image_size(&r.bytes().await.expect("body")),
        (256, 256)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_options_from_the_query_string() {
    let server = TestServer::start().await;
    let original = support::fixture("astronaut_640x360.jpg");
    let r = server
        .send("/?mode=none&format=png", "image/jpeg", original.clone())
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let image = r.bytes().await.expect("body");
    assert_eq!(
        support::confident_faces(&image),
        1,
        "mode=none leaves the face"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_reports_faces_sizes_and_timings() {
    let server = TestServer::start().await;
    let request = serde_json::json!({
        "image": BASE64.encode(support::fixture("group_1280x720.jpg")),
        "mode": "mosaic",
        "format": "png",
    });
    let r = server
        .post("/any/sub/path")
        .header("content-type", "application/json")
        .header("x-call-id", "call-42")
        .body(request.to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "call-42");
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        v["faces"].as_array().map(Vec::len),
        Some(3),
        "{:?}",
        v["faces"]
    );
    let face = &v["faces"][0];
    assert_eq!(face["box"].as_array().map(Vec::len), Some(4));
    assert_eq!(face["landmarks"].as_array().map(Vec::len), Some(10));
    assert!(face["score"].as_f64().is_some_and(|s| s > 0.2));
    assert_eq!(
        v["input"],
        serde_json::json!({"width": 1280, "height": 720})
    );
    assert_eq!(
        v["inference"],
        serde_json::json!({"width": 640, "height": 384, "precision": "fp32"})
    );
    for stage in ["queue", "decode", "ml", "blur", "encode", "total"] {
        assert!(
            v["timings_ms"][stage].as_f64().is_some_and(|t| t >= 0.0),
            "{stage}"
        );
    }
    assert_eq!(v["cold"], true);
    assert_eq!(v["request_id"], "call-42");
    assert!(v["instance"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(v["format"], "png");
    let image = BASE64
        .decode(v["image"].as_str().expect("image"))
        .expect("base64");
    assert!(image.starts_with(b"\x89PNG"));
    assert_eq!(support::image_size(&image), (1280, 720));
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_format_answers_like_the_original_function() {
    let server = TestServer::start().await;
    // The original client: requests.post(url, data=base64.b64encode(png)) — no Content-Type.
    let body = BASE64.encode(support::fixture("astronaut.png"));
    let r = server
        .post("/function/slblur")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/plain"))
    );
    let text = r.text().await.expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text:.300}");
    // The original client's regexes.
    let seconds = |prefix: &str| -> f64 {
        let line = lines.iter().find(|l| l.starts_with(prefix)).expect(prefix);
        line[prefix.len()..].trim().parse().expect("seconds")
    };
    let (ml, total) = (seconds("Elapsed ML time: "), seconds("Total time: "));
    assert!(
        ml > 0.0 && total >= ml && total < 60.0,
        "ml {ml} total {total}"
    );
    let last = lines[2];
    let img = last
        .strip_prefix("{'text': 'serveRR', 'img': '")
        .and_then(|s| s.strip_suffix("'}"))
        .expect("the serveRR line");
    let png = BASE64.decode(img).expect("base64 png");
    assert!(png.starts_with(b"\x89PNG"), "img is a PNG");
    assert_eq!(support::image_size(&png), (256, 256));
    assert_eq!(support::confident_faces(&png), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn untyped_image_bytes_are_treated_as_binary() {
    let server = TestServer::start().await;
    let r = server
        .send(
            "/",
            "application/x-www-form-urlencoded",
            support::fixture("no_face_320x240.jpg"),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["x-face-count"], "0");
}
