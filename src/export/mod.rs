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
            max_batch_logs: 1024,
            linger: Some(Duration::from_millis(200)),
            signal_endpoints: [None, None, None],
            concurrency: 4,
            queue_batches: 64,
            request_timeout: Duration::from_secs(10),
            retry_budget: Duration::from_secs(15),
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
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
}

/// A batch ready to send and how many items (spans, points, records) it holds.
struct Batch {
    body: Body,
    items: u64,
}

impl Batch {
    fn signal(&self) -> Signal {
        match self.body {
            Body::Traces(_) | Body::TracesWire(_) => Signal::Traces,
            Body::Metrics(_) => Signal::Metrics,
            Body::Logs(_) => Signal::Logs,
        }
    }
}

enum Msg {
    Traces(Vec<TraceRecord>, Vec<LogRecord>),
    Metrics(ExportMetricsServiceRequest, u64),
}

pub struct Exporter {
    tx: mpsc::Sender<Msg>,
    batcher: JoinHandle<()>,
    pub counters: Arc<Counters>,
}

impl Exporter {
    pub async fn start(mut cfg: ExportConfig, resources: Resources) -> Result<Exporter> {
        if cfg.output_file.is_some() {
            // One writer, batches cut by size only: the file's bytes depend on the data alone.
            cfg.concurrency = 1;
            cfg.linger = None;
        }
        let transport = Transport::new(&cfg).await?;
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel::<Msg>(cfg.queue_batches.max(1) * 8);
        let (btx, brx) = mpsc::channel::<Batch>(cfg.queue_batches.max(1));
        let brx = Arc::new(tokio::sync::Mutex::new(brx));
        let cfg = Arc::new(cfg);
        let mut workers = Vec::new();
        for _ in 0..cfg.concurrency.max(1) {
            let brx = brx.clone();
            let transport = transport.clone();
            let counters = counters.clone();
            let cfg = cfg.clone();
            workers.push(tokio::spawn(async move {
                loop {
                    let next = brx.lock().await.recv().await;
                    let Some(batch) = next else { break };
                    send_with_retry(&transport, &cfg, &counters, batch).await;
                }
            }));
        }
        let batcher = tokio::spawn(run_batcher(
            rx,
            btx,
            resources,
            cfg.clone(),
            workers,
            transport,
        ));
        Ok(Exporter {
            tx,
            batcher,
            counters,
        })
    }

    /// Queues the traces (and their log records) of one request; waits when the
    /// queue is full (backpressure).
    pub async fn submit(&self, traces: Vec<TraceRecord>, logs: Vec<LogRecord>) {
        let spans: usize = traces.iter().map(|t| t.spans.len()).sum();
        let c = &self.counters;
        c.traces_generated.fetch_add(traces.len() as u64, Relaxed);
        c.spans.generated.fetch_add(spans as u64, Relaxed);
        c.logs.generated.fetch_add(logs.len() as u64, Relaxed);
        let n_logs = logs.len() as u64;
        if self.tx.send(Msg::Traces(traces, logs)).await.is_err() {
            // The pipeline is gone: these items can never be sent.
            c.spans.failed.fetch_add(spans as u64, Relaxed);
            c.logs.failed.fetch_add(n_logs, Relaxed);
            c.note_error("export pipeline stopped");
        }
    }

    /// Queues one collected metrics request of `points` data points.
    pub async fn submit_metrics(&self, request: ExportMetricsServiceRequest, points: u64) {
        self.counters.points.generated.fetch_add(points, Relaxed);
        if self.tx.send(Msg::Metrics(request, points)).await.is_err() {
            self.counters.points.failed.fetch_add(points, Relaxed);
            self.counters.note_error("export pipeline stopped");
        }
    }

    /// Flushes everything queued, waits for every send to finish, returns the counters.
    pub async fn finish(self) -> CountersSnapshot {
        drop(self.tx);
        let _ = self.batcher.await;
        self.counters.snapshot()
    }
}

/// Pending traces and logs, flushed by size, by linger time, before metrics, and at the end.
struct Pending {
    traces: Vec<TraceRecord>,
    spans: usize,
    logs: Vec<LogRecord>,
    /// Protobuf transports get traces encoded by the wire encoder; JSON ones need prost types.
    wire: Option<WireEncoder>,
}

impl Pending {
    async fn flush_traces(&mut self, btx: &mpsc::Sender<Batch>, resources: &Resources) {
        if self.traces.is_empty() {
            return;
        }
        let body = match &mut self.wire {
            Some(w) => {
                let mut buf = Vec::with_capacity(self.spans * 600);
                w.traces(&self.traces, &mut buf);
                Body::TracesWire(bytes::Bytes::from(buf))
            }
            None => Body::Traces(encode::traces_request(&self.traces, resources)),
        };
        let items = self.spans as u64;
        self.traces.clear();
        self.spans = 0;
        let _ = btx.send(Batch { body, items }).await;
    }

    /// Sends pending log records in requests of at most `max` records.
    async fn flush_logs(&mut self, btx: &mpsc::Sender<Batch>, resources: &Resources, max: usize) {
        for chunk in self.logs.chunks(max.max(1)) {
            let body = Body::Logs(encode::logs_request(chunk, resources));
            let _ = btx
                .send(Batch {
                    body,
                    items: chunk.len() as u64,
                })
                .await;
        }
        self.logs.clear();
    }

    async fn flush_all(
        &mut self,
        btx: &mpsc::Sender<Batch>,
        resources: &Resources,
        max_logs: usize,
    ) {
        self.flush_traces(btx, resources).await;
        self.flush_logs(btx, resources, max_logs).await;
    }
}

async fn run_batcher(
    mut rx: mpsc::Receiver<Msg>,
    btx: mpsc::Sender<Batch>,
    resources: Resources,
    cfg: Arc<ExportConfig>,
    workers: Vec<JoinHandle<()>>,
    transport: Transport,
) {
    let mut p = Pending {
        traces: Vec::new(),
        spans: 0,
        logs: Vec::new(),
        wire: transport
            .takes_wire()
            .then(|| WireEncoder::new(resources.clone())),
    };
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let msg = match deadline {
            Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    p.flush_all(&btx, &resources, cfg.max_batch_logs).await;
                    deadline = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match msg {
            None => break,
            Some(Msg::Metrics(request, items)) => {
                // Spans and logs queued earlier go first.
                p.flush_all(&btx, &resources, cfg.max_batch_logs).await;
                deadline = None;
                let _ = btx
                    .send(Batch {
                        body: Body::Metrics(request),
                        items,
                    })
                    .await;
            }
            Some(Msg::Traces(traces, logs)) => {
                for t in traces {
                    let n = t.spans.len();
                    // A trace is never split: flush first if it would overflow the batch.
                    if p.spans > 0 && p.spans + n > cfg.max_batch_spans {
                        p.flush_traces(&btx, &resources).await;
                    }
                    p.spans += n;
                    p.traces.push(t);
                }
                if p.spans >= cfg.max_batch_spans {
                    p.flush_traces(&btx, &resources).await;
                }
                p.logs.extend(logs);
                if p.logs.len() >= cfg.max_batch_logs {
                    p.flush_logs(&btx, &resources, cfg.max_batch_logs).await;
                }
                if p.traces.is_empty() && p.logs.is_empty() {
                    deadline = None;
                } else if deadline.is_none() {
                    deadline = cfg.linger.map(|l| tokio::time::Instant::now() + l);
                }
            }
        }
    }
    p.flush_all(&btx, &resources, cfg.max_batch_logs).await;
    drop(btx);
    for w in workers {
        let _ = w.await;
    }
    transport.flush();
}

async fn send_with_retry(
    transport: &Transport,
    cfg: &ExportConfig,
    counters: &Counters,
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
        let wait = hint.unwrap_or(delay).min(Duration::from_secs(5));
        if started.elapsed() + wait > cfg.retry_budget {
            fail(
                counters,
                &batch,
                &format!("gave up after {:.1?} of retries: {msg}", started.elapsed()),
            );
            return;
        }
        counters.retries.fetch_add(1, Relaxed);
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
