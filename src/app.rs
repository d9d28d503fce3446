//! Command dispatch and exit codes: each command returns `Result<(), Failure>`,
//! and `run` is the one place that prints a failure and turns it into the exit code.

mod run_spec;

use crate::cli::{
    BenchArgs, Cli, Command, GlobalArgs, ListArgs, SinkArgs, ValidateArgs, VerifyArgs,
};
use crate::diag::{LoadError, Severity};
use crate::plan::WorldOptions;
use crate::registry::Registry;
use crate::run::{Prepared, RunReport};
use crate::settings::Settings;
use run_spec::{CheckedRun, Gate, RunFlags};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Process exit codes (documented in `--help` and the README).
pub mod exit {
    /// Everything was delivered (`verify`: the run verified).
    pub const OK: i32 = 0;
    /// Something failed while running: a file that could not be written, the sink, the async
    /// runtime.
    pub const RUNTIME: i32 = 1;
    /// Invalid input or usage: flags, config, semconv or scenario files.
    pub const INPUT: i32 = 2;
    /// Telemetry that could not be delivered (unreachable endpoint, failed items, SDK-engine
    /// drops).
    pub const EXPORT: i32 = 3;
    /// The run fell short of its target by more than `--max-shortfall`.
    pub const SHORTFALL: i32 = 4;
    /// `verify` found differences between the run report and the sink's summary.
    pub const NOT_VERIFIED: i32 = 5;
    /// Interrupted by Ctrl-C or SIGTERM (128 + SIGINT, what shells show for an interrupted
    /// command).
    pub const INTERRUPTED: i32 = 130;
}

/// Why a command did not succeed: its exit code and what to say on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The process exit code (one of [`exit`]).
    pub code: i32,
    /// Printed as `otelsim: <message>`; `None` when the command has said it
    /// already (validate's diagnostics, verify's verdict, the run summary).
    pub message: Option<String>,
    /// The subcommand named in the prefix (`otelsim sink: …`), for those that do.
    pub command: Option<&'static str>,
}

impl Failure {
    fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: Some(message.into()),
            command: None,
        }
    }

    /// Invalid input or usage (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(exit::INPUT, message)
    }

    /// Something failed while running (exit 1).
    pub fn runtime(message: impl Into<String>) -> Self {
        Self::new(exit::RUNTIME, message)
    }

    /// Telemetry that could not be delivered (exit 3).
    pub fn export(message: impl Into<String>) -> Self {
        Self::new(exit::EXPORT, message)
    }

    /// The run fell short of its target by more than allowed (exit 4).
    pub fn shortfall(message: impl Into<String>) -> Self {
        Self::new(exit::SHORTFALL, message)
    }

    /// An outcome the command has reported on stdout already, or that needs no
    /// words (Ctrl-C): only the exit code.
    pub fn reported(code: i32) -> Self {
        Failure {
            code,
            message: None,
            command: None,
        }
    }

    /// Files that did not load: every error, and how many warnings `validate` adds.
    pub fn load(e: &LoadError) -> Self {
        let mut message = e.to_string();
        if message.ends_with('\n') {
            message.pop();
        }
        let warnings = e
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count();
        if warnings > 0 {
            message.push_str(&format!(
                "\n  (and {warnings} warning(s); `otelsim validate` lists them)"
            ));
        }
        Self::input(message)
    }

    /// Names the subcommand in the prefix: `otelsim sink: …`.
    pub fn in_command(mut self, command: &'static str) -> Self {
        self.command = Some(command);
        self
    }

    /// Prints the message, if any, and gives the exit code.
    fn report(&self) -> i32 {
        if self.message.is_some() {
            eprintln!("{self}");
        }
        self.code
    }
}

/// `otelsim: <message>`, or `otelsim <command>: <message>`.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("otelsim")?;
        if let Some(c) = self.command {
            write!(f, " {c}")?;
        }
        write!(f, ": {}", self.message.as_deref().unwrap_or(""))
    }
}

/// Runs the command and gives the process exit code.
pub async fn run(cli: Cli) -> i32 {
    match dispatch(&cli).await {
        Ok(()) => exit::OK,
        Err(failure) => failure.report(),
    }
}

async fn dispatch(cli: &Cli) -> Result<(), Failure> {
    let g = cli.global_flags();
    refuse_unused_flags(&cli.command, &g)?;
    if let Command::Sink(args) = &cli.command {
        return sink(args, &g).await;
    }
    let settings = Settings::resolve(&g, &|k| std::env::var(k).ok())
        .map_err(|e| Failure::input(format!("{e:#}")))?;
    match &cli.command {
        Command::List(a) => list(&settings, a),
        Command::Validate(a) => validate(&settings, a),
        Command::Scenario(a) => run_command(&settings, RunFlags::Scenario(a)).await,
        Command::Run(a) => run_command(&settings, RunFlags::Mixed(a)).await,
        Command::Bench(a) => bench(&settings, a),
        Command::Verify(a) => verify(settings, &g, a),
        Command::Sink(_) => unreachable!("handled above"),
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
        ("--output", !g.outputs.is_empty()),
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

fn refuse_unused_flags(cmd: &Command, g: &GlobalArgs) -> Result<(), Failure> {
    let unused = unused_flags(cmd, g);
    if unused.is_empty() {
        return Ok(());
    }
    let what = match cmd {
        Command::Sink(_) => "`otelsim sink` (it listens: use --grpc-addr / --http-addr, and --tls-client-ca to verify clients)",
        Command::List(_) => "`otelsim list`",
        Command::Validate(_) => "`otelsim validate`",
        Command::Verify(_) => "`otelsim verify` (it reads reports)",
        _ => "`otelsim bench` (it sends nothing)",
    };
    let verb = if unused.len() == 1 { "does" } else { "do" };
    Err(Failure::input(format!(
        "{} {verb} nothing with {what}",
        unused.join(", ")
    )))
}

/// `otelsim verify`: the conventions come from the run's own settings (as its
/// report records them) unless flags say otherwise.
fn verify(mut s: Settings, g: &GlobalArgs, a: &VerifyArgs) -> Result<(), Failure> {
    let fail = |e: anyhow::Error| Failure::input(format!("{e:#}")).in_command("verify");
    let run = crate::verify::read_run(&a.run_report).map_err(fail)?;
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
    let prep = prepare(&s)?;
    let verdict =
        crate::verify::verify(&run, &a.sink_report, &prep.world, a.allow_partial).map_err(fail)?;
    print!("{}", verdict.render());
    if let Some(out) = &a.output {
        let json = serde_json::to_string_pretty(&verdict).unwrap_or_default();
        std::fs::write(out, json + "\n").map_err(|e| {
            Failure::runtime(format!("cannot write {}: {e}", out.display())).in_command("verify")
        })?;
    }
    if verdict.ok {
        Ok(())
    } else {
        Err(Failure::reported(exit::NOT_VERIFIED))
    }
}

fn list(s: &Settings, a: &ListArgs) -> Result<(), Failure> {
    let reg = Registry::load(&s.sources).map_err(|e| Failure::load(&e))?;
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
    Ok(())
}

fn format_weight(w: f64) -> String {
    let s = format!("{w:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn validate(s: &Settings, a: &ValidateArgs) -> Result<(), Failure> {
    match crate::run::prepare(&s.sources, &world_options(s)) {
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
            Ok(())
        }
        Err(e) => {
            for d in &e.diagnostics {
                println!("{d}");
            }
            let n = e.errors().count();
            println!("{n} error(s)");
            Err(Failure::reported(exit::INPUT))
        }
    }
}

fn prepare(s: &Settings) -> Result<Prepared, Failure> {
    crate::run::prepare(&s.sources, &world_options(s)).map_err(|e| Failure::load(&e))
}

/// `run` and `scenario`: load, check the flags, run, judge the outcome.
async fn run_command(s: &Settings, flags: RunFlags<'_>) -> Result<(), Failure> {
    let prep = prepare(s)?;
    let checked = run_spec::run_spec(s, &prep, flags)?;
    execute(prep, checked).await
}

async fn execute(prep: Prepared, run: CheckedRun) -> Result<(), Failure> {
    let CheckedRun {
        settings: s,
        spec,
        gate,
        until_interrupted,
    } = run;
    if until_interrupted && !s.quiet {
        eprintln!("otelsim: no --count or --duration: running until Ctrl-C");
    }
    if s.verbose > 0 {
        for w in &prep.warnings {
            eprintln!("{w}");
        }
    }
    let s = Arc::new(s);
    let report = crate::run::execute(Arc::new(prep), s.clone(), spec)
        .await
        .map_err(|e| Failure::export(format!("{e:#}")))?;
    if !s.quiet {
        print!("{}", report.render());
    }
    if let Some(path) = &gate.report {
        // The run happened: a report that cannot be written does not change its outcome.
        if let Err(e) = write_report(path, &report, &report_settings(&s, &report, &gate)) {
            eprintln!("otelsim: cannot write the report {}: {e}", path.display());
        }
    }
    outcome(&report, &gate, s.quiet)
}

/// Interrupted, export failures, shortfall beyond the gate, or success.
fn outcome(report: &RunReport, gate: &Gate, quiet: bool) -> Result<(), Failure> {
    let short = report.shortfall();
    if report.interrupted {
        Err(Failure::reported(exit::INTERRUPTED))
    } else if report.fatal.is_some() || report.failed() > 0 {
        // The summary shows the failures, unless -q kept it quiet.
        Err(if quiet {
            Failure::export(format!("{} item(s) failed to export", report.failed()))
        } else {
            Failure::reported(exit::EXPORT)
        })
    } else if gate.max_shortfall.is_some_and(|m| short > m) {
        Err(Failure::shortfall(format!(
            "shortfall {:.2}% exceeds --max-shortfall {:.2}%",
            short * 100.0,
            gate.max_shortfall.unwrap_or_default() * 100.0
        )))
    } else {
        Ok(())
    }
}

/// The effective settings, as the run report records them (headers never).
fn report_settings(s: &Settings, report: &RunReport, gate: &Gate) -> serde_json::Value {
    serde_json::json!({
            "endpoint": s.export.endpoint,
            "protocol": s.export.protocol,
            "output_file": s.export.output_file,
            "outputs": s.outputs.iter().map(ToString::to_string).collect::<Vec<_>>(),
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
    })
}

/// Streams the report (its trace list can be large) to `path`.
fn write_report(
    path: &Path,
    report: &RunReport,
    settings: &serde_json::Value,
) -> std::io::Result<()> {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        report: &'a RunReport,
        settings: &'a serde_json::Value,
    }
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(&mut w, &Doc { report, settings })?;
    std::io::Write::flush(&mut w)
}

fn absolute(p: &Option<PathBuf>) -> Option<PathBuf> {
    p.as_ref()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
}

fn bench(s: &Settings, a: &BenchArgs) -> Result<(), Failure> {
    let prep = prepare(s)?;
    let r = crate::bench::run(&prep, s, a.spans, !a.no_encode).map_err(Failure::input)?;
    print!("{}", r.render());
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&r).unwrap_or_default();
        std::fs::write(path, json)
            .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

async fn sink(a: &SinkArgs, g: &GlobalArgs) -> Result<(), Failure> {
    let tls = crate::tls::ServerTls::from_flags(
        g.tls_cert.as_deref(),
        g.tls_key.as_deref(),
        a.tls_client_ca.as_deref(),
    )
    .map_err(|e| Failure::input(format!("{e:#}")).in_command("sink"))?;
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
        ..Default::default()
    };
    crate::sink::run_until_signal(opts, a.summary_file.clone(), a.duration)
        .await
        .map_err(|e| Failure::runtime(format!("{e:#}")).in_command("sink"))?;
    Ok(())
}
