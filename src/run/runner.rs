//! Drives a run for the CLI: starts the exporter and the workers, shows
//! progress, and builds the run report from what they did.

use super::job::{now_ns, Engine, Interrupt, Picks, Prepared, RunSpec, ScenarioCount, RUN_ID_KEY};
use super::report::{AckedTraces, Pacing, RunReport, MAX_LISTED_TRACES};
use super::worker::{self, MetricsState, Shared, WorkerResult};
use crate::encode::Resources;
use crate::engine_sdk::{SdkEngine, SdkStats};
use crate::export::session::SessionKeys;
use crate::export::session_json::SessionJsonStore;
use crate::export::session_store::{SessionStoreWriter, Store};
use crate::export::{
    AckLog, AgentTraceOptions, AgentTraceWriter, CountersSnapshot, EventsJsonlOptions,
    EventsJsonlWriter, ExportConfig, OutputReport, OutputStart, Outputs, SpanSink, TraceDigest,
};
use crate::metrics::{Aggregator, MetricsPlan};
use crate::model::AttrValue;
use crate::pace::{LagStats, Schedule};
use crate::progress::{End, Progress};
use crate::settings::{OutputKind, Settings};
use crate::show;
use anyhow::Result;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    let outputs = output_list(&settings, &prep.world.prefix.active)?;
    let mut exporter =
        Outputs::start_all(outputs, &settings.export, resources.clone(), acks.clone()).await?;
    for w in session_writers(&prep, &settings, &spec)? {
        exporter.push(w);
    }
    exporter.mask_pii = settings.mask_pii;
    let started = Instant::now();
    let shared = Arc::new(shared_state(prep, settings.clone(), spec, seed, &exporter));
    let sdk = match shared.spec.engine {
        Engine::Sdk => Some(Arc::new(SdkEngine::start(&settings.export, &resources)?)),
        Engine::Native => None,
    };
    let results = run_workers(&shared, &exporter, sdk.as_ref()).await?;
    if results.iter().any(|r| r.interrupted) && !settings.quiet {
        eprintln!("otelsim: interrupted; flushing what was generated (Ctrl-C again to abort)");
    }
    let clock_end = results
        .iter()
        .map(|r| r.clock_end_ns)
        .max()
        .unwrap_or(shared.clock_start);
    export_final_metrics(&shared, &exporter, clock_end, &resources).await;
    let mut outputs = exporter.finish().await;
    // The SDK engine runs alone: its outcome is the one output's.
    let sdk = match outputs.first_mut() {
        Some(first) => finish_sdk(sdk, &mut first.counters, &settings.export).await?,
        None => None,
    };
    let elapsed_s = started.elapsed().as_secs_f64();
    let acked = acks.map(|a| a.take());
    Ok(build_report(
        &shared, results, clock_end, elapsed_s, outputs, acked, sdk,
    ))
}

/// What every worker shares: the run's clock, pick counter, metrics and stop signal.
fn shared_state(
    prep: Arc<Prepared>,
    settings: Arc<Settings>,
    spec: RunSpec,
    seed: u64,
    exporter: &Outputs,
) -> Shared {
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
    // A shard makes its share of the run's picks (its load shape is its share already).
    let total = total.map(|n| spec.shard.unwrap_or_default().share_of(n));
    // One schedule for every worker: slots are claimed in units, whatever the workers.
    let schedule = spec
        .load
        .as_ref()
        .map(|l| Mutex::new(Schedule::new(clock_start, l.profile.clone())));
    Shared {
        deadline: spec
            .duration
            .map(|d| clock_start.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))),
        prep,
        spec,
        seed,
        total,
        clock_start,
        next_pick: AtomicU64::new(0),
        schedule,
        metrics: Mutex::new(MetricsState {
            aggregator,
            next_collect: clock_start.saturating_add(
                u64::try_from(settings.metrics_interval.as_nanos()).unwrap_or(u64::MAX),
            ),
        }),
        settings,
        counters: exporter.counters(),
        stop: Interrupt::install(),
        lag_now_ns: AtomicU64::new(0),
    }
}

/// Starts the workers, each with its own batcher, and shows progress until all have stopped.
async fn run_workers(
    shared: &Arc<Shared>,
    exporter: &Outputs,
    sdk: Option<&Arc<SdkEngine>>,
) -> Result<Vec<WorkerResult>> {
    let workers = shared.spec.workers.max(1);
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let mut b = exporter.batcher();
        if let Some(e) = sdk {
            b = b.through(e.clone() as Arc<dyn SpanSink>);
        }
        set.spawn(worker::run(shared.clone(), b, w));
    }
    let settings = &shared.settings;
    let target = shared
        .spec
        .load
        .as_ref()
        .map(|l| (l.profile.clone(), l.unit));
    let paced = target.is_some();
    // A known end gets a progress bar: a pick count, or a duration on the wall clock.
    let wall_secs = || {
        let shape = target
            .as_ref()
            .map(|t| t.0.secs())
            .filter(|s| s.is_finite());
        let secs = shared.spec.duration.map(|d| d.as_secs_f64()).or(shape);
        secs.filter(|_| settings.start_time_ns.is_none())
            .map(|s| End::After(Duration::from_secs_f64(s)))
    };
    let end = shared.total.map(End::Picks).or_else(wall_secs);
    // Progress lines would interleave with printed span trees and -v lines.
    let mut progress = Progress::new(
        !settings.quiet && shared.spec.show == show::Mode::Off && settings.verbose == 0,
        target,
    )
    .with_end(end);
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
                let lag = paced.then(|| shared.lag_now_ns.load(Ordering::Relaxed) as f64 / 1e6);
                progress.tick(&exporter.primary(), lag, shared.next_pick.load(Ordering::Relaxed));
            }
        }
    }
    progress.finish();
    Ok(results)
}

/// The final collection: everything measured since the last one.
async fn export_final_metrics(
    shared: &Shared,
    exporter: &Outputs,
    clock_end: u64,
    resources: &Resources,
) {
    if !shared.wants(crate::export::Signal::Metrics) {
        return;
    }
    let last =
        shared.metrics.lock().ok().and_then(|mut m| {
            crate::encode::metrics::collect(&mut m.aggregator, clock_end, resources)
        });
    if let Some((request, points)) = last {
        let mut b = exporter.batcher();
        b.submit_metrics(request, points).await;
        b.close().await;
    }
}

/// Stops the SDK engine (with `--engine sdk`) and makes its outcome the run's span counts.
async fn finish_sdk(
    sdk: Option<Arc<SdkEngine>>,
    export: &mut CountersSnapshot,
    settings: &ExportConfig,
) -> Result<Option<SdkStats>> {
    let engine = match sdk.map(Arc::try_unwrap) {
        Some(Ok(engine)) => engine,
        Some(Err(_)) => anyhow::bail!("internal: the SDK engine is still in use"),
        None => return Ok(None),
    };
    let mut stats = tokio::task::spawn_blocking(move || engine.finish()).await?;
    // The SDK's errors may quote the endpoint or an echoed header: scrubbed like ours.
    let secrets = crate::export::Secrets::of(settings);
    stats.first_error = stats.first_error.map(|e| secrets.scrub(&e));
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
    Ok(Some(stats))
}

/// Adds up the workers' results into the report.
fn build_report(
    shared: &Shared,
    results: Vec<WorkerResult>,
    clock_end: u64,
    elapsed_s: f64,
    outputs: Vec<OutputReport>,
    acked: Option<(Vec<TraceDigest>, u64)>,
    sdk: Option<SdkStats>,
) -> RunReport {
    // The run's clock when generation stopped, not the final flush or the realtime drain.
    let clock_s = (clock_end.saturating_sub(shared.clock_start) as f64 / 1e9).max(1e-9);
    let interrupted = results.iter().any(|r| r.interrupted);
    let mut lag = LagStats::new(0);
    let mut counts: BTreeMap<String, ScenarioCount> = BTreeMap::new();
    let (mut traces_sent, mut units) = (0, 0);
    let mut fatal = None;
    let mut bucket_picks: Vec<u64> = Vec::new();
    let mut incidents = shared
        .spec
        .load
        .as_ref()
        .map(|l| l.incidents.clone())
        .unwrap_or_default();
    for r in results {
        incidents.merge(&r.incidents);
        bucket_picks.resize(bucket_picks.len().max(r.bucket_picks.len()), 0);
        for (total, n) in bucket_picks.iter_mut().zip(&r.bucket_picks) {
            *total += n;
        }
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
    let (acked_traces, acked_traces_unlisted) = match acked {
        Some((list, unlisted)) => (Some(AckedTraces::merged(list)), unlisted),
        None => (None, 0),
    };
    // The receiver's counters when there is one: they pair with the acknowledged traces.
    let export = outputs
        .iter()
        .find(|o| o.receiver)
        .or(outputs.first())
        .map(|o| o.counters.clone())
        .unwrap_or_default();
    RunReport {
        shards: shared
            .spec
            .shard
            .map(|s| super::shard::ShardsReport::of(s, interrupted || fatal.is_some())),
        clock_start_ns: shared.clock_start,
        clock_end_ns: clock_end,
        run_id: shared.spec.run_id.clone(),
        seed: shared.seed,
        workers: shared.spec.workers.max(1),
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
        workload_schedule: match &shared.spec.picks {
            Picks::Weighted {
                schedule: Some(mix),
                ..
            } => Some(mix.report(&bucket_picks)),
            _ => None,
        },
        incidents: incidents.report(),
    }
}

/// One writer per output: OTLP to the endpoint, OTLP/JSON lines or seed 002's span
/// lines to a file, or a session store, each labelled as the report shows it (the
/// agent-trace and events-jsonl writers come from [`session_writers`]).
fn output_list(settings: &Settings, prefix: &str) -> Result<Vec<OutputStart>> {
    let mut list = Vec::with_capacity(settings.outputs.len());
    for o in &settings.outputs {
        let mut cfg = settings.export.clone();
        let store: Arc<dyn Store> = match (o.kind, &o.path) {
            (OutputKind::SessionJson, Some(dir)) => Arc::new(SessionJsonStore::create(dir)?),
            (OutputKind::Duckdb, Some(file)) => crate::export::duckdb::open_store(file)?,
            (OutputKind::AgentTrace | OutputKind::EventsJsonl, _) => continue,
            _ => {
                cfg.output_file = o.path.clone();
                if o.kind == OutputKind::SpansJsonl {
                    cfg.file_format = crate::export::FileFormat::SpansJsonl;
                }
                let label = crate::export::output_label(&cfg);
                list.push(OutputStart::Otlp(label, Box::new(cfg)));
                continue;
            }
        };
        let keys = SessionKeys::new(prefix);
        let w = SessionStoreWriter::new(o.to_string(), keys, store);
        list.push(OutputStart::Ready(Box::new(w)));
    }
    Ok(list)
}

/// The writers of other systems' file formats, in the order they were given.
fn session_writers(
    prep: &Prepared,
    settings: &Settings,
    spec: &RunSpec,
) -> Result<Vec<Box<dyn crate::export::Writer>>> {
    let mut out: Vec<Box<dyn crate::export::Writer>> = Vec::new();
    for o in &settings.outputs {
        let Some(path) = &o.path else { continue };
        if o.kind == OutputKind::AgentTrace {
            let cfg = &prep.registry.config.agent_trace;
            out.push(Box::new(AgentTraceWriter::start(AgentTraceOptions {
                dir: path.clone(),
                run_id: spec.run_id.clone(),
                sample_rate: cfg.sample_rate,
                include_messages: cfg.include_messages,
                include_thinking: cfg.include_thinking,
                max_content_length: usize::try_from(cfg.max_content_length).unwrap_or(usize::MAX),
                keys: prep.world.keys.clone(),
                prefix: prep.world.prefix.active.clone(),
            })?));
        } else if o.kind == OutputKind::EventsJsonl {
            out.push(Box::new(EventsJsonlWriter::start(EventsJsonlOptions {
                path: path.clone(),
                labels: settings.labels.clone(),
                keys: prep.world.keys.clone(),
                prefix: prep.world.prefix.active.clone(),
            })?));
        }
    }
    Ok(out)
}
