//! `GET /metrics`: Prometheus text with requests by status, in-flight, faces, and histograms.

use crate::support;

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_by_status_and_time_frames() {
    let server = TestServer::start().await;
    for _ in 0..2 {
        let r = server
            .send("/", "image/jpeg", support::fixture("astronaut_640x360.jpg"))
            .await;
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("the frame");
    }
    let r = server.send("/", "image/jpeg", "junk").await;
    assert_eq!(r.status(), 400);

    // A request stays in flight until hyper has written its answer and dropped it, which can
    // be just after the client has read it: wait for that (a leak would time out) before the
    // counts are read.
    support::wait_until_idle(&server.http, &server.url).await;
    let text = server.metrics().await;
    let value = |prefix: &str| support::metric(&text, prefix);
    assert_eq!(
        value(r#"slblur_requests_total{kind="binary",status="200"}"#),
        2.0
    );
    assert_eq!(
        value(r#"slblur_requests_total{kind="binary",status="400"}"#),
        1.0
    );
    assert_eq!(value("slblur_in_flight "), 0.0);
    assert_eq!(value("slblur_faces_total "), 2.0);
    assert_eq!(value(r#"slblur_stage_seconds_count{stage="ml"}"#), 2.0);
    assert_eq!(value(r#"slblur_stage_seconds_count{stage="total"}"#), 2.0);
    assert!(
        value(r#"slblur_stage_seconds_sum{stage="total"}"#)
            >= value(r#"slblur_stage_seconds_sum{stage="ml"}"#)
            && value(r#"slblur_stage_seconds_sum{stage="ml"}"#) > 0.0
    );
    assert!(
        text.contains("# TYPE slblur_stage_seconds histogram"),
        "{text}"
    );
}
