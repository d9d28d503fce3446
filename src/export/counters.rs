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
    pub generated: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    pub requests_sent: AtomicU64,
    pub requests_acked: AtomicU64,
    pub requests_failed: AtomicU64,
}

#[derive(Clone, Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct SignalSnapshot {
    pub generated: u64,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub requests_sent: u64,
    pub requests_acked: u64,
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
    pub traces_generated: AtomicU64,
    pub spans: SignalCounters,
    pub points: SignalCounters,
    pub logs: SignalCounters,
    pub retries: AtomicU64,
    /// Retries that waited as the receiver asked (Retry-After, RetryInfo).
    pub retry_hints: AtomicU64,
    pub bytes_sent: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// When the endpoint started failing (reset by any success).
    failing_since: Mutex<Option<Instant>>,
    pub(crate) fatal: Mutex<Option<String>>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CountersSnapshot {
    pub traces_generated: u64,
    pub spans: SignalSnapshot,
    pub metric_points: SignalSnapshot,
    pub log_records: SignalSnapshot,
    pub retries: u64,
    pub retry_hints: u64,
    pub bytes_sent: u64,
    pub first_error: Option<String>,
}

impl CountersSnapshot {
    /// Items of every signal that could not be delivered.
    pub fn failed(&self) -> u64 {
        self.spans.failed + self.metric_points.failed + self.log_records.failed
    }
}

impl Counters {
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
