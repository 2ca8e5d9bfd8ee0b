//! Seed format, as the original Python function spoke it ([`slblur_protocol::seed`]): base64
//! text in, its text reply out.

use faas_server::Reply;
use slblur_protocol::seed;

use crate::pipeline::Processed;

pub fn respond(p: Processed) -> Reply {
    let text = seed::render(p.timings.ml, p.timings.total, &p.image);
    Reply::new(seed::CONTENT_TYPE, text)
}
