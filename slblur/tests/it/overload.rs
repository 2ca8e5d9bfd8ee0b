//! Back-pressure: when every worker and queue slot is taken the function answers 429 with
//! `Retry-After` at once instead of queueing without bound; past the deadline it answers 504.

use crate::support;

use std::time::Duration;

use crate::support::TestServer;

fn big_frame_request(server: &TestServer) -> reqwest::RequestBuilder {
    // Full-resolution inference on 1280×720 keeps the single worker busy for a while.
    server
        .post("/?inference_width=0")
        .header("content-type", "image/jpeg")
        .body(support::fixture("group_1280x720.jpg"))
}

#[tokio::test(flavor = "multi_thread")]
async fn full_queue_answers_429_with_retry_after() {
    let server = TestServer::start_with(|c| {
        c.server.workers = 1;
        c.server.queue = 0;
    })
    .await;
    let busy = tokio::spawn(big_frame_request(&server).send());
    support::wait_until_in_flight(&server.http, &server.url).await;
    let refused = big_frame_request(&server).send().await.expect("send");
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let v: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(v["error"]["code"], "overloaded");

    let first = busy.await.expect("task").expect("send");
    assert_eq!(first.status(), 200, "the admitted request completes");
    // Its slot is free once its response is written: the client can have read it a moment
    // before the server has finished with it.
    first.bytes().await.expect("the first response");
    support::wait_until_idle(&server.http, &server.url).await;
    let again = big_frame_request(&server).send().await.expect("send");
    assert_eq!(
        again.status(),
        200,
        "capacity is back once the first is done"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn request_past_the_deadline_answers_504() {
    let server = TestServer::start_with(|c| {
        c.server.request_timeout = Duration::from_millis(1);
    })
    .await;
    let r = big_frame_request(&server).send().await.expect("send");
    assert_eq!(r.status(), 504);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "timeout");
}
