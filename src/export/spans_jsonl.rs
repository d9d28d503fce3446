//! `--output spans-jsonl:PATH`: one span per line in seed 002's data model —
//! `trace_id`, `span_id`, `parent_span_id` (or null) in UUID form,
//! `service_name`, `operation_name`, `start_time`/`end_time` in ns, `tags`
//! (the span's attributes), `logs` (its events: `timestamp`, `event` and the
//! event's attributes) and `status_code` 0 (OK/unset) or 1 (ERROR).
//!
//! Derived from the same `TraceRecord`s every other output gets. The format
//! holds spans only: log records and metric points are counted as dropped by
//! this output (the signal is off from the start, with that reason).

use super::{BoxFuture, Counters, CountersSnapshot, Writer, WriterSink};
use crate::encode::Resources;
use crate::record::{AttrValue, SpanRecord, StatusCode, TraceRecord};
use anyhow::{Context, Result};
use serde_json::{json, Map, Value};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

/// Why log records and metric points do not reach this output.
const SPANS_ONLY: &str = "spans-jsonl holds spans only";

/// The open file and whether a write has failed (then nothing more is written).
struct Out {
    file: BufWriter<File>,
    broken: Option<String>,
}

/// Writes spans as JSON lines in seed 002's data model.
pub struct SpansJsonlWriter {
    label: String,
    path: PathBuf,
    out: Arc<Mutex<Out>>,
    counters: Arc<Counters>,
    resources: Resources,
}

impl SpansJsonlWriter {
    /// Creates (truncates) the file.
    pub fn start(label: String, path: &Path, resources: Resources) -> Result<SpansJsonlWriter> {
        let file =
            File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        let counters = Arc::new(Counters::spans_only(SPANS_ONLY));
        Ok(SpansJsonlWriter {
            label,
            path: path.to_path_buf(),
            out: Arc::new(Mutex::new(Out {
                file: BufWriter::new(file),
                broken: None,
            })),
            counters,
            resources,
        })
    }
}

impl Writer for SpansJsonlWriter {
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
        Box::new(SpansJsonlSink {
            path: self.path.clone(),
            out: self.out.clone(),
            counters: self.counters.clone(),
            resources: self.resources.clone(),
        })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, CountersSnapshot> {
        Box::pin(async move {
            if let Ok(mut out) = self.out.lock() {
                if out.broken.is_none() {
                    if let Err(e) = out.file.flush() {
                        // What sat in the buffer is lost; the count of written spans
                        // cannot say which, so the message gives the file and the error.
                        let msg = format!(
                            "writing {} failed at the final flush: {e}",
                            self.path.display()
                        );
                        self.counters.note_error(&msg);
                        out.broken = Some(msg);
                    }
                }
            }
            self.counters.snapshot()
        })
    }
}

/// One producer's handle: renders lines on its own task, then appends them under the lock.
struct SpansJsonlSink {
    path: PathBuf,
    out: Arc<Mutex<Out>>,
    counters: Arc<Counters>,
    resources: Resources,
}

impl WriterSink for SpansJsonlSink {
    fn traces<'a>(
        &'a mut self,
        traces: &'a [TraceRecord],
        spans: usize,
        _parts: &'a [[u8; 16]],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut text = String::with_capacity(spans * 400);
            for t in traces {
                for s in &t.spans {
                    text.push_str(&line(&t.trace_id, s, &self.resources).to_string());
                    text.push('\n');
                }
            }
            let n = spans as u64;
            let c = &self.counters.spans;
            c.sent.fetch_add(n, Relaxed);
            self.counters.spans.requests_sent.fetch_add(1, Relaxed);
            let Ok(mut out) = self.out.lock() else {
                c.failed.fetch_add(n, Relaxed);
                return;
            };
            if out.broken.is_some() {
                c.failed.fetch_add(n, Relaxed);
                return;
            }
            match out.file.write_all(text.as_bytes()) {
                Ok(()) => {
                    c.acked.fetch_add(n, Relaxed);
                    self.counters.spans.requests_acked.fetch_add(1, Relaxed);
                    self.counters
                        .bytes_sent
                        .fetch_add(text.len() as u64, Relaxed);
                }
                Err(e) => {
                    c.failed.fetch_add(n, Relaxed);
                    self.counters.spans.requests_failed.fetch_add(1, Relaxed);
                    let msg = format!(
                        "writing {} failed after {} spans were written: {e}",
                        self.path.display(),
                        c.acked.load(Relaxed)
                    );
                    self.counters.note_error(&msg);
                    out.broken = Some(msg);
                }
            }
        })
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// One span in seed 002's data model.
fn line(trace_id: &[u8; 16], s: &SpanRecord, resources: &Resources) -> Value {
    let mut tags = Map::new();
    for (k, v) in &s.attrs {
        tags.insert(k.to_string(), value(v));
    }
    let logs: Vec<Value> = s
        .events
        .iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("timestamp".into(), json!(e.time_ns));
            m.insert("event".into(), json!(&*e.name));
            for (k, v) in &e.attrs {
                m.insert(k.to_string(), value(v));
            }
            Value::Object(m)
        })
        .collect();
    json!({
        "trace_id": uuid(trace_id),
        "span_id": span_uuid(&s.span_id),
        "parent_span_id": s.parent_span_id.as_ref().map(span_uuid),
        "service_name": resources.service_name(s.service),
        "operation_name": &*s.name,
        "span_kind": s.kind.as_str(),
        "start_time": s.start_ns,
        "end_time": s.end_ns,
        "tags": tags,
        "logs": logs,
        "status_code": u8::from(s.status == StatusCode::Error),
    })
}

/// An attribute value as JSON.
fn value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => json!(&**s),
        AttrValue::Int(i) => json!(i),
        AttrValue::Double(d) => json!(d),
        AttrValue::Bool(b) => json!(b),
        AttrValue::StrArray(items) => Value::Array(items.iter().map(|s| json!(&**s)).collect()),
    }
}

/// 16 bytes in UUID form (8-4-4-4-12 hex digits).
pub fn uuid(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// An 8-byte span id in UUID form: zeros, then its 16 hex digits
/// (`00000000-0000-0000-xxxx-xxxxxxxxxxxx`), so the OTLP id is recoverable.
pub fn span_uuid(b: &[u8; 8]) -> String {
    let mut full = [0u8; 16];
    full[8..].copy_from_slice(b);
    uuid(&full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_take_the_uuid_form_and_keep_their_bytes() {
        let t: [u8; 16] = core::array::from_fn(|i| i as u8);
        assert_eq!(uuid(&t), "00010203-0405-0607-0809-0a0b0c0d0e0f");
        assert_eq!(
            span_uuid(&[0xab; 8]),
            "00000000-0000-0000-abab-abababababab"
        );
    }
}
