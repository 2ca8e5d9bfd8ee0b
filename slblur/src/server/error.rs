//! `AppError`: every failure a client can see, with its HTTP status and stable code, rendered
//! as `{"error": {"code", "message"}}` — or as plain text for the seed wire format.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::codec::CodecError;
use crate::options::OptionError;
use crate::pipeline::FrameError;

/// A failed request: status, machine-readable code, human-readable message.
#[derive(Debug, Clone)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u32>,
    /// Seed clients parse text, not JSON.
    pub plain_text: bool,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AppError {
        AppError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            plain_text: false,
        }
    }

    pub fn retry_after(mut self, seconds: u32) -> AppError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn plain_text(mut self, plain: bool) -> AppError {
        self.plain_text = plain;
        self
    }

    pub fn overloaded(capacity: usize) -> AppError {
        AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "overloaded",
            format!("all {capacity} processing and queue slots are taken; retry shortly"),
        )
        .retry_after(1)
    }

    pub fn not_ready() -> AppError {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the model is still loading",
        )
        .retry_after(1)
    }

    pub fn body_too_large(limit: usize) -> AppError {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than the limit of {limit} bytes (SLBLUR_MAX_BODY_BYTES)"),
        )
    }
}

impl From<OptionError> for AppError {
    fn from(e: OptionError) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, "invalid_option", e.to_string())
    }
}

impl From<FrameError> for AppError {
    fn from(e: FrameError) -> AppError {
        let (status, code) = match &e {
            FrameError::Empty => (StatusCode::BAD_REQUEST, "empty_body"),
            FrameError::Base64(_) => (StatusCode::BAD_REQUEST, "invalid_base64"),
            FrameError::Codec(CodecError::NotAnImage(_)) => {
                (StatusCode::BAD_REQUEST, "not_an_image")
            }
            FrameError::Codec(CodecError::Corrupt { .. }) => {
                (StatusCode::BAD_REQUEST, "corrupt_image")
            }
            FrameError::Codec(CodecError::TooManyPixels { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "image_too_large")
            }
            FrameError::Codec(CodecError::Encode(..)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "encode_failed")
            }
            FrameError::Model(_) => (StatusCode::INTERNAL_SERVER_ERROR, "inference_failed"),
        };
        AppError::new(status, code, e.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = if self.plain_text {
            (
                self.status,
                format!("Error ({}): {}\n", self.code, self.message),
            )
                .into_response()
        } else {
            let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
            (self.status, axum::Json(body)).into_response()
        };
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
