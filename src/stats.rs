//! `otelsim stats FILE`: the statistics of a trace file that seed 002's
//! `phase0_metadata` lists — traces, spans, services, operations, depth, spans
//! per trace, reuse factors, error share per service, bytes — for any otelsim
//! output: OTLP/JSON lines (`otlp-json:PATH`, `--output-file`) or spans JSONL
//! (`spans-jsonl:PATH`, which is seed 002's own format).
//!
//! Seed 002 records one span per service operation; OTel instrumentation records
//! a call between two instrumented services twice (a CLIENT span in the caller, a
//! SERVER span in the callee). So the statistics come in two views: `spans` as
//! they are on the wire, and `calls`, where a CLIENT span with a SERVER child
//! counts once with that child — the view seed 002's numbers describe. A database
//! or external API emits nothing of its own: it is counted as a service through
//! the `peer.service` of the CLIENT spans that call it.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Largest file `stats` reads (it holds every span's identity in memory).
pub const MAX_FILE_BYTES: u64 = 4 << 30;

/// What `stats` needs of one span.
#[derive(Clone, Debug)]
struct Span {
    trace: String,
    id: String,
    parent: Option<String>,
    service: String,
    name: String,
    kind: Kind,
    error: bool,
    /// `peer.service` of a CLIENT span: the service it calls.
    peer: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Server,
    Client,
    Other,
}

/// Min, mean and max of a per-trace number.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Range {
    /// Smallest value.
    pub min: u64,
    /// Mean, rounded to two decimals.
    pub avg: f64,
    /// Largest value.
    pub max: u64,
}

impl Range {
    fn of(values: &[u64]) -> Range {
        if values.is_empty() {
            return Range::default();
        }
        let sum: u64 = values.iter().sum();
        Range {
            min: *values.iter().min().unwrap_or(&0),
            avg: round2(sum as f64 / values.len() as f64),
            max: *values.iter().max().unwrap_or(&0),
        }
    }
}

/// The requests one service handled and how many failed.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ServiceErrors {
    /// Requests it handled: its SERVER (or root) spans, or for a database or
    /// external API the CLIENT spans that call it.
    pub requests: u64,
    /// Of those, failed (status ERROR).
    pub errors: u64,
    /// `errors / requests`.
    pub error_share: f64,
    /// Requests none of whose calls failed.
    pub without_failed_calls: u64,
    /// Of those, failed: the failure started here.
    pub own_errors: u64,
    /// `own_errors / without_failed_calls`: how often the service fails on its
    /// own, whatever its calls do — what its configured error rate describes.
    pub own_error_share: f64,
}

/// Distinct services.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Services {
    /// Services that emit spans (resource `service.name`).
    pub instrumented: u64,
    /// Services seen only as the `peer.service` of CLIENT spans (databases, external APIs).
    pub peers: u64,
    /// Both together.
    pub total: u64,
    /// Every name, sorted.
    pub names: Vec<String>,
}

/// Reuse factors: how often each distinct value appears.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Reuse {
    /// Calls per service (`calls / services.total`).
    pub service: f64,
    /// Spans per operation (`spans / operations`).
    pub operation: f64,
    /// Spans per trace id.
    pub trace: f64,
}

/// The statistics of one file, as `--json` writes them.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Stats {
    /// The file read.
    pub file: String,
    /// `otlp-json` or `spans-jsonl`.
    pub format: String,
    /// Its size.
    pub bytes: u64,
    /// Distinct trace ids.
    pub traces: u64,
    /// Spans.
    pub spans: u64,
    /// Service calls: spans, with a CLIENT span and its SERVER child counted once.
    pub calls: u64,
    /// Distinct services.
    pub services: Services,
    /// Distinct (service, span name) pairs, as a trace UI lists operations per service.
    pub operations: u64,
    /// Distinct span names.
    pub span_names: u64,
    /// Spans per trace.
    pub spans_per_trace: Range,
    /// Calls per trace.
    pub calls_per_trace: Range,
    /// Levels of each trace's span tree (a root alone is 1).
    pub depth: Range,
    /// Levels of each trace's call tree (a CLIENT/SERVER pair is one level).
    pub call_depth: Range,
    /// Reuse factors.
    pub reuse: Reuse,
    /// File bytes per span.
    pub bytes_per_span: f64,
    /// Spans with status ERROR, as a share of all spans.
    pub error_share: f64,
    /// Requests and failures per service.
    pub errors_by_service: BTreeMap<String, ServiceErrors>,
}

/// Reads `path` and works out its statistics.
pub fn of_file(path: &Path) -> Result<Stats> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if meta.len() > MAX_FILE_BYTES {
        bail!(
            "{} is {} bytes; stats reads files of at most {MAX_FILE_BYTES} bytes",
            path.display(),
            meta.len()
        );
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut spans = Vec::new();
    let mut format: Option<&'static str> = None;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let at = format!("{}:{}", path.display(), i + 1);
        let line = line.with_context(|| format!("{at}: cannot read the line"))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).with_context(|| {
            format!("{at}: not JSON (stats reads OTLP/JSON lines or spans JSONL)")
        })?;
        if v.get("resourceSpans").is_some() {
            format.get_or_insert("otlp-json");
            otlp_spans(&v, &at, &mut spans)?;
        } else if v.get("span_id").is_some() {
            format.get_or_insert("spans-jsonl");
            spans.push(jsonl_span(&v, &at)?);
        } else if v.get("resourceLogs").is_some() || v.get("resourceMetrics").is_some() {
            // Log and metric requests of an OTLP/JSON file carry no spans.
        } else {
            bail!("{at}: neither an OTLP/JSON request (`resourceSpans`) nor a spans-jsonl span (`span_id`)");
        }
    }
    let mut s = compute(&spans);
    s.file = path.display().to_string();
    s.format = format.unwrap_or("empty").to_string();
    s.bytes = meta.len();
    s.bytes_per_span = if s.spans > 0 {
        round2(s.bytes as f64 / s.spans as f64)
    } else {
        0.0
    };
    Ok(s)
}

/// The spans of one OTLP/JSON traces request.
fn otlp_spans(v: &Value, at: &str, out: &mut Vec<Span>) -> Result<()> {
    for rs in arr(v, "resourceSpans") {
        let service = rs
            .get("resource")
            .map(|r| attr(r, "service.name"))
            .and_then(|a| a.and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        for ss in arr(rs, "scopeSpans") {
            for sp in arr(ss, "spans") {
                let id = |k: &str| sp.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
                let (Some(trace), Some(span_id)) = (id("traceId"), id("spanId")) else {
                    bail!("{at}: a span without `traceId` or `spanId`");
                };
                let kind = match sp.get("kind") {
                    Some(Value::Number(n)) if n.as_u64() == Some(2) => Kind::Server,
                    Some(Value::Number(n)) if n.as_u64() == Some(3) => Kind::Client,
                    Some(Value::String(s)) if s.ends_with("SERVER") => Kind::Server,
                    Some(Value::String(s)) if s.ends_with("CLIENT") => Kind::Client,
                    _ => Kind::Other,
                };
                let error = match sp.get("status").and_then(|s| s.get("code")) {
                    Some(Value::Number(n)) => n.as_u64() == Some(2),
                    Some(Value::String(s)) => s.ends_with("ERROR"),
                    _ => false,
                };
                out.push(Span {
                    trace: trace.to_string(),
                    id: span_id.to_string(),
                    parent: id("parentSpanId").map(str::to_string),
                    service: service.clone(),
                    name: sp
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    kind,
                    error,
                    peer: attr(sp, "peer.service")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            }
        }
    }
    Ok(())
}

/// One line of spans JSONL.
fn jsonl_span(v: &Value, at: &str) -> Result<Span> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(trace), Some(id)) = (text("trace_id"), text("span_id")) else {
        bail!("{at}: a spans-jsonl line needs `trace_id` and `span_id` as strings");
    };
    let kind = match text("span_kind").as_deref() {
        Some("SERVER") => Kind::Server,
        Some("CLIENT") => Kind::Client,
        _ => Kind::Other,
    };
    Ok(Span {
        trace,
        id,
        parent: text("parent_span_id"),
        service: text("service_name").unwrap_or_default(),
        name: text("operation_name").unwrap_or_default(),
        kind,
        error: v.get("status_code").and_then(Value::as_u64) == Some(1),
        peer: v
            .get("tags")
            .and_then(|t| t.get("peer.service"))
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn arr<'a>(v: &'a Value, k: &str) -> impl Iterator<Item = &'a Value> {
    v.get(k).and_then(Value::as_array).into_iter().flatten()
}

/// The value of OTLP/JSON attribute `key` of `v` (its `attributes` list).
fn attr<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    arr(v, "attributes")
        .find(|a| a.get("key").and_then(Value::as_str) == Some(key))
        .and_then(|a| a.get("value"))
        .and_then(|val| val.as_object())
        .and_then(|o| o.values().next())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
    }
}

/// The statistics of a set of spans.
fn compute(spans: &[Span]) -> Stats {
    let mut by_trace: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in spans.iter().enumerate() {
        by_trace.entry(s.trace.as_str()).or_default().push(i);
    }
    let mut st = Stats::default();
    let mut instrumented = BTreeSet::new();
    let mut peers = BTreeSet::new();
    let mut operations = BTreeSet::new();
    let mut names = BTreeSet::new();
    let (mut spans_per, mut calls_per, mut depths, mut call_depths) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for idx in by_trace.values() {
        let pos: HashMap<&str, usize> = idx.iter().map(|&i| (spans[i].id.as_str(), i)).collect();
        let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut roots = Vec::new();
        for &i in idx {
            match spans[i].parent.as_deref().and_then(|p| pos.get(p)) {
                Some(&p) => children.entry(p).or_default().push(i),
                None => roots.push(i),
            }
        }
        let kids = |i: usize| children.get(&i).map(Vec::as_slice).unwrap_or(&[]);
        // A CLIENT span whose child is the callee's SERVER span: one call with it.
        let paired = |i: usize| {
            spans[i].kind == Kind::Client
                && kids(i)
                    .iter()
                    .any(|&c| spans[c].kind == Kind::Server && spans[c].service != spans[i].service)
        };
        let mut calls = 0u64;
        let (mut depth, mut call_depth) = (0u64, 0u64);
        let mut stack: Vec<(usize, u64, u64)> = roots.iter().map(|&r| (r, 1, 1)).collect();
        while let Some((i, d, cd)) = stack.pop() {
            let s = &spans[i];
            depth = depth.max(d);
            let pair = paired(i);
            if !pair {
                calls += 1;
                call_depth = call_depth.max(cd);
            }
            instrumented.insert(s.service.clone());
            operations.insert((s.service.clone(), s.name.clone()));
            names.insert(s.name.clone());
            // Which service handled this span's request, if it is one.
            let handler = if s.kind == Kind::Server || s.parent.is_none() {
                Some(s.service.clone())
            } else if s.kind == Kind::Client && !pair {
                s.peer.clone()
            } else {
                None
            };
            if let Some(h) = handler {
                if s.kind == Kind::Client {
                    peers.insert(h.clone());
                }
                let e = st.errors_by_service.entry(h).or_default();
                e.requests += 1;
                e.errors += u64::from(s.error);
                if !kids(i).iter().any(|&c| spans[c].error) {
                    e.without_failed_calls += 1;
                    e.own_errors += u64::from(s.error);
                }
            }
            for &c in kids(i) {
                stack.push((c, d + 1, if pair { cd } else { cd + 1 }));
            }
        }
        spans_per.push(idx.len() as u64);
        calls_per.push(calls);
        depths.push(depth);
        call_depths.push(call_depth);
        st.calls += calls;
    }
    let peers: BTreeSet<String> = peers.difference(&instrumented).cloned().collect();
    st.traces = by_trace.len() as u64;
    st.spans = spans.len() as u64;
    st.services = Services {
        instrumented: instrumented.len() as u64,
        peers: peers.len() as u64,
        total: (instrumented.len() + peers.len()) as u64,
        names: instrumented.union(&peers).cloned().collect(),
    };
    st.operations = operations.len() as u64;
    st.span_names = names.len() as u64;
    st.spans_per_trace = Range::of(&spans_per);
    st.calls_per_trace = Range::of(&calls_per);
    st.depth = Range::of(&depths);
    st.call_depth = Range::of(&call_depths);
    let per = |n: u64, d: u64| {
        if d == 0 {
            0.0
        } else {
            round2(n as f64 / d as f64)
        }
    };
    st.reuse = Reuse {
        service: per(st.calls, st.services.total),
        operation: per(st.spans, st.operations),
        trace: per(st.spans, st.traces),
    };
    st.error_share = share(spans.iter().filter(|s| s.error).count() as u64, st.spans);
    for e in st.errors_by_service.values_mut() {
        e.error_share = share(e.errors, e.requests);
        e.own_error_share = share(e.own_errors, e.without_failed_calls);
    }
    st
}

impl Stats {
    /// The statistics as a table.
    pub fn render(&self) -> String {
        let r = |x: &Range| format!("{}–{} (avg {})", x.min, x.max, x.avg);
        let mut out = format!(
            "{} ({}, {} bytes, {} bytes/span)\n\
             traces            {}\n\
             spans             {}  per trace {}\n\
             calls             {}  per trace {}  (a CLIENT span and its SERVER child count once)\n\
             depth             spans {}  calls {}\n\
             services          {} ({} instrumented, {} seen as peers)\n\
             operations        {} (service + span name), {} span names\n\
             reuse             {}× per service, {}× per operation, {}× per trace\n\
             error share       {:.2}% of spans\n\n\
             {:<20} {:>9} {:>8} {:>8} {:>8}\n",
            self.file,
            self.format,
            self.bytes,
            self.bytes_per_span,
            self.traces,
            self.spans,
            r(&self.spans_per_trace),
            self.calls,
            r(&self.calls_per_trace),
            r(&self.depth),
            r(&self.call_depth),
            self.services.total,
            self.services.instrumented,
            self.services.peers,
            self.operations,
            self.span_names,
            self.reuse.service,
            self.reuse.operation,
            self.reuse.trace,
            self.error_share * 100.0,
            "service",
            "requests",
            "errors",
            "share",
            "own"
        );
        for (name, e) in &self.errors_by_service {
            out.push_str(&format!(
                "{:<20} {:>9} {:>8} {:>7.2}% {:>7.2}%\n",
                name,
                e.requests,
                e.errors,
                e.error_share * 100.0,
                e.own_error_share * 100.0
            ));
        }
        out
    }
}
