//! Seed format, as the original Python function spoke it: the body is the base64 text of a PNG
//! (no Content-Type); the answer is plain text whose lines the original client read with regexes:
//! `Elapsed ML time: <s>`, `Total time: <s>`, then `{'text': 'serveRR', 'img': '<base64>'}` —
//! here `img` carries the anonymized PNG (the original left it empty).

use axum::response::Response;

use super::{Reply, with_type};

pub fn respond(reply: Reply<'_>) -> Response {
    let p = &reply.processed;
    let mut text = format!(
        "Elapsed ML time: {:.6}\nTotal time: {:.6}\n{{'text': 'serveRR', 'img': '",
        p.timings.ml / 1000.0,
        p.timings.total / 1000.0
    )
    .into_bytes();
    text.reserve(p.image.len() + 3);
    text.extend_from_slice(&p.image);
    text.extend_from_slice(b"'}\n");
    with_type(text, "text/plain; charset=utf-8")
}
