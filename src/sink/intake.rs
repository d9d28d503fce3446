//! What the gRPC and HTTP receivers share once a body has been read: the
//! limits, the memory budget and the counters; decoding off the async threads
//! when it is heavy, and recording what was accepted.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::budget::{Budget, Reservation};
use super::decode::{decode, Refusal, RefusalKind, RequestLimits, Signal, Wire};
use super::stats::{Accepted, SinkStats, Transport};

/// Bodies above this are gunzipped and decoded on the blocking pool so a large
/// request cannot stall the async workers serving everyone else; gzip bodies
/// (which may inflate many times) above a sixty-fourth of it.
const BLOCKING_THRESHOLD: usize = 256 * 1024;

/// The receivers' shared state.
#[derive(Debug)]
pub(super) struct Intake {
    pub(super) stats: Arc<SinkStats>,
    pub(super) budget: Budget,
    pub(super) limits: RequestLimits,
    /// A request's body must arrive in full within this long.
    pub(super) body_timeout: Duration,
}

impl Intake {
    /// Counts a refusal by its kind and hands it back.
    pub(super) fn refuse(&self, refusal: Refusal) -> Refusal {
        self.stats.record_rejected(refusal.kind.as_str());
        refusal
    }

    /// Decodes and records one body that `reservation` already holds; the
    /// reservation is given back once the request is recorded.
    pub(super) async fn accept(
        &self,
        signal: Signal,
        wire: Wire,
        gzip: bool,
        raw: Bytes,
        mut reservation: Reservation,
        transport: Transport,
    ) -> Result<Accepted, Refusal> {
        let heavy = raw.len() > BLOCKING_THRESHOLD || (gzip && raw.len() > BLOCKING_THRESHOLD / 64);
        let limits = self.limits;
        // The reservation lives until the request is recorded (and dropped).
        let (decoded, _held) = if heavy {
            tokio::task::spawn_blocking(move || {
                let d = decode(signal, wire, gzip, &raw, &limits, &mut reservation);
                (d, Some(reservation))
            })
            .await
            .unwrap_or_else(|e| {
                let failed =
                    Refusal::new(RefusalKind::Malformed, format!("decoder task failed: {e}"));
                (Err(failed), None)
            })
        } else {
            let d = decode(signal, wire, gzip, &raw, &limits, &mut reservation);
            (d, Some(reservation))
        };
        match decoded {
            Ok(d) => Ok(self.stats.record(transport, d.payload_bytes, d.request)),
            Err(r) => Err(self.refuse(r)),
        }
    }
}
