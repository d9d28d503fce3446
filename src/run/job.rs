//! What a run is made of, below the orchestration: the loaded and compiled
//! scenarios, what to run and how (picks, load shape, timing, engine), one pick's
//! generation, per-pick RNG streams, the clock, and Ctrl-C.

use crate::diag::{Diagnostic, Diags, Severity};

use crate::pace::{Profile, RateUnit};
use crate::plan::{Compiler, ScenarioPlan, World, WorldOptions};

use crate::registry::{Registry, Skipped, Sources};
use crate::show;
use rand::Rng;
use std::collections::BTreeMap;

use std::time::{Duration, SystemTime};

/// Everything loaded and compiled once per process.
pub struct Prepared {
    /// The loaded inputs; a scenario that does not compile is moved to its `skipped`.
    pub registry: Registry,
    /// What every scenario of the run shares.
    pub world: World,
    /// Every scenario that compiled, by name.
    pub plans: BTreeMap<String, ScenarioPlan>,
    /// Warnings of every input that loaded (enum values normalised, unknown keys in
    /// scenario files and the like). The skipped files keep theirs.
    pub warnings: Vec<Diagnostic>,
}

impl Prepared {
    /// Every problem of every file, the skipped ones' included, errors first: what
    /// `validate` lists.
    pub fn all_diagnostics(&self) -> Vec<Diagnostic> {
        let mut all = self.registry.all_diagnostics();
        all.extend(self.warnings.iter().cloned());
        all.sort_by_key(|d| std::cmp::Reverse(d.severity));
        all
    }
}

/// Loads and compiles what can be: a scenario file that does not load or compile
/// is skipped (`registry.skipped`) and the others still run. Fails, with every
/// diagnostic of every file, only when config.yaml or the conventions have errors
/// (a scenario config.yaml declares that does not compile is one of them).
pub fn prepare(sources: &Sources, opts: &WorldOptions) -> Result<Prepared, crate::diag::LoadError> {
    prepare_with_flow(sources, opts, None)
}

/// [`prepare`], with `--trace-flow` (when given) in place of config.yaml's
/// `control_plane.trace_flow_mode`.
pub fn prepare_with_flow(
    sources: &Sources,
    opts: &WorldOptions,
    flow: Option<TraceFlow>,
) -> Result<Prepared, crate::diag::LoadError> {
    let mut registry = Registry::load_collecting(sources)?;
    if let Some(flow) = flow {
        registry.config.control_plane.single_trace = flow == TraceFlow::Single;
    }
    let mut wd = Diags::new(registry.config.source.as_str());
    let world = World::new(&registry.config, &registry.semconv, opts, &mut wd);
    // Warnings move here; errors of the shared inputs stay in the registry.
    registry.diagnostics.append(&mut wd.items);
    let (shared, mut warnings): (Vec<_>, Vec<_>) = std::mem::take(&mut registry.diagnostics)
        .into_iter()
        .partition(|d| d.severity == Severity::Error);
    registry.diagnostics = shared;
    let compiler = Compiler {
        world: &world,
        cfg: &registry.config,
        sc: &registry.semconv,
    };
    let mut plans = BTreeMap::new();
    let mut failed = Vec::new();
    for s in &registry.scenarios {
        let mut d = Diags::new(s.source.as_str());
        match compiler.scenario(s, &mut d) {
            Some(p) if !d.has_errors() => {
                plans.insert(s.name.clone(), p);
                warnings.append(&mut d.items);
            }
            _ if registry.declared_in_config.contains(&s.name) => {
                registry.diagnostics.append(&mut d.items);
            }
            _ => failed.push((s.name.clone(), s.source.clone(), d.items)),
        }
    }
    crate::generate::attach_semconv_fill(&world, &registry.semconv, plans.values_mut());
    for (name, file, mut diags) in failed {
        // The file's load warnings go with it, so a skipped file is reported once.
        let (mine, others): (Vec<_>, Vec<_>) = warnings.into_iter().partition(|d| *d.file == *file);
        warnings = others;
        let mut all = mine;
        all.append(&mut diags);
        registry.scenarios.retain(|s| s.name != name);
        registry.skipped.push(Skipped::new(name, file, all));
    }
    registry.skipped.sort_by(|a, b| a.file.cmp(&b.file));
    warnings.extend(super::schedule::check_names(&registry));
    if registry.shared_errors() {
        registry.diagnostics.extend(warnings);
        return Err(crate::diag::LoadError {
            diagnostics: registry.all_diagnostics(),
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
        /// The candidates: the scenarios `--tags` selected.
        names: Vec<String>,
        /// Picks a name by `workload_weight`.
        weights: crate::registry::Picker,
        /// Picks to make; `None`: as many as the duration or load shape allows.
        count: Option<u64>,
        /// `--workload-schedule`: the mix follows the local hour of each pick's time.
        schedule: Option<Box<super::schedule::WorkloadMix>>,
    },
    /// `run --each-once`: every name once, in order.
    EachOnce(Vec<String>),
    /// `scenario`: one scenario `count` times.
    Repeat {
        /// The scenario's name.
        name: String,
        /// Iterations: `--count`, else the scenario's `repeat_count`.
        count: u64,
    },
}

/// A checked run: what to pick, how fast, for how long, and where timestamps come from.
pub struct RunSpec {
    /// Which scenarios, in what order, how many times.
    pub picks: Picks,
    /// Gap between picks in ms; `None` means "use each scenario's own interval".
    pub interval_ms: Option<f64>,
    /// An open-loop load shape (replaces the interval).
    pub load: Option<Load>,
    /// Stop after this long on the run's clock.
    pub duration: Option<Duration>,
    /// Whether each trace is printed as a tree (`--show-spans`, `--show-full-spans`).
    pub show: show::Mode,
    /// Concurrent generators (each with its share of the load and its own batcher).
    pub workers: usize,
    /// Back-dated or realtime spans.
    pub timing: Timing,
    /// Identifies this run's telemetry (resource attribute `otelsim.run.id`).
    pub run_id: String,
    /// Keep the list of acknowledged traces for `otelsim verify`.
    pub track_acks: bool,
    /// Which exporter carries the spans.
    pub engine: Engine,
    /// This process's share of the run (`--shard`); `None`: the whole run.
    pub shard: Option<super::shard::Shard>,
}

/// Which exporter carries the spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Engine {
    /// otelsim's own encoder and lossless batching sender.
    #[value(name = "native")]
    #[serde(rename = "native")]
    Native,
    /// The OpenTelemetry SDK's BatchSpanProcessor and OTLP exporter, with the
    /// SDK's behaviour (a full queue drops spans, which the report counts).
    #[value(name = "sdk")]
    #[serde(rename = "sdk")]
    Sdk,
}

/// How an allowed request's parts (incoming validation, agent turn, response
/// validation) become traces: `--trace-flow`, else config.yaml's
/// `control_plane.trace_flow_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum TraceFlow {
    /// One trace per request: the gateway's span is the root of every part.
    #[value(name = "single")]
    #[serde(rename = "single")]
    Single,
    /// One trace per part, each root linked to the previous part's root
    /// (config.yaml calls it `separate`).
    #[value(name = "linked", alias = "separate")]
    #[serde(rename = "linked")]
    Linked,
}

impl TraceFlow {
    /// The flow a config asks for (`trace_flow_mode: single`, else linked).
    pub fn of(single_trace: bool) -> Self {
        if single_trace {
            TraceFlow::Single
        } else {
            TraceFlow::Linked
        }
    }
}

/// An open-loop load: a shape and what its rates count.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Load {
    /// Rates over the run's clock: stages, bursts.
    pub profile: Profile,
    /// Whether the rates count traces or spans.
    pub unit: RateUnit,
    /// Incident windows of the load profile, resolved to the run's services.
    #[serde(skip)]
    pub incidents: crate::incidents::Incidents,
}

/// How traces are placed in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Timing {
    /// Each pick is laid back so its last span ends when it is sent.
    #[serde(rename = "back-dated")]
    BackDated,
    /// Each pick starts when it is due and every span is exported when it ends
    /// on the wall clock (what tail samplers and live dashboards expect).
    #[serde(rename = "realtime")]
    Realtime,
}

/// What one scenario produced in a run, for the summary and the report.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ScenarioCount {
    /// Picks made (a multi-turn session counts as one).
    pub requests: u64,
    /// Traces generated.
    pub traces: u64,
    /// Spans generated.
    pub spans: u64,
    /// Spans with status ERROR.
    pub error_spans: u64,
    /// Log records derived from its spans.
    pub log_records: u64,
    /// Cost of its LLM calls in USD (`<prefix>.llm.cost.usd`; only scenarios that track costs).
    #[serde(skip_serializing_if = "is_zero")]
    pub llm_cost_usd: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl ScenarioCount {
    /// Adds another worker's counts for the same scenario.
    pub fn add(&mut self, o: &ScenarioCount) {
        self.requests += o.requests;
        self.traces += o.traces;
        self.spans += o.spans;
        self.error_spans += o.error_spans;
        self.log_records += o.log_records;
        self.llm_cost_usd += o.llm_cost_usd;
    }
}

/// Ctrl-C / SIGTERM: the first stops the run (which then flushes); the second aborts.
#[derive(Clone)]
pub struct Interrupt {
    rx: tokio::sync::watch::Receiver<bool>,
}

impl Interrupt {
    pub fn install() -> Self {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                wait_for_signal().await;
                if *tx.borrow() {
                    eprintln!("otelsim: aborted without flushing");
                    std::process::exit(130);
                }
                // Every worker sees the value, whenever it looks.
                let _ = tx.send(true);
            }
        });
        Interrupt { rx }
    }

    pub fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    pub async fn notified(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|v| *v).await;
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
pub fn stream_seed(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub use crate::generate::generate_iteration;
pub use crate::ids::RUN_ID_KEY;

/// The longest run id, in bytes: the sink tracks no longer ones (they are not otelsim's).
pub const MAX_RUN_ID_LEN: usize = 128;

/// A fresh run id (32 hex digits); derived from the seed and start time when both
/// are given, so reproducible runs stay byte-identical.
pub fn new_run_id(seed: Option<u64>, start_time_ns: Option<u64>) -> String {
    let (a, b) = match (seed, start_time_ns) {
        (Some(s), Some(t)) => (stream_seed(s, t), stream_seed(t, s)),
        _ => {
            let mut r = rand::rng();
            (r.random(), r.random())
        }
    };
    format!("{a:016x}{b:016x}")
}

/// Wall-clock time, in ns since the Unix epoch (0 if the clock is before it).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
