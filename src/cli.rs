//! Command-line flags (clap). Global options are accepted before or after the
//! subcommand; `settings` turns flags + environment into effective settings.

use crate::export::Protocol;
use clap::{ArgAction, Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole command line: the global flags and one subcommand.
#[derive(Parser, Debug)]
#[command(
    name = "otelsim",
    version,
    about = "OpenTelemetry-native load and scenario simulator for agent telemetry",
    long_about = "Generates realistic agent telemetry (orchestrator turns, planner, LLM calls with GenAI \
attributes, MCP tool calls with retries, control-plane validation, multi-turn sessions) from scenario \
YAML and sends it as real OTLP. Run `otelsim sink` in another terminal for a local receiver.",
    after_help = "Exit codes: 0 all delivered (verify: verified) · 1 runtime error · 2 invalid input or usage · 3 export failures · 4 shortfall beyond --max-shortfall · 5 verify found differences · 130 interrupted"
)]
pub struct Cli {
    /// Flags given before the subcommand (or after it, for the `global` ones);
    /// read them through [`Cli::global_flags`].
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The subcommand to run, with its own flags.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts: export, TLS, signals, input files, seed and
/// clock, verbosity. `settings` resolves them against the environment.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// OTLP endpoint (default http://localhost:4317 for grpc, http://localhost:4318 for http).
    /// Env: OTEL_EXPORTER_OTLP_ENDPOINT, OTLP_HTTP_ENDPOINT.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,

    /// OTLP protocol. Env: OTEL_EXPORTER_OTLP_PROTOCOL.
    #[arg(long, global = true, value_enum)]
    pub protocol: Option<Protocol>,

    /// Extra export header, repeatable (e.g. an auth token). Env: OTEL_EXPORTER_OTLP_HEADERS.
    #[arg(long = "header", global = true, value_name = "KEY=VALUE")]
    pub headers: Vec<String>,

    /// PEM CA bundle that verifies an https:// endpoint's certificate, instead of the system's
    /// CAs. Env: OTEL_EXPORTER_OTLP_CERTIFICATE.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// PEM certificate of this process, with --tls-key: the client certificate (mTLS) for an
    /// https:// endpoint, or the server certificate of `otelsim sink`.
    /// Env (export only): OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert. Env (export only): OTEL_EXPORTER_OTLP_CLIENT_KEY.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Accept an https:// endpoint's certificate even when it does not verify (self-signed,
    /// unknown CA, other name). For tests only: prints a warning. Does nothing with http://.
    #[arg(long, global = true, conflicts_with = "tls_ca")]
    pub insecure: bool,

    /// How long a failing endpoint is retried before its batches count as failed and the
    /// run stops with exit 3 (e.g. 15s, 2m). Each request also times out after this long (at most 10 s).
    #[arg(long, global = true, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub retry_budget: Option<std::time::Duration>,

    /// When the endpoint is not up yet, keep trying to connect for this long before
    /// giving up (default: fail at once with exit 3), e.g. 30s.
    #[arg(long, global = true, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait_for_endpoint: Option<std::time::Duration>,

    /// Emit metrics for every scenario, whatever its `emit_metrics` says.
    #[arg(long, global = true, conflicts_with = "no_metrics")]
    pub metrics: bool,

    /// Emit no metrics.
    #[arg(long, global = true)]
    pub no_metrics: bool,

    /// Emit log records for every scenario, whatever its `emit_logs` says.
    #[arg(long, global = true, conflicts_with = "no_logs")]
    pub logs: bool,

    /// Emit no log records.
    #[arg(long, global = true)]
    pub no_logs: bool,

    /// Metric aggregation temporality.
    #[arg(long, global = true, value_enum, default_value_t = crate::metrics::Temporality::Cumulative)]
    pub temporality: crate::metrics::Temporality,

    /// How often metrics are collected and exported (on the run's clock), e.g. 10s; a final
    /// collection always happens at the end.
    #[arg(long, global = true, value_parser = humantime::parse_duration, default_value = "10s", value_name = "DURATION")]
    pub metrics_interval: std::time::Duration,

    /// Compress export requests with gzip. Env: OTEL_EXPORTER_OTLP_COMPRESSION=gzip.
    #[arg(long, global = true)]
    pub gzip: bool,

    /// Where the telemetry goes: `otlp` sends to the endpoint (the default), `otlp-json:PATH`
    /// writes OTLP/JSON lines (one export request per line) to PATH. Repeatable (one output for
    /// now). Before the subcommand, or after `run` / `scenario`.
    // Not `global`: `verify` has an `--output` of its own (its verdict file).
    #[arg(long = "output", value_name = "KIND[:PATH]")]
    pub outputs: Vec<String>,

    /// Write OTLP/JSON lines (one export request per line) to this file instead of sending;
    /// the same as `--output otlp-json:PATH`.
    #[arg(long, global = true, value_name = "PATH")]
    pub output_file: Option<PathBuf>,

    /// Semantic-conventions YAML (default: the embedded one). Env: SEMCONV.
    #[arg(long, global = true, value_name = "PATH", env = "SEMCONV")]
    pub semconv: Option<PathBuf>,

    /// config.yaml (default: the embedded one). Env: OTELSIM_CONFIG.
    #[arg(long, global = true, value_name = "PATH", env = "OTELSIM_CONFIG")]
    pub config: Option<PathBuf>,

    /// Folder of scenario definitions, searched recursively (default: the embedded ones). Env: SCENARIOS_DIR.
    #[arg(long, global = true, value_name = "DIR", env = "SCENARIOS_DIR")]
    pub scenarios_dir: Option<PathBuf>,

    /// Attribute and span-name prefix (default `vendor`). Env: VENDOR.
    #[arg(long, global = true, env = "VENDOR")]
    pub vendor: Option<String>,

    /// Seed for every random choice (scenario picks, latencies, ids): same seed, same telemetry.
    #[arg(long, global = true)]
    pub seed: Option<u64>,

    /// Lay timestamps on a virtual clock starting here (RFC 3339, or Unix seconds) instead of
    /// now, without sleeping between traces. With --seed the output is byte-identical.
    #[arg(long, global = true, value_name = "TIME")]
    pub start_time: Option<String>,

    /// Tenant id for every scenario (overrides context.tenant and context.tenant_uuid).
    #[arg(long, global = true, value_name = "ID")]
    pub tenant_id: Option<String>,

    /// service.name resource attribute. Env: OTEL_SERVICE_NAME.
    #[arg(long, global = true)]
    pub service_name: Option<String>,

    /// More output (-v: one line per request, plus load warnings).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// `0.01` or `1%`.
fn parse_fraction(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}`: expected a fraction such as 0.01 or 1%"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("`{s}`: must be between 0 and 1 (0% and 100%)"))
    }
}

impl Cli {
    /// The global flags, with the `--output`s given after `run` / `scenario` added
    /// to those given before the subcommand.
    pub fn global_flags(&self) -> GlobalArgs {
        let mut g = self.global.clone();
        match &self.command {
            Command::Run(a) => g.outputs.extend(a.output.outputs.iter().cloned()),
            Command::Scenario(a) => g.outputs.extend(a.output.outputs.iter().cloned()),
            _ => {}
        }
        g
    }
}

/// `--output` after the subcommands that export (the global flag's twin).
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Where the telemetry goes: `otlp` sends to the endpoint (the default), `otlp-json:PATH`
    /// writes OTLP/JSON lines to PATH. Repeatable: every output gets the same records.
    #[arg(long = "output", value_name = "KIND[:PATH]")]
    pub outputs: Vec<String>,
}

impl Default for GlobalArgs {
    /// The values clap gives when no flag is passed.
    fn default() -> Self {
        Cli::try_parse_from(["otelsim", "list"])
            .map(|c| c.global)
            .expect("defaults parse")
    }
}

/// The subcommands, each with its own flags.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List scenarios: name, description, tags, weight.
    List(ListArgs),
    /// Run one scenario repeat_count times (or --count), honouring its interval.
    Scenario(ScenarioArgs),
    /// Run a weighted random mix of scenarios.
    Run(RunArgs),
    /// Load config, semconv and every definition; report every problem.
    Validate(ValidateArgs),
    /// otelsim's own OTLP receiver: counts what arrives and prints a summary on exit.
    Sink(SinkArgs),
    /// Measure generate + encode cost in memory on one thread (nothing is sent).
    Bench(BenchArgs),
    /// Compare a run report with what `otelsim sink` received of that run: missing,
    /// incomplete, duplicated or invalid telemetry. Exit 0 verified, 5 differences.
    Verify(VerifyArgs),
}

/// Flags of `otelsim verify`: the two reports to compare and what to do with the verdict.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The run report (`otelsim run --report FILE`).
    #[arg(value_name = "RUN_REPORT")]
    pub run_report: PathBuf,
    /// The sink's summary (`otelsim sink --summary-file FILE`), written after the run.
    #[arg(long, value_name = "PATH")]
    pub sink_report: PathBuf,
    /// Also write the verdict with every difference as JSON here.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Accept a verdict limited by the sink's --max-tracked-spans or the report's trace
    /// list (totals still compared) instead of failing it.
    #[arg(long)]
    pub allow_partial: bool,
}

/// Flags of `otelsim bench`: how much to generate, and whether to encode it.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Spans to generate (the bundled mixed workload, weighted).
    #[arg(long, default_value_t = 1_000_000)]
    pub spans: u64,
    /// Generate only; skip OTLP encoding.
    #[arg(long)]
    pub no_encode: bool,
    /// Also write the report as JSON here.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
}

/// Flags of `otelsim list`: which scenarios to list.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only scenarios with any of these tags (comma-separated, case-insensitive).
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
}

/// Flags of `scenario` and `run` that print each trace as it is generated.
#[derive(Args, Debug, Clone, Default)]
pub struct ShowArgs {
    /// Print each trace as a tree: name, duration, status.
    #[arg(long)]
    pub show_spans: bool,
    /// Like --show-spans plus every attribute and event of every span.
    #[arg(long, alias = "show-all-attributes")]
    pub show_full_spans: bool,
}

/// Flags of `otelsim scenario`: the scenario, how many times and how often.
#[derive(Args, Debug)]
pub struct ScenarioArgs {
    /// Scenario name (its file stem).
    #[arg(long, short = 'n')]
    pub name: String,
    /// Iterations (default: the scenario's repeat_count).
    #[arg(long)]
    pub count: Option<u64>,
    /// Milliseconds between iterations (default: the scenario's interval_ms ± interval_deviation_ms).
    #[arg(long, value_name = "MS")]
    pub interval: Option<f64>,
    /// Printing each trace as it is generated.
    #[command(flatten)]
    pub show: ShowArgs,
    /// `--output`s given after the subcommand (added to those before it).
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Flags of `otelsim run`: how many picks, at what rate or load shape, for how long, and the
/// report.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Number of scenario picks (each pick is one request, or one session for multi-turn).
    /// Default 100, or unlimited when --duration is given.
    #[arg(long)]
    pub count: Option<u64>,
    /// Milliseconds between picks (ignored with a load shape: --rate, --stages, --load-profile).
    #[arg(long, default_value_t = 500.0, value_name = "MS")]
    pub interval: f64,
    /// Target rate per second (of traces, or spans with --unit spans) on an open-loop
    /// schedule: lag and shortfall are reported, never hidden.
    #[arg(long, value_name = "PER_S", conflicts_with_all = ["stages", "load_profile"])]
    pub rate: Option<f64>,
    /// Load shape as linear ramps, k6-style: `30s:100,2m:2000,30s:0` ramps from 0 to 100/s
    /// over 30 s, to 2000/s over 2 min, down to 0 over 30 s; `0s:500` is a step. The run
    /// ends with the last stage.
    #[arg(long, value_name = "STAGES", conflicts_with = "load_profile")]
    pub stages: Option<String>,
    /// Periodic bursts on top of the shape: `5x:10s/1m` multiplies the rate by 5 for 10 s
    /// of every minute.
    #[arg(long, value_name = "BURST")]
    pub burst: Option<String>,
    /// Load shape from a YAML file (rate or stages, burst, unit); see README "Load testing".
    #[arg(long, value_name = "PATH")]
    pub load_profile: Option<PathBuf>,
    /// What --rate, --stages and profile targets count.
    #[arg(long, value_enum, value_name = "UNIT")]
    pub unit: Option<crate::pace::RateUnit>,
    /// Concurrent generators, taking turns on one schedule, each with its own batcher
    /// (default: the number of cores; 1 with a positive --interval or --show-spans; at most 1024).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Start each pick when it is due and export every span when it ends on the wall
    /// clock (what tail samplers and live dashboards expect), instead of back-dating
    /// whole picks to end at their send time.
    #[arg(long, conflicts_with = "backfill")]
    pub realtime: bool,
    /// Spread the run's timestamps over this past window (e.g. 24h) at the chosen shape,
    /// generated as fast as possible: the window ends now.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub backfill: Option<std::time::Duration>,
    /// Exporter: otelsim's own (lossless, fast) or the OpenTelemetry SDK's batch span
    /// processor + OTLP exporter (SDK-faithful: drops when its queue is full, counted in
    /// the report). The SDK engine sends traces only.
    #[arg(long, value_enum, default_value = "native")]
    pub engine: crate::run::Engine,
    /// Run id put on every resource as `otelsim.run.id` (default: a fresh random id, or one
    /// derived from --seed and --start-time).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// Stop after this long on the run's clock (e.g. 60s, 5m).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub duration: Option<std::time::Duration>,
    /// Exit 4 when the achieved rate or the delivered share falls short of the target, or the
    /// rate goes above it, by more than this fraction (e.g. 0.01 or 1%).
    #[arg(long, value_parser = parse_fraction, value_name = "FRACTION")]
    pub max_shortfall: Option<f64>,
    /// Write the run report (counts per signal and scenario, rates, lag, settings) as JSON here.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Only scenarios with any of these tags (comma-separated, case-insensitive).
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Run every (filtered) scenario exactly once, ignoring weights and --count.
    #[arg(long)]
    pub each_once: bool,
    /// Printing each trace as it is generated.
    #[command(flatten)]
    pub show: ShowArgs,
    /// `--output`s given after the subcommand (added to those before it).
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Flags of `otelsim validate`: what to print besides the diagnostics.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Also print the span names and attribute enums the semconv file defines.
    #[arg(long)]
    pub show_schema: bool,
}

/// Flags of `otelsim sink`: listen addresses, limits, the summary file and fault injection.
#[derive(Args, Debug)]
pub struct SinkArgs {
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub grpc_addr: SocketAddr,
    /// HTTP (OTLP/HTTP protobuf and JSON) listen address.
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub http_addr: SocketAddr,
    /// Write the final summary as JSON here.
    #[arg(long, value_name = "PATH")]
    pub summary_file: Option<PathBuf>,
    /// Stop by itself after this long (e.g. 30s, 5m); default: until Ctrl-C / SIGTERM.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Largest accepted request, in bytes (after decompression).
    #[arg(long, default_value_t = 64 << 20)]
    pub max_request_bytes: usize,
    /// Spans of otelsim runs checked trace by trace for `otelsim verify` (about 100 bytes
    /// each); beyond this they are only counted.
    #[arg(long, default_value_t = crate::sink::runs::DEFAULT_MAX_TRACKED_SPANS, value_name = "N")]
    pub max_tracked_spans: usize,
    /// Fault injection: refuse the first N requests as retryable (see --reject-with).
    #[arg(
        long,
        default_value_t = 0,
        value_name = "N",
        help_heading = "Fault injection"
    )]
    pub reject_first: u64,
    /// How refused requests are answered: 503 (gRPC UNAVAILABLE) or 429 (gRPC RESOURCE_EXHAUSTED).
    #[arg(
        long,
        value_enum,
        default_value = "503",
        help_heading = "Fault injection"
    )]
    pub reject_with: crate::sink::RejectWith,
    /// Retry hint sent with each refusal (HTTP Retry-After, gRPC RetryInfo), e.g. 1s.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", help_heading = "Fault injection")]
    pub retry_after: Option<std::time::Duration>,
    /// Answer the first N trace requests with a partial success, refusing one span each.
    #[arg(
        long,
        default_value_t = 0,
        value_name = "N",
        help_heading = "Fault injection"
    )]
    pub partial_first: u64,
    /// Require client certificates signed by this PEM CA bundle (mTLS); needs --tls-cert and
    /// --tls-key, which turn on TLS for both listeners.
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
}
