//! Binary format: the body is the JPEG or PNG itself, both ways; timings travel in headers.

use faas_server::Reply;

use crate::pipeline::Processed;

pub fn respond(processed: Processed) -> Reply {
    Reply::new(processed.kind.mime(), processed.image)
}
