//! One generator of a run: takes slots on the run's schedule, picks and
//! generates requests, derives logs and metrics, and feeds its own batcher. A
//! run starts `--workers` of these; they share the pick counter, the schedule,
//! the metrics aggregator and the export queue.
//!
//! The schedule is one for the whole run, in units (traces or spans): a worker
//! generates its pick first, so it knows what the pick is worth, then claims
//! the next slot for exactly that many units and waits for it. So however many
//! workers there are and however large a pick, no slot is claimed beyond what
//! the shape has offered, and a run's units exceed the shape's integral by at
//! most the one pick that straddles its end.

use super::held::Held;
use super::job::{
    generate_iteration, now_ns, stream_seed, Interrupt, Picks, Prepared, RunSpec, ScenarioCount,
    Timing,
};
use super::shard::Shard;
use crate::export::{Batcher, Counters, Signal};
use crate::metrics::Aggregator;
use crate::pace::{LagStats, RateUnit, Schedule};
use crate::plan::ScenarioPlan;
use crate::record::{LogRecord, StatusCode, TraceRecord};
use crate::settings::Settings;
use crate::show;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Separates the pick stream from the generation streams.
const PICK_SALT: u64 = 0x7069_636b_5f73_616c;

/// A pick more than this far behind its slot counts as late.
const LATE_AFTER_NS: u64 = 10_000_000;

/// What every worker of a run shares.
pub(crate) struct Shared {
    pub prep: Arc<Prepared>,
    pub settings: Arc<Settings>,
    pub spec: RunSpec,
    pub seed: u64,
    /// Picks in all (`None`: until the duration or the shape ends).
    pub total: Option<u64>,
    pub clock_start: u64,
    pub deadline: Option<u64>,
    pub next_pick: AtomicU64,
    /// The open-loop schedule every worker claims its slots on (with a load shape).
    pub schedule: Option<Mutex<Schedule>>,
    pub metrics: Mutex<MetricsState>,
    /// Every output's counters (a fatal failure of any stops the run).
    pub counters: Vec<Arc<Counters>>,
    pub stop: Interrupt,
    /// The lag of the latest paced pick, for the progress line.
    pub lag_now_ns: AtomicU64,
}

impl Shared {
    /// Whether an output still takes `signal`: once every receiver has refused
    /// it, nothing more of it is built.
    pub fn wants(&self, signal: Signal) -> bool {
        self.counters.iter().any(|c| !c.of(signal).is_off())
    }

    /// This process's share of the run (the whole run unless `--shard`).
    pub fn shard(&self) -> Shard {
        self.spec.shard.unwrap_or_default()
    }
}

pub(crate) struct MetricsState {
    pub aggregator: Aggregator,
    pub next_collect: u64,
}

/// What one worker did.
pub(crate) struct WorkerResult {
    pub counts: BTreeMap<String, ScenarioCount>,
    pub lag: LagStats,
    pub traces: u64,
    pub units: u64,
    /// Where the worker's clock stood when it stopped.
    pub clock_end_ns: u64,
    /// With a workload schedule: picks per bucket, the last for "no bucket".
    pub bucket_picks: Vec<u64>,
    pub interrupted: bool,
    pub fatal: Option<String>,
    /// The load profile's incident windows with this worker's tallies.
    pub incidents: crate::incidents::Incidents,
}

/// Runs worker number `index` until the picks, the duration or the shape run
/// out, Ctrl-C, or a fatal export error; then flushes its batcher.
pub(crate) async fn run(sh: Arc<Shared>, batcher: Batcher, index: usize) -> WorkerResult {
    let mut w = Worker::new(sh.clone(), batcher, index);
    if sh.schedule.is_none() && !w.shard_offset().await {
        w.r.interrupted = true;
        return w.finish().await;
    }
    loop {
        if w.should_stop() {
            break;
        }
        if sh.schedule.is_some() {
            if !w.paced_pick().await {
                break;
            }
            continue;
        }
        if !w.before_deadline() {
            break;
        }
        let Some(i) = w.claim_pick() else { break };
        let now = w.now();
        let (name, bucket) = scenario_of(&sh, i, now);
        let Some(plan) = sh.prep.plans.get(name) else {
            // Every listed scenario compiled (prepare fails otherwise); still, never spin.
            continue;
        };
        let traces = w.traces_of(i, plan, now, now);
        w.emit(i, name, plan, traces, now).await;
        w.count_bucket(bucket);
        if sh.total == Some(sh.shard().local(i) + 1) {
            continue;
        }
        if !w.interval_gap(plan).await {
            w.r.interrupted = true;
            break;
        }
    }
    w.finish().await
}

/// One generated pick on its way to the batcher.
struct Generated {
    traces: Vec<TraceRecord>,
    logs: Vec<LogRecord>,
    spans: u64,
}

/// What one worker keeps between picks.
struct Worker {
    sh: Arc<Shared>,
    batcher: Batcher,
    /// The schedule or the duration ran out (rather than Ctrl-C, the count or
    /// a failure): the run's clock covered all of it.
    ran_out: bool,
    /// The virtual clock (with --start-time); `None` on the wall clock.
    virtual_now: Option<u64>,
    held: Held,
    realtime: bool,
    /// Interval jitter has its own stream so it does not shift the picks' streams.
    jitter_rng: Pcg64Mcg,
    /// Derives the log records of its picks.
    logs: crate::logs::Deriver,
    r: WorkerResult,
}

impl Worker {
    fn new(sh: Arc<Shared>, batcher: Batcher, index: usize) -> Self {
        Worker {
            ran_out: false,
            virtual_now: sh.settings.start_time_ns.map(|_| sh.clock_start),
            held: Held::default(),
            realtime: sh.spec.timing == Timing::Realtime,
            jitter_rng: Pcg64Mcg::seed_from_u64(stream_seed(sh.seed ^ 0x5eed, index as u64)),
            logs: crate::logs::Deriver::new(&sh.prep.world),
            r: WorkerResult {
                counts: BTreeMap::new(),
                lag: LagStats::new(LATE_AFTER_NS),
                traces: 0,
                units: 0,
                clock_end_ns: sh.clock_start,
                bucket_picks: match &sh.spec.picks {
                    Picks::Weighted {
                        schedule: Some(mix),
                        ..
                    } => mix.zero_counts(),
                    _ => Vec::new(),
                },
                interrupted: false,
                fatal: None,
                incidents: sh
                    .spec
                    .load
                    .as_ref()
                    .map(|l| l.incidents.clone())
                    .unwrap_or_default(),
            },
            batcher,
            sh,
        }
    }

    /// The run's clock: virtual, or the wall clock.
    fn now(&self) -> u64 {
        self.virtual_now.unwrap_or_else(now_ns)
    }

    /// Ctrl-C, a fatal export error, or every pick claimed (do not wait for a
    /// slot nobody will use).
    fn should_stop(&mut self) -> bool {
        if self.sh.stop.is_set() {
            self.r.interrupted = true;
            return true;
        }
        if let Some(f) = self.sh.counters.iter().find_map(|c| c.fatal()) {
            self.r.fatal = Some(f);
            return true;
        }
        self.sh
            .total
            .is_some_and(|n| self.sh.next_pick.load(Ordering::Relaxed) >= n)
    }

    /// Without a shape, only the duration bounds the picks.
    fn before_deadline(&mut self) -> bool {
        let past = self.sh.deadline.is_some_and(|dl| self.now() >= dl);
        self.ran_out |= past;
        !past
    }

    /// Open loop: generates a pick, claims the next slot on the run's schedule
    /// for what it is worth, waits for the slot (virtual clock: jumps to it) and
    /// emits the pick then; if late, at once, saying by how much. `false` when
    /// the run is over: every pick claimed, the shape or the duration ended,
    /// or Ctrl-C came while waiting (the pick is then dropped unsent, uncounted).
    async fn paced_pick(&mut self) -> bool {
        let sh = self.sh.clone();
        let Some(i) = self.claim_pick() else {
            return false;
        };
        // The scenario may depend on when the pick is due (a workload schedule): the
        // next slot's time, checked again once the slot is claimed.
        let anchor = self.now();
        let expected = self.next_due().unwrap_or(anchor);
        let (mut name, mut bucket) = scenario_of(&sh, i, expected);
        let Some(mut plan) = sh.prep.plans.get(name) else {
            return true;
        };
        // Laid out at the clock's current reading, moved to the slot's below.
        let mut at = expected;
        let mut traces = self.traces_of(i, plan, anchor, at);
        let units = match sh.spec.load.as_ref().map(|l| l.unit) {
            Some(RateUnit::Spans) => traces.iter().map(|t| t.spans.len() as u64).sum(),
            _ => traces.len() as u64,
        };
        let Some(due) = self.claim_slot(units.max(1)) else {
            self.ran_out = true;
            return false;
        };
        if due != expected {
            // Another worker took the slot expected: if the bucket differs, the pick is
            // made again for its own slot (its units were claimed for the first one).
            let (again, b) = scenario_of(&sh, i, due);
            if b != bucket {
                if let Some(p) = sh.prep.plans.get(again) {
                    (name, bucket, plan) = (again, b, p);
                    at = due;
                    traces = self.traces_of(i, plan, anchor, at);
                }
            }
        }
        let lag = match &mut self.virtual_now {
            Some(v) => {
                *v = due;
                0
            }
            None => {
                if !wait_until(due, &mut self.batcher, &mut self.held, &sh.stop).await {
                    self.r.interrupted = true;
                    return false;
                }
                now_ns().saturating_sub(due)
            }
        };
        self.r.lag.record(lag);
        sh.lag_now_ns.store(lag, Ordering::Relaxed);
        let now = self.now();
        move_end(&mut traces, anchor, now);
        self.emit(i, name, plan, traces, now).await;
        self.count_bucket(bucket);
        true
    }

    /// When the next slot of the run's schedule is due, if there is one.
    fn next_due(&self) -> Option<u64> {
        self.sh.schedule.as_ref()?.lock().ok()?.next_due_ns()
    }

    /// Counts a pick in its workload-schedule bucket (`None`: no bucket active).
    fn count_bucket(&mut self, bucket: Option<usize>) {
        let counts = &mut self.r.bucket_picks;
        if let Some(last) = counts.len().checked_sub(1) {
            counts[bucket.unwrap_or(last).min(last)] += 1;
        }
    }

    /// The next slot on the run's schedule, for a pick of `units`; `None` when
    /// the shape or the duration has ended before it.
    fn claim_slot(&mut self, units: u64) -> Option<u64> {
        let schedule = self.sh.schedule.as_ref()?;
        let mut s = schedule.lock().ok()?;
        let due = s.next_due_ns()?;
        let clock = self.virtual_now.map_or_else(now_ns, |_| due);
        if self.sh.deadline.is_some_and(|dl| due >= dl || clock >= dl) {
            return None;
        }
        s.advance(units);
        Some(due)
    }

    /// Claims this process's next pick and gives its number in the run (a
    /// shard's `k`-th pick is the run's `k·N + I`); `None`: all taken.
    fn claim_pick(&mut self) -> Option<u64> {
        let k = self.sh.next_pick.fetch_add(1, Ordering::Relaxed);
        if self.sh.total.is_some_and(|n| k >= n) {
            return None;
        }
        Some(self.sh.shard().pick(k))
    }

    /// Interval mode, shard `I` of `N`: the run's pick `I` is due `I` gaps after
    /// the start, so the shard waits that long before its first pick (then `N`
    /// gaps between its picks): together the shards keep the run's rhythm, and
    /// on the virtual clock every pick has the single run's timestamps. `false`
    /// when Ctrl-C came first.
    async fn shard_offset(&mut self) -> bool {
        let index = f64::from(self.sh.shard().index);
        let gap_ms = self.sh.spec.interval_ms.unwrap_or(0.0) * index;
        match &mut self.virtual_now {
            Some(v) => *v = v.saturating_add((gap_ms * 1e6) as u64),
            None if gap_ms > 0.0 => {
                let until = now_ns().saturating_add((gap_ms * 1e6) as u64);
                return wait_until(until, &mut self.batcher, &mut self.held, &self.sh.stop).await;
            }
            None => {}
        }
        true
    }

    /// The traces of pick `i`, laid back to end at `anchor`, with the incidents
    /// in force at `at` on the run's clock (the time the pick is due); tallied
    /// for the incidents' report.
    fn traces_of(&mut self, i: u64, plan: &ScenarioPlan, anchor: u64, at: u64) -> Vec<TraceRecord> {
        // Pick i's content depends on the seed and i only, whichever worker makes it.
        let mut rng = Pcg64Mcg::seed_from_u64(stream_seed(self.sh.seed, i));
        let world = &self.sh.prep.world;
        if self.r.incidents.is_empty() {
            return generate_iteration(world, plan, anchor, i, &mut rng);
        }
        let at_s = at.saturating_sub(self.sh.clock_start) as f64 / 1e9;
        let effects = self.r.incidents.effects_at(at_s);
        let traces =
            crate::generate::generate_iteration_with(world, plan, anchor, i, &effects, &mut rng);
        self.r.incidents.observe(&traces, at_s, world);
        traces
    }

    /// Emits pick `i` at `now`: derives its measurements and log records,
    /// counts, shows and hands it over.
    async fn emit(
        &mut self,
        i: u64,
        name: &str,
        plan: &ScenarioPlan,
        traces: Vec<TraceRecord>,
        now: u64,
    ) {
        let pick = self.derive(plan, traces, now);
        self.count(name, &pick);
        self.show(i, name, &pick);
        self.count_units(&pick);
        self.hand_over(pick).await;
    }

    /// Records a pick's measurements and derives its log records (realtime:
    /// first moves it to start at `now`).
    fn derive(&mut self, plan: &ScenarioPlan, mut traces: Vec<TraceRecord>, now: u64) -> Generated {
        let (prep, settings) = (&self.sh.prep, &self.sh.settings);
        if self.realtime {
            start_at(&mut traces, now);
        }
        // Measurements are stamped when the pick is emitted (realtime: when its last span ends).
        let emitted = if self.realtime {
            last_end(&traces)
        } else {
            now
        };
        if settings.metrics.unwrap_or(plan.emit_metrics) && self.sh.wants(Signal::Metrics) {
            if let Ok(mut m) = self.sh.metrics.lock() {
                for t in &traces {
                    m.aggregator.record(&prep.world, t, emitted);
                }
            }
        }
        let mut logs = Vec::new();
        if settings.logs.unwrap_or(plan.emit_logs) && self.sh.wants(Signal::Logs) {
            for t in &traces {
                self.logs.derive(&prep.world, t, &mut logs);
            }
        }
        let spans = traces.iter().map(|t| t.spans.len() as u64).sum();
        Generated {
            traces,
            logs,
            spans,
        }
    }

    /// Adds a pick to its scenario's counts.
    fn count(&mut self, name: &str, g: &Generated) {
        let c = self.r.counts.entry(name.to_string()).or_default();
        c.requests += 1;
        c.log_records += g.logs.len() as u64;
        c.traces += g.traces.len() as u64;
        c.spans += g.spans;
        c.error_spans += g
            .traces
            .iter()
            .flat_map(|t| &t.spans)
            .filter(|s| s.status == StatusCode::Error)
            .count() as u64;
        let cost_key = &self.sh.prep.world.cost_key;
        c.llm_cost_usd += g
            .traces
            .iter()
            .flat_map(|t| &t.spans)
            .filter_map(|s| match s.attr(cost_key) {
                Some(crate::model::AttrValue::Double(d)) => Some(*d),
                _ => None,
            })
            .sum::<f64>();
    }

    /// --show-spans trees on stdout, or a -v line on stderr.
    fn show(&self, i: u64, name: &str, g: &Generated) {
        let (spec, settings) = (&self.sh.spec, &self.sh.settings);
        if spec.show != show::Mode::Off {
            let mut out = std::io::stdout().lock();
            for t in &g.traces {
                let _ = out.write_all(show::render_trace(t, spec.show, &g.logs).as_bytes());
            }
        } else if settings.verbose > 0 && !settings.quiet {
            let first = g
                .traces
                .first()
                .map(|t| hex::encode(t.trace_id))
                .unwrap_or_default();
            let of = self
                .sh
                .total
                .map_or_else(|| "…".to_string(), |n| n.to_string());
            eprintln!(
                "[{}/{of}] {name} trace_id={first} traces={} spans={}",
                i + 1,
                g.traces.len(),
                g.spans
            );
        }
    }

    /// Counts the pick's traces and units.
    fn count_units(&mut self, g: &Generated) {
        let units = match self.sh.spec.load.as_ref().map(|l| l.unit) {
            Some(RateUnit::Spans) => g.spans,
            _ => g.traces.len() as u64,
        };
        self.r.traces += g.traces.len() as u64;
        self.r.units += units;
    }

    /// Gives the pick to the batcher (realtime: each span when it ends), then
    /// collects metrics if due and flushes a lingering batch.
    async fn hand_over(&mut self, g: Generated) {
        // Not raced against Ctrl-C: once generated, a pick is always counted through to the end.
        if self.realtime {
            self.batcher.count_traces(g.traces.len() as u64);
            self.held.hold(g.traces, g.logs);
            self.held.release(now_ns(), &mut self.batcher).await;
        } else {
            self.batcher.submit(g.traces, g.logs).await;
        }
        let now = self.now();
        collect_metrics_if_due(&self.sh, &mut self.batcher, now).await;
        self.batcher.flush_if_lingering().await;
    }

    /// Interval mode (one worker): the gap between picks, from --interval or
    /// the scenario's interval ± deviation. `false` when Ctrl-C came first.
    async fn interval_gap(&mut self, plan: &ScenarioPlan) -> bool {
        let gap_ms = match self.sh.spec.interval_ms {
            Some(ms) => ms,
            None => {
                let dev = plan.interval_deviation_ms;
                let jitter = if dev > 0.0 {
                    self.jitter_rng.random_range(-dev..dev)
                } else {
                    0.0
                };
                (plan.interval_ms + jitter).max(0.0)
            }
        };
        // A shard makes every N-th pick: N of the run's gaps lie between two of its own.
        let gap_ms = gap_ms * f64::from(self.sh.shard().count);
        match &mut self.virtual_now {
            Some(v) => *v = v.saturating_add((gap_ms * 1e6) as u64),
            None if gap_ms > 0.0 => {
                let until = now_ns().saturating_add((gap_ms * 1e6) as u64);
                return wait_until(until, &mut self.batcher, &mut self.held, &self.sh.stop).await;
            }
            None => {}
        }
        true
    }

    /// Where the run's clock stood when generation stopped (before any drain): the
    /// schedule's next slot on the virtual clock (it covered what was sent), now on
    /// the wall clock, or the end of the duration or the shape when they ran out
    /// (the run covered them: nothing more was due before their end); never past them.
    fn clock_end(&mut self) -> u64 {
        let sh = &self.sh;
        let shape_end = sh
            .spec
            .load
            .as_ref()
            .map(|l| l.profile.secs())
            .and_then(|secs| {
                secs.is_finite()
                    .then(|| sh.clock_start.saturating_add((secs * 1e9) as u64))
            });
        let next_due = sh.schedule.as_ref().and_then(|s| {
            s.lock()
                .ok()
                .map(|mut s| s.next_due_ns().unwrap_or(u64::MAX))
        });
        let end = match (self.virtual_now, next_due) {
            (Some(v), Some(due)) => due.max(v),
            (Some(v), None) => v,
            (None, _) if self.ran_out => u64::MAX,
            (None, _) => now_ns(),
        };
        end.min(sh.deadline.unwrap_or(u64::MAX))
            .min(shape_end.unwrap_or(u64::MAX))
    }

    /// Realtime: spans still running go out when they end (at once after Ctrl-C,
    /// or when the endpoint has failed for good).
    async fn drain_held(&mut self) {
        while let Some(at) = self.held.next_at() {
            if self.r.interrupted
                || self.r.fatal.is_some()
                || !wait_until(at, &mut self.batcher, &mut self.held, &self.sh.stop).await
            {
                self.r.interrupted = true;
                self.held.release(u64::MAX, &mut self.batcher).await;
            } else {
                self.held.release(now_ns(), &mut self.batcher).await;
            }
        }
    }

    /// Stops the clock, drains what realtime mode still holds, and flushes the batcher.
    async fn finish(mut self) -> WorkerResult {
        self.r.clock_end_ns = self.clock_end();
        self.drain_held().await;
        self.batcher.close().await;
        self.r
    }
}

/// The scenario of pick `i`, due at `at_ns` on the run's clock, and the
/// workload-schedule bucket it fell in (`None`: no schedule, or no bucket active).
fn scenario_of(sh: &Shared, i: u64, at_ns: u64) -> (&str, Option<usize>) {
    match &sh.spec.picks {
        Picks::Weighted {
            weights, schedule, ..
        } => {
            // A full-avalanche hash of (seed, i): uniform even over the first few picks.
            let u = (stream_seed(sh.seed ^ PICK_SALT, i) >> 11) as f64 / (1u64 << 53) as f64;
            match schedule {
                Some(mix) => mix.pick_at(u, at_ns, weights),
                None => (weights.pick_at(u), None),
            }
        }
        Picks::EachOnce(names) => (&names[i as usize], None),
        Picks::Repeat { name, .. } => (name, None),
    }
}

/// Collects and exports metrics when the run's clock has passed the next
/// collection time; the first worker to notice does it.
async fn collect_metrics_if_due(sh: &Shared, batcher: &mut Batcher, now: u64) {
    if !sh.wants(Signal::Metrics) {
        return;
    }
    let collected = {
        let Ok(mut m) = sh.metrics.lock() else { return };
        if now < m.next_collect {
            return;
        }
        m.next_collect = now.saturating_add(
            u64::try_from(sh.settings.metrics_interval.as_nanos()).unwrap_or(u64::MAX),
        );
        crate::encode::metrics::collect(&mut m.aggregator, now, batcher.resources())
    };
    if let Some((request, points)) = collected {
        batcher.submit_metrics(request, points).await;
    }
}

/// Sleeps until `due_ns` (Unix ns) while flushing lingering batches and releasing
/// realtime spans on time; `false` when Ctrl-C came first.
async fn wait_until(due_ns: u64, batcher: &mut Batcher, held: &mut Held, stop: &Interrupt) -> bool {
    loop {
        let now = now_ns();
        if now + 1_000_000 > due_ns {
            return true;
        }
        let mut sleep = Duration::from_nanos(due_ns - now);
        if let Some(l) = batcher.linger_left() {
            sleep = sleep.min(l);
        }
        if let Some(at) = held.next_at() {
            sleep = sleep.min(Duration::from_nanos(at.saturating_sub(now)));
        }
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.notified() => return false,
        }
        held.release(now_ns(), batcher).await;
        batcher.flush_if_lingering().await;
    }
}

/// Moves a pick laid back to end at `from` so that it ends at `to` (a pure
/// translation: generation is the same at any anchor).
fn move_end(traces: &mut [TraceRecord], from: u64, to: u64) {
    if from == to {
        return;
    }
    let shift = |t: u64| {
        if to > from {
            t.saturating_add(to - from)
        } else {
            t.saturating_sub(from - to)
        }
    };
    for s in traces.iter_mut().flat_map(|t| &mut t.spans) {
        s.start_ns = shift(s.start_ns);
        s.end_ns = shift(s.end_ns);
        for e in &mut s.events {
            e.time_ns = shift(e.time_ns);
        }
    }
}

/// The end of a pick's last span.
fn last_end(traces: &[TraceRecord]) -> u64 {
    traces
        .iter()
        .flat_map(|t| &t.spans)
        .map(|s| s.end_ns)
        .max()
        .unwrap_or(0)
}

/// Moves a pick forward in time so it starts at `start_ns` (generation lays it
/// back to end at the anchor).
fn start_at(traces: &mut [TraceRecord], start_ns: u64) {
    let first = traces
        .iter()
        .flat_map(|t| &t.spans)
        .map(|s| s.start_ns)
        .min()
        .unwrap_or(start_ns);
    let shift = start_ns.saturating_sub(first);
    for s in traces.iter_mut().flat_map(|t| &mut t.spans) {
        s.start_ns += shift;
        s.end_ns += shift;
        for e in &mut s.events {
            e.time_ns += shift;
        }
    }
}
