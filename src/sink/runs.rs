//! What the sink saw of each otelsim run, for `otelsim verify`: spans per
//! trace (to find missing, duplicated and orphaned spans and children outside
//! their parents), session ids, the values of short string attributes (to check
//! enums against the run's conventions) and metric/log counts. Runs are told
//! apart by the `otelsim.run.id` resource attribute. Telemetry without one (a
//! collector may forward a `ResourceSpans` without its resource) is tracked
//! the same way under the pseudo-run [`UNATTRIBUTED_RUN`], so `otelsim verify`
//! can still find those traces by the trace ids it knows were acknowledged.
//!
//! Memory is bounded: at most `max_spans` spans are tracked in detail (about
//! 100 bytes each with the trace map); past that, spans are only counted and
//! the report says how many went unchecked.

use std::collections::BTreeMap;

// Hashing is on the sink's hot path (every span, every string attribute): a fast
// non-cryptographic hash; ids and keys here are not attacker-chosen in any way that matters.
use rustc_hash::FxHashMap as HashMap;

use super::view::{LogView, ResourceView, SpanView};

pub use crate::ids::RUN_ID_KEY;

/// Spans tracked in detail by default, over all runs (about 100 MB at most).
pub const DEFAULT_MAX_TRACKED_SPANS: usize = 1_000_000;
/// Runs told apart at once; more run ids are counted under [`OTHER_RUNS`].
const MAX_RUNS: usize = 64;
/// The run id under which runs past the first `MAX_RUNS` are lumped together.
pub const OTHER_RUNS: &str = "(other runs)";
/// The pseudo-run of telemetry whose resource has no `otelsim.run.id` (or none
/// at all); always tracked, whatever the number of runs.
pub const UNATTRIBUTED_RUN: &str = "(no run id)";
/// Traces whose log records the pseudo-run counts one by one (for verify to
/// attribute them); past that its log records are only counted.
const MAX_TRACES_WITH_LOGS: usize = 100_000;
/// Distinct values kept per attribute key; a key with more is not an enum.
const MAX_VALUES_PER_KEY: usize = 64;
/// Longer values are not enum values; they make their key "free text".
const MAX_ENUM_VALUE_LEN: usize = 64;
const MAX_KEYS: usize = 1024;
/// Longer attribute keys are not semantic-convention keys; not tracked.
const MAX_KEY_LEN: usize = 128;
/// Longer run ids are not otelsim's; such telemetry is not tracked per run.
const MAX_RUN_ID_LEN: usize = 128;
/// Problems listed in detail per run and kind (all are counted).
const MAX_LISTED_PROBLEMS: usize = 200;

#[derive(Clone, Copy)]
struct SpanLite {
    id: [u8; 8],
    parent: [u8; 8],
    start: u64,
    end: u64,
}

#[derive(Default)]
struct TraceState {
    spans: Vec<SpanLite>,
    /// A hash of the first session id seen in the trace (bounded memory per trace).
    session: Option<u64>,
}

#[derive(Default)]
struct KeyValues {
    values: HashMap<String, ValueSeen>,
    /// Too many or too long values: not an enum, no longer tracked.
    free_text: bool,
}

/// How often a value was seen, and one trace that carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ValueSeen {
    /// Spans and log records that carried the value.
    pub count: u64,
    /// Hex id of one trace with it, to look it up.
    pub example_trace: String,
}

/// One structural problem the sink found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// `duplicate_span`, `orphan_span`, `outside_parent` or `session_mismatch`.
    pub kind: String,
    /// Hex id of the trace it is in.
    pub trace_id: String,
    /// Hex id of the span it is about.
    pub span_id: String,
    /// What is wrong with the span, for people.
    pub detail: String,
}

#[derive(Default)]
struct RunState {
    spans: u64,
    metric_points: u64,
    log_records: u64,
    untracked_spans: u64,
    traces: HashMap<[u8; 16], TraceState>,
    values: HashMap<String, KeyValues>,
    session_problems: Vec<Problem>,
    session_mismatches: u64,
    /// Spans whose trace, span or parent id has the wrong length.
    invalid_ids: u64,
    /// Log records per trace id (kept for [`UNATTRIBUTED_RUN`] only).
    trace_logs: HashMap<[u8; 16], u64>,
}

/// What the sink saw of one run (part of the sink's JSON summary).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RunSeen {
    /// Spans received, duplicates included.
    pub spans: u64,
    /// Tracked spans, each counted once.
    pub unique_spans: u64,
    /// Tracked spans that arrived again after their first time.
    pub duplicate_spans: u64,
    /// Traces with at least one tracked span.
    pub traces: u64,
    /// Metric data points received (not deduplicated).
    pub metric_points: u64,
    /// Log records received (not deduplicated).
    pub log_records: u64,
    /// Spans beyond the tracking limit: counted, not checked.
    pub untracked_spans: u64,
    /// Unique spans per trace id (hex), for the trace-by-trace diff.
    pub trace_spans: BTreeMap<String, u64>,
    /// Problems by kind (all of them).
    pub problem_counts: BTreeMap<String, u64>,
    /// The first problems in detail.
    pub problems: Vec<Problem>,
    /// Values of short string span attributes: key → value → seen.
    pub attribute_values: BTreeMap<String, BTreeMap<String, ValueSeen>>,
    /// Keys with too many or too long values to be enums (not checked).
    pub free_text_keys: Vec<String>,
    /// Log records per trace id (hex), for [`UNATTRIBUTED_RUN`] only (empty for
    /// real runs): with `trace_spans`, what lets `verify` attribute them to a run.
    /// At most 100,000 traces; log records of further traces (and those without
    /// a trace id) are only in `log_records`.
    pub trace_log_records: BTreeMap<String, u64>,
}

/// Every run the sink has seen.
pub(crate) struct Runs {
    max_spans: usize,
    tracked_spans: usize,
    runs: HashMap<String, RunState>,
}

/// The run a resource's telemetry belongs to: its run id, or [`UNATTRIBUTED_RUN`].
fn run_of(resource: Option<ResourceView<'_>>) -> &str {
    run_id(resource).unwrap_or(UNATTRIBUTED_RUN)
}

/// The run id in a resource, if any.
fn run_id(resource: Option<ResourceView<'_>>) -> Option<&str> {
    resource?
        .attributes()
        .find_map(|kv| (kv.key == RUN_ID_KEY).then(|| kv.str_value()).flatten())
        .filter(|id| id.len() <= MAX_RUN_ID_LEN)
}

/// Session ids are kept per trace; `mcp.session.id` is the MCP server's own
/// session, not the conversation's.
fn is_session_key(key: &str) -> bool {
    key.ends_with("session.id") && !key.starts_with("mcp.")
}

impl Runs {
    /// Tracks at most `max_spans` spans in detail, over all runs.
    pub(crate) fn new(max_spans: usize) -> Self {
        Runs {
            max_spans,
            tracked_spans: 0,
            runs: HashMap::default(),
        }
    }

    fn run(&mut self, id: &str) -> &mut RunState {
        if !self.runs.contains_key(id) {
            let real_runs = self.runs.len() - usize::from(self.runs.contains_key(UNATTRIBUTED_RUN));
            let key = if real_runs >= MAX_RUNS && id != UNATTRIBUTED_RUN {
                OTHER_RUNS
            } else {
                id
            };
            return self.runs.entry(key.to_string()).or_default();
        }
        self.runs.get_mut(id).expect("present")
    }

    /// Counts the spans of a resource's run and keeps ids, times and values of the tracked ones.
    pub(crate) fn record_spans(
        &mut self,
        resource: Option<ResourceView<'_>>,
        spans: &[SpanView<'_>],
    ) {
        let id = run_of(resource).to_string();
        let full = self.tracked_spans >= self.max_spans;
        let run = self.run(&id);
        note_resource(run, resource);
        let mut tracked = 0;
        for span in spans {
            run.spans += 1;
            let (Ok(trace_id), Ok(span_id)) = (
                <[u8; 16]>::try_from(span.trace_id),
                <[u8; 8]>::try_from(span.span_id),
            ) else {
                run.invalid_ids += 1;
                continue;
            };
            // Whole traces or none: a trace admitted while there was room
            // keeps all its spans, so the cap never cuts one in two.
            let trace = match run.traces.get_mut(&trace_id) {
                Some(t) => t,
                None if full => {
                    run.untracked_spans += 1;
                    continue;
                }
                None => run.traces.entry(trace_id).or_default(),
            };
            tracked += 1;
            let parent = match span.parent_span_id.len() {
                0 => [0; 8],
                _ => match <[u8; 8]>::try_from(span.parent_span_id) {
                    Ok(p) => p,
                    Err(_) => {
                        run.invalid_ids += 1;
                        // An unreadable parent: never present, so reported as an orphan.
                        [0xff; 8]
                    }
                },
            };
            trace.spans.push(SpanLite {
                id: span_id,
                parent,
                start: span.start,
                end: span.end,
            });
            for kv in span.attributes() {
                let Some(v) = kv.str_bytes else { continue };
                if is_session_key(kv.key) {
                    let h = fx_hash(v);
                    match trace.session {
                        None => trace.session = Some(h),
                        Some(first) if first != h => {
                            run.session_mismatches += 1;
                            if run.session_problems.len() < MAX_LISTED_PROBLEMS {
                                run.session_problems.push(Problem {
                                    kind: "session_mismatch".into(),
                                    trace_id: hex::encode(trace_id),
                                    span_id: hex::encode(span_id),
                                    detail: format!(
                                        "{} is `{}`, unlike an earlier span of the trace",
                                        short(kv.key),
                                        short(&String::from_utf8_lossy(v))
                                    ),
                                });
                            }
                        }
                        Some(_) => {}
                    }
                }
                note_value(&mut run.values, kv.key, v, &trace_id);
            }
        }
        self.tracked_spans += tracked;
    }

    /// Counts the log records of a resource's run and notes their string
    /// attributes; returns how many there were.
    pub(crate) fn record_logs<'a>(
        &mut self,
        resource: Option<ResourceView<'_>>,
        records: impl Iterator<Item = LogView<'a>>,
    ) -> u64 {
        let mut count = 0;
        let id = run_of(resource).to_string();
        let per_trace = id == UNATTRIBUTED_RUN;
        let run = self.run(&id);
        note_resource(run, resource);
        for r in records {
            count += 1;
            run.log_records += 1;
            let trace = <[u8; 16]>::try_from(r.trace_id).unwrap_or([0; 16]);
            if per_trace && trace != [0; 16] {
                let room = run.trace_logs.len() < MAX_TRACES_WITH_LOGS;
                match run.trace_logs.get_mut(&trace) {
                    Some(n) => *n += 1,
                    None if room => {
                        run.trace_logs.insert(trace, 1);
                    }
                    None => {}
                }
            }
            for kv in r.attributes() {
                if let Some(v) = kv.str_bytes {
                    note_value(&mut run.values, kv.key, v, &trace);
                }
            }
        }
        count
    }

    /// Counts metric points of the resource's run.
    pub(crate) fn record_points(&mut self, resource: Option<ResourceView<'_>>, points: u64) {
        let id = run_of(resource).to_string();
        let run = self.run(&id);
        note_resource(run, resource);
        run.metric_points += points;
    }

    /// The per-run findings, computed now (duplicates and nesting need whole traces).
    pub(crate) fn seen(&self) -> BTreeMap<String, RunSeen> {
        // A pipeline may drop the resource of some spans: a parent among the
        // same trace's spans without a run id did arrive, so its child is no orphan.
        let unattributed = self.runs.get(UNATTRIBUTED_RUN);
        self.runs
            .iter()
            .map(|(id, r)| (id.clone(), r.seen(unattributed)))
            .collect()
    }
}

/// Resource attributes (e.g. the component) are checked like span attributes;
/// once per request group is enough to see every distinct value.
fn note_resource(run: &mut RunState, resource: Option<ResourceView<'_>>) {
    for kv in resource.iter().flat_map(|r| r.attributes()) {
        if let Some(v) = kv.str_bytes {
            note_value(&mut run.values, kv.key, v, &[0; 16]);
        }
    }
}

fn fx_hash(s: &[u8]) -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(s);
    h.finish()
}

/// At most 80 characters of a value, for problem details.
fn short(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(80).collect::<String>())
    }
}

/// Notes string value `v` (UTF-8) of attribute `key`.
fn note_value(values: &mut HashMap<String, KeyValues>, key: &str, v: &[u8], trace: &[u8; 16]) {
    if key.len() > MAX_KEY_LEN {
        return;
    }
    // One lookup for a key seen before (nearly every time).
    if let Some(kv) = values.get_mut(key) {
        return note_key_value(kv, v, trace);
    }
    if values.len() >= MAX_KEYS {
        return;
    }
    note_key_value(values.entry(key.to_string()).or_default(), v, trace);
}

fn note_key_value(kv: &mut KeyValues, v: &[u8], trace: &[u8; 16]) {
    if kv.free_text {
        return;
    }
    // A long value is never among those kept, so only short ones are read as text.
    let v = match std::str::from_utf8(v) {
        Ok(v) if v.len() <= MAX_ENUM_VALUE_LEN => v,
        _ => {
            kv.free_text = true;
            kv.values = HashMap::default();
            return;
        }
    };
    if let Some(seen) = kv.values.get_mut(v) {
        seen.count += 1;
        return;
    }
    if kv.values.len() >= MAX_VALUES_PER_KEY {
        kv.free_text = true;
        kv.values = HashMap::default();
        return;
    }
    kv.values.insert(
        v.to_string(),
        ValueSeen {
            count: 1,
            example_trace: hex::encode(trace),
        },
    );
}

impl RunState {
    /// Whether span `id` of `trace` arrived in this run.
    fn has_span(&self, trace: &[u8; 16], id: [u8; 8]) -> bool {
        self.traces
            .get(trace)
            .is_some_and(|t| t.spans.iter().any(|s| s.id == id))
    }

    fn seen(&self, unattributed: Option<&RunState>) -> RunSeen {
        let mut out = RunSeen {
            spans: self.spans,
            metric_points: self.metric_points,
            log_records: self.log_records,
            untracked_spans: self.untracked_spans,
            traces: self.traces.len() as u64,
            ..Default::default()
        };
        let mut problems = Vec::new();
        let count = |kind: &str, p: Problem, problems: &mut Vec<Problem>, out: &mut RunSeen| {
            let n = out.problem_counts.entry(kind.to_string()).or_insert(0);
            *n += 1;
            // Listed per kind, so a flood of one kind cannot hide another.
            if *n <= MAX_LISTED_PROBLEMS as u64 {
                problems.push(p);
            }
        };
        for (trace_id, t) in &self.traces {
            let mut spans = t.spans.clone();
            spans.sort_unstable_by_key(|s| s.id);
            let before = spans.len();
            spans.dedup_by(|b, a| {
                if a.id == b.id {
                    count(
                        "duplicate_span",
                        Problem {
                            kind: "duplicate_span".into(),
                            trace_id: hex::encode(trace_id),
                            span_id: hex::encode(a.id),
                            detail: "received more than once".into(),
                        },
                        &mut problems,
                        &mut out,
                    );
                    true
                } else {
                    false
                }
            });
            out.duplicate_spans += (before - spans.len()) as u64;
            out.unique_spans += spans.len() as u64;
            out.trace_spans
                .insert(hex::encode(trace_id), spans.len() as u64);
            for s in &spans {
                if s.parent == [0; 8] {
                    continue;
                }
                let tid = hex::encode(trace_id);
                match spans.binary_search_by_key(&s.parent, |p| p.id) {
                    Err(_) if unattributed.is_some_and(|u| u.has_span(trace_id, s.parent)) => {}
                    Err(_) => count(
                        "orphan_span",
                        Problem {
                            kind: "orphan_span".into(),
                            trace_id: tid,
                            span_id: hex::encode(s.id),
                            detail: format!("parent {} never arrived", hex::encode(s.parent)),
                        },
                        &mut problems,
                        &mut out,
                    ),
                    Ok(i) => {
                        let p = spans[i];
                        if s.start < p.start || s.end > p.end {
                            count(
                                "outside_parent",
                                Problem {
                                    kind: "outside_parent".into(),
                                    trace_id: tid,
                                    span_id: hex::encode(s.id),
                                    detail: format!(
                                        "[{}, {}] is not inside its parent {} [{}, {}]",
                                        s.start,
                                        s.end,
                                        hex::encode(p.id),
                                        p.start,
                                        p.end
                                    ),
                                },
                                &mut problems,
                                &mut out,
                            );
                        }
                    }
                }
            }
        }
        if self.invalid_ids > 0 {
            out.problem_counts
                .insert("invalid_id".into(), self.invalid_ids);
        }
        if self.session_mismatches > 0 {
            out.problem_counts
                .insert("session_mismatch".into(), self.session_mismatches);
            problems.extend(self.session_problems.iter().cloned());
        }
        out.problems = problems;
        for (k, kv) in &self.values {
            if kv.free_text {
                out.free_text_keys.push(k.clone());
            } else {
                out.attribute_values.insert(
                    k.clone(),
                    kv.values
                        .iter()
                        .map(|(v, s)| (v.clone(), s.clone()))
                        .collect(),
                );
            }
        }
        out.free_text_keys.sort();
        out.trace_log_records = self
            .trace_logs
            .iter()
            .map(|(t, n)| (hex::encode(t), *n))
            .collect();
        out
    }
}
