//! Send: batching, a bounded queue with backpressure, concurrent senders,
//! retries on transient errors, and exact counters per signal. Nothing accepted
//! is dropped silently: every span, metric point and log record ends up counted
//! as acknowledged or failed.

mod transport;

pub use transport::{endpoint_url, http_signal_url};

use crate::encode::wire::WireEncoder;
use crate::encode::{self, Resources};
use crate::record::{LogRecord, TraceRecord};
use anyhow::Result;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use transport::{Outcome, Transport};

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
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "grpc" => Some(Protocol::Grpc),
            "http/protobuf" | "http" | "http_protobuf" => Some(Protocol::HttpProtobuf),
            "http/json" | "http_json" | "json" => Some(Protocol::HttpJson),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }

    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://localhost:4317",
            _ => "http://localhost:4318",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// Base URL (`http://host:port`); for HTTP `/v1/<signal>` is appended unless present.
    pub endpoint: String,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub gzip: bool,
    /// Write OTLP/JSON lines here instead of sending.
    pub output_file: Option<PathBuf>,
    pub max_batch_spans: usize,
    pub max_batch_logs: usize,
    /// Flush a partial batch after this long; `None`: only by size and at the end
    /// (what file output uses, so batches do not depend on timing).
    pub linger: Option<Duration>,
    /// Full per-signal endpoints (traces, metrics, logs) from
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`, used as they are; `None`: derived from `endpoint`.
    pub signal_endpoints: [Option<String>; 3],
    pub concurrency: usize,
    pub queue_batches: usize,
    pub request_timeout: Duration,
    /// How long one batch keeps retrying, and how long the endpoint may keep
    /// failing before the run is declared failed.
    pub retry_budget: Duration,
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
            max_batch_spans: 512,
            max_batch_logs: 512,
            linger: Some(Duration::from_millis(200)),
            signal_endpoints: [None, None, None],
            concurrency: 4,
            queue_batches: 16,
            request_timeout: Duration::from_secs(10),
            retry_budget: Duration::from_secs(15),
            wait_for_endpoint: None,
            tls: crate::tls::ClientTls::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

/// Exact counters of one signal; items are spans, data points or log records.
#[derive(Debug, Default)]
pub struct SignalCounters {
    pub generated: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    pub requests_sent: AtomicU64,
    pub requests_acked: AtomicU64,
    pub requests_failed: AtomicU64,
}

#[derive(Clone, Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct SignalSnapshot {
    pub generated: u64,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub requests_sent: u64,
    pub requests_acked: u64,
    pub requests_failed: u64,
}

impl SignalCounters {
    fn snapshot(&self) -> SignalSnapshot {
        SignalSnapshot {
            generated: self.generated.load(Relaxed),
            sent: self.sent.load(Relaxed),
            acked: self.acked.load(Relaxed),
            failed: self.failed.load(Relaxed),
            requests_sent: self.requests_sent.load(Relaxed),
            requests_acked: self.requests_acked.load(Relaxed),
            requests_failed: self.requests_failed.load(Relaxed),
        }
    }
}

/// Exact counters of the export pipeline.
#[derive(Debug, Default)]
pub struct Counters {
    pub traces_generated: AtomicU64,
    pub spans: SignalCounters,
    pub points: SignalCounters,
    pub logs: SignalCounters,
    pub retries: AtomicU64,
    /// Retries that waited as the receiver asked (Retry-After, RetryInfo).
    pub retry_hints: AtomicU64,
    pub bytes_sent: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// When the endpoint started failing (reset by any success).
    failing_since: Mutex<Option<Instant>>,
    fatal: Mutex<Option<String>>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CountersSnapshot {
    pub traces_generated: u64,
    pub spans: SignalSnapshot,
    pub metric_points: SignalSnapshot,
    pub log_records: SignalSnapshot,
    pub retries: u64,
    pub retry_hints: u64,
    pub bytes_sent: u64,
    pub first_error: Option<String>,
}

impl CountersSnapshot {
    /// Items of every signal that could not be delivered.
    pub fn failed(&self) -> u64 {
        self.spans.failed + self.metric_points.failed + self.log_records.failed
    }
}

impl Counters {
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            traces_generated: self.traces_generated.load(Relaxed),
            spans: self.spans.snapshot(),
            metric_points: self.points.snapshot(),
            log_records: self.logs.snapshot(),
            retries: self.retries.load(Relaxed),
            retry_hints: self.retry_hints.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            first_error: self.first_error.lock().map(|e| e.clone()).unwrap_or(None),
        }
    }

    fn of(&self, s: Signal) -> &SignalCounters {
        match s {
            Signal::Traces => &self.spans,
            Signal::Metrics => &self.points,
            Signal::Logs => &self.logs,
        }
    }

    fn note_error(&self, msg: &str) {
        if let Ok(mut e) = self.first_error.lock() {
            if e.is_none() {
                *e = Some(msg.to_string());
            }
        }
    }

    fn mark_healthy(&self) {
        if let Ok(mut f) = self.failing_since.lock() {
            *f = None;
        }
    }

    /// Starts (or continues) the failing clock; past the budget the run is failing.
    fn mark_failing(&self, cfg: &ExportConfig, msg: &str) {
        let Ok(mut f) = self.failing_since.lock() else {
            return;
        };
        let since = *f.get_or_insert_with(Instant::now);
        if since.elapsed() >= cfg.retry_budget {
            if let Ok(mut fatal) = self.fatal.lock() {
                fatal.get_or_insert_with(|| {
                    format!(
                        "OTLP endpoint {} failing for {:.0?}: {msg}",
                        cfg.endpoint,
                        since.elapsed()
                    )
                });
            }
        }
    }

    /// The reason the run must stop (endpoint failing beyond the retry budget).
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }
}

/// An encoded export request of one signal.
pub(crate) enum Body {
    Traces(ExportTraceServiceRequest),
    /// An `ExportTraceServiceRequest` already in protobuf wire format (the fast path).
    TracesWire(bytes::Bytes),
    /// An `ExportLogsServiceRequest` already in protobuf wire format.
    LogsWire(bytes::Bytes),
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
}

/// A batch ready to send: how many items (spans, points, records) it holds and,
/// when acknowledgements are logged, which traces (id, spans) it carries.
struct Batch {
    body: Body,
    items: u64,
    traces: Vec<TraceDigest>,
}

impl Batch {
    fn signal(&self) -> Signal {
        match self.body {
            Body::Traces(_) | Body::TracesWire(_) => Signal::Traces,
            Body::Metrics(_) => Signal::Metrics,
            Body::Logs(_) | Body::LogsWire(_) => Signal::Logs,
        }
    }
}

/// A trace as the receiver should see it: its id and how many spans it has.
pub type TraceDigest = ([u8; 16], u32);

/// The traces a receiver acknowledged in full, for `otelsim verify`. Bounded:
/// past `cap` traces only the count of unlisted traces grows.
#[derive(Debug)]
pub struct AckLog {
    cap: usize,
    acked: Mutex<Vec<TraceDigest>>,
    unlisted: AtomicU64,
}

impl AckLog {
    pub fn new(cap: usize) -> Self {
        AckLog {
            cap,
            acked: Mutex::new(Vec::new()),
            unlisted: AtomicU64::new(0),
        }
    }

    fn record(&self, traces: &[TraceDigest]) {
        let Ok(mut v) = self.acked.lock() else {
            return;
        };
        let room = self.cap.saturating_sub(v.len()).min(traces.len());
        v.extend_from_slice(&traces[..room]);
        self.unlisted
            .fetch_add((traces.len() - room) as u64, Relaxed);
    }

    /// The acknowledged traces (sorted by id) and how many were left unlisted.
    pub fn take(&self) -> (Vec<TraceDigest>, u64) {
        let mut v = self
            .acked
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        v.sort_unstable();
        (v, self.unlisted.load(Relaxed))
    }
}

/// The shared half of the pipeline: a bounded queue of encoded batches and the
/// senders draining it. Producers feed it through their own [`Batcher`]s.
pub struct Exporter {
    btx: mpsc::Sender<Batch>,
    senders: Vec<JoinHandle<()>>,
    transport: Transport,
    cfg: Arc<ExportConfig>,
    resources: Resources,
    pub counters: Arc<Counters>,
    acks: Option<Arc<AckLog>>,
}

impl Exporter {
    /// `acks`: log the traces that were acknowledged in full (for verification).
    pub async fn start(
        mut cfg: ExportConfig,
        resources: Resources,
        acks: Option<Arc<AckLog>>,
    ) -> Result<Exporter> {
        if cfg.output_file.is_some() {
            // One writer, batches cut by size only: the file's bytes depend on the data alone.
            cfg.concurrency = 1;
            cfg.linger = None;
        }
        let transport = Transport::new(&cfg).await?;
        let counters = Arc::new(Counters::default());
        let (btx, brx) = mpsc::channel::<Batch>(cfg.queue_batches.max(1));
        let brx = Arc::new(tokio::sync::Mutex::new(brx));
        let cfg = Arc::new(cfg);
        let mut senders = Vec::new();
        for _ in 0..cfg.concurrency.max(1) {
            let brx = brx.clone();
            let transport = transport.clone();
            let counters = counters.clone();
            let cfg = cfg.clone();
            let acks = acks.clone();
            senders.push(tokio::spawn(async move {
                loop {
                    let next = brx.lock().await.recv().await;
                    let Some(batch) = next else { break };
                    send_with_retry(&transport, &cfg, &counters, acks.as_deref(), batch).await;
                }
            }));
        }
        Ok(Exporter {
            btx,
            senders,
            transport,
            cfg,
            resources,
            counters,
            acks,
        })
    }

    /// A batcher for one producer: it batches and encodes on the producer's own
    /// task, so encoding scales with the number of producers.
    pub fn batcher(&self) -> Batcher {
        Batcher {
            btx: self.btx.clone(),
            counters: self.counters.clone(),
            cfg: self.cfg.clone(),
            resources: self.resources.clone(),
            traces: Vec::new(),
            spans: 0,
            logs: Vec::new(),
            oldest: None,
            track: self.acks.is_some(),
            wire: self
                .transport
                .takes_wire()
                .then(|| WireEncoder::new(self.resources.clone())),
            sdk: None,
        }
    }

    /// Waits for every queued batch to be sent (every [`Batcher`] must have been
    /// closed first) and returns the counters.
    pub async fn finish(self) -> CountersSnapshot {
        drop(self.btx);
        for s in self.senders {
            let _ = s.await;
        }
        self.transport.flush();
        self.counters.snapshot()
    }
}

/// Another pipeline that takes finished traces whole (`--engine sdk`).
pub trait SpanSink: Send + Sync {
    fn submit(&self, traces: &[TraceRecord]);
}

/// One producer's pending traces and logs, flushed by size, after the linger
/// time, before metrics, and when closed. A trace is never split.
pub struct Batcher {
    btx: mpsc::Sender<Batch>,
    counters: Arc<Counters>,
    cfg: Arc<ExportConfig>,
    resources: Resources,
    traces: Vec<TraceRecord>,
    spans: usize,
    logs: Vec<LogRecord>,
    /// When the oldest pending item arrived (for the linger flush).
    oldest: Option<Instant>,
    /// Whether batches carry trace digests for the ack log.
    track: bool,
    /// Protobuf transports get traces and logs encoded by the wire encoder; JSON ones need prost types.
    wire: Option<WireEncoder>,
    /// `--engine sdk`: spans go to the SDK's batch processors instead.
    sdk: Option<Arc<dyn SpanSink>>,
}

impl Batcher {
    /// Hands traces to another pipeline (the OpenTelemetry SDK) instead of otelsim's own.
    pub fn through(mut self, sink: Arc<dyn SpanSink>) -> Self {
        self.sdk = Some(sink);
        self
    }

    /// Queues the traces (and their log records) of one pick; waits when the
    /// send queue is full (backpressure).
    pub async fn submit(&mut self, traces: Vec<TraceRecord>, logs: Vec<LogRecord>) {
        self.counters
            .traces_generated
            .fetch_add(traces.len() as u64, Relaxed);
        self.submit_parts(traces, logs).await;
    }

    /// Counts traces generated whose spans will come later through [`Self::submit_parts`].
    pub fn count_traces(&self, n: u64) {
        self.counters.traces_generated.fetch_add(n, Relaxed);
    }

    /// Queues parts of traces already counted (realtime mode releases each span when it ends).
    pub async fn submit_parts(&mut self, traces: Vec<TraceRecord>, logs: Vec<LogRecord>) {
        let c = &self.counters;
        let spans: usize = traces.iter().map(|t| t.spans.len()).sum();
        c.spans.generated.fetch_add(spans as u64, Relaxed);
        c.logs.generated.fetch_add(logs.len() as u64, Relaxed);
        if let Some(engine) = &self.sdk {
            // The SDK engine carries traces only (the run turns logs and metrics off).
            engine.submit(&traces);
            return;
        }
        if self.oldest.is_none() && (!traces.is_empty() || !logs.is_empty()) {
            self.oldest = Some(Instant::now());
        }
        for t in traces {
            let n = t.spans.len();
            if self.spans > 0 && self.spans + n > self.cfg.max_batch_spans {
                self.flush_traces().await;
            }
            self.spans += n;
            self.traces.push(t);
        }
        if self.spans >= self.cfg.max_batch_spans {
            self.flush_traces().await;
        }
        self.logs.extend(logs);
        if self.logs.len() >= self.cfg.max_batch_logs {
            self.flush_logs().await;
        }
        if self.traces.is_empty() && self.logs.is_empty() {
            self.oldest = None;
        }
    }

    /// Queues one collected metrics request of `points` data points, after what
    /// is pending.
    pub async fn submit_metrics(&mut self, request: ExportMetricsServiceRequest, points: u64) {
        self.counters.points.generated.fetch_add(points, Relaxed);
        self.flush().await;
        self.send(Batch {
            body: Body::Metrics(request),
            items: points,
            traces: Vec::new(),
        })
        .await;
    }

    /// When pending items must go out even if no batch fills up; `None` when
    /// nothing is pending or batches are cut by size only.
    pub fn linger_deadline(&self) -> Option<Instant> {
        Some(self.oldest? + self.cfg.linger?)
    }

    /// How long until the linger flush is due.
    pub fn linger_left(&self) -> Option<Duration> {
        Some(
            self.linger_deadline()?
                .saturating_duration_since(Instant::now()),
        )
    }

    /// The resources batches are encoded with.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// Flushes if the linger time of the oldest pending item has passed.
    pub async fn flush_if_lingering(&mut self) {
        if self.linger_deadline().is_some_and(|d| d <= Instant::now()) {
            self.flush().await;
        }
    }

    pub async fn flush(&mut self) {
        self.flush_traces().await;
        self.flush_logs().await;
        self.oldest = None;
    }

    /// Flushes what is pending; the exporter can finish once every batcher is closed.
    pub async fn close(mut self) {
        self.flush().await;
    }

    async fn flush_traces(&mut self) {
        if self.traces.is_empty() {
            return;
        }
        let body = match &mut self.wire {
            Some(w) => {
                let mut buf = Vec::with_capacity(self.spans * 600);
                w.traces(&self.traces, &mut buf);
                Body::TracesWire(bytes::Bytes::from(buf))
            }
            None => Body::Traces(encode::traces_request(&self.traces, &self.resources)),
        };
        let traces = if self.track {
            let mut d: Vec<TraceDigest> = self
                .traces
                .iter()
                .map(|t| (t.trace_id, t.spans.len() as u32))
                .collect();
            // Realtime mode sends a trace span by span: one entry per trace and batch.
            d.sort_unstable_by_key(|x| x.0);
            d.dedup_by(|b, a| {
                let same = a.0 == b.0;
                if same {
                    a.1 += b.1;
                }
                same
            });
            d
        } else {
            Vec::new()
        };
        let items = self.spans as u64;
        self.traces.clear();
        self.spans = 0;
        self.send(Batch {
            body,
            items,
            traces,
        })
        .await;
    }

    /// Sends pending log records in requests of at most `max_batch_logs` records.
    async fn flush_logs(&mut self) {
        let logs = std::mem::take(&mut self.logs);
        for chunk in logs.chunks(self.cfg.max_batch_logs.max(1)) {
            let body = match &mut self.wire {
                Some(w) => {
                    let mut buf = Vec::with_capacity(chunk.len() * 400);
                    w.logs(chunk, &mut buf);
                    Body::LogsWire(bytes::Bytes::from(buf))
                }
                None => Body::Logs(encode::logs_request(chunk, &self.resources)),
            };
            self.send(Batch {
                body,
                items: chunk.len() as u64,
                traces: Vec::new(),
            })
            .await;
        }
    }

    async fn send(&self, batch: Batch) {
        let sc = self.counters.of(batch.signal());
        let items = batch.items;
        if self.btx.send(batch).await.is_err() {
            // The senders are gone: these items can never be sent.
            sc.failed.fetch_add(items, Relaxed);
            self.counters.note_error("export pipeline stopped");
        }
    }
}

async fn send_with_retry(
    transport: &Transport,
    cfg: &ExportConfig,
    counters: &Counters,
    acks: Option<&AckLog>,
    batch: Batch,
) {
    let sc = counters.of(batch.signal());
    sc.requests_sent.fetch_add(1, Relaxed);
    sc.sent.fetch_add(batch.items, Relaxed);
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        // Once the endpoint has been failing past the budget, stop trying: the run is failing.
        if let Some(reason) = counters.fatal() {
            fail(counters, &batch, &reason);
            return;
        }
        let mut bytes = 0;
        // No single attempt may outlast what is left of the retry budget.
        let left = cfg
            .retry_budget
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let outcome =
            match tokio::time::timeout(left, transport.send(&batch.body, &mut bytes)).await {
                Ok(o) => o,
                Err(_) => Outcome::Retry(format!("no answer within {left:.1?}"), None),
            };
        counters.bytes_sent.fetch_add(bytes, Relaxed);
        let (msg, hint) = match outcome {
            Outcome::Ok { rejected, message } => {
                let rejected = rejected.min(batch.items);
                if rejected == 0 {
                    if let Some(a) = acks {
                        a.record(&batch.traces);
                    }
                }
                sc.requests_acked.fetch_add(1, Relaxed);
                sc.acked.fetch_add(batch.items - rejected, Relaxed);
                if rejected > 0 {
                    sc.failed.fetch_add(rejected, Relaxed);
                    counters
                        .note_error(&format!("receiver rejected {rejected} item(s): {message}"));
                }
                counters.mark_healthy();
                return;
            }
            Outcome::Fail(msg) => {
                fail(counters, &batch, &msg);
                return;
            }
            Outcome::Fatal(msg) => {
                if let Ok(mut fatal) = counters.fatal.lock() {
                    fatal.get_or_insert_with(|| msg.clone());
                }
                fail(counters, &batch, &msg);
                return;
            }
            Outcome::Retry(msg, hint) => (msg, hint),
        };
        counters.mark_failing(cfg, &msg);
        // The receiver's hint (Retry-After, gRPC RetryInfo) wins over our backoff
        // (at least 50 ms, so `Retry-After: 0` cannot spin); the retry budget
        // bounds the whole.
        let wait = hint.map_or(delay, |h| h.max(Duration::from_millis(50)));
        if started.elapsed() + wait > cfg.retry_budget {
            let why = if hint.is_some() {
                format!(
                    "the receiver asked to wait {wait:.1?}, beyond what is left of the retry budget ({:.1?})",
                    cfg.retry_budget
                )
            } else {
                format!("gave up after {:.1?} of retries", started.elapsed())
            };
            fail(counters, &batch, &format!("{why}: {msg}"));
            return;
        }
        counters.retries.fetch_add(1, Relaxed);
        if hint.is_some() {
            counters.retry_hints.fetch_add(1, Relaxed);
        }
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

fn fail(counters: &Counters, batch: &Batch, msg: &str) {
    let sc = counters.of(batch.signal());
    sc.requests_failed.fetch_add(1, Relaxed);
    sc.failed.fetch_add(batch.items, Relaxed);
    counters.note_error(msg);
}
