//! [`Problem`]: every failure a client can see, with its HTTP status and stable code, rendered
//! as the protocol's [`ErrorBody`]: `{"error": {"code", "message"}}` or, for clients that read
//! text, `Error (code): message`.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use faas_protocol::ErrorBody;

/// How an error is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    Json,
    PlainText,
}

/// A failed request: status, machine-readable code, human-readable message.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u32>,
    /// The request's kind for metrics, when the handler got far enough to know it.
    pub kind: Option<&'static str>,
    /// Set by the handler when it knows better than [`crate::Function::error_style`].
    pub style: Option<ErrorStyle>,
}

impl Problem {
    /// Messages longer than [`MAX_MESSAGE_BYTES`] are clipped: they may quote client input.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Problem {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE_BYTES {
            message = clip(&message, MAX_MESSAGE_BYTES).into_owned();
        }
        Problem {
            status,
            code,
            message,
            retry_after: None,
            kind: None,
            style: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(code: &'static str, message: impl Into<String>) -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, code, message)
    }

    pub fn retry_after(mut self, seconds: u32) -> Problem {
        self.retry_after = Some(seconds);
        self
    }

    pub fn kind(mut self, kind: &'static str) -> Problem {
        self.kind = Some(kind);
        self
    }

    pub fn style(mut self, style: ErrorStyle) -> Problem {
        self.style = Some(style);
        self
    }

    pub fn overloaded(capacity: usize) -> Problem {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "overloaded",
            format!("all {capacity} processing and queue slots are taken; retry shortly"),
        )
        .retry_after(1)
    }

    /// `what` says what the path is for, e.g. "POST to the function".
    pub fn method_not_allowed(method: &Method, what: &str) -> Problem {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{} is not served here: {what} (GET /_/health and /metrics, POST the function)",
                clip(method.as_str(), 32)
            ),
        )
    }

    /// `variable` names the token file setting.
    pub fn unauthorized(variable: &str) -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("send the function's token as Authorization: Bearer <token> (see {variable})"),
        )
    }

    pub fn not_ready() -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the function is still warming up",
        )
        .retry_after(1)
    }

    /// 499 (nginx's "client closed request"): for logs and metrics, as nobody reads it.
    pub fn abandoned() -> Problem {
        Problem::new(
            StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            "client_closed_request",
            "the client went away before the answer was ready",
        )
    }

    pub fn draining() -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "draining", "shutting down")
    }

    /// `variable` names the setting, so the message says how to raise the limit.
    pub fn body_too_large(limit: usize, variable: &str) -> Problem {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than the limit of {limit} bytes ({variable})"),
        )
    }

    /// What the client is told. A 500 is a fault of the server or the function, and its message
    /// may be a library's internal text: the client gets a generic message naming the request
    /// id instead, and the detail stays in the log line the server writes under that id.
    pub fn for_client(mut self, request_id: &str) -> Problem {
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            self.message = format!(
                "the function failed on this request; its log has the details under request id {}",
                clip(request_id, 128)
            );
        }
        self
    }

    /// The response in `style` (unless the problem chose its own).
    pub fn into_response_styled(self, style: ErrorStyle) -> Response {
        let style = self.style.unwrap_or(style);
        let body = ErrorBody::new(self.code, &self.message);
        let mut response = match style {
            ErrorStyle::PlainText => (self.status, body.to_text()).into_response(),
            ErrorStyle::Json => (self.status, axum::Json(body)).into_response(),
        };
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Longest message a client or a log line gets.
pub const MAX_MESSAGE_BYTES: usize = 1024;

pub use faas_protocol::clip;

/// Client-supplied text made safe for one log line: control characters (newlines above all,
/// which would forge lines in a text log) are escaped, and the length is bounded.
pub fn for_log(text: &str) -> String {
    let clipped = clip(text, MAX_MESSAGE_BYTES);
    clipped
        .chars()
        .flat_map(|c| {
            let escape = c.is_control();
            let escaped: Vec<char> = if escape {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.into_response_styled(ErrorStyle::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_clipped_and_logs_escape_control_characters() {
        let long = "x".repeat(40 << 20);
        let p = Problem::bad_request("bad", format!("unknown option {long}"));
        assert!(
            p.message.len() < MAX_MESSAGE_BYTES + 32,
            "{}",
            p.message.len()
        );
        assert!(p.message.ends_with(&format!("({} bytes)", long.len() + 15)));
        assert_eq!(for_log("x\nFORGED line=1\r\t"), "x\\nFORGED line=1\\r\\t");
        assert_eq!(clip("héllo", 2), "h… (6 bytes)");
    }

    #[test]
    fn json_and_plain_text_carry_code_message_and_retry_after() {
        let r = Problem::overloaded(3).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let r = Problem::bad_request("bad", "no").into_response_styled(ErrorStyle::PlainText);
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .is_ok_and(|t| t.starts_with("text/plain"))
        );
        let r = Problem::bad_request("bad", "no")
            .style(ErrorStyle::Json)
            .into_response_styled(ErrorStyle::PlainText);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/json",
            "the problem's own style wins"
        );
    }
}
