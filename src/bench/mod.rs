//! `otelsim bench`: generate (and encode) the mixed workload on one thread and
//! report spans/s, CPU µs per span, bytes per span and peak RSS, with the CPU of
//! each stage (generate, derive metrics and logs, encode, send) so that a
//! regression points at its stage. By default nothing is sent; `--to sink`
//! sends every request, one at a time, to an `otelsim sink` child process on
//! 127.0.0.1, so the send stage is measured on this thread too.

pub mod sdk;

use crate::encode::wire::WireEncoder;
use crate::encode::Resources;
use crate::export::direct::DirectSender;
use crate::export::{Body, ExportConfig, Protocol};
use crate::generate::generate_iteration;
use crate::metrics::{Aggregator, MetricsPlan};
use crate::record::{LogRecord, TraceRecord};
use crate::registry::Picker;
use crate::run::Prepared;
use crate::settings::Settings;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use std::time::{Duration, Instant};

/// Spans per trace request, as a run batches them by default.
const BATCH_SPANS: usize = 512;
/// Log records per logs request, as a run batches them by default.
const BATCH_LOGS: usize = 512;
/// Metrics are collected, encoded (and sent) once per this many spans: a run
/// collects on a timer, which a CPU benchmark has no use for.
const METRICS_EVERY_SPANS: u64 = 50_000;

/// Which signals `otelsim bench` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchSignals {
    /// Traces only.
    Traces,
    /// Traces, the metrics and the log records derived from them (a run's default).
    All,
}

/// Where `otelsim bench` sends what it encodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchTo {
    /// Nowhere: the requests are encoded and dropped.
    Null,
    /// An `otelsim sink` started as a child process on 127.0.0.1 (free ports).
    Sink,
}

/// The protocol of `otelsim bench --to sink`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchProtocol {
    /// OTLP/HTTP with protobuf bodies.
    #[value(alias = "http/protobuf")]
    Http,
    /// OTLP/gRPC.
    Grpc,
}

/// What to measure.
#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    /// Spans to generate at least (whole picks).
    pub spans: u64,
    /// Encode the requests (`--no-encode`: generate, and derive, only).
    pub encode: bool,
    /// Traces only, or all three signals.
    pub signals: BenchSignals,
    /// Where the requests go.
    pub to: BenchTo,
    /// The protocol when they go to a sink.
    pub protocol: BenchProtocol,
}

/// CPU time of this thread per span in each stage, in µs.
#[derive(Debug, Default, serde::Serialize)]
pub struct StageCosts {
    /// Picking a scenario and generating its spans.
    pub generate: f64,
    /// Recording the spans' metric measurements and deriving their log records.
    pub derive: f64,
    /// Encoding the requests (traces, logs, metrics) as OTLP protobuf.
    pub encode: f64,
    /// Sending them and reading the answers (0 with `--to null`).
    pub send: f64,
}

/// What `otelsim bench` measured: printed, and written as JSON by `--report`.
#[derive(Debug, serde::Serialize)]
pub struct BenchReport {
    /// Spans generated (the target, rounded up to whole picks).
    pub spans: u64,
    /// Traces generated.
    pub traces: u64,
    /// Wall time of the loop, in seconds.
    pub wall_s: f64,
    /// CPU time of the process during the loop (user + system), in seconds.
    pub cpu_s: f64,
    /// Spans generated per second of wall time.
    pub spans_per_s: f64,
    /// CPU time per span, in µs.
    pub cpu_us_per_span: f64,
    /// OTLP protobuf bytes per span of the trace requests (batches of about 512 spans); 0
    /// without encoding.
    pub bytes_per_span: f64,
    /// Peak resident set size of the process, in MiB.
    pub peak_rss_mb: f64,
    /// Whether spans were encoded too (`--no-encode` turns it off).
    pub encode: bool,
    /// Which signals were made.
    pub signals: BenchSignals,
    /// Where the requests went.
    pub to: BenchTo,
    /// The protocol, when they went to a sink.
    pub protocol: Option<BenchProtocol>,
    /// Log records derived (0 for traces only).
    pub log_records: u64,
    /// Metric data points collected and encoded (0 for traces only, or with `--no-encode`).
    pub metric_points: u64,
    /// Spans the sink acknowledged (0 with `--to null`).
    pub spans_acked: u64,
    /// This thread's CPU per span in each stage, in µs.
    pub stages_us_per_span: StageCosts,
}

/// CPU time of this process (user + system), in seconds.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the file: 12 and 13 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU time of the calling thread, in ns (the stages are timed with it: the
/// process's counters tick only every 10 ms).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Peak resident set size (VmHWM), in MiB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Thread CPU ns spent in each stage so far.
#[derive(Default)]
struct Clock {
    stages: [u64; 4],
    last: u64,
}

impl Clock {
    const GENERATE: usize = 0;
    const DERIVE: usize = 1;
    const ENCODE: usize = 2;
    const SEND: usize = 3;

    fn start(&mut self) {
        self.last = thread_cpu_ns();
    }

    /// Charges the time since the last mark to `stage`.
    fn mark(&mut self, stage: usize) {
        let now = thread_cpu_ns();
        self.stages[stage] += now.saturating_sub(self.last);
        self.last = now;
    }
}

/// An `otelsim sink` child process on free loopback ports; killed when dropped.
struct ChildSink {
    child: std::process::Child,
    endpoint: String,
}

impl ChildSink {
    fn start(protocol: BenchProtocol) -> Result<ChildSink, String> {
        let free = || -> Result<u16, String> {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
        };
        let (grpc, http) = (free()?, free()?);
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find otelsim's own executable: {e}"))?;
        let child = std::process::Command::new(exe)
            .args(["sink", "--duration", "1h", "--grpc-addr"])
            .arg(format!("127.0.0.1:{grpc}"))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start `otelsim sink`: {e}"))?;
        let port = match protocol {
            BenchProtocol::Http => http,
            BenchProtocol::Grpc => grpc,
        };
        let sink = ChildSink {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t0.elapsed() > Duration::from_secs(15) {
                return Err(format!(
                    "`otelsim sink` did not listen on 127.0.0.1:{port} within 15 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(sink)
    }
}

impl Drop for ChildSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The send stage: a sink, the runtime its requests are awaited on, and what it acknowledged.
struct Sending {
    _sink: ChildSink,
    runtime: tokio::runtime::Runtime,
    sender: DirectSender,
    spans_acked: u64,
}

impl Sending {
    fn start(protocol: BenchProtocol) -> Result<Sending, String> {
        let sink = ChildSink::start(protocol)?;
        // One thread: the client's connections run on this one, where the stage is timed.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let protocol = match protocol {
            BenchProtocol::Http => Protocol::HttpProtobuf,
            BenchProtocol::Grpc => Protocol::Grpc,
        };
        let cfg = ExportConfig {
            endpoint: sink.endpoint.clone(),
            protocol,
            // As `run` connects by default.
            connections: crate::export::default_connections(protocol),
            quiet: true,
            ..ExportConfig::default()
        };
        let sender = runtime
            .block_on(DirectSender::connect(&cfg))
            .map_err(|e| format!("cannot connect to `otelsim sink`: {e:#}"))?;
        Ok(Sending {
            _sink: sink,
            runtime,
            sender,
            spans_acked: 0,
        })
    }

    /// Sends one request of `items` items; spans count as acknowledged.
    fn send(&mut self, body: Body, items: u64) -> Result<(), String> {
        let spans = matches!(body, Body::TracesWire(_));
        let (rejected, _) = self
            .runtime
            .block_on(self.sender.send(&body))
            .map_err(|e| format!("the sink refused a request: {e}"))?;
        if spans {
            self.spans_acked += items.saturating_sub(rejected);
        }
        Ok(())
    }
}

/// Everything the loop carries: the encoders, the pending batch and the counts.
struct Bench<'a> {
    prep: &'a Prepared,
    opts: BenchOptions,
    wire: WireEncoder,
    resources: Resources,
    aggregator: Option<Aggregator>,
    sending: Option<Sending>,
    clock: Clock,
    /// Reused for every request when nothing is sent.
    buf: Vec<u8>,
    batch: Vec<TraceRecord>,
    batch_spans: usize,
    logs: Vec<LogRecord>,
    /// Derives the log records of the batch.
    deriver: crate::logs::Deriver,
    trace_bytes: u64,
    log_records: u64,
    metric_points: u64,
    /// Bytes per span of the last trace request: the next one's buffer size.
    last_bytes_per_span: usize,
}

impl Bench<'_> {
    /// Queues the traces of a pick; a full batch is derived, encoded and sent.
    fn add(&mut self, traces: Vec<TraceRecord>, recorded_ns: u64) -> Result<(), String> {
        for t in traces {
            self.batch_spans += t.spans.len();
            self.batch.push(t);
            if self.batch_spans >= BATCH_SPANS {
                self.flush(recorded_ns)?;
            }
        }
        Ok(())
    }

    /// Derives the batch's measurements and log records at `recorded_ns`, a batch at a time:
    /// the stage clocks are read per batch (a read is a system call), not per pick.
    fn derive(&mut self, recorded_ns: u64) {
        self.clock.mark(Clock::GENERATE);
        if let Some(agg) = &mut self.aggregator {
            let world = &self.prep.world;
            for t in &self.batch {
                agg.record(world, t, recorded_ns);
                self.deriver.derive(world, t, &mut self.logs);
            }
            self.clock.mark(Clock::DERIVE);
        }
    }

    /// Derives, encodes (and sends) the pending traces and their log records.
    fn flush(&mut self, recorded_ns: u64) -> Result<(), String> {
        self.derive(recorded_ns);
        if !self.opts.encode {
            self.log_records += self.logs.len() as u64;
            self.logs.clear();
            self.batch.clear();
            self.batch_spans = 0;
            return Ok(());
        }
        if !self.batch.is_empty() {
            let body = self.encode_traces();
            self.batch.clear();
            self.clock.mark(Clock::ENCODE);
            if let (Some(s), Some(body)) = (&mut self.sending, body) {
                s.send(body, self.batch_spans as u64)?;
                self.clock.mark(Clock::SEND);
            }
            self.batch_spans = 0;
        }
        let logs = std::mem::take(&mut self.logs);
        for chunk in logs.chunks(BATCH_LOGS) {
            self.log_records += chunk.len() as u64;
            let body = self.encode_logs(chunk);
            self.clock.mark(Clock::ENCODE);
            if let (Some(s), Some(body)) = (&mut self.sending, body) {
                s.send(body, chunk.len() as u64)?;
                self.clock.mark(Clock::SEND);
            }
        }
        self.logs = logs;
        self.logs.clear();
        Ok(())
    }

    /// The pending traces as one request: a body to send, or `None` when nothing is sent.
    fn encode_traces(&mut self) -> Option<Body> {
        if self.sending.is_none() {
            self.buf.clear();
            self.wire.traces(&self.batch, &mut self.buf);
            self.trace_bytes += self.buf.len() as u64;
            return None;
        }
        let mut buf = Vec::with_capacity(self.batch_spans * self.last_bytes_per_span);
        self.wire.traces(&self.batch, &mut buf);
        self.trace_bytes += buf.len() as u64;
        self.last_bytes_per_span = buf.len() / self.batch_spans.max(1) + 64;
        Some(Body::TracesWire(bytes::Bytes::from(buf)))
    }

    fn encode_logs(&mut self, chunk: &[LogRecord]) -> Option<Body> {
        if self.sending.is_none() {
            self.buf.clear();
            self.wire.logs(chunk, &mut self.buf);
            return None;
        }
        let mut buf = Vec::with_capacity(chunk.len() * 400);
        self.wire.logs(chunk, &mut buf);
        Some(Body::LogsWire(bytes::Bytes::from(buf)))
    }

    /// Collects the metrics at `now_ns`, encodes (and sends) them.
    fn metrics(&mut self, now_ns: u64) -> Result<(), String> {
        let Some(agg) = &mut self.aggregator else {
            return Ok(());
        };
        self.clock.mark(Clock::GENERATE);
        let Some((request, points)) = crate::encode::metrics::collect(agg, now_ns, &self.resources)
        else {
            return Ok(());
        };
        self.metric_points += points;
        match &mut self.sending {
            // The transport encodes a metrics request as it sends it.
            Some(s) => {
                self.clock.mark(Clock::ENCODE);
                s.send(Body::Metrics(request), points)?;
                self.clock.mark(Clock::SEND);
            }
            None => {
                self.buf.clear();
                prost::Message::encode(&request, &mut self.buf).map_err(|e| e.to_string())?;
                self.clock.mark(Clock::ENCODE);
            }
        }
        Ok(())
    }
}

/// Why `otelsim bench` could not measure.
#[derive(Debug)]
pub enum BenchError {
    /// The input (scenarios, flags) cannot be benchmarked.
    Input(String),
    /// Starting the sink or sending to it failed.
    Runtime(String),
}

/// Generates (derives, encodes, sends) at least `opts.spans` spans of the weighted mix on
/// this thread.
pub fn run(
    prep: &Prepared,
    settings: &Settings,
    opts: BenchOptions,
) -> Result<BenchReport, BenchError> {
    let candidates = prep.registry.filtered(&[]);
    let picker = Picker::new(&candidates).map_err(BenchError::Input)?;
    if opts.to == BenchTo::Null {
        return measure(prep, settings, opts, &picker).map_err(BenchError::Runtime);
    }
    // On a thread of its own: the send stage runs its own runtime, and the caller may be
    // inside one.
    std::thread::scope(|scope| {
        scope
            .spawn(|| measure(prep, settings, opts, &picker))
            .join()
            .unwrap_or_else(|_| Err("the bench thread panicked".into()))
    })
    .map_err(BenchError::Runtime)
}

fn measure(
    prep: &Prepared,
    settings: &Settings,
    opts: BenchOptions,
    picker: &Picker,
) -> Result<BenchReport, String> {
    let seed = settings.seed.unwrap_or(1);
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let anchor = settings.start_time_ns.unwrap_or(1_800_000_000_000_000_000);
    let all = opts.signals == BenchSignals::All;
    let resources = Resources::new(&prep.world, &[]);
    let sending = match opts.to {
        BenchTo::Sink if opts.encode => Some(Sending::start(opts.protocol)?),
        _ => None,
    };
    let mut b = Bench {
        prep,
        opts,
        wire: WireEncoder::new(resources.clone()),
        resources,
        aggregator: all.then(|| {
            Aggregator::new(
                MetricsPlan::new(&prep.world, &prep.registry.semconv),
                settings.temporality,
                anchor,
            )
        }),
        sending,
        clock: Clock::default(),
        buf: Vec::with_capacity(1 << 20),
        batch: Vec::new(),
        batch_spans: 0,
        logs: Vec::new(),
        deriver: crate::logs::Deriver::new(&prep.world),
        trace_bytes: 0,
        log_records: 0,
        metric_points: 0,
        last_bytes_per_span: 1024,
    };
    let (mut spans, mut traces) = (0u64, 0u64);
    let mut next_metrics = METRICS_EVERY_SPANS;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    b.clock.start();
    let mut iteration = 0u64;
    while spans < opts.spans {
        iteration += 1;
        let name = picker.pick(&mut rng);
        let Some(plan) = prep.plans.get(name) else {
            continue;
        };
        let made = generate_iteration(&prep.world, plan, anchor, iteration, &mut rng);
        spans += made.iter().map(|t| t.spans.len() as u64).sum::<u64>();
        traces += made.len() as u64;
        b.add(made, anchor + iteration)?;
        // Metrics are collected as they are encoded: not with --no-encode.
        if all && opts.encode && spans >= next_metrics {
            next_metrics += METRICS_EVERY_SPANS;
            b.metrics(anchor + iteration)?;
        }
    }
    b.flush(anchor + iteration)?;
    if all && opts.encode {
        b.metrics(anchor + iteration + 1)?;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - cpu0).max(1e-9);
    let per_span = |ns: u64| ns as f64 / 1e3 / spans.max(1) as f64;
    let [generate, derive, encode, send] = b.clock.stages;
    Ok(BenchReport {
        spans,
        traces,
        wall_s: wall,
        cpu_s: cpu,
        spans_per_s: spans as f64 / wall,
        cpu_us_per_span: cpu * 1e6 / spans as f64,
        bytes_per_span: if opts.encode {
            b.trace_bytes as f64 / spans as f64
        } else {
            0.0
        },
        peak_rss_mb: peak_rss_mb(),
        encode: opts.encode,
        signals: opts.signals,
        to: opts.to,
        protocol: (opts.to == BenchTo::Sink).then_some(opts.protocol),
        log_records: b.log_records,
        metric_points: b.metric_points,
        spans_acked: b.sending.as_ref().map_or(0, |s| s.spans_acked),
        stages_us_per_span: StageCosts {
            generate: per_span(generate),
            derive: per_span(derive),
            encode: per_span(encode),
            send: per_span(send),
        },
    })
}

impl BenchReport {
    /// The report as printed: two lines, then the stages.
    pub fn render(&self) -> String {
        let what = match (self.encode, self.signals, self.to) {
            (false, BenchSignals::Traces, _) => "generate only, one thread".to_string(),
            (false, BenchSignals::All, _) => {
                "traces + metrics + logs, generate + derive only, one thread".to_string()
            }
            (true, BenchSignals::Traces, BenchTo::Null) => {
                "generate + encode OTLP protobuf, one thread".to_string()
            }
            (true, BenchSignals::All, BenchTo::Null) => {
                "traces + metrics + logs, generate + derive + encode OTLP protobuf, one thread"
                    .to_string()
            }
            (true, signals, BenchTo::Sink) => format!(
                "{}, generate{} + encode + send over {} to otelsim sink (a child process), one thread",
                match signals {
                    BenchSignals::Traces => "traces",
                    BenchSignals::All => "traces + metrics + logs",
                },
                if signals == BenchSignals::All { " + derive" } else { "" },
                match self.protocol {
                    Some(BenchProtocol::Grpc) => "OTLP/gRPC",
                    _ => "OTLP/HTTP protobuf",
                }
            ),
        };
        let mut out = format!(
            "otelsim bench ({what}): {} spans in {} traces · {:.2} s wall, {:.2} s CPU\n  {:.0} spans/s · {:.2} µs CPU per span · {:.0} bytes per span · peak RSS {:.1} MiB\n",
            self.spans,
            self.traces,
            self.wall_s,
            self.cpu_s,
            self.spans_per_s,
            self.cpu_us_per_span,
            self.bytes_per_span,
            self.peak_rss_mb
        );
        let s = &self.stages_us_per_span;
        out.push_str(&format!(
            "  µs CPU per span by stage (this thread): generate {:.3} · derive {:.3} · encode {:.3} · send {:.3}\n",
            s.generate, s.derive, s.encode, s.send
        ));
        if self.signals == BenchSignals::All {
            out.push_str(&format!(
                "  {} log records · {} metric points\n",
                self.log_records, self.metric_points
            ));
        }
        if self.to == BenchTo::Sink {
            out.push_str(&format!(
                "  {} spans acknowledged by the sink\n",
                self.spans_acked
            ));
        }
        out
    }
}
