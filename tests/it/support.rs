//! Shared helpers for the integration tests: the `Otelsim` builder that runs the
//! real binary (bounded in time, with a clean environment), bounded waits on a
//! condition, the real sink in-process, and flattening of what it received.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use otelsim::sink::{self, RunningSink, SinkOptions};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead as _, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_otelsim");

/// How long one otelsim run may take unless the test sets its own `limit`.
pub const LIMIT: Duration = Duration::from_secs(120);

/// Environment variables that would change otelsim's defaults: cleared for every
/// run so tests do not depend on the developer's shell.
const CLEARED_ENV: [&str; 18] = [
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
    "OTELSIM_WORKLOAD_SCHEDULE",
    "OTELSIM_GENAI_PROFILE",
    "OTELSIM_REQUEST_TIMEOUT",
];

/// One run of the real binary:
///
/// ```ignore
/// let out = Otelsim::new().cli("run --count 5").seed(7).start_time(T0)
///     .output_file(&path).env("VENDOR", "acme").run();
/// let text = Otelsim::new().cli("list").run_ok();          // asserts exit 0
/// let text = Otelsim::new().cli("list --gzip").run_exit(2);
/// let child = Otelsim::new().cli("sink").spawn();          // long-running; see `Running`
/// ```
///
/// Arguments go on the command line in the order they are added (the flag
/// helpers append at that point). A run that outlives its limit is killed and
/// the test panics with everything it printed.
#[derive(Clone, Debug)]
pub struct Otelsim {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    limit: Duration,
}

impl Default for Otelsim {
    fn default() -> Self {
        Self::new()
    }
}

impl Otelsim {
    pub fn new() -> Self {
        Otelsim {
            args: Vec::new(),
            env: Vec::new(),
            limit: LIMIT,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// The whitespace-separated words of `line` as arguments, for literal
    /// flags and values: `.cli("run --count 5 --interval 0")`.
    pub fn cli(self, line: &str) -> Self {
        self.args(line.split_whitespace())
    }

    fn flag(self, flag: &str, value: impl AsRef<OsStr>) -> Self {
        self.arg(flag).arg(value)
    }

    /// `--seed N`.
    pub fn seed(self, seed: u64) -> Self {
        self.flag("--seed", seed.to_string())
    }

    /// `--start-time T`: the virtual clock.
    pub fn start_time(self, t: &str) -> Self {
        self.flag("--start-time", t)
    }

    /// `--output-file PATH`.
    pub fn output_file(self, path: impl AsRef<Path>) -> Self {
        self.flag("--output-file", path.as_ref())
    }

    /// `--report PATH`.
    pub fn report(self, path: impl AsRef<Path>) -> Self {
        self.flag("--report", path.as_ref())
    }

    /// `--config`, `--semconv` and `--scenarios-dir` of the predecessor's corpus.
    pub fn compat(self) -> Self {
        let (config, semconv, definitions) = compat_files();
        self.flag("--config", config)
            .flag("--semconv", semconv)
            .flag("--scenarios-dir", definitions)
    }

    /// The predecessor-format corpus `tests/fixtures/NAME`: its own config.yaml and
    /// definitions folder (the embedded semconv).
    pub fn fixture_corpus(self, name: &str) -> Self {
        let dir = repo().join("tests/fixtures").join(name);
        self.flag("--config", dir.join("config.yaml"))
            .flag("--scenarios-dir", dir.join("definitions"))
    }

    /// `--endpoint URL`.
    pub fn endpoint(self, url: impl AsRef<OsStr>) -> Self {
        self.flag("--endpoint", url)
    }

    /// `--protocol P` (`grpc`, `http/protobuf`, `http/json`).
    pub fn protocol(self, protocol: &str) -> Self {
        self.flag("--protocol", protocol)
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.into(), value.as_ref().to_owned()));
        self
    }

    /// How long `run` (or `Running::wait`) waits before killing the process.
    pub fn limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    fn describe(&self) -> String {
        let args: Vec<_> = self.args.iter().map(|a| a.to_string_lossy()).collect();
        format!("otelsim {}", args.join(" "))
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in CLEARED_ENV {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs to completion (bounded by the limit), whatever the exit code.
    pub fn run(self) -> Output {
        self.spawn().wait()
    }

    /// Runs and asserts exit code 0; returns stdout and stderr as text.
    pub fn run_ok(self) -> String {
        self.run_exit(0)
    }

    /// Runs and asserts the exit code; returns stdout and stderr as text.
    pub fn run_exit(self, code: i32) -> String {
        let what = self.describe();
        let out = self.run();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(code), "{what}\n{t}");
        t
    }

    /// Starts the process and returns at once; see `Running`.
    pub fn spawn(self) -> Running {
        let child = self.command().spawn().expect("spawn otelsim");
        Running {
            child: Some(child),
            limit: self.limit,
            what: self.describe(),
        }
    }

    /// Runs against a fresh in-process sink over `protocol` (`--endpoint` and
    /// `--protocol` go first); the run must succeed. Returns what the sink got.
    pub fn deliver(mut self, protocol: &str) -> Delivered {
        let rt = runtime();
        let sink = start_sink(&rt);
        let endpoint = match protocol {
            "grpc" => sink.grpc_endpoint(),
            _ => sink.http_endpoint(),
        };
        let rest = std::mem::take(&mut self.args);
        let output = self
            .endpoint(endpoint)
            .protocol(protocol)
            .args(rest)
            .run_ok();
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
}

/// A running otelsim process; killed if dropped before it exits.
pub struct Running {
    child: Option<Child>,
    limit: Duration,
    what: String,
}

impl Running {
    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("running child")
    }

    /// The process id (to read its /proc entries).
    pub fn pid(&mut self) -> u32 {
        self.child().id()
    }

    /// Sends a signal by name (`INT`, `TERM`) with kill(1).
    pub fn signal(&mut self, name: &str) {
        let pid = self.child().id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// Stderr line by line, read on a thread (so the process never blocks on a
    /// full pipe); `wait` then returns an empty stderr.
    pub fn stderr_lines(&mut self) -> mpsc::Receiver<String> {
        let stderr = self.child().stderr.take().expect("stderr not taken yet");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }

    /// Waits for the exit, at most the builder's limit from now; past it the
    /// process is killed and the test panics with what it printed.
    pub fn wait(mut self) -> Output {
        let mut child = self.child.take().expect("running child");
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            pipe.map(|mut p| {
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let _ = p.read_to_end(&mut buf);
                    buf
                })
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let deadline = Instant::now() + self.limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for otelsim") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let collect = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
            h.map(|h| h.join().expect("pipe reader"))
                .unwrap_or_default()
        };
        let (stdout, stderr) = (collect(stdout), collect(stderr));
        let Some(status) = status else {
            panic!(
                "{} did not finish within {:?}\nstdout:\n{}\nstderr:\n{}",
                self.what,
                self.limit,
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        };
        Output {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `done` until it holds; panics naming `what` if it does not within `limit`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A port nothing listens on (just released by the OS).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub fn wait_port(port: u16, limit: Duration) {
    wait_until(&format!("port {port} to open"), limit, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// Waits until the server at `server` has accepted (not merely queued) the
/// client connection whose local address is `client`. On Linux an accepted
/// socket has an inode in /proc/net/tcp and a queued one has none; elsewhere
/// this falls back to a short pause.
pub fn wait_accepted(client: SocketAddr, server: SocketAddr) {
    if !Path::new("/proc/net/tcp").exists() {
        std::thread::sleep(Duration::from_millis(100));
        return;
    }
    let port_hex = |p: u16| format!(":{p:04X}");
    let (local, remote) = (port_hex(server.port()), port_hex(client.port()));
    wait_until(
        &format!("{server} to accept the connection from {client}"),
        Duration::from_secs(10),
        || {
            ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>())
                    // sl local rem st queues tr retrnsmt uid timeout inode ...
                    .any(|c| {
                        c.len() > 9
                            && c[1].ends_with(&local)
                            && c[2].ends_with(&remote)
                            && c[9] != "0"
                    })
            })
        },
    );
}

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

/// Stdout then stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A JSON file (a run report, a sink summary, a verdict).
pub fn read_json(path: &Path) -> serde_json::Value {
    let body = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
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
    /// The span's class with its prefix (`vendor.llm.call`): the name every span had
    /// before GenAI spans took the conventions' names (`chat gpt-4o`); tests that
    /// look for a step of the scenario find it by this.
    pub class: String,
    pub start: u64,
    pub end: u64,
    pub status: i32,
    /// OTLP span kind (2 SERVER, 3 CLIENT).
    pub kind: i32,
    pub attrs: HashMap<String, String>,
    pub events: Vec<String>,
    pub resource: HashMap<String, String>,
    pub scope: String,
}

/// The first word of the span names the GenAI and MCP conventions give
/// (`chat gpt-4o`, `execute_tool new_claim`, `tools/call new_claim`).
pub const CONVENTION_OPERATIONS: [&str; 9] = [
    "chat",
    "text_completion",
    "generate_content",
    "embeddings",
    "execute_tool",
    "invoke_agent",
    "create_agent",
    "retrieval",
    "tools/call",
];

/// Whether a span name is one the GenAI or MCP conventions write.
pub fn is_convention_name(name: &str) -> bool {
    CONVENTION_OPERATIONS.contains(&name.split(' ').next().unwrap_or_default())
}

/// A span's step name (see [`Flat::class`]): its name, or for a span named by the
/// conventions the class it carries with the prefix of that attribute's key.
fn class_of(name: &str, attrs: &[KeyValue]) -> String {
    if !is_convention_name(name) {
        return name.to_string();
    }
    attrs
        .iter()
        .find_map(|kv| {
            let prefix = kv.key.strip_suffix("span.class")?;
            Some(format!("{prefix}{}", value_text(kv)))
        })
        .unwrap_or_else(|| name.to_string())
}

pub fn value_text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        // A string array as otelsim prints one: `[a, b]`.
        Some(Value::ArrayValue(a)) => {
            let items: Vec<String> = a
                .values
                .iter()
                .map(|v| match &v.value {
                    Some(Value::StringValue(s)) => s.clone(),
                    other => format!("{other:?}"),
                })
                .collect();
            format!("[{}]", items.join(", "))
        }
        other => format!("{other:?}"),
    }
}

pub fn flatten(requests: &[ExportTraceServiceRequest]) -> Vec<Flat> {
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
                    let class = class_of(&s.name, &s.attributes);
                    out.push(Flat {
                        class,
                        request: i,
                        trace_id: hex::encode(&s.trace_id),
                        span_id: hex::encode(&s.span_id),
                        parent: hex::encode(&s.parent_span_id),
                        name: s.name.clone(),
                        start: s.start_time_unix_nano,
                        end: s.end_time_unix_nano,
                        status: s.status.as_ref().map_or(0, |st| st.code),
                        kind: s.kind,
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
pub fn read_output_file(path: &Path) -> Vec<ExportTraceServiceRequest> {
    std::fs::read_to_string(path)
        .expect("output file")
        .lines()
        // The file holds all three signals; keep the trace requests.
        .filter(|l| l.starts_with("{\"resourceSpans\""))
        .map(|l| sink::otlp_json::decode_traces(l.as_bytes()).expect("valid OTLP/JSON line"))
        .collect()
}

/// The spans of an `--output-file`, flattened.
pub fn spans_in(path: &Path) -> Vec<Flat> {
    flatten(&read_output_file(path))
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
    pub metrics: Vec<ExportMetricsServiceRequest>,
    pub logs: Vec<ExportLogsServiceRequest>,
    pub snapshot: sink::SinkSnapshot,
    pub output: String,
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

/// One otelsim run (`args`) sent into a third-party UI by `scripts/{ui}-e2e.sh`,
/// started as `launcher script ui_args… BIN WORKDIR extra… args…` with EXPECT_SPANS
/// set: the span count of the same seeded run written to a file, which the script
/// waits for. Returns WORKDIR (holding what the script wrote) and that count; a
/// failed script fails the test with its, otelsim's and the UI's logs.
pub fn through_ui(
    ui: &str,
    launcher: &[&str],
    ui_args: &[&OsStr],
    extra: &[&str],
    args: &[&str],
) -> (tempfile::TempDir, usize) {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("expected.jsonl");
    Otelsim::new().args(args).output_file(&file).run_ok();
    let expected = spans_in(&file).len();
    let script = repo().join(format!("scripts/{ui}-e2e.sh"));
    let out = Command::new("timeout")
        .arg("600")
        .args(launcher)
        .arg(&script)
        .args(ui_args)
        .arg(BIN)
        .arg(work.path())
        .args(extra)
        .args(args)
        .env("EXPECT_SPANS", expected.to_string())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    let log = |f: &str| std::fs::read_to_string(work.path().join(f)).unwrap_or_default();
    assert!(
        out.status.success(),
        "{ui}-e2e failed: {}\notelsim: {}\n{ui} (tail): {}",
        String::from_utf8_lossy(&out.stderr),
        log("otelsim.log"),
        log(&format!("{ui}.log"))
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    (work, expected)
}
