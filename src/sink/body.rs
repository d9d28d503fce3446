//! Reading a request body (HTTP/1.1 or gRPC over HTTP/2) within a size limit,
//! a deadline and the memory budget: each piece is reserved before it is kept.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Body;
use tokio::time::Instant;

use super::budget::Reservation;
use super::decode::{Refusal, RefusalKind};

/// Longest wait for room in the memory budget before a request is refused as busy.
pub(super) const BUDGET_WAIT: Duration = Duration::from_secs(2);

/// After refusing an oversized body we read (and discard) up to this much
/// more, so the client has finished sending and actually sees the 413
/// instead of a connection reset.
const DRAIN_MAX_BYTES: usize = 8 * 1024 * 1024;
const DRAIN_MAX_TIME: Duration = Duration::from_secs(2);

/// Why a body could not be read.
#[derive(Debug)]
pub(super) enum ReadError {
    /// Over the size limit; the rest of the body is still unread.
    TooLarge(Refusal),
    /// Refused (deadline passed, no room in the budget, or the connection failed).
    Refused(Refusal),
}

/// The next data frame: `Ok(None)` for a trailers frame, `None` at the end.
async fn next_data<B>(body: &mut B) -> Option<Result<Option<Bytes>, B::Error>>
where
    B: Body<Data = Bytes> + Unpin,
{
    let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
    Some(frame.map(|f| f.into_data().ok()))
}

/// Collects `body`, refusing it once it grows past `limit` or `deadline`
/// passes; `size_hint` (a declared length) sizes the buffer. Every byte of the
/// buffer is held in `reservation` before it is allocated.
pub(super) async fn read_body<B>(
    body: &mut B,
    limit: usize,
    size_hint: usize,
    deadline: Instant,
    reservation: &mut Reservation,
) -> Result<Bytes, ReadError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let slow = || {
        ReadError::Refused(Refusal::new(
            RefusalKind::Timeout,
            "the request body did not arrive in time",
        ))
    };
    // The common case, one frame of the declared length, is kept without a copy.
    let mut single: Option<Bytes> = None;
    let mut buf: Option<Vec<u8>> = None;
    let mut held = 0usize;
    loop {
        let item = match tokio::time::timeout_at(deadline, next_data(body)).await {
            Err(_) => return Err(slow()),
            Ok(None) => break,
            Ok(Some(item)) => item,
        };
        let data = match item {
            Err(e) => {
                return Err(ReadError::Refused(Refusal::new(
                    RefusalKind::Malformed,
                    format!("reading request body: {e}"),
                )))
            }
            Ok(None) => continue,
            Ok(Some(data)) => data,
        };
        let len = single.as_ref().map_or(0, Bytes::len) + buf.as_ref().map_or(0, Vec::len);
        if data.len() > limit - len {
            return Err(ReadError::TooLarge(Refusal::too_large(limit)));
        }
        // What the buffer will take after this frame; reserved before it is
        // allocated (the frame itself was allocated by the server, in pieces
        // bounded by its read buffer or HTTP/2 frame size).
        let capacity = match &buf {
            None if single.is_none() && (data.len() == size_hint || size_hint == 0) => data.len(),
            None => grown(0, len + data.len(), size_hint, limit),
            Some(b) if b.capacity() - b.len() >= data.len() => b.capacity(),
            Some(b) => grown(b.capacity(), len + data.len(), size_hint, limit),
        };
        if capacity > held {
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(BUDGET_WAIT);
            reservation
                .grow(capacity - held, wait)
                .await
                .map_err(|e| ReadError::Refused(e.into()))?;
            held = capacity;
        }
        match &mut buf {
            None if single.is_none() && capacity == data.len() => single = Some(data),
            None => {
                let mut b = Vec::with_capacity(capacity);
                if let Some(first) = single.take() {
                    b.extend_from_slice(&first);
                }
                b.extend_from_slice(&data);
                buf = Some(b);
            }
            Some(b) => {
                b.reserve_exact(capacity - b.len());
                b.extend_from_slice(&data);
            }
        }
    }
    Ok(match (single, buf) {
        (_, Some(b)) => Bytes::from(b),
        (Some(s), None) => s,
        (None, None) => Bytes::new(),
    })
}

/// The next buffer size: doubling from what arrived (a declared length is
/// never trusted beyond that, so a sender that declares much and sends little
/// holds little), but not past the declared length or the limit.
fn grown(capacity: usize, needed: usize, size_hint: usize, limit: usize) -> usize {
    let doubled = (capacity * 2).max(64 * 1024).max(needed);
    let capped = if size_hint >= needed {
        doubled.min(size_hint)
    } else {
        doubled
    };
    capped.min(limit)
}

/// Reads and discards a bounded amount of the rest of `body`, for a bounded time.
pub(super) async fn drain<B>(mut body: B)
where
    B: Body<Data = Bytes> + Unpin,
{
    let _ = tokio::time::timeout(DRAIN_MAX_TIME, async {
        let mut seen = 0usize;
        while let Some(Ok(data)) = next_data(&mut body).await {
            seen = seen.saturating_add(data.map_or(0, |d| d.len()));
            if seen > DRAIN_MAX_BYTES {
                break;
            }
        }
    })
    .await;
}
