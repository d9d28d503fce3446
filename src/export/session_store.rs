//! The writer shared by the session-store outputs (`session-json:DIR`,
//! `duckdb:FILE`): each producer's sink regroups the spans it is handed into
//! sessions ([`super::session::Assembler`]) and gives every completed session to
//! a [`Store`]. Spans count as written when their session is stored, failed when
//! storing it fails; metrics and log records are no part of a session store and
//! are counted as dropped (with the reason in the report), not as lost.

use super::counters::{Counters, CountersSnapshot};
use super::session::{Assembler, Session, SessionKeys};
use super::{BoxFuture, Writer, WriterSink};
use crate::record::{LogRecord, TraceRecord};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

/// Where completed sessions go.
pub trait Store: Send + Sync {
    /// Takes the sessions; the spans it has now written for good (a store that
    /// holds sessions back to write them together may write none, or more).
    fn store(&self, sessions: &[Session]) -> Result<u64, StoreError>;
    /// What it has stored so far, for error messages (`12 sessions in DIR`).
    fn stored(&self) -> String;
    /// Writes what it holds back and closes, once every sink is gone.
    fn close(&self) -> Result<u64, StoreError>;
}

/// A store that failed: why (the path, the cause), and the spans it lost.
#[derive(Debug)]
pub struct StoreError {
    /// What failed.
    pub error: anyhow::Error,
    /// Spans of the sessions that will never be written.
    pub lost_spans: u64,
}

/// A session-store output: one [`Store`] fed by every producer's sink.
pub struct SessionStoreWriter {
    label: String,
    keys: SessionKeys,
    store: Arc<dyn Store>,
    counters: Arc<Counters>,
    /// Set once a store failed: later sessions are counted failed without trying.
    broken: Arc<Mutex<bool>>,
}

impl SessionStoreWriter {
    /// A writer labelled `label` (`session-json:DIR`) reading spans with `keys`.
    pub fn new(label: String, keys: SessionKeys, store: Arc<dyn Store>) -> Self {
        SessionStoreWriter {
            label,
            keys,
            store,
            counters: Arc::new(Counters::default()),
            broken: Arc::new(Mutex::new(false)),
        }
    }
}

impl Writer for SessionStoreWriter {
    fn label(&self) -> &str {
        &self.label
    }

    fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    fn cuts_by_size_only(&self) -> bool {
        true
    }

    fn sink(&self) -> Box<dyn WriterSink> {
        Box::new(SessionSink {
            label: self.label.clone(),
            assembler: Assembler::new(self.keys.clone()),
            store: self.store.clone(),
            counters: self.counters.clone(),
            broken: self.broken.clone(),
        })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, CountersSnapshot> {
        Box::pin(async move {
            let sc = &self.counters.spans;
            match self.store.close() {
                Ok(written) => {
                    sc.acked.fetch_add(written, Relaxed);
                }
                Err(e) => {
                    sc.failed.fetch_add(e.lost_spans, Relaxed);
                    self.counters.note_error(&format!(
                        "{}: {:#} ({} written)",
                        self.label,
                        e.error,
                        self.store.stored()
                    ));
                }
            }
            self.counters.snapshot()
        })
    }
}

/// One producer's sink: assembles its sessions and stores the completed ones.
struct SessionSink {
    label: String,
    assembler: Assembler,
    store: Arc<dyn Store>,
    counters: Arc<Counters>,
    broken: Arc<Mutex<bool>>,
}

impl SessionSink {
    fn store(&self, sessions: Vec<Session>) {
        if sessions.is_empty() {
            return;
        }
        let spans: u64 = sessions.iter().map(|s| s.spans).sum();
        let sc = &self.counters.spans;
        sc.sent.fetch_add(spans, Relaxed);
        sc.requests_sent.fetch_add(1, Relaxed);
        let mut broken = self.broken.lock().unwrap_or_else(|e| e.into_inner());
        if *broken {
            sc.failed.fetch_add(spans, Relaxed);
            return;
        }
        match self.store.store(&sessions) {
            Ok(written) => {
                sc.requests_acked.fetch_add(1, Relaxed);
                sc.acked.fetch_add(written, Relaxed);
            }
            Err(e) => {
                *broken = true;
                sc.requests_failed.fetch_add(1, Relaxed);
                sc.failed.fetch_add(e.lost_spans, Relaxed);
                let reason = format!(
                    "{}: {:#} ({} written before the failure)",
                    self.label,
                    e.error,
                    self.store.stored()
                );
                self.counters.note_error(&reason);
                if let Some(first) = self.counters.set_fatal(&reason) {
                    eprintln!("otelsim: stopping the run: {first}");
                }
            }
        }
    }

    /// Counts items of a signal the store does not keep.
    fn drop_signal(&self, sc: &super::SignalCounters, n: u64, what: &str) {
        sc.dropped.fetch_add(n, Relaxed);
        sc.turn_off(&format!(
            "{} stores sessions made of spans, not {what}",
            self.label
        ));
    }
}

impl WriterSink for SessionSink {
    fn traces<'a>(
        &'a mut self,
        traces: &'a [TraceRecord],
        _spans: usize,
        _parts: &'a [[u8; 16]],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut done = Vec::new();
            for t in traces {
                done.extend(self.assembler.add(t));
            }
            self.store(done);
        })
    }

    fn logs<'a>(&'a mut self, logs: &'a [LogRecord]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.drop_signal(&self.counters.logs, logs.len() as u64, "log records");
        })
    }

    fn metrics<'a>(
        &'a mut self,
        _request: &'a ExportMetricsServiceRequest,
        points: u64,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.drop_signal(&self.counters.points, points, "metric points");
        })
    }
}

impl Drop for SessionSink {
    /// The producer is done: its open sessions are complete.
    fn drop(&mut self) {
        let rest = self.assembler.finish();
        self.store(rest);
    }
}
