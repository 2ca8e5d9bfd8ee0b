//! The client's response parsing: whatever a server (or something posing as one) answers, the
//! row's fields or error text come out without a panic, and error texts stay short.
//!
//! Input: one byte for the wire format, one for the status, header lines (`name: value`) up to
//! an empty line, then the body.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use slblur_protocol::Wire;
use slblur_client::wire::{error_text, parse_reply};

const STATUSES: [u16; 8] = [200, 201, 400, 401, 413, 429, 500, 504];

fn headers(block: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in block.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    map
}

fuzz_target!(|data: &[u8]| {
    let [w, s, rest @ ..] = data else {
        return;
    };
    let wire = Wire::ALL[usize::from(*w) % Wire::ALL.len()];
    let status =
        StatusCode::from_u16(STATUSES[usize::from(*s) % STATUSES.len()]).expect("a valid status");
    let (head, body) = match rest.windows(2).position(|p| p == b"\n\n") {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (&rest[..0], rest),
    };
    let headers = headers(head);
    let body = Bytes::copy_from_slice(body);
    if status.is_success() {
        if let Ok(reply) = parse_reply(wire, &headers, &body) {
            // What --smooth and the masked_area column do with the returned boxes.
            assert!(reply.detected().len() <= reply.boxes.len());
            let share = slblur_protocol::boxes::union_share(&reply.boxes, 640, 360);
            assert!((0.0..=1.0 + 1e-9).contains(&share), "share {share}");
            // What --save-video does with the returned frame.
            if let Some(image) = reply.image {
                let _ = image.to_frame();
            }
        }
    } else {
        let text = error_text(status, &headers, &body);
        // `wire::shorten` keeps 200 characters and an ellipsis.
        assert!(
            text.chars().count() <= 201,
            "error text too long: {}",
            text.len()
        );
    }
});
