//! Flags → a checked run: every check and derivation of the `run` and
//! `scenario` flags in one place, in the order the messages have always come,
//! so that `execute` only runs what passed.

use super::Failure;
use crate::cli::{RunArgs, ScenarioArgs};
use crate::export::Protocol;
use crate::pace::{Profile, RateUnit};
use crate::registry::Picker;
use crate::run::schedule::WorkloadMix;
use crate::run::shard::Shard;
use crate::run::{new_run_id, now_ns, Engine, Load, Picks, Prepared, RunSpec, Timing};
use crate::settings::{OutputKind, Settings};
use crate::show;
use std::path::PathBuf;
use std::time::Duration;

/// The flags of a command that runs scenarios.
#[derive(Clone, Copy)]
pub(super) enum RunFlags<'a> {
    /// `otelsim run`: a weighted mix, each filtered scenario once, or a load shape.
    Mixed(&'a RunArgs),
    /// `otelsim scenario`: one scenario, repeated.
    Scenario(&'a ScenarioArgs),
}

impl RunFlags<'_> {
    /// `--trace-flow`, when given.
    pub(super) fn trace_flow(&self) -> Option<crate::run::TraceFlow> {
        match self {
            RunFlags::Mixed(a) => a.flow.trace_flow,
            RunFlags::Scenario(a) => a.flow.trace_flow,
        }
    }
}

/// Where the run report goes and what shortfall fails the run (`run` only).
#[derive(Default)]
pub(super) struct Gate {
    pub report: Option<PathBuf>,
    pub max_shortfall: Option<f64>,
    /// The load shape, as the report's settings show it.
    pub load: Option<Load>,
}

/// A run whose flags passed every check.
pub(super) struct CheckedRun {
    /// The settings the run goes with: `--backfill` sets the start, `--engine sdk`
    /// turns metrics and logs off.
    pub settings: Settings,
    pub spec: RunSpec,
    pub gate: Gate,
    /// A constant rate with no count or duration runs until Ctrl-C: worth saying.
    pub until_interrupted: bool,
}

/// Turns the flags of `run` or `scenario` (with the settings and the loaded
/// scenarios) into a checked run; the first problem is an input failure.
pub(super) fn run_spec(
    s: &Settings,
    prep: &Prepared,
    flags: RunFlags<'_>,
) -> Result<CheckedRun, Failure> {
    let mut run = match flags {
        RunFlags::Scenario(a) => scenario_run(s, prep, a)?,
        RunFlags::Mixed(a) => mixed_run(s, prep, a)?,
    };
    session_outputs(&mut run, &prep.registry.config.agent_trace)?;
    check_output_files(&run.settings)?;
    check_export(&run.settings)?;
    Ok(run)
}

/// Endpoints and headers that could never be sent are input errors (exit 2),
/// found before anything starts rather than as export failures.
fn check_export(s: &Settings) -> Result<(), Failure> {
    if !s.sends_otlp() {
        return Ok(());
    }
    let e = &s.export;
    let endpoints = std::iter::once(("--endpoint / OTEL_EXPORTER_OTLP_ENDPOINT", &e.endpoint))
        .chain(
            e.signal_endpoints
                .iter()
                .zip([
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                ])
                .filter_map(|(u, name)| u.as_ref().map(|u| (name, u))),
        );
    for (name, url) in endpoints {
        crate::export::check_endpoint(url)
            .map_err(|err| Failure::input(format!("{name}: {err:#}")))?;
    }
    crate::export::check_headers(&e.headers)
        .map_err(|err| Failure::input(format!("--header / OTEL_EXPORTER_OTLP_HEADERS: {err:#}")))
}

/// A run id the sink can track and `verify` can find: 1 to
/// [`crate::run::MAX_RUN_ID_LEN`] bytes, not a name the sink reserves.
fn check_run_id(id: &str) -> Result<(), Failure> {
    let max = crate::run::MAX_RUN_ID_LEN;
    if id.is_empty() || id.len() > max {
        return Err(Failure::input(format!(
            "--run-id must be 1 to {max} bytes long (it is {}): the sink tracks no longer run ids, so `otelsim verify` would find nothing of the run",
            id.len()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(Failure::input(
            "--run-id must not contain control characters",
        ));
    }
    if id.starts_with('(') && id.ends_with(')') {
        return Err(Failure::input(format!(
            "--run-id `{id}`: names in parentheses are reserved for the sink's own groups (such as `(other runs)`)"
        )));
    }
    Ok(())
}

fn scenario_run(s: &Settings, prep: &Prepared, a: &ScenarioArgs) -> Result<CheckedRun, Failure> {
    let Some(plan) = prep.plans.get(&a.name) else {
        return Err(Failure::input(prep.registry.missing_scenario(&a.name)));
    };
    if let Some(ms) = a.interval {
        check_interval(ms)?;
    }
    let spec = RunSpec {
        picks: Picks::Repeat {
            name: a.name.clone(),
            count: a.count.unwrap_or(u64::from(plan.repeat_count)),
        },
        interval_ms: a.interval,
        load: None,
        duration: None,
        show: show::Mode::from_flags(a.show.show_spans, a.show.show_full_spans),
        workers: 1,
        timing: Timing::BackDated,
        run_id: new_run_id(s.seed, s.start_time_ns),
        track_acks: false,
        engine: Engine::Native,
        shard: None,
    };
    Ok(CheckedRun {
        settings: s.clone(),
        spec,
        gate: Gate::default(),
        until_interrupted: false,
    })
}

fn mixed_run(s: &Settings, prep: &Prepared, a: &RunArgs) -> Result<CheckedRun, Failure> {
    let picks = picks(s, prep, a)?;
    check_interval(a.interval)?;
    if let Some(id) = &a.run_id {
        check_run_id(id)?;
    }
    if a.duration.is_some_and(|d| d.is_zero()) {
        return Err(Failure::input("--duration must be longer than 0"));
    }
    let shard =
        Shard::resolve(a.shard.as_deref(), &|k| std::env::var(k).ok()).map_err(Failure::input)?;
    if shard.is_some() && s.seed.is_none() {
        return Err(Failure::input(
            "--shard needs --seed: every shard must draw the same picks, and derive the same run id, as the others",
        ));
    }
    // A shard offers its share of the shape; the shards together offer all of it.
    let load = load_shape(a, &prep.world)?.map(|l| match shard {
        // Incident windows are times of the run's clock: every shard keeps them.
        Some(sh) => Load {
            profile: sh.shape(&l.profile),
            unit: l.unit,
            incidents: l.incidents,
        },
        None => l,
    });
    let start_time_given = s.start_time_ns.is_some();
    if start_time_given && load.is_none() && a.interval == 0.0 && a.count.is_none() && !a.each_once
    {
        return Err(Failure::input("--start-time with --interval 0 and no --count never advances the clock: give --count, a positive --interval, or a shape (--rate, --stages)"));
    }
    let mut s = s.clone();
    let (interval_ms, duration) = backfill(&mut s, a, load.is_some())?;
    let show = show::Mode::from_flags(a.show.show_spans, a.show.show_full_spans);
    // A positive gap between picks is sequential by definition; span trees must not interleave.
    let sequential = show != show::Mode::Off || (load.is_none() && interval_ms > 0.0);
    let workers = workers(a.workers, sequential, &s, start_time_given)?;
    if a.engine == Engine::Sdk {
        sdk_engine(&mut s)?;
    }
    if a.realtime && s.start_time_ns.is_some() {
        return Err(Failure::input(
            "--realtime runs on the wall clock; it cannot be combined with --start-time",
        ));
    }
    let until_interrupted = load.is_some()
        && duration.is_none()
        && a.count.is_none()
        && a.stages.is_none()
        && a.load_profile.is_none()
        && !a.each_once;
    let spec = RunSpec {
        picks,
        interval_ms: Some(interval_ms),
        load: load.clone(),
        duration,
        show,
        workers,
        timing: if a.realtime {
            Timing::Realtime
        } else {
            Timing::BackDated
        },
        run_id: a.run_id.clone().unwrap_or_else(|| match (shard, s.seed) {
            // Without --start-time (--backfill's start is each process's own), the
            // seed alone names the run, alike in every shard.
            (Some(sh), Some(seed)) if !start_time_given => {
                crate::run::shard::run_id(seed, sh.count)
            }
            _ => new_run_id(s.seed, s.start_time_ns),
        }),
        track_acks: a.report.is_some() && a.engine == Engine::Native,
        engine: a.engine,
        shard,
    };
    let gate = Gate {
        report: a.report.clone(),
        max_shortfall: a.max_shortfall,
        load,
    };
    Ok(CheckedRun {
        settings: s,
        spec,
        gate,
        until_interrupted,
    })
}

/// What `run` picks from: the scenarios its tags select, each once or weighted
/// (by the hour with `--workload-schedule`).
fn picks(s: &Settings, prep: &Prepared, a: &RunArgs) -> Result<Picks, Failure> {
    let candidates = prep.registry.filtered(&a.tags);
    let schedule = a.workload_schedule_name(&|k| std::env::var_os(k));
    if a.each_once && schedule.is_some() {
        return Err(Failure::input(
            "--each-once runs every scenario once, ignoring weights: a workload schedule (--workload-schedule, OTELSIM_WORKLOAD_SCHEDULE) has nothing to choose",
        ));
    }
    let names = candidates.iter().map(|c| c.name.clone()).collect();
    let skip_note = prep.registry.skip_note();
    if a.each_once {
        if candidates.is_empty() {
            let what = if a.tags.is_empty() {
                "no scenario to run".to_string()
            } else {
                format!("no scenario matches --tags {}", a.tags.join(","))
            };
            return Err(Failure::input(format!("{what}{skip_note}")));
        }
        return Ok(Picks::EachOnce(names));
    }
    let weights =
        Picker::new(&candidates).map_err(|e| Failure::input(format!("{e}{skip_note}")))?;
    // Without a count, the duration or the load shape bounds the run
    // (a constant --rate alone runs until Ctrl-C); with none, 100 picks.
    let bounded =
        a.duration.is_some() || a.rate.is_some() || a.stages.is_some() || a.load_profile.is_some();
    let schedule = match schedule {
        Some(name) => Some(Box::new(workload_mix(s, prep, &name, &candidates)?)),
        None => None,
    };
    Ok(Picks::Weighted {
        names,
        weights,
        count: a.count.or(if bounded { None } else { Some(100) }),
        schedule,
    })
}

/// The run's workload schedule; its warnings (names that match no scenario, buckets
/// `--tags` emptied) go to stderr now, unless -v prints them with the others already.
fn workload_mix(
    s: &Settings,
    prep: &Prepared,
    name: &str,
    candidates: &[&crate::model::scenario::ScenarioDef],
) -> Result<WorkloadMix, Failure> {
    let (mix, warnings) = WorkloadMix::new(name, &prep.registry, candidates)
        .map_err(|d| Failure::input(d.to_string()))?;
    if !s.quiet {
        let printed = |w: &crate::diag::Diagnostic| {
            s.verbose > 0 && prep.warnings.iter().any(|p| p.to_string() == w.to_string())
        };
        for w in warnings.iter().filter(|w| !printed(w)) {
            eprintln!("{w}");
        }
    }
    Ok(mix)
}

fn check_interval(ms: f64) -> Result<(), Failure> {
    if (0.0..=crate::model::scenario::MAX_INTERVAL_MS).contains(&ms) {
        Ok(())
    } else {
        Err(Failure::input(
            "--interval must be between 0 and 86400000 ms (one day)",
        ))
    }
}

/// The open-loop shape from --rate / --stages / --load-profile, with --burst and --unit.
fn load_shape(a: &RunArgs, world: &crate::plan::World) -> Result<Option<Load>, Failure> {
    let mut incidents = Vec::new();
    let (mut profile, file_unit) = if let Some(r) = a.rate {
        if !(r > 0.0 && r <= crate::pace::MAX_RATE) {
            return Err(Failure::input(format!(
                "--rate must be greater than 0 and at most {} per second",
                crate::pace::MAX_RATE
            )));
        }
        (Profile::constant(r), None)
    } else if let Some(st) = &a.stages {
        let profile =
            Profile::parse_stages(st).map_err(|e| Failure::input(format!("--stages {e}")))?;
        (profile, None)
    } else if let Some(path) = &a.load_profile {
        let p = crate::load_profile::load(path).map_err(|e| Failure::load(&e))?;
        incidents = p.incidents;
        (p.profile, p.unit)
    } else {
        if a.burst.is_some() {
            return Err(Failure::input(
                "--burst needs a shape to burst on: --rate, --stages or --load-profile",
            ));
        }
        if a.unit.is_some() {
            return Err(Failure::input(
                "--unit needs a shape: --rate, --stages or --load-profile",
            ));
        }
        return Ok(None);
    };
    if let Some(b) = &a.burst {
        let burst =
            crate::pace::parse_burst(b).map_err(|e| Failure::input(format!("--burst {e}")))?;
        profile.burst = Some(burst);
    }
    let offered = if profile.secs().is_finite() {
        profile.units_until(profile.secs())
    } else {
        profile.peak()
    };
    if profile.peak() <= 0.0 || offered <= 0.0 {
        return Err(Failure::input(
            "the load shape offers nothing: every stage's rate is 0 or lasts 0 s",
        ));
    }
    if profile.peak() > crate::pace::MAX_RATE {
        return Err(Failure::input(format!(
            "the load shape peaks at {:.0} per second (with its burst); at most {} per second",
            profile.peak(),
            crate::pace::MAX_RATE
        )));
    }
    let incidents = crate::incidents::Incidents::resolve(&incidents, world).map_err(|e| {
        let file = a
            .load_profile
            .as_deref()
            .unwrap_or(std::path::Path::new(""));
        Failure::input(format!("--load-profile {}: {e}", file.display()))
    })?;
    Ok(Some(Load {
        profile,
        unit: a.unit.or(file_unit).unwrap_or(RateUnit::Traces),
        incidents,
    }))
}

/// `--backfill W`: the run starts W ago and lasts at most W; without a shape the
/// picks spread evenly over the window. Gives the interval and the duration.
fn backfill(
    s: &mut Settings,
    a: &RunArgs,
    shaped: bool,
) -> Result<(f64, Option<Duration>), Failure> {
    let Some(window) = a.backfill else {
        return Ok((a.interval, a.duration));
    };
    if s.start_time_ns.is_some() {
        return Err(Failure::input(
            "--backfill and --start-time both set the start; give one",
        ));
    }
    if window.is_zero() || window > Duration::from_secs(366 * 86_400) {
        return Err(Failure::input(
            "--backfill must be longer than 0 and at most 366 days",
        ));
    }
    let mut interval_ms = a.interval;
    if !shaped {
        let Some(n) = a.count.filter(|n| *n > 0) else {
            return Err(Failure::input("--backfill needs a shape (--rate, --stages, --load-profile) or --count to spread over the window"));
        };
        interval_ms = window.as_secs_f64() * 1000.0 / n as f64;
    }
    s.start_time_ns = Some(now_ns().saturating_sub(window.as_nanos() as u64));
    let duration = Some(a.duration.map_or(window, |d| d.min(window)));
    Ok((interval_ms, duration))
}

/// The most workers a run starts; more would only contend for the same cores.
const MAX_WORKERS: usize = 1024;

/// How many workers: as asked (when the run can be split), else one per core (one
/// fewer when the receiver runs on this host), or one where a single writer is needed.
fn workers(
    asked: Option<usize>,
    sequential: bool,
    s: &Settings,
    start_time_given: bool,
) -> Result<usize, Failure> {
    match asked {
        Some(0) => Err(Failure::input("--workers must be at least 1")),
        Some(n) if sequential && n > 1 => Err(Failure::input(format!("--workers {n} needs a load shape (--rate, --stages, --load-profile) or --interval 0; picks with a gap between them, and printed span trees, are sequential"))),
        Some(n) if n > MAX_WORKERS => {
            if !s.quiet {
                eprintln!("otelsim: note: --workers {n} is capped at {MAX_WORKERS}");
            }
            Ok(MAX_WORKERS)
        }
        Some(n) => Ok(n),
        // One writer keeps file output and --start-time runs reproducible: which
        // worker takes a pick decides its timestamps.
        None if sequential || s.output_files().next().is_some() || start_time_given => Ok(1),
        None => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            // A receiver on this host needs a core of its own: on 2 shared cores, one
            // worker beside `otelsim sink` used 9-11 % less CPU per span than two, at
            // the same throughput (README, Benchmarks).
            let local = s.sends_otlp() && receivers_on_this_host(&s.export);
            Ok(if local { (cores - 1).max(1) } else { cores })
        }
    }
}

/// Whether every endpoint the OTLP output sends to is a loopback address
/// (`localhost`, 127.0.0.0/8, `::1`).
fn receivers_on_this_host(e: &crate::export::ExportConfig) -> bool {
    let loopback = |url: &str| {
        let host = url.parse::<http::Uri>().ok().and_then(|u| {
            u.host()
                .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
        });
        match host.as_deref() {
            Some("localhost") => true,
            Some(h) => h
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        }
    };
    let mut endpoints = e.signal_endpoints.iter().flatten();
    loopback(&e.endpoint) && endpoints.all(|u| loopback(u))
}

/// `--engine sdk` sends traces only, over OTLP/gRPC or OTLP/HTTP protobuf.
fn sdk_engine(s: &mut Settings) -> Result<(), Failure> {
    if s.metrics == Some(true) || s.logs == Some(true) {
        return Err(Failure::input(
            "--engine sdk sends traces only; drop --metrics / --logs",
        ));
    }
    let to_file = s.output_files().next().is_some();
    if to_file || s.export.protocol == Protocol::HttpJson {
        let flag = if to_file && s.output_file_flag.is_none() {
            "--output otlp-json"
        } else {
            "--output-file"
        };
        return Err(Failure::input(format!(
            "--engine sdk sends OTLP/gRPC or OTLP/HTTP protobuf; not {flag} or http/json"
        )));
    }
    s.metrics = Some(false);
    s.logs = Some(false);
    Ok(())
}

/// The outputs that write whole sessions: `agent-trace` without a folder gets
/// config `agent_trace.trace_dir`, `agent_trace.enabled` adds one; both need
/// back-dated picks (realtime timing hands spans over one by one as they end).
fn session_outputs(
    run: &mut CheckedRun,
    cfg: &crate::model::config::AgentTraceConfig,
) -> Result<(), Failure> {
    use crate::settings::{OutputKind, OutputSpec};
    let outputs = &mut run.settings.outputs;
    for o in outputs.iter_mut() {
        if o.kind == OutputKind::AgentTrace && o.path.is_none() {
            o.path = Some(PathBuf::from(&cfg.trace_dir));
        }
    }
    if cfg.enabled && !outputs.iter().any(|o| o.kind == OutputKind::AgentTrace) {
        outputs.push(OutputSpec {
            kind: OutputKind::AgentTrace,
            path: Some(PathBuf::from(&cfg.trace_dir)),
        });
    }
    let events = outputs.iter().any(|o| o.kind == OutputKind::EventsJsonl);
    if let (Some(labels), false) = (&run.settings.labels, events) {
        return Err(Failure::input(format!(
            "--labels {} writes the ground truth of --output events-jsonl:PATH; add that output",
            labels.display()
        )));
    }
    let whole = |k| matches!(k, OutputKind::AgentTrace | OutputKind::EventsJsonl);
    if let Some(o) = outputs.iter().find(|o| whole(o.kind)) {
        if run.spec.timing == Timing::Realtime {
            return Err(Failure::input(format!(
                "--output {o} writes whole sessions and needs back-dated picks; drop --realtime (or use --backfill / --start-time)"
            )));
        }
    }
    Ok(())
}

/// An output file (or folder) that cannot be written is a usage problem, not an export failure.
fn check_output_files(s: &Settings) -> Result<(), Failure> {
    if let Some(p) = &s.labels {
        if let Err(e) = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
        {
            return Err(Failure::input(format!(
                "cannot write --labels {}: {e}",
                p.display()
            )));
        }
    }
    for o in &s.outputs {
        let Some(p) = &o.path else { continue };
        match o.kind {
            OutputKind::AgentTrace => {
                check_dir(p).map_err(|e| {
                    Failure::input(format!(
                        "cannot write {} (a folder, created if missing): {e}",
                        s.output_flag(o)
                    ))
                })?;
                continue;
            }
            OutputKind::SessionJson => {
                check_dir(p).map_err(|e| {
                    Failure::input(format!("cannot write {}: {e}", s.output_flag(o)))
                })?;
                continue;
            }
            OutputKind::Duckdb => {
                crate::export::duckdb::check_target(p).map_err(Failure::input)?;
                continue;
            }
            OutputKind::Otlp
            | OutputKind::OtlpJson
            | OutputKind::SpansJsonl
            | OutputKind::EventsJsonl => {}
        }
        if let Err(e) = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
        {
            return Err(Failure::input(format!(
                "cannot write {}: {e}",
                s.output_flag(o)
            )));
        }
    }
    Ok(())
}

/// Creates the folder if missing and proves a file can be made in it.
fn check_dir(p: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(p)?;
    let probe = p.join(format!(".otelsim-probe-{}", std::process::id()));
    std::fs::File::create(&probe)?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::receivers_on_this_host;
    use crate::export::ExportConfig;

    fn config(endpoint: &str, signals: [Option<&str>; 3]) -> ExportConfig {
        ExportConfig {
            endpoint: endpoint.to_string(),
            signal_endpoints: signals.map(|s| s.map(str::to_string)),
            ..ExportConfig::default()
        }
    }

    #[test]
    fn a_receiver_is_on_this_host_only_when_every_endpoint_is_loopback() {
        for local in [
            "http://localhost:4317",
            "http://LOCALHOST:4318/v1/traces",
            "http://127.0.0.1:4317",
            "https://127.8.9.10",
            "http://[::1]:4318",
        ] {
            assert!(receivers_on_this_host(&config(local, [None; 3])), "{local}");
        }
        for remote in [
            "http://collector:4317",
            "http://10.0.0.7:4318",
            "https://[2001:db8::1]:4317",
            "http://localhost.example.com:4317",
            "not a url",
        ] {
            assert!(
                !receivers_on_this_host(&config(remote, [None; 3])),
                "{remote}"
            );
        }
        let mixed = config(
            "http://localhost:4318",
            [
                None,
                Some("http://metrics.example.com:4318/v1/metrics"),
                None,
            ],
        );
        assert!(!receivers_on_this_host(&mixed));
    }
}
