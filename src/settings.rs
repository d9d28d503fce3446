//! Effective settings: flags beat environment beats files beat built-in defaults.
//!
//! The environment is passed in as a lookup function so precedence can be tested
//! without touching the process environment.

use crate::cli::GlobalArgs;
use crate::export::{ExportConfig, Protocol};
use crate::registry::Sources;
use crate::tls::{ClientTls, Source};
use anyhow::{bail, Result};
use std::fmt;
use std::path::{Path, PathBuf};

/// What a command runs with: the global flags resolved against the environment and defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where config, semconv and scenarios are read from.
    pub sources: Sources,
    /// Where the telemetry goes (`--output`, then `--output-file`); `[otlp]` when
    /// neither is given. `export.output_file` is the first file output (what reports record).
    pub outputs: Vec<OutputSpec>,
    /// The path of `--output-file` (also in `outputs`), so messages name the flag as given.
    pub output_file_flag: Option<PathBuf>,
    /// `--labels`: where the events-jsonl writer puts the ground truth of its sessions.
    pub labels: Option<PathBuf>,
    /// How the OTLP output sends (the first file output, if any, as its `output_file`).
    pub export: ExportConfig,
    /// Attribute and span-name prefix (`--vendor` / `VENDOR`, default `vendor`), lower-cased.
    pub vendor: String,
    /// `service.name` of the planes (`--service-name` / `OTEL_SERVICE_NAME`).
    pub service_name: Option<String>,
    /// `--tenant-id`: the tenant of every scenario.
    pub tenant_id: Option<String>,
    /// `--genai-profile` / `OTELSIM_GENAI_PROFILE`: which attribute families describe GenAI work.
    pub genai_profile: crate::generate::GenAiProfile,
    /// `OTEL_RESOURCE_ATTRIBUTES` pairs, added to every resource.
    pub resource_attrs: Vec<(String, String)>,
    /// `--seed`; `None`: a random seed per run.
    pub seed: Option<u64>,
    /// Virtual start time in Unix nanoseconds.
    pub start_time_ns: Option<u64>,
    /// `-v` count: from 1, one line per request and the load warnings.
    pub verbose: u8,
    /// `-q`: only errors.
    pub quiet: bool,
    /// `Some` when --metrics / --no-metrics overrides each scenario's `emit_metrics`.
    pub metrics: Option<bool>,
    /// `Some` when --logs / --no-logs overrides each scenario's `emit_logs`.
    pub logs: Option<bool>,
    /// `--mask-pii`: personal data is masked in every output.
    pub mask_pii: bool,
    /// `--temporality`: whether metric points are cumulative (the default) or deltas.
    pub temporality: crate::metrics::Temporality,
    /// How often metrics are collected and exported, on the run's clock.
    pub metrics_interval: std::time::Duration,
}

/// One `--output KIND[:PATH]`: where a run's telemetry goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    /// `otlp` (send to the endpoint) or `otlp-json` (write a file).
    pub kind: OutputKind,
    /// The file written (`otlp-json`); `None` for `otlp`, which sends to the endpoint.
    pub path: Option<PathBuf>,
}

/// The kinds of output `--output` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// OTLP to the endpoint (`--endpoint`, `--protocol`).
    Otlp,
    /// OTLP/JSON lines, one export request per line, to a file.
    OtlpJson,
    /// Agent event logs: a folder per session with `metadata.json` and `events.jsonl`
    /// (the path is config `agent_trace.trace_dir` when none is given).
    AgentTrace,
    /// Minimal instability events, one JSON object per span, to a file.
    EventsJsonl,
    /// One span per line in seed 002's data model, to a file.
    SpansJsonl,
    /// One JSON document per session (seed 001's structure) in a folder.
    SessionJson,
    /// A DuckDB database of sessions, timesteps, events and messages (the `duckdb` cargo feature).
    Duckdb,
}

/// Said after every `--output` error.
const OUTPUT_KINDS: &str =
    "valid kinds: otlp (send to the endpoint), otlp-json:PATH (OTLP/JSON lines to PATH), spans-jsonl:PATH (one span per line, seed 002's data model), agent-trace[:DIR] (agent event logs, a folder per session), events-jsonl:PATH (minimal instability events), session-json:DIR (one JSON document per session), duckdb:FILE (a DuckDB session store)";

impl OutputSpec {
    /// Send to the endpoint: the default output.
    pub fn otlp() -> Self {
        OutputSpec {
            kind: OutputKind::Otlp,
            path: None,
        }
    }

    /// Write OTLP/JSON lines to `path`.
    pub fn otlp_json(path: impl Into<PathBuf>) -> Self {
        OutputSpec {
            kind: OutputKind::OtlpJson,
            path: Some(path.into()),
        }
    }
}

impl OutputKind {
    /// Whether it writes log records and metrics (the OTLP outputs); the others
    /// write spans, or views derived from them, only.
    pub fn writes_logs_and_metrics(self) -> bool {
        matches!(self, OutputKind::Otlp | OutputKind::OtlpJson)
    }
}

impl fmt::Display for OutputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputKind::Otlp => "otlp",
            OutputKind::OtlpJson => "otlp-json",
            OutputKind::AgentTrace => "agent-trace",
            OutputKind::EventsJsonl => "events-jsonl",
            OutputKind::SpansJsonl => "spans-jsonl",
            OutputKind::SessionJson => "session-json",
            OutputKind::Duckdb => "duckdb",
        })
    }
}

/// `kind` or `kind:path`, as the flag takes it.
impl fmt::Display for OutputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{}:{}", self.kind, p.display()),
            None => write!(f, "{}", self.kind),
        }
    }
}

/// `otlp` or `otlp-json:PATH`; the error says what is wrong and lists the kinds.
impl std::str::FromStr for OutputSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, path) = match s.split_once(':') {
            Some((k, p)) => (k, Some(p)),
            None => (s, None),
        };
        match (kind.trim(), path) {
            ("otlp", None) => Ok(OutputSpec::otlp()),
            ("otlp", Some(_)) => Err(format!(
                "otlp sends to the endpoint and takes no path; {OUTPUT_KINDS}"
            )),
            ("otlp-json", Some(p)) if !p.is_empty() => Ok(OutputSpec::otlp_json(p)),
            ("otlp-json", _) => Err(format!("otlp-json needs a path; {OUTPUT_KINDS}")),
            ("agent-trace", Some(p)) if !p.is_empty() => Ok(OutputSpec {
                kind: OutputKind::AgentTrace,
                path: Some(p.into()),
            }),
            // The folder comes from config `agent_trace.trace_dir`.
            ("agent-trace", _) => Ok(OutputSpec {
                kind: OutputKind::AgentTrace,
                path: None,
            }),
            ("events-jsonl", Some(p)) if !p.is_empty() => Ok(OutputSpec {
                kind: OutputKind::EventsJsonl,
                path: Some(p.into()),
            }),
            ("events-jsonl", _) => Err(format!("events-jsonl needs a path; {OUTPUT_KINDS}")),
            ("spans-jsonl", Some(p)) if !p.is_empty() => Ok(OutputSpec {
                kind: OutputKind::SpansJsonl,
                path: Some(p.into()),
            }),
            ("spans-jsonl", _) => Err(format!("spans-jsonl needs a path; {OUTPUT_KINDS}")),
            ("session-json", Some(p)) if !p.is_empty() => Ok(OutputSpec {
                kind: OutputKind::SessionJson,
                path: Some(p.into()),
            }),
            ("session-json", _) => Err(format!("session-json needs a folder; {OUTPUT_KINDS}")),
            ("duckdb", Some(p)) if !p.is_empty() => Ok(OutputSpec {
                kind: OutputKind::Duckdb,
                path: Some(p.into()),
            }),
            ("duckdb", _) => Err(format!("duckdb needs a database file; {OUTPUT_KINDS}")),
            (other, _) => Err(format!("unknown kind `{other}`; {OUTPUT_KINDS}")),
        }
    }
}

/// The outputs of `--output` (in order) and `--output-file` (its synonym for
/// `otlp-json:PATH`); `[otlp]` when neither is given. The same file twice, or
/// more than one output, is refused.
fn resolve_outputs(given: &[String], output_file: Option<&Path>) -> Result<Vec<OutputSpec>> {
    let mut outputs = Vec::new();
    for raw in given {
        match raw.parse::<OutputSpec>() {
            Ok(o) => outputs.push(o),
            Err(e) => bail!("--output `{raw}`: {e}"),
        }
    }
    let synonym_at = output_file.map(|p| {
        outputs.push(OutputSpec::otlp_json(p));
        outputs.len() - 1
    });
    if outputs.is_empty() {
        outputs.push(OutputSpec::otlp());
    }
    let named = |i: usize| match (&outputs[i].path, synonym_at == Some(i)) {
        (Some(p), true) => format!("--output-file {}", p.display()),
        _ => format!("--output {}", outputs[i]),
    };
    for (i, o) in outputs.iter().enumerate() {
        let Some(j) = outputs[..i].iter().position(|e| same_target(e, o)) else {
            continue;
        };
        if o.path.is_none() {
            bail!("--output {o} is given twice");
        }
        bail!(
            "{} and {} write the same file; each output needs its own file",
            named(j),
            named(i)
        );
    }
    Ok(outputs)
}

/// Two outputs that would write to the same place: the endpoint twice, or one file
/// under two spellings (`a.jsonl`, `./a.jsonl`, a path through a symlink).
fn same_target(a: &OutputSpec, b: &OutputSpec) -> bool {
    match (&a.path, &b.path) {
        (None, None) => a.kind == b.kind,
        (Some(x), Some(y)) => file_key(x) == file_key(y),
        _ => false,
    }
}

/// A file's path with its folder resolved; the file itself need not exist yet.
fn file_key(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or_else(|_| abs.clone()),
        _ => abs,
    }
}

/// Parses `k=v,k2=v2` (the OTEL_* list format, values percent-decoded).
pub fn parse_kv_list(s: &str) -> Result<Vec<(String, String)>> {
    parse_kv(s, false)
}

/// [`parse_kv_list`] for headers: an item that does not parse is never quoted
/// beyond what names its key (its value may be a credential).
pub fn parse_header_list(s: &str) -> Result<Vec<(String, String)>> {
    parse_kv(s, true)
}

fn parse_kv(s: &str, secret: bool) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            if secret {
                bail!(
                    "`{}` is not KEY=VALUE (the value is not shown), e.g. authorization=Bearer%20<token>",
                    crate::export::redact_item(item)
                );
            }
            bail!("`{item}` is not KEY=VALUE");
        };
        out.push((percent_decode(k.trim()), percent_decode(v.trim())));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The exporter's TLS settings: flag, else the standard OTel variable. TLS
/// applies to `https://` endpoints only; TLS file flags without one are refused
/// (they would do nothing), the variables are then ignored, as OTel SDKs do.
fn resolve_tls(
    g: &GlobalArgs,
    env: &dyn Fn(&str) -> Option<String>,
    endpoint: &str,
    signal_endpoints: &[Option<String>; 3],
    outputs: &[OutputSpec],
) -> Result<ClientTls> {
    let source = |flag: &Option<std::path::PathBuf>, name: &str, var: &str| match flag {
        Some(p) => Some(Source::new(name, p)),
        None => env(var).map(|v| Source::new(var, v.trim())),
    };
    let flags: Vec<&str> = [
        ("--tls-ca", g.tls_ca.is_some()),
        ("--tls-cert", g.tls_cert.is_some()),
        ("--tls-key", g.tls_key.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect();
    let https = std::iter::once(endpoint)
        .chain(signal_endpoints.iter().flatten().map(String::as_str))
        .any(crate::tls::is_https);
    let sends = outputs.iter().any(|o| o.kind == OutputKind::Otlp);
    if !sends || !https {
        if !flags.is_empty() {
            let without = if sends {
                format!(
                    "without an https:// endpoint (the endpoint is {})",
                    crate::export::redact_url(endpoint)
                )
            } else if g.output_file.is_some() {
                "with --output-file".to_string()
            } else {
                let given: Vec<String> = outputs.iter().map(|o| format!("--output {o}")).collect();
                format!("with {}", given.join(", "))
            };
            bail!(
                "{} only apply to TLS and do nothing {without}",
                flags.join(", ")
            );
        }
        return Ok(ClientTls::default());
    }
    ClientTls::load(
        source(&g.tls_ca, "--tls-ca", "OTEL_EXPORTER_OTLP_CERTIFICATE"),
        source(
            &g.tls_cert,
            "--tls-cert",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        ),
        source(&g.tls_key, "--tls-key", "OTEL_EXPORTER_OTLP_CLIENT_KEY"),
        g.insecure,
    )
}

/// `--request-timeout`, else `OTELSIM_REQUEST_TIMEOUT`: between 1 ms and 1 h;
/// `None` when neither is given.
fn resolve_request_timeout(
    g: &GlobalArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<std::time::Duration>> {
    let (what, timeout) = match (g.request_timeout, env("OTELSIM_REQUEST_TIMEOUT")) {
        (Some(t), _) => ("--request-timeout".to_string(), t),
        (None, Some(v)) => {
            let what = format!("OTELSIM_REQUEST_TIMEOUT=`{}`", v.trim());
            match humantime::parse_duration(v.trim()) {
                Ok(t) => (what, t),
                Err(e) => bail!("{what}: {e}; expected a duration such as 30s or 1m"),
            }
        }
        (None, None) => return Ok(None),
    };
    if timeout < std::time::Duration::from_millis(1)
        || timeout > std::time::Duration::from_secs(3600)
    {
        bail!("{what}: must be between 1ms and 1h (e.g. 30s)");
    }
    Ok(Some(timeout))
}

/// RFC 3339 (`2026-01-01T00:00:00Z`) or Unix seconds (may be fractional), between
/// 2000-01-01 and 2200-01-01 (earlier or later anchors make no sense for telemetry
/// and would push timestamp arithmetic out of range).
pub fn parse_start_time(s: &str) -> Result<u64> {
    const MIN_S: f64 = 946_684_800.0; // 2000-01-01T00:00:00Z
    const MAX_S: f64 = 7_258_118_400.0; // 2200-01-01T00:00:00Z
    let secs = match s.trim().parse::<f64>() {
        Ok(secs) => secs,
        Err(_) => match humantime::parse_rfc3339_weak(s.trim()) {
            Ok(t) => t
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(-1.0, |d| d.as_secs_f64()),
            Err(_) => bail!(
                "--start-time `{s}`: expected RFC 3339 (e.g. 2026-01-01T00:00:00Z) or Unix seconds"
            ),
        },
    };
    if !(MIN_S..=MAX_S).contains(&secs) {
        bail!("--start-time `{s}`: must lie between 2000-01-01 and 2200-01-01");
    }
    Ok((secs * 1e9) as u64)
}

impl Settings {
    /// Whether an output sends OTLP to the endpoint.
    pub fn sends_otlp(&self) -> bool {
        self.outputs.iter().any(|o| o.kind == OutputKind::Otlp)
    }

    /// The files the outputs write.
    pub fn output_files(&self) -> impl Iterator<Item = &Path> {
        self.outputs.iter().filter_map(|o| o.path.as_deref())
    }

    /// `o` as it was given, for messages: `--output-file PATH` or `--output KIND[:PATH]`.
    pub fn output_flag(&self, o: &OutputSpec) -> String {
        match &o.path {
            Some(p) if Some(p) == self.output_file_flag.as_ref() => {
                format!("--output-file {}", p.display())
            }
            _ => format!("--output {o}"),
        }
    }

    /// Resolves the flags `g` against the environment `env` (flags win); fails on invalid
    /// values.
    pub fn resolve(g: &GlobalArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings> {
        let env_nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let protocol = match g.protocol {
            Some(p) => p,
            None => match env_nonempty("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| env_nonempty("OTEL_EXPORTER_OTLP_PROTOCOL")) {
                Some(p) => match Protocol::parse(&p) {
                    Some(p) => p,
                    None => bail!("OTEL_EXPORTER_OTLP_PROTOCOL=`{p}`: expected grpc, http/protobuf or http/json"),
                },
                // The predecessor's variable implies OTLP/HTTP.
                None if env_nonempty("OTLP_HTTP_ENDPOINT").is_some() && g.endpoint.is_none() && env_nonempty("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() => Protocol::HttpProtobuf,
                None => Protocol::Grpc,
            },
        };
        // Signal-specific endpoints are full URLs, used as they are (OTel exporter spec);
        // --endpoint overrides all of them.
        let signal_endpoints = if g.endpoint.is_some() {
            [None, None, None]
        } else {
            [
                env_nonempty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                env_nonempty("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
                env_nonempty("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
            ]
        };
        let endpoint = g
            .endpoint
            .clone()
            .or_else(|| env_nonempty("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .or_else(|| {
                if protocol == Protocol::Grpc {
                    None
                } else {
                    env_nonempty("OTLP_HTTP_ENDPOINT")
                }
            })
            .unwrap_or_else(|| protocol.default_endpoint().to_string());

        let mut headers: Vec<(String, String)> = match env_nonempty("OTEL_EXPORTER_OTLP_HEADERS") {
            Some(h) => parse_header_list(&h)
                .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_HEADERS: {e}"))?,
            None => Vec::new(),
        };
        for h in &g.headers {
            let Some((k, v)) = h.split_once('=') else {
                bail!(
                    "--header `{}`: expected KEY=VALUE (the value is not shown), e.g. --header \"authorization=Bearer <token>\"",
                    crate::export::redact_item(h)
                );
            };
            headers.retain(|(ek, _)| !ek.eq_ignore_ascii_case(k.trim()));
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let outputs = resolve_outputs(&g.outputs, g.output_file.as_deref())?;
        // A signal asked for by name must arrive somewhere.
        if !outputs.iter().any(|o| o.kind.writes_logs_and_metrics()) {
            if let Some(flag) = [(g.metrics, "--metrics"), (g.logs, "--logs")]
                .into_iter()
                .find_map(|(asked, flag)| asked.then_some(flag))
            {
                let list: Vec<String> = outputs.iter().map(|o| o.to_string()).collect();
                anyhow::bail!(
                    "{flag}: none of the outputs ({}) writes log records or metrics; add `--output otlp` or `--output otlp-json:PATH`, or leave {flag} out",
                    list.join(", ")
                );
            }
        }
        // The first file output: what checks of "a file run" and the report look at (each
        // output gets its own copy of this config in run::runner).
        let output_file = outputs.iter().find_map(|o| o.path.clone());
        let tls = resolve_tls(g, &env_nonempty, &endpoint, &signal_endpoints, &outputs)?;
        let gzip = g.gzip
            || env_nonempty("OTEL_EXPORTER_OTLP_COMPRESSION")
                .is_some_and(|c| c.eq_ignore_ascii_case("gzip"));

        let resource_attrs = match env_nonempty("OTEL_RESOURCE_ATTRIBUTES") {
            Some(r) => {
                parse_kv_list(&r).map_err(|e| anyhow::anyhow!("OTEL_RESOURCE_ATTRIBUTES: {e}"))?
            }
            None => Vec::new(),
        };
        let service_name = g
            .service_name
            .clone()
            .or_else(|| env_nonempty("OTEL_SERVICE_NAME"));

        for (what, path) in [("--semconv / SEMCONV", &g.semconv), ("--config", &g.config)] {
            if let Some(p) = path {
                if let Err(why) = crate::input_file::check(p, crate::input_file::MAX_YAML_BYTES) {
                    bail!("{what}: file {} {why}", p.display());
                }
            }
        }
        if g.retry_budget
            .is_some_and(|b| b.is_zero() || b > std::time::Duration::from_secs(3600))
        {
            bail!("--retry-budget must be between 1ms and 1h");
        }
        let retry_budget = g
            .retry_budget
            .unwrap_or(ExportConfig::default().retry_budget);
        let request_timeout = resolve_request_timeout(g, &env_nonempty)?;
        let vendor = g
            .vendor
            .clone()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "vendor".into())
            .to_ascii_lowercase();
        if !vendor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("--vendor / VENDOR `{vendor}`: use letters, digits, `_` or `-` (it becomes the attribute prefix)");
        }
        Ok(Settings {
            sources: Sources {
                config: g.config.clone(),
                semconv: g.semconv.clone(),
                scenarios_dir: g.scenarios_dir.clone(),
            },
            outputs,
            output_file_flag: g.output_file.clone(),
            labels: g.labels.clone(),
            export: ExportConfig {
                endpoint,
                protocol,
                headers,
                gzip,
                output_file,
                signal_endpoints,
                retry_budget,
                // Today's cap unless given: the retry budget, at most 10 s.
                request_timeout: request_timeout
                    .unwrap_or_else(|| retry_budget.min(ExportConfig::default().request_timeout)),
                // A signal asked for by name must arrive; the others may be turned off.
                optional_signals: [false, !g.metrics, !g.logs],
                quiet: g.quiet,
                wait_for_endpoint: g.wait_for_endpoint,
                connections: g
                    .connections
                    .map_or_else(|| crate::export::default_connections(protocol), usize::from),
                tls,
                ..ExportConfig::default()
            },
            vendor,
            service_name,
            tenant_id: g.tenant_id.clone().filter(|t| !t.trim().is_empty()),
            genai_profile: match g.genai_profile.as_deref() {
                Some(p) => crate::generate::GenAiProfile::parse(p)
                    .map_err(|e| anyhow::anyhow!("--genai-profile / OTELSIM_GENAI_PROFILE: {e}"))?,
                None => Default::default(),
            },
            resource_attrs,
            seed: g.seed,
            start_time_ns: g.start_time.as_deref().map(parse_start_time).transpose()?,
            verbose: g.verbose,
            quiet: g.quiet,
            metrics: if g.no_metrics {
                Some(false)
            } else {
                g.metrics.then_some(true)
            },
            logs: if g.no_logs {
                Some(false)
            } else {
                g.logs.then_some(true)
            },
            mask_pii: g.mask_pii,
            temporality: g.temporality,
            metrics_interval: if g.metrics_interval >= std::time::Duration::from_millis(1) {
                g.metrics_interval
            } else {
                bail!("--metrics-interval must be at least 1ms (e.g. 10s)")
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn flags_beat_env_beats_defaults() {
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_SERVICE_NAME", "from-env"),
        ]);
        let s = Settings::resolve(&GlobalArgs::default(), &env).unwrap();
        assert_eq!(s.export.endpoint, "http://collector:4317");
        assert_eq!(s.service_name.as_deref(), Some("from-env"));
        let g = GlobalArgs {
            endpoint: Some("http://flag:1".into()),
            service_name: Some("flag".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&g, &env).unwrap();
        assert_eq!(s.export.endpoint, "http://flag:1");
        assert_eq!(s.service_name.as_deref(), Some("flag"));
        let s = Settings::resolve(&GlobalArgs::default(), &env_of(&[])).unwrap();
        assert_eq!(s.export.endpoint, "http://localhost:4317");
        assert_eq!(s.export.protocol, Protocol::Grpc);
        assert_eq!(s.vendor, "vendor");
    }

    #[test]
    fn connections_default_by_protocol_unless_given() {
        let with = |protocol: &str, connections: Option<u8>| {
            let g = GlobalArgs {
                protocol: Protocol::parse(protocol),
                connections,
                ..Default::default()
            };
            Settings::resolve(&g, &env_of(&[]))
                .unwrap()
                .export
                .connections
        };
        assert_eq!(with("grpc", None), 2);
        assert_eq!(with("http/protobuf", None), 1);
        assert_eq!(with("http/json", None), 1);
        assert_eq!(with("grpc", Some(1)), 1);
        assert_eq!(with("http/protobuf", Some(4)), 4);
    }

    #[test]
    fn otlp_http_endpoint_implies_http() {
        let s = Settings::resolve(
            &GlobalArgs::default(),
            &env_of(&[("OTLP_HTTP_ENDPOINT", "http://dp:4318")]),
        )
        .unwrap();
        assert_eq!(s.export.protocol, Protocol::HttpProtobuf);
        assert_eq!(s.export.endpoint, "http://dp:4318");
    }

    #[test]
    fn headers_merge_env_and_flags() {
        let g = GlobalArgs {
            headers: vec!["authorization=Bearer flag".into()],
            ..Default::default()
        };
        let s = Settings::resolve(
            &g,
            &env_of(&[(
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Bearer%20env,x-team=obs",
            )]),
        )
        .unwrap();
        assert_eq!(s.export.headers.len(), 2);
        assert!(s.export.headers.contains(&("x-team".into(), "obs".into())));
        assert!(s
            .export
            .headers
            .contains(&("authorization".into(), "Bearer flag".into())));
    }

    #[test]
    fn outputs_parse_display_and_default() {
        let s = Settings::resolve(&GlobalArgs::default(), &env_of(&[])).unwrap();
        assert_eq!(s.outputs, vec![OutputSpec::otlp()]);
        assert!(s.sends_otlp() && s.export.output_file.is_none());
        for text in ["otlp", "otlp-json:out/traces.jsonl"] {
            assert_eq!(text.parse::<OutputSpec>().unwrap().to_string(), text);
        }
        let g = GlobalArgs {
            outputs: vec!["otlp-json:a.jsonl".into()],
            ..Default::default()
        };
        let s = Settings::resolve(&g, &env_of(&[])).unwrap();
        assert_eq!(s.outputs, vec![OutputSpec::otlp_json("a.jsonl")]);
        assert_eq!(s.export.output_file.as_deref(), Some(Path::new("a.jsonl")));
        assert_eq!(s.output_flag(&s.outputs[0]), "--output otlp-json:a.jsonl");
        // --output-file is the same output, named as given.
        let g = GlobalArgs {
            output_file: Some("a.jsonl".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&g, &env_of(&[])).unwrap();
        assert_eq!(s.outputs, vec![OutputSpec::otlp_json("a.jsonl")]);
        assert_eq!(s.output_flag(&s.outputs[0]), "--output-file a.jsonl");
    }

    #[test]
    fn output_mistakes_are_refused() {
        let refused = |outputs: &[&str], file: Option<&str>| {
            let g = GlobalArgs {
                outputs: outputs.iter().map(|o| o.to_string()).collect(),
                output_file: file.map(Into::into),
                ..Default::default()
            };
            format!("{:#}", Settings::resolve(&g, &env_of(&[])).unwrap_err())
        };
        assert!(refused(&["otlp-jsonl:x"], None).contains("unknown kind `otlp-jsonl`"));
        assert!(refused(&["otlp:x"], None).contains("takes no path"));
        assert!(refused(&["otlp-json"], None).contains("needs a path"));
        assert!(refused(&["otlp-json:x", "otlp-json:./x"], None).contains("the same file"));
        assert_eq!(
            refused(&["otlp-json:x"], Some("x")),
            "--output otlp-json:x and --output-file x write the same file; each output needs its own file"
        );
        let both = GlobalArgs {
            outputs: vec!["otlp".into(), "otlp-json:x".into()],
            ..Default::default()
        };
        let s = Settings::resolve(&both, &env_of(&[])).expect("two outputs");
        assert_eq!(
            s.outputs,
            vec![OutputSpec::otlp(), OutputSpec::otlp_json("x")]
        );
    }

    #[test]
    fn a_header_typo_never_prints_its_value() {
        let g = GlobalArgs {
            headers: vec!["authorization: Bearer s3cr3t-flag".into()],
            ..Default::default()
        };
        let e = format!("{:#}", Settings::resolve(&g, &env_of(&[])).unwrap_err());
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(
            e.contains("--header `authorization: <redacted>`: expected KEY=VALUE"),
            "{e}"
        );
        let env = env_of(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-team=obs,authorization: Bearer s3cr3t-env",
        )]);
        let e = format!(
            "{:#}",
            Settings::resolve(&GlobalArgs::default(), &env).unwrap_err()
        );
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(
            e.starts_with("OTEL_EXPORTER_OTLP_HEADERS: `authorization: <redacted>`"),
            "{e}"
        );
        // Resource attributes are no secrets: quoted as given.
        let env = env_of(&[("OTEL_RESOURCE_ATTRIBUTES", "team obs")]);
        let e = format!(
            "{:#}",
            Settings::resolve(&GlobalArgs::default(), &env).unwrap_err()
        );
        assert!(e.contains("`team obs` is not KEY=VALUE"), "{e}");
    }

    #[test]
    fn request_timeout_flag_beats_env_and_defaults_to_the_old_cap() {
        use std::time::Duration;
        let timeout = |g: &GlobalArgs, env: &[(&str, &str)]| {
            Settings::resolve(g, &env_of(env))
                .map(|s| s.export.request_timeout)
                .map_err(|e| format!("{e:#}"))
        };
        let none = GlobalArgs::default();
        assert_eq!(timeout(&none, &[]), Ok(Duration::from_secs(10)));
        let budget = GlobalArgs {
            retry_budget: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        assert_eq!(timeout(&budget, &[]), Ok(Duration::from_secs(3)));
        let env = [("OTELSIM_REQUEST_TIMEOUT", "30s")];
        assert_eq!(timeout(&budget, &env), Ok(Duration::from_secs(30)));
        let flag = GlobalArgs {
            request_timeout: Some(Duration::from_secs(45)),
            ..Default::default()
        };
        assert_eq!(timeout(&flag, &env), Ok(Duration::from_secs(45)));
        let e = timeout(&none, &[("OTELSIM_REQUEST_TIMEOUT", "soon")]).unwrap_err();
        assert!(
            e.starts_with("OTELSIM_REQUEST_TIMEOUT=`soon`:") && e.contains("such as 30s"),
            "{e}"
        );
        let zero = GlobalArgs {
            request_timeout: Some(Duration::ZERO),
            ..Default::default()
        };
        assert_eq!(
            timeout(&zero, &[]).unwrap_err(),
            "--request-timeout: must be between 1ms and 1h (e.g. 30s)"
        );
    }

    #[test]
    fn only_signals_asked_for_by_name_must_arrive() {
        let s = Settings::resolve(&GlobalArgs::default(), &env_of(&[])).unwrap();
        assert_eq!(s.export.optional_signals, [false, true, true]);
        let g = GlobalArgs {
            metrics: true,
            ..Default::default()
        };
        let s = Settings::resolve(&g, &env_of(&[])).unwrap();
        assert_eq!(s.export.optional_signals, [false, false, true]);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let e = Settings::resolve(
            &GlobalArgs::default(),
            &env_of(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("grpc, http/protobuf or http/json"));
        assert!(parse_start_time("yesterday").is_err());
        assert_eq!(
            parse_start_time("1700000000").unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            parse_start_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000_000_000
        );
    }
}
