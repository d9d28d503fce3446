//! `otelsim verify run.json --sink-report sink.json`: did the receiver get
//! exactly what the run says was acknowledged? Compares the run's list of
//! acknowledged traces (and its metric/log counts) with what `otelsim sink`
//! saw of the same run id, and checks the sink's structural findings and every
//! enum-like attribute value against the run's semantic conventions.

use crate::plan::World;
use crate::sink::runs::{RunSeen, OTHER_RUNS};
use anyhow::{bail, Context as _, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Examples listed per kind of difference in the printed verdict (the JSON has all).
const LISTED: usize = 10;

/// The sink's pseudo-run for telemetry that arrived without `otelsim.run.id`
/// (a pipeline that dropped the resource); the sink names it so too
/// (`UNATTRIBUTED_RUN` in `sink::runs`).
const UNATTRIBUTED_RUN: &str = "(no run id)";

/// The parts of a run report `verify` reads.
#[derive(serde::Deserialize)]
pub struct RunFile {
    report: RunPart,
    /// The run's own conventions, so enums are checked against what it used.
    #[serde(default)]
    pub settings: RecordedSettings,
}

/// Where the run's config, conventions and scenarios came from (absent: embedded).
#[derive(Default, serde::Deserialize)]
#[serde(default)]
pub struct RecordedSettings {
    /// The config file the run loaded.
    pub config: Option<std::path::PathBuf>,
    /// The conventions file the run loaded.
    pub semconv: Option<std::path::PathBuf>,
    /// The directory its scenarios came from.
    pub scenarios_dir: Option<std::path::PathBuf>,
    /// The vendor prefix its attribute names carried.
    pub vendor: Option<String>,
}

/// Reads a run report (from `otelsim run --report`).
pub fn read_run(path: &Path) -> Result<RunFile> {
    read_json(path, "run report (from `otelsim run --report`)")
}

#[derive(serde::Deserialize)]
struct RunPart {
    run_id: String,
    export: Export,
    #[serde(default)]
    acked_traces: Option<BTreeMap<String, u64>>,
    #[serde(default)]
    acked_traces_unlisted: u64,
    /// A sharded run's report: which shards it covers.
    #[serde(default)]
    shards: Option<crate::run::shard::ShardsReport>,
}

#[derive(serde::Deserialize)]
struct Export {
    spans: Signal,
    metric_points: Signal,
    log_records: Signal,
}

#[derive(serde::Deserialize)]
struct Signal {
    acked: u64,
    failed: u64,
}

#[derive(serde::Deserialize)]
struct SinkFile {
    #[serde(default)]
    runs: BTreeMap<String, RunSeen>,
}

/// One difference between what was acknowledged and what arrived.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Difference {
    /// What kind of difference, e.g. `missing_trace` or `invalid_enum_value`.
    pub kind: String,
    /// The trace it is about; empty for run-wide totals.
    pub trace_id: String,
    /// Counts or values that show it, for people.
    pub detail: String,
}

/// The verdict, also written as JSON with `--output`.
#[derive(Debug, serde::Serialize)]
pub struct Verdict {
    /// The run compared, from the run report.
    pub run_id: String,
    /// No difference, and complete (or partial and `--allow-partial`).
    pub ok: bool,
    /// Verified as far as the limits allowed (see `limits`).
    pub partial: bool,
    /// Spans the run's exporter had acknowledged.
    pub acked_spans: u64,
    /// Distinct spans the sink tracked for this run.
    pub received_unique_spans: u64,
    /// Spans that arrived more than once.
    pub duplicate_spans: u64,
    /// Acknowledged traces, listed or not.
    pub acked_traces: u64,
    /// Traces the sink saw for this run.
    pub received_traces: u64,
    /// Spans of acknowledged traces that arrived without `otelsim.run.id` (the
    /// pipeline dropped their resource) and were matched to the run by trace id;
    /// included in `received_unique_spans`.
    pub unattributed_spans: u64,
    /// Acknowledged traces of which no span arrived.
    pub missing_traces: u64,
    /// Acknowledged traces that arrived with fewer spans.
    pub incomplete_traces: u64,
    /// Traces that arrived without being acknowledged.
    pub unexpected_traces: u64,
    /// Metric points the exporter had acknowledged.
    pub acked_metric_points: u64,
    /// Metric points the sink counted for this run.
    pub received_metric_points: u64,
    /// Log records the exporter had acknowledged.
    pub acked_log_records: u64,
    /// Log records the sink counted for this run.
    pub received_log_records: u64,
    /// Structural problems the sink found, by kind.
    pub problem_counts: BTreeMap<String, u64>,
    /// Attribute keys with values seen that the conventions define as enums.
    pub enum_keys_checked: u64,
    /// Spans with a value outside its enum (plus each key that turned free text).
    pub invalid_enum_values: u64,
    /// Why a trace-by-trace comparison was only partial (empty when complete).
    pub limits: Vec<String>,
    /// What the reader should know that changes no verdict.
    pub notes: Vec<String>,
    /// Everything that did not match, in the order found.
    pub differences: Vec<Difference>,
    /// A sharded run's report: the shards it covers, and those missing or stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<crate::run::shard::ShardsReport>,
}

/// Reads both files and compares. `world` supplies the allowed enum values.
/// `allow_partial`: limits of the sink or the report (spans beyond their caps)
/// do not fail the verdict by themselves.
pub fn verify(
    run: &RunFile,
    sink_path: &Path,
    world: &World,
    allow_partial: bool,
) -> Result<Verdict> {
    let sink: SinkFile = read_json(
        sink_path,
        "sink report (from `otelsim sink --summary-file`)",
    )?;
    let run = &run.report;
    if run.run_id == OTHER_RUNS || run.run_id == UNATTRIBUTED_RUN {
        bail!("run id {} is reserved", run.run_id);
    }
    // A run the sink never saw is the total-loss case: compare against nothing.
    let nothing = RunSeen::default();
    let seen = sink.runs.get(&run.run_id).unwrap_or(&nothing);
    let unattributed = sink.runs.get(UNATTRIBUTED_RUN).unwrap_or(&nothing);
    let mut v = compare(run, seen, unattributed, world, allow_partial);
    if !sink.runs.contains_key(&run.run_id) && v.unattributed_spans == 0 {
        let others: Vec<&str> = sink.runs.keys().map(String::as_str).collect();
        v.limits.push(format!(
            "the sink saw nothing of this run{}",
            if others.is_empty() {
                String::new()
            } else {
                format!(" (it saw runs {})", others.join(", "))
            }
        ));
        v.ok = false;
    }
    Ok(v)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = crate::input_file::read_text(path, crate::input_file::MAX_REPORT_BYTES)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    crate::input_file::json_in_log(&text).with_context(|| {
        format!(
            "{} is not a {what}: expected its JSON document",
            path.display()
        )
    })
}

/// The spans per trace that arrived without a run id, for the acknowledged
/// traces only (the rest may be anyone's); their sum.
fn matched_by_trace_id<'a>(
    acked: Option<&BTreeMap<String, u64>>,
    unattributed: &'a RunSeen,
) -> (BTreeMap<&'a str, u64>, u64) {
    let mut matched = BTreeMap::new();
    let Some(acked) = acked else {
        return (matched, 0);
    };
    for (id, &n) in &unattributed.trace_spans {
        if acked.contains_key(id) {
            matched.insert(id.as_str(), n);
        }
    }
    let total = matched.values().sum();
    (matched, total)
}

fn compare(
    run: &RunPart,
    seen: &RunSeen,
    unattributed: &RunSeen,
    world: &World,
    allow_partial: bool,
) -> Verdict {
    let e = &run.export;
    // A pipeline may forward spans without their resource, so without the run
    // id: attributed to the run by what verify knows, the acknowledged trace ids.
    let (matched, unattributed_spans) =
        matched_by_trace_id(run.acked_traces.as_ref(), unattributed);
    // Log records carry their trace id too: those of the acknowledged traces are the run's.
    let matched_log_records: u64 = run.acked_traces.as_ref().map_or(0, |acked| {
        unattributed
            .trace_log_records
            .iter()
            .filter(|(id, _)| acked.contains_key(*id))
            .map(|(_, n)| n)
            .sum()
    });
    let received_traces = seen.traces
        + matched
            .keys()
            .filter(|id| !seen.trace_spans.contains_key(**id))
            .count() as u64;
    let mut v = Verdict {
        run_id: run.run_id.clone(),
        ok: true,
        partial: false,
        acked_spans: e.spans.acked,
        received_unique_spans: seen.unique_spans + unattributed_spans,
        duplicate_spans: seen.duplicate_spans,
        acked_traces: 0,
        received_traces,
        unattributed_spans,
        missing_traces: 0,
        incomplete_traces: 0,
        unexpected_traces: 0,
        acked_metric_points: e.metric_points.acked,
        received_metric_points: seen.metric_points,
        acked_log_records: e.log_records.acked,
        received_log_records: seen.log_records + matched_log_records,
        problem_counts: seen.problem_counts.clone(),
        enum_keys_checked: 0,
        invalid_enum_values: 0,
        limits: Vec::new(),
        notes: Vec::new(),
        differences: Vec::new(),
        shards: run.shards.clone(),
    };
    if matched_log_records > 0 {
        v.notes.push(format!(
            "{matched_log_records} log records arrived without otelsim.run.id and were matched by trace id"
        ));
    }
    if unattributed_spans > 0 {
        v.notes.push(format!(
            "{unattributed_spans} spans arrived without otelsim.run.id (resource dropped by the pipeline) and were matched by trace id"
        ));
    }
    let diff = |v: &mut Verdict, kind: &str, trace_id: &str, detail: String| {
        v.differences.push(Difference {
            kind: kind.into(),
            trace_id: trace_id.into(),
            detail,
        });
    };
    // A sharded run is whole only with every shard's report, each run to its end.
    if let Some(sh) = &run.shards {
        for m in &sh.missing {
            diff(
                &mut v,
                "missing_shard",
                "",
                format!(
                    "shard {m} of {}: no report of it was merged (the shard died, or its report was not collected); what it sent is unaccounted for",
                    sh.count
                ),
            );
        }
        for i in &sh.interrupted {
            diff(
                &mut v,
                "interrupted_shard",
                "",
                format!(
                    "shard {i} of {} stopped before its end (interrupted, or stopped by an export failure): its share of the run is incomplete",
                    sh.count
                ),
            );
        }
    }
    // Totals: every acknowledged item arrived, and nothing twice.
    if seen.untracked_spans > 0 {
        v.limits.push(format!(
            "the sink tracked no detail for {} span(s) beyond its --max-tracked-spans",
            seen.untracked_spans
        ));
    }
    if unattributed.untracked_spans > 0 {
        v.limits.push(format!(
            "the sink tracked no detail for {} span(s) without a run id beyond its --max-tracked-spans (some may be this run's)",
            unattributed.untracked_spans
        ));
    }
    // Spans that may be this run's but were not tracked trace by trace.
    let untracked = seen.untracked_spans + unattributed.untracked_spans;
    // Untracked spans may hold duplicates: the lower bound of what arrived is the
    // tracked unique spans, the upper bound adds every untracked one.
    let received_spans = seen.unique_spans + unattributed_spans + untracked;
    if received_spans < e.spans.acked {
        diff(
            &mut v,
            "missing_spans",
            "",
            format!(
                "{} span(s) acknowledged, {received_spans} received",
                e.spans.acked
            ),
        );
    }
    for (kind, acked, failed, got) in [
        ("spans", e.spans.acked, e.spans.failed, seen.unique_spans),
        (
            "metric_points",
            e.metric_points.acked,
            e.metric_points.failed,
            seen.metric_points,
        ),
        (
            "log_records",
            e.log_records.acked,
            e.log_records.failed,
            seen.log_records + matched_log_records,
        ),
    ] {
        if kind != "spans" && got < acked {
            // Points and records carry no trace id to match them by.
            let without = match kind {
                "metric_points" => unattributed.metric_points,
                _ => unattributed.log_records,
            };
            let also = if without > 0 {
                format!(
                    " (and {without} without any otelsim.run.id, which cannot be matched to a run)"
                )
            } else {
                String::new()
            };
            diff(
                &mut v,
                &format!("missing_{kind}"),
                "",
                format!("{acked} acknowledged, {got} received{also}"),
            );
        } else if got > acked && failed == 0 {
            // With failures, a batch whose answer was lost may have arrived anyway.
            diff(
                &mut v,
                &format!("extra_{kind}"),
                "",
                format!("{acked} acknowledged, {got} distinct received"),
            );
        }
    }
    // Trace by trace.
    match &run.acked_traces {
        None => v.limits.push(
            "the run report lists no acknowledged traces (it was written without --report?)".into(),
        ),
        Some(acked) => {
            if run.acked_traces_unlisted > 0 {
                v.limits.push(format!(
                    "the run report lists the first {} acknowledged traces only ({} more unlisted)",
                    acked.len(),
                    run.acked_traces_unlisted
                ));
            }
            v.acked_traces = acked.len() as u64 + run.acked_traces_unlisted;
            let complete_lists = run.acked_traces_unlisted == 0 && seen.untracked_spans == 0;
            for (id, &want) in acked {
                let got = match (seen.trace_spans.get(id), matched.get(id.as_str())) {
                    (None, None) => None,
                    (a, b) => Some(a.copied().unwrap_or(0) + b.copied().unwrap_or(0)),
                };
                match got.as_ref() {
                    None if untracked == 0 => {
                        v.missing_traces += 1;
                        diff(
                            &mut v,
                            "missing_trace",
                            id,
                            format!("{want} span(s) acknowledged, none received"),
                        );
                    }
                    None => {}
                    Some(&got) if got < want && untracked == 0 => {
                        v.incomplete_traces += 1;
                        diff(
                            &mut v,
                            "incomplete_trace",
                            id,
                            format!("{want} span(s) acknowledged, {got} received"),
                        );
                    }
                    Some(&got)
                        if got > want && e.spans.failed == 0 && run.acked_traces_unlisted == 0 =>
                    {
                        diff(
                            &mut v,
                            "extra_spans",
                            id,
                            format!("{want} span(s) acknowledged, {got} distinct received"),
                        );
                    }
                    Some(_) => {}
                }
            }
            if complete_lists {
                for (id, got) in &seen.trace_spans {
                    if acked.contains_key(id) {
                        continue;
                    }
                    // A batch whose answer was lost counts as failed yet may have arrived.
                    if e.spans.failed == 0 {
                        v.unexpected_traces += 1;
                        diff(
                            &mut v,
                            "unexpected_trace",
                            id,
                            format!("{got} span(s) received, none acknowledged"),
                        );
                    }
                }
            }
        }
    }
    // Structure, as the sink found it.
    if seen.duplicate_spans > 0 {
        diff(
            &mut v,
            "duplicate_spans",
            "",
            format!("{} span(s) arrived more than once", seen.duplicate_spans),
        );
    }
    // Structure counts for traces that were acknowledged in full: a trace with a
    // refused or failed part is incomplete by design.
    let fully_acked = |trace: &str| match &run.acked_traces {
        Some(acked) => acked.get(trace).is_some_and(|want| {
            let got = seen.trace_spans.get(trace).copied().unwrap_or(0)
                + matched.get(trace).copied().unwrap_or(0);
            got == *want
        }),
        None => true,
    };
    let mut unsure_orphans = 0;
    for p in &seen.problems {
        // The parent of an "orphan" may be among the same trace's spans that lost their run id.
        if p.kind == "orphan_span" && matched.contains_key(p.trace_id.as_str()) {
            unsure_orphans += 1;
            continue;
        }
        if p.trace_id.is_empty() || fully_acked(&p.trace_id) || e.spans.failed == 0 {
            diff(
                &mut v,
                &p.kind,
                &p.trace_id,
                format!("span {}: {}", p.span_id, p.detail),
            );
        }
    }
    if unsure_orphans > 0 {
        v.notes.push(format!(
            "{unsure_orphans} span(s) whose parent did not arrive with the run are not counted as orphans: their traces also arrived partly without otelsim.run.id, where the parents may be"
        ));
    }
    if let Some(n) = seen.problem_counts.get("invalid_id") {
        diff(
            &mut v,
            "invalid_id",
            "",
            format!("{n} span(s) with a trace, span or parent id of the wrong length"),
        );
    }
    // Enums: every value of an enum-like key inside the conventions' allowed set.
    for (key, values) in &seen.attribute_values {
        let Some(allowed) = world.enums.get(key) else {
            continue;
        };
        v.enum_keys_checked += 1;
        for (value, s) in values {
            if !allowed.iter().any(|a| a.as_str() == Some(value.as_str())) {
                v.invalid_enum_values += s.count;
                let names: Vec<String> = allowed.iter().map(ToString::to_string).collect();
                diff(
                    &mut v,
                    "invalid_enum_value",
                    &s.example_trace,
                    format!(
                        "{key} = `{value}` ({} span(s)); allowed: {}",
                        s.count,
                        names.join(", ")
                    ),
                );
            }
        }
    }
    for key in &seen.free_text_keys {
        if world.enums.contains_key(key) {
            v.invalid_enum_values += 1;
            diff(
                &mut v,
                "invalid_enum_value",
                "",
                format!("{key} has more distinct or longer values than any enum allows"),
            );
        }
    }
    v.partial = !v.limits.is_empty();
    v.ok = v.differences.is_empty() && (!v.partial || allow_partial);
    v
}

impl Verdict {
    /// The verdict for a terminal: counts, notes, up to ten examples per kind.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "otelsim verify: run {}", self.run_id);
        if let Some(sh) = &self.shards {
            let list = |l: &[u32]| match l {
                [] => "none".to_string(),
                l => l.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
            };
            let _ = writeln!(
                o,
                "  shards:        {} of {} merged · missing: {} · stopped early: {}",
                sh.included.len(),
                sh.count,
                list(&sh.missing),
                list(&sh.interrupted)
            );
        }
        let _ = writeln!(
            o,
            "  spans:         {} acknowledged · {} received · {} duplicated",
            self.acked_spans, self.received_unique_spans, self.duplicate_spans
        );
        let _ = writeln!(
            o,
            "  traces:        {} acknowledged · {} received · {} missing · {} incomplete · {} unexpected",
            self.acked_traces,
            self.received_traces,
            self.missing_traces,
            self.incomplete_traces,
            self.unexpected_traces
        );
        let _ = writeln!(
            o,
            "  metric points: {} acknowledged · {} received",
            self.acked_metric_points, self.received_metric_points
        );
        let _ = writeln!(
            o,
            "  log records:   {} acknowledged · {} received",
            self.acked_log_records, self.received_log_records
        );
        let problems = |k: &str| self.problem_counts.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            o,
            "  structure:     {} orphan span(s) · {} outside their parent · {} session-id mismatch(es)",
            problems("orphan_span"),
            problems("outside_parent"),
            problems("session_mismatch")
        );
        let _ = writeln!(
            o,
            "  enums:         {} enum attribute(s) checked · {} invalid value(s)",
            self.enum_keys_checked, self.invalid_enum_values
        );
        for l in self.limits.iter().chain(&self.notes) {
            let _ = writeln!(o, "  note: {l}");
        }
        let mut by_kind: BTreeMap<&str, Vec<&Difference>> = BTreeMap::new();
        for d in &self.differences {
            by_kind.entry(&d.kind).or_default().push(d);
        }
        for (kind, ds) in by_kind {
            let _ = writeln!(o, "  {kind}: {}", ds.len());
            for d in ds.iter().take(LISTED) {
                if d.trace_id.is_empty() {
                    let _ = writeln!(o, "    {}", d.detail);
                } else {
                    let _ = writeln!(o, "    trace {}: {}", d.trace_id, d.detail);
                }
            }
            if ds.len() > LISTED {
                let _ = writeln!(o, "    … {} more (see --output)", ds.len() - LISTED);
            }
        }
        let _ = writeln!(
            o,
            "{}",
            if !self.differences.is_empty() {
                "NOT VERIFIED: see the differences above"
            } else if self.partial {
                "PARTIALLY VERIFIED: no difference found within the limits noted above (--allow-partial accepts this)"
            } else {
                "VERIFIED: everything acknowledged arrived once, complete and valid"
            }
        );
        o
    }
}
