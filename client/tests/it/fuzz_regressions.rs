//! Inputs the fuzzer (fuzz/, `scripts/fuzz`) found, fed through the same functions as its
//! `client_reply` target, so what it caught stays fixed.

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use slblur_client::wire::error_text;

/// A 429 with a long `Retry-After` and no body: the row's error text used to carry the whole
/// header value, unbounded.
#[test]
fn error_text_stays_short_without_a_body() {
    let mut headers = HeaderMap::new();
    let long = "9".repeat(300);
    headers.insert("retry-after", HeaderValue::from_str(&long).expect("header"));
    let text = error_text(StatusCode::TOO_MANY_REQUESTS, &headers, &Bytes::new());
    assert!(
        text.starts_with("HTTP 429 Too Many Requests (retry after 999"),
        "{text}"
    );
    assert!(
        text.chars().count() <= 201,
        "{} characters",
        text.chars().count()
    );
}
