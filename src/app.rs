//! Command dispatch and exit codes: each command returns `Result<(), Failure>`,
//! and `run` is the one place that prints a failure and turns it into the exit code.

mod run_spec;

use crate::cli::{
    BenchArgs, Cli, Command, GlobalArgs, ListArgs, ReportAction, ReportArgs, SinkArgs,
    ValidateArgs, VerifyArgs,
};
use crate::diag::{LoadError, Severity};
use crate::model::scenario::ScenarioDef;
use crate::plan::WorldOptions;
use crate::run::{Prepared, RunReport, TraceFlow};
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
    refuse_unused_flags(cli)?;
    let g = cli.global_flags();
    if let Some(conflict) = g.conflict() {
        return Err(Failure::input(conflict));
    }
    if let Command::Sink(args) = &cli.command {
        return sink(args, &g).await;
    }
    if let Command::Stats(args) = &cli.command {
        return stats(args);
    }
    if let Command::Report(args) = &cli.command {
        return report(args, &g);
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
        Command::Sink(_) | Command::Stats(_) | Command::Report(_) => unreachable!("handled above"),
    }
}

fn world_options(s: &Settings) -> WorldOptions {
    WorldOptions {
        vendor: s.vendor.clone(),
        service_name: s.service_name.clone(),
        extra_resource: s.resource_attrs.clone(),
        tenant_id: s.tenant_id.clone(),
        genai_profile: s.genai_profile,
    }
}

/// Options given before the subcommand that it does not take would do nothing:
/// naming them beats ignoring them. (After the subcommand clap refuses them.)
fn refuse_unused_flags(cli: &Cli) -> Result<(), Failure> {
    let unused = cli.unused_flags();
    if unused.is_empty() {
        return Ok(());
    }
    let name = cli.command.name();
    let verb = if unused.len() == 1 { "does" } else { "do" };
    Err(Failure::input(format!(
        "{} {verb} nothing with `otelsim {name}`{}",
        unused.join(", "),
        Command::purpose(name)
    )))
}

/// `otelsim verify`: the conventions come from the run's own settings (as its
/// report records them) unless flags say otherwise.
/// `otelsim stats FILE`: the file's statistics, as a table or JSON.
fn stats(a: &crate::cli::StatsArgs) -> Result<(), Failure> {
    let st = crate::stats::of_file(&a.file)
        .map_err(|e| Failure::input(format!("{e:#}")).in_command("stats"))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
    } else {
        print!("{}", st.render());
    }
    Ok(())
}

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
    let prep = prepare(&s, None)?;
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

/// `otelsim report merge`: the shards' reports as one, on stdout; missing or
/// interrupted shards are said on stderr (and fail `verify` later).
fn report(a: &ReportArgs, g: &GlobalArgs) -> Result<(), Failure> {
    let ReportAction::Merge(m) = &a.action;
    let fail = |e: String| Failure::input(e).in_command("report merge");
    let inputs = m
        .reports
        .iter()
        .map(|p| crate::run::merge::read(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let merged = crate::run::merge::merge(&inputs).map_err(fail)?;
    for w in &merged.warnings {
        eprintln!("otelsim report merge: {w}");
    }
    let r = &merged.doc["report"];
    if !g.quiet {
        let shards = match r["shards"].as_object() {
            Some(sh) => format!(
                "{} of {} shards",
                sh["included"].as_array().map_or(0, Vec::len),
                sh["count"]
            ),
            None => plural(inputs.len(), "report"),
        };
        eprintln!(
            "otelsim report merge: run {}: {shards} · {} spans acknowledged · {:.1} s",
            r["run_id"].as_str().unwrap_or_default(),
            r["export"]["spans"]["acked"],
            r["clock_s"].as_f64().unwrap_or_default()
        );
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &merged.doc)
        .map_err(std::io::Error::from)
        .and_then(|()| std::io::Write::write_all(&mut out, b"\n"))
        .map_err(|e| Failure::runtime(format!("cannot write the merged report: {e}")))
}

fn list(s: &Settings, a: &ListArgs) -> Result<(), Failure> {
    let prep = prepare(s, None)?;
    let reg = &prep.registry;
    // Names pick scenarios (hidden ones too); otherwise every listable one.
    let rows: Vec<&ScenarioDef> = if a.names.is_empty() {
        reg.listed(&a.tags)
    } else {
        let mut rows = Vec::new();
        for n in &a.names {
            let sc = reg
                .get(n)
                .ok_or_else(|| Failure::input(reg.missing_scenario(n)))?;
            rows.push(sc);
        }
        rows
    };
    if a.long {
        list_long(&prep, &rows);
    } else {
        list_table(&rows);
    }
    if !s.quiet && a.names.is_empty() {
        let hidden: Vec<&str> = reg
            .scenarios
            .iter()
            .filter(|sc| crate::registry::is_hidden(&sc.name))
            .map(|sc| sc.name.as_str())
            .collect();
        let mut footer = plural(rows.len(), "scenario");
        if !hidden.is_empty() {
            footer.push_str(&format!(
                " · {} not listed, runs by name only: {}",
                hidden.len(),
                hidden.join(", ")
            ));
        }
        if !a.long {
            footer.push_str(" · `otelsim list --long [NAME]` shows each whole");
        }
        eprintln!("{footer}");
    }
    Ok(())
}

/// One line per scenario; descriptions are cut to fit (`--long` shows them whole).
fn list_table(rows: &[&ScenarioDef]) {
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
    for r in rows {
        let mut desc = one_line(&r.description);
        if r.opt_in {
            desc = format!("(opt-in) {desc}");
        }
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
}

/// Everything about each scenario, with what one request of it emits (one sample,
/// seed 1: span counts vary from request to request).
fn list_long(prep: &Prepared, rows: &[&ScenarioDef]) {
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", r.name);
        if r.display_name != r.name {
            println!("  title:        {}", r.display_name);
        }
        println!(
            "  description:  {}",
            wrap(&one_line(&r.description), 80, 16)
        );
        println!(
            "  tags:         {}",
            if r.tags.is_empty() {
                "(none)".to_string()
            } else {
                r.tags.join(", ")
            }
        );
        let share = |sc: &ScenarioDef| {
            let total: f64 = prep
                .registry
                .filtered(&[])
                .iter()
                .map(|c| c.workload_weight.max(0.0))
                .sum();
            if crate::registry::is_hidden(&sc.name) {
                "hidden: `run` never picks it; it runs by name".to_string()
            } else if sc.opt_in {
                format!(
                    "opt-in: `run` picks it only with --tags naming one of its tags ({})",
                    sc.tags.join(", ")
                )
            } else if sc.workload_weight <= 0.0 || total <= 0.0 {
                "never picked at random by `run`".to_string()
            } else {
                format!(
                    "{:.1}% of `run`'s picks",
                    100.0 * sc.workload_weight / total
                )
            }
        };
        println!(
            "  weight:       {} ({})",
            format_weight(r.workload_weight),
            share(r)
        );
        println!("  file:         {}", r.source);
        let dev = if r.interval_deviation_ms > 0.0 {
            format!(" ± {}", r.interval_deviation_ms)
        } else {
            String::new()
        };
        let repeat = if r.repeat_count == 1 {
            "once".to_string()
        } else {
            format!("{} times, {}{dev} ms apart", r.repeat_count, r.interval_ms)
        };
        println!(
            "  by name:      `otelsim scenario --name {}` runs it {repeat}",
            r.name
        );
        let (what, signals) = emits(prep, r);
        println!("  emits:        {}", wrap(&what, 80, 16));
        println!("  signals:      {signals}");
    }
    if !prep.registry.config.workload_schedules.is_empty() {
        println!();
        for ws in &prep.registry.config.workload_schedules {
            println!("{}", crate::run::schedule::describe(ws));
        }
    }
}

/// What one request of the scenario emits (traces, spans by name), and whether
/// metrics and log records are derived from them.
fn emits(prep: &Prepared, r: &ScenarioDef) -> (String, String) {
    use rand::SeedableRng as _;
    let signals = format!(
        "metrics {}, log records {}",
        if r.emit_metrics { "yes" } else { "no" },
        if r.emit_logs { "yes" } else { "no" }
    );
    let Some(plan) = prep.plans.get(&r.name) else {
        let why = "(does not compile; `otelsim validate` says why)".to_string();
        return (why, signals);
    };
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
    let traces =
        crate::run::generate_iteration(&prep.world, plan, 1_800_000_000_000_000_000, 0, &mut rng);
    let mut names: Vec<(String, usize)> = Vec::new();
    for sp in traces.iter().flat_map(|t| &t.spans) {
        let n = sp.name.to_string();
        match names.iter_mut().find(|(k, _)| *k == n) {
            Some(e) => e.1 += 1,
            None => names.push((n, 1)),
        }
    }
    let spans: usize = names.iter().map(|(_, c)| c).sum();
    let list: Vec<String> = names
        .iter()
        .map(|(n, c)| {
            if *c > 1 {
                format!("{n} ×{c}")
            } else {
                n.clone()
            }
        })
        .collect();
    let unit = if plan.turns.is_empty() {
        "one request".to_string()
    } else {
        format!("one session of {} turns", plan.turns.len())
    };
    let what = format!(
        "{unit} (a sample): {}, {}: {}",
        plural(traces.len(), "trace"),
        plural(spans, "span"),
        list.join(", ")
    );
    (what, signals)
}

/// Whitespace runs (YAML folded text, line breaks) as single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Wraps `text` at `width` columns, continuation lines indented by `indent`.
fn wrap(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut col = indent;
    for word in text.split(' ') {
        let n = word.chars().count();
        if col > indent && col + 1 + n > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
        } else if col > indent {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += n;
    }
    out
}

/// `1 scenario`, `2 scenarios`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn format_weight(w: f64) -> String {
    let s = format!("{w:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Lists every problem of every file (skipped scenario files included, which the
/// other commands report by their first error only); exit 2 on any error.
/// `--strict` makes the unknown keys of scenario files errors.
fn validate(s: &Settings, a: &ValidateArgs) -> Result<(), Failure> {
    let (prep, mut diagnostics) = match crate::run::prepare(&s.sources, &world_options(s)) {
        Ok(p) => {
            let d = p.all_diagnostics();
            (Some(p), d)
        }
        Err(e) => (None, e.diagnostics),
    };
    if a.strict {
        for d in diagnostics.iter_mut().filter(|d| d.unknown_key) {
            d.severity = Severity::Error;
        }
        diagnostics.sort_by_key(|d| std::cmp::Reverse(d.severity));
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    for d in &diagnostics {
        println!("{d}");
    }
    let p = match prep {
        Some(p) if errors == 0 => p,
        prep => {
            // Say what the other commands would do with these files.
            let skipped = prep.map_or(0, |p| p.registry.skipped.len());
            let note = match skipped {
                0 => String::new(),
                n => format!(
                    " (`run`, `list` and `scenario` skip {} with errors and load the rest)",
                    plural(n, "scenario file")
                ),
            };
            println!("{}{note}", plural(errors, "error"));
            return Err(Failure::reported(exit::INPUT));
        }
    };
    // Declared attributes a scenario can never emit.
    let coverage = crate::generate::never_emitted(&p.world, &p.registry.semconv, &p.plans);
    for w in &coverage {
        println!("{w}");
    }
    for ws in &p.registry.config.workload_schedules {
        println!("{}", crate::run::schedule::describe(ws));
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
    // `list` leaves the hidden ones out: say so, so the two counts agree.
    let hidden: Vec<&str> = p
        .plans
        .keys()
        .filter(|n| crate::registry::is_hidden(n))
        .map(String::as_str)
        .collect();
    let scenarios = if hidden.is_empty() {
        plural(p.plans.len(), "scenario")
    } else {
        format!(
            "{} ({} listed by `otelsim list`, {} hidden: {})",
            plural(p.plans.len(), "scenario"),
            p.plans.len() - hidden.len(),
            hidden.len(),
            hidden.join(", ")
        )
    };
    println!(
        "ok: config {}, semconv {}, {scenarios}, {}",
        p.registry.config.source,
        p.registry.semconv.source,
        plural(diagnostics.len() + coverage.len(), "warning")
    );
    print_formats(&p.registry.scenarios, s.verbose > 0);
    Ok(())
}

/// Which format generation each scenario file is written in: a count per format,
/// and with `verbose` one line per file.
fn print_formats(scenarios: &[ScenarioDef], verbose: bool) {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for sc in scenarios {
        let label = sc.format.label();
        match counts.iter_mut().find(|(l, _)| *l == label) {
            Some(c) => c.1 += 1,
            None => counts.push((label, 1)),
        }
        if verbose {
            println!("  {label:<8} {} ({})", sc.name, sc.source);
        }
    }
    let list: Vec<String> = counts.iter().map(|(l, n)| format!("{l}: {n}")).collect();
    println!("formats: {}", list.join(", "));
}

/// Loads and compiles for every command but `validate`: config.yaml and the
/// conventions must be free of errors, a scenario file with errors is skipped
/// (see [`report_load`]), and at least one scenario must be left.
fn prepare(s: &Settings, flow: Option<TraceFlow>) -> Result<Prepared, Failure> {
    let prep = crate::run::prepare_with_flow(&s.sources, &world_options(s), flow)
        .map_err(|e| Failure::load(&e))?;
    report_load(s, &prep);
    let reg = &prep.registry;
    if reg.scenarios.is_empty() && !reg.skipped.is_empty() {
        return Err(Failure::input(format!(
            "no scenario left: every scenario file has errors ({} skipped; `otelsim validate` lists every problem)",
            reg.skipped.len()
        )));
    }
    Ok(prep)
}

/// What the load found, on stderr: each skipped scenario file once (its first
/// error) and how many were skipped, even with `-q`; unknown keys in scenario files
/// as warnings unless `-q`; every other warning with `-v`.
fn report_load(s: &Settings, prep: &Prepared) {
    for w in &prep.warnings {
        if !s.quiet && (w.unknown_key || s.verbose > 0) {
            eprintln!("{w}");
        }
    }
    let reg = &prep.registry;
    for sk in &reg.skipped {
        eprintln!("{}", sk.error);
    }
    if !reg.skipped.is_empty() {
        eprintln!(
            "otelsim: skipped {} of {} with errors (`otelsim validate` lists every problem)",
            reg.skipped.len(),
            plural(reg.scenario_files, "scenario file")
        );
    }
}

/// `run` and `scenario`: load, check the flags, run, judge the outcome.
async fn run_command(s: &Settings, flags: RunFlags<'_>) -> Result<(), Failure> {
    let prep = prepare(s, flags.trace_flow())?;
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
    let s = Arc::new(s);
    let flow = TraceFlow::of(prep.registry.config.control_plane.single_trace);
    let report = crate::run::execute(Arc::new(prep), s.clone(), spec)
        .await
        .map_err(|e| Failure::export(format!("{e:#}")))?;
    if !s.quiet {
        print!("{}", report.render_for(s.export.gzip));
    }
    if let Some(path) = &gate.report {
        // The run happened: a report that cannot be written does not change its outcome.
        if let Err(e) = write_report(path, &report, &report_settings(&s, &report, &gate, flow)) {
            eprintln!("otelsim: cannot write the report {}: {e}", path.display());
        }
    }
    outcome(&report, &gate, s.quiet)
}

/// Sink flags that would fail only later (at the first request, or at
/// shutdown when the summary is written) are input errors now.
fn check_sink_args(a: &SinkArgs) -> Result<(), String> {
    if a.max_request_bytes == 0 {
        return Err("--max-request-bytes must be at least 1 (default 67108864, 64 MiB)".into());
    }
    if let Some(path) = &a.summary_file {
        let existed = path.exists();
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| format!("cannot write --summary-file {}: {e}", path.display()))?;
        if !existed {
            // Only a probe: the summary is written at shutdown.
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
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
    } else if gate.max_shortfall.is_some_and(|m| report.overshoot() > m) {
        // A rate above its target is as false a load test as one below it.
        Err(Failure::shortfall(format!(
            "the achieved rate is {:.2}% above the target, beyond --max-shortfall {:.2}%",
            report.overshoot() * 100.0,
            gate.max_shortfall.unwrap_or_default() * 100.0
        )))
    } else {
        Ok(())
    }
}

/// The effective settings, as the run report records them (headers never).
fn report_settings(
    s: &Settings,
    report: &RunReport,
    gate: &Gate,
    flow: TraceFlow,
) -> serde_json::Value {
    serde_json::json!({
            "endpoint": crate::export::redact_url(&s.export.endpoint),
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
            "trace_flow": flow,
            "request_timeout_s": s.export.request_timeout.as_secs_f64(),
            "retry_budget_s": s.export.retry_budget.as_secs_f64(),
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
    let prep = prepare(s, None)?;
    use crate::bench::{BenchOptions, BenchProtocol, BenchTo};
    if a.to == BenchTo::Null && a.protocol.is_some() {
        return Err(Failure::input(
            "--protocol does nothing with `otelsim bench` unless --to sink (nothing is sent)",
        ));
    }
    if a.to == BenchTo::Sink && a.no_encode {
        return Err(Failure::input(
            "--to sink sends what is encoded: it cannot go with --no-encode",
        ));
    }
    let opts = BenchOptions {
        spans: a.spans,
        encode: !a.no_encode,
        signals: a.signals,
        to: a.to,
        protocol: a.protocol.unwrap_or(BenchProtocol::Http),
    };
    let r = crate::bench::run(&prep, s, opts).map_err(|e| match e {
        crate::bench::BenchError::Input(m) => Failure::input(m),
        crate::bench::BenchError::Runtime(m) => Failure::runtime(m),
    })?;
    print!("{}", r.render());
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&r).unwrap_or_default();
        std::fs::write(path, json)
            .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

async fn sink(a: &SinkArgs, g: &GlobalArgs) -> Result<(), Failure> {
    check_sink_args(a).map_err(|e| Failure::input(e).in_command("sink"))?;
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
