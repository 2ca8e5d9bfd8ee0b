//! JSON format: `{"image": "<base64>", ...options}` in; the image, faces, per-stage timings and
//! request facts out.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{Reply, with_type};
use crate::detect::{Face, Size};
use crate::options::{FrameOptions, ImageKind};
use crate::pipeline::Timings;
use crate::server::AppError;

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
pub fn parse_request(body: &[u8], options: &mut FrameOptions) -> Result<Vec<u8>, AppError> {
    let invalid = |message: String| AppError::new(StatusCode::BAD_REQUEST, "invalid_json", message);
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

pub fn respond(reply: Reply<'_>) -> Response {
    let p = &reply.processed;
    let body = Body {
        // The pipeline produced base64, which is ASCII.
        image: std::str::from_utf8(&p.image).unwrap_or_default(),
        format: p.kind,
        faces: &p.faces,
        timings_ms: p.timings,
        input: p.input,
        inference: p.inference,
        cold: reply.cold,
        instance: reply.instance,
        request_id: reply.request_id,
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => with_type(bytes, "application/json"),
        Err(e) => axum::response::IntoResponse::into_response(AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encode_failed",
            e.to_string(),
        )),
    }
}
