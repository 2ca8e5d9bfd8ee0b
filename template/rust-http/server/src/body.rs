//! Request bodies: read whole within a limit (declared or streamed — of-watchdog forwards
//! bodies chunked), and drained when the function will not use them.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;

use crate::Problem;

/// At most this much of a body that will not be used is read and thrown away …
const LINGER_BYTES: usize = 64 << 20;
/// … for at most this long.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    Read(String),
}

/// Reads the whole body, refusing it as soon as it passes `limit`.
pub async fn read_body(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        discard(body).await;
        return Err(BodyError::TooLarge);
    }
    let mut data = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        if let Ok(chunk) = frame.into_data() {
            if data.len() + chunk.len() > limit {
                discard(body).await;
                return Err(BodyError::TooLarge);
            }
            data.extend_from_slice(&chunk);
        }
    }
    Ok(data.into())
}

impl BodyError {
    pub fn into_problem(self, limit: usize, variable: &str) -> Problem {
        match self {
            BodyError::TooLarge => Problem::body_too_large(limit, variable),
            BodyError::Read(e) => {
                Problem::bad_request("body_read_failed", format!("could not read the body: {e}"))
            }
        }
    }
}

/// Reads and drops the rest of a body the function will not use ("lingering close"): a server
/// that answers early and closes makes most clients report a broken pipe instead of the answer.
pub async fn discard(mut body: Body) {
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > LINGER_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}
