//! Request bodies in memory: read once into one buffer of their declared length (no
//! collect-then-concatenate copy), and counted against the server's body budget (`body-budget`)
//! for as long as their call runs, together with the output the call answers with. A call
//! whose body does not fit waits for room up to `queue-timeout`, then gets 503
//! [`BUDGET_EXHAUSTED`]; a body larger than the whole budget or than the route's bound is 413.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::sync::Notify;

use crate::bounds::show_size;
use crate::error::{codes, ApiError};

/// The budget is full and stayed full while the call waited.
pub const BUDGET_EXHAUSTED: &str = "faasbox.server.busy";

/// How much a body of unknown length reserves at a time while it is read.
const GROWTH_STEP: u64 = 1 << 20;

/// The bytes of request bodies (and their calls' outputs) the server holds at most at once.
pub struct BodyBudget {
    limit: u64,
    used: Mutex<u64>,
    freed: Notify,
}

impl BodyBudget {
    pub fn new(limit: u64) -> Arc<BodyBudget> {
        Arc::new(BodyBudget {
            limit,
            used: Mutex::new(0),
            freed: Notify::new(),
        })
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn try_add(&self, bytes: u64) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if *used + bytes <= self.limit || *used == 0 {
            *used += bytes;
            true
        } else {
            false
        }
    }

    fn force_add(&self, bytes: u64) {
        *self.used.lock().unwrap_or_else(|p| p.into_inner()) += bytes;
    }

    fn release(&self, bytes: u64) {
        {
            let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
            *used = used.saturating_sub(bytes);
        }
        self.freed.notify_waiters();
    }

    /// Reserves `bytes`, waiting up to `wait` for room.
    pub async fn reserve(
        self: &Arc<Self>,
        bytes: u64,
        wait: Duration,
    ) -> Result<BodyPermit, ApiError> {
        let mut permit = BodyPermit {
            budget: self.clone(),
            bytes: 0,
        };
        permit.grow(bytes, wait).await?;
        Ok(permit)
    }

    /// Catchable, like a full queue: a flow may retry it.
    fn busy(&self, bytes: u64, wait: Duration) -> ApiError {
        ApiError::function(
            StatusCode::SERVICE_UNAVAILABLE,
            BUDGET_EXHAUSTED,
            format!(
                "the server holds as many request bodies as its body budget allows ({}, the \
                 body-budget setting) and no room for {} more came free within {}s; retry later",
                show_size(self.limit),
                show_size(bytes),
                wait.as_secs()
            ),
            true,
        )
    }
}

/// Bytes held against the budget; given back when dropped.
pub struct BodyPermit {
    budget: Arc<BodyBudget>,
    bytes: u64,
}

impl std::fmt::Debug for BodyPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BodyPermit({} bytes)", self.bytes)
    }
}

impl BodyPermit {
    /// Reserves `bytes` more, waiting up to `wait` for room. An empty budget always takes
    /// one reservation, however large, so a body the budget cannot hold is never stuck.
    pub async fn grow(&mut self, bytes: u64, wait: Duration) -> Result<(), ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let freed = self.budget.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.budget.try_add(bytes) {
                self.bytes += bytes;
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(self.budget.busy(bytes, wait));
            }
        }
    }

    /// Counts `bytes` the call holds already (its output) whether or not there is room: new
    /// calls wait until it is given back.
    pub fn hold(&mut self, bytes: u64) {
        self.budget.force_add(bytes);
        self.bytes += bytes;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for BodyPermit {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.release(self.bytes);
        }
    }
}

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
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::TOO_LARGE,
            format!(
                "the request body is larger than this route takes ({}); send less",
                show_size(max)
            ),
        )
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
    async fn calls_wait_for_room_and_then_get_a_503() {
        let budget = BodyBudget::new(100);
        let wait = Duration::from_millis(50);
        let a = budget.reserve(60, wait).await.unwrap();
        let err = budget.reserve(60, wait).await.unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code.as_str()),
            (503, BUDGET_EXHAUSTED)
        );
        assert!(err.message.contains("body-budget"), "{}", err.message);
        // Room that comes free in time is taken.
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(60, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        let b = waiting.await.unwrap().unwrap();
        assert_eq!(budget.used(), 60);
        drop(b);
        assert_eq!(budget.used(), 0);
        // An empty budget takes one body larger than itself; an output is held regardless.
        let mut big = budget.reserve(500, wait).await.unwrap();
        big.hold(50);
        assert_eq!(budget.used(), 550);
        assert!(budget.reserve(1, wait).await.is_err());
        drop(big);
        assert_eq!(budget.used(), 0);
    }

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
