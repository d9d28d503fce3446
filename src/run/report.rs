//! The run report: what a run generated, sent and had acknowledged, per signal
//! and scenario, how well it kept its schedule, and its one-screen rendering.

use super::job::{ScenarioCount, Timing};
use super::schedule::ScheduleReport;
use super::shard::ShardsReport;
use crate::engine_sdk::SdkStats;
use crate::export::{CountersSnapshot, OutputReport};
use crate::pace::RateUnit;
use std::collections::BTreeMap;

/// How well the open-loop schedule was kept (only with a load shape).
#[derive(Debug, serde::Serialize)]
pub struct Pacing {
    /// What the rates count: traces or spans.
    pub unit: RateUnit,
    /// Units the shape offered over the run's clock.
    pub target_units: f64,
    /// Units actually sent.
    pub achieved_units: u64,
    /// Average target rate over the run, in `unit`s per second.
    pub target_per_s: f64,
    /// Units sent per second of the run's clock.
    pub achieved_per_s: f64,
    /// Traces sent per second of the run's clock.
    pub achieved_traces_per_s: f64,
    /// Median lag of a pick behind its scheduled time, in ms.
    pub lag_p50_ms: f64,
    /// 99th-percentile lag, in ms.
    pub lag_p99_ms: f64,
    /// Largest lag, in ms.
    pub lag_max_ms: f64,
    /// Picks sent more than 10 ms after their slot.
    pub late_picks: u64,
    /// Picks made on the schedule.
    pub picks: u64,
}

/// What a run generated and delivered: printed as the summary, written by `--report`.
#[derive(Debug, serde::Serialize)]
pub struct RunReport {
    /// `otelsim.run.id` on every resource of the run; `verify` matches on it.
    pub run_id: String,
    /// The seed used (given, or drawn): rerun with it to get the same telemetry.
    pub seed: u64,
    /// Concurrent generators (`--workers`).
    pub workers: usize,
    /// Back-dated or realtime spans.
    pub timing: Timing,
    /// Wall time of the whole run, final flush included, in seconds.
    pub elapsed_s: f64,
    /// The run's own clock: wall time, or virtual time covered.
    pub clock_s: f64,
    /// Whether Ctrl-C or SIGTERM stopped the run early.
    pub interrupted: bool,
    /// The export failure that stopped the run, if any.
    pub fatal: Option<String>,
    /// What each scenario produced, by name.
    pub scenarios: BTreeMap<String, ScenarioCount>,
    /// Spans handed to the first output per second of the run's clock.
    pub achieved_spans_per_s: f64,
    /// How well the schedule was kept; `None` without a load shape.
    pub pacing: Option<Pacing>,
    /// The counters of the output that sends to a receiver (else of the
    /// first): the whole story with one output, what `verify` compares.
    pub export: CountersSnapshot,
    /// Every output's counters, in the order given (`--output`).
    pub outputs: Vec<OutputReport>,
    /// Traces the receiver acknowledged in full, as (trace id hex → spans);
    /// present with `--report`. Capped; `acked_traces_unlisted` counts the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_traces: Option<AckedTraces>,
    /// Acknowledged traces left out of `acked_traces` (past its cap).
    pub acked_traces_unlisted: u64,
    /// With `--engine sdk`: what the SDK did with the spans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk: Option<SdkStats>,
    /// With `--workload-schedule`: the picks each bucket took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_schedule: Option<ScheduleReport>,
    /// The load profile's incident windows, with the error share and latency of
    /// each one's service inside and outside it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<crate::incidents::WindowReport>,
    /// With `--shard`: which shard of how many this report covers (`otelsim report
    /// merge` joins the shards' reports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<ShardsReport>,
    /// When the run's clock started, in ns since the Unix epoch (virtual with
    /// `--start-time`): merged reports span from the earliest start.
    pub clock_start_ns: u64,
    /// Where the run's clock stood when generation stopped: merged reports span
    /// to the latest end.
    pub clock_end_ns: u64,
}

impl RunReport {
    /// The shortfall against the target rate and against full delivery, whichever is worse.
    pub fn shortfall(&self) -> f64 {
        let rate = self.pacing.as_ref().map_or(0.0, |p| {
            if p.target_units > 0.0 {
                (1.0 - p.achieved_units as f64 / p.target_units).max(0.0)
            } else {
                0.0
            }
        });
        // Delivery: the output that delivered the smallest share. What a receiver
        // does not accept at all (a signal it turned off) is not short: it was never due.
        let delivery = self
            .outputs
            .iter()
            .map(|o| {
                let e = &o.counters;
                let due = |c: &crate::export::SignalSnapshot| {
                    c.generated.saturating_sub(c.dropped_by_receiver)
                };
                let generated = due(&e.spans) + due(&e.metric_points) + due(&e.log_records);
                let delivered = e.spans.acked + e.metric_points.acked + e.log_records.acked;
                if generated == 0 {
                    0.0
                } else {
                    1.0 - delivered as f64 / generated as f64
                }
            })
            .fold(0.0, f64::max);
        rate.max(delivery)
    }

    /// How far the achieved rate went above the shape's target, as a fraction
    /// of the target (0 without a shape, or at or below it).
    pub fn overshoot(&self) -> f64 {
        self.pacing.as_ref().map_or(0.0, |p| {
            if p.target_units > 0.0 {
                (p.achieved_units as f64 / p.target_units - 1.0).max(0.0)
            } else {
                0.0
            }
        })
    }

    /// Items that could not be delivered, over every output.
    pub fn failed(&self) -> u64 {
        self.outputs.iter().map(|o| o.counters.failed()).sum()
    }
}

impl RunReport {
    /// The summary printed at the end of a run (several lines), for a run without
    /// `--gzip`.
    pub fn render(&self) -> String {
        self.render_for(false)
    }

    /// The summary; `gzip` tells how the byte counts are to be read (HTTP counts
    /// the compressed body, gRPC the message before compression).
    pub fn render_for(&self, gzip: bool) -> String {
        let mut out = String::new();
        let total_traces: u64 = self.scenarios.values().map(|c| c.traces).sum();
        let total_err: u64 = self.scenarios.values().map(|c| c.error_spans).sum();
        out.push_str(&format!(
            "otelsim: {}, {} ({} with status ERROR) in {:.1} s · seed {} · run {}{}\n",
            plural(total_traces, "trace"),
            plural(self.export.spans.generated, "span"),
            total_err,
            self.elapsed_s,
            self.seed,
            self.run_id,
            if self.interrupted {
                " · interrupted"
            } else {
                ""
            }
        ));
        if let Some(sh) = &self.shards {
            if let [index] = sh.included[..] {
                let (i, n) = (u64::from(index), u64::from(sh.count));
                let share = if self.pacing.is_some() {
                    format!(" and 1/{n} of its load shape")
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "  shard {i} of {n}: this process made the run's picks {i}, {}, {}, …{share} (`otelsim report merge` joins the shards' reports)\n",
                    i + n,
                    i + 2 * n
                ));
            }
        }
        let w = self
            .scenarios
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(8)
            .max(8);
        out.push_str(&format!(
            "  {:<w$}  {:>8}  {:>7}  {:>8}  {:>7}\n",
            "scenario", "requests", "traces", "spans", "errors"
        ));
        for (name, c) in &self.scenarios {
            out.push_str(&format!(
                "  {:<w$}  {:>8}  {:>7}  {:>8}  {:>7}\n",
                name, c.requests, c.traces, c.spans, c.error_spans
            ));
        }
        let cost: f64 = self.scenarios.values().map(|c| c.llm_cost_usd).sum();
        if cost > 0.0 {
            out.push_str(&format!(
                "  llm cost: ${cost:.4} at config.yaml's list prices (scenarios that track costs)\n"
            ));
        }
        // One output: the familiar lines; several: the same lines per output, named.
        let named = self.outputs.len() > 1;
        for o in &self.outputs {
            if named {
                out.push_str(&format!("  output {}:\n", o.output));
            }
            let indent = if named { "    " } else { "  " };
            render_counters(&mut out, &o.output, &o.counters, gzip, indent);
        }
        if let Some(p) = &self.pacing {
            let unit = match p.unit {
                RateUnit::Traces => "traces",
                RateUnit::Spans => "spans",
            };
            out.push_str(&format!(
                "  pacing: target {:.0} {unit}/s · achieved {:.1} {unit}/s ({:.1} traces/s, {:.0} spans/s) · {} · lag p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms · {} of {} picks late\n",
                p.target_per_s, p.achieved_per_s, p.achieved_traces_per_s, self.achieved_spans_per_s, plural(self.workers as u64, "worker"), p.lag_p50_ms, p.lag_p99_ms, p.lag_max_ms, p.late_picks, p.picks
            ));
        }
        if let Some(ws) = &self.workload_schedule {
            out.push_str(&format!("  {}\n", ws.render()));
        }
        for w in &self.incidents {
            out.push_str(&format!(
                "  incident {} from {}s for {}s: inside {} requests, {:.2}% errors, {:.1} ms mean · outside {} requests, {:.2}% errors, {:.1} ms mean\n",
                w.service,
                w.from_s,
                w.for_s,
                w.inside.requests,
                w.inside.error_share * 100.0,
                w.inside.mean_latency_ms,
                w.outside.requests,
                w.outside.error_share * 100.0,
                w.outside.mean_latency_ms
            ));
        }
        if let Some(k) = &self.sdk {
            out.push_str(&format!(
                "  sdk engine: {} spans offered · {} exported · {} dropped by the batch processor · {} failed in export · {} pipelines\n",
                k.offered_spans, k.exported_spans, k.dropped_spans, k.failed_spans, k.pipelines
            ));
        }
        for o in &self.outputs {
            if let Some(err) = &o.counters.first_error {
                let of = if named {
                    format!(" ({})", o.output)
                } else {
                    String::new()
                };
                out.push_str(&format!("  first export error{of}: {err}\n"));
            }
        }
        if let Some(f) = &self.fatal {
            out.push_str(&format!("  run stopped: {f}\n"));
        }
        out
    }
}

/// Acknowledged traces (id, spans), sorted by id; written as a JSON map of hex
/// id → spans without building strings for all of them at once.
#[derive(Debug)]
pub struct AckedTraces(pub Vec<([u8; 16], u32)>);

impl AckedTraces {
    /// Sorted input; a trace sent in several batches (realtime mode) is added up.
    pub(super) fn merged(sorted: Vec<([u8; 16], u32)>) -> Self {
        let mut out: Vec<([u8; 16], u32)> = Vec::with_capacity(sorted.len());
        for (id, n) in sorted {
            match out.last_mut() {
                Some(last) if last.0 == id => last.1 += n,
                _ => out.push((id, n)),
            }
        }
        AckedTraces(out)
    }
}

impl serde::Serialize for AckedTraces {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        // Each id's hex written into a stack buffer: `hex::encode` built a String
        // a character at a time, most of this report's cost on long runs.
        let mut text = [0u8; 32];
        for (id, n) in &self.0 {
            hex::encode_to_slice(id, &mut text).expect("32 hex digits for 16 bytes");
            m.serialize_entry(std::str::from_utf8(&text).expect("hex is ASCII"), n)?;
        }
        m.end()
    }
}

/// At most this many acknowledged traces are listed in the report for `verify`
/// (20 bytes each in memory: 10 MB at most).
pub const MAX_LISTED_TRACES: usize = 500_000;

/// The export lines of one output's counters. `output` is its label (`otlp-json:PATH`
/// for a file, `otlp PROTOCOL ENDPOINT` for the network).
fn render_counters(out: &mut String, output: &str, e: &CountersSnapshot, gzip: bool, indent: &str) {
    let file = ["otlp-json", "session-json", "duckdb"]
        .iter()
        .any(|k| output.starts_with(k));
    // A file has nothing to send: its records are "written" (or failed), not acknowledged.
    let (verb, took) = if file {
        ("", "written")
    } else {
        (" sent", "acknowledged")
    };
    // HTTP counts the body as sent (compressed with --gzip); gRPC counts the message
    // before tonic compresses it.
    let bytes = if file {
        "bytes written"
    } else if gzip && output.starts_with("otlp grpc") {
        "bytes before gzip (gRPC's compressed size is not counted)"
    } else if gzip {
        "bytes sent, gzipped"
    } else {
        "bytes sent"
    };
    let retries = match (e.retries, e.retry_hints) {
        (0, _) => "no retries".to_string(),
        (1, 0) => "1 retry".to_string(),
        (1, _) => "1 retry (it waited as long as the receiver asked)".to_string(),
        (n, 0) => format!("{n} retries"),
        (n, h) => format!("{n} retries ({h} waited as long as the receiver asked)"),
    };
    out.push_str(&format!(
        "{indent}export: {}{verb} in {} · {} {took} · {} failed · {retries} · {} {bytes}\n",
        plural(e.spans.sent, "span"),
        plural(e.spans.requests_sent, "request"),
        e.spans.acked,
        e.spans.failed,
        e.bytes_sent
    ));
    for (what, c) in [
        ("metric points", &e.metric_points),
        ("log records", &e.log_records),
    ] {
        if c.generated > 0 {
            // A signal the receiver does not accept: how many were dropped, and why.
            let dropped = match &c.turned_off {
                Some(why) => format!(" · {} not delivered: {why}", c.dropped_by_receiver),
                None => String::new(),
            };
            out.push_str(&format!(
                "{indent}{what}: {}{verb} in {} · {} {took} · {} failed{dropped}\n",
                c.sent,
                plural(c.requests_sent, "request"),
                c.acked,
                c.failed
            ));
        }
    }
}

/// `1 request`, `2 requests`.
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
