//! The writer layer: a run's output is a list of [`Writer`]s behind one trait —
//! OTLP to an endpoint, OTLP/JSON lines to a file, and the file formats later
//! writers add. Each producer (worker) has one [`Batcher`] that holds its
//! records once, cuts batches (a trace is split only when it is larger than a
//! request) and hands the very same
//! batch to every writer's sink; each writer encodes and delivers it and keeps
//! exact counters of its own. Nothing accepted is dropped silently: every span,
//! metric point and log record ends up counted as delivered or failed, per writer.

mod agent_trace;
mod buffers;
mod counters;
pub(crate) mod direct;
pub mod duckdb;
mod events_jsonl;
mod grpc;
mod otlp;
mod probe;
mod secrets;
pub mod session;
pub mod session_json;
pub mod session_store;
mod spans_jsonl;
mod transport;

pub use agent_trace::{
    thinking_event_name, AgentTraceOptions, AgentTraceWriter, REASONING_TOKENS, THINKING_CONTENT,
    THINKING_STAGE,
};
pub use counters::{
    AckLog, Counters, CountersSnapshot, SignalCounters, SignalSnapshot, TraceDigest,
};
pub use events_jsonl::{EventsJsonlOptions, EventsJsonlWriter};
pub use otlp::OtlpWriter;
pub use secrets::{redact_item, redact_url, Secrets, REDACTED};
pub use spans_jsonl::{span_uuid, uuid, SpansJsonlWriter};
pub use transport::{check_endpoint, check_headers, endpoint_url, http_signal_url};

pub(crate) use otlp::Body;

use crate::encode::Resources;
use crate::record::{LogRecord, TraceRecord};
use anyhow::Result;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The OTLP transport and encoding: `grpc` (protobuf over gRPC), or OTLP/HTTP with
/// protobuf (`http/protobuf`) or JSON (`http/json`) bodies.
// The variants have no doc comments: clap would print them in `--help`.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Protocol {
    #[value(name = "grpc")]
    #[serde(rename = "grpc")]
    Grpc,
    #[value(name = "http/protobuf")]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[value(name = "http/json")]
    #[serde(rename = "http/json")]
    HttpJson,
}

impl Protocol {
    /// An `OTEL_EXPORTER_OTLP_PROTOCOL` value in any case; also accepts `http` and `json`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "grpc" => Some(Protocol::Grpc),
            "http/protobuf" | "http" | "http_protobuf" => Some(Protocol::HttpProtobuf),
            "http/json" | "http_json" | "json" => Some(Protocol::HttpJson),
            _ => None,
        }
    }

    /// The name `--protocol`, the OTel variable and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }

    /// The OTel default endpoint: port 4317 for gRPC, 4318 for HTTP.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://localhost:4317",
            _ => "http://localhost:4318",
        }
    }
}

/// Connections to the receiver unless `--connections` says otherwise. Over gRPC
/// two: with one, every request shares one HTTP/2 connection's task and its
/// wake-ups, and paired runs into `otelsim sink` on the same host cost the
/// client ×0.93–0.94 the CPU per span with two (traces only and default
/// signals), which made gRPC as cheap as HTTP. Over HTTP one: two or four
/// changed nothing measurable.
pub fn default_connections(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Grpc => 2,
        Protocol::HttpProtobuf | Protocol::HttpJson => 1,
    }
}

/// How an OTLP writer sends: endpoint, protocol, batching, concurrency, retries, TLS.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// Base URL (`http://host:port`); for HTTP `/v1/<signal>` is appended unless present.
    pub endpoint: String,
    /// Transport and body encoding.
    pub protocol: Protocol,
    /// Extra request headers (`--header`, `OTEL_EXPORTER_OTLP_HEADERS`), e.g. an auth token.
    pub headers: Vec<(String, String)>,
    /// Compress request bodies with gzip.
    pub gzip: bool,
    /// Write OTLP/JSON lines here instead of sending.
    pub output_file: Option<PathBuf>,
    /// What `output_file` holds.
    pub file_format: FileFormat,
    /// Spans per request at most; a larger trace is split over several requests.
    pub max_batch_spans: usize,
    /// Log records per request at most.
    pub max_batch_logs: usize,
    /// Flush a partial batch after this long; `None`: only by size and at the end
    /// (what file output uses, so batches do not depend on timing).
    pub linger: Option<Duration>,
    /// Full per-signal endpoints (traces, metrics, logs) from
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`, used as they are; `None`: derived from `endpoint`.
    pub signal_endpoints: [Option<String>; 3],
    /// Requests in flight at once (1 for file output, whose order must not vary).
    pub concurrency: usize,
    /// Connections to the receiver that requests take in turn (`--connections`):
    /// gRPC channels, or HTTP clients with a pool each.
    pub connections: usize,
    /// Batches that may wait for a free sender before producers block (backpressure).
    pub queue_batches: usize,
    /// Timeout of each request attempt (`--request-timeout`).
    pub request_timeout: Duration,
    /// How long one batch keeps retrying after its first failed attempt, and how
    /// long the endpoint may keep failing before the run is declared failed.
    pub retry_budget: Duration,
    /// Signals the run can do without, by [`Signal::index`]: a receiver that does
    /// not accept one (HTTP 404/405, gRPC UNIMPLEMENTED) turns it off for the rest
    /// of the run, with one warning, instead of failing it. Metrics and logs
    /// unless `--metrics` / `--logs` asked for them; never traces.
    pub optional_signals: [bool; 3],
    /// `-q`: no warnings on stderr (errors are still said).
    pub quiet: bool,
    /// How long to wait for a receiver that is not up yet (`None`: fail at once).
    pub wait_for_endpoint: Option<Duration>,
    /// TLS for `https://` endpoints.
    pub tls: crate::tls::ClientTls,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            endpoint: Protocol::Grpc.default_endpoint().into(),
            protocol: Protocol::Grpc,
            headers: Vec::new(),
            gzip: false,
            output_file: None,
            file_format: FileFormat::OtlpJson,
            max_batch_spans: 512,
            max_batch_logs: 512,
            linger: Some(Duration::from_millis(200)),
            signal_endpoints: [None, None, None],
            concurrency: 4,
            connections: default_connections(Protocol::Grpc),
            queue_batches: 16,
            request_timeout: Duration::from_secs(10),
            retry_budget: Duration::from_secs(15),
            optional_signals: [false, true, true],
            quiet: false,
            wait_for_endpoint: None,
            tls: crate::tls::ClientTls::default(),
        }
    }
}

/// The format of an output file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileFormat {
    /// OTLP/JSON lines, one export request per line (`otlp-json:PATH`).
    #[default]
    OtlpJson,
    /// One span per line in seed 002's data model (`spans-jsonl:PATH`).
    SpansJsonl,
}

/// One of the three OTLP signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Metric data points.
    Metrics,
    /// Log records.
    Logs,
}

impl Signal {
    /// Its place in per-signal arrays: traces, metrics, logs.
    pub fn index(self) -> usize {
        match self {
            Signal::Traces => 0,
            Signal::Metrics => 1,
            Signal::Logs => 2,
        }
    }

    /// How messages name it: `traces`, `metrics`, `logs`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }
}

/// A boxed future, so writers can sit behind `dyn` traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One output of a run: where records go and how they are encoded.
pub trait Writer: Send + Sync {
    /// How reports name it (`otlp grpc http://localhost:4317`, `otlp-json:traces.jsonl`).
    fn label(&self) -> &str;
    /// Its exact counters.
    fn counters(&self) -> &Arc<Counters>;
    /// Whether its output must depend on the data alone (a file): then the
    /// run's batches are cut by size only, never by time.
    fn cuts_by_size_only(&self) -> bool;
    /// A sink for one producer; it encodes on the producer's task.
    fn sink(&self) -> Box<dyn WriterSink>;
    /// Waits until everything handed to its sinks is delivered or failed
    /// (every sink must have been dropped) and returns the counters.
    fn finish(self: Box<Self>) -> BoxFuture<'static, CountersSnapshot>;
}

/// One producer's handle on a writer: takes whole batches of records.
pub trait WriterSink: Send {
    /// A batch of traces with `spans` spans in all; `parts` lists (sorted) the
    /// ids of the traces of which the batch holds only a part (the rest come in
    /// other batches).
    fn traces<'a>(
        &'a mut self,
        traces: &'a [TraceRecord],
        spans: usize,
        parts: &'a [[u8; 16]],
    ) -> BoxFuture<'a, ()>;
    /// Its writer's counters.
    fn counters(&self) -> &Counters;
    /// A batch of log records. By default the sink writes spans only (its
    /// counters say so from the start, `Counters::spans_only`): they are dropped.
    fn logs<'a>(&'a mut self, logs: &'a [LogRecord]) -> BoxFuture<'a, ()> {
        let dropped = &self.counters().logs.dropped;
        dropped.fetch_add(logs.len() as u64, Relaxed);
        Box::pin(async {})
    }
    /// One collected metrics request of `points` data points; dropped by default,
    /// as log records are.
    fn metrics<'a>(
        &'a mut self,
        _request: &'a ExportMetricsServiceRequest,
        points: u64,
    ) -> BoxFuture<'a, ()> {
        self.counters().points.dropped.fetch_add(points, Relaxed);
        Box::pin(async {})
    }
}

/// How reports name an OTLP output with this configuration.
pub fn output_label(cfg: &ExportConfig) -> String {
    match &cfg.output_file {
        Some(p) if cfg.file_format == FileFormat::SpansJsonl => {
            format!("spans-jsonl:{}", p.display())
        }
        Some(p) => format!("otlp-json:{}", p.display()),
        None => format!(
            "otlp {} {}",
            cfg.protocol.as_str(),
            redact_url(&cfg.endpoint)
        ),
    }
}

/// The writers of a run, in the order they were given.
pub struct Outputs {
    /// `--mask-pii`: personal data is masked in every record before any writer sees it.
    pub mask_pii: bool,
    writers: Vec<Box<dyn Writer>>,
    resources: Resources,
    max_batch_spans: usize,
    max_batch_logs: usize,
    linger: Option<Duration>,
}

/// One output to start: an OTLP writer from its (label, config), or a writer
/// already made (the session store's).
pub enum OutputStart {
    /// OTLP to an endpoint, or OTLP/JSON lines when the config has `output_file`.
    Otlp(String, Box<ExportConfig>),
    /// Any other writer.
    Ready(Box<dyn Writer>),
}

/// What one writer did, for the run report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OutputReport {
    /// The writer's label.
    pub output: String,
    /// Whether it delivers to a receiver (its acknowledgements are what
    /// `otelsim verify` checks), rather than writing a file.
    pub receiver: bool,
    /// Its counters at the end of the run.
    #[serde(flatten)]
    pub counters: CountersSnapshot,
}

impl Outputs {
    /// Starts every writer: OTLP for each (label, config); a config with
    /// `output_file` writes OTLP/JSON lines. Only the first network writer
    /// logs acknowledged traces into `acks`.
    pub async fn start(
        configs: Vec<(String, ExportConfig)>,
        resources: Resources,
        acks: Option<Arc<AckLog>>,
    ) -> Result<Outputs> {
        let first = configs.first().map(|(_, c)| c.clone()).unwrap_or_default();
        let list = configs
            .into_iter()
            .map(|(l, c)| OutputStart::Otlp(l, Box::new(c)));
        Outputs::start_all(list.collect(), &first, resources, acks).await
    }

    /// Starts every output in order: OTLP ones from their configs, the others
    /// as given; batch sizes and linger from `batching`.
    pub async fn start_all(
        list: Vec<OutputStart>,
        batching: &ExportConfig,
        resources: Resources,
        acks: Option<Arc<AckLog>>,
    ) -> Result<Outputs> {
        let mut writers: Vec<Box<dyn Writer>> = Vec::with_capacity(list.len());
        let mut acks = acks;
        for o in list {
            match o {
                OutputStart::Otlp(label, cfg) => {
                    let a = if cfg.output_file.is_none() {
                        acks.take()
                    } else {
                        None
                    };
                    match (&cfg.output_file, cfg.file_format) {
                        (Some(path), FileFormat::SpansJsonl) => writers.push(Box::new(
                            SpansJsonlWriter::start(label, path, resources.clone())?,
                        )),
                        _ => writers.push(Box::new(
                            OtlpWriter::start(label, *cfg, resources.clone(), a).await?,
                        )),
                    }
                }
                OutputStart::Ready(w) => writers.push(w),
            }
        }
        Ok(Outputs::new(writers, resources, batching))
    }

    /// Writers already started; batch sizes and linger from `cfg`.
    pub fn new(writers: Vec<Box<dyn Writer>>, resources: Resources, cfg: &ExportConfig) -> Outputs {
        let by_size = writers.iter().all(|w| w.cuts_by_size_only());
        Outputs {
            mask_pii: false,
            writers,
            resources,
            max_batch_spans: cfg.max_batch_spans,
            max_batch_logs: cfg.max_batch_logs,
            linger: if by_size { None } else { cfg.linger },
        }
    }

    /// Adds a file writer of another format (one that cuts by size only, so the
    /// linger the others chose stands), after the others.
    pub fn push(&mut self, writer: Box<dyn Writer>) {
        debug_assert!(writer.cuts_by_size_only());
        self.writers.push(writer);
    }

    /// The first writer's counters (the progress line shows them).
    pub fn primary(&self) -> Arc<Counters> {
        self.writers
            .first()
            .map(|w| w.counters().clone())
            .unwrap_or_default()
    }

    /// Every writer's counters, in order.
    pub fn counters(&self) -> Vec<Arc<Counters>> {
        self.writers.iter().map(|w| w.counters().clone()).collect()
    }

    /// A batcher for one producer, feeding every writer.
    pub fn batcher(&self) -> Batcher {
        Batcher {
            mask_pii: self.mask_pii,
            resources: self.resources.clone(),
            counters: self.counters(),
            sinks: self.writers.iter().map(|w| w.sink()).collect(),
            max_batch_spans: self.max_batch_spans,
            max_batch_logs: self.max_batch_logs,
            linger: self.linger,
            traces: Vec::new(),
            spans: 0,
            parts: Vec::new(),
            logs: Vec::new(),
            oldest: None,
            sdk: None,
        }
    }

    /// Waits for every writer (every [`Batcher`] must have been closed first).
    pub async fn finish(self) -> Vec<OutputReport> {
        let mut out = Vec::with_capacity(self.writers.len());
        for w in self.writers {
            let output = w.label().to_string();
            let receiver = !w.cuts_by_size_only();
            let counters = w.finish().await;
            out.push(OutputReport {
                output,
                receiver,
                counters,
            });
        }
        out
    }
}

/// Another pipeline that takes finished traces whole (`--engine sdk`).
pub trait SpanSink: Send + Sync {
    /// Takes the traces of one pick.
    fn submit(&self, traces: &[TraceRecord]);
}

/// One producer's pending traces and logs, held once for every writer,
/// flushed by size, after the linger time, before metrics, and when closed.
/// A trace is split only when it holds more spans than a request may: a
/// receiver refuses a request that large (gRPC servers commonly at 4 MiB),
/// and OTLP lets one trace span several requests.
pub struct Batcher {
    mask_pii: bool,
    resources: Resources,
    counters: Vec<Arc<Counters>>,
    sinks: Vec<Box<dyn WriterSink>>,
    max_batch_spans: usize,
    max_batch_logs: usize,
    linger: Option<Duration>,
    traces: Vec<TraceRecord>,
    spans: usize,
    /// Ids of the pending traces that are parts of larger ones.
    parts: Vec<[u8; 16]>,
    logs: Vec<LogRecord>,
    /// When the oldest pending item arrived (for the linger flush).
    oldest: Option<Instant>,
    /// `--engine sdk`: spans go to the SDK's batch processors instead.
    sdk: Option<Arc<dyn SpanSink>>,
}

impl Batcher {
    /// Hands traces to another pipeline (the OpenTelemetry SDK) instead of the writers.
    pub fn through(mut self, sink: Arc<dyn SpanSink>) -> Self {
        self.sdk = Some(sink);
        self
    }

    /// Queues the traces (and their log records) of one pick; waits when a
    /// writer's send queue is full (backpressure).
    pub async fn submit(&mut self, traces: Vec<TraceRecord>, logs: Vec<LogRecord>) {
        self.count_traces(traces.len() as u64);
        self.queue(traces, logs, false).await;
    }

    /// Counts traces generated whose spans will come later through [`Self::submit_parts`].
    pub fn count_traces(&self, n: u64) {
        for c in &self.counters {
            c.traces_generated.fetch_add(n, Relaxed);
        }
    }

    /// Queues parts of traces already counted (realtime mode releases each span when it ends).
    pub async fn submit_parts(&mut self, traces: Vec<TraceRecord>, logs: Vec<LogRecord>) {
        self.queue(traces, logs, true).await;
    }

    /// Queues traces (`parts`: each is part of a larger trace) and log records.
    async fn queue(&mut self, mut traces: Vec<TraceRecord>, mut logs: Vec<LogRecord>, parts: bool) {
        if self.mask_pii {
            traces.iter_mut().for_each(crate::redact::mask_trace);
            logs.iter_mut().for_each(crate::redact::mask_log);
        }
        let spans: usize = traces.iter().map(|t| t.spans.len()).sum();
        for c in &self.counters {
            c.spans.generated.fetch_add(spans as u64, Relaxed);
            c.logs.generated.fetch_add(logs.len() as u64, Relaxed);
        }
        if let Some(engine) = &self.sdk {
            // The SDK engine carries traces only (the run turns logs and metrics off).
            engine.submit(&traces);
            return;
        }
        if self.oldest.is_none() && (!traces.is_empty() || !logs.is_empty()) {
            self.oldest = Some(Instant::now());
        }
        let max = self.max_batch_spans.max(1);
        for t in traces {
            let n = t.spans.len();
            if n > max {
                self.queue_split(t).await;
                continue;
            }
            if self.spans > 0 && self.spans + n > max {
                self.flush_traces().await;
            }
            self.push(t, parts);
        }
        if self.spans >= max {
            self.flush_traces().await;
        }
        self.logs.extend(logs);
        if self.logs.len() >= self.max_batch_logs {
            self.flush_logs().await;
        }
        if self.traces.is_empty() && self.logs.is_empty() {
            self.oldest = None;
        }
    }

    /// A trace larger than a request, in requests of `max_batch_spans` spans
    /// (the last part may wait for other traces to fill its request).
    async fn queue_split(&mut self, t: TraceRecord) {
        let max = self.max_batch_spans.max(1);
        if self.spans > 0 {
            self.flush_traces().await;
        }
        let TraceRecord {
            trace_id,
            scope,
            scenario,
            spans,
        } = t;
        let mut rest = spans.into_iter();
        loop {
            let chunk: Vec<_> = rest.by_ref().take(max).collect();
            if chunk.is_empty() {
                break;
            }
            let full = chunk.len() == max;
            self.push(
                TraceRecord {
                    trace_id,
                    scope,
                    scenario,
                    spans: chunk,
                },
                true,
            );
            if full {
                self.flush_traces().await;
            }
        }
    }

    fn push(&mut self, t: TraceRecord, part: bool) {
        if part {
            self.parts.push(t.trace_id);
        }
        self.spans += t.spans.len();
        self.traces.push(t);
    }

    /// Queues one collected metrics request of `points` data points, after what
    /// is pending.
    pub async fn submit_metrics(&mut self, request: ExportMetricsServiceRequest, points: u64) {
        for c in &self.counters {
            c.points.generated.fetch_add(points, Relaxed);
        }
        self.flush().await;
        for sink in &mut self.sinks {
            sink.metrics(&request, points).await;
        }
    }

    /// The resources records are encoded with (metrics are collected with them).
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// When pending items must go out even if no batch fills up; `None` when
    /// nothing is pending or batches are cut by size only.
    pub fn linger_deadline(&self) -> Option<Instant> {
        Some(self.oldest? + self.linger?)
    }

    /// How long until the linger flush is due.
    pub fn linger_left(&self) -> Option<Duration> {
        Some(
            self.linger_deadline()?
                .saturating_duration_since(Instant::now()),
        )
    }

    /// Flushes if the linger time of the oldest pending item has passed.
    pub async fn flush_if_lingering(&mut self) {
        if self.linger_deadline().is_some_and(|d| d <= Instant::now()) {
            self.flush().await;
        }
    }

    /// Hands everything pending to the writers.
    pub async fn flush(&mut self) {
        self.flush_traces().await;
        self.flush_logs().await;
        self.oldest = None;
    }

    /// Flushes what is pending; the writers can finish once every batcher is closed.
    pub async fn close(mut self) {
        self.flush().await;
    }

    async fn flush_traces(&mut self) {
        if self.traces.is_empty() {
            return;
        }
        self.parts.sort_unstable();
        self.parts.dedup();
        for sink in &mut self.sinks {
            sink.traces(&self.traces, self.spans, &self.parts).await;
        }
        self.traces.clear();
        self.spans = 0;
        self.parts.clear();
    }

    async fn flush_logs(&mut self) {
        if self.logs.is_empty() {
            return;
        }
        for sink in &mut self.sinks {
            sink.logs(&self.logs).await;
        }
        self.logs.clear();
    }
}
