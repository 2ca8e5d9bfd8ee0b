//! Seed format, as the original Python function spoke it: the body is the base64 text of a PNG
//! (no Content-Type); the answer is plain text whose lines the original client read with regexes:
//! `Elapsed ML time: <s>`, `Total time: <s>`, then `{'text': 'serveRR', 'img': '<base64>'}` —
//! here `img` carries the anonymized PNG (the original left it empty).

use faas_server::Reply;

use crate::pipeline::Processed;

pub fn respond(p: Processed) -> Reply {
    let mut text = format!(
        "Elapsed ML time: {:.6}\nTotal time: {:.6}\n{{'text': 'serveRR', 'img': '",
        p.timings.ml / 1000.0,
        p.timings.total / 1000.0
    )
    .into_bytes();
    text.reserve(p.image.len() + 3);
    text.extend_from_slice(&p.image);
    text.extend_from_slice(b"'}\n");
    Reply::new("text/plain; charset=utf-8", text)
}
