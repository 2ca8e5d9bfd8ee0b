//! `GET /metrics`: Prometheus text with requests by status, in-flight, faces, and histograms.

mod common;

use common::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_by_status_and_time_frames() {
    let server = TestServer::start().await;
    for _ in 0..2 {
        let r = server
            .send("/", "image/jpeg", common::fixture("astronaut_640x360.jpg"))
            .await;
        assert_eq!(r.status(), 200);
    }
    let r = server.send("/", "image/jpeg", "junk").await;
    assert_eq!(r.status(), 400);

    let text = server.metrics().await;
    let value = |prefix: &str| common::metric(&text, prefix);
    assert_eq!(
        value(r#"slblur_requests_total{wire="binary",status="200"}"#),
        2.0
    );
    assert_eq!(
        value(r#"slblur_requests_total{wire="binary",status="400"}"#),
        1.0
    );
    assert_eq!(value("slblur_in_flight "), 0.0);
    assert_eq!(value("slblur_faces_total "), 2.0);
    assert_eq!(value("slblur_ml_seconds_count "), 2.0);
    assert_eq!(value("slblur_total_seconds_count "), 2.0);
    assert!(
        value("slblur_total_seconds_sum ") >= value("slblur_ml_seconds_sum ")
            && value("slblur_ml_seconds_sum ") > 0.0
    );
    assert!(
        text.contains("# TYPE slblur_ml_seconds histogram"),
        "{text}"
    );
}
