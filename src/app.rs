//! Command dispatch and exit codes.

use crate::cli::{
    BenchArgs, Cli, Command, GlobalArgs, ListArgs, RunArgs, ScenarioArgs, SinkArgs, ValidateArgs,
    VerifyArgs,
};
use crate::diag::{LoadError, Severity};
use crate::pace::{Profile, RateUnit};
use crate::plan::WorldOptions;
use crate::registry::{Picker, Registry};
use crate::runner::{self, Picks, RunSpec, Timing};
use crate::settings::Settings;
use crate::show;
use std::sync::Arc;
use std::time::Duration;

/// Process exit codes (documented in `--help` and the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const RUNTIME: i32 = 1;
    pub const INPUT: i32 = 2;
    pub const EXPORT: i32 = 3;
    pub const SHORTFALL: i32 = 4;
    pub const NOT_VERIFIED: i32 = 5;
    pub const INTERRUPTED: i32 = 130;
}

fn print_load_error(e: &LoadError) {
    eprint!("otelsim: {e}");
    let warnings = e
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    if warnings > 0 {
        eprintln!("  (and {warnings} warning(s); `otelsim validate` lists them)");
    }
}

fn world_options(s: &Settings) -> WorldOptions {
    WorldOptions {
        vendor: s.vendor.clone(),
        service_name: s.service_name.clone(),
        extra_resource: s.resource_attrs.clone(),
        tenant_id: s.tenant_id.clone(),
    }
}

/// Global flags that would do nothing with this subcommand; naming them beats ignoring them.
fn unused_flags(cmd: &Command, g: &GlobalArgs) -> Vec<&'static str> {
    let d = GlobalArgs::default();
    let export = [
        ("--endpoint", g.endpoint.is_some()),
        ("--protocol", g.protocol.is_some()),
        ("--header", !g.headers.is_empty()),
        ("--gzip", g.gzip),
        ("--output-file", g.output_file.is_some()),
        ("--retry-budget", g.retry_budget.is_some()),
        ("--wait-for-endpoint", g.wait_for_endpoint.is_some()),
        ("--tls-ca", g.tls_ca.is_some()),
        ("--insecure", g.insecure),
        ("--metrics", g.metrics),
        ("--no-metrics", g.no_metrics),
        ("--logs", g.logs),
        ("--no-logs", g.no_logs),
        ("--temporality", g.temporality != d.temporality),
        (
            "--metrics-interval",
            g.metrics_interval != d.metrics_interval,
        ),
    ];
    let generation = [
        ("--seed", g.seed.is_some()),
        ("--start-time", g.start_time.is_some()),
        ("--service-name", g.service_name.is_some()),
        ("--tenant-id", g.tenant_id.is_some()),
    ];
    // The sink's own certificate when listening, the client's when exporting.
    let identity = [
        ("--tls-cert", g.tls_cert.is_some()),
        ("--tls-key", g.tls_key.is_some()),
    ];
    let pick = |flags: &[(&'static str, bool)]| {
        flags
            .iter()
            .filter(|(_, set)| *set)
            .map(|(f, _)| *f)
            .collect::<Vec<_>>()
    };
    match cmd {
        Command::Sink(_) => [pick(&export), pick(&generation)].concat(),
        Command::List(_) | Command::Validate(_) => {
            [pick(&export), pick(&identity), pick(&generation[..2])].concat()
        }
        Command::Bench(_) => [pick(&export), pick(&identity)].concat(),
        Command::Verify(_) => [pick(&export), pick(&identity), pick(&generation)].concat(),
        Command::Run(_) | Command::Scenario(_) => Vec::new(),
    }
}

pub async fn run(cli: Cli) -> i32 {
    let unused = unused_flags(&cli.command, &cli.global);
    if !unused.is_empty() {
        let what = match &cli.command {
            Command::Sink(_) => "`otelsim sink` (it listens: use --grpc-addr / --http-addr, and --tls-client-ca to verify clients)",
            Command::List(_) => "`otelsim list`",
            Command::Validate(_) => "`otelsim validate`",
            Command::Verify(_) => "`otelsim verify` (it reads reports)",
            _ => "`otelsim bench` (it sends nothing)",
        };
        let verb = if unused.len() == 1 { "does" } else { "do" };
        eprintln!("otelsim: {} {verb} nothing with {what}", unused.join(", "));
        return exit::INPUT;
    }
    if let Command::Sink(args) = &cli.command {
        return sink(args, &cli.global).await;
    }
    let settings = match Settings::resolve(&cli.global, &|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("otelsim: {e:#}");
            return exit::INPUT;
        }
    };
    match &cli.command {
        Command::List(a) => list(&settings, a),
        Command::Validate(a) => validate(&settings, a),
        Command::Scenario(a) => scenario(&settings, a).await,
        Command::Run(a) => run_mixed(&settings, a).await,
        Command::Bench(a) => bench(&settings, a),
        Command::Verify(a) => verify(settings, &cli.global, a),
        Command::Sink(_) => unreachable!("handled above"),
    }
}

/// `otelsim verify`: the conventions come from the run's own settings (as its
/// report records them) unless flags say otherwise.
fn verify(mut s: Settings, g: &GlobalArgs, a: &VerifyArgs) -> i32 {
    let fail = |e: anyhow::Error| {
        eprintln!("otelsim verify: {e:#}");
        exit::INPUT
    };
    let run = match crate::verify::read_run(&a.run_report) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let recorded = &run.settings;
    if g.config.is_none() {
        s.sources.config = recorded.config.clone().or(s.sources.config);
    }
    if g.semconv.is_none() {
        s.sources.semconv = recorded.semconv.clone().or(s.sources.semconv);
    }
    if g.scenarios_dir.is_none() {
        s.sources.scenarios_dir = recorded.scenarios_dir.clone().or(s.sources.scenarios_dir);
    }
    if g.vendor.is_none() {
        if let Some(v) = &recorded.vendor {
            s.vendor = v.clone();
        }
    }
    let prep = match prepare(&s) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let verdict = match crate::verify::verify(&run, &a.sink_report, &prep.world, a.allow_partial) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    print!("{}", verdict.render());
    if let Some(out) = &a.output {
        let json = serde_json::to_string_pretty(&verdict).unwrap_or_default();
        if let Err(e) = std::fs::write(out, json + "\n") {
            eprintln!("otelsim verify: cannot write {}: {e}", out.display());
            return exit::RUNTIME;
        }
    }
    if verdict.ok {
        exit::OK
    } else {
        exit::NOT_VERIFIED
    }
}

fn list(s: &Settings, a: &ListArgs) -> i32 {
    let reg = match Registry::load(&s.sources) {
        Ok(r) => r,
        Err(e) => {
            print_load_error(&e);
            return exit::INPUT;
        }
    };
    let rows = reg.filtered(&a.tags);
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let tw = rows
        .iter()
        .map(|r| r.tags.join(",").len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<w$}  {:>6}  {:<tw$}  description",
        "name", "weight", "tags"
    );
    for r in &rows {
        let mut desc: String = r
            .description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if desc.chars().count() > 70 {
            desc = desc.chars().take(69).collect::<String>() + "…";
        }
        println!(
            "{:<w$}  {:>6}  {:<tw$}  {desc}",
            r.name,
            format_weight(r.workload_weight),
            r.tags.join(",")
        );
    }
    if !s.quiet {
        eprintln!("{} scenario(s)", rows.len());
    }
    exit::OK
}

fn format_weight(w: f64) -> String {
    let s = format!("{w:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn validate(s: &Settings, a: &ValidateArgs) -> i32 {
    match runner::prepare(&s.sources, &world_options(s)) {
        Ok(p) => {
            for w in &p.warnings {
                println!("{w}");
            }
            if a.show_schema {
                println!("span names ({}):", p.registry.semconv.spans.len());
                for sp in &p.registry.semconv.spans {
                    println!(
                        "  {} [{}]",
                        p.world.prefix.rewrite(&sp.name),
                        sp.kind.map_or("-", |k| k.as_str())
                    );
                }
                let mut enums: Vec<_> = p.world.enums.iter().collect();
                enums.sort_by(|a, b| a.0.cmp(b.0));
                println!("enum attributes ({}):", enums.len());
                for (k, v) in enums {
                    let vals: Vec<String> = v.iter().map(ToString::to_string).collect();
                    println!("  {k}: {}", vals.join(", "));
                }
            }
            println!(
                "ok: config {}, semconv {}, {} scenario(s), {} warning(s)",
                p.registry.config.source,
                p.registry.semconv.source,
                p.plans.len(),
                p.warnings.len()
            );
            exit::OK
        }
        Err(e) => {
            for d in &e.diagnostics {
                println!("{d}");
            }
            let n = e.errors().count();
            println!("{n} error(s)");
            exit::INPUT
        }
    }
}

/// Where the run report goes and what shortfall fails the run (`run` only).
#[derive(Default)]
struct Gate {
    report: Option<std::path::PathBuf>,
    max_shortfall: Option<f64>,
    /// The load shape, as the report's settings show it.
    load: Option<runner::Load>,
}

async fn execute(s: &Settings, prep: runner::Prepared, spec: RunSpec, gate: Gate) -> i32 {
    // An output file that cannot be written is a usage problem, not an export failure.
    if let Some(p) = &s.export.output_file {
        if let Err(e) = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
        {
            eprintln!("otelsim: cannot write --output-file {}: {e}", p.display());
            return exit::INPUT;
        }
    }
    if s.verbose > 0 {
        for w in &prep.warnings {
            eprintln!("{w}");
        }
    }
    let report = match runner::execute(Arc::new(prep), Arc::new(s.clone()), spec).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("otelsim: {e:#}");
            return exit::EXPORT;
        }
    };
    if !s.quiet {
        print!("{}", report.render());
    }
    if let Some(path) = &gate.report {
        let settings = serde_json::json!({
                "endpoint": s.export.endpoint,
                "protocol": s.export.protocol,
                "output_file": s.export.output_file,
                "vendor": s.vendor,
                // Absolute, so `verify` finds the same conventions from anywhere.
                "config": absolute(&s.sources.config),
                "semconv": absolute(&s.sources.semconv),
                "scenarios_dir": absolute(&s.sources.scenarios_dir),
                "seed": report.seed,
                "run_id": report.run_id,
                "workers": report.workers,
                "timing": report.timing,
                "load": gate.load,
                "temporality": s.temporality,
                "metrics_interval_s": s.metrics_interval.as_secs_f64(),
                "max_shortfall": gate.max_shortfall,
        });
        if let Err(e) = write_report(path, &report, &settings) {
            eprintln!("otelsim: cannot write the report {}: {e}", path.display());
        }
    }
    let short = report.shortfall();
    if report.interrupted {
        exit::INTERRUPTED
    } else if report.fatal.is_some() || report.export.failed() > 0 {
        if s.quiet {
            eprintln!(
                "otelsim: {} item(s) failed to export",
                report.export.failed()
            );
        }
        exit::EXPORT
    } else if gate.max_shortfall.is_some_and(|m| short > m) {
        eprintln!(
            "otelsim: shortfall {:.2}% exceeds --max-shortfall {:.2}%",
            short * 100.0,
            gate.max_shortfall.unwrap_or_default() * 100.0
        );
        exit::SHORTFALL
    } else {
        exit::OK
    }
}

/// Streams the report (its trace list can be large) to `path`.
fn write_report(
    path: &std::path::Path,
    report: &runner::RunReport,
    settings: &serde_json::Value,
) -> std::io::Result<()> {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        report: &'a runner::RunReport,
        settings: &'a serde_json::Value,
    }
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(&mut w, &Doc { report, settings })?;
    std::io::Write::flush(&mut w)
}

fn absolute(p: &Option<std::path::PathBuf>) -> Option<std::path::PathBuf> {
    p.as_ref()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
}

fn prepare(s: &Settings) -> Result<runner::Prepared, i32> {
    runner::prepare(&s.sources, &world_options(s)).map_err(|e| {
        print_load_error(&e);
        exit::INPUT
    })
}

async fn scenario(s: &Settings, a: &ScenarioArgs) -> i32 {
    let prep = match prepare(s) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let Some(plan) = prep.plans.get(&a.name) else {
        eprintln!("otelsim: {}", prep.registry.unknown_scenario(&a.name));
        return exit::INPUT;
    };
    let count = a.count.unwrap_or(u64::from(plan.repeat_count));
    if let Some(ms) = a.interval {
        if !(0.0..=crate::model::scenario::MAX_INTERVAL_MS).contains(&ms) {
            eprintln!("otelsim: --interval must be between 0 and 86400000 ms (one day)");
            return exit::INPUT;
        }
    }
    let spec = RunSpec {
        picks: Picks::Repeat {
            name: a.name.clone(),
            count,
        },
        interval_ms: a.interval,
        load: None,
        duration: None,
        show: show::Mode::from_flags(a.show.show_spans, a.show.show_full_spans),
        workers: 1,
        timing: Timing::BackDated,
        run_id: runner::new_run_id(s.seed, s.start_time_ns),
        track_acks: false,
        engine: runner::Engine::Native,
    };
    execute(s, prep, spec, Gate::default()).await
}

async fn run_mixed(s: &Settings, a: &RunArgs) -> i32 {
    let prep = match prepare(s) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let candidates = prep.registry.filtered(&a.tags);
    let picks = if a.each_once {
        if candidates.is_empty() {
            eprintln!("otelsim: no scenario matches --tags {}", a.tags.join(","));
            return exit::INPUT;
        }
        Picks::EachOnce(candidates.iter().map(|c| c.name.clone()).collect())
    } else {
        match Picker::new(&candidates) {
            Ok(p) => Picks::Weighted {
                names: candidates.iter().map(|c| c.name.clone()).collect(),
                weights: p,
                // Without a count, the duration or the load shape bounds the run
                // (a constant --rate alone runs until Ctrl-C); with none, 100 picks.
                count: a.count.or(
                    if a.duration.is_some()
                        || a.rate.is_some()
                        || a.stages.is_some()
                        || a.load_profile.is_some()
                    {
                        None
                    } else {
                        Some(100)
                    },
                ),
            },
            Err(msg) => {
                eprintln!("otelsim: {msg}");
                return exit::INPUT;
            }
        }
    };
    if !(0.0..=crate::model::scenario::MAX_INTERVAL_MS).contains(&a.interval) {
        eprintln!("otelsim: --interval must be between 0 and 86400000 ms (one day)");
        return exit::INPUT;
    }
    if a.duration.is_some_and(|d| d.is_zero()) {
        eprintln!("otelsim: --duration must be longer than 0");
        return exit::INPUT;
    }
    let mut interval_ms = a.interval;
    let load = match load_shape(a) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let start_time_given = s.start_time_ns.is_some();
    if start_time_given && load.is_none() && a.interval == 0.0 && a.count.is_none() && !a.each_once
    {
        eprintln!("otelsim: --start-time with --interval 0 and no --count never advances the clock: give --count, a positive --interval, or a shape (--rate, --stages)");
        return exit::INPUT;
    }
    let mut s = s.clone();
    let mut duration = a.duration;
    if let Some(window) = a.backfill {
        if s.start_time_ns.is_some() {
            eprintln!("otelsim: --backfill and --start-time both set the start; give one");
            return exit::INPUT;
        }
        if window.is_zero() || window > Duration::from_secs(366 * 86_400) {
            eprintln!("otelsim: --backfill must be longer than 0 and at most 366 days");
            return exit::INPUT;
        }
        // Without a shape, spread the picks evenly over the window.
        if load.is_none() {
            let Some(n) = a.count.filter(|n| *n > 0) else {
                eprintln!("otelsim: --backfill needs a shape (--rate, --stages, --load-profile) or --count to spread over the window");
                return exit::INPUT;
            };
            interval_ms = window.as_secs_f64() * 1000.0 / n as f64;
        }
        s.start_time_ns = Some(runner::now_ns().saturating_sub(window.as_nanos() as u64));
        duration = Some(duration.map_or(window, |d| d.min(window)));
    }
    let show = show::Mode::from_flags(a.show.show_spans, a.show.show_full_spans);
    // A positive gap between picks is sequential by definition; span trees must not interleave.
    let sequential = show != show::Mode::Off || (load.is_none() && interval_ms > 0.0);
    let workers = match a.workers {
        Some(0) => {
            eprintln!("otelsim: --workers must be at least 1");
            return exit::INPUT;
        }
        Some(n) if sequential && n > 1 => {
            eprintln!("otelsim: --workers {n} needs a load shape (--rate, --stages, --load-profile) or --interval 0; picks with a gap between them, and printed span trees, are sequential");
            return exit::INPUT;
        }
        Some(n) => n.min(1024),
        // One writer keeps file output and --start-time runs reproducible: which
        // worker takes a pick decides its timestamps.
        None if sequential || s.export.output_file.is_some() || start_time_given => 1,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if a.engine == runner::Engine::Sdk {
        if s.metrics == Some(true) || s.logs == Some(true) {
            eprintln!("otelsim: --engine sdk sends traces only; drop --metrics / --logs");
            return exit::INPUT;
        }
        if s.export.output_file.is_some() || s.export.protocol == crate::export::Protocol::HttpJson
        {
            eprintln!("otelsim: --engine sdk sends OTLP/gRPC or OTLP/HTTP protobuf; not --output-file or http/json");
            return exit::INPUT;
        }
        s.metrics = Some(false);
        s.logs = Some(false);
    }
    if a.realtime && s.start_time_ns.is_some() {
        eprintln!(
            "otelsim: --realtime runs on the wall clock; it cannot be combined with --start-time"
        );
        return exit::INPUT;
    }
    if !s.quiet
        && load.is_some()
        && duration.is_none()
        && a.count.is_none()
        && a.stages.is_none()
        && a.load_profile.is_none()
        && !a.each_once
    {
        eprintln!("otelsim: no --count or --duration: running until Ctrl-C");
    }
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
        run_id: a
            .run_id
            .clone()
            .unwrap_or_else(|| runner::new_run_id(s.seed, s.start_time_ns)),
        track_acks: a.report.is_some() && a.engine == runner::Engine::Native,
        engine: a.engine,
    };
    let gate = Gate {
        report: a.report.clone(),
        max_shortfall: a.max_shortfall,
        load,
    };
    execute(&s, prep, spec, gate).await
}

/// The open-loop shape from --rate / --stages / --load-profile, with --burst and --unit.
fn load_shape(a: &RunArgs) -> Result<Option<runner::Load>, i32> {
    let bad = |msg: String| {
        eprintln!("otelsim: {msg}");
        exit::INPUT
    };
    let (mut profile, file_unit) = if let Some(r) = a.rate {
        if !(r > 0.0 && r <= crate::pace::MAX_RATE) {
            return Err(bad(format!(
                "--rate must be greater than 0 and at most {} per second",
                crate::pace::MAX_RATE
            )));
        }
        (Profile::constant(r), None)
    } else if let Some(st) = &a.stages {
        (
            Profile::parse_stages(st).map_err(|e| bad(format!("--stages {e}")))?,
            None,
        )
    } else if let Some(path) = &a.load_profile {
        match crate::load_profile::load(path) {
            Ok(p) => (p.profile, p.unit),
            Err(e) => {
                print_load_error(&e);
                return Err(exit::INPUT);
            }
        }
    } else {
        if a.burst.is_some() {
            return Err(bad(
                "--burst needs a shape to burst on: --rate, --stages or --load-profile".into(),
            ));
        }
        if a.unit.is_some() {
            return Err(bad(
                "--unit needs a shape: --rate, --stages or --load-profile".into(),
            ));
        }
        return Ok(None);
    };
    if let Some(b) = &a.burst {
        profile.burst = Some(crate::pace::parse_burst(b).map_err(|e| bad(format!("--burst {e}")))?);
    }
    let offered = if profile.secs().is_finite() {
        profile.units_until(profile.secs())
    } else {
        profile.peak()
    };
    if profile.peak() <= 0.0 || offered <= 0.0 {
        return Err(bad(
            "the load shape offers nothing: every stage's rate is 0 or lasts 0 s".into(),
        ));
    }
    if profile.peak() > crate::pace::MAX_RATE {
        return Err(bad(format!(
            "the load shape peaks at {:.0} per second (with its burst); at most {} per second",
            profile.peak(),
            crate::pace::MAX_RATE
        )));
    }
    Ok(Some(runner::Load {
        profile,
        unit: a.unit.or(file_unit).unwrap_or(RateUnit::Traces),
    }))
}

fn bench(s: &Settings, a: &BenchArgs) -> i32 {
    let prep = match prepare(s) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match crate::bench::run(&prep, s, a.spans, !a.no_encode) {
        Ok(r) => {
            print!("{}", r.render());
            if let Some(path) = &a.report {
                let json = serde_json::to_string_pretty(&r).unwrap_or_default();
                if let Err(e) = std::fs::write(path, json) {
                    eprintln!("otelsim: cannot write {}: {e}", path.display());
                    return exit::RUNTIME;
                }
            }
            exit::OK
        }
        Err(msg) => {
            eprintln!("otelsim: {msg}");
            exit::INPUT
        }
    }
}

async fn sink(a: &SinkArgs, g: &GlobalArgs) -> i32 {
    let tls = match crate::tls::ServerTls::from_flags(
        g.tls_cert.as_deref(),
        g.tls_key.as_deref(),
        a.tls_client_ca.as_deref(),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("otelsim sink: {e:#}");
            return exit::INPUT;
        }
    };
    let opts = crate::sink::SinkOptions {
        grpc_addr: a.grpc_addr,
        http_addr: a.http_addr,
        max_request_bytes: a.max_request_bytes,
        keep_requests: false,
        max_tracked_spans: a.max_tracked_spans,
        faults: crate::sink::Faults {
            reject_first: a.reject_first,
            reject_with: a.reject_with,
            retry_after: a.retry_after,
            partial_first: a.partial_first,
        },
        tls,
    };
    match crate::sink::run_until_signal(opts, a.summary_file.clone(), a.duration).await {
        Ok(_) => exit::OK,
        Err(e) => {
            eprintln!("otelsim sink: {e:#}");
            exit::RUNTIME
        }
    }
}
