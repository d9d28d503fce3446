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
#[derive(Clone, Debug)]
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

    /// Decodes and records one body; the reservation is given back (by the
    /// caller dropping it) once the request is recorded.
    fn decode_and_record(
        &self,
        signal: Signal,
        wire: Wire,
        gzip: bool,
        raw: &[u8],
        reservation: &mut Reservation,
        transport: Transport,
    ) -> Result<Accepted, Refusal> {
        match decode(signal, wire, gzip, raw, &self.limits, reservation) {
            Ok(d) => Ok(self.stats.record(transport, d.payload_bytes, d.request)),
            Err(r) => Err(self.refuse(r)),
        }
    }

    /// Decodes and records one body that `reservation` already holds, on the
    /// blocking pool when it is heavy.
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
        if !heavy {
            return self.decode_and_record(signal, wire, gzip, &raw, &mut reservation, transport);
        }
        // Recorded (and so dropped) on the thread that decoded it: freeing a
        // request's many allocations from another thread costs the allocator more.
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.decode_and_record(signal, wire, gzip, &raw, &mut reservation, transport)
        })
        .await
        .unwrap_or_else(|e| {
            Err(self.refuse(Refusal::new(
                RefusalKind::Malformed,
                format!("decoder task failed: {e}"),
            )))
        })
    }
}
