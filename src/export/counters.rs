//! Exact counters of one output, per signal, and the log of acknowledged
//! traces that `otelsim verify` reads. Every item handed to an output ends up
//! counted as acknowledged or failed.

use super::{ExportConfig, Signal};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
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
    /// Requests started.
    pub requests_sent: u64,
    /// Requests answered with success.
    pub requests_acked: u64,
    /// Requests given up on.
    pub requests_failed: u64,
}

impl SignalCounters {
    fn snapshot(&self) -> SignalSnapshot {
        SignalSnapshot {
            generated: self.generated.load(Relaxed),
            sent: self.sent.load(Relaxed),
            acked: self.acked.load(Relaxed),
            failed: self.failed.load(Relaxed),
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

    /// Starts (or continues) the failing clock; past the budget the run is failing.
    pub(crate) fn mark_failing(&self, cfg: &ExportConfig, msg: &str) {
        let Ok(mut f) = self.failing_since.lock() else {
            return;
        };
        let since = *f.get_or_insert_with(Instant::now);
        if since.elapsed() >= cfg.retry_budget {
            if let Ok(mut fatal) = self.fatal.lock() {
                fatal.get_or_insert_with(|| {
                    format!(
                        "OTLP endpoint {} failing for {:.0?}: {msg}",
                        cfg.endpoint,
                        since.elapsed()
                    )
                });
            }
        }
    }

    /// The reason the run must stop (endpoint failing beyond the retry budget).
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }
}

/// A trace as the receiver should see it: its id and how many spans it has.
pub type TraceDigest = ([u8; 16], u32);

/// The traces a receiver acknowledged in full, for `otelsim verify`. Bounded:
/// past `cap` traces only the count of unlisted traces grows.
#[derive(Debug)]
pub struct AckLog {
    cap: usize,
    acked: Mutex<Vec<TraceDigest>>,
    unlisted: AtomicU64,
}

impl AckLog {
    /// A log that lists at most `cap` traces and only counts the rest.
    pub fn new(cap: usize) -> Self {
        AckLog {
            cap,
            acked: Mutex::new(Vec::new()),
            unlisted: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, traces: &[TraceDigest]) {
        let Ok(mut v) = self.acked.lock() else {
            return;
        };
        let room = self.cap.saturating_sub(v.len()).min(traces.len());
        v.extend_from_slice(&traces[..room]);
        self.unlisted
            .fetch_add((traces.len() - room) as u64, Relaxed);
    }

    /// The acknowledged traces (sorted by id) and how many were left unlisted.
    pub fn take(&self) -> (Vec<TraceDigest>, u64) {
        let mut v = self
            .acked
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        v.sort_unstable();
        (v, self.unlisted.load(Relaxed))
    }
}
