//! Shared helpers for the integration tests: run the real binary with a time
//! limit, start the real sink in-process, and flatten what it received.
#![allow(dead_code)]

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use otelsim::sink::{self, RunningSink, SinkOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_otelsim");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The predecessor's data files, which must load unchanged.
pub fn compat_dir() -> PathBuf {
    let p = repo().join("../shared/compat/telemetry-simulator-c513dcf");
    assert!(
        p.is_dir(),
        "compatibility corpus not found at {} (it lives in ../shared beside the repo)",
        p.display()
    );
    p
}

/// The predecessor's config, semconv and definitions folder, as path strings.
pub fn compat_files() -> (String, String, String) {
    let c = compat_dir();
    let s = |p: &str| c.join(p).to_str().expect("utf-8 path").to_string();
    (
        s("config/config.yaml"),
        s("conventions/semconv.yaml"),
        s("definitions"),
    )
}

/// Runs otelsim with `args`, killing it after `limit`. Env vars that would change
/// defaults are cleared so tests do not depend on the developer's shell.
pub fn otelsim(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "SEMCONV",
        "SCENARIOS_DIR",
        "VENDOR",
        "OTLP_HTTP_ENDPOINT",
        "OTELSIM_CONFIG",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn otelsim");
    wait_with_limit(child, limit)
}

pub fn wait_with_limit(mut child: std::process::Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "otelsim did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn start_sink(rt: &tokio::runtime::Runtime) -> RunningSink {
    rt.block_on(sink::start(SinkOptions::for_tests()))
        .expect("start sink")
}

/// One received span, flattened, with the index of the export request it came in.
#[derive(Clone, Debug)]
pub struct Flat {
    pub request: usize,
    pub trace_id: String,
    pub span_id: String,
    pub parent: String,
    pub name: String,
    pub start: u64,
    pub end: u64,
    pub status: i32,
    pub attrs: HashMap<String, String>,
    pub events: Vec<String>,
    pub resource: HashMap<String, String>,
    pub scope: String,
}

pub fn value_text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

pub fn flatten(
    requests: &[opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest],
) -> Vec<Flat> {
    let mut out = Vec::new();
    for (i, req) in requests.iter().enumerate() {
        for rs in &req.resource_spans {
            let resource: HashMap<String, String> = rs
                .resource
                .as_ref()
                .map(|r| {
                    r.attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), value_text(kv)))
                        .collect()
                })
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                let scope = ss
                    .scope
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                for s in &ss.spans {
                    out.push(Flat {
                        request: i,
                        trace_id: hex::encode(&s.trace_id),
                        span_id: hex::encode(&s.span_id),
                        parent: hex::encode(&s.parent_span_id),
                        name: s.name.clone(),
                        start: s.start_time_unix_nano,
                        end: s.end_time_unix_nano,
                        status: s.status.as_ref().map_or(0, |st| st.code),
                        attrs: s
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), value_text(kv)))
                            .collect(),
                        events: s.events.iter().map(|e| e.name.clone()).collect(),
                        resource: resource.clone(),
                        scope: scope.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Reads an `--output-file` (one OTLP/JSON export request per line) with the sink's decoder.
pub fn read_output_file(
    path: &Path,
) -> Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest> {
    std::fs::read_to_string(path)
        .expect("output file")
        .lines()
        // The file holds all three signals; keep the trace requests.
        .filter(|l| l.starts_with("{\"resourceSpans\""))
        .map(|l| sink::otlp_json::decode_traces(l.as_bytes()).expect("valid OTLP/JSON line"))
        .collect()
}

pub fn by_trace(spans: &[Flat]) -> HashMap<String, Vec<Flat>> {
    let mut m: HashMap<String, Vec<Flat>> = HashMap::new();
    for s in spans {
        m.entry(s.trace_id.clone()).or_default().push(s.clone());
    }
    m
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// What the sink received from one otelsim run, plus otelsim's own output.
pub struct Delivered {
    pub spans: Vec<Flat>,
    pub metrics:
        Vec<opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest>,
    pub logs: Vec<opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest>,
    pub snapshot: sink::SinkSnapshot,
    pub output: String,
}

/// Runs otelsim with `args` against an in-process sink over `protocol`
/// (`grpc`, `http/protobuf`, `http/json`); the run must succeed.
pub fn deliver(protocol: &str, args: &[&str], env: &[(&str, &str)]) -> Delivered {
    let rt = runtime();
    let sink = start_sink(&rt);
    let endpoint = match protocol {
        "grpc" => format!("http://{}", sink.grpc_addr),
        _ => format!("http://{}", sink.http_addr),
    };
    let mut all = vec!["--endpoint", endpoint.as_str(), "--protocol", protocol];
    all.extend_from_slice(args);
    let out = otelsim(&all, env, Duration::from_secs(120));
    let output = text(&out);
    assert!(out.status.success(), "otelsim {args:?} failed: {output}");
    let d = Delivered {
        spans: received_spans(&sink),
        metrics: sink.stats.metrics_requests(),
        logs: sink.stats.logs_requests(),
        snapshot: sink.stats.snapshot(),
        output,
    };
    rt.block_on(sink.shutdown());
    d
}

/// Every span the sink received (it must keep requests), flattened.
pub fn received_spans(sink: &RunningSink) -> Vec<Flat> {
    let reqs: Vec<_> = sink
        .stats
        .trace_requests()
        .into_iter()
        .map(|r| r.request)
        .collect();
    flatten(&reqs)
}
