//! The server around a tiny function, in-process and over loopback HTTP: readiness, admission
//! (429), deadlines (504), body limits (413), error styles, metrics, and the SIGTERM grace.

use std::sync::Arc;
use std::time::Duration;

use faas_server::http::{HeaderMap, Request, StatusCode};
use faas_server::settings::Settings;
use faas_server::{ErrorStyle, Function, Invocation, Problem, Reply, Server};
use tower::ServiceExt;

/// Sleeps for the number of milliseconds in the body, then answers `slept`.
struct Sleeper;

impl Function for Sleeper {
    fn handle(&self, invocation: Invocation) -> Result<Reply, Problem> {
        let text = std::str::from_utf8(&invocation.body).unwrap_or("");
        let ms: u64 = text
            .trim()
            .parse()
            .map_err(|_| Problem::bad_request("not_a_number", "send milliseconds").kind("sleep"))?;
        std::thread::sleep(Duration::from_millis(ms));
        Ok(Reply::new("text/plain", "slept")
            .kind("sleep")
            .stage("sleep", ms as f64))
    }

    fn error_style(&self, headers: &HeaderMap) -> ErrorStyle {
        if headers.contains_key("x-plain") {
            ErrorStyle::PlainText
        } else {
            ErrorStyle::Json
        }
    }
}

fn settings() -> Settings {
    Settings {
        workers: 1,
        queue: 0,
        ..Settings::default()
    }
}

fn ready(settings: Settings) -> Arc<Server> {
    let server = Server::new("sleeper", settings);
    server
        .start_function(|_| Ok::<_, std::convert::Infallible>(Sleeper))
        .expect("start");
    server
}

fn post(body: &str) -> Request<axum::body::Body> {
    Request::post("/any/path")
        .body(axum::body::Body::from(body.to_string()))
        .expect("request")
}

async fn body_text(r: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn health_follows_readiness_and_errors_follow_the_style() {
    let server = Server::new("sleeper", settings());
    let app = server.router();
    let health = || {
        Request::get("/_/health")
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let r = app.clone().oneshot(health()).await.expect("response");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let r = app.clone().oneshot(post("1")).await.expect("response");
    assert_eq!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "no work before ready"
    );

    server
        .start_function(|_| Ok::<_, std::convert::Infallible>(Sleeper))
        .expect("start");
    assert_eq!(
        app.clone()
            .oneshot(health())
            .await
            .expect("response")
            .status(),
        StatusCode::OK
    );
    let r = app.clone().oneshot(post("1")).await.expect("response");
    assert_eq!(r.status(), StatusCode::OK);
    let timing = r.headers()["server-timing"].to_str().expect("ascii");
    assert!(
        timing.starts_with("queue;dur=") && timing.contains(", sleep;dur=1.000, total;dur="),
        "queue, the function's stages, total: {timing}"
    );
    assert!(r.headers().contains_key("x-request-id"));
    // A response holds its admission slot until it is written (here: read) or dropped.
    assert_eq!(body_text(r).await, "slept");

    let r = app.clone().oneshot(post("soon")).await.expect("response");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(body_text(r).await.contains(r#""code":"not_a_number""#));
    let plain = Request::get("/")
        .header("x-plain", "1")
        .body(axum::body::Body::empty())
        .expect("request");
    let r = app.clone().oneshot(plain).await.expect("response");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        body_text(r)
            .await
            .starts_with("Error (method_not_allowed): GET")
    );

    let metrics = Request::get("/metrics")
        .body(axum::body::Body::empty())
        .expect("request");
    let text = body_text(app.oneshot(metrics).await.expect("response")).await;
    assert!(
        text.contains(r#"sleeper_requests_total{kind="sleep",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"sleeper_requests_total{kind="sleep",status="400"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"sleeper_requests_total{kind="unknown",status="405"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"sleeper_stage_seconds_count{stage="sleep"} 1"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn full_capacity_is_429_and_the_deadline_is_504() {
    let server = ready(Settings {
        request_timeout: Duration::from_millis(300),
        ..settings()
    });
    let app = server.router();
    let busy = tokio::spawn(app.clone().oneshot(post("200")));
    while server.metrics.render().contains("sleeper_in_flight 0") {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let r = app.clone().oneshot(post("1")).await.expect("response");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        busy.await.expect("join").expect("response").status(),
        StatusCode::OK
    );

    let r = app.oneshot(post("1000")).await.expect("response");
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(body_text(r).await.contains("SLEEPER_TIMEOUT"));
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_naming_the_variable() {
    let server = ready(Settings {
        max_body_bytes: 4,
        ..settings()
    });
    let r = server
        .router()
        .oneshot(post("123456"))
        .await
        .expect("response");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body_text(r).await.contains("SLEEPER_MAX_BODY_BYTES"));
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_signal_it_serves_through_the_grace_then_drains() {
    let grace = Duration::from_millis(1500);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(faas_server::serve(
        listener,
        "sleeper",
        Settings {
            grace,
            workers: 2,
            ..settings()
        },
        |_| Ok::<_, std::convert::Infallible>(Sleeper),
        async {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::new();
    let health = || async {
        let r = http.get(format!("{url}/_/health")).send().await;
        r.map(|r| r.status().as_u16()).unwrap_or(0)
    };
    while health().await != 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let in_flight = tokio::spawn(http.post(format!("{url}/")).body("300").send());
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(()).expect("signal");
    tokio::time::sleep(Duration::from_millis(100)).await;

    assert_eq!(health().await, 503, "health fails during the grace");
    let during = http
        .post(format!("{url}/"))
        .body("1")
        .send()
        .await
        .expect("served during the grace");
    assert_eq!(during.status(), 200);
    assert!(!serving.is_finished(), "still serving within the grace");
    assert_eq!(
        in_flight.await.expect("join").expect("answered").status(),
        200
    );

    serving.await.expect("join").expect("a clean drain");
    assert_eq!(health().await, 0, "nothing listens after the drain");
}

#[tokio::test]
async fn an_initialiser_error_stops_the_server_with_its_cause() {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot load the model")]
    struct LoadError(#[source] std::io::Error);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let result = faas_server::serve(
        listener,
        "sleeper",
        settings(),
        |_| Err::<Sleeper, _>(LoadError(std::io::Error::other("no such file"))),
        std::future::pending(),
    )
    .await;
    let error = result.expect_err("init failed");
    assert_eq!(
        faas_server::chain(&error),
        "the function could not start: cannot load the model: no such file"
    );
}
