//! JSON format: `{"image": "<base64>", ...options}` in; the image, faces, per-stage timings and
//! request facts out.

use faas_server::{Context, Problem, Reply};
use serde::Serialize;

use crate::detect::{Face, Size};
use crate::options::{FrameOptions, ImageKind};
use crate::pipeline::{Processed, Timings};

#[derive(Serialize)]
struct Body<'a> {
    image: &'a str,
    format: ImageKind,
    faces: &'a [Face],
    timings_ms: Timings,
    input: Size,
    inference: Size,
    cold: bool,
    instance: &'a str,
    request_id: &'a str,
}

/// Splits a JSON request into the base64 image text and the options it sets.
pub fn parse_request(body: &[u8], options: &mut FrameOptions) -> Result<Vec<u8>, Problem> {
    let invalid = |message: String| Problem::bad_request("invalid_json", message);
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("the body is not valid JSON: {e}")))?;
    let serde_json::Value::Object(mut fields) = value else {
        return Err(invalid(
            "the body must be a JSON object with an \"image\" field".into(),
        ));
    };
    let image = match fields.remove("image") {
        Some(serde_json::Value::String(s)) => s.into_bytes(),
        Some(_) => return Err(invalid("\"image\" must be a base64 string".into())),
        None => {
            return Err(invalid(
                "the \"image\" field (base64 JPEG or PNG) is missing".into(),
            ));
        }
    };
    options.apply_json(&fields)?;
    Ok(image)
}

pub fn respond(p: Processed, context: &Context) -> Result<Reply, Problem> {
    let body = Body {
        // The pipeline produced base64, which is ASCII.
        image: std::str::from_utf8(&p.image).unwrap_or_default(),
        format: p.kind,
        faces: &p.faces,
        timings_ms: p.timings,
        input: p.input,
        inference: p.inference,
        cold: context.cold,
        instance: &context.instance,
        request_id: &context.request_id,
    };
    let bytes =
        serde_json::to_vec(&body).map_err(|e| Problem::internal("encode_failed", e.to_string()))?;
    Ok(Reply::new("application/json", bytes))
}
