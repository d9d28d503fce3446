//! Command-line flags (clap). Global options are accepted before or after the
//! subcommand; `settings` turns flags + environment into effective settings.

use crate::export::Protocol;
use clap::{ArgAction, Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// What `otelsim --help` ends with.
const TOP_AFTER_HELP: &str = "\
The options of a subcommand may also come before it: `otelsim --seed 1 run` is `otelsim run --seed 1`.
`otelsim <COMMAND> --help` lists a subcommand's options, grouped.

Exit codes: 0 all delivered (verify: verified) · 1 runtime error · 2 invalid input or usage · \
3 export failures · 4 shortfall beyond --max-shortfall · 5 verify found differences · 130 interrupted";

/// What `otelsim run --help` ends with: examples, then the exit codes.
const RUN_AFTER_HELP: &str = "\
Examples:
  otelsim run --count 500 --interval 10               500 weighted picks, 10 ms apart (5 s)
  otelsim run --count 100 --interval 10 --tags control-plane
                                                      only scenarios tagged control-plane
  otelsim run --each-once --interval 0                every scenario once, at once
  otelsim run --rate 2000 --duration 60s --report run.json --max-shortfall 1%
                                                      2000 traces/s for a minute; exit 4 if short
  otelsim run --count 100 --interval 0 --output-file traces.jsonl
                                                      OTLP/JSON lines to a file instead of sending

Exit codes: 0 all delivered · 1 runtime error · 2 invalid input or usage · 3 export failures \
(endpoint unreachable, items not delivered) · 4 shortfall beyond --max-shortfall · 130 interrupted";

/// The whole command line: one subcommand, and the subcommands' options given
/// before it (read both through [`Cli::global_flags`]).
#[derive(Parser, Debug)]
#[command(
    name = "otelsim",
    version,
    about = "OpenTelemetry-native load and scenario simulator for agent telemetry: realistic agent \
traces, metrics and logs from scenario YAML, sent as real OTLP. `otelsim sink` in another terminal \
is a local receiver.",
    after_help = TOP_AFTER_HELP,
    // The copies of the subcommands' options that may come before the subcommand:
    // accepted, but listed by each subcommand's own help, not here.
    mut_args(|a: clap::Arg| a.hide(true)),
)]
pub struct Cli {
    /// Options given before the subcommand: every shared group is accepted there,
    /// and those the subcommand does not take are refused (`app::dispatch`).
    #[command(flatten)]
    pub global: SharedArgs,
    /// The subcommand to run, with its own flags.
    #[command(subcommand)]
    pub command: Command,
}

/// Every group of options that more than one subcommand takes; before the
/// subcommand all are accepted.
#[derive(Args, Debug, Clone, Default)]
pub struct SharedArgs {
    /// Where the telemetry goes and how it is sent.
    #[command(flatten)]
    pub export: ExportArgs,
    /// How an https:// endpoint is trusted.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// This process's certificate (client for export, server for the sink).
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Metrics and log records.
    #[command(flatten)]
    pub signals: SignalArgs,
    /// Config, conventions and scenario files.
    #[command(flatten)]
    pub files: FileArgs,
    /// Tenant and service name.
    #[command(flatten)]
    pub naming: NamingArgs,
    /// Seed and virtual clock.
    #[command(flatten)]
    pub clock: ClockArgs,
    /// -v / -q.
    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

/// Where the telemetry goes and how it is sent (`run`, `scenario`).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Export")]
pub struct ExportArgs {
    /// OTLP endpoint [default: http://localhost:4317 for grpc, :4318 for http]. Env:
    /// OTEL_EXPORTER_OTLP_ENDPOINT, OTLP_HTTP_ENDPOINT
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// OTLP protocol [default: grpc]. Env: OTEL_EXPORTER_OTLP_PROTOCOL
    #[arg(long, value_enum)]
    pub protocol: Option<Protocol>,
    /// Extra export header, repeatable (e.g. an auth token). Env: OTEL_EXPORTER_OTLP_HEADERS
    #[arg(long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Compress export requests with gzip. Env: OTEL_EXPORTER_OTLP_COMPRESSION=gzip
    #[arg(long)]
    pub gzip: bool,
    /// Where the telemetry goes: `otlp` (the endpoint) [default], `otlp-json:PATH`,
    /// `agent-trace[:DIR]`, `events-jsonl:PATH`. Repeatable: every output gets the same records
    #[arg(long = "output", value_name = "KIND[:PATH]")]
    pub outputs: Vec<String>,
    /// Write OTLP/JSON lines (one export request per line) to this file instead of sending;
    /// the same as --output otlp-json:PATH
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<PathBuf>,
    /// With events-jsonl: each session's true outcome and episodes
    #[arg(long, value_name = "PATH")]
    pub labels: Option<PathBuf>,
    /// How long a failing endpoint is retried before the run stops with exit 3 [default: 15s]
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub retry_budget: Option<std::time::Duration>,
    /// Wait for one request's answer before retrying [default: the retry budget, at
    /// most 10s]. Env: OTELSIM_REQUEST_TIMEOUT
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub request_timeout: Option<std::time::Duration>,
    /// Keep trying to connect to an endpoint that is not up yet for this long, e.g. 30s
    /// [default: fail at once with exit 3]
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait_for_endpoint: Option<std::time::Duration>,
    /// Connections used in turn [default: 2 over gRPC, 1 over HTTP]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=64))]
    pub connections: Option<u8>,
    /// Mask SSNs, cards, e-mails and phones in all outputs. Env: OTELSIM_MASK_PII=1
    #[arg(long)]
    pub mask_pii: bool,
}

/// How an https:// endpoint is trusted (`run`, `scenario`).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// PEM CA bundle that verifies an https:// endpoint, instead of the system's CAs. Env:
    /// OTEL_EXPORTER_OTLP_CERTIFICATE
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Accept an https:// endpoint's certificate that does not verify. For tests only
    #[arg(long, conflicts_with = "tls_ca")]
    pub insecure: bool,
}

/// This process's certificate: the client's for export (mTLS), the server's for
/// `otelsim sink`.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "TLS")]
pub struct IdentityArgs {
    /// PEM certificate, with --tls-key: the client certificate (mTLS) when exporting, the
    /// server certificate of `otelsim sink`. Env (export): OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert. Env (export): OTEL_EXPORTER_OTLP_CLIENT_KEY
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// Metrics and log records besides the spans (`run`, `scenario`).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Signals")]
pub struct SignalArgs {
    /// Emit metrics for every scenario [default: each scenario's emit_metrics]
    #[arg(long, conflicts_with = "no_metrics")]
    pub metrics: bool,
    /// Emit no metrics
    #[arg(long)]
    pub no_metrics: bool,
    /// Emit log records for every scenario [default: each scenario's emit_logs]
    #[arg(long, conflicts_with = "no_logs")]
    pub logs: bool,
    /// Emit no log records
    #[arg(long)]
    pub no_logs: bool,
    /// Metric aggregation temporality [default: cumulative]
    #[arg(long, value_enum)]
    pub temporality: Option<crate::metrics::Temporality>,
    /// How often metrics are collected and exported, on the run's clock; once more at the end
    /// [default: 10s]
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub metrics_interval: Option<std::time::Duration>,
}

/// The files scenarios are read from, and the prefix their names get.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Scenarios")]
pub struct FileArgs {
    /// config.yaml [default: the embedded one]. Env: OTELSIM_CONFIG
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Semantic-conventions YAML [default: the embedded one]. Env: SEMCONV
    #[arg(long, value_name = "PATH")]
    pub semconv: Option<PathBuf>,
    /// Folder of scenario definitions, searched recursively [default: the embedded ones]. Env:
    /// SCENARIOS_DIR
    #[arg(long, value_name = "DIR")]
    pub scenarios_dir: Option<PathBuf>,
    /// Attribute and span-name prefix [default: vendor]. Env: VENDOR
    #[arg(long, value_name = "NAME")]
    pub vendor: Option<String>,
}

/// Names put on what is generated.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Scenarios")]
pub struct NamingArgs {
    /// Tenant id of every scenario [default: the scenario's tenant]
    #[arg(long, value_name = "ID")]
    pub tenant_id: Option<String>,
    /// service.name resource attribute [default: config `resource`, else otelsim]. Env:
    /// OTEL_SERVICE_NAME
    #[arg(long, value_name = "NAME")]
    pub service_name: Option<String>,
    /// Attribute families of GenAI spans: `otel` (the OpenTelemetry GenAI conventions),
    /// `openinference` (what Phoenix-style UIs read), `both` [default: both]. Env:
    /// OTELSIM_GENAI_PROFILE
    #[arg(long, value_name = "PROFILE")]
    pub genai_profile: Option<String>,
}

/// Reproducibility: the seed and the virtual clock.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Timing")]
pub struct ClockArgs {
    /// Seed for every random choice: same seed, same telemetry [default: random, printed]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Lay timestamps on a virtual clock from here (RFC 3339 or Unix seconds), without
    /// sleeping; with --seed the output is byte-identical [default: now]
    #[arg(long, value_name = "TIME")]
    pub start_time: Option<String>,
}

/// How much otelsim says.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Display")]
pub struct VerbosityArgs {
    /// More output (-v: one line per request, plus load warnings)
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
    /// Only errors
    #[arg(short, long)]
    pub quiet: bool,
}

/// The effective shared options: those given after the subcommand merged with
/// those given before it, and the file variables read. `settings` resolves them
/// against the rest of the environment.
#[derive(Debug, Clone)]
pub struct GlobalArgs {
    /// `--endpoint`.
    pub endpoint: Option<String>,
    /// `--protocol`.
    pub protocol: Option<Protocol>,
    /// `--header`s, in the order given.
    pub headers: Vec<String>,
    /// `--tls-ca`.
    pub tls_ca: Option<PathBuf>,
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--insecure`.
    pub insecure: bool,
    /// `--retry-budget`.
    pub retry_budget: Option<std::time::Duration>,
    /// `--request-timeout`.
    pub request_timeout: Option<std::time::Duration>,
    /// `--wait-for-endpoint`.
    pub wait_for_endpoint: Option<std::time::Duration>,
    /// `--connections`.
    pub connections: Option<u8>,
    /// `--metrics`.
    pub metrics: bool,
    /// `--no-metrics`.
    pub no_metrics: bool,
    /// `--logs`.
    pub logs: bool,
    /// `--no-logs`.
    pub no_logs: bool,
    /// `--temporality` (cumulative unless given).
    pub temporality: crate::metrics::Temporality,
    /// `--metrics-interval` (10 s unless given).
    pub metrics_interval: std::time::Duration,
    /// `--gzip`.
    pub gzip: bool,
    /// `--output`s: those before the subcommand, then those after it.
    pub outputs: Vec<String>,
    /// `--output-file`.
    pub output_file: Option<PathBuf>,
    /// `--labels`: ground truth of the instability sessions (with `events-jsonl`).
    pub labels: Option<PathBuf>,
    /// `--mask-pii`, else `OTELSIM_MASK_PII` (1, true or yes).
    pub mask_pii: bool,
    /// `--semconv`, else `SEMCONV`.
    pub semconv: Option<PathBuf>,
    /// `--config`, else `OTELSIM_CONFIG`.
    pub config: Option<PathBuf>,
    /// `--scenarios-dir`, else `SCENARIOS_DIR`.
    pub scenarios_dir: Option<PathBuf>,
    /// `--vendor`, else `VENDOR`.
    pub vendor: Option<String>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--start-time`.
    pub start_time: Option<String>,
    /// `--tenant-id`.
    pub tenant_id: Option<String>,
    /// `--service-name`.
    pub service_name: Option<String>,
    /// `--genai-profile`, else `OTELSIM_GENAI_PROFILE`.
    pub genai_profile: Option<String>,
    /// `-v`, counted over both places.
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
}

impl Default for GlobalArgs {
    /// What no flag gives (the file variables are still read).
    fn default() -> Self {
        SharedArgs::default().merge(Given::default(), &|k| std::env::var_os(k))
    }
}

/// The shared groups a subcommand takes after its name; `None` for a group it
/// does not take.
#[derive(Default, Clone, Copy)]
pub struct Given<'a> {
    /// Export options.
    pub export: Option<&'a ExportArgs>,
    /// Trust of an https:// endpoint.
    pub tls: Option<&'a TlsArgs>,
    /// This process's certificate.
    pub identity: Option<&'a IdentityArgs>,
    /// Metrics and logs.
    pub signals: Option<&'a SignalArgs>,
    /// Input files and prefix.
    pub files: Option<&'a FileArgs>,
    /// Tenant and service name.
    pub naming: Option<&'a NamingArgs>,
    /// Seed and clock.
    pub clock: Option<&'a ClockArgs>,
    /// -v / -q.
    pub verbosity: Option<&'a VerbosityArgs>,
}

impl SharedArgs {
    /// Merges the options given before the subcommand (`self`) with those after
    /// it: a value after the subcommand wins, lists are joined (before first),
    /// switches and -v add up; the file flags fall back to their variables.
    fn merge(
        &self,
        after: Given<'_>,
        env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> GlobalArgs {
        // A group the subcommand does not take counts as not given after it.
        let e = after.export.cloned().unwrap_or_default();
        let tls = after.tls.cloned().unwrap_or_default();
        let id = after.identity.cloned().unwrap_or_default();
        let sig = after.signals.cloned().unwrap_or_default();
        let files = after.files.cloned().unwrap_or_default();
        let naming = after.naming.cloned().unwrap_or_default();
        let clock = after.clock.cloned().unwrap_or_default();
        let verb = after.verbosity.cloned().unwrap_or_default();
        let (b, s) = (&self.export, &self.signals);
        let joined = |before: &[String], after: &[String]| [before, after].concat();
        let path_or_env = |a: &Option<PathBuf>, b: &Option<PathBuf>, var: &str| {
            a.clone()
                .or_else(|| b.clone())
                .or_else(|| env(var).map(PathBuf::from))
        };
        GlobalArgs {
            endpoint: e.endpoint.clone().or_else(|| b.endpoint.clone()),
            protocol: e.protocol.or(b.protocol),
            headers: joined(&b.headers, &e.headers),
            gzip: b.gzip || e.gzip,
            outputs: joined(&b.outputs, &e.outputs),
            output_file: e.output_file.clone().or_else(|| b.output_file.clone()),
            labels: e.labels.clone().or_else(|| b.labels.clone()),
            mask_pii: e.mask_pii
                || b.mask_pii
                || env("OTELSIM_MASK_PII").is_some_and(|v| {
                    matches!(
                        v.to_string_lossy().to_ascii_lowercase().as_str(),
                        "1" | "true" | "yes"
                    )
                }),
            retry_budget: e.retry_budget.or(b.retry_budget),
            request_timeout: e.request_timeout.or(b.request_timeout),
            wait_for_endpoint: e.wait_for_endpoint.or(b.wait_for_endpoint),
            connections: e.connections.or(b.connections),
            tls_ca: tls.tls_ca.or_else(|| self.tls.tls_ca.clone()),
            insecure: tls.insecure || self.tls.insecure,
            tls_cert: id.tls_cert.or_else(|| self.identity.tls_cert.clone()),
            tls_key: id.tls_key.or_else(|| self.identity.tls_key.clone()),
            metrics: sig.metrics || s.metrics,
            no_metrics: sig.no_metrics || s.no_metrics,
            logs: sig.logs || s.logs,
            no_logs: sig.no_logs || s.no_logs,
            temporality: sig
                .temporality
                .or(s.temporality)
                .unwrap_or(crate::metrics::Temporality::Cumulative),
            metrics_interval: sig
                .metrics_interval
                .or(s.metrics_interval)
                .unwrap_or(DEFAULT_METRICS_INTERVAL),
            config: path_or_env(&files.config, &self.files.config, "OTELSIM_CONFIG"),
            semconv: path_or_env(&files.semconv, &self.files.semconv, "SEMCONV"),
            scenarios_dir: path_or_env(
                &files.scenarios_dir,
                &self.files.scenarios_dir,
                "SCENARIOS_DIR",
            ),
            vendor: files
                .vendor
                .or_else(|| self.files.vendor.clone())
                .or_else(|| env("VENDOR").map(|v| v.to_string_lossy().into_owned())),
            tenant_id: naming.tenant_id.or_else(|| self.naming.tenant_id.clone()),
            service_name: naming
                .service_name
                .or_else(|| self.naming.service_name.clone()),
            genai_profile: naming
                .genai_profile
                .or_else(|| self.naming.genai_profile.clone())
                .or_else(|| env("OTELSIM_GENAI_PROFILE").map(|v| v.to_string_lossy().into_owned())),
            seed: clock.seed.or(self.clock.seed),
            start_time: clock.start_time.or_else(|| self.clock.start_time.clone()),
            verbose: verb.verbose.saturating_add(self.verbosity.verbose),
            quiet: verb.quiet || self.verbosity.quiet,
        }
    }

    /// The flags of the groups a subcommand does not take that were given before it,
    /// as `--flag` names: they would do nothing.
    pub fn unused(&self, takes: Given<'_>) -> Vec<&'static str> {
        let d = SharedArgs::default();
        let mut out = Vec::new();
        let mut add = |taken: bool, flags: &[(&'static str, bool)]| {
            if !taken {
                out.extend(flags.iter().filter(|(_, set)| *set).map(|(f, _)| *f));
            }
        };
        let (e, t, i, s, f, n, c, v) = (
            &self.export,
            &self.tls,
            &self.identity,
            &self.signals,
            &self.files,
            &self.naming,
            &self.clock,
            &self.verbosity,
        );
        add(
            takes.export.is_some(),
            &[
                ("--endpoint", e.endpoint.is_some()),
                ("--protocol", e.protocol.is_some()),
                ("--header", !e.headers.is_empty()),
                ("--gzip", e.gzip),
                ("--output", !e.outputs.is_empty()),
                ("--output-file", e.output_file.is_some()),
                ("--labels", e.labels.is_some()),
                ("--retry-budget", e.retry_budget.is_some()),
                ("--request-timeout", e.request_timeout.is_some()),
                ("--wait-for-endpoint", e.wait_for_endpoint.is_some()),
                ("--connections", e.connections.is_some()),
                ("--mask-pii", e.mask_pii),
            ],
        );
        add(
            takes.tls.is_some(),
            &[("--tls-ca", t.tls_ca.is_some()), ("--insecure", t.insecure)],
        );
        add(
            takes.identity.is_some(),
            &[
                ("--tls-cert", i.tls_cert.is_some()),
                ("--tls-key", i.tls_key.is_some()),
            ],
        );
        add(
            takes.signals.is_some(),
            &[
                ("--metrics", s.metrics),
                ("--no-metrics", s.no_metrics),
                ("--logs", s.logs),
                ("--no-logs", s.no_logs),
                ("--temporality", s.temporality.is_some()),
                ("--metrics-interval", s.metrics_interval.is_some()),
            ],
        );
        add(
            takes.files.is_some(),
            &[
                ("--config", f.config.is_some()),
                ("--semconv", f.semconv.is_some()),
                ("--scenarios-dir", f.scenarios_dir.is_some()),
                ("--vendor", f.vendor.is_some()),
            ],
        );
        add(
            takes.naming.is_some(),
            &[
                ("--tenant-id", n.tenant_id.is_some()),
                ("--service-name", n.service_name.is_some()),
                ("--genai-profile", n.genai_profile.is_some()),
            ],
        );
        add(
            takes.clock.is_some(),
            &[
                ("--seed", c.seed.is_some()),
                ("--start-time", c.start_time.is_some()),
            ],
        );
        add(
            takes.verbosity.is_some(),
            &[
                ("--verbose", v.verbose != d.verbosity.verbose),
                ("--quiet", v.quiet),
            ],
        );
        out
    }
}

impl GlobalArgs {
    /// Options that exclude each other when one came before the subcommand and the
    /// other after it (clap checks them within one place).
    pub fn conflict(&self) -> Option<&'static str> {
        if self.insecure && self.tls_ca.is_some() {
            Some("--insecure cannot be used with --tls-ca: it skips the verification --tls-ca configures")
        } else if self.metrics && self.no_metrics {
            Some("--metrics and --no-metrics contradict each other; give one")
        } else if self.logs && self.no_logs {
            Some("--logs and --no-logs contradict each other; give one")
        } else {
            None
        }
    }
}

/// `--metrics-interval` when not given.
const DEFAULT_METRICS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

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

/// A count: a whole number ≥ 0 (a negative one is named as such, not taken for a flag).
fn parse_count<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err("must be a non-negative count (0, 1, 2, …)".into());
    }
    t.parse::<T>()
        .map_err(|_| "expected a non-negative whole number (0, 1, 2, …)".to_string())
}

/// Milliseconds: a number; a negative one reaches the range check with its own message.
fn parse_ms(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| "expected milliseconds, e.g. 50 or 0.5".to_string())
}

impl Cli {
    /// Parses the process's arguments, or prints clap's message (a flag given
    /// after a subcommand that does not take it is named as such) and exits 2.
    pub fn parse_args() -> Self {
        match Self::try_parse_args(std::env::args_os()) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        }
    }

    /// [`Cli::parse_args`] over `args` (the program name first), without exiting.
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        Self::try_parse_from(&args).map_err(|e| refused_after_subcommand(e, &args))
    }

    /// The shared options in effect: those after the subcommand merged with those
    /// before it (see [`SharedArgs`]), the file flags falling back to their variables.
    pub fn global_flags(&self) -> GlobalArgs {
        self.global
            .merge(self.command.takes(), &|k| std::env::var_os(k))
    }

    /// Options given before the subcommand that it does not take.
    pub fn unused_flags(&self) -> Vec<&'static str> {
        self.global.unused(self.command.takes())
    }
}

/// Turns clap's "unexpected argument '--gzip'" after a subcommand into what it
/// is: an option of otelsim that does nothing with that subcommand.
fn refused_after_subcommand(e: clap::Error, args: &[std::ffi::OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return e;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    let flag = arg.split('=').next().unwrap_or(arg);
    let top = <Cli as clap::CommandFactory>::command();
    let known = top
        .get_arguments()
        .any(|a| a.get_long().is_some_and(|l| flag == format!("--{l}")));
    let sub = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find_map(|a| top.find_subcommand(a).map(|c| c.get_name().to_string()));
    match (known, sub) {
        (true, Some(sub)) => {
            let mut top = top;
            top.build();
            let mut cmd = top.find_subcommand(&sub).cloned().unwrap_or(top);
            let what = Command::purpose(&sub);
            cmd.error(
                ErrorKind::ArgumentConflict,
                format!("{flag} does nothing with `otelsim {sub}`{what}; `otelsim {sub} --help` lists what it takes"),
            )
        }
        _ => e,
    }
}

/// The subcommands, each with its own flags.
// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List scenarios: name, weight, tags and description (--long: everything about each).
    List(ListArgs),
    /// Run one scenario repeat_count times (or --count), honouring its interval.
    Scenario(ScenarioArgs),
    /// Run a weighted random mix of scenarios.
    Run(RunArgs),
    /// Load config, semconv and every definition; report every problem.
    Validate(ValidateArgs),
    /// otelsim's own OTLP receiver: counts what arrives and prints a summary on exit.
    Sink(SinkArgs),
    /// Measure the cost per span of generate, derive, encode (and send) on one thread.
    Bench(BenchArgs),
    /// Compare a run report with what `otelsim sink` received of that run (exit 0 verified,
    /// 5 differences).
    Verify(VerifyArgs),
    /// Statistics of an output file (OTLP/JSON lines or spans JSONL): traces, spans,
    /// services, operations, depth, reuse, error share per service, bytes.
    Stats(StatsArgs),
    /// Work with run reports: `otelsim report merge` joins the reports of a run's shards.
    Report(ReportArgs),
}

impl Command {
    /// The shared option groups this subcommand takes after its name.
    pub fn takes(&self) -> Given<'_> {
        match self {
            Command::Run(a) => Given {
                export: Some(&a.export),
                tls: Some(&a.tls),
                identity: Some(&a.identity),
                signals: Some(&a.signals),
                files: Some(&a.files),
                naming: Some(&a.naming),
                clock: Some(&a.clock),
                verbosity: Some(&a.verbosity),
            },
            Command::Scenario(a) => Given {
                export: Some(&a.export),
                tls: Some(&a.tls),
                identity: Some(&a.identity),
                signals: Some(&a.signals),
                files: Some(&a.files),
                naming: Some(&a.naming),
                clock: Some(&a.clock),
                verbosity: Some(&a.verbosity),
            },
            Command::List(a) => Given {
                files: Some(&a.files),
                naming: Some(&a.naming),
                verbosity: Some(&a.verbosity),
                ..Given::default()
            },
            Command::Validate(a) => Given {
                files: Some(&a.files),
                naming: Some(&a.naming),
                verbosity: Some(&a.verbosity),
                ..Given::default()
            },
            Command::Bench(a) => Given {
                files: Some(&a.files),
                naming: Some(&a.naming),
                clock: Some(&a.clock),
                verbosity: Some(&a.verbosity),
                ..Given::default()
            },
            Command::Verify(a) => Given {
                files: Some(&a.files),
                verbosity: Some(&a.verbosity),
                ..Given::default()
            },
            Command::Sink(a) => Given {
                identity: Some(&a.identity),
                ..Given::default()
            },
            Command::Stats(_) => Given::default(),
            Command::Report(a) => Given {
                verbosity: Some(a.verbosity()),
                ..Given::default()
            },
        }
    }

    /// The subcommand's name.
    pub fn name(&self) -> &'static str {
        match self {
            Command::List(_) => "list",
            Command::Scenario(_) => "scenario",
            Command::Run(_) => "run",
            Command::Validate(_) => "validate",
            Command::Sink(_) => "sink",
            Command::Bench(_) => "bench",
            Command::Verify(_) => "verify",
            Command::Stats(_) => "stats",
            Command::Report(_) => "report",
        }
    }

    /// Why options do nothing with subcommand `name`, as a clause after its name.
    pub fn purpose(name: &str) -> &'static str {
        match name {
            "sink" => " (it listens: use --grpc-addr / --http-addr, and --tls-client-ca to verify clients)",
            "verify" | "report" => " (it reads reports)",
            "stats" => " (it reads an output file)",
            "bench" => " (it sends nothing, or only to its own sink with --to sink)",
            "list" | "validate" => " (it reads the scenario files only)",
            _ => "",
        }
    }
}

/// Flags of `otelsim stats`: the file to read and how to print what it holds.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// An otelsim output file: OTLP/JSON lines (otlp-json:PATH) or spans JSONL (spans-jsonl:PATH)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the statistics as JSON (a file like seed 002's phase0_metadata)
    #[arg(long)]
    pub json: bool,
}

/// Flags of `otelsim verify`: the two reports to compare and what to do with the verdict.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The run report (`otelsim run --report FILE`)
    #[arg(value_name = "RUN_REPORT")]
    pub run_report: PathBuf,
    /// The sink's summary (`otelsim sink --summary-file FILE`), written after the run
    #[arg(long, value_name = "PATH")]
    pub sink_report: PathBuf,
    /// Also write the verdict with every difference as JSON here
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Accept a verdict limited by the sink's --max-tracked-spans or the report's trace list
    /// (totals still compared) instead of failing it
    #[arg(long)]
    pub allow_partial: bool,
    /// The conventions to check enums against [default: those the run report names].
    #[command(flatten)]
    pub files: FileArgs,
    /// -v / -q.
    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

/// `otelsim report ACTION`: what to do with run reports.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ReportAction,
}

impl ReportArgs {
    /// -v / -q of the action.
    pub fn verbosity(&self) -> &VerbosityArgs {
        match &self.action {
            ReportAction::Merge(m) => &m.verbosity,
        }
    }
}

/// The actions of `otelsim report`.
#[derive(Subcommand, Debug)]
pub enum ReportAction {
    /// Join the run reports of a run's shards (`run --shard`, `--report`) into one run report on
    /// stdout, for `otelsim verify`; a shard whose report is not given is listed as missing.
    Merge(MergeArgs),
}

/// Flags of `otelsim report merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The shards' run reports (`otelsim run --shard I/N --report FILE`), in any order
    #[arg(value_name = "RUN_REPORT", required = true)]
    pub reports: Vec<PathBuf>,
    /// -v / -q.
    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

/// Flags of `otelsim bench`: how much to generate, and whether to encode it.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Spans to generate (the bundled mixed workload, weighted)
    #[arg(long, default_value_t = 1_000_000, value_parser = parse_count::<u64>, value_name = "N", allow_negative_numbers = true)]
    pub spans: u64,
    /// Generate only; skip OTLP encoding
    #[arg(long)]
    pub no_encode: bool,
    /// Which signals: traces, or all (traces, and the metrics and log records derived from
    /// them, as a run makes by default)
    #[arg(long, value_enum, default_value = "traces", value_name = "SIGNALS")]
    pub signals: crate::bench::BenchSignals,
    /// Where the requests go: null (encoded, then dropped) or sink (an `otelsim sink` child
    /// process on 127.0.0.1, one request at a time)
    #[arg(long, value_enum, default_value = "null", value_name = "TO")]
    pub to: crate::bench::BenchTo,
    /// The protocol with --to sink [default: http]
    #[arg(long, value_enum, value_name = "PROTOCOL")]
    pub protocol: Option<crate::bench::BenchProtocol>,
    /// Also write the report as JSON here
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Seed and clock.
    #[command(flatten)]
    pub clock: ClockArgs,
    /// Input files.
    #[command(flatten)]
    pub files: FileArgs,
    /// Tenant and service name.
    #[command(flatten)]
    pub naming: NamingArgs,
    /// -v / -q.
    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

/// Flags of `otelsim list`: which scenarios to list, and how much of each.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only scenarios with any of these tags (comma-separated, case-insensitive)
    #[arg(long, value_delimiter = ',', value_name = "TAG,...")]
    pub tags: Vec<String>,
    /// Everything about each scenario: the whole description, tags, weight, file, what it
    /// emits, and the hidden ones too
    #[arg(long, short = 'l')]
    pub long: bool,
    /// Only these scenarios (with --long: show them whole), hidden ones included
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Input files.
    #[command(flatten)]
    pub files: FileArgs,
    /// Tenant and service name.
    #[command(flatten)]
    pub naming: NamingArgs,
    /// -v / -q.
    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

/// Flags of `scenario` and `run` that print each trace as it is generated.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Display")]
pub struct ShowArgs {
    /// Print each trace as a tree: name, duration, status
    #[arg(long)]
    pub show_spans: bool,
    /// Like --show-spans plus every attribute and event of every span
    #[arg(long, alias = "show-all-attributes")]
    pub show_full_spans: bool,
}

/// How the parts of a request (control plane, agent turn) become traces (`run`, `scenario`).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Scenarios")]
pub struct FlowArgs {
    /// single: a request's control-plane and agent parts are one trace (for UIs that group by
    /// trace); linked: one trace per part, linked [default: config control_plane.trace_flow_mode]
    // The values are named in the text: their own docs would switch --help to the long layout.
    #[arg(long, value_enum, value_name = "FLOW", hide_possible_values = true)]
    pub trace_flow: Option<crate::run::TraceFlow>,
}

/// Flags of `otelsim scenario`: the scenario, how many times and how often.
#[derive(Args, Debug)]
pub struct ScenarioArgs {
    /// Scenario name (its file stem; `otelsim list` shows them)
    #[arg(long, short = 'n')]
    pub name: String,
    /// Iterations [default: the scenario's repeat_count]
    #[arg(long, value_parser = parse_count::<u64>, value_name = "N", allow_negative_numbers = true, help_heading = "Load")]
    pub count: Option<u64>,
    /// Milliseconds between iterations [default: the scenario's interval_ms ±
    /// interval_deviation_ms]
    #[arg(long, value_name = "MS", value_parser = parse_ms, allow_negative_numbers = true, help_heading = "Load")]
    pub interval: Option<f64>,
    /// Seed and clock.
    #[command(flatten)]
    pub clock: ClockArgs,
    /// Input files.
    #[command(flatten)]
    pub files: FileArgs,
    /// Tenant and service name.
    #[command(flatten)]
    pub naming: NamingArgs,
    /// How a request's traces are cut.
    #[command(flatten)]
    pub flow: FlowArgs,
    /// Metrics and logs.
    #[command(flatten)]
    pub signals: SignalArgs,
    /// Export.
    #[command(flatten)]
    pub export: ExportArgs,
    /// Trust of an https:// endpoint.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Client certificate.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Printing each trace as it is generated.
    #[command(flatten)]
    pub show: ShowArgs,
    /// -v / -q.
    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

/// Flags of `otelsim run`: how many picks, at what rate or load shape, for how long, and the
/// report.
#[derive(Args, Debug)]
#[command(after_help = RUN_AFTER_HELP)]
pub struct RunArgs {
    /// Scenario picks (each one request, or one session for multi-turn) [default: 100;
    /// unlimited with --duration or a load shape]
    #[arg(long, value_parser = parse_count::<u64>, value_name = "N", allow_negative_numbers = true, help_heading = "Load")]
    pub count: Option<u64>,
    /// Milliseconds between picks; ignored with a load shape (--rate, --stages,
    /// --load-profile)
    #[arg(long, default_value_t = 500.0, value_name = "MS", value_parser = parse_ms, allow_negative_numbers = true, help_heading = "Load")]
    pub interval: f64,
    /// Target rate per second (of traces, or spans with --unit spans) on an open-loop
    /// schedule; lag and shortfall are reported
    #[arg(long, value_name = "PER_S", conflicts_with_all = ["stages", "load_profile"], allow_negative_numbers = true, help_heading = "Load")]
    pub rate: Option<f64>,
    /// Linear ramps, k6-style: `30s:100,2m:2000,30s:0`; `0s:500` is a step; the run ends with
    /// the last stage
    #[arg(
        long,
        value_name = "STAGES",
        conflicts_with = "load_profile",
        help_heading = "Load"
    )]
    pub stages: Option<String>,
    /// Periodic bursts on top of the shape: `5x:10s/1m` is ×5 for 10 s of every minute
    #[arg(long, value_name = "BURST", help_heading = "Load")]
    pub burst: Option<String>,
    /// Load shape from a YAML file (rate or stages, burst, unit)
    #[arg(long, value_name = "PATH", help_heading = "Load")]
    pub load_profile: Option<PathBuf>,
    /// What --rate, --stages and profile targets count: traces or spans [default: traces]
    // The values are named in the text: their own docs would switch --help to the long layout.
    #[arg(
        long,
        value_enum,
        value_name = "UNIT",
        hide_possible_values = true,
        help_heading = "Load"
    )]
    pub unit: Option<crate::pace::RateUnit>,
    /// Stop after this long on the run's clock (e.g. 60s, 5m)
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", help_heading = "Load")]
    pub duration: Option<std::time::Duration>,
    /// Concurrent generators taking turns on one schedule [default: cores (less 1 to a
    /// loopback endpoint); 1 with --interval > 0, span printers, a file or --start-time; max 1024]
    #[arg(long, value_name = "N", value_parser = parse_count::<usize>, allow_negative_numbers = true, help_heading = "Load")]
    pub workers: Option<usize>,
    /// Make only shard I of N of the run (needs --seed). Env: OTELSIM_SHARDS
    #[arg(long, value_name = "I/N", help_heading = "Load")]
    pub shard: Option<String>,
    /// Exporter: native (lossless) or sdk (the OTel SDK's batcher: traces only, drops counted)
    #[arg(
        long,
        value_enum,
        default_value = "native",
        hide_possible_values = true,
        help_heading = "Load"
    )]
    pub engine: crate::run::Engine,
    /// Start each pick when it is due and export every span when it ends, on the wall clock,
    /// instead of back-dating whole picks
    #[arg(long, conflicts_with = "backfill", help_heading = "Timing")]
    pub realtime: bool,
    /// Spread the timestamps over this past window (e.g. 24h), generated as fast as possible
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", help_heading = "Timing")]
    pub backfill: Option<std::time::Duration>,
    /// Seed and clock.
    #[command(flatten)]
    pub clock: ClockArgs,
    /// Only scenarios with any of these tags (comma-separated, case-insensitive; `otelsim
    /// list` shows them)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "TAG,...",
        help_heading = "Scenarios"
    )]
    pub tags: Vec<String>,
    /// Run every (filtered) scenario exactly once, ignoring weights and --count
    #[arg(long, help_heading = "Scenarios")]
    pub each_once: bool,
    /// Let config `workload_schedules.NAME` choose the mix by the local hour of each pick on
    /// the run's clock [default NAME: default; off without the flag]. Env:
    /// OTELSIM_WORKLOAD_SCHEDULE
    #[arg(
        long,
        value_name = "NAME",
        num_args = 0..=1,
        default_missing_value = "default",
        conflicts_with = "each_once",
        help_heading = "Scenarios"
    )]
    pub workload_schedule: Option<String>,
    /// Input files.
    #[command(flatten)]
    pub files: FileArgs,
    /// Tenant and service name.
    #[command(flatten)]
    pub naming: NamingArgs,
    /// How a request's traces are cut.
    #[command(flatten)]
    pub flow: FlowArgs,
    /// Metrics and logs.
    #[command(flatten)]
    pub signals: SignalArgs,
    /// Export.
    #[command(flatten)]
    pub export: ExportArgs,
    /// Trust of an https:// endpoint.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Client certificate.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Write the run report (counts per signal and scenario, rates, lag, settings) as JSON here
    #[arg(long, value_name = "PATH", help_heading = "Report")]
    pub report: Option<PathBuf>,
    /// Run id on every resource as `otelsim.run.id` [default: random, or derived from --seed
    /// and --start-time]
    #[arg(long, value_name = "ID", help_heading = "Report")]
    pub run_id: Option<String>,
    /// Exit 4 when the achieved rate or the delivered share falls short, or the rate goes
    /// above the target, by more than this (e.g. 0.01 or 1%)
    #[arg(long, value_parser = parse_fraction, value_name = "FRACTION", help_heading = "Report")]
    pub max_shortfall: Option<f64>,
    /// Printing each trace as it is generated.
    #[command(flatten)]
    pub show: ShowArgs,
    /// -v / -q.
    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

impl RunArgs {
    /// `--workload-schedule [NAME]`, else `OTELSIM_WORKLOAD_SCHEDULE` (an empty value
    /// counts as unset); `None`: the run picks by `workload_weight` alone.
    pub fn workload_schedule_name(
        &self,
        env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Option<String> {
        self.workload_schedule.clone().or_else(|| {
            env("OTELSIM_WORKLOAD_SCHEDULE")
                .map(|v| v.to_string_lossy().trim().to_string())
                .filter(|v| !v.is_empty())
        })
    }
}

/// Flags of `otelsim validate`: what to print besides the diagnostics.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Also print the span names and attribute enums the semconv file defines
    #[arg(long)]
    pub show_schema: bool,
    /// Make every unknown key in a scenario file an error (a warning otherwise)
    #[arg(long)]
    pub strict: bool,
    /// Input files.
    #[command(flatten)]
    pub files: FileArgs,
    /// Tenant and service name.
    #[command(flatten)]
    pub naming: NamingArgs,
    /// -v / -q.
    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

/// Flags of `otelsim sink`: listen addresses, limits, the summary file and fault injection.
#[derive(Args, Debug)]
pub struct SinkArgs {
    /// gRPC listen address
    #[arg(long, default_value = "127.0.0.1:4317", value_name = "ADDR")]
    pub grpc_addr: SocketAddr,
    /// HTTP (OTLP/HTTP protobuf and JSON) listen address
    #[arg(long, default_value = "127.0.0.1:4318", value_name = "ADDR")]
    pub http_addr: SocketAddr,
    /// Write the final summary as JSON here
    #[arg(long, value_name = "PATH")]
    pub summary_file: Option<PathBuf>,
    /// Stop by itself after this long (e.g. 30s, 5m) [default: until Ctrl-C / SIGTERM]
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub duration: Option<std::time::Duration>,
    /// Largest accepted request, in bytes (after decompression)
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_request_bytes: usize,
    /// Spans of otelsim runs checked trace by trace for `otelsim verify` (about 100 bytes
    /// each); beyond this they are only counted
    #[arg(long, default_value_t = crate::sink::runs::DEFAULT_MAX_TRACKED_SPANS, value_name = "N")]
    pub max_tracked_spans: usize,
    /// Server certificate and key: with both, TLS on both listeners.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Require client certificates signed by this PEM CA bundle (mTLS); needs --tls-cert and
    /// --tls-key
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub tls_client_ca: Option<PathBuf>,
    /// Refuse the first N requests as retryable (see --reject-with)
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = parse_count::<u64>, allow_negative_numbers = true, help_heading = "Fault injection")]
    pub reject_first: u64,
    /// How refused requests are answered: 503 (gRPC UNAVAILABLE) or 429 (gRPC
    /// RESOURCE_EXHAUSTED)
    #[arg(
        long,
        value_enum,
        default_value = "503",
        help_heading = "Fault injection"
    )]
    pub reject_with: crate::sink::RejectWith,
    /// Retry hint sent with each refusal (HTTP Retry-After, gRPC RetryInfo), e.g. 1s
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", help_heading = "Fault injection")]
    pub retry_after: Option<std::time::Duration>,
    /// Answer the first N trace requests with a partial success, refusing one span each
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = parse_count::<u64>, allow_negative_numbers = true, help_heading = "Fault injection")]
    pub partial_first: u64,
}
