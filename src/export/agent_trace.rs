//! The agent-trace writer (`--output agent-trace:DIR`): one folder per session,
//! `DIR/session-{session_id}/metadata.json` and `events.jsonl`, with session,
//! turn, LLM, tool and thinking events derived from the very spans the OTLP
//! writer sends, so both views agree by construction.
//!
//! A session is the spans that share `gen_ai.conversation.id`; its turns are
//! grouped by `<prefix>.request.id`. A pick's traces reach a sink whole and in
//! order (back-dated timing; the run refuses realtime timing with this output),
//! so a session is complete when a trace of another session arrives, or when
//! the sink closes: the buffer holds at most the session being received.

use super::counters::{Counters, CountersSnapshot};
use super::{BoxFuture, Writer, WriterSink};
use crate::class::SpanClass;
use crate::plan::Keys;
use crate::record::{AttrValue, SpanRecord, StatusCode, Text, TraceRecord};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The span event that carries a reasoning step of an LLM call (its name
/// without the prefix); see [`thinking_event_name`].
pub const THINKING_EVENT: &str = "gen_ai.thinking";
/// `<prefix>.thinking.stage` on a thinking event: what the reasoning was for.
pub const THINKING_STAGE: &str = "thinking.stage";
/// `<prefix>.thinking.content` on a thinking event: the reasoning text.
pub const THINKING_CONTENT: &str = "thinking.content";
/// The GenAI usage key of reasoning tokens (on the LLM span and its thinking event).
pub const REASONING_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";

/// The name of a thinking span event under the active prefix.
pub fn thinking_event_name(prefix: &str) -> String {
    format!("{prefix}.{THINKING_EVENT}")
}

/// What the agent-trace writer writes (config `agent_trace:` and the run).
#[derive(Clone, Debug)]
pub struct AgentTraceOptions {
    /// The folder the session folders go in.
    pub dir: PathBuf,
    /// The run id every event carries (`run_id`).
    pub run_id: String,
    /// The share of sessions written (1: all), decided per session id.
    pub sample_rate: f64,
    /// Whether message text (messages, content, user input, output) is written.
    pub include_messages: bool,
    /// Whether thinking events and an LLM response's `thinking` are written.
    pub include_thinking: bool,
    /// Longest string written; longer ones are cut.
    pub max_content_length: usize,
    /// The run's attribute keys (prefix applied).
    pub keys: Keys,
    /// The active prefix (`vendor`).
    pub prefix: String,
}

/// What every sink of one agent-trace writer shares.
struct Shared {
    opts: AgentTraceOptions,
    counters: Arc<Counters>,
    sessions_written: AtomicU64,
}

/// One agent-trace output.
pub struct AgentTraceWriter {
    label: String,
    shared: Arc<Shared>,
}

impl AgentTraceWriter {
    /// Creates `opts.dir` (and its parents) and the writer.
    pub fn start(opts: AgentTraceOptions) -> anyhow::Result<AgentTraceWriter> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| {
            anyhow::anyhow!("agent-trace: cannot create {}: {e}", opts.dir.display())
        })?;
        Ok(AgentTraceWriter {
            label: format!("agent-trace:{}", opts.dir.display()),
            shared: Arc::new(Shared {
                opts,
                counters: Arc::new(Counters::spans_only(
                    "agent-trace writes events derived from spans, not log records or metrics",
                )),
                sessions_written: AtomicU64::new(0),
            }),
        })
    }
}

impl Writer for AgentTraceWriter {
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
        Box::new(AgentTraceSink {
            shared: self.shared.clone(),
            open: Vec::new(),
        })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, CountersSnapshot> {
        // Sessions left out by sample_rate are counted as dropped, not failed.
        Box::pin(async move { self.shared.counters.snapshot() })
    }
}

/// One producer's handle: holds the session being received until it is complete.
struct AgentTraceSink {
    shared: Arc<Shared>,
    /// The session being received: its id and its traces so far.
    open: Vec<(Text, Vec<TraceRecord>)>,
}

impl AgentTraceSink {
    /// Writes every session held.
    fn flush(&mut self) {
        for (id, traces) in std::mem::take(&mut self.open) {
            self.shared.write(&id, &traces);
        }
    }
}

impl Drop for AgentTraceSink {
    fn drop(&mut self) {
        self.flush();
    }
}

impl WriterSink for AgentTraceSink {
    fn traces<'a>(
        &'a mut self,
        traces: &'a [TraceRecord],
        _spans: usize,
        _parts: &'a [[u8; 16]],
    ) -> BoxFuture<'a, ()> {
        // Spans are counted per session, when it is written or left out.
        for t in traces {
            let id = session_of(t, &self.shared.opts.keys);
            if self.open.last().is_some_and(|(open, _)| *open != id) {
                // A pick's traces come whole and in order: the held session is complete.
                self.flush();
            }
            match self.open.last_mut() {
                Some((_, held)) => held.push(t.clone()),
                None => self.open.push((id, vec![t.clone()])),
            }
        }
        Box::pin(async {})
    }

    fn counters(&self) -> &Counters {
        &self.shared.counters
    }
}

impl Shared {
    /// Writes one complete session (unless sampled out) and counts its spans.
    fn write(&self, id: &str, traces: &[TraceRecord]) {
        let spans: u64 = traces.iter().map(|t| t.spans.len() as u64).sum();
        let c = &self.counters;
        if !sampled(id, self.opts.sample_rate) {
            // Left out by sample_rate: never sent, not a failure (not due, like a
            // signal a receiver does not take).
            c.spans.dropped.fetch_add(spans, Relaxed);
            return;
        }
        c.spans.sent.fetch_add(spans, Relaxed);
        if c.fatal().is_some() {
            // The disk failed before: nothing more is written.
            c.spans.failed.fetch_add(spans, Relaxed);
            return;
        }
        let session = derive_session(id, traces, &self.opts);
        let folder = self.opts.dir.join(format!("session-{}", path_safe(id)));
        match write_session(&folder, &session) {
            Ok(()) => {
                self.sessions_written.fetch_add(1, Ordering::Relaxed);
                c.spans.acked.fetch_add(spans, Relaxed);
            }
            Err(e) => {
                c.spans.failed.fetch_add(spans, Relaxed);
                let msg = format!(
                    "agent-trace: cannot write {}: {e}; {} session(s) were written before it",
                    folder.display(),
                    self.sessions_written.load(Relaxed)
                );
                c.note_error(&msg);
                c.set_fatal(&msg);
            }
        }
    }
}

/// Writes a session's two files.
fn write_session(folder: &Path, s: &SessionView) -> std::io::Result<()> {
    std::fs::create_dir_all(folder)?;
    let mut meta = serde_json::to_vec_pretty(&s.metadata)?;
    meta.push(b'\n');
    write_file(&folder.join("metadata.json"), &meta)?;
    let mut lines = Vec::with_capacity(s.events.len() * 256);
    for e in &s.events {
        lines.extend_from_slice(e.as_bytes());
        lines.push(b'\n');
    }
    write_file(&folder.join("events.jsonl"), &lines)
}

/// Writes and syncs a file, so a full disk shows here rather than never.
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.flush()?;
    f.sync_data()
}

/// The session a trace belongs to: `gen_ai.conversation.id`, else
/// `<prefix>.session.id`, else its own trace id.
pub fn session_of(t: &TraceRecord, keys: &Keys) -> Text {
    t.spans
        .iter()
        .find_map(
            |s| match s.attr(&keys.conversation_id).or(s.attr(&keys.session_id)) {
                Some(AttrValue::Str(id)) => Some(id.clone()),
                _ => None,
            },
        )
        .unwrap_or_else(|| Text::from(hex::encode(t.trace_id)))
}

/// A session id as a folder name: anything but letters, digits, `-`, `_` and `.` becomes `_`.
fn path_safe(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// Whether a session is written at `rate`: a hash of its id, so the same
/// sessions are kept by every run and every worker.
fn sampled(id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    // FNV-1a, then a finaliser so similar ids spread over the whole range.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    ((h >> 11) as f64 / (1u64 << 53) as f64) < rate
}

/// ISO 8601 with milliseconds in UTC (`2026-02-06T22:10:00.123Z`).
pub fn iso_ms(ns: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
    humantime::format_rfc3339_millis(t).to_string()
}

/// A duration in milliseconds, to the microsecond.
pub fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

/// A session's events and metadata, ready to write.
pub struct SessionView {
    /// `events.jsonl`, one event per line, in time order.
    pub events: Vec<String>,
    /// `metadata.json`.
    pub metadata: Value,
}

/// One event before it is rendered: when, its order among events at the same
/// instant, and what it says.
struct Ev {
    at: u64,
    order: u32,
    event_type: &'static str,
    turn: u32,
    duration_ns: Option<u64>,
    data: Map<String, Value>,
}

/// Derives a session's events and metadata from its traces.
pub fn derive_session(id: &str, traces: &[TraceRecord], opts: &AgentTraceOptions) -> SessionView {
    let k = &opts.keys;
    let spans: Vec<&SpanRecord> = traces.iter().flat_map(|t| &t.spans).collect();
    let start = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_ns).max().unwrap_or(start);
    // Turns: the spans of one request id, in order of their first start.
    let mut turns: Vec<(String, Vec<&SpanRecord>)> = Vec::new();
    for t in traces {
        let request = t
            .spans
            .iter()
            .find_map(|s| s.attr(&k.request_id).and_then(AttrValue::as_str))
            .map_or_else(|| hex::encode(t.trace_id), str::to_string);
        match turns.iter_mut().find(|(r, _)| *r == request) {
            Some((_, spans)) => spans.extend(&t.spans),
            None => turns.push((request, t.spans.iter().collect())),
        }
    }
    turns.sort_by_key(|(_, s)| s.iter().map(|s| s.start_ns).min().unwrap_or(0));
    let mut events = Vec::new();
    let (mut failed_turns, mut llm_calls, mut tool_calls) = (0u32, 0u32, 0u32);
    let (mut prompt, mut completion) = (0i64, 0i64);
    for (i, (request, spans)) in turns.iter().enumerate() {
        let n = i as u32 + 1;
        let t0 = spans.iter().map(|s| s.start_ns).min().unwrap_or(start);
        let t1 = spans.iter().map(|s| s.end_ns).max().unwrap_or(t0);
        let failed = turn_failed(spans);
        failed_turns += u32::from(failed);
        let mut data = Map::new();
        data.insert("request_id".into(), json!(request));
        if opts.include_messages {
            data.insert("user_input".into(), json!(user_input(spans, k)));
        }
        events.push(ev(t0, 1, "turn.start", n, None, data));
        let mut ordered = spans.clone();
        ordered.sort_by_key(|s| s.start_ns);
        for s in &ordered {
            if s.class.attempt {
                continue;
            }
            match s.class.class {
                SpanClass::LlmCall => {
                    llm_calls += 1;
                    prompt += int(s, &k.input_tokens);
                    completion += int(s, &k.output_tokens);
                    llm_events(s, n, opts, &mut events);
                }
                SpanClass::McpToolExecute => {
                    tool_calls += 1;
                    tool_events(s, spans, n, k, &mut events);
                }
                _ => {}
            }
        }
        let mut data = Map::new();
        if opts.include_messages {
            data.insert("output".into(), json!(turn_output(spans, k)));
        }
        data.insert("success".into(), json!(!failed));
        events.push(ev(t1, 9, "turn.end", n, Some(t1 - t0), data));
    }
    let outcome = if failed_turns == 0 {
        "success"
    } else {
        "error"
    };
    let scenario = traces.first().map_or("", |t| &*t.scenario);
    let attr_of = |key: &str| {
        spans
            .iter()
            .find_map(|s| s.attr(key).and_then(AttrValue::as_str))
            .map(str::to_string)
    };
    let metadata_fields = json!({
        "scenario": scenario,
        "tenant_id": attr_of(&k.tenant_id),
        "agent_id": attr_of(&k.agent_id),
        "enduser_id": attr_of(&k.enduser),
        "trace_ids": traces.iter().map(|t| hex::encode(t.trace_id)).collect::<Vec<_>>(),
    });
    let mut data = Map::new();
    data.insert("metadata".into(), metadata_fields.clone());
    events.push(ev(start, 0, "session.start", 0, None, data));
    let mut data = Map::new();
    data.insert("outcome".into(), json!(outcome));
    data.insert("duration".into(), json!(ms(end - start)));
    data.insert("total_turns".into(), json!(turns.len()));
    events.push(ev(
        end,
        10,
        "session.end",
        turns.len() as u32,
        Some(end - start),
        data,
    ));
    events.sort_by_key(|e| (e.at, e.order));
    let rendered: Vec<String> = events.into_iter().map(|e| render(e, id, opts)).collect();
    let metadata = json!({
        "session_id": id,
        "run_id": opts.run_id,
        "start": iso_ms(start),
        "end": iso_ms(end),
        "duration_ms": ms(end - start),
        "outcome": outcome,
        "total_turns": turns.len(),
        "llm_calls": llm_calls,
        "tool_calls": tool_calls,
        "tokens": {"prompt": prompt, "completion": completion},
        "events": rendered.len(),
        "metadata": metadata_fields,
    });
    SessionView {
        events: rendered,
        metadata,
    }
}

fn ev(
    at: u64,
    order: u32,
    event_type: &'static str,
    turn: u32,
    duration_ns: Option<u64>,
    data: Map<String, Value>,
) -> Ev {
    Ev {
        at,
        order,
        event_type,
        turn,
        duration_ns,
        data,
    }
}

/// The seed's event shape, in its field order; strings in `data` cut at `max_content_length`.
fn render(e: Ev, session: &str, opts: &AgentTraceOptions) -> String {
    let mut data = Value::Object(e.data);
    clip(&mut data, opts.max_content_length);
    let mut fields = vec![
        ("timestamp", json!(iso_ms(e.at))),
        ("event_type", json!(e.event_type)),
        ("session_id", json!(session)),
        ("run_id", json!(opts.run_id)),
        ("turn", json!(e.turn)),
    ];
    if let Some(d) = e.duration_ns {
        fields.push(("duration_ms", json!(ms(d))));
    }
    fields.push(("data", data));
    super::events_jsonl::ordered(&fields)
}

/// Cuts every string in `v` to `max` characters.
fn clip(v: &mut Value, max: usize) {
    match v {
        Value::String(s) => {
            if let Some((i, _)) = s.char_indices().nth(max) {
                s.truncate(i);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| clip(i, max)),
        Value::Object(m) => m.values_mut().for_each(|i| clip(i, max)),
        _ => {}
    }
}

/// A turn failed when one of its root spans (the agent turn, a control-plane check) did.
fn turn_failed(spans: &[&SpanRecord]) -> bool {
    spans.iter().any(|s| {
        s.status == StatusCode::Error
            && (s.parent_span_id.is_none() || s.class.class == SpanClass::Orchestrate)
    })
}

fn int(s: &SpanRecord, key: &str) -> i64 {
    match s.attr(key) {
        Some(AttrValue::Int(i)) => *i,
        _ => 0,
    }
}

/// A string attribute that holds JSON, parsed (kept as a string when it is not JSON).
fn json_attr(s: &SpanRecord, key: &str) -> Option<Value> {
    let text = s.attr(key)?.as_str()?;
    Some(serde_json::from_str(text).unwrap_or_else(|_| json!(text)))
}

/// The text parts of the last message of `role` in a GenAI messages list.
fn text_of(messages: &Value, role: Option<&str>) -> Option<String> {
    let list = messages.as_array()?;
    let m = list
        .iter()
        .rev()
        .find(|m| role.is_none_or(|r| m.get("role").and_then(Value::as_str) == Some(r)))?;
    let parts: Vec<&str> = m
        .get("parts")?
        .as_array()?
        .iter()
        .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|p| p.get("content").and_then(Value::as_str))
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

/// The agent turn's OpenInference `attr` (`input.value`, `output.value`), if set.
fn turn_value(spans: &[&SpanRecord], attr: &str) -> Option<String> {
    spans
        .iter()
        .find(|s| s.class.class == SpanClass::Orchestrate)
        .and_then(|s| s.attr(attr))
        .and_then(AttrValue::as_str)
        .map(str::to_string)
}

/// The turn's LLM calls.
fn llm_calls<'a>(spans: &'a [&'a SpanRecord]) -> impl Iterator<Item = &'a SpanRecord> {
    spans
        .iter()
        .copied()
        .filter(|s| s.class.class == SpanClass::LlmCall)
}

/// What the user said in a turn: the agent turn's `input.value`, else the last
/// user message its first LLM call read.
fn user_input(spans: &[&SpanRecord], k: &Keys) -> Option<String> {
    turn_value(spans, "input.value").or_else(|| {
        let first = llm_calls(spans).min_by_key(|s| s.start_ns)?;
        text_of(&json_attr(first, &k.input_messages)?, Some("user"))
    })
}

/// What the agent answered: the agent turn's `output.value`, else the text of
/// its last LLM call's output.
fn turn_output(spans: &[&SpanRecord], k: &Keys) -> Option<String> {
    turn_value(spans, "output.value").or_else(|| {
        let last = llm_calls(spans).max_by_key(|s| s.end_ns)?;
        text_of(&json_attr(last, &k.output_messages)?, None)
    })
}

/// `llm.request`, its `thinking` steps and `llm.response` of one LLM call.
fn llm_events(s: &SpanRecord, turn: u32, opts: &AgentTraceOptions, out: &mut Vec<Ev>) {
    let k = &opts.keys;
    let model = s
        .attr(&k.response_model)
        .or(s.attr(&k.request_model))
        .and_then(AttrValue::as_str)
        .unwrap_or("unknown")
        .to_string();
    let mut req = Map::new();
    req.insert("model".into(), json!(model));
    if opts.include_messages {
        req.insert(
            "messages".into(),
            json_attr(s, &k.input_messages).unwrap_or(json!([])),
        );
    }
    let tools: Vec<&str> = s
        .attr(&k.tool_name)
        .and_then(AttrValue::as_str)
        .into_iter()
        .collect();
    req.insert("tools".into(), json!(tools));
    req.insert("span_id".into(), json!(hex::encode(s.span_id)));
    out.push(ev(s.start_ns, 2, "llm.request", turn, None, req));
    let thinking_name = thinking_event_name(&opts.prefix);
    let (stage_key, content_key) = (
        format!("{}.{THINKING_STAGE}", opts.prefix),
        format!("{}.{THINKING_CONTENT}", opts.prefix),
    );
    let mut thoughts = Vec::new();
    for e in s.events.iter().filter(|e| *e.name == *thinking_name) {
        let get = |key: &str| e.attrs.iter().find(|(k, _)| &**k == key).map(|(_, v)| v);
        let content = get(&content_key).and_then(AttrValue::as_str).unwrap_or("");
        let stage = get(&stage_key)
            .and_then(AttrValue::as_str)
            .unwrap_or("reasoning");
        let tokens = match get(REASONING_TOKENS) {
            Some(AttrValue::Int(n)) => *n,
            _ => 0,
        };
        thoughts.push(content.to_string());
        if opts.include_thinking {
            let mut data = Map::new();
            data.insert("content".into(), json!(content));
            data.insert("stage".into(), json!(stage));
            data.insert("tokens".into(), json!(tokens));
            out.push(ev(e.time_ns, 3, "thinking", turn, None, data));
        }
    }
    let mut resp = Map::new();
    resp.insert("model".into(), json!(model));
    if opts.include_messages {
        let content = json_attr(s, &k.output_messages).map(|m| text_of(&m, None));
        resp.insert("content".into(), json!(content.flatten()));
    }
    let mut tokens = Map::new();
    tokens.insert("prompt".into(), json!(int(s, &k.input_tokens)));
    tokens.insert("completion".into(), json!(int(s, &k.output_tokens)));
    if let Some(AttrValue::Int(r)) = s.attr(REASONING_TOKENS) {
        tokens.insert("reasoning".into(), json!(r));
    }
    resp.insert("tokens".into(), Value::Object(tokens));
    resp.insert("duration".into(), json!(ms(s.duration_ns())));
    if opts.include_thinking && !thoughts.is_empty() {
        resp.insert("thinking".into(), json!(thoughts.join("\n")));
    }
    resp.insert("success".into(), json!(s.status != StatusCode::Error));
    resp.insert("span_id".into(), json!(hex::encode(s.span_id)));
    out.push(ev(
        s.end_ns,
        4,
        "llm.response",
        turn,
        Some(s.duration_ns()),
        resp,
    ));
}

/// `tool.call` and `tool.result` of one tool call; its arguments and result
/// may sit on the call's attempt spans.
fn tool_events(s: &SpanRecord, turn_spans: &[&SpanRecord], turn: u32, k: &Keys, out: &mut Vec<Ev>) {
    let attempts: Vec<&&SpanRecord> = turn_spans
        .iter()
        .filter(|c| c.parent_span_id == Some(s.span_id) && c.class.attempt)
        .collect();
    let find = |key: &str| {
        json_attr(s, key).or_else(|| attempts.iter().rev().find_map(|a| json_attr(a, key)))
    };
    let name = s
        .attr(&k.tool_name)
        .and_then(AttrValue::as_str)
        .unwrap_or("unknown");
    let mut call = Map::new();
    call.insert("tool_name".into(), json!(name));
    call.insert(
        "args".into(),
        find("gen_ai.tool.call.arguments").unwrap_or(json!({})),
    );
    call.insert(
        "call_id".into(),
        json!(s.attr(&k.tool_call_id).map(ToString::to_string)),
    );
    out.push(ev(s.start_ns, 5, "tool.call", turn, None, call));
    let mut result = Map::new();
    result.insert("tool_name".into(), json!(name));
    let success = s.status != StatusCode::Error;
    result.insert("success".into(), json!(success));
    result.insert(
        "result".into(),
        find("gen_ai.tool.call.result").unwrap_or(Value::Null),
    );
    result.insert("duration".into(), json!(ms(s.duration_ns())));
    if !success {
        result.insert(
            "error".into(),
            json!(s.attr(&k.error_type).map(ToString::to_string)),
        );
    }
    result.insert("attempts".into(), json!(attempts.len().max(1)));
    out.push(ev(
        s.end_ns,
        6,
        "tool.result",
        turn,
        Some(s.duration_ns()),
        result,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_keeps_about_the_rate_and_is_stable() {
        let kept = (0..10_000)
            .filter(|i| sampled(&format!("ses_{i:08x}"), 0.25))
            .count();
        assert!((2_300..2_700).contains(&kept), "{kept}");
        assert!(sampled("x", 1.0));
        assert!(!sampled("x", 0.0));
        assert_eq!(sampled("ses_1", 0.5), sampled("ses_1", 0.5));
    }

    #[test]
    fn clip_cuts_every_string_at_a_char_boundary() {
        let mut v = json!({"a": "ééééé", "b": ["abcdef", 3]});
        clip(&mut v, 3);
        assert_eq!(v, json!({"a": "ééé", "b": ["abc", 3]}));
    }

    #[test]
    fn folder_names_are_safe() {
        assert_eq!(path_safe("ses/../x y"), "ses_.._x_y");
        assert_eq!(path_safe(".hidden"), "_.hidden");
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        assert_eq!(
            iso_ms(1_767_225_600_123_456_789),
            "2026-01-01T00:00:00.123Z"
        );
    }
}
