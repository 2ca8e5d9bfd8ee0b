//! How the server answers a failure: `{"error": {"code", "message"}}` as JSON, or the line
//! `Error (code): message` for clients that read text. `code` is stable and machine-readable
//! (`overloaded`, `body_too_large`, …); `message` says what to do about it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The JSON error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(borrow)]
    pub error: ErrorDetail<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail<'a> {
    #[serde(borrow)]
    pub code: Cow<'a, str>,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

impl<'a> ErrorBody<'a> {
    pub fn new(code: &'a str, message: &'a str) -> ErrorBody<'a> {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }

    /// The plain-text form: `Error (code): message` and a newline.
    pub fn to_text(&self) -> String {
        format!("Error ({}): {}\n", self.error.code, self.error.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_text_is_one_line() {
        let body = ErrorBody::new("overloaded", "all 3 slots are taken; retry shortly");
        let json = serde_json::to_string(&body).expect("serializable");
        assert_eq!(
            json,
            r#"{"error":{"code":"overloaded","message":"all 3 slots are taken; retry shortly"}}"#
        );
        assert_eq!(
            serde_json::from_str::<ErrorBody>(&json).ok(),
            Some(body.clone())
        );
        assert_eq!(
            body.to_text(),
            "Error (overloaded): all 3 slots are taken; retry shortly\n"
        );
    }
}
