//! Binary format: the body is the JPEG or PNG itself, both ways; timings travel in headers.

use axum::response::Response;

use super::{Reply, with_type};

pub fn respond(reply: Reply<'_>) -> Response {
    let mime = reply.processed.kind.mime();
    with_type(reply.processed.image, mime)
}
