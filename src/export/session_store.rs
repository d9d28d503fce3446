//! The writer shared by the session-store outputs (`session-json:DIR`,
//! `duckdb:FILE`): each producer's sink regroups the spans it is handed into
//! sessions ([`super::session::Assembler`]) and gives every completed session to
//! a [`Store`]. Spans count as written when their session is stored, failed when
//! storing it fails; metrics and log records are no part of a session store and
//! are counted as dropped (with the reason in the report), not as lost.

use super::counters::{Counters, CountersSnapshot};
use super::session::{Assembler, Session, SessionKeys};
use super::{BoxFuture, Writer, WriterSink};
use crate::record::TraceRecord;
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
        let counters = Arc::new(Counters::spans_only(&format!(
            "{label} stores sessions made of spans, not log records or metrics"
        )));
        SessionStoreWriter {
            label,
            keys,
            store,
            counters,
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

    fn counters(&self) -> &Counters {
        &self.counters
    }
}

impl Drop for SessionSink {
    /// The producer is done: its open sessions are complete.
    fn drop(&mut self) {
        let rest = self.assembler.finish();
        self.store(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::session::OPEN_SESSIONS;
    use crate::record::{AttrValue, ServiceId, SpanKind, SpanRecord, StatusCode};
    use std::sync::atomic::AtomicU64;

    /// Stores the first `ok` calls, then fails like a full disk.
    struct Failing {
        ok: u64,
        calls: AtomicU64,
        sessions: AtomicU64,
    }

    impl Store for Failing {
        fn store(&self, sessions: &[Session]) -> Result<u64, StoreError> {
            if self.calls.fetch_add(1, Relaxed) >= self.ok {
                return Err(StoreError {
                    error: anyhow::anyhow!("No space left on device"),
                    lost_spans: sessions.iter().map(|s| s.spans).sum(),
                });
            }
            self.sessions.fetch_add(sessions.len() as u64, Relaxed);
            Ok(sessions.iter().map(|s| s.spans).sum())
        }
        fn stored(&self) -> String {
            format!("{} sessions", self.sessions.load(Relaxed))
        }
        fn close(&self) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    fn trace(session: usize) -> TraceRecord {
        let span = SpanRecord {
            span_id: [1, 0, 0, 0, 0, 0, 0, session as u8],
            parent_span_id: None,
            name: "vendor.llm.call".into(),
            kind: SpanKind::Client,
            start_ns: 1,
            end_ns: 2,
            attrs: vec![(
                "gen_ai.conversation.id".into(),
                AttrValue::str(&format!("s{session}")),
            )]
            .into(),
            events: Vec::new(),
            status: StatusCode::Unset,
            status_message: None,
            service: ServiceId(0),
            class: crate::class::ClassOf::parse("llm.call"),
            links: Vec::new(),
        };
        TraceRecord {
            trace_id: [session as u8 + 1; 16],
            scope: "otelsim.t".into(),
            scenario: "t".into(),
            spans: vec![span],
        }
    }

    #[tokio::test]
    async fn a_store_that_fails_counts_what_was_written_and_what_was_lost() {
        let store = Arc::new(Failing {
            ok: 1,
            calls: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
        });
        let w = Box::new(SessionStoreWriter::new(
            "session-json:out".into(),
            SessionKeys::new("vendor"),
            store,
        ));
        let counters = w.counters().clone();
        let mut sink = w.sink();
        // Sessions complete once OPEN_SESSIONS later ones arrive: the first batch stores one.
        let traces: Vec<TraceRecord> = (0..OPEN_SESSIONS + 1).map(trace).collect();
        sink.traces(&traces, traces.len(), &[]).await;
        assert_eq!(counters.spans.acked.load(Relaxed), 1);
        // The rest are stored when the producer is done: the disk is full by then.
        drop(sink);
        let snap = w.finish().await;
        assert_eq!(snap.spans.acked, 1);
        assert_eq!(snap.spans.failed, OPEN_SESSIONS as u64);
        let err = snap.first_error.unwrap();
        assert!(
            err.contains("No space left on device")
                && err.contains("1 sessions written before the failure"),
            "{err}"
        );
        assert!(counters.fatal().is_some(), "the run stops");
    }
}
