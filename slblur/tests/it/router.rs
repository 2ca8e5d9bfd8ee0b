//! The router in-process with `oneshot`: health before and after the function is ready, and the
//! function refusing work while the model loads.

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use faas_server::Server;
use tower::ServiceExt;

#[tokio::test]
async fn health_is_503_until_the_model_is_ready_then_200() {
    let config = support::test_config();
    let server = Server::new(slblur::config::NAME, config.server.clone());
    let app = server.router();
    let health = || {
        Request::get("/_/health")
            .body(Body::empty())
            .expect("request")
    };

    let r = app.clone().oneshot(health()).await.expect("response");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let frame = Request::post("/")
        .header("content-type", "image/jpeg")
        .body(Body::from(support::fixture("astronaut_640x360.jpg")))
        .expect("request");
    let r = app.clone().oneshot(frame).await.expect("response");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    let starting = server.clone();
    tokio::task::spawn_blocking(move || {
        starting.start_function(|registry| slblur::Slblur::start(config, registry))
    })
    .await
    .expect("join")
    .expect("model");
    let r = app.clone().oneshot(health()).await.expect("response");
    assert_eq!(r.status(), StatusCode::OK);
    let frame = Request::post("/function/slblur")
        .header("content-type", "image/jpeg")
        .body(Body::from(support::fixture("astronaut_640x360.jpg")))
        .expect("request");
    let r = app.oneshot(frame).await.expect("response");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-face-count"], "1");
}
