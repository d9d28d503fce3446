//! Exact counters of one output, per signal, and the log of acknowledged
//! traces that `otelsim verify` reads. Every item handed to an output ends up
//! counted as acknowledged, failed, or dropped because the receiver does not
//! accept its signal.

use super::{ExportConfig, Signal};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Exact counters of one signal; items are spans, data points or log records.
#[derive(Debug, Default)]
pub struct SignalCounters {
    /// Items handed to the output by the producers.
    pub generated: AtomicU64,
    /// Items in requests that were started (once each, whatever the retries).
    pub sent: AtomicU64,
    /// Items the receiver accepted.
    pub acked: AtomicU64,
    /// Items that will never be delivered: refused, given up on, or never sent.
    pub failed: AtomicU64,
    /// Items not delivered because the receiver does not accept their signal
    /// (which is then off for the rest of the run): not failures.
    pub dropped: AtomicU64,
    /// Why the signal is off for the rest of the run, once it is.
    off: OnceLock<String>,
    /// Requests started (a retried request counts once).
    pub requests_sent: AtomicU64,
    /// Requests the receiver answered with success, partial successes included.
    pub requests_acked: AtomicU64,
    /// Requests given up on.
    pub requests_failed: AtomicU64,
}

/// A copy of one signal's [`SignalCounters`] at one moment, as reports show it.
#[derive(Clone, Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct SignalSnapshot {
    /// Items handed to the output.
    pub generated: u64,
    /// Items in requests that were started.
    pub sent: u64,
    /// Items the receiver accepted.
    pub acked: u64,
    /// Items that will never be delivered.
    pub failed: u64,
    /// Items not delivered because the receiver does not accept the signal.
    pub dropped_by_receiver: u64,
    /// Why the signal was turned off during the run (`None`: it was not).
    pub turned_off: Option<String>,
    /// Requests started.
    pub requests_sent: u64,
    /// Requests answered with success.
    pub requests_acked: u64,
    /// Requests given up on.
    pub requests_failed: u64,
}

impl SignalCounters {
    /// Turns the signal off for the rest of the run; `true` when this call did
    /// (so it is announced once).
    pub(crate) fn turn_off(&self, reason: &str) -> bool {
        self.off.set(reason.to_string()).is_ok()
    }

    /// Whether the receiver's refusal turned the signal off.
    pub fn is_off(&self) -> bool {
        self.off.get().is_some()
    }

    fn snapshot(&self) -> SignalSnapshot {
        SignalSnapshot {
            generated: self.generated.load(Relaxed),
            sent: self.sent.load(Relaxed),
            acked: self.acked.load(Relaxed),
            failed: self.failed.load(Relaxed),
            dropped_by_receiver: self.dropped.load(Relaxed),
            turned_off: self.off.get().cloned(),
            requests_sent: self.requests_sent.load(Relaxed),
            requests_acked: self.requests_acked.load(Relaxed),
            requests_failed: self.requests_failed.load(Relaxed),
        }
    }
}

/// Exact counters of the export pipeline.
#[derive(Debug, Default)]
pub struct Counters {
    /// Traces handed to the output (once each, even when realtime mode sends them span by
    /// span).
    pub traces_generated: AtomicU64,
    /// Counters of spans.
    pub spans: SignalCounters,
    /// Counters of metric data points.
    pub points: SignalCounters,
    /// Counters of log records.
    pub logs: SignalCounters,
    /// Request attempts repeated after a retryable failure.
    pub retries: AtomicU64,
    /// Retries that waited as the receiver asked (Retry-After, RetryInfo).
    pub retry_hints: AtomicU64,
    /// Request bytes sent, every attempt included (HTTP bodies after gzip, gRPC messages before
    /// it).
    pub bytes_sent: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// When the endpoint started failing (reset by any success).
    failing_since: Mutex<Option<Instant>>,
    pub(crate) fatal: Mutex<Option<String>>,
}

/// A copy of [`Counters`] at one moment, as the summary and the run report show it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CountersSnapshot {
    /// Traces handed to the output.
    pub traces_generated: u64,
    /// Span counters.
    pub spans: SignalSnapshot,
    /// Metric data point counters.
    pub metric_points: SignalSnapshot,
    /// Log record counters.
    pub log_records: SignalSnapshot,
    /// Request attempts repeated after a retryable failure.
    pub retries: u64,
    /// Retries that waited as the receiver asked (Retry-After, RetryInfo).
    pub retry_hints: u64,
    /// Request bytes sent, every attempt included.
    pub bytes_sent: u64,
    /// The first error met (a failed request, a refusal), for the summary.
    pub first_error: Option<String>,
}

impl CountersSnapshot {
    /// Items of every signal that could not be delivered.
    pub fn failed(&self) -> u64 {
        self.spans.failed + self.metric_points.failed + self.log_records.failed
    }
}

impl Counters {
    /// The counters of an output that writes spans only: log records and metric
    /// points are off for it from the start (workers skip making them when no
    /// other output wants them), for the reason `why`; any it is handed anyway
    /// count as dropped.
    pub(crate) fn spans_only(why: &str) -> Counters {
        let c = Counters::default();
        c.logs.turn_off(why);
        c.points.turn_off(why);
        c
    }

    /// Reads every counter (each one atomically, not all of them at one instant).
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            traces_generated: self.traces_generated.load(Relaxed),
            spans: self.spans.snapshot(),
            metric_points: self.points.snapshot(),
            log_records: self.logs.snapshot(),
            retries: self.retries.load(Relaxed),
            retry_hints: self.retry_hints.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            first_error: self.first_error.lock().map(|e| e.clone()).unwrap_or(None),
        }
    }

    /// The counters of one signal.
    pub(crate) fn of(&self, s: Signal) -> &SignalCounters {
        match s {
            Signal::Traces => &self.spans,
            Signal::Metrics => &self.points,
            Signal::Logs => &self.logs,
        }
    }

    pub(crate) fn note_error(&self, msg: &str) {
        if let Ok(mut e) = self.first_error.lock() {
            if e.is_none() {
                *e = Some(msg.to_string());
            }
        }
    }

    pub(crate) fn mark_healthy(&self) {
        if let Ok(mut f) = self.failing_since.lock() {
            *f = None;
        }
    }

    /// Starts (or continues) the failing clock; past the budget the run is
    /// failing. Gives the reason when this call made the run fail.
    pub(crate) fn mark_failing(&self, cfg: &ExportConfig, msg: &str) -> Option<String> {
        let since = {
            let mut f = self.failing_since.lock().ok()?;
            *f.get_or_insert_with(Instant::now)
        };
        if since.elapsed() < cfg.retry_budget {
            return None;
        }
        self.set_fatal(&format!(
            "OTLP endpoint {} failing for {:.0?}: {msg}",
            super::redact_url(&cfg.endpoint),
            since.elapsed()
        ))
    }

    /// Stops the run for `reason`, unless it is stopping already; gives the
    /// reason when this call stopped it (so it is announced once).
    pub(crate) fn set_fatal(&self, reason: &str) -> Option<String> {
        let mut fatal = self.fatal.lock().ok()?;
        if fatal.is_some() {
            return None;
        }
        *fatal = Some(reason.to_string());
        Some(reason.to_string())
    }

    /// The reason the run must stop (endpoint failing beyond the retry budget).
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }
}

/// A trace as the receiver should see it: its id and how many spans it has.
pub type TraceDigest = ([u8; 16], u32);

/// The traces a receiver acknowledged in full, for `otelsim verify`. A trace
/// sent in several requests (split because it is larger than a request, or
/// span by span in realtime mode) is acknowledged only when every part is: a
/// part that failed takes its trace off the list. Bounded: past `cap` entries
/// only the count of unlisted ones grows.
#[derive(Debug)]
pub struct AckLog {
    cap: usize,
    inner: Mutex<AckEntries>,
    unlisted: AtomicU64,
}

#[derive(Debug, Default)]
struct AckEntries {
    /// Traces acknowledged in one request.
    whole: Vec<TraceDigest>,
    /// Acknowledged parts of traces sent in several requests.
    parts: Vec<TraceDigest>,
    /// Traces with a part that failed (at most `cap`).
    failed_parts: Vec<[u8; 16]>,
    /// More parts failed than `failed_parts` holds: no listed part can be trusted.
    failed_overflow: bool,
}

impl AckLog {
    /// A log that lists at most `cap` traces and only counts the rest.
    pub fn new(cap: usize) -> Self {
        AckLog {
            cap,
            inner: Mutex::new(AckEntries::default()),
            unlisted: AtomicU64::new(0),
        }
    }

    /// An acknowledged request's traces; `parts` (sorted): the ids among them of
    /// which the request held only a part.
    pub(crate) fn record(&self, traces: &[TraceDigest], parts: &[[u8; 16]]) {
        let Ok(mut e) = self.inner.lock() else {
            return;
        };
        let mut room = self.cap.saturating_sub(e.whole.len() + e.parts.len());
        let mut unlisted = 0;
        for d in traces {
            if room == 0 {
                unlisted += 1;
                continue;
            }
            room -= 1;
            if parts.binary_search(&d.0).is_ok() {
                e.parts.push(*d);
            } else {
                e.whole.push(*d);
            }
        }
        self.unlisted.fetch_add(unlisted, Relaxed);
    }

    /// Parts of traces in a request that failed (or was partly rejected): their
    /// traces are not acknowledged in full, whatever their other parts got.
    pub(crate) fn record_failed(&self, parts: &[[u8; 16]]) {
        if parts.is_empty() {
            return;
        }
        let Ok(mut e) = self.inner.lock() else {
            return;
        };
        let room = self
            .cap
            .saturating_sub(e.failed_parts.len())
            .min(parts.len());
        e.failed_parts.extend_from_slice(&parts[..room]);
        e.failed_overflow |= room < parts.len();
    }

    /// The acknowledged traces (sorted by id; a trace sent in parts once per
    /// part) and how many were left unlisted. Parts of traces with a failed part
    /// are dropped; if there were too many failed parts to remember, every part
    /// is (and counted as unlisted: acknowledged, perhaps, but not checkable).
    pub fn take(&self) -> (Vec<TraceDigest>, u64) {
        let e = self
            .inner
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default();
        let AckEntries {
            mut whole,
            mut parts,
            mut failed_parts,
            failed_overflow,
        } = e;
        let mut unlisted = self.unlisted.load(Relaxed);
        failed_parts.sort_unstable();
        if failed_overflow {
            parts.sort_unstable_by_key(|d| d.0);
            parts.dedup_by_key(|d| d.0);
            unlisted += parts.len() as u64;
            parts.clear();
        }
        parts.retain(|d| failed_parts.binary_search(&d.0).is_err());
        whole.append(&mut parts);
        whole.sort_unstable();
        (whole, unlisted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_is_acknowledged_only_when_every_part_is() {
        let log = AckLog::new(100);
        let (a, b, c) = ([1u8; 16], [2u8; 16], [3u8; 16]);
        // a: whole; b: two parts acknowledged; c: one part acknowledged, one failed.
        log.record(&[(a, 5), (b, 512)], &[b]);
        log.record(&[(b, 100), (c, 512)], &[b, c]);
        log.record_failed(&[c]);
        let (list, unlisted) = log.take();
        assert_eq!(unlisted, 0);
        // b once per part (the report adds parts up), c not at all.
        assert_eq!(list, vec![(a, 5), (b, 100), (b, 512)]);
    }

    #[test]
    fn too_many_failed_parts_unlist_every_part_and_the_cap_holds() {
        let log = AckLog::new(2);
        log.record(&[([1; 16], 1), ([2; 16], 1), ([3; 16], 1)], &[[2; 16]]);
        log.record_failed(&[[7; 16], [8; 16], [9; 16]]);
        let (list, unlisted) = log.take();
        assert_eq!(list, vec![([1; 16], 1)]);
        // [3; 16] past the cap, [2; 16] a part that can no longer be trusted.
        assert_eq!(unlisted, 2);
    }
}
