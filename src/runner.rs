//! Drives a run for the CLI: picks scenarios, paces picks, generates requests
//! and sessions, hands traces to the exporter, handles Ctrl-C, and reports.

use crate::diag::Diags;
use crate::encode::Resources;
use crate::export::{CountersSnapshot, Exporter};
use crate::generate::{self, RequestInput};
use crate::metrics::{Aggregator, MetricsPlan};
use crate::model::AttrValue;
use crate::pace::{LagStats, Schedule};
use crate::plan::{Compiler, ScenarioPlan, World, WorldOptions};
use crate::progress::Progress;
use crate::record::{StatusCode, TraceRecord};
use crate::registry::{Registry, Sources};
use crate::settings::Settings;
use crate::show;
use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;

/// Everything loaded and compiled once per process.
pub struct Prepared {
    pub registry: Registry,
    pub world: World,
    pub plans: BTreeMap<String, ScenarioPlan>,
    /// Compile-time warnings (enum values normalised and the like).
    pub warnings: Vec<crate::diag::Diagnostic>,
}

/// Loads and compiles; errors carry every diagnostic. Every scenario that loaded is
/// compiled even when other files have errors, so all problems are reported at once.
pub fn prepare(sources: &Sources, opts: &WorldOptions) -> Result<Prepared, crate::diag::LoadError> {
    let registry = Registry::load_collecting(sources)?;
    let mut wd = Diags::new(registry.config.source.as_str());
    let world = World::new(&registry.config, &registry.semconv, opts, &mut wd);
    let (mut errors, mut warnings): (Vec<_>, Vec<_>) = registry
        .warnings
        .iter()
        .cloned()
        .partition(|d| d.severity == crate::diag::Severity::Error);
    warnings.append(&mut wd.items);
    let compiler = Compiler {
        world: &world,
        cfg: &registry.config,
        sc: &registry.semconv,
    };
    let mut plans = BTreeMap::new();
    for s in &registry.scenarios {
        let mut d = Diags::new(s.source.as_str());
        if let Some(p) = compiler.scenario(s, &mut d) {
            plans.insert(s.name.clone(), p);
        }
        for item in d.items {
            if item.severity == crate::diag::Severity::Error {
                errors.push(item);
            } else {
                warnings.push(item);
            }
        }
    }
    if !errors.is_empty() {
        errors.extend(warnings);
        return Err(crate::diag::LoadError {
            diagnostics: errors,
        });
    }
    Ok(Prepared {
        registry,
        world,
        plans,
        warnings,
    })
}

/// What to run.
pub enum Picks {
    /// `run`: `count` weighted random picks (`None`: until the duration ends).
    Weighted {
        names: Vec<String>,
        weights: crate::registry::Picker,
        count: Option<u64>,
    },
    /// `run --each-once`: every name once, in order.
    EachOnce(Vec<String>),
    /// `scenario`: one scenario `count` times.
    Repeat { name: String, count: u64 },
}

pub struct RunSpec {
    pub picks: Picks,
    /// Gap between picks in ms; `None` means "use each scenario's own interval".
    pub interval_ms: Option<f64>,
    /// Target traces per second on an open-loop schedule (replaces the interval).
    pub rate: Option<f64>,
    /// Stop after this long on the run's clock.
    pub duration: Option<Duration>,
    pub show: show::Mode,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ScenarioCount {
    pub requests: u64,
    pub traces: u64,
    pub spans: u64,
    pub error_spans: u64,
    pub log_records: u64,
}

/// How well the open-loop schedule was kept (only with `--rate`).
#[derive(Debug, serde::Serialize)]
pub struct Pacing {
    pub target_traces_per_s: f64,
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
    pub seed: u64,
    pub elapsed_s: f64,
    pub interrupted: bool,
    pub fatal: Option<String>,
    pub scenarios: BTreeMap<String, ScenarioCount>,
    pub achieved_spans_per_s: f64,
    pub pacing: Option<Pacing>,
    pub export: CountersSnapshot,
}

impl RunReport {
    /// The shortfall against the target rate and against full delivery, whichever is worse.
    pub fn shortfall(&self) -> f64 {
        let rate = self.pacing.as_ref().map_or(0.0, |p| {
            (1.0 - p.achieved_traces_per_s / p.target_traces_per_s).max(0.0)
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
            "otelsim: {} traces, {} spans ({} with status ERROR) in {:.1} s · seed {}{}\n",
            total_traces,
            self.export.spans.generated,
            total_err,
            self.elapsed_s,
            self.seed,
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
            "  export: {} spans sent in {} requests · {} acknowledged · {} failed · {} retries · {} bytes\n",
            e.spans.sent, e.spans.requests_sent, e.spans.acked, e.spans.failed, e.retries, e.bytes_sent
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
            out.push_str(&format!(
                "  pacing: target {:.0} traces/s · achieved {:.1} traces/s ({:.0} spans/s) · lag p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms · {} of {} picks late\n",
                p.target_traces_per_s, p.achieved_traces_per_s, self.achieved_spans_per_s, p.lag_p50_ms, p.lag_p99_ms, p.lag_max_ms, p.late_picks, p.picks
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

/// Ctrl-C / SIGTERM: the first stops the run (which then flushes); the second aborts.
struct Interrupt {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Interrupt {
    fn install() -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        let notify = Arc::new(Notify::new());
        let (f, n) = (flag.clone(), notify.clone());
        tokio::spawn(async move {
            loop {
                wait_for_signal().await;
                if f.swap(true, Ordering::SeqCst) {
                    eprintln!("otelsim: aborted without flushing");
                    std::process::exit(130);
                }
                // notify_one keeps a permit if nobody waits yet, so the stop is never missed.
                n.notify_one();
            }
        });
        Interrupt { flag, notify }
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    async fn notified(&self) {
        if !self.is_set() {
            self.notify.notified().await;
        }
    }
}

/// SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A small, fast mixer so request `i` gets its own reproducible RNG stream.
fn stream_seed(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Generates one iteration of a scenario: one request, or one session of several
/// turns laid back so the last turn ends at `end_ns`.
pub fn generate_iteration<R: Rng + ?Sized>(
    world: &World,
    plan: &ScenarioPlan,
    end_ns: u64,
    rng: &mut R,
) -> Vec<TraceRecord> {
    let ids = &world.id_formats;
    let session = ids.session_id.render(rng, &plan.tenant_id);
    let enduser = ids.enduser_pseudo_id.render(rng, &plan.tenant_id);
    if plan.turns.is_empty() {
        let request = ids.request_id.render(rng, &plan.tenant_id);
        let sample = (!plan.samples.is_empty())
            .then(|| &plan.samples[rng.random_range(0..plan.samples.len())]);
        let input = RequestInput {
            session_id: &session,
            request_id: &request,
            enduser_id: &enduser,
            turn_index: None,
            sample,
        };
        return generate::generate_request(world, plan, &input, end_ns, rng);
    }
    // Generate each turn at a provisional end, then lay the session back from end_ns.
    let mut turns: Vec<Vec<TraceRecord>> = Vec::new();
    for (i, sample) in plan.turns.iter().enumerate() {
        let request = ids.request_id.render(rng, &plan.tenant_id);
        let input = RequestInput {
            session_id: &session,
            request_id: &request,
            enduser_id: &enduser,
            turn_index: Some(i as u32 + 1),
            sample: Some(sample),
        };
        turns.push(generate::generate_request(world, plan, &input, end_ns, rng));
    }
    // Think time between a reply and the next user message.
    let mut offset = 0u64;
    for i in (0..turns.len()).rev() {
        if offset > 0 {
            for t in &mut turns[i] {
                for s in &mut t.spans {
                    s.start_ns -= offset.min(s.start_ns);
                    s.end_ns -= offset.min(s.end_ns);
                    for e in &mut s.events {
                        e.time_ns -= offset.min(e.time_ns);
                    }
                }
            }
        }
        if i > 0 {
            let think_ms: f64 = rng.random_range(2_000.0..12_000.0);
            offset += generate::request_duration_ns(&turns[i]) + (think_ms * 1e6) as u64;
        }
    }
    turns.into_iter().flatten().collect()
}

/// Runs picks until done, Ctrl-C, or a fatal export error.
pub async fn execute(prep: &Prepared, settings: &Settings, spec: RunSpec) -> Result<RunReport> {
    let seed = settings.seed.unwrap_or_else(|| rand::rng().random());
    let extra: Vec<(String, AttrValue)> = Vec::new();
    let resources = Resources::new(&prep.world, &extra);
    let exporter = Exporter::start(settings.export.clone(), resources.clone()).await?;
    let mut pick_rng = Pcg64Mcg::seed_from_u64(stream_seed(seed, u64::MAX));
    let started = Instant::now();
    let mut virtual_now = settings.start_time_ns;
    // Metrics are stamped on the run's clock (virtual or wall), never by the SDK.
    let clock_start = virtual_now.unwrap_or_else(now_ns);
    let interval_ns = settings.metrics_interval.as_nanos() as u64;
    let mut next_collect = clock_start.saturating_add(interval_ns);
    let mut metrics = Aggregator::new(
        MetricsPlan::new(&prep.world, &prep.registry.semconv),
        settings.temporality,
        clock_start,
    );
    let total: Option<u64> = match &spec.picks {
        Picks::Weighted { count, .. } => *count,
        Picks::Repeat { count, .. } => Some(*count),
        Picks::EachOnce(names) => Some(names.len() as u64),
    };
    let mut schedule = spec.rate.map(|r| Schedule::new(clock_start, r));
    let deadline = spec
        .duration
        .map(|d| clock_start.saturating_add(d.as_nanos() as u64));
    // A pick more than 10 ms behind its slot counts as late.
    let mut lag = LagStats::new(10_000_000);
    let mut traces_sent = 0u64;
    let mut counts: BTreeMap<String, ScenarioCount> = BTreeMap::new();
    let mut interrupted = false;
    let mut fatal = None;
    let stop = Interrupt::install();
    let stdout = std::io::stdout();
    // Progress lines would interleave with printed span trees and -v lines.
    let mut progress = Progress::new(
        !settings.quiet && spec.show == show::Mode::Off && settings.verbose == 0,
        spec.rate,
    );
    let mut i: u64 = 0;
    loop {
        if total.is_some_and(|n| i >= n) {
            break;
        }
        if stop.is_set() {
            interrupted = true;
            break;
        }
        // Open loop: wait for this pick's slot (virtual clock: jump to it); if late, go now and record by how much.
        if let Some(s) = &schedule {
            let due = s.next_due_ns();
            // The run ends at its duration on the schedule, or on the wall clock when behind it.
            let clock = virtual_now.map_or_else(now_ns, |_| due);
            if deadline.is_some_and(|dl| due >= dl || clock >= dl) {
                break;
            }
            match &mut virtual_now {
                Some(v) => {
                    *v = due;
                    lag.record(0);
                }
                None => {
                    let now = now_ns();
                    if due > now + 1_000_000 {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_nanos(due - now)) => {}
                            _ = stop.notified() => { interrupted = true; break; }
                        }
                    }
                    lag.record(now_ns().saturating_sub(due));
                }
            }
        } else if deadline.is_some_and(|dl| virtual_now.unwrap_or_else(now_ns) >= dl) {
            break;
        }
        let name: &str = match &spec.picks {
            Picks::Weighted { weights, .. } => weights.pick(&mut pick_rng),
            Picks::EachOnce(names) => &names[i as usize],
            Picks::Repeat { name, .. } => name,
        };
        let Some(plan) = prep.plans.get(name) else {
            // Every listed scenario compiled (prepare fails otherwise); still, never spin.
            i += 1;
            continue;
        };
        let end_ns = virtual_now.unwrap_or_else(now_ns);
        let mut rng = Pcg64Mcg::seed_from_u64(stream_seed(seed, i));
        let traces = generate_iteration(&prep.world, plan, end_ns, &mut rng);
        if settings.metrics.unwrap_or(plan.emit_metrics) {
            for t in &traces {
                metrics.record(&prep.world, t, end_ns);
            }
        }
        let mut logs = Vec::new();
        if settings.logs.unwrap_or(plan.emit_logs) {
            for t in &traces {
                crate::logs::derive(&prep.world, t, &mut logs);
            }
        }
        let c = counts.entry(name.to_string()).or_default();
        c.requests += 1;
        c.log_records += logs.len() as u64;
        c.traces += traces.len() as u64;
        for t in &traces {
            c.spans += t.spans.len() as u64;
            c.error_spans += t
                .spans
                .iter()
                .filter(|s| s.status == StatusCode::Error)
                .count() as u64;
        }
        if spec.show != show::Mode::Off {
            let mut out = stdout.lock();
            for t in &traces {
                let _ = out.write_all(show::render_trace(t, spec.show, &logs).as_bytes());
            }
        } else if settings.verbose > 0 && !settings.quiet {
            let spans: usize = traces.iter().map(|t| t.spans.len()).sum();
            let first = traces
                .first()
                .map(|t| hex::encode(t.trace_id))
                .unwrap_or_default();
            let of = total.map_or_else(|| "…".to_string(), |n| n.to_string());
            eprintln!(
                "[{}/{of}] {name} trace_id={first} traces={} spans={spans}",
                i + 1,
                traces.len()
            );
        }
        traces_sent += traces.len() as u64;
        if let Some(s) = &mut schedule {
            s.advance(traces.len().max(1) as u64);
        }
        // Not raced against Ctrl-C: once generated, a request is always counted through to the end.
        exporter.submit(traces, logs).await;
        let now = virtual_now.unwrap_or_else(now_ns);
        if now >= next_collect {
            if let Some((request, points)) = metrics.collect(now, &resources) {
                exporter.submit_metrics(request, points).await;
            }
            next_collect = now.saturating_add(interval_ns);
        }
        if let Some(f) = exporter.counters.fatal() {
            fatal = Some(f);
            break;
        }
        i += 1;
        progress.tick(
            &exporter.counters,
            schedule
                .as_ref()
                .map(|_| lag.quantile_ns(0.99) as f64 / 1e6),
        );
        if total == Some(i) || schedule.is_some() {
            continue;
        }
        let gap_ms = match spec.interval_ms {
            Some(ms) => ms,
            None => {
                let dev = plan.interval_deviation_ms;
                let jitter = if dev > 0.0 {
                    pick_rng.random_range(-dev..dev)
                } else {
                    0.0
                };
                (plan.interval_ms + jitter).max(0.0)
            }
        };
        match &mut virtual_now {
            Some(v) => *v = v.saturating_add((gap_ms * 1e6) as u64),
            None if gap_ms > 0.0 => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs_f64(gap_ms / 1000.0)) => {}
                    _ = stop.notified() => { interrupted = true; break; }
                }
            }
            None => {}
        }
    }
    progress.finish();
    if interrupted && !settings.quiet {
        eprintln!("otelsim: interrupted; flushing what was generated (Ctrl-C again to abort)");
    }
    // Rates are over the generation loop, not the final flush.
    let loop_s = started.elapsed().as_secs_f64();
    // The final collection: everything measured since the last one.
    if let Some((request, points)) = metrics.collect(virtual_now.unwrap_or_else(now_ns), &resources)
    {
        exporter.submit_metrics(request, points).await;
    }
    let export = exporter.finish().await;
    let elapsed_s = started.elapsed().as_secs_f64();
    // The run's own clock: virtual time covered, or wall time.
    let clock_s = match (settings.start_time_ns, &schedule) {
        // On the virtual clock the schedule is the clock: it advanced by traces / rate.
        (Some(a), Some(s)) => (s.next_due_ns().saturating_sub(a) as f64 / 1e9).max(1e-9),
        (Some(a), None) => (virtual_now.unwrap_or(a).saturating_sub(a) as f64 / 1e9).max(1e-9),
        (None, _) => loop_s.max(1e-9),
    };
    let pacing = schedule.map(|_| Pacing {
        target_traces_per_s: spec.rate.unwrap_or_default(),
        achieved_traces_per_s: traces_sent as f64 / clock_s,
        lag_p50_ms: lag.quantile_ns(0.5) as f64 / 1e6,
        lag_p99_ms: lag.quantile_ns(0.99) as f64 / 1e6,
        lag_max_ms: lag.max_ns as f64 / 1e6,
        late_picks: lag.late,
        picks: lag.count,
    });
    Ok(RunReport {
        seed,
        elapsed_s,
        interrupted,
        fatal,
        scenarios: counts,
        achieved_spans_per_s: export.spans.generated as f64 / clock_s,
        pacing,
        export,
    })
}
