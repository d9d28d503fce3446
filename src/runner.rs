//! Drives a run for the CLI: starts the exporter and the workers, shows
//! progress, and builds the run report from what they did.

pub use crate::job::{
    generate_iteration, new_run_id, now_ns, prepare, Engine, Load, Picks, Prepared, RunSpec,
    ScenarioCount, Timing, RUN_ID_KEY,
};

use crate::encode::Resources;
use crate::engine_sdk::{SdkEngine, SdkStats};
use crate::export::{AckLog, CountersSnapshot, OutputReport, Outputs, SpanSink};
use crate::job::Interrupt;
use crate::metrics::{Aggregator, MetricsPlan};
use crate::model::AttrValue;
use crate::pace::{LagStats, RateUnit};
use crate::progress::Progress;
use crate::settings::Settings;
use crate::show;
use crate::worker::{self, MetricsState, Shared};
use anyhow::Result;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How well the open-loop schedule was kept (only with a load shape).
#[derive(Debug, serde::Serialize)]
pub struct Pacing {
    pub unit: RateUnit,
    /// Units the shape offered over the run's clock.
    pub target_units: f64,
    pub achieved_units: u64,
    /// Average target rate over the run, in `unit`s per second.
    pub target_per_s: f64,
    pub achieved_per_s: f64,
    pub achieved_traces_per_s: f64,
    pub lag_p50_ms: f64,
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
    /// Picks sent more than 10 ms after their slot.
    pub late_picks: u64,
    pub picks: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub seed: u64,
    pub workers: usize,
    pub timing: Timing,
    pub elapsed_s: f64,
    /// The run's own clock: wall time, or virtual time covered.
    pub clock_s: f64,
    pub interrupted: bool,
    pub fatal: Option<String>,
    pub scenarios: BTreeMap<String, ScenarioCount>,
    pub achieved_spans_per_s: f64,
    pub pacing: Option<Pacing>,
    /// The first output's counters (the whole story with one output).
    pub export: CountersSnapshot,
    /// Every output's counters, in the order given.
    pub outputs: Vec<OutputReport>,
    /// Traces the receiver acknowledged in full, as (trace id hex → spans);
    /// present with `--report`. Capped; `acked_traces_unlisted` counts the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_traces: Option<AckedTraces>,
    pub acked_traces_unlisted: u64,
    /// With `--engine sdk`: what the SDK did with the spans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk: Option<SdkStats>,
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
        let e = &self.export;
        let generated = e.spans.generated + e.metric_points.generated + e.log_records.generated;
        let delivered = e.spans.acked + e.metric_points.acked + e.log_records.acked;
        let delivery = if generated == 0 {
            0.0
        } else {
            1.0 - delivered as f64 / generated as f64
        };
        rate.max(delivery)
    }
}

impl RunReport {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let total_traces: u64 = self.scenarios.values().map(|c| c.traces).sum();
        let total_err: u64 = self.scenarios.values().map(|c| c.error_spans).sum();
        out.push_str(&format!(
            "otelsim: {} traces, {} spans ({} with status ERROR) in {:.1} s · seed {} · run {}{}\n",
            total_traces,
            self.export.spans.generated,
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
        let e = &self.export;
        out.push_str(&format!(
            "  export: {} spans sent in {} requests · {} acknowledged · {} failed · {} retries ({} as the receiver asked) · {} bytes\n",
            e.spans.sent, e.spans.requests_sent, e.spans.acked, e.spans.failed, e.retries, e.retry_hints, e.bytes_sent
        ));
        for (what, c) in [
            ("metric points", &e.metric_points),
            ("log records", &e.log_records),
        ] {
            if c.generated > 0 {
                out.push_str(&format!(
                    "  {what}: {} sent in {} requests · {} delivered · {} failed\n",
                    c.sent, c.requests_sent, c.acked, c.failed
                ));
            }
        }
        if let Some(p) = &self.pacing {
            let unit = match p.unit {
                RateUnit::Traces => "traces",
                RateUnit::Spans => "spans",
            };
            out.push_str(&format!(
                "  pacing: target {:.0} {unit}/s · achieved {:.1} {unit}/s ({:.1} traces/s, {:.0} spans/s) · {} workers · lag p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms · {} of {} picks late\n",
                p.target_per_s, p.achieved_per_s, p.achieved_traces_per_s, self.achieved_spans_per_s, self.workers, p.lag_p50_ms, p.lag_p99_ms, p.lag_max_ms, p.late_picks, p.picks
            ));
        }
        if let Some(k) = &self.sdk {
            out.push_str(&format!(
                "  sdk engine: {} spans offered · {} exported · {} dropped by the batch processor · {} failed in export · {} pipelines\n",
                k.offered_spans, k.exported_spans, k.dropped_spans, k.failed_spans, k.pipelines
            ));
        }
        if let Some(err) = &e.first_error {
            out.push_str(&format!("  first export error: {err}\n"));
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
    fn merged(sorted: Vec<([u8; 16], u32)>) -> Self {
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
        for (id, n) in &self.0 {
            m.serialize_entry(&hex::encode(id), n)?;
        }
        m.end()
    }
}

/// At most this many acknowledged traces are listed in the report for `verify`
/// (20 bytes each in memory: 10 MB at most).
pub const MAX_LISTED_TRACES: usize = 500_000;

/// Runs picks on `spec.workers` workers until done, Ctrl-C, or a fatal export error.
pub async fn execute(
    prep: Arc<Prepared>,
    settings: Arc<Settings>,
    spec: RunSpec,
) -> Result<RunReport> {
    let seed = settings.seed.unwrap_or_else(|| rand::rng().random());
    let extra = vec![(RUN_ID_KEY.to_string(), AttrValue::str(&spec.run_id))];
    let resources = Resources::new(&prep.world, &extra);
    let acks = spec
        .track_acks
        .then(|| Arc::new(AckLog::new(MAX_LISTED_TRACES)));
    let exporter = Outputs::start(
        crate::export::output_configs(&settings.export),
        resources.clone(),
        acks.clone(),
    )
    .await?;
    let started = Instant::now();
    // Metrics are stamped on the run's clock (virtual or wall), never by an SDK.
    let clock_start = settings.start_time_ns.unwrap_or_else(now_ns);
    let aggregator = Aggregator::new(
        MetricsPlan::new(&prep.world, &prep.registry.semconv),
        settings.temporality,
        clock_start,
    );
    let total: Option<u64> = match &spec.picks {
        Picks::Weighted { count, .. } => *count,
        Picks::Repeat { count, .. } => Some(*count),
        Picks::EachOnce(names) => Some(names.len() as u64),
    };
    let workers = spec.workers.max(1);
    let show = spec.show;
    let target = spec.load.as_ref().map(|l| (l.profile.clone(), l.unit));
    let shared = Arc::new(Shared {
        deadline: spec
            .duration
            .map(|d| clock_start.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))),
        prep: prep.clone(),
        settings: settings.clone(),
        spec,
        seed,
        total,
        clock_start,
        next_pick: AtomicU64::new(0),
        metrics: Mutex::new(MetricsState {
            aggregator,
            next_collect: clock_start.saturating_add(
                u64::try_from(settings.metrics_interval.as_nanos()).unwrap_or(u64::MAX),
            ),
        }),
        counters: exporter.counters(),
        stop: Interrupt::install(),
        lag_now_ns: AtomicU64::new(0),
    });
    let sdk = match shared.spec.engine {
        Engine::Sdk => Some(Arc::new(SdkEngine::start(&settings.export, &resources)?)),
        Engine::Native => None,
    };
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let mut b = exporter.batcher();
        if let Some(e) = &sdk {
            b = b.through(e.clone() as Arc<dyn SpanSink>);
        }
        set.spawn(worker::run(shared.clone(), b, w, workers));
    }
    // Progress lines would interleave with printed span trees and -v lines.
    let mut progress = Progress::new(
        !settings.quiet && show == show::Mode::Off && settings.verbose == 0,
        target.clone(),
    );
    let mut results = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            next = set.join_next() => match next {
                Some(Ok(r)) => results.push(r),
                Some(Err(e)) => anyhow::bail!("a generator stopped unexpectedly: {e}"),
                None => break,
            },
            _ = tick.tick() => {
                let lag = target.as_ref().map(|_| shared.lag_now_ns.load(Ordering::Relaxed) as f64 / 1e6);
                progress.tick(&exporter.primary(), lag);
            }
        }
    }
    progress.finish();
    let interrupted = results.iter().any(|r| r.interrupted);
    if interrupted && !settings.quiet {
        eprintln!("otelsim: interrupted; flushing what was generated (Ctrl-C again to abort)");
    }
    let clock_end = results
        .iter()
        .map(|r| r.clock_end_ns)
        .max()
        .unwrap_or(clock_start);
    // The final collection: everything measured since the last one.
    let last = shared.metrics.lock().ok().and_then(|mut m| {
        crate::encode::metrics::collect(&mut m.aggregator, clock_end, &resources)
    });
    if let Some((request, points)) = last {
        let mut b = exporter.batcher();
        b.submit_metrics(request, points).await;
        b.close().await;
    }
    let outputs = exporter.finish().await;
    let mut export = outputs
        .first()
        .map(|o| o.counters.clone())
        .unwrap_or_default();
    let sdk = match sdk.map(Arc::try_unwrap) {
        Some(Ok(engine)) => {
            let stats = tokio::task::spawn_blocking(move || engine.finish()).await?;
            // The SDK's outcome is the run's: dropped spans were never sent.
            let s = &mut export.spans;
            s.generated = stats.offered_spans;
            s.sent = stats.offered_spans - stats.dropped_spans.min(stats.offered_spans);
            s.acked = stats.exported_spans;
            s.failed = stats.failed_spans + stats.dropped_spans;
            s.requests_sent = stats.export_requests + stats.export_errors;
            s.requests_acked = stats.export_requests;
            s.requests_failed = stats.export_errors;
            if export.first_error.is_none() {
                export.first_error = stats.first_error.clone().or_else(|| {
                    (stats.dropped_spans > 0).then(|| {
                        format!(
                            "the SDK's batch processor dropped {} span(s): its queue was full",
                            stats.dropped_spans
                        )
                    })
                });
            }
            Some(stats)
        }
        Some(Err(_)) => anyhow::bail!("internal: the SDK engine is still in use"),
        None => None,
    };
    let elapsed_s = started.elapsed().as_secs_f64();
    // The run's clock when generation stopped, not the final flush or the realtime drain.
    let clock_s = (clock_end.saturating_sub(clock_start) as f64 / 1e9).max(1e-9);
    let mut lag = LagStats::new(0);
    let mut counts: BTreeMap<String, ScenarioCount> = BTreeMap::new();
    let (mut traces_sent, mut units) = (0, 0);
    let mut fatal = None;
    for r in results {
        lag.merge(&r.lag);
        traces_sent += r.traces;
        units += r.units;
        fatal = fatal.or(r.fatal);
        for (name, c) in r.counts {
            counts.entry(name).or_default().add(&c);
        }
    }
    let pacing = shared.spec.load.as_ref().map(|l| {
        let target_units = l.profile.units_until(clock_s);
        Pacing {
            unit: l.unit,
            target_units,
            achieved_units: units,
            target_per_s: target_units / clock_s,
            achieved_per_s: units as f64 / clock_s,
            achieved_traces_per_s: traces_sent as f64 / clock_s,
            lag_p50_ms: lag.quantile_ns(0.5) as f64 / 1e6,
            lag_p99_ms: lag.quantile_ns(0.99) as f64 / 1e6,
            lag_max_ms: lag.max_ns as f64 / 1e6,
            late_picks: lag.late,
            picks: lag.count,
        }
    });
    let (acked_traces, acked_traces_unlisted) = match acks {
        Some(a) => {
            let (list, unlisted) = a.take();
            (Some(AckedTraces::merged(list)), unlisted)
        }
        None => (None, 0),
    };
    Ok(RunReport {
        run_id: shared.spec.run_id.clone(),
        seed,
        workers,
        timing: shared.spec.timing,
        elapsed_s,
        clock_s,
        interrupted,
        fatal,
        scenarios: counts,
        achieved_spans_per_s: export.spans.generated as f64 / clock_s,
        pacing,
        export,
        outputs,
        acked_traces,
        acked_traces_unlisted,
        sdk,
    })
}
