//! The function's request path: Content-Type, hints, query and body through the real wire
//! detection, option and hint parsing, decoding limits, detection (the real model, kept cheap by
//! tiny limits), hint masking and rendering. Any panic is a finding; so is a 5xx, which no
//! client input should cause.
//!
//! Input: one selector byte (its low bits pick the Content-Type; with bit 7 set, the next line
//! is the `X-Slblur-Hints` value), the query up to the next `\n`, then the body.

#![no_main]

use std::sync::LazyLock;

use faas_server::http::{HeaderMap, HeaderValue, Method, header};
use faas_server::{Function, Invocation};
use libfuzzer_sys::fuzz_target;
use slblur::{Config, Slblur};

/// Small images and a 32-pixel detection width keep one execution well under a millisecond's
/// worth of inference; the limits themselves are what is under test.
const MAX_PIXELS: u64 = 128 * 128;

static FUNCTION: LazyLock<Slblur> = LazyLock::new(|| {
    let model = std::env::var("SLBLUR_MODEL").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../models/centerface.onnx").to_string()
    });
    let config = Config {
        model: model.into(),
        max_pixels: MAX_PIXELS,
        inference_width: 32,
        ml_threads: 1,
        ..Config::default()
    };
    let mut registry = Default::default();
    Slblur::start(config, &mut registry).expect("the model loads (scripts/fetch-model)")
});

const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some("image/jpeg"),
    Some("image/png"),
    Some("application/json"),
    Some("text/plain"),
    Some("application/octet-stream"),
    Some("application/x-www-form-urlencoded"),
    Some("Application/JSON; charset=utf-8"),
];

/// Query bytes as a valid URI query: anything outside the unreserved and sub-delimiter set is
/// percent-encoded, so the fuzzer reaches the option parser with every decoded byte value.
fn query(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len() * 3);
    for &b in raw {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    // Where a line ends and the next part starts; no `\n`: an empty line, all of it after.
    let split = |bytes: &[u8]| -> (usize, usize) {
        match bytes.iter().position(|&b| b == b'\n') {
            Some(at) => (at, at + 1),
            None => (0, 0),
        }
    };
    let mut headers = HeaderMap::new();
    let mut rest = rest;
    if selector & 0x80 != 0 {
        let (end, next) = split(rest);
        // A value no HTTP client could send (a control byte) is not a request to test.
        if let Ok(value) = HeaderValue::from_bytes(&rest[..end]) {
            headers.insert(slblur_protocol::header::HINTS, value);
        }
        rest = &rest[next..];
    }
    let (end, next) = split(rest);
    let (raw_query, body) = (&rest[..end], &rest[next..]);
    if let Some(ct) = CONTENT_TYPES[usize::from(selector & 0x7f) % CONTENT_TYPES.len()] {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    let uri = format!("/?{}", query(raw_query));
    let invocation = Invocation::new(Method::POST, &uri, headers, body.to_vec());
    match FUNCTION.handle(invocation) {
        Ok(reply) => assert!(
            reply.status.is_success(),
            "a reply that is not a success: {}",
            reply.status
        ),
        Err(problem) => assert!(
            problem.status.is_client_error(),
            "client input caused {} {}: {}",
            problem.status,
            problem.code,
            problem.message
        ),
    }
});
