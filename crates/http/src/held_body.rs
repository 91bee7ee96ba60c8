//! Request bodies read into memory: once, into one buffer of their declared length (no
//! collect-then-concatenate copy), reserved in the server's body budget
//! ([`faasbox_core::bodies::BodyBudget`]) before they are read; a body larger than the route's bound
//! is 413. The answer's body keeps the call's place in the budget until it has been sent.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use super::error::ApiError;
use faasbox_core::bodies::{BodyBudget, BodyPermit};
use faasbox_core::bounds::show_size;
use faasbox_core::failure::Failure;

/// How much a body of unknown length reserves at a time while it is read.
const GROWTH_STEP: u64 = 1 << 20;

/// A request body held in memory, and its place in the budget.
#[derive(Debug)]
pub struct HeldBody {
    pub bytes: Bytes,
    pub permit: BodyPermit,
}

/// Reads `body` into one buffer: at most `max` bytes (else 413 naming `max`), reserved in the
/// budget before they are read (its declared length at once, else as it grows).
pub async fn read(
    body: Body,
    headers: &HeaderMap,
    max: u64,
    budget: &Arc<BodyBudget>,
    wait: Duration,
) -> Result<HeldBody, ApiError> {
    let too_large = || {
        ApiError::from(Failure::too_large(format!(
            "the request body is larger than this route takes ({}); send less",
            show_size(max)
        )))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(too_large());
    }
    let mut permit = budget.reserve(declared.unwrap_or(0), wait).await?;
    let capacity = usize::try_from(declared.unwrap_or(0)).map_err(|_| too_large())?;
    let mut buffer = BytesMut::with_capacity(capacity);
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("the request body cannot be read: {e}")))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        let len = (buffer.len() + chunk.len()) as u64;
        if len > max {
            return Err(too_large());
        }
        while len > permit.bytes() {
            permit.grow(GROWTH_STEP.min(max), wait).await?;
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(HeldBody {
        bytes: buffer.freeze(),
        permit,
    })
}

/// An answer's body that keeps `permit` (the call's place in the budget) until it has been
/// sent: the server holds the output until then.
pub fn response_body(bytes: Bytes, permit: Option<BodyPermit>) -> Body {
    Body::new(HeldResponse {
        bytes: Some(bytes),
        _permit: permit,
    })
}

struct HeldResponse {
    bytes: Option<Bytes>,
    _permit: Option<BodyPermit>,
}

impl http_body::Body for HeldResponse {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.bytes.take().map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_are_read_whole_and_bounded() {
        let budget = BodyBudget::new(1 << 20);
        let wait = Duration::from_millis(50);
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "5".parse().unwrap());
        let held = read(Body::from("hello"), &headers, 10, &budget, wait)
            .await
            .unwrap();
        assert_eq!(&held.bytes[..], b"hello");
        assert_eq!(budget.used(), 5);
        drop(held);
        // Declared too large: refused before reading; undeclared: refused once past.
        headers.insert(header::CONTENT_LENGTH, "11".parse().unwrap());
        let err = read(Body::from("x".repeat(11)), &headers, 10, &budget, wait)
            .await
            .unwrap_err();
        assert_eq!(err.status.as_u16(), 413);
        let chunks = futures_util::stream::iter(
            (0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"abcd"))),
        );
        let err = read(
            Body::from_stream(chunks),
            &HeaderMap::new(),
            10,
            &budget,
            wait,
        )
        .await
        .unwrap_err();
        assert_eq!(err.status.as_u16(), 413);
        assert_eq!(budget.used(), 0, "nothing held after a refusal");
    }
}
