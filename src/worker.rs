//! One generator of a run: paces its share of the load, picks and generates
//! requests, derives logs and metrics, and feeds its own batcher. A run starts
//! `--workers` of these; they share only the pick counter, the metrics
//! aggregator and the export queue.

use crate::export::{Batcher, Counters};
use crate::job::{
    generate_iteration, now_ns, stream_seed, Interrupt, Picks, Prepared, RunSpec, ScenarioCount,
    Timing,
};
use crate::metrics::Aggregator;
use crate::pace::{LagStats, RateUnit, Schedule};
use crate::record::{LogRecord, StatusCode, TraceRecord};
use crate::settings::Settings;
use crate::show;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
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
    pub metrics: Mutex<MetricsState>,
    /// Every output's counters (a fatal failure of any stops the run).
    pub counters: Vec<Arc<Counters>>,
    pub stop: Interrupt,
    /// The lag of the latest paced pick, for the progress line.
    pub lag_now_ns: AtomicU64,
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
    pub interrupted: bool,
    pub fatal: Option<String>,
}

/// Runs one worker, `index` of `workers`, until its picks, the duration or the
/// shape run out, Ctrl-C, or a fatal export error; then flushes its batcher.
pub(crate) async fn run(
    sh: Arc<Shared>,
    mut batcher: Batcher,
    index: usize,
    workers: usize,
) -> WorkerResult {
    let spec = &sh.spec;
    let prep = &sh.prep;
    let settings = &sh.settings;
    // Worker w starts w/W of a unit in: its slots fall between the others', so
    // together they follow the shape exactly instead of firing in clumps.
    let mut schedule = spec.load.as_ref().map(|l| {
        Schedule::with_offset(
            sh.clock_start,
            l.profile.share(workers),
            index as f64 / workers as f64,
        )
    });
    let mut virtual_now = settings.start_time_ns.map(|_| sh.clock_start);
    let mut held = Held::default();
    let realtime = spec.timing == Timing::Realtime;
    let mut r = WorkerResult {
        counts: BTreeMap::new(),
        lag: LagStats::new(LATE_AFTER_NS),
        traces: 0,
        units: 0,
        clock_end_ns: sh.clock_start,
        interrupted: false,
        fatal: None,
    };
    // Interval jitter has its own stream so it does not shift the picks' streams.
    let mut jitter_rng = Pcg64Mcg::seed_from_u64(stream_seed(sh.seed ^ 0x5eed, index as u64));
    let stdout = std::io::stdout();
    loop {
        if sh.stop.is_set() {
            r.interrupted = true;
            break;
        }
        if let Some(f) = sh.counters.iter().find_map(|c| c.fatal()) {
            r.fatal = Some(f);
            break;
        }
        // Every pick claimed: do not wait for a slot nobody will use.
        if sh
            .total
            .is_some_and(|n| sh.next_pick.load(Ordering::Relaxed) >= n)
        {
            break;
        }
        // Open loop: wait for this worker's next slot (virtual clock: jump to it);
        // if late, go now and record by how much (once the pick is claimed).
        let mut lag = None;
        if let Some(s) = &mut schedule {
            let Some(due) = s.next_due_ns() else { break };
            let clock = virtual_now.map_or_else(now_ns, |_| due);
            if sh.deadline.is_some_and(|dl| due >= dl || clock >= dl) {
                break;
            }
            match &mut virtual_now {
                Some(v) => {
                    *v = due;
                    lag = Some(0);
                }
                None => {
                    if !wait_until(due, &mut batcher, &mut held, &sh.stop).await {
                        r.interrupted = true;
                        break;
                    }
                    lag = Some(now_ns().saturating_sub(due));
                }
            }
        } else if sh
            .deadline
            .is_some_and(|dl| virtual_now.unwrap_or_else(now_ns) >= dl)
        {
            break;
        }
        let i = sh.next_pick.fetch_add(1, Ordering::Relaxed);
        if sh.total.is_some_and(|n| i >= n) {
            break;
        }
        if let Some(l) = lag {
            r.lag.record(l);
            sh.lag_now_ns.store(l, Ordering::Relaxed);
        }
        // Pick i's content depends on the seed and i only, whichever worker makes it.
        let mut rng = Pcg64Mcg::seed_from_u64(stream_seed(sh.seed, i));
        let name: &str = match &spec.picks {
            // A full-avalanche hash of (seed, i): uniform even over the first few picks.
            Picks::Weighted { weights, .. } => weights
                .pick_at((stream_seed(sh.seed ^ PICK_SALT, i) >> 11) as f64 / (1u64 << 53) as f64),
            Picks::EachOnce(names) => &names[i as usize],
            Picks::Repeat { name, .. } => name,
        };
        let Some(plan) = prep.plans.get(name) else {
            // Every listed scenario compiled (prepare fails otherwise); still, never spin.
            continue;
        };
        let now = virtual_now.unwrap_or_else(now_ns);
        let mut traces = generate_iteration(&prep.world, plan, now, &mut rng);
        if realtime {
            start_at(&mut traces, now);
        }
        // Measurements are stamped when the pick is emitted (realtime: when its last span ends).
        let emitted = if realtime { last_end(&traces) } else { now };
        if settings.metrics.unwrap_or(plan.emit_metrics) {
            if let Ok(mut m) = sh.metrics.lock() {
                for t in &traces {
                    m.aggregator.record(&prep.world, t, emitted);
                }
            }
        }
        let mut logs = Vec::new();
        if settings.logs.unwrap_or(plan.emit_logs) {
            for t in &traces {
                crate::logs::derive(&prep.world, t, &mut logs);
            }
        }
        let spans: u64 = traces.iter().map(|t| t.spans.len() as u64).sum();
        let c = r.counts.entry(name.to_string()).or_default();
        c.requests += 1;
        c.log_records += logs.len() as u64;
        c.traces += traces.len() as u64;
        c.spans += spans;
        c.error_spans += traces
            .iter()
            .flat_map(|t| &t.spans)
            .filter(|s| s.status == StatusCode::Error)
            .count() as u64;
        if spec.show != show::Mode::Off {
            let mut out = stdout.lock();
            for t in &traces {
                let _ = out.write_all(show::render_trace(t, spec.show, &logs).as_bytes());
            }
        } else if settings.verbose > 0 && !settings.quiet {
            let first = traces
                .first()
                .map(|t| hex::encode(t.trace_id))
                .unwrap_or_default();
            let of = sh.total.map_or_else(|| "…".to_string(), |n| n.to_string());
            eprintln!(
                "[{}/{of}] {name} trace_id={first} traces={} spans={spans}",
                i + 1,
                traces.len()
            );
        }
        let units = match spec.load.as_ref().map(|l| l.unit) {
            Some(RateUnit::Spans) => spans,
            _ => traces.len() as u64,
        };
        r.traces += traces.len() as u64;
        r.units += units;
        if let Some(s) = &mut schedule {
            s.advance(units.max(1));
        }
        // Not raced against Ctrl-C: once generated, a pick is always counted through to the end.
        if realtime {
            batcher.count_traces(traces.len() as u64);
            held.hold(traces, logs);
            held.release(now_ns(), &mut batcher).await;
        } else {
            batcher.submit(traces, logs).await;
        }
        collect_metrics_if_due(&sh, &mut batcher, virtual_now.unwrap_or_else(now_ns)).await;
        batcher.flush_if_lingering().await;
        if sh.total == Some(i + 1) || schedule.is_some() {
            continue;
        }
        // Interval mode (one worker): the gap between picks.
        let gap_ms = match spec.interval_ms {
            Some(ms) => ms,
            None => {
                let dev = plan.interval_deviation_ms;
                let jitter = if dev > 0.0 {
                    jitter_rng.random_range(-dev..dev)
                } else {
                    0.0
                };
                (plan.interval_ms + jitter).max(0.0)
            }
        };
        match &mut virtual_now {
            Some(v) => *v = v.saturating_add((gap_ms * 1e6) as u64),
            None if gap_ms > 0.0 => {
                let until = now_ns().saturating_add((gap_ms * 1e6) as u64);
                if !wait_until(until, &mut batcher, &mut held, &sh.stop).await {
                    r.interrupted = true;
                    break;
                }
            }
            None => {}
        }
    }
    // Where the run's clock stood when generation stopped (before any drain): the
    // schedule's next slot on the virtual clock (it covered what was sent), now on
    // the wall clock; never past the duration or the end of the shape.
    let shape_end = spec
        .load
        .as_ref()
        .map(|l| l.profile.secs())
        .and_then(|secs| {
            secs.is_finite()
                .then(|| sh.clock_start.saturating_add((secs * 1e9) as u64))
        });
    let end = match (virtual_now, &mut schedule) {
        (Some(v), Some(s)) => s.next_due_ns().unwrap_or(u64::MAX).max(v),
        (Some(v), None) => v,
        (None, _) => now_ns(),
    };
    r.clock_end_ns = end
        .min(sh.deadline.unwrap_or(u64::MAX))
        .min(shape_end.unwrap_or(u64::MAX));
    // Realtime: spans still running go out when they end (at once after Ctrl-C,
    // or when the endpoint has failed for good).
    while let Some(at) = held.next_at() {
        if r.interrupted
            || r.fatal.is_some()
            || !wait_until(at, &mut batcher, &mut held, &sh.stop).await
        {
            r.interrupted = true;
            held.release(u64::MAX, &mut batcher).await;
        } else {
            held.release(now_ns(), &mut batcher).await;
        }
    }
    batcher.close().await;
    r
}

/// Collects and exports metrics when the run's clock has passed the next
/// collection time; the first worker to notice does it.
async fn collect_metrics_if_due(sh: &Shared, batcher: &mut Batcher, now: u64) {
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

/// Realtime mode: spans and log records waiting for their end time on the wall
/// clock. One heap per worker, no thread or timer per trace; memory is bounded
/// by rate × the longest pick.
#[derive(Default)]
struct Held {
    heap: BinaryHeap<Reverse<Due>>,
    seq: u64,
}

struct Due {
    at: u64,
    seq: u64,
    item: Item,
}

enum Item {
    /// One span, as a one-span trace (the batcher groups by resource and scope).
    Span(TraceRecord),
    Log(LogRecord),
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

impl Held {
    fn push(&mut self, at: u64, item: Item) {
        self.seq += 1;
        self.heap.push(Reverse(Due {
            at,
            seq: self.seq,
            item,
        }));
    }

    fn hold(&mut self, traces: Vec<TraceRecord>, logs: Vec<LogRecord>) {
        for t in traces {
            for s in t.spans {
                let at = s.end_ns;
                self.push(
                    at,
                    Item::Span(TraceRecord {
                        trace_id: t.trace_id,
                        scope: t.scope.clone(),
                        scenario: t.scenario.clone(),
                        spans: vec![s],
                    }),
                );
            }
        }
        for l in logs {
            self.push(l.time_ns, Item::Log(l));
        }
    }

    fn next_at(&self) -> Option<u64> {
        self.heap.peek().map(|d| d.0.at)
    }

    /// Hands everything due by `now` to the batcher.
    async fn release(&mut self, now: u64, batcher: &mut Batcher) {
        let mut traces = Vec::new();
        let mut logs = Vec::new();
        while self.heap.peek().is_some_and(|d| d.0.at <= now) {
            let Some(Reverse(d)) = self.heap.pop() else {
                break;
            };
            match d.item {
                Item::Span(t) => traces.push(t),
                Item::Log(l) => logs.push(l),
            }
        }
        if !traces.is_empty() || !logs.is_empty() {
            batcher.submit_parts(traces, logs).await;
        }
    }
}
