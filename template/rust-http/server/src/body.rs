//! Request bodies: refused when encoded in a way the server does not decode, read whole within
//! the size limit, the body deadline and the server's budget of buffered bytes (declared or
//! streamed — of-watchdog forwards bodies chunked), and drained when they will not be used.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most this much of a body that will not be used is read and thrown away …
const LINGER_BYTES: usize = 64 << 20;
/// … for at most this long.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    /// The whole body did not arrive within the body deadline.
    TimedOut,
    /// The server's budget of buffered body bytes is spent.
    Busy,
    /// A transfer or content coding other than chunked/identity.
    Encoding {
        header: &'static str,
        value: String,
    },
    Read(String),
}

/// A body in hand, with its share of the buffered-bytes budget (returned when dropped).
pub struct Received {
    pub bytes: Bytes,
    pub budget: OwnedSemaphorePermit,
}

/// Refuses bodies the server would take for plain bytes but are not: hyper decodes only the
/// chunked transfer coding, and the function wants the image itself, not a gzip of it.
pub fn check_encoding(headers: &HeaderMap) -> Result<(), BodyError> {
    for (name, accepted) in [
        (header::TRANSFER_ENCODING, "chunked"),
        (header::CONTENT_ENCODING, "identity"),
    ] {
        for value in headers.get_all(&name) {
            let text = String::from_utf8_lossy(value.as_bytes());
            if text
                .split(',')
                .map(str::trim)
                .any(|coding| !coding.eq_ignore_ascii_case(accepted))
            {
                return Err(BodyError::Encoding {
                    header: if name == header::TRANSFER_ENCODING {
                        "Transfer-Encoding"
                    } else {
                        "Content-Encoding"
                    },
                    value: text.into_owned(),
                });
            }
        }
    }
    Ok(())
}

/// Reads the whole body within `timeout`, refusing it as soon as it passes `limit` or the
/// `budget` of buffered bytes runs out.
pub async fn read_body(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
    budget: &Arc<Semaphore>,
    timeout: Duration,
) -> Result<Received, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        discard(body).await;
        return Err(BodyError::TooLarge);
    }
    let take = |bytes: usize| {
        u32::try_from(bytes)
            .ok()
            .and_then(|n| budget.clone().try_acquire_many_owned(n).ok())
            .ok_or(BodyError::Busy)
    };
    let read = async {
        // Charged as bytes arrive, not as declared: a head that only claims a large body must
        // not hold the budget.
        let mut held = take(0)?;
        let mut data = Vec::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
            if let Ok(chunk) = frame.into_data() {
                if data.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge);
                }
                data.extend_from_slice(&chunk);
                if data.len() > held.num_permits() {
                    held.merge(take(data.len() - held.num_permits())?);
                }
            }
        }
        Ok(Received {
            bytes: data.into(),
            budget: held,
        })
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(received)) => Ok(received),
        Ok(Err(e)) => {
            if matches!(e, BodyError::TooLarge | BodyError::Busy) {
                discard(body).await;
            }
            Err(e)
        }
        Err(_) => Err(BodyError::TimedOut),
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(name, HeaderValue::from_str(value).expect("valid"));
        }
        h
    }

    #[test]
    fn only_chunked_and_identity_codings_pass() {
        assert!(check_encoding(&HeaderMap::new()).is_ok());
        assert!(check_encoding(&headers(&[(header::TRANSFER_ENCODING, "chunked")])).is_ok());
        assert!(check_encoding(&headers(&[(header::CONTENT_ENCODING, "identity")])).is_ok());
        for (name, value) in [
            (header::TRANSFER_ENCODING, "gzip, chunked"),
            (header::CONTENT_ENCODING, "gzip"),
            (header::CONTENT_ENCODING, "br"),
        ] {
            let err = check_encoding(&headers(&[(name, value)])).expect_err(value);
            assert!(matches!(err, BodyError::Encoding { .. }), "{value}");
        }
    }

    #[tokio::test]
    async fn the_budget_bounds_bytes_held_and_comes_back() {
        let budget = Arc::new(Semaphore::new(10));
        let body = || Body::from(vec![7u8; 8]);
        let first = read_body(body(), &HeaderMap::new(), 100, &budget, LINGER_TIME)
            .await
            .expect("fits the budget");
        assert_eq!(first.bytes.len(), 8);
        assert_eq!(budget.available_permits(), 2);
        let second = read_body(body(), &HeaderMap::new(), 100, &budget, LINGER_TIME).await;
        assert!(matches!(second, Err(BodyError::Busy)));
        drop(first);
        assert_eq!(budget.available_permits(), 10, "released with the body");
    }
}
