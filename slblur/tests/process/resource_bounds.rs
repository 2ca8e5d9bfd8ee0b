//! Hostile sizes cost bounded memory in a real function process: a tall frame, full-resolution
//! detection asked for a 4K frame, and 48 MB option arrays in JSON. Each test spawns its own
//! process and reads its peak RSS (`VmHWM`), a resource bound rather than a timing.

use crate::support;
use crate::support::{Function, gradient_jpeg, listen_url, peak_rss_mb};

/// Far below what these inputs cost before the bounds (1.2 to 4.8 GB), well above a frame's
/// own buffers.
const MAX_PEAK_MB: f64 = 600.0;

fn spawn() -> (Function, String) {
    let mut f = Function::spawn(&[("SLBLUR_WORKERS", "1"), ("SLBLUR_TIMEOUT", "120")]);
    let url = listen_url(&f.wait_for("listening"));
    f.wait_for("ready");
    (f, url)
}

/// POSTs a JPEG and returns the network input size (`x-slblur-inference`) and the peak RSS;
/// prints both with the latency (`-- --nocapture` shows them; only the RSS is asserted).
async fn detect(url: &str, query: &str, jpeg: Vec<u8>, f: &Function) -> ([u64; 2], f64) {
    let started = std::time::Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{url}/{query}"))
        .header("content-type", "image/jpeg")
        .body(jpeg)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let faces: u32 = r.headers()["x-face-count"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("count");
    assert_eq!(faces, 0, "a gradient has no faces");
    let inference = r.headers()["x-slblur-inference"]
        .to_str()
        .expect("ascii")
        .split('x')
        .map(|n| n.parse().expect("number"))
        .collect::<Vec<u64>>();
    let peak = peak_rss_mb(f.child.id());
    eprintln!(
        "{query:20} network {}x{} peak RSS {peak:.0} MB, answered in {:.2} s",
        inference[0],
        inference[1],
        started.elapsed().as_secs_f64()
    );
    ([inference[0], inference[1]], peak)
}

fn assert_bounded(label: &str, [w, h]: [u64; 2], peak: f64) {
    assert!(w * h <= 1280 * 736, "{label}: network input {w}x{h}");
    assert!(peak < MAX_PEAK_MB, "{label}: peak RSS {peak:.0} MB");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tall_frame_is_downscaled_for_detection() {
    let _machine = support::share_machine();
    let (f, url) = spawn();
    let jpeg = gradient_jpeg(640, 55296);
    let (net, peak) = detect(&url, "", jpeg, &f).await;
    assert!(net[1] > 20 * net[0], "the aspect ratio is kept: {net:?}");
    assert_bounded("640x55296", net, peak);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_frame_is_downscaled_for_detection() {
    let _machine = support::share_machine();
    let (f, url) = spawn();
    let (net, peak) = detect(&url, "", gradient_jpeg(640, 8000), &f).await;
    assert_bounded("640x8000", net, peak);
}

#[tokio::test(flavor = "multi_thread")]
async fn full_resolution_detection_of_a_4k_frame_is_bounded() {
    let _machine = support::share_machine();
    let (f, url) = spawn();
    let jpeg = gradient_jpeg(4096, 2160);
    let (net, peak) = detect(&url, "?inference_width=0", jpeg, &f).await;
    assert!(net[0] >= 1024, "as large as the bound allows: {net:?}");
    assert_bounded("4096x2160 at inference_width=0", net, peak);
}

/// Four 48 MB `"mode":[1,1,…]` bodies at once: each is refused at the array's first byte.
#[tokio::test(flavor = "multi_thread")]
async fn huge_option_arrays_cost_no_more_than_their_bodies() {
    let _machine = support::share_machine();
    let (f, url) = spawn();
    let mut body = br#"{"image":"aGk=","mode":["#.to_vec();
    body.extend(
        std::iter::repeat_n(*b"1,", 24 << 20)
            .take((48 << 20) / 2 - 64)
            .flatten(),
    );
    body.extend_from_slice(b"1]}");
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let sends = (0..4).map(|_| {
        http.post(format!("{url}/"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    });
    for r in futures_join(sends).await {
        let r = r.expect("answered");
        assert_eq!(r.status(), 400);
        let text = r.text().await.expect("body");
        assert!(text.contains("invalid_option"), "{text}");
        assert!(text.len() < 1000, "{} bytes", text.len());
    }
    let peak = peak_rss_mb(f.child.id());
    eprintln!(
        "4 x 48 MB mode arrays: peak RSS {peak:.0} MB, all answered in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert!(peak < MAX_PEAK_MB, "peak RSS {peak:.0} MB");
}

async fn futures_join<F: std::future::Future + Send + 'static>(
    all: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send,
{
    let tasks: Vec<_> = all.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}
