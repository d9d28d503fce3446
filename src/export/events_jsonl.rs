//! The events-jsonl writer (`--output events-jsonl:PATH`, seed 000): one line per
//! span in the seed's minimal schema — `timestamp`, `trace_id` (the session's
//! trace), `span_id` (the operation), `event_type` (`<prefix>.instability.event`,
//! else `step`), `payload` (`latency_ms`, `args`, `notes`, `turn`, `parent`) —
//! and, with `--labels PATH`, one ground-truth line per instability session
//! (its true outcome and every injected episode), derived from the same spans.
//!
//! Sessions are held whole, like the agent-trace writer does (a pick's traces
//! reach a sink in order), so a session's lines are written together, in time order.

use super::agent_trace::{iso_ms, ms, session_of};
use super::counters::{Counters, CountersSnapshot};
use super::{BoxFuture, Writer, WriterSink};
use crate::plan::Keys;
use crate::record::{AttrValue, SpanRecord, TraceRecord};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

/// A JSON object with its fields in the given order.
pub(super) fn ordered(fields: &[(&str, Value)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json!(k).to_string());
        out.push(':');
        out.push_str(&v.to_string());
    }
    out.push('}');
    out
}

/// What the events-jsonl writer writes.
#[derive(Clone, Debug)]
pub struct EventsJsonlOptions {
    /// The events file.
    pub path: PathBuf,
    /// `--labels`: the ground-truth file.
    pub labels: Option<PathBuf>,
    /// The run's attribute keys.
    pub keys: Keys,
    /// The active prefix (`vendor`).
    pub prefix: String,
}

/// The open files and what was written to them.
struct Files {
    events: std::fs::File,
    labels: Option<std::fs::File>,
    lines: u64,
    sessions: u64,
}

struct Shared {
    opts: EventsJsonlOptions,
    counters: Arc<Counters>,
    files: Mutex<Files>,
}

/// One events-jsonl output.
pub struct EventsJsonlWriter {
    label: String,
    shared: Arc<Shared>,
}

impl EventsJsonlWriter {
    /// Creates (truncates) the events file and the labels file.
    pub fn start(opts: EventsJsonlOptions) -> anyhow::Result<EventsJsonlWriter> {
        let create = |p: &PathBuf, what: &str| {
            std::fs::File::create(p).map_err(|e| {
                anyhow::anyhow!("events-jsonl: cannot write {what} {}: {e}", p.display())
            })
        };
        let events = create(&opts.path, "")?;
        let labels = opts
            .labels
            .as_ref()
            .map(|p| create(p, "--labels"))
            .transpose()?;
        Ok(EventsJsonlWriter {
            label: format!("events-jsonl:{}", opts.path.display()),
            shared: Arc::new(Shared {
                opts,
                counters: Arc::new(Counters::spans_only(
                    "events-jsonl writes one line per span, not log records or metrics",
                )),
                files: Mutex::new(Files {
                    events,
                    labels,
                    lines: 0,
                    sessions: 0,
                }),
            }),
        })
    }
}

impl Writer for EventsJsonlWriter {
    fn label(&self) -> &str {
        &self.label
    }

    fn counters(&self) -> &Arc<Counters> {
        &self.shared.counters
    }

    fn cuts_by_size_only(&self) -> bool {
        true
    }

    fn sink(&self) -> Box<dyn WriterSink> {
        Box::new(EventsSink {
            shared: self.shared.clone(),
            open: None,
        })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, CountersSnapshot> {
        Box::pin(async move { self.shared.counters.snapshot() })
    }
}

/// One producer's handle: holds the session being received.
struct EventsSink {
    shared: Arc<Shared>,
    open: Option<(crate::record::Text, Vec<TraceRecord>)>,
}

impl Drop for EventsSink {
    fn drop(&mut self) {
        if let Some((id, traces)) = self.open.take() {
            self.shared.write(&id, &traces);
        }
    }
}

impl WriterSink for EventsSink {
    fn traces<'a>(
        &'a mut self,
        traces: &'a [TraceRecord],
        spans: usize,
        _parts: &'a [[u8; 16]],
    ) -> BoxFuture<'a, ()> {
        self.shared
            .counters
            .spans
            .sent
            .fetch_add(spans as u64, Relaxed);
        for t in traces {
            let id = session_of(t, &self.shared.opts.keys);
            match &mut self.open {
                Some((open, held)) if *open == id => held.push(t.clone()),
                _ => {
                    if let Some((done, held)) = self.open.replace((id, vec![t.clone()])) {
                        self.shared.write(&done, &held);
                    }
                }
            }
        }
        Box::pin(async {})
    }

    fn counters(&self) -> &Counters {
        &self.shared.counters
    }
}

impl Shared {
    fn key(&self, short: &str) -> String {
        format!("{}.instability.{short}", self.opts.prefix)
    }

    /// Writes one session's lines (and its labels) and counts its spans.
    fn write(&self, session: &str, traces: &[TraceRecord]) {
        let spans: u64 = traces.iter().map(|t| t.spans.len() as u64).sum();
        let c = &self.counters;
        if c.fatal().is_some() {
            c.spans.failed.fetch_add(spans, Relaxed);
            return;
        }
        let mut lines = Vec::with_capacity(spans as usize * 200);
        let mut n = 0u64;
        for t in traces {
            let mut ordered: Vec<&SpanRecord> = t.spans.iter().collect();
            ordered.sort_by_key(|s| s.start_ns);
            for s in ordered {
                lines.extend_from_slice(self.line(t, s).as_bytes());
                lines.push(b'\n');
                n += 1;
            }
        }
        let labels = self.labels(session, traces);
        let Ok(mut f) = self.files.lock() else {
            c.spans.failed.fetch_add(spans, Relaxed);
            return;
        };
        let result = f
            .events
            .write_all(&lines)
            .and_then(|()| match (&mut f.labels, labels) {
                (Some(file), Some(l)) => {
                    let mut text = l.to_string();
                    text.push('\n');
                    file.write_all(text.as_bytes())
                }
                _ => Ok(()),
            });
        match result {
            Ok(()) => {
                f.lines += n;
                f.sessions += 1;
                c.spans.acked.fetch_add(spans, Relaxed);
            }
            Err(e) => {
                c.spans.failed.fetch_add(spans, Relaxed);
                let msg = format!(
                    "events-jsonl: cannot write {}: {e}; {} line(s) of {} session(s) were written before it",
                    self.opts.path.display(),
                    f.lines,
                    f.sessions
                );
                c.note_error(&msg);
                c.set_fatal(&msg);
            }
        }
    }

    /// One span in the seed's minimal schema.
    fn line(&self, t: &TraceRecord, s: &SpanRecord) -> String {
        let text = |short: &str| s.attr(&self.key(short)).and_then(AttrValue::as_str);
        let mut payload = Map::new();
        payload.insert("latency_ms".into(), json!(ms(s.duration_ns())));
        if let Some(a) = text("args") {
            payload.insert(
                "args".into(),
                serde_json::from_str(a).unwrap_or_else(|_| json!(a)),
            );
        }
        if let Some(n) = text("notes") {
            payload.insert("notes".into(), json!(n));
        }
        if let Some(AttrValue::Int(n)) = s.attr(&self.key("turn")) {
            payload.insert("turn".into(), json!(n));
        }
        if let Some(p) = s.parent_span_id {
            payload.insert("parent".into(), json!(hex::encode(p)));
        }
        if s.status == crate::record::StatusCode::Error {
            payload.insert("error".into(), json!(true));
        }
        // The seed's field order, which readers of the file see first.
        ordered(&[
            ("timestamp", json!(iso_ms(s.start_ns))),
            ("trace_id", json!(hex::encode(t.trace_id))),
            ("span_id", json!(hex::encode(s.span_id))),
            ("event_type", json!(text("event").unwrap_or("step"))),
            ("payload", Value::Object(payload)),
        ])
    }

    /// The ground truth of an instability session: its outcome and its episodes
    /// (runs of spans marked with the same `episode` kind); `None` for other sessions.
    fn labels(&self, session: &str, traces: &[TraceRecord]) -> Option<Value> {
        let outcome_key = self.key("outcome");
        let (t, root) = traces.iter().find_map(|t| {
            t.spans
                .iter()
                .find(|s| s.attr(&outcome_key).is_some())
                .map(|s| (t, s))
        })?;
        let episode_key = self.key("episode");
        let turn_key = self.key("turn");
        let mut marked: Vec<&SpanRecord> = t
            .spans
            .iter()
            .filter(|s| s.attr(&episode_key).is_some())
            .collect();
        marked.sort_by_key(|s| s.start_ns);
        let mut episodes: Vec<Value> = Vec::new();
        let mut run: Vec<&SpanRecord> = Vec::new();
        let kind_of = |s: &SpanRecord| s.attr(&episode_key).map(ToString::to_string);
        let close = |run: &mut Vec<&SpanRecord>, out: &mut Vec<Value>| {
            let (Some(first), Some(last)) = (run.first(), run.last()) else {
                return;
            };
            let turn = |s: &SpanRecord| match s.attr(&turn_key) {
                Some(AttrValue::Int(n)) => *n,
                _ => 0,
            };
            out.push(json!({
                "kind": kind_of(first),
                "start": iso_ms(first.start_ns),
                "end": iso_ms(last.end_ns),
                "start_turn": turn(first),
                "end_turn": turn(last),
                "span_ids": run.iter().map(|s| hex::encode(s.span_id)).collect::<Vec<_>>(),
            }));
            run.clear();
        };
        for s in marked {
            if run.last().is_some_and(|r| kind_of(r) != kind_of(s)) {
                close(&mut run, &mut episodes);
            }
            run.push(s);
        }
        close(&mut run, &mut episodes);
        let turns = match root.attr(&self.key("turns")) {
            Some(AttrValue::Int(n)) => *n,
            _ => 0,
        };
        Some(json!({
            "trace_id": hex::encode(t.trace_id),
            "session_id": session,
            "scenario": &*t.scenario,
            "outcome": root.attr(&outcome_key).map(ToString::to_string),
            "turns": turns,
            "start": iso_ms(root.start_ns),
            "end": iso_ms(root.end_ns),
            "episodes": episodes,
        }))
    }
}
