//! Command dispatch and exit codes.

use crate::cli::{
    BenchArgs, Cli, Command, GlobalArgs, ListArgs, RunArgs, ScenarioArgs, SinkArgs, ValidateArgs,
};
use crate::diag::{LoadError, Severity};
use crate::plan::WorldOptions;
use crate::registry::{Picker, Registry};
use crate::runner::{self, Picks, RunSpec};
use crate::settings::Settings;
use crate::show;

/// Process exit codes (documented in `--help` and the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const RUNTIME: i32 = 1;
    pub const INPUT: i32 = 2;
    pub const EXPORT: i32 = 3;
    pub const SHORTFALL: i32 = 4;
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
        Command::Sink(_) => unreachable!("handled above"),
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
}

async fn execute(s: &Settings, prep: &runner::Prepared, spec: RunSpec, gate: Gate) -> i32 {
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
    let report = match runner::execute(prep, s, spec).await {
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
        let doc = serde_json::json!({
            "report": report,
            "settings": {
                "endpoint": s.export.endpoint,
                "protocol": s.export.protocol,
                "output_file": s.export.output_file,
                "vendor": s.vendor,
                "seed": report.seed,
                "rate": spec_rate(&report),
                "temporality": s.temporality,
                "metrics_interval_s": s.metrics_interval.as_secs_f64(),
                "max_shortfall": gate.max_shortfall,
            },
        });
        if let Err(e) = std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap_or_default())
        {
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

fn spec_rate(r: &runner::RunReport) -> Option<f64> {
    r.pacing.as_ref().map(|p| p.target_traces_per_s)
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
        rate: None,
        duration: None,
        show: show::Mode::from_flags(a.show.show_spans, a.show.show_full_spans),
    };
    execute(s, &prep, spec, Gate::default()).await
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
                // Without a count, --duration bounds the run; with neither, 100 picks.
                count: a.count.or(if a.duration.is_some() {
                    None
                } else {
                    Some(100)
                }),
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
    if a.rate.is_some_and(|r| !(r > 0.0 && r <= 10_000_000.0)) {
        eprintln!("otelsim: --rate must be between 0 and 10000000 traces per second");
        return exit::INPUT;
    }
    if a.duration.is_some_and(|d| d.is_zero()) {
        eprintln!("otelsim: --duration must be longer than 0");
        return exit::INPUT;
    }
    let spec = RunSpec {
        picks,
        interval_ms: Some(a.interval),
        rate: a.rate,
        duration: a.duration,
        show: show::Mode::from_flags(a.show.show_spans, a.show.show_full_spans),
    };
    let gate = Gate {
        report: a.report.clone(),
        max_shortfall: a.max_shortfall,
    };
    execute(s, &prep, spec, gate).await
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
